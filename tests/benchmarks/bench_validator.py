"""Benchmark: build a 4 GiB PV guest's tables and pin its L4 (full recursive validation), then time mmu_update.

A 4 GiB guest: 1 L4, 1 L3, 4 L2 and 2048 L1 tables mapping 1,048,576 data frames (table frames RO, the rest RW),
filled by plain guest stores, then `MMUEXT_PIN_L4_TABLE`. The floor is a bare Python loop doing one dict update
per entry. Run: `python tests/benchmarks/bench_validator.py [--gib N]`.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import subprocess
import sys
import time

import networkx as nx

from xenpin.xen.flags import RW, Entry, P
from xenpin.xen.frame import Frame
from xenpin.xen.hypervisor import GUEST_DOMAIN, Hypervisor, edge_attrs, paused_gc

ENTRIES = 512


def floor_loop(n: int) -> float:
    with paused_gc():
        d: dict[int, int] = {}
        t = time.perf_counter()
        for i in range(n):
            d[i] = i
        return time.perf_counter() - t


def networkx_floor(gib: int) -> float:
    """The model's data structure alone: a MultiDiGraph with a `Frame` per frame and one edge per entry of the
    same tables, written straight into the adjacency, with no Xen logic at all (no checks, no counts)."""
    frames = gib << 18
    with paused_gc():
        t = time.perf_counter()
        g = nx.MultiDiGraph()
        g._node.update((m, Frame(m, GUEST_DOMAIN)) for m in range(frames))
        g._succ.update((m, {}) for m in range(frames))
        g._pred.update((m, {}) for m in range(frames))
        succ, pred, attrs = g._succ, g._pred, edge_attrs(P | RW)
        for k in range(frames // ENTRIES):
            table = frames - 1 - k
            row = succ[table]
            for s in range(ENTRIES):
                target = k * ENTRIES + s
                row[target] = pred[target][table] = {s: attrs}
        elapsed = time.perf_counter() - t
    del g
    gc.collect()
    return elapsed


def build_guest(gib: int) -> tuple[Hypervisor, int, list[int]]:
    """The guest's memory is `gib` GiB of frames; its page tables are its last frames, mapped RO."""
    frames = gib << 18  # 4 KiB pages
    n_l1 = frames // ENTRIES
    n_l2 = max(1, n_l1 // ENTRIES)
    first_table = frames - (2 + n_l2 + n_l1)
    hv = Hypervisor("modern", frames=frames)
    l4, l3 = first_table, first_table + 1
    l2s = list(range(l3 + 1, l3 + 1 + n_l2))
    l1s = list(range(l2s[-1] + 1, frames))
    hv.fill_table(l4, [(0, l3, P | RW)])
    hv.fill_table(l3, [(i, m, P | RW) for i, m in enumerate(l2s)])
    for i, l2 in enumerate(l2s):
        hv.fill_table(l2, [(s, m, P | RW) for s, m in enumerate(l1s[i * ENTRIES : (i + 1) * ENTRIES])])
    # The direct map: L1 k maps frames 512k..512k+511, every frame of the guest once.
    for k, l1 in enumerate(l1s):
        first = k * ENTRIES
        hv.fill_table(l1, ((s, first + s, P if first + s >= first_table else P | RW) for s in range(ENTRIES)))
    return hv, l4, l1s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=int, default=4)
    ap.add_argument(
        "--graph-floor", action="store_true", help="only time the networkx floor (used internally)"
    )
    args = ap.parse_args()
    if args.graph_floor:
        print(networkx_floor(args.gib))
        return
    entries = args.gib << 18
    floor = min(floor_loop(entries) for _ in range(3))
    gc.collect()
    t0 = time.perf_counter()
    hv, l4, l1s = build_guest(args.gib)
    t1 = time.perf_counter()
    result = hv.pin(4, l4)
    t2 = time.perf_counter()
    assert result.ok, result
    assert hv.frame(l1s[0]).validated and hv.frame(0).type_name == "writable"
    l1 = l1s[1]
    samples = []
    for i in range(2000):
        target = Entry(i % 512 + 512, P if i % 2 else P | RW)
        t = time.perf_counter()
        r = hv.mmu_update(l1, i % 512, target)
        samples.append(time.perf_counter() - t)
        assert r.ok, r
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = t2 - t0
    # In a fresh process, so that neither measurement runs on memory the other already made the OS hand out.
    cmd = [sys.executable, __file__, "--gib", str(args.gib), "--graph-floor"]
    graph_floor = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"guest: {args.gib} GiB, {entries:,} L1 entries, {len(l1s)} L1 tables")
    print(f"build (plain stores):      {t1 - t0:6.2f} s")
    print(f"pin L4 (full validation):  {t2 - t1:6.2f} s")
    print(f"build + pin:               {total:6.2f} s   (target < 3 s)")
    print(f"floor (1 dict update/entry): {floor:6.3f} s   ratio {total / floor:.1f}x   (target <= 10x)")
    print(
        f"networkx floor (the graph alone, no Xen logic): {graph_floor:6.2f} s = {graph_floor / floor:.1f}x the floor;"
        f" the model costs {total / graph_floor:.2f}x the graph alone"
    )
    print(f"mmu_update L1 entry median: {statistics.median(samples) * 1e6:6.1f} us   (target < 50 us)")
    print(f"peak RSS:                  {rss:6.0f} MiB   (target < 1024 MiB)")


if __name__ == "__main__":
    main()
