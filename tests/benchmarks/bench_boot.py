"""Benchmark: whole Xen PV boots (start of day, xen_memory_setup, every init_memory_mapping call with its pins and
hypercalls, the reserve step, NODE_DATA, the page allocator) of one variant: CPU against a bare loop, RSS per GiB.

Run (from the repository root; each boot runs in a process of its own, so its ru_maxrss is its own):
  python tests/benchmarks/bench_boot.py                  # the issue-12 rows: 4 GiB boot of 3.0 vs the bare loop,
                                                         # RSS per GiB at 4 and 16 GiB, mask_rw_pte per PTE vs runs
  python tests/benchmarks/bench_boot.py --before DIR     # the same rows for the xenpin tree in DIR too, in this run
                                                         # (e.g. `git archive e0331fd xenpin | tar -x -C DIR`)
  python tests/benchmarks/bench_boot.py --rss 4G 16G 1T  # peak RSS and time of each size (1T: after the storage
                                                         # rewrite; it is not refused here, whatever `--mem` allows)
  python tests/benchmarks/bench_boot.py --mem 1G 4G 7.5G 16G   # seconds per GiB: the walk stays linear

The ratio is the boot's CPU time (user + system, the best of 3) over the CPU time of a Python loop doing one dict store per PTE the boot writes,
both in the same process (target <= 10x, issue 12). The split (`--split`) times what runs inside the validator's
public methods (xenpin/xen/) apart from the rest (the kernel's walk, xenpin/linux/): the boot's calls into the
validator are recorded, then replayed into a fresh one with the clock running.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/kernels/3.0.toml"
GIB = 1 << 30


def _cpu() -> float:
    return time.process_time()


def bare_loop(n: int) -> float:
    """CPU seconds of one dict store per PTE, the floor any walk writing `n` PTEs in Python stands on."""
    store: dict[int, int] = {}
    t = _cpu()
    for pfn in range(n):
        store[pfn] = 3
    return _cpu() - t


HV_METHODS = ("__init__", "add_guest_frames", "frame", "has_frame", "entry", "entries", "live_level", "write",
              "fill_table", "mmu_update", "update_va_mapping", "pin", "unpin", "new_baseptr", "set_gdt")  # fmt: skip


def validator_share(variant, mem: int) -> tuple[float, int]:
    """CPU seconds the validator's public methods take in one boot, and how many calls: the boot is run once
    recording every outermost call (`fill_table`'s entries as a list), then the calls are replayed into a fresh
    validator with the clock running, so no timer sits inside the boot."""
    from xenpin.linux.boot import boot
    from xenpin.xen.hypervisor import Hypervisor

    originals = {name: getattr(Hypervisor, name) for name in HV_METHODS if hasattr(Hypervisor, name)}
    calls: list[tuple[str, tuple, dict]] = []
    depth = [0]

    def recorder(name, fn):
        def record(self, *args, **kw):
            if depth[0]:
                return fn(self, *args, **kw)
            if name == "fill_table":
                args = (args[0], list(args[1]))
            calls.append((name, args, kw))
            depth[0] += 1
            try:
                return fn(self, *args, **kw)
            finally:
                depth[0] -= 1

        return record

    for name, fn in originals.items():
        setattr(Hypervisor, name, recorder(name, fn))
    try:
        boot(variant, mem)
    finally:
        for name, fn in originals.items():
            setattr(Hypervisor, name, fn)
    t = _cpu()
    hv = Hypervisor.__new__(Hypervisor)
    for name, args, kw in calls:
        originals[name](hv, *args, **kw)
    del hv
    return _cpu() - t, len(calls)


def policy_rows(pte_writes: int) -> dict[str, float]:
    """`mask_rw_pte` of 3.0 over `pte_writes` direct-map PTEs (pfns 0 ..), a buffer near 4 GiB: CPU seconds per
    PTE with the tree's `to_function`, and (where the tree has them) by runs of one L1 (512 PTEs) at a time."""
    from xenpin.linux import policy
    from xenpin.linux.variant import load_variant

    v = load_variant(MODEL)
    start, end, top = 0xFF000, 0xFF400, 0xFF800
    out = {}
    f = policy.to_function(v.readonly, ("pfn", "pgt_buf_start", "pgt_buf_end", "pgt_buf_top", "ioremap"))
    t = _cpu()
    for pfn in range(pte_writes):
        f(pfn, start, end, top, False)
    out["per_pte_s"] = _cpu() - t
    if hasattr(policy, "CompiledPolicy"):
        direct = policy.CompiledPolicy(policy.specialize(v.readonly, {"ioremap": False}), ("pfn", *("pgt_buf_start",
                                       "pgt_buf_end", "pgt_buf_top")))  # fmt: skip
        t = _cpu()
        for lo in range(0, pte_writes, 512):
            direct.runs(lo, min(lo + 512, pte_writes), start, end, top)
        out["runs_s"] = _cpu() - t
    return out


def one(size: str, model: str, split: bool, policies: bool, repeat: int = 1) -> dict:
    """A boot in this process: its CPU (user + system, the best of `repeat`), the bare loop's, peak RSS (KiB)."""
    from xenpin.linux.boot import boot
    from xenpin.linux.layout import parse_size
    from xenpin.linux.variant import load_variant

    variant = load_variant(model)
    mem = parse_size(size)
    cpu = wall = float("inf")
    for _ in range(repeat):  # the fastest of `repeat` boots: this machine is shared
        t, w = _cpu(), time.perf_counter()
        result = boot(variant, mem)
        cpu, wall = min(cpu, _cpu() - t), min(wall, time.perf_counter() - w)
    out = {
        "size": size,
        "mem_bytes": mem,
        "outcome": result.outcome,
        "pte_writes": result.pte_writes,
        "pins": result.pins,
        "cpu_s": cpu,
        "wall_s": wall,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "bare_s": min(bare_loop(result.pte_writes) for _ in range(repeat)),
    }
    if split:
        out["xen_s"], out["xen_calls"] = validator_share(variant, mem)
        out["rest_s"] = cpu - out["xen_s"]
    if policies:
        out.update(policy_rows(result.pte_writes))
    return out


def _spawn(tree: Path, size: str, model: str, *flags: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, __file__, "--one", size, "--model", model, *flags]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} (PYTHONPATH={tree}) failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def _gib(kib: float) -> float:
    return kib / (1 << 20)


