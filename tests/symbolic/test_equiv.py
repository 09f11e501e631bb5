"""`xenpin equiv`: the seed's rejected inline alternative is equivalent to the hook; real differences replay."""

from __future__ import annotations

from pathlib import Path

import z3

from xenpin.linux.variant import load_variant
from xenpin.symbolic.equiv import compare
from xenpin.symbolic.obligations import build_equiv
from xenpin.symbolic.solver import check
from xenpin.symbolic.walk import DOMAIN_MIN_PFN, c

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"


def test_inline_alternative_is_equivalent_to_the_hook() -> None:
    assert (
        compare(load_variant(KERNELS / "3.0.toml"), load_variant(KERNELS / "3.0-inline.toml")).verdict
        == "equivalent"
    )


def test_rule_change_is_distinguished_and_replays() -> None:
    a, b = load_variant(KERNELS / "2.6.38.toml"), load_variant(KERNELS / "2.6.39-rc.toml")
    r = compare(a, b)
    assert r.verdict == "different"
    rw_a, _ = r.replay_a.final_pages[r.pfn]
    rw_b, _ = r.replay_b.final_pages[r.pfn]
    assert (rw_a, rw_b) == (True, False)  # `< end` leaves it RW, `< top` without the hook leaves it RO


def test_distinguishing_configuration_is_the_smallest() -> None:
    a, b = load_variant(KERNELS / "2.6.38.toml"), load_variant(KERNELS / "2.6.39-rc.toml")
    r = compare(a, b)
    eq = build_equiv(a, b, r.call)
    assert r.mem_bytes == DOMAIN_MIN_PFN << 12  # 2.6.39-rc differs already at the smallest size
    lower = z3.And(eq.formula, eq.max_pfn == c(r.mem_bytes >> 12), z3.ULT(eq.pfn, c(r.pfn)))
    assert check(lower).status == "unsat"  # and no lower page differs there


def _with_writable(name: str, writable: str) -> tuple:
    import dataclasses

    from xenpin.linux.policy import parse_policy
    from xenpin.linux.variant import BUFFER_VARS

    base = load_variant(KERNELS / f"{name}.toml")
    return base, dataclasses.replace(base, name=f"{name}-off", writable=parse_policy(writable, BUFFER_VARS))


def test_an_off_by_one_in_the_hook_is_not_equivalent() -> None:
    hook, off = _with_writable("2.6.39", "pgt_buf_end + 1 <= pfn < pgt_buf_top")
    r = compare(hook, off)
    assert r.verdict == "different" and "read-only in 2.6.39-off only" in r.detail
    rw_a, _ = r.replay_a.final_pages[r.pfn]
    rw_b, _ = r.replay_b.final_pages[r.pfn]
    assert (rw_a, rw_b) == (True, False)
    assert r.replay_b.outcome == "kernel-fault"


def test_with_low_placement_the_hooks_rw_half_changes_nothing() -> None:
    """3.0 puts the buffer below max_pfn_mapped, where Xen's bootstrap tables already map it RW and the walk keeps
    those PTEs: making [end, top) RW again is a no-op, so even `writable = false` is equivalent."""
    hook, none = _with_writable("3.0", "false")
    assert compare(hook, none).verdict == "equivalent"
