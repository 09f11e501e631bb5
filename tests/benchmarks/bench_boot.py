"""Benchmark: whole Xen PV boots (start of day, xen_memory_setup, every init_memory_mapping call with its pins and
hypercalls, the reserve step, NODE_DATA, the page allocator) of one variant, and their cost per GiB.

Run: `python tests/benchmarks/bench_boot.py [--mem 1G 4G 7.5G 16G] [--model models/kernels/2.6.39.toml]`.
The ratio column is seconds per GiB of guest relative to the smallest size's, in the same run: the walk should
stay linear in the memory it maps. Targets (issue 3): 4 GiB under 10 s, 16 GiB under 40 s; peak RSS reported.
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
    ap.add_argument("--mem", nargs="+", default=["1G", "4G", "7.5G", "16G"])
    ap.add_argument("--model", default=str(ROOT / "models/kernels/2.6.39.toml"))
    args = ap.parse_args()
    variant = load_variant(args.model)
    base = None
    for size in args.mem:
        mem = parse_size(size)
        t = time.perf_counter()
        result = boot(variant, mem)
        elapsed = time.perf_counter() - t
        per_gib = elapsed / (mem / (1 << 30))
        base = base or per_gib
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{variant.name} {size:>5}: {result.outcome}, {result.pte_writes:,} PTE writes, {result.pins:,} L1 pins,"
            f" {elapsed:6.2f} s ({per_gib:5.2f} s/GiB, x{per_gib / base:4.2f}), peak RSS so far {rss:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
