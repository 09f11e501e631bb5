"""The early-boot walk against history: each shipped variant boots (or fails) as the real kernel did, and for the
reason the reference notes and the seed give; the seed's hook makes the spare tail RW; the hook's guard; and
reserved pages are never handed out.

The 6 GiB cases (two `init_memory_mapping` calls; 2.6.38's failure needs the second one) take ~5-7 s each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from xenpin.linux.boot import BootResult, BootWalk, direct_map_va
from xenpin.linux.layout import FOUR_GIB_PFN, find_early_table_space_pages, pfn_phys
from xenpin.linux.variant import PROPERTIES, KernelVariant, load_variant

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
VARIANTS: dict[str, KernelVariant] = {p.stem: load_variant(p) for p in sorted(KERNELS.glob("*.toml"))}
MiB, GiB = 1 << 20, 1 << 30
SMALL_SIZES = {"64M": 64 * MiB, "512M": 512 * MiB, "1G": 1 * GiB, "2G": 2 * GiB}
SIX_G = 6 * GiB
BIG_VARIANTS = ("2.6.38", "2.6.39-rc", "3.0", "2.6.39")

# What each version did at each size (the history the model must reproduce).
FAILS_ALWAYS = {"2.6.39-rc": "kernel-fault"}  # [end, top) left RO, no hook
FAILS_ABOVE_4G = {"2.6.38": "xen-rejected"}  # RW alias of a spare page in the second call's long tail


def expected_outcome(name: str, nbytes: int) -> str:
    if name in FAILS_ALWAYS:
        return FAILS_ALWAYS[name]
    if name in FAILS_ABOVE_4G and nbytes > 4 * GiB:
        return FAILS_ABOVE_4G[name]
    return "ok"


@dataclass(frozen=True)
class Run:
    """A boot's result plus what the final direct map says about each buffer page (the walk is dropped)."""

    result: BootResult
    mapped_rw: dict[int, bool | None]  # every pfn of every buffer: RW / RO / not mapped, after the boot


@cache
def run(name: str, nbytes: int) -> Run:
    walk = BootWalk(VARIANTS[name], nbytes)
    result = walk.run()
    pages = {p for b in result.buffers for p in range(b.pgt_buf_start, b.pgt_buf_top)}
    return Run(result, {p: walk._mapped_rw(p) for p in pages})


def _cases() -> list:
    cases = [pytest.param(n, s, id=f"{n}@{label}") for label, s in SMALL_SIZES.items() for n in VARIANTS]
    cases += [pytest.param(n, SIX_G, id=f"{n}@6G") for n in BIG_VARIANTS]
    return cases


def _steps(result: BootResult, action: str, pfn: int | None = None) -> list:
    return [s for s in result.steps if s.action == action and (pfn is None or s.pfn == pfn)]


# ------------------------------------------------------------------------------------ the history table


@pytest.mark.parametrize(("name", "nbytes"), _cases())
def test_history(name: str, nbytes: int) -> None:
    r = run(name, nbytes).result
    expected = expected_outcome(name, nbytes)
    assert r.outcome == expected, r.failure
    assert r.mismatches() == []  # every `proved` verdict holds; the counterexamples are the expected failures
    assert len(r.buffers) == (2 if nbytes > 4 * GiB else 1)
    if expected == "ok":
        assert r.failure is None
        assert r.properties == dict.fromkeys(PROPERTIES, True)
    elif expected == "xen-rejected":
        _check_rw_alias_pin_failure(r)
    else:
        _check_ro_leftover_fault(r)


