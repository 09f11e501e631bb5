"""`xenpin equiv`: the seed's rejected inline alternative is the hook; real differences are found at the
smallest machine and replay; the hook's RW half matters for a high buffer only."""

from __future__ import annotations

import z3
from symbolic_cases import KERNEL, RAMDISK, SLACK, VARIANTS, mutant

from xenpin.symbolic.equiv import compare
from xenpin.symbolic.obligations import build_equiv
from xenpin.symbolic.prove import defaults
from xenpin.symbolic.solver import check
from xenpin.symbolic.walk import c


def test_the_inline_alternative_is_equivalent_to_the_hook() -> None:
    r = compare(VARIANTS["2.6.39"], VARIANTS["2.6.39-inline"])
    assert (r.verdict, r.detail) == ("equivalent", "")


def _replayed(r) -> tuple:
    return r.replay_a.final_pages[r.pfn], r.replay_b.final_pages[r.pfn]


def test_an_off_by_one_in_the_hook_is_distinguished_and_replays() -> None:
    hook, off = VARIANTS["2.6.39"], mutant("2.6.39", writable="pgt_buf_end + 1 <= pfn < pgt_buf_top")
    r = compare(hook, off)
    assert r.verdict == "different" and r.detail == "read-only in 2.6.39* only"
    w = r.witness
    assert (w["nr"], w["kernel"], w["ramdisk"], w["slack"], w.call) == (0x4000, KERNEL, RAMDISK, SLACK, 0)
    assert r.pfn == r.replay_a.buffers[0].pgt_buf_end  # exactly the page the off-by-one skips
    assert _replayed(r) == ((True, False), (False, False))  # RW and free with the hook, RO and free without
    assert r.replay_b.outcome == "kernel-fault" and r.replay_b.failure.violates == "spare_writable"
    # the smallest: no smaller guest with the default image differs, and no lower page at this one
    eq = build_equiv(hook, off, 0)
    p = eq.terms.params
    assert check(z3.And(eq.formula, defaults(eq), z3.ULT(p.nr, c(w["nr"])))).status == "unsat"
    at = z3.And(eq.formula, p.nr == c(w["nr"]), defaults(eq), z3.ULT(eq.pfn, c(r.pfn)))
    assert check(at).status == "unsat"


def test_with_a_low_buffer_the_hooks_rw_half_changes_nothing() -> None:
    """3.1 puts the buffer below the kernel, where Xen's tables already map it RW and the walk keeps those PTEs:
    making [end, top) RW again is a no-op, so even `writable = false` is equivalent."""
    r = compare(VARIANTS["3.1"], mutant("3.1", writable="false"))
    assert (r.verdict, r.detail) == ("equivalent", "")


def test_with_a_high_buffer_the_hooks_rw_half_is_what_makes_the_tail_writable() -> None:
    """Released 3.0 places the buffer high: without the RW half the spare tail stays read-only, from the
    smallest guest on. (An instance of a lemma about a call not made once hid this below 4 GiB.)"""
    r = compare(VARIANTS["3.0"], mutant("3.0", writable="false"))
    assert r.verdict == "different" and r.detail == "read-only in 3.0* only"
    assert (r.witness["nr"], r.call, r.pfn) == (0x4000, 0, r.replay_a.buffers[0].pgt_buf_end)
    assert _replayed(r) == ((True, False), (False, False))


def test_a_rule_change_between_releases_is_distinguished() -> None:
    """2.6.39-rc5 and rc6 share the walk; rc6's `< pgt_buf_top` leaves the tail RO until mark_rw_past_pgt."""
    r = compare(VARIANTS["2.6.39-rc5"], VARIANTS["2.6.39-rc6"])
    assert r.verdict == "different" and "read-only in 2.6.39-rc6 only" in r.detail
    assert _replayed(r) == ((True, False), (False, False))


def test_variants_of_different_walk_shapes_are_not_compared() -> None:
    for a, b in (
        ("2.6.38", "3.0"),
        ("2.6.39", "2.6.39-native"),
        ("3.1", "3.9"),
        ("2.6.39-rc1", "2.6.39-rc5"),
    ):
        r = compare(VARIANTS[a], VARIANTS[b])
        assert r.verdict == "unknown" and "differ in shape" in r.detail, (a, b)


def test_an_equivalence_that_rests_on_a_reservation_it_does_not_make_is_unknown() -> None:
    """Both reserve from pgt_buf_start + 1 (so they agree on every page of either call), but call 1's closed
    form assumes call 0 reserves [start, end): not `equivalent`."""
    rule = "pgt_buf_start + 1 <= pfn < pgt_buf_end"
    r = compare(mutant("2.6.39", reserve=rule), mutant("2.6.39-inline", reserve=rule))
    assert r.verdict == "unknown" and "violates live_reserved in call 0" in r.detail
