"""Proof scripts: a script in `proofs/` states theorems (variant file, property, expected verdict) and runs them.

`python proofs/NAME.py` runs one script; `xenpin prove proofs/NAME.py` runs it through the CLI (text or JSON).
A theorem's expected verdict overrides the variant file's `[expect]` for that run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from xenpin.linux.variant import PROPERTIES, VERDICTS, KernelVariant, load_variant

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Theorem:
    variant: str  # path of a kernel variant file, relative to the repository root or absolute
    prop: str
    expect: str = "proved"

    def load(self, base: Path = ROOT) -> KernelVariant:
        path = Path(self.variant)
        variant = load_variant(path if path.is_absolute() else base / path)
        if self.prop not in PROPERTIES:
            raise ValueError(f"theorem {self}: unknown property {self.prop!r}")
        if self.expect not in VERDICTS:
            raise ValueError(f"theorem {self}: unknown verdict {self.expect!r}")
        return dataclasses.replace(variant, expect={**variant.expect, self.prop: self.expect})


def load_script(path: str | Path) -> list[Theorem]:
    """The `THEOREMS` of a proof script (the script is imported, not run as __main__)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"xenpin_proof_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    theorems = getattr(module, "THEOREMS", None)
    if not isinstance(theorems, list) or not all(isinstance(t, Theorem) for t in theorems):
        raise ValueError(f"{path}:1: THEOREMS must be a list of xenpin.symbolic.theorems.Theorem")
    return theorems


def run(theorems: list[Theorem], argv: list[str] | None = None) -> int:
    """Entry point of a proof script: prove every theorem, print the report, return the exit code."""
    from xenpin.report.prove import render_text
    from xenpin.symbolic.batch import default_workers, prove_many
    from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

    del argv
    t = time.perf_counter()
    jobs = [(th.load(), th.prop) for th in theorems]
    verdicts = prove_many(jobs, workers=default_workers(), rlimit=DEFAULT_RLIMIT, timeout_s=DEFAULT_TIMEOUT_S)
    print(render_text(verdicts, time.perf_counter() - t))
    differs = [v for v in verdicts if not v.as_expected]
    if any(v.verdict != "unknown" for v in differs):
        return 1
    return 3 if differs else 0


def main() -> None:  # pragma: no cover - used by the scripts' __main__
    raise SystemExit(run(load_script(sys.argv[0])))
