"""``python -m llm_from_scratch COMMAND ...``: the command line lives in :mod:`llm_from_scratch.cli`."""

import sys

from llm_from_scratch.cli import UsageError, build_parser, evaluate_checkpoint, main, sample_text  # noqa: F401
from llm_from_scratch.runs import run_pretrain  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
