"""What the `equiv` tests share: the pairs they compare (each compared once per session), a bare-metal 3.0
written from 3.0's file, and the brute-force check of a verdict against the test's own paired boots.

The boots here are the tests' own (`boot(..., observe=...)`), not `xenpin.symbolic.equiv.paired_boots`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bootcache import KERNELS, cached_boot
from symbolic_cases import VARIANTS, mutant

from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig
from xenpin.linux.variant import KernelVariant, load_variant
from xenpin.symbolic.equiv import PAIRED, PROOF, EquivResult, compare
from xenpin.symbolic.prove import DEFAULTS

MIB = 1 << 20
SIZES = (64 * MIB, 160 * MIB, 300 * MIB)
SLOW_SIZES = (64 * MIB, 100 * MIB, 200 * MIB, 256 * MIB, 300 * MIB)
READONLY_39 = "(not ioremap and pgt_buf_start <= pfn < pgt_buf_end) or (ioremap and pfn != pgt_buf_end - 1)"
PAIRS: dict[tuple[str, str], tuple[KernelVariant, KernelVariant]] = {
    ("2.6.39", "2.6.39-inline"): (VARIANTS["2.6.39"], VARIANTS["2.6.39-inline"]),
    ("3.1", "3.1 writable=false"): (VARIANTS["3.1"], mutant("3.1", writable="false")),
    ("3.0", "3.0 writable=false"): (VARIANTS["3.0"], mutant("3.0", writable="false")),
    ("2.6.39-rc5", "bisect-92bdaef7b2c5"): (VARIANTS["2.6.39-rc5"], VARIANTS["bisect-92bdaef7b2c5"]),
    ("3.1", "3.1-native"): (VARIANTS["3.1"], VARIANTS["3.1-native"]),
    ("2.6.37", "2.6.38"): (VARIANTS["2.6.37"], VARIANTS["2.6.38"]),
    ("3.1", "3.1 writable from start"): (VARIANTS["3.1"], mutant("3.1", writable="pgt_buf_start <= pfn < pgt_buf_top")),
    ("3.1", "3.1 reserve to end"): (VARIANTS["3.1"], mutant("3.1", reserve="pgt_buf_start <= pfn <= pgt_buf_end")),
    ("3.1", "3.1 writable to top"): (VARIANTS["3.1"], mutant("3.1", writable="pgt_buf_end <= pfn <= pgt_buf_top")),
    ("2.6.39", "2.6.39 reserve to top"): (VARIANTS["2.6.39"], mutant("2.6.39", reserve="pgt_buf_start <= pfn < pgt_buf_top")),
    ("2.6.39", "2.6.39 readonly to end"): (VARIANTS["2.6.39"], mutant("2.6.39", readonly=READONLY_39)),
    ("3.1-native", "3.1-native reserve from start + 1"): (VARIANTS["3.1-native"], mutant("3.1-native", reserve="pgt_buf_start < pfn < pgt_buf_end")),
    ("2.6.39-native", "2.6.39-native reserve to end"): (VARIANTS["2.6.39-native"], mutant("2.6.39-native", reserve="pgt_buf_start <= pfn <= pgt_buf_end")),
}  # fmt: skip


@cache
def compared(name_a: str, name_b: str, sizes: tuple[int, ...] = SIZES) -> EquivResult:
    """`compare` of a pair of PAIRS, once per session."""
    a, b = PAIRS[(name_a, name_b)]
    return compare(a, b, sizes=sizes)


def native_3_0(folder: Path) -> KernelVariant:
    """3.0 on bare metal: 3.0's file with the platform's policies and without the Xen-only code."""
    replaced = {
        "name": 'name = "3.0-native"',
        "platform": 'platform = "native"',
        "readonly": 'readonly = "false"',
        "writable": 'writable = "false"',
    }
    out = []
    for line in (KERNELS / "3.0.toml").read_text().splitlines():
        key = line.split("=")[0].strip()
        if key not in ("xen_setup_kernel_pagetable", "xen_memory_setup"):
            out.append(replaced.get(key, line))
    path = folder / "3.0-native.toml"
    path.write_text("\n".join(out) + "\n")
    return load_variant(path)


def machine(v: KernelVariant, mem: int) -> BootConfig:
    return BootConfig(role="domU" if v.xen else "native", mem_bytes=mem)


def differ(a: KernelVariant, b: KernelVariant, ca: BootConfig, cb: BootConfig) -> bool:
    """Do the two boots leave something different: the outcome, or on a page either touched its PTE, its
    reservation, or (both Xen) its pin?"""
    ra, rb = cached_boot(a, ca), cached_boot(b, cb)
    if set(ra.left) != set(rb.left):  # each must show the pages only the other touched
        pages = set(ra.left) | set(rb.left)
        ra, rb = boot(a, ca, observe=pages), boot(b, cb, observe=pages)
    pins = a.xen and b.xen
    seen = [(ra.left[p], rb.left[p]) if pins else (ra.left[p][:2], rb.left[p][:2]) for p in ra.left]
    return ra.outcome != rb.outcome or any(x != y for x, y in seen)


def check_against_boots(r: EquivResult, sizes: tuple[int, ...]) -> None:
    """The verdict `r` agrees with paired boots at `sizes` (module docstring of test_equiv_boots.py)."""
    a, b = r.a, r.b
    if r.verdict == "equivalent":
        assert r.method == PROOF
        for mem in sizes:
            assert not differ(a, b, machine(a, mem), machine(b, mem)), (a.name, b.name, mem)
        return
    if r.verdict == "different":
        if r.witness is not None:
            assert differ(a, b, r.witness.config(), r.witness.config())
            usual = a.xen and all(r.witness[n] == DEFAULTS[n] for n in ("kernel", "ramdisk", "slack"))
            smaller = [m for m in sizes if m < r.mem_bytes] if usual and "perhaps" not in r.detail else []
        else:
            assert r.method == PAIRED
            assert differ(a, b, machine(a, r.mem_bytes), machine(b, r.mem_bytes))
            smaller = [m for m in r.sizes if m < r.mem_bytes]
        for mem in smaller:  # minimised: nothing smaller differs
            assert not differ(a, b, machine(a, mem), machine(b, mem)), (a.name, b.name, mem)
        return
    if r.method == PAIRED:  # unknown after paired boots: the sizes it booted agree
        assert r.sizes and "not a proof" in r.detail
        for mem in r.sizes:
            assert not differ(a, b, machine(a, mem), machine(b, mem))
