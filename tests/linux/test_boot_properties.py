"""Property-based tests of the early-boot walk (settings from the active Hypothesis profile, fewer examples:
each example is a whole boot).

(a) Xen's safety invariants hold after every Xen interaction of a boot, whatever the kernel variant does;
(b) every failure the walk reports is explained: a Xen rejection names a real hypercall, an errno and Xen's own
    log lines; a fault names the page and why; the last step is the failure;
(c) mutated policies (off-by-one bounds of the shipped rules) give results consistent with the mechanism: e.g. a
    hook that starts at `pgt_buf_end + 1` leaves `pgt_buf_end` RO, so `spare_writable` is False.

Memory sizes stay small (64 MiB .. 1 GiB, 2 MiB steps; ≤ 128 MiB where invariants are checked: one
`check_invariants` costs ~0.1 s at 64 MiB and ~0.4 s at 128 MiB).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xenpin.linux.boot import OUTCOMES, BootResult, BootWalk, boot, direct_map_va
from xenpin.linux.policy import parse_policy
from xenpin.linux.variant import BUFFER_VARS, PROPERTIES, READONLY_VARS, KernelVariant, load_variant
from xenpin.xen.invariants import check_invariants

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
VARIANTS: dict[str, KernelVariant] = {p.stem: load_variant(p) for p in sorted(KERNELS.glob("*.toml"))}
XEN_VARIANTS = sorted(n for n, v in VARIANTS.items() if v.xen)
MiB = 1 << 20

skip_unless_slow = pytest.mark.skipif(os.environ.get("XENPIN_SLOW") != "1", reason="slow: set XENPIN_SLOW=1")


def mem(lo_mib: int, hi_mib: int) -> st.SearchStrategy[int]:
    return st.integers(lo_mib // 2, hi_mib // 2).map(lambda k: k * 2 * MiB)


# --------------------------------------------------------------------------- failure shapes (used by all)

HYPERCALLS = ("pin_l1", "pin_l2", "pin_l3", "pin_l4", "unpin", "mmu_update", "update_va_mapping", "write")
XEN_LOG = re.compile(
    r"Bad type \(saw [0-9a-f]{16} != exp [0-9a-f]{16}\) for mfn [0-9a-f]+ \(pfn [0-9a-f]+\)"
    r"|Error while pinning mfn [0-9a-f]+"
    r"|Error getting mfn [0-9a-f]+ \(pfn [0-9a-f]+\) from L1 entry [0-9a-f]{16} for l1e_owner=\d+, pg_owner=\d+"
    r"|Error while validating mfn [0-9a-f]+ \(pfn [0-9a-f]+\) for type [0-9a-f]{16}: caf=[0-9a-f]{8,} taf=[0-9a-f]+"
    r"|Failure in alloc_l[1-4]_table: entry \d+"
    r"|Mfn [0-9a-f]+ already pinned"
    r"|Attempt to create linear p\.t\. with write perms"
    r"|Bad L[1-4] flags [0-9a-f]+"
)
PANICS = (
    "alloc_low_page: ran out of memory",
    "alloc_low_pages: can not alloc memory",
    "Cannot find space for the kernel page tables",
)


def check_result_shape(r: BootResult) -> None:
    """Every outcome is one of the four, and a failure carries its own explanation."""
    assert r.outcome in OUTCOMES
    assert (r.failure is None) == (r.outcome == "ok")
    assert set(r.properties) == set(PROPERTIES)
    if r.failure is None:
        assert all(v is not None for v in r.properties.values())
        return
    f = r.failure
    assert f.outcome == r.outcome
    last = r.steps[-1]
    assert f.step == last.index == len(r.steps) - 1
    assert (last.action, last.pfn, last.detail) == (f.outcome, f.pfn, f.message)
    assert f.reason, f
    if f.outcome == "xen-rejected":
        # the validator's own rejection: a real operation, an errno, Xen's log lines, and the guest's BUG()
        op, _, arg = f.operation.partition(" ")
        assert op in HYPERCALLS, f.operation
        if op.startswith("pin_l"):
            assert arg == f"{f.pfn:#x}"
        elif op == "update_va_mapping":
            assert arg == f"{direct_map_va(f.pfn):#x}"
        else:
            assert re.fullmatch(r"0x[0-9a-f]+\[\d+\]", arg), f.operation
        assert f.errno is not None and re.fullmatch(r"E[A-Z]+", f.errno), f.errno
        assert f.xen_log, f
        for line in f.xen_log:
            assert XEN_LOG.fullmatch(line), line
        assert f.bug_site and f.message == f"kernel BUG at {f.bug_site}"
        assert r.properties == {**dict.fromkeys(PROPERTIES, None), "no_rw_alias": False}
    else:
        assert f.errno is None and f.xen_log == () and f.operation == ""
        assert r.properties["no_rw_alias"] is not False
        if f.outcome == "kernel-fault":
            assert re.fullmatch(r"BUG: unable to handle kernel paging request at [0-9a-f]{16}", f.message)
        else:
            assert f.message in PANICS
            assert r.properties["buffer_fits"] is (False if "ran out" in f.message else None)


def check_consistency(r: BootResult) -> None:
    """Outcome and properties agree: a boot that went through has every property the reuse phase relies on."""
    p = r.properties
    if r.outcome == "ok":
        assert p["buffer_fits"] and p["no_rw_alias"] and p["live_reserved"], p
        if p["spare_freed"]:  # every spare page was handed out and written: so it was RW
            assert p["spare_writable"], p
    if p["live_reserved"] is False:
        assert r.outcome == "kernel-fault"  # a live table page goes to the allocator


# --------------------------------------------------------------------------- (a) invariants


def _boot_checking(variant: KernelVariant, nbytes: int, checkpoints: set[int]) -> tuple[BootResult, int]:
    """Boot, checking the invariants after the Xen interactions numbered in `checkpoints`, then at the end."""
    seen = [0]

    def on_step(w: BootWalk) -> None:
        if seen[0] in checkpoints:
            assert check_invariants(w.hv) == [], f"after Xen interaction {seen[0]}"
        seen[0] += 1

    walk = BootWalk(variant, nbytes, on_step=on_step)
    result = walk.run()
    # after the last interaction (a rejected one is rolled back: the state is still safe)
    assert check_invariants(walk.hv) == []
    return result, seen[0]


@settings(max_examples=10)
@given(
    name=st.sampled_from(XEN_VARIANTS),
    nbytes=mem(64, 128),
    checkpoints=st.sets(st.integers(0, 120), max_size=3),
)
def test_invariants_hold_during_boot(name: str, nbytes: int, checkpoints: set[int]) -> None:
    result, interactions = _boot_checking(VARIANTS[name], nbytes, checkpoints)
    assert interactions > 0
    check_result_shape(result)


@pytest.mark.parametrize("name", XEN_VARIANTS)
@pytest.mark.parametrize("nbytes", [64 * MiB, 100 * MiB], ids=["64M", "100M"])
@pytest.mark.slow
@skip_unless_slow
def test_invariants_hold_after_every_interaction(name: str, nbytes: int) -> None:
    """All of (a), exhaustively at two sizes (~7 s per boot at 64 MiB)."""
    _boot_checking(VARIANTS[name], nbytes, set(range(10_000)))


# --------------------------------------------------------------------------- mutated policies

RO_LO = ("pgt_buf_start", "pgt_buf_start + 1")
RO_HI = ("pgt_buf_end", "pgt_buf_end + 1", "pgt_buf_top - 1", "pgt_buf_top")
IOREMAP = ("", " or (ioremap and pfn != pgt_buf_end - 1)", " or (ioremap and pfn != pgt_buf_end)")
RES_HI = ("pgt_buf_end - 1", "pgt_buf_end", "pgt_buf_end + 1", "pgt_buf_top")
WR_LO = (None, "pgt_buf_end - 1", "pgt_buf_end", "pgt_buf_end + 1")  # None: no hook (`false`)
WR_HI = ("pgt_buf_top - 1", "pgt_buf_top")


@dataclasses.dataclass(frozen=True)
class Mutant:
    placement: str
    ro_lo: str
    ro_hi: str
    ioremap: str
    res_hi: str
    wr_lo: str | None
    wr_hi: str

    @property
    def readonly(self) -> str:
        return f"(not ioremap and {self.ro_lo} <= pfn < {self.ro_hi}){self.ioremap}"

    @property
    def reserve(self) -> str:
        return f"pgt_buf_start <= pfn < {self.res_hi}"

    @property
    def writable(self) -> str:
        return "false" if self.wr_lo is None else f"{self.wr_lo} <= pfn < {self.wr_hi}"

    def variant(self) -> KernelVariant:
        base = VARIANTS["2.6.39"]
        return dataclasses.replace(
            base,
            name="mutant",
            placement=self.placement,
            readonly=parse_policy(self.readonly, READONLY_VARS),
            reserve=parse_policy(self.reserve, BUFFER_VARS),
            writable=parse_policy(self.writable, BUFFER_VARS),
            sources={"readonly": self.readonly, "reserve": self.reserve, "writable": self.writable},
        )


mutants = st.builds(
    Mutant,
    placement=st.sampled_from(("high", "low")),
    ro_lo=st.sampled_from(RO_LO),
    ro_hi=st.sampled_from(RO_HI),
    ioremap=st.sampled_from(IOREMAP),
    res_hi=st.sampled_from(RES_HI),
    wr_lo=st.sampled_from(WR_LO),
    wr_hi=st.sampled_from(WR_HI),
)
SEED = Mutant("high", "pgt_buf_start", "pgt_buf_top", "", "pgt_buf_end", "pgt_buf_end", "pgt_buf_top")


def test_seed_mutant_is_the_seed() -> None:
    """The unmutated point of the mutant space behaves exactly like the shipped 2.6.39."""
    a, b = boot(SEED.variant(), 64 * MiB), boot(VARIANTS["2.6.39"], 64 * MiB)
    assert (a.outcome, a.properties, a.steps) == (b.outcome, b.properties, b.steps)


# --------------------------------------------------------------------------- (b) failures are explained


@settings(max_examples=15)
@given(
    variant=st.one_of(st.sampled_from(list(VARIANTS.values())), mutants.map(Mutant.variant)),
    nbytes=mem(64, 512),
)
# a rejected pin (RW alias of an L1), a rejected update_va_mapping (the hook makes a live table RW), an RO
# fixmap alias, and running out of buffer are all reached:
@example(variant=dataclasses.replace(SEED, ro_lo="pgt_buf_start + 1").variant(), nbytes=64 * MiB)
@example(variant=dataclasses.replace(SEED, wr_lo="pgt_buf_end - 1").variant(), nbytes=64 * MiB)
@example(variant=dataclasses.replace(SEED, ioremap=IOREMAP[2]).variant(), nbytes=64 * MiB)
@example(variant=VARIANTS["2.6.39-rc"], nbytes=64 * MiB)
def test_failures_are_explained(variant: KernelVariant, nbytes: int) -> None:
    r = boot(variant, nbytes)
    check_result_shape(r)
    check_consistency(r)


def test_failure_examples_reach_each_kind() -> None:
    """The explicit examples above do produce the failures they are there for."""
    cases = {
        "pin_l1": dataclasses.replace(SEED, ro_lo="pgt_buf_start + 1"),
        "update_va_mapping": dataclasses.replace(SEED, wr_lo="pgt_buf_end - 1"),
        "fixmap": dataclasses.replace(SEED, ioremap=IOREMAP[2]),
    }
    got = {k: boot(m.variant(), 64 * MiB) for k, m in cases.items()}
    assert got["pin_l1"].failure.operation.startswith("pin_l1 ")
    assert got["update_va_mapping"].failure.operation.startswith("update_va_mapping ")
    assert "early_memremap alias" in got["fixmap"].failure.reason
    for r in got.values():
        check_result_shape(r)


# --------------------------------------------------------------------------- (c) mutated policies


@settings(max_examples=15)
@given(m=mutants, nbytes=mem(64, 1024))
@example(m=dataclasses.replace(SEED, wr_lo="pgt_buf_end + 1"), nbytes=64 * MiB)
@example(m=dataclasses.replace(SEED, wr_lo=None), nbytes=64 * MiB)
@example(m=dataclasses.replace(SEED, res_hi="pgt_buf_end - 1"), nbytes=64 * MiB)
@example(m=dataclasses.replace(SEED, res_hi="pgt_buf_top"), nbytes=64 * MiB)
def test_mutated_policies_are_consistent(m: Mutant, nbytes: int) -> None:
    r = boot(m.variant(), nbytes)
    check_result_shape(r)
    check_consistency(r)
    p = r.properties
    if p["spare_writable"] is None:  # the walk stopped before the hook's effect could be judged
        return
    hooked = [b for b in r.buffers if b.hook_ran]
    # the page being filled gets a RO fixmap alias under `pfn != pgt_buf_end`: the first fill faults
    assert m.ioremap != IOREMAP[2]
    # a hook covering all of [end, top) makes the spare tail writable
    if m.wr_lo in ("pgt_buf_end", "pgt_buf_end - 1") and m.wr_hi == "pgt_buf_top":
        assert p["spare_writable"] is True
    # high placement maps the buffer in the call that fills it, so a `< top` rule makes pgt_buf_end RO; a hook
    # starting at end + 1 (or no hook) leaves it RO
    if (
        m.placement == "high"
        and m.ro_hi in ("pgt_buf_top", "pgt_buf_top - 1")
        and m.wr_lo in (None, "pgt_buf_end + 1")
        and any(
            b.pgt_buf_start >= r.layout.max_pfn_mapped and b.pgt_buf_end < b.pgt_buf_top - 1 for b in hooked
        )
    ):
        assert p["spare_writable"] is False
    # the reserve rule decides the reservation properties
    if m.res_hi == "pgt_buf_end - 1":
        assert p["live_reserved"] is False and r.outcome == "kernel-fault"
    else:
        assert p["live_reserved"] is True
    if m.res_hi == "pgt_buf_top" and any(len(b.spare) for b in hooked):
        assert p["spare_freed"] is False
    if m.res_hi in ("pgt_buf_end - 1", "pgt_buf_end"):
        assert p["spare_freed"] is True
