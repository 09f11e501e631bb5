"""`xenpin …` command line: thin argparse front end over the model, rendering in `xenpin.report`.

Exit codes (every command): 0 = everything as expected, 1 = an outcome differs from its expectation,
2 = bad input or usage (one line on stderr naming file/line/field, nothing on stdout), 3 = unknown;
130 = stopped by SIGINT (Ctrl-C), 143 = stopped by SIGTERM (one line on stderr, workers killed, no partial
files); 141 = stdout was closed early (`xenpin … | head -1`), quietly, as a command killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
from collections.abc import Sequence

from xenpin import __version__
from xenpin.cli import boot, equiv, explore, list_cmd, logs, prove, replay, signals, verify_rules
from xenpin.cli.common import EXIT_BAD_INPUT, InputError, Parser

# Each module's `register` adds one subcommand and sets `handler`; add new commands here.
SUBCOMMANDS = [replay, boot, logs, prove, explore, equiv, list_cmd, verify_rules]

_STDOUT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EBADF, errno.EFBIG}
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, what the shell reports for a command killed by SIGPIPE


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
    with signals.handled():
        try:
            code = _run(argv)
            if (
                sys.stdout is not None
            ):  # None: started with stdout closed (`>&-`); print() then writes nothing
                sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
            return code
        except BrokenPipeError:
            _drop_stdout()
            return EXIT_BROKEN_PIPE
        except (
            OSError
        ) as exc:  # stdout itself failed (a full disk, a closed descriptor): one line, no traceback
            if exc.errno not in _STDOUT_ERRORS:
                raise
            _drop_stdout()
            print(f"xenpin: stdout: {exc.strerror}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            signum = signals.received() or signal.SIGINT
            print(signals.message(signum), file=sys.stderr)
            return signals.exit_code(signum)


def _run(argv: Sequence[str] | None) -> int:
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


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit finds nowhere to fail (Python's own
    advice for SIGPIPE: https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    if sys.stdout is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
