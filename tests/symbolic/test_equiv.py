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