def _check_rw_alias_pin_failure(r: BootResult) -> None:
    """2.6.38 above 4 GiB: `PIN_L1_TABLE(p)` fails because p got an RW direct-map PTE, in a PTE page that was
    then pinned, before p was allocated as a table (the seed's first failure)."""
    f = r.failure
    p = f.pfn
    assert f.outcome == "xen-rejected"
    assert f.operation == f"pin_l1 {p:#x}"
    assert f.errno == "EINVAL"
    assert f.xen_log == (
        f"Bad type (saw 7400000000000001 != exp 1000000000000000) for mfn {p:x} (pfn {p:x})",
        f"Error while pinning mfn {p:x}",
    )
    assert f.bug_site == "arch/x86/xen/mmu.c pin_pagetable_pfn"
    assert f.message == "kernel BUG at arch/x86/xen/mmu.c pin_pagetable_pfn"
    assert f.step == len(r.steps) - 1 and r.steps[f.step].action == "xen-rejected"
    # only in the second call (above 4 GiB), whose buffer is sized for [0, end): a long spare tail
    second = r.buffers[1]
    assert r.steps[f.step].call == 1
    assert second.range_start == FOUR_GIB_PFN
    assert second.pgt_buf_start <= p < second.pgt_buf_end <= second.pgt_buf_top
    # the history of p, from the steps
    (alloc,) = _steps(r, "alloc_low_page", p)
    rw_ptes = [s for s in _steps(r, "set_pte", p) if s.index < alloc.index]
    assert rw_ptes, "p had no direct-map PTE before it was allocated"
    (pte,) = rw_ptes
    assert re.search(r"\bRW\b", pte.detail), pte.detail
    assert pte.pgt_buf_end <= p  # when its PTE was written, p was spare: `< end` did not make it RO
    # the PTE page holding p's entry: the page being filled, i.e. the last allocated before the set_pte
    pte_page = [s for s in r.steps[: pte.index] if s.action == "alloc_low_page"][-1].pfn
    pins = [s.index for s in _steps(r, "pin_pagetable_pfn", pte_page)]
    assert any(pte.index < i < alloc.index for i in pins), "p's PTE page was not pinned in between"
    # make_lowmem_page_readonly(p) could not help: p's PMD subtree is not linked yet
    (ro,) = _steps(r, "make_lowmem_page_readonly", p)
    assert ro.detail == "no PTE reaches it yet: nothing done"
    assert r.steps[f.step - 1].action == "pin_pagetable_pfn" and r.steps[f.step - 1].pfn == p
    assert r.properties == {**dict.fromkeys(PROPERTIES, None), "no_rw_alias": False}
    # the first call, sized for [0, 4 GiB), went through
    assert r.buffers[0].hook_ran


def _check_ro_leftover_fault(r: BootResult) -> None:
    """2.6.39-rc: pins succeed, but `[end, top)` goes back to the allocator still RO; the first reuse faults."""
    f = r.failure
    first = r.buffers[0]
    assert f.outcome == "kernel-fault"
    assert f.pfn == first.pgt_buf_end  # the first freed page of the first call's buffer
    assert f.message == f"BUG: unable to handle kernel paging request at {direct_map_va(f.pfn):x}"
    assert f.message.startswith("BUG: unable to handle kernel paging request at ffff8800")
    assert f.reason == f"freed page {f.pfn:#x} is still mapped read-only"
    assert f.errno is None and f.xen_log == () and f.operation == ""
    assert r.properties["spare_writable"] is False
    assert all(r.properties[p] is True for p in PROPERTIES if p != "spare_writable")
    assert not _steps(r, "xen-rejected")
    assert _steps(r, "reuse") == []  # the very first page handed out faults


# ------------------------------------------------------------------------------------ the seed's hook


