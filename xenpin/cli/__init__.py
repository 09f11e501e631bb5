"""`xenpin …` command line: thin argparse front end over the model, rendering in `xenpin.report`.

Exit codes (every command): 0 = everything as expected, 1 = an outcome differs from its expectation,
2 = bad input or usage (one line on stderr naming file/line/field, nothing on stdout), 3 = unknown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xenpin import __version__
from xenpin.cli import boot, equiv, explore, list_cmd, logs, prove, replay
from xenpin.cli.common import EXIT_BAD_INPUT, InputError, Parser

# Each module's `register` adds one subcommand and sets `handler`; add new commands here.
SUBCOMMANDS = [replay, boot, logs, prove, explore, equiv, list_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="xenpin", description="Check the Xen PV early-boot pagetable protocol by execution and by proof."
    )
    parser.add_argument("--version", action="version", version=f"xenpin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (2) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except InputError as exc:
        print(f"xenpin: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
