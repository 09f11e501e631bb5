"""`xenpin equiv`: the seed's rejected inline alternative is the hook; real differences are found at the
smallest machine and replay; the hook's RW half matters for a high buffer only; pairs the closed form cannot
compare go to paired boots, which never say `equivalent`."""

from __future__ import annotations

import z3
from equiv_cases import compared
from symbolic_cases import KERNEL, RAMDISK, SLACK, VARIANTS, mutant

from xenpin.symbolic import equiv
from xenpin.symbolic.equiv import PAIRED, PROOF, compare, queries
from xenpin.symbolic.prove import defaults
from xenpin.symbolic.solver import check
from xenpin.symbolic.walk import c

MIB = 1 << 20
RW_FREE, RO_FREE = (True, False, False), (False, False, False)


def test_the_inline_alternative_is_equivalent_to_the_hook() -> None:
    r = compared("2.6.39", "2.6.39-inline")
    assert (r.verdict, r.method, r.detail) == ("equivalent", PROOF, "")
    assert "pin" in r.compared and "make_lowmem_page_readonly" in r.compared


def _replayed(r) -> tuple:
    return r.replay_a.left[r.pfn], r.replay_b.left[r.pfn]


def test_an_off_by_one_in_the_hook_is_distinguished_and_replays() -> None:
    hook, off = VARIANTS["2.6.39"], mutant("2.6.39", writable="pgt_buf_end + 1 <= pfn < pgt_buf_top")
    r = compare(hook, off)
    assert r.verdict == "different" and r.method == PROOF
    assert "RW, free in 2.6.39, RO, free in 2.6.39*" in r.detail and "ok against kernel-fault" in r.detail
    w = r.witness
    assert (w["nr"], w["kernel"], w["ramdisk"], w["slack"], w.call) == (0x4000, KERNEL, RAMDISK, SLACK, 0)
    assert r.pfn == r.replay_a.buffers[0].pgt_buf_end  # exactly the page the off-by-one skips
    assert _replayed(r) == (RW_FREE, RO_FREE)  # RW and free with the hook, RO and free without
    assert r.replay_b.outcome == "kernel-fault" and r.replay_b.failure.violates == "spare_writable"
    # the smallest: no smaller guest with the default image is distinguished by any query
    for q in queries(hook, off):
        p = q.terms.params
        assert check(z3.And(q.formula, defaults(q), z3.ULT(p.nr, c(w["nr"])))).status == "unsat", q.what


def test_with_a_low_buffer_the_hooks_rw_half_changes_nothing() -> None:
    """3.1 puts the buffer below the kernel, where Xen's tables already map it RW and the walk keeps those PTEs:
    making [end, top) RW again is a no-op, so even `writable = false` is equivalent."""
    r = compared("3.1", "3.1 writable=false")
    assert (r.verdict, r.method, r.detail) == ("equivalent", PROOF, "")


def test_with_a_high_buffer_the_hooks_rw_half_is_what_makes_the_tail_writable() -> None:
    """Released 3.0 places the buffer high: without the RW half the spare tail stays read-only, from the
    smallest guest on. (An instance of a lemma about a call not made once hid this below 4 GiB.)"""
    r = compared("3.0", "3.0 writable=false")
    assert r.verdict == "different" and "RO, free in 3.0*" in r.detail
    assert (r.witness["nr"], r.call, r.pfn) == (0x4000, 0, r.replay_a.buffers[0].pgt_buf_end)
    assert _replayed(r) == (RW_FREE, RO_FREE)


def test_a_deferred_restore_goes_to_paired_boots_which_never_say_equivalent() -> None:
    """2.6.39-rc5 and rc6 share the walk, but rc6's mark_rw_past_pgt makes the tail RW after the call, where
    the closed form does not follow: by the end of a small boot both leave the same, and that is `unknown`."""
    r = compare(VARIANTS["2.6.39-rc5"], VARIANTS["2.6.39-rc6"], sizes=(64 * MIB, 128 * MIB))
    assert (r.verdict, r.method, r.sizes) == ("unknown", PAIRED, (64 * MIB, 128 * MIB))
    assert "pagetable_reserve" in r.detail and "not a proof" in r.detail


def test_variants_the_closed_form_cannot_compare_go_to_paired_boots() -> None:
    for a, b, why in (
        ("2.6.38", "3.0", "shape"),
        ("2.6.39", "2.6.39-native", "platforms"),
        ("3.1", "3.9", "shape"),
        ("2.6.37", "2.6.38", "code differs (xen_memory_setup)"),
    ):
        r = compare(VARIANTS[a], VARIANTS[b], sizes=(64 * MIB,))
        assert r.method == PAIRED and r.verdict != "equivalent", (a, b)
        assert r.verdict == "different" or why in r.detail, (a, b, r.detail)


def test_a_difference_no_replay_confirms_is_unknown(monkeypatch) -> None:
    """The closed form's distinguishing machine is shown only if booting both variants on it differs."""
    real = equiv.paired_boots
    monkeypatch.setattr(equiv, "paired_boots", lambda a, b, ca, cb: real(a, a, ca, ca))
    monkeypatch.setattr(equiv, "MAX_REPLAYS", 1)
    r = compare(VARIANTS["3.0"], mutant("3.0", writable="false"))
    assert r.verdict == "unknown" and "no replay confirms it" in r.detail and r.witness is None
    assert "domU of 0x4000000 bytes" in r.detail and "not replayed (at most 1)" in r.detail


def test_an_equivalence_that_rests_on_a_reservation_it_does_not_make_is_unknown() -> None:
    """Both reserve from pgt_buf_start + 1 (so they agree on every page of either call), but call 1's closed
    form assumes call 0 reserves [start, end): not `equivalent`."""
    rule = "pgt_buf_start + 1 <= pfn < pgt_buf_end"
    r = compare(mutant("2.6.39", reserve=rule), mutant("2.6.39-inline", reserve=rule))
    assert r.verdict == "unknown" and "violates live_reserved in call 0" in r.detail
