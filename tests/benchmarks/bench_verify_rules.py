"""Benchmark: `xenpin verify-rules` -- the operation x invariant matrix of Xen's PV rules at the default bound.

Run: `python tests/benchmarks/bench_verify_rules.py [--rules R ...] [--op OP ...] [--jobs N]`. Prints each
verdict as it comes (time since start, seconds, slowest solver call), then the total wall time, the CPU
seconds of this process and its workers together (on a shared machine the wall time depends on what else runs;
the CPU seconds much less: CPU / jobs is about the wall time on otherwise idle cores), how many obligations
took over 10 s and the slowest one.
The default is the XSA rows `make prove` runs (xen-4.1, mmu_update[l2] and [l4], closure and global safety);
`--all` runs the whole matrix for both rule sets. Targets (issue 11): the whole matrix for both rule sets
under 60 s on 2 cores, no obligation over 10 s.
"""

from __future__ import annotations

import argparse
import resource
import time

from xenpin.symbolic.batch import default_workers
from xenpin.symbolic.pv.invariants import STATE_INVARIANTS
from xenpin.symbolic.pv.matrix import verify
from xenpin.symbolic.pv.operations import OPERATION_NAMES
from xenpin.xen.rules import RULES

XSA_ROWS = ("mmu_update[l2]", "mmu_update[l4]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", action="append")
    ap.add_argument("--op", action="append")
    ap.add_argument("--invariant", action="append")
    ap.add_argument("--all", action="store_true", help="every rule set, operation and invariant")
    ap.add_argument("--jobs", type=int, default=default_workers())
    args = ap.parse_args()
    if args.all:
        rules, ops, invariants = list(RULES), list(OPERATION_NAMES), list(STATE_INVARIANTS)
    else:
        rules = args.rules or ["xen-4.1"]
        ops = args.op or list(XSA_ROWS)
        invariants = args.invariant or ["closure", "global_safety"]
    start = time.perf_counter()

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, once they are reaped
        return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime

    cpu0 = cpu()

    def show(v) -> None:
        slowest = max(v.timings, default=0.0)
        print(
            f"{time.perf_counter() - start:7.1f}s  {v.rules:8} {v.operation:18} {v.invariant:14} {v.verdict:15}"
            f" {v.seconds:6.1f}s (slowest solver call {slowest:.1f}s)",
            flush=True,
        )

    matrix = verify(rules, ops, invariants, workers=args.jobs, on_verdict=show)
    total = time.perf_counter() - start
    cpu_s = cpu() - cpu0
    slowest = max(matrix.verdicts, key=lambda v: v.seconds)
    counts = {
        k: sum(v.verdict == k for v in matrix.verdicts)
        for k in ("proved", "counterexample", "vacuous", "unknown")
    }
    over = sum(v.seconds > 10 for v in matrix.verdicts)
    print(
        f"{len(matrix.verdicts)} obligations in {total:.1f} s on {args.jobs} workers, {cpu_s:.1f} CPU s"
        f" ({counts}); {over} over 10 s;"
        f" slowest {slowest.rules} {slowest.operation} {slowest.invariant} {slowest.seconds:.1f} s; bound: {matrix.bound}"
    )


if __name__ == "__main__":
    main()