def issue_rows(trees: list[tuple[str, Path]], model: str, rss_sizes: list[str]) -> None:
    for label, tree in trees:
        r = _spawn(tree, "4G", model, "--policies", "--repeat", "3")
        s = _spawn(tree, "4G", model, "--split", "--repeat", "2")
        print(f"[{label}: {tree}]")
        print(f"  4 GiB boot of {Path(model).stem}: {r['outcome']}, {r['pte_writes']:,} PTE writes, {r['pins']:,} pins:"
              f" {r['cpu_s']:.2f} s CPU ({r['wall_s']:.2f} s wall); bare dict loop {r['bare_s']:.3f} s:"
              f" ratio {r['cpu_s'] / r['bare_s']:.1f}x (target <= 10x)")  # fmt: skip
        print(f"  split ({s['xen_calls']:,} validator calls replayed): validator {s['xen_s']:.2f} s"
              f" ({s['xen_s'] / s['bare_s']:.1f}x), the rest {s['rest_s']:.2f} s ({s['rest_s'] / s['bare_s']:.1f}x"
              " the bare loop)")  # fmt: skip
        line = f"  mask_rw_pte over those PTEs: {r['per_pte_s']:.3f} s one call per PTE"
        if "runs_s" in r:
            line += f", {r['runs_s']:.4f} s by runs of one L1 ({r['per_pte_s'] / r['runs_s']:.0f}x less)"
        print(line)
        rss = [_spawn(tree, size, model) for size in rss_sizes]
        for x in rss:
            print(f"  {x['size']:>5}: {x['outcome']}, peak RSS {_gib(x['maxrss_kib']):.2f} GiB"
                  f" ({_gib(x['maxrss_kib']) / (x['mem_bytes'] / GIB):.3f} GiB per GiB), {x['cpu_s']:.1f} s CPU")  # fmt: skip
        if len(rss) >= 2:
            a, b = rss[0], rss[-1]
            slope = (_gib(b["maxrss_kib"]) - _gib(a["maxrss_kib"])) / (
                (b["mem_bytes"] - a["mem_bytes"]) / GIB
            )
            print(
                f"  RSS slope {a['size']} -> {b['size']}: {slope:.3f} GiB per GiB of guest"
                " (layout.BOOT_RSS_GIB_PER_GUEST_GIB)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument(
        "--before", type=Path, metavar="DIR", help="another xenpin tree to measure in the same run"
    )
    ap.add_argument("--rss", nargs="+", metavar="SIZE", help="peak RSS of each size, each in its own process")
    ap.add_argument("--mem", nargs="+", metavar="SIZE", help="seconds per GiB of each size (one process)")
    ap.add_argument("--one", metavar="SIZE", help=argparse.SUPPRESS)  # a subprocess: one boot, a JSON line
    ap.add_argument("--split", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--policies", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.model, args.split, args.policies, args.repeat)))
        return
    if args.mem:
        base = None
        for size in args.mem:
            r = one(size, args.model, False, False)
            per_gib = r["cpu_s"] / (r["mem_bytes"] / GIB)
            base = base or per_gib
            print(f"{Path(args.model).stem} {size:>5}: {r['outcome']}, {r['pte_writes']:,} PTE writes, {r['pins']:,}"
                  f" L1 pins, {r['cpu_s']:6.2f} s CPU ({per_gib:5.2f} s/GiB, x{per_gib / base:4.2f}),"
                  f" peak RSS so far {r['maxrss_kib'] / 1024:,.0f} MiB")  # fmt: skip
        return
    if args.rss:
        for size in args.rss:
            x = _spawn(ROOT, size, args.model)
            print(f"{size:>5}: {x['outcome']}, peak RSS {_gib(x['maxrss_kib']):.2f} GiB"
                  f" ({_gib(x['maxrss_kib']) / (x['mem_bytes'] / GIB):.4f} GiB per GiB), {x['cpu_s']:.1f} s CPU,"
                  f" {x['wall_s']:.1f} s wall")  # fmt: skip
        return
    trees = [("after", ROOT)] + ([("before", args.before)] if args.before else [])
    issue_rows(trees, args.model, ["4G", "16G"])


if __name__ == "__main__":
    main()