def test_hook_makes_spare_rw_2_6_39() -> None:
    """`xen_mapping_pagetable_reserve`: reserve [start, end), then [end, top) RW again, one page at a time."""
    run_ = run("2.6.39", 1 * GiB)
    r = run_.result
    (buf,) = r.buffers
    assert len(buf.spare) > 0 and buf.hook_ran
    assert all(run_.mapped_rw[p] is True for p in buf.spare)
    assert all(run_.mapped_rw[p] is False for p in buf.used)  # live tables stay RO
    (hook,) = _steps(r, "pagetable_reserve")
    # the hook takes byte addresses: PFN_PHYS(pgt_buf_start), PFN_PHYS(pgt_buf_end)
    assert hook.detail == f"[{pfn_phys(buf.pgt_buf_start):#x}, {pfn_phys(buf.pgt_buf_end):#x})"
    made_rw = [s.pfn for s in _steps(r, "make_lowmem_page_readwrite")]
    assert made_rw == list(buf.spare)  # ascending, `while (end < PFN_PHYS(pgt_buf_top))`
    # then the allocator hands out exactly the spare pages, and writing them works
    assert [s.pfn for s in _steps(r, "reuse")] == list(buf.spare)


def test_no_hook_leaves_spare_ro_2_6_39_rc() -> None:
    run_ = run("2.6.39-rc", 1 * GiB)
    (buf,) = run_.result.buffers
    assert len(buf.spare) > 0
    assert all(run_.mapped_rw[p] is False for p in buf.spare)
    assert _steps(run_.result, "make_lowmem_page_readwrite") == []


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("nbytes", [36 * MiB], ids=["36M"])
def test_guard_no_hook_when_nothing_allocated(name: str, nbytes: int) -> None:
    """36 MiB is all mapped by Xen's start-of-day tables: no table page is allocated, so no hook call at all
    (`if (pgt_buf_end > pgt_buf_start)`)."""
    r = run(name, nbytes).result
    assert r.outcome == "ok", r.failure
    (buf,) = r.buffers
    assert buf.pgt_buf_end == buf.pgt_buf_start
    assert not buf.hook_ran
    assert _steps(r, "pagetable_reserve") == [] and _steps(r, "alloc_low_page") == []
    assert r.properties["spare_writable"] is True  # the skipped hook was not needed: [start, top) stayed RW


@pytest.mark.parametrize(("name", "nbytes"), _cases())
def test_hook_called_iff_pages_allocated(name: str, nbytes: int) -> None:
    r = run(name, nbytes).result
    hooks = _steps(r, "pagetable_reserve")
    reached = [b for b in r.buffers if r.failure is None or b.call < r.steps[r.failure.step].call]
    for b in reached:
        assert b.hook_ran == (b.pgt_buf_end > b.pgt_buf_start)
        assert [h.call for h in hooks if h.call == b.call] == ([b.call] if b.hook_ran else [])
    if VARIANTS[name].placement == "mapped":  # 3.9: the hook is gone, tables are reserved one by one
        assert hooks == [] and not any(b.hook_ran for b in r.buffers)
        assert all(b.pgt_buf_start == b.pgt_buf_end == b.pgt_buf_top for b in r.buffers)
        assert all(s.pfn < r.layout.max_pfn_mapped for s in _steps(r, "alloc_low_page"))


@pytest.mark.parametrize(("name", "nbytes"), _cases())
def test_reserved_pages_never_handed_out(name: str, nbytes: int) -> None:
    r = run(name, nbytes).result
    reused = {s.pfn for s in _steps(r, "reuse")}
    for b in r.buffers:
        assert reused.isdisjoint(b.used)
    if r.outcome == "ok" and VARIANTS[name].placement != "mapped":
        assert reused == {p for b in r.buffers for p in b.spare}


@pytest.mark.parametrize("nbytes", [64 * MiB, 1 * GiB], ids=["64M", "1G"])
def test_placement_regimes(nbytes: int) -> None:
    """R1 (high): the buffer ends at the end of the range it maps; R2 (low): below max_pfn_mapped."""
    for name, v in VARIANTS.items():
        r = run(name, nbytes).result
        (b,) = r.buffers
        if v.placement == "high":
            assert b.pgt_buf_top == b.range_end, name
        elif v.placement == "low":
            assert b.pgt_buf_top <= r.layout.max_pfn_mapped, name
        assert b.pgt_buf_top - b.pgt_buf_start in (0, find_early_table_space_pages(b.range_end)), name
