"""``python -m llm_from_scratch COMMAND ...``: the command line lives in :mod:`llm_from_scratch.cli`."""

import sys

from llm_from_scratch.cli import UsageError, build_parser, evaluate_checkpoint, main, run_pretrain, sample_text  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
