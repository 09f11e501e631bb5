"""What the symbolic tests share: the shipped variants and their walk shapes, machines, cached boots, the
per-call reading of a boot (`boot_violates`), mutant policies, and the marker for slow tests.

Everything is derived from `models/kernels/*.toml`, so a variant added there is covered without a test change.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from bootcache import NAMES, cached_boot, variant
from hypothesis import strategies as st

from xenpin.linux.boot import BootResult
from xenpin.linux.layout import DEFAULT_KERNEL_BYTES, DEFAULT_RAMDISK_BYTES, XEN_SLACK_BYTES, BootConfig
from xenpin.linux.policy import parse_policy
from xenpin.linux.variant import BUFFER_VARS, READONLY_VARS, KernelVariant
from xenpin.symbolic import form
from xenpin.symbolic.form import Shape, shape_of
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

MIB, GIB = 1 << 20, 1 << 30
LIMITS = {"rlimit": DEFAULT_RLIMIT, "timeout_s": DEFAULT_TIMEOUT_S}
VARIANTS: dict[str, KernelVariant] = {name: variant(name) for name in NAMES}
XEN = tuple(n for n in NAMES if VARIANTS[n].xen)
NATIVE = tuple(n for n in NAMES if not VARIANTS[n].xen)
BUFFERED_XEN = tuple(n for n in XEN if VARIANTS[n].placement != "mapped")  # 3.9 has no pgt_buf buffer
SHAPES: dict[Shape, tuple[str, ...]] = {}
for _name in NAMES:
    SHAPES.setdefault(shape_of(VARIANTS[_name]), ())
    SHAPES[shape_of(VARIANTS[_name])] += (_name,)
SHAPE_LIST = sorted(SHAPES, key=lambda s: s.key)
REPRESENTATIVE = {shape: names[0] for shape, names in SHAPES.items()}  # one variant per walk shape

KERNEL = -(-DEFAULT_KERNEL_BYTES // 4096)
RAMDISK = -(-DEFAULT_RAMDISK_BYTES // 4096)
SLACK = XEN_SLACK_BYTES >> 12

slow = pytest.mark.slow
skip_unless_slow = pytest.mark.skipif(os.environ.get("XENPIN_SLOW") != "1", reason="slow: set XENPIN_SLOW=1")


def domu(nr: int, kernel: int = KERNEL, ramdisk: int = RAMDISK, slack: int = SLACK) -> BootConfig:
    """A domU of `nr` pages with a kernel image, ramdisk and E820 slack of so many pages."""
    return BootConfig(
        role="domU", mem_bytes=nr << 12, kernel_bytes=kernel << 12, ramdisk_bytes=ramdisk << 12,
        slack_bytes=slack << 12,
    )  # fmt: skip


def boot_of(v: KernelVariant | str, config: BootConfig) -> BootResult:
    """A boot shared by every test that asks for the same (variant, machine)."""
    return cached_boot(VARIANTS[v] if isinstance(v, str) else v, config)


@st.composite
def xen_machines(draw, max_nr: int = (2 * GIB) >> 12, shape: Shape | None = None):
    """(nr, kernel, ramdisk, slack) in pages, spread over the domain's boxes, with the defaults often; the
    caller filters to its variant's domain (`closed_form.in_domain`)."""
    nr = draw(
        st.one_of(
            st.integers(form.DOMAIN_MIN_PFN, max_nr),
            st.integers(form.DOMAIN_MIN_PFN >> 9, max_nr >> 9).map(lambda c: c << 9),  # 2 MiB multiples
            st.integers(1, max_nr >> 18).map(lambda g: (g << 18) + 513),  # just past a GiB and a chunk
        )
    )
    kernel = draw(st.one_of(st.just(KERNEL), st.integers(*form.KERNEL_PAGES)))
    ramdisk = draw(st.one_of(st.just(RAMDISK), st.just(0), st.integers(*form.RAMDISK_PAGES)))
    slack = draw(st.one_of(st.just(SLACK), st.just(0), st.integers(*form.SLACK_PAGES)))
    return nr, kernel, ramdisk, slack


# --- the boot walk, read per init_memory_mapping call ------------------------------------------------------

WALK_PROPERTIES = ("buffer_fits", "alias_writable", "no_rw_alias")


def failed_call(r: BootResult) -> int | None:
    """The call a failure belongs to: the call it happened in; 2.6.39-rc6's deferred mark_rw_past_pgt the
    call whose buffer it restores; after the walk, the call whose buffer holds the page."""
    f = r.failure
    restores = [s for s in r.steps[: f.step] if s.action not in ("make_lowmem_page_readwrite",)]
    if restores and restores[-1].action == "mark_rw_past_pgt":
        end = restores[-1].pfn
        return next((b.call for b in r.buffers if b.call >= 0 and b.pgt_buf_end == end), None)
    call = r.steps[f.step].call
    if call >= 0:
        return call
    return next((b.call for b in r.buffers if b.call >= 0 and b.pgt_buf_start <= f.pfn < b.pgt_buf_top), None)


