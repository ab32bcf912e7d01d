"""`python -m tokfilter.train ...` (and `torchrun --nproc_per_node N -m tokfilter.train ...`): same as
`tokfilter train ...`."""

import argparse
import sys

from tokfilter.errors import UserError
from tokfilter.train.cli import add_arguments, run_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokfilter.train", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except UserError as err:
        print(f"tokfilter: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
