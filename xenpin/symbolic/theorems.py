"""Proof scripts: a script in `proofs/` states theorems (variant file, property, expected verdict) and runs them.

`python proofs/NAME.py` runs one script; `xenpin prove proofs/NAME.py` (or `xenpin prove proofs/`) runs it through the
CLI (text or JSON). A theorem's variant path is relative to the folder of the script that states it, so a script
works wherever it is installed or run from. Its expected verdict (`proved`, `counterexample`, `vacuous` or
`unknown`; default `proved`) overrides the variant file's `[expect]`. A `vacuous` verdict never satisfies an
expected `proved`: a script run exits 3 on it, as on an unexpected `unknown`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from xenpin.linux.variant import PROPERTIES, VERDICTS, KernelVariant, VariantError, load_variant
from xenpin.symbolic import placement


@dataclass(frozen=True)
class Theorem:
    variant: str  # path of a kernel variant file, absolute or relative to the stating script's folder
    prop: str
    expect: str = "proved"
    where: str = field(default="", compare=False, repr=False)  # "script.py:LINE" of the Theorem(...) call

    def __post_init__(self) -> None:
        if not self.where:
            caller = sys._getframe(2)  # __init__ -> __post_init__; the script's frame is the third
            object.__setattr__(self, "where", f"{caller.f_code.co_filename}:{caller.f_lineno}")

    @property
    def script_dir(self) -> Path:
        """The folder of the script that stated this theorem: relative variant paths start there."""
        return Path(self.where.rsplit(":", 1)[0]).resolve().parent

    def load(self, base: Path | None = None) -> KernelVariant:
        """The variant with this theorem's expectation; ValueError naming the script line on a bad theorem."""
        for field_name, value in (("variant", self.variant), ("prop", self.prop), ("expect", self.expect)):
            if not isinstance(value, str):
                raise ValueError(
                    f"{self.where}: Theorem {field_name} must be a string, not {type(value).__name__}"
                )
        if not placement.known(self.prop):  # P, or P@any: anywhere the memblock search allows
            raise ValueError(
                f"{self.where}: Theorem prop: unknown property {self.prop!r} (known: {', '.join(PROPERTIES)},"
                " each also as P@any)"
            )
        if self.expect not in VERDICTS:
            raise ValueError(
                f"{self.where}: Theorem expect: unknown verdict {self.expect!r} (known: {', '.join(VERDICTS)})"
            )
        path = Path(self.variant)
        try:
            variant = load_variant(path if path.is_absolute() else (base or self.script_dir) / path)
        except VariantError as exc:
            raise VariantError(f"{self.where}: Theorem variant: {exc}") from None
        return dataclasses.replace(variant, expect={**variant.expect, self.prop: self.expect})


def load_script(path: str | Path) -> list[Theorem]:
    """The `THEOREMS` of a proof script (the script is imported, not run as __main__)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"xenpin_proof_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        # a script's own prints must not mix into --json; its folder is importable, as under `python script.py`
        with contextlib.redirect_stdout(sys.stderr), _importable(path.resolve().parent):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ValueError(f"{path}:{exc.lineno or 1}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:
        line = _line_in(path, exc.__traceback__)
        what = "exits while loading" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{path}:{line}: the script failed: {what}") from None
    theorems = getattr(module, "THEOREMS", None)
    if not isinstance(theorems, list) or not all(isinstance(t, Theorem) for t in theorems):
        raise ValueError(f"{path}:1: THEOREMS must be a list of xenpin.symbolic.theorems.Theorem")
    return theorems


@contextlib.contextmanager
def _importable(folder: Path) -> Iterator[None]:
    """`folder` first on sys.path for the block (a script's sibling helper modules), as it was after."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def _line_in(path: Path, tb: TracebackType | None) -> int:
    """The last line of `path` in a traceback (1 if the script itself is not in it)."""
    line = 1
    for frame, lineno in traceback.walk_tb(tb):
        if Path(frame.f_code.co_filename).resolve() == path.resolve():
            line = lineno
    return line


def run(theorems: list[Theorem], argv: list[str] | None = None) -> int:
    """Entry point of a proof script: prove every theorem, print the report, return the exit code."""
    from xenpin.report.prove import render_text
    from xenpin.symbolic.batch import default_workers, prove_many
    from xenpin.symbolic.prove import exit_code
    from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

    del argv
    t = time.perf_counter()
    try:
        jobs = [(th.load(), th.prop) for th in theorems]
    except ValueError as exc:  # VariantError too: one line, exit 2, as `xenpin prove` does
        print(f"xenpin: {exc}", file=sys.stderr)
        return 2
    verdicts = prove_many(jobs, workers=default_workers(), rlimit=DEFAULT_RLIMIT, timeout_s=DEFAULT_TIMEOUT_S)
    print(render_text(verdicts, time.perf_counter() - t))
    return exit_code(verdicts)
