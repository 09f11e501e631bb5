"""What every `xenpin` command shares: exit codes, the one-line usage/input errors, argument parsers."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path
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


_HEX = re.compile(r"0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*")
# `_` only between digits, as in Python's literals
_DECIMAL = re.compile(r"\d+(?:_\d+)*(?:\.\d*)?(?:[eE][+-]?\d+)?")
MAX_RLIMIT = 2**32 - 1  # Z3's rlimit is an unsigned int: a larger value would wrap (0: no limit at all)


def whole_number(name: str, text: str, most: int) -> int:
    """A positive whole number of the command line: a Python integer literal (`400000000`, `400_000_000`) or
    decimal float notation that is exactly one (`4e8`, `4.0e8`; not `4.5`, `nan`, `1e400`)."""
    from decimal import Decimal

    text = text.strip()
    if _HEX.fullmatch(text):
        value = Decimal(int(text, 16))  # 0x17d78400
    elif _DECIMAL.fullmatch(text):
        value = Decimal(text.replace("_", ""))  # 400_000_000, 4e8, 4.0e8
    else:
        value = None
    if value is None or not value.is_finite() or value != value.to_integral_value():
        raise InputError(f"{name}: {text!r} is not a whole number (e.g. 400000000 or 4e8)")
    if not 0 < value <= most:
        raise InputError(f"{name}: {text} is not between 1 and {most}")
    return int(value)


def check_target(target: str, option: str = "") -> None:
    """Refuse, before any work, an output file `write_whole` would refuse: an empty name, a name that exists and
    is not a regular file (a device such as /dev/null, a FIFO, a directory, a symlink, even to a regular file:
    renaming over it would replace the link, writing through it would write elsewhere), or a file whose folder
    does not exist. `option` (`--svg`) prefixes the message of an empty name."""
    if not target:
        raise InputError(f"{option or 'output file'}: empty file name")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{target}: not a file but {_kind(mode)}: only regular files are written")
    if not os.path.isdir(os.path.dirname(os.path.abspath(target))):
        raise InputError(f"{target}: not a file in an existing directory")


def check_targets(named: list[tuple[str, str | None]], inputs: list[str]) -> None:
    """`check_target` for each (option, FILE) given, and no FILE twice or over one of the command's input files
    (`--svg my.toml`: a slip of tab completion must not replace the model with a picture)."""
    seen: dict[str, str] = {}
    for option, target in named:
        if target is None:
            continue
        check_target(target, option)
        where = os.path.realpath(target)
        if where in seen:
            raise InputError(f"{option}: {target} is also the file of {seen[where]}")
        seen[where] = option
        if os.path.exists(target) and any(os.path.exists(p) and os.path.samefile(p, target) for p in inputs):
            raise InputError(f"{option}: {target} is an input of this command, not an output file")


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return kind
    return "something else"


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError, StopIteration), open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it (not thread-safe)
    os.umask(mask)
    return mask


def write_whole(target: str, text: str) -> None:
    """Write `target` all at once (a temporary file in its folder renamed over it), or raise InputError leaving
    nothing. Only regular files: see `check_target`. A new file gets 0o666 & ~umask, a replaced one keeps its
    mode. An interrupt (KeyboardInterrupt) while writing leaves no temporary file either."""
    check_target(target)
    directory = os.path.dirname(os.path.abspath(target))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".xenpin-")
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), mode)  # mkstemp makes 0600
            out.write(text)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{target}: cannot write: {exc.strerror}") from None
        raise


def add_output_flags(p: argparse.ArgumentParser, progress: bool = True) -> None:
    """`--json` and `--quiet`, which every command takes (`progress`: the command shows progress bars)."""
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    quiet = (
        "no progress bars on stderr (shown only on a terminal, never with --json)"
        if progress
        else "accepted by every command (this one shows no progress)"
    )
    p.add_argument("--quiet", action="store_true", help=quiet)


def add_solver_flags(p: argparse.ArgumentParser) -> None:
    """`--timeout S`, `--rlimit N` and `--jobs N`: the limits of every solver call and the worker processes, as
    `prove` and `verify-rules` take them."""
    p.add_argument(
        "--timeout", type=float, default=None, metavar="S", help="wall-clock backstop per solver call"
    )
    p.add_argument(
        "--rlimit",
        default=None,
        metavar="N",
        help="Z3 resource limit per solver call: a whole number, e.g. 400000000, 400_000_000 or 4e8"
        " (default 4e8; at most 2**32 - 1)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes for the solver calls (default and at most: the cores this process may use,"
        " and no more than the obligations; 1 runs in-process)",
    )


def check_output_dir(flag: str, directory: str) -> bool:
    """An output folder (`--smt2 DIR`, `--scenarios DIR`) before any work: a directory one can write to, or a
    name one can be created under; not empty, not a file. True if it exists already."""
    if not directory:
        raise InputError(f"{flag}: empty directory name")
    path = Path(directory)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise InputError(f"{flag}: {directory}: not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{flag}: {directory}: cannot write: permission denied")
        return True
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag}: cannot create {directory} under {parent}")
    return False