def boot_violates(r: BootResult, prop: str, call: int) -> bool | None:
    """Written independently of `prove.violated_in`: did this boot violate `prop` in `call`; None where the
    boot stopped before it could tell."""
    if r.failure is not None and r.failure.violates == prop and failed_call(r) == call:
        return True
    buf = next((b for b in r.buffers if b.call == call), None)
    if buf is None or not buf.judged:
        return None
    if prop == "no_rw_alias" and r.variant.code["pagetable_reserve"] == "2.6.39-rc6":
        # the deferred restore of this buffer is part of it: known once it ran, or the boot finished
        ran = any(s.action == "mark_rw_past_pgt" and s.pfn == buf.pgt_buf_end for s in r.steps)
        return False if ran or r.failure is None else None
    if prop in WALK_PROPERTIES:
        return False
    if prop == "spare_writable":
        return any(buf.pages[p][0] is False for p in buf.spare)
    if prop == "spare_freed":
        return buf.hook_ran and any(buf.pages[p][1] for p in buf.spare)
    assert prop == "live_reserved"
    return any(not buf.pages[p][1] for p in buf.used)


# --- mutant policies ------------------------------------------------------------------------------------------


def mutant(base: str, readonly: str | None = None, reserve: str | None = None, writable: str | None = None):
    """`base` with some of its policies replaced (named after what changed)."""
    v = VARIANTS[base]
    changes: dict[str, object] = {}
    for key, text, variables in (("readonly", readonly, READONLY_VARS), ("reserve", reserve, BUFFER_VARS),
                                 ("writable", writable, BUFFER_VARS)):  # fmt: skip
        if text is not None:
            changes[key] = parse_policy(text, variables)
    sources = {**v.sources, **{k: t for k, t in (("readonly", readonly), ("reserve", reserve),
                                                  ("writable", writable)) if t is not None}}  # fmt: skip
    return dataclasses.replace(v, name=f"{base}*", sources=sources, **changes)


BOUND_LO = ["pgt_buf_start", "pgt_buf_start + 1", "pgt_buf_start - 1", "PFN_PHYS(pgt_buf_start)"]
BOUND_HI = ["pgt_buf_end", "pgt_buf_top", "pgt_buf_end + 1", "pgt_buf_end - 1", "pgt_buf_top - 1",
            "pgt_buf_top + 1", "PFN_PHYS(pgt_buf_top)"]  # fmt: skip
IOREMAP = [
    None,
    "pfn != pgt_buf_end - 1",
    "pfn != pgt_buf_end",
    "pfn != pgt_buf_end - 2",
    "pfn < pgt_buf_end - 1",
]


@st.composite
def readonly_rules(draw) -> str:
    """`mask_rw_pte` rules: the shipped shapes, with off-by-ones, `< end` or `< top`, PFN_PHYS units in one
    bound, and the ioremap clause present, off by one, or missing."""
    lo, hi = draw(st.sampled_from(BOUND_LO)), draw(st.sampled_from(BOUND_HI))
    op = draw(st.sampled_from(["<", "<="]))
    direct = f"not ioremap and {lo} <= pfn {op} {hi}"
    clause = draw(st.sampled_from(IOREMAP))
    return direct if clause is None else f"({direct}) or (ioremap and {clause})"


@st.composite
def interval_rules(draw, lo: list[str], hi: list[str]) -> str:
    a, b = draw(st.sampled_from(lo)), draw(st.sampled_from(hi))
    op = draw(st.sampled_from(["<", "<="]))
    phys = draw(st.booleans())
    if phys:  # the seed's form: both sides in bytes
        return f"PFN_PHYS({a}) <= PFN_PHYS(pfn) {op} PFN_PHYS({b})"
    return f"{a} <= pfn {op} {b}"


def reserve_rules():
    return st.one_of(
        st.just("pgt_buf_start <= pfn < pgt_buf_end"),
        st.just("false"),
        interval_rules(
            ["pgt_buf_start", "pgt_buf_start + 1"], ["pgt_buf_end", "pgt_buf_end - 1", "pgt_buf_top"]
        ),
    )


def writable_rules():
    return st.one_of(
        st.just("false"),
        st.just("pgt_buf_end <= pfn < pgt_buf_top"),
        st.just("PFN_PHYS(pgt_buf_end) <= pfn < PFN_PHYS(pgt_buf_top)"),  # units mixed: bytes against a pfn
        interval_rules(
            ["pgt_buf_end", "pgt_buf_end + 1", "pgt_buf_end - 1", "pgt_buf_start"],
            ["pgt_buf_top", "pgt_buf_top - 1"],
        ),
    )
