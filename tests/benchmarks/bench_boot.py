"""Benchmark: a whole Xen PV boot (init_memory_mapping, pins, hook, reuse) of the 3.0 variant.

Run: `python tests/benchmarks/bench_boot.py [--mem 4G 16G] [--model models/kernels/3.0.toml]`.
Targets (issue 3): 4 GiB under 10 s, 16 GiB under 40 s; peak RSS reported.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from xenpin.linux.boot import boot
from xenpin.linux.layout import parse_size
from xenpin.linux.variant import load_variant

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mem", nargs="+", default=["4G", "16G"])
    ap.add_argument("--model", default=str(ROOT / "models/kernels/3.0.toml"))
    args = ap.parse_args()
    variant = load_variant(args.model)
    for size in args.mem:
        t = time.perf_counter()
        result = boot(variant, parse_size(size))
        elapsed = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{variant.name} {size:>4}: {result.outcome}, {result.pte_writes:,} PTE writes, {result.pins:,} L1 pins,"
            f" {elapsed:6.2f} s, peak RSS so far {rss:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
