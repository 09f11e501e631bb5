"""Benchmark: every verdict of every shipped kernel variant (obligations, lemmas, non-vacuity checks,
minimisation and replay included), as `xenpin prove` runs them.

Run: `python tests/benchmarks/bench_prove.py [--repeat N] [--jobs N]`. Each repeat starts with nothing proved (no
lemma, premise or domain answer kept from the one before). The CPU column counts this process and its workers.
`--jobs 1` runs everything in this process (`xenpin prove --jobs 1`); the default uses every core, as
`xenpin prove` does; `--placement any|both` proves the rows `P@any` (or both). Targets (issues 4 and 9): all verdicts under 10 s, none over 2 s, 64-bit.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

from xenpin.linux.variant import PROPERTIES, load_variant
from xenpin.symbolic import placement
from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic.batch import default_workers, prove_many
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S
from xenpin.symbolic.walk import W

ROOT = Path(__file__).resolve().parents[2]


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers, once it is shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=default_workers())
    ap.add_argument(
        "--placement", choices=("rule", "any", "both"), default="rule", help="P, P@any, or both rows"
    )
    args = ap.parse_args()
    variants = [load_variant(p) for p in sorted((ROOT / "models/kernels").glob("*.toml"))]
    totals = []
    for _ in range(args.repeat):
        for memo in (prove_mod._LEMMA_VERDICTS, prove_mod._MACHINES, prove_mod._PREMISE_ANSWERS):
            memo.clear()
        t, cpu0 = time.perf_counter(), _cpu()
        jobs = [(v, label) for v in variants for label in placement.labels(list(PROPERTIES), args.placement)]
        verdicts = prove_many(jobs, workers=args.jobs, rlimit=DEFAULT_RLIMIT, timeout_s=DEFAULT_TIMEOUT_S)
        totals.append(time.perf_counter() - t)
        cpu = _cpu() - cpu0
        slowest = max(verdicts, key=lambda v: v.seconds)
        wrong = [v for v in verdicts if not v.as_expected]
        print(
            f"{len(verdicts)} verdicts in {totals[-1]:5.2f} s ({cpu:5.2f} s CPU, workers included);"
            f" slowest {slowest.variant.name} {slowest.label}"
            f" {slowest.seconds:4.2f} s; {len(wrong)} differ from expectation"
        )
    print(
        f"median total {statistics.median(totals):5.2f} s at {W}-bit width, {args.jobs} worker(s)"
        "   (target < 10 s, none over 2 s)"
    )


if __name__ == "__main__":
    main()
