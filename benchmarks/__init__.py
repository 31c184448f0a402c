"""Speed and memory benchmarks: ratios against a reference measured in the same run (see RESULTS.md)."""
