"""What every `xenpin` command shares: exit codes, the one-line usage/input errors, argument parsers."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import NoReturn

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (`xenpin boot: the following arguments are required: MODEL`), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


class InputError(Exception):
    """Bad input: printed as `xenpin: <message>` on stderr, exit 2."""


def size_arg(name: str, text: str | None, zero: bool = False) -> int | None:
    """A size in bytes, a positive multiple of 4 KiB (or 0 where `zero`: no ramdisk)."""
    from xenpin.linux.layout import parse_size

    if text is None:
        return None
    try:
        value = parse_size(text)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None
    if value == 0 and zero:
        return 0
    if value <= 0 or value % 4096:
        raise InputError(f"{name}: {text} is not a positive multiple of 4 KiB")
    return value


def write_whole(target: str, text: str) -> None:
    """Write `target` all at once (a temporary file renamed over it), or raise InputError leaving nothing."""
    directory = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".xenpin-")
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        os.unlink(tmp)
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
