"""Honest verdicts: `vacuous` is a verdict of its own, a counterexample past the replay limit is minimised again
under it, and a call whose witness does not replay does not hide the other call's that does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import z3
from symbolic_cases import KERNEL, LIMITS, RAMDISK, SLACK, VARIANTS, mutant

from xenpin.cli import main
from xenpin.linux.layout import BOOT_RSS_GIB_PER_GUEST_GIB
from xenpin.linux.variant import VERDICTS, load_variant
from xenpin.report.prove import _witness_text, prove_json, render_text
from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic import replay_limit
from xenpin.symbolic.obligations import SITUATIONS, build, situation
from xenpin.symbolic.prove import Witness, exit_code, prove_property
from xenpin.symbolic.solver import SolverAnswer, check
from xenpin.symbolic.walk import c

HERE = Path(__file__).resolve().parent
ALIAS_READONLY = HERE / "variants" / "3.9-alias-readonly.toml"
GIB = 1 << 30
TAIL_RW = "PFN_PHYS(pgt_buf_end) <= PFN_PHYS(pfn) < PFN_PHYS(pgt_buf_top)"


def _never(monkeypatch: pytest.MonkeyPatch, prop: str) -> None:
    """`prop`'s situation made impossible (every other property's as it is)."""
    monkeypatch.setattr(
        prove_mod, "situation", lambda ob: z3.BoolVal(False) if ob.prop == prop else situation(ob)
    )


def test_an_impossible_situation_is_vacuous_not_proved(monkeypatch: pytest.MonkeyPatch) -> None:
    _never(monkeypatch, "spare_freed")
    v = prove_property(VARIANTS["3.1"], "spare_freed")
    assert v.verdict == "vacuous" and v.vacuous and not v.as_expected and v.witness is None
    assert [(ch.premise, ch.situation) for ch in v.checks] == [("sat", "unsat")] * 2
    assert v.notes == [
        f"call {k}: the property's situation never arises in the domain ({SITUATIONS['spare_freed']})"
        for k in (0, 1)
    ]
    assert exit_code([v]) == 3  # like unknown: no evidence either way
    as_expected = dataclasses.replace(
        v, variant=dataclasses.replace(v.variant, expect={**v.variant.expect, "spare_freed": "vacuous"})
    )
    assert as_expected.as_expected and exit_code([as_expected]) == 0
    text = render_text([v], 1.0)
    row = next(line for line in text.splitlines() if "spare_freed" in line)
    assert row.split()[3:5] == ["vacuous", "proved"] and "<-- differs" in row
    assert "      note: call 0: the property's situation never arises" in text
    assert ", 0 counterexample, 1 vacuous, 0 unknown; 1 differ" in text.splitlines()[-1]
    doc = prove_json([v], 1.0)
    ob = doc["obligations"][0]
    assert (ob["verdict"], ob["vacuous"], doc["summary"]["vacuous"]) == ("vacuous", True, 1)
    assert ob["non_vacuity"] == [{"call": k, "premise": "sat", "situation": "unsat"} for k in (0, 1)]


def test_an_unsatisfiable_premise_is_vacuous(monkeypatch: pytest.MonkeyPatch) -> None:
    real = prove_mod.build

    def premise_false(variant, prop, call):
        ob = real(variant, prop, call)
        return dataclasses.replace(ob, premise=z3.BoolVal(False)) if call == 1 else ob

    monkeypatch.setattr(prove_mod, "build", premise_false)
    v = prove_property(VARIANTS["3.1"], "live_reserved")
    assert v.verdict == "vacuous" and v.notes == [
        "call 1: the obligation's premise is unsatisfiable in the domain"
    ]


def test_an_undecided_non_vacuity_check_is_unknown_not_vacuous(monkeypatch: pytest.MonkeyPatch) -> None:
    real = prove_mod._satisfiable

    def limited(formula, ob, solver, limits):
        if ob.call == 1 and formula.eq(z3.And(ob.domain, situation(ob))):
            return SolverAnswer("unknown", None, 0.0, "timeout")  # an `unsat` cut short is not an `unsat`
        return real(formula, ob, solver, limits)

    monkeypatch.setattr(prove_mod, "_satisfiable", limited)
    v = prove_property(VARIANTS["3.1"], "spare_freed")
    assert v.verdict == "unknown" and v.notes == ["call 1: non-vacuity not decided (timeout)"]


def test_vacuous_is_a_verdict_a_variant_and_a_theorem_may_expect(tmp_path: Path) -> None:
    assert "vacuous" in VERDICTS
    text = ALIAS_READONLY.read_text().replace("[expect]\n", '[expect]\nalias_writable = "vacuous"\n')
    (tmp_path / "v.toml").write_text(text)
    assert load_variant(tmp_path / "v.toml").expect["alias_writable"] == "vacuous"


def test_a_read_only_alias_rule_on_3_9_is_proved_for_real(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 9's example, `readonly = "ioremap"` on 3.9, was `proved (vacuous)`. 3.9's alloc_low_pages clears a
    page through the direct map (`clear_page(__va(pfn))`), never an early_memremap alias, so the rule never
    fires: the proof is about pages really handed out and written (its situation arises), and the boot agrees
    (tests/symbolic/test_topdown.py boots it)."""
    code = main(["prove", str(ALIAS_READONLY), "--property", "alias_writable", "--jobs", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    ob = doc["obligations"][0]
    assert (ob["verdict"], ob["vacuous"], code) == ("proved", False, 0)
    assert ob["non_vacuity"][0] == {"call": 0, "premise": "sat", "situation": "sat"}


# --- the replay limit follows the machine ------------------------------------------------------------------


def test_the_replay_limit_follows_physical_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    replay_limit.replay_limit_bytes.cache_clear()
    monkeypatch.setattr(replay_limit, "physical_ram_bytes", lambda: 24 * GIB)
    # half the RAM, at the boot's measured RSS per GiB of guest (the --mem cap's constant)
    assert replay_limit.replay_limit_bytes() == int(12 / BOOT_RSS_GIB_PER_GUEST_GIB) * GIB
    replay_limit.replay_limit_bytes.cache_clear()
    monkeypatch.setattr(replay_limit, "physical_ram_bytes", lambda: int(2 * GIB * BOOT_RSS_GIB_PER_GUEST_GIB))
    assert replay_limit.replay_limit_bytes() == replay_limit.MIN_LIMIT_BYTES  # 1 GiB is below the floor
    replay_limit.replay_limit_bytes.cache_clear()
    monkeypatch.setattr(replay_limit, "physical_ram_bytes", lambda: None)
    assert replay_limit.replay_limit_bytes() == replay_limit.MIN_LIMIT_BYTES
    replay_limit.replay_limit_bytes.cache_clear()


def test_a_rule_wrong_above_1_gib_is_confirmed_under_a_2_gib_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's `and pfn < 0x800000` mutant scaled down: the tail above 1 GiB stays read-only."""
    monkeypatch.setattr(prove_mod, "REPLAY_LIMIT_BYTES", 2 * GIB)
    v = prove_property(mutant("3.0", writable=f"{TAIL_RW} and pfn < 0x40000"), "spare_writable")
    assert v.verdict == "counterexample" and v.witness.pfn >= 0x40000 and v.witness.mem_bytes <= 2 * GIB
    assert v.replay is not None and v.replay.config == v.witness.config()


def test_with_no_witness_under_the_limit_it_is_a_clear_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prove_mod, "REPLAY_LIMIT_BYTES", GIB // 2)
    v = prove_property(mutant("3.0", writable=f"{TAIL_RW} and pfn < 0x40000"), "spare_writable")
    assert v.verdict == "unknown" and v.replay is None and v.witness.mem_bytes > GIB
    assert any(
        "more than the replay limit (0x20000000, what this machine can boot), and there is none of at most that"
        " size (unsat)" in n
        for n in v.notes
    ), v.notes


def test_past_the_limit_the_smallest_under_it_is_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest witness uses the default image at 3 GiB; under a 2 GiB limit, one with another kernel image
    at 1 GiB is minimised and kept (marked with the limit)."""
    ob = build(VARIANTS["3.0"], "spare_freed", 0)
    p = ob.params
    big = z3.And(
        p.nr == c(3 * GIB >> 12), p.kernel == c(KERNEL), p.ramdisk == c(RAMDISK), p.slack == c(SLACK)
    )
    small = z3.And(z3.UGE(p.nr, c(GIB >> 12)), p.kernel == c(0x300))
    ob = dataclasses.replace(ob, violation=z3.And(z3.Or(big, small), ob.pfn == c(5)))
    first = check(z3.And(ob.formula(), prove_mod.defaults(ob)))
    w = prove_mod._smallest([ob], first.model, LIMITS)
    assert w.mem_bytes == 3 * GIB and w["kernel"] == KERNEL
    monkeypatch.setattr(prove_mod, "REPLAY_LIMIT_BYTES", 2 * GIB)
    notes: list[str] = []
    under = prove_mod._replayable(ob, w, notes, LIMITS)
    assert (under.mem_bytes, under["kernel"], under.limit, under.minimal) == (GIB, 0x300, 2 * GIB, True)
    assert notes == [
        f"call 0's smallest counterexample needs {3 * GIB:#x} bytes, more than the replay limit ({2 * GIB:#x},"
        f" what this machine can boot); replayed instead: the smallest of at most {2 * GIB:#x} bytes"
    ]
    assert _witness_text(under).startswith("smallest of at most 0x80000000 bytes: domU of 0x40000000 bytes")


def test_bare_metal_memory_under_the_limit_counts_ram_above_4_gib() -> None:
    ob = build(VARIANTS["2.6.39-native"], "live_reserved", 1)
    w = Witness(1, (("low_end", 0x40000), ("high_end", 0x140201), ("gbpages", 1)), 0, None)
    p = ob.params
    m = z3.substitute(prove_mod.mem_pages(ob), (p.low_end, c(0x40000)), (p.high_end, c(0x140201)))
    assert z3.simplify(m).as_long() << 12 == w.mem_bytes


# --- a call whose witness does not replay does not hide the other's ------------------------------------------


def test_the_other_calls_witness_confirms_when_the_smallest_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hook at all: spare_writable fails in both calls of a 64 MiB domU with the slack (call 1 maps XEN
    EXTRA at 4 GiB). Pretend the boot showed nothing in call 0: call 1's own witness is minimised, replayed and
    confirms, and both are shown."""
    v = mutant("3.0", writable="false")
    real = prove_mod.violated_in
    monkeypatch.setattr(
        prove_mod, "violated_in", lambda r, prop, call: False if call == 0 else real(r, prop, call)
    )
    verdict = prove_property(v, "spare_writable")
    assert verdict.verdict == "counterexample" and verdict.witness.call == 1 and verdict.witness.minimal
    assert [(att.witness.call, att.confirmed) for att in verdict.attempts] == [(1, True), (0, False)]
    assert verdict.attempts[1].replay is not None
    text = render_text([verdict], 1.0)
    assert "      also (call 0's obligation): smallest: domU of 0x4000000 bytes" in text
    assert "does not confirm" in text


def test_when_the_smallest_confirms_the_other_call_is_shown_not_booted() -> None:
    """Both calls fail; call 0's smallest witness confirms, call 1's own smallest is shown beside it."""
    verdict = prove_property(mutant("3.0", writable="false"), "spare_writable")
    assert verdict.verdict == "counterexample" and verdict.witness.call == 0
    assert [(att.witness.call, att.confirmed, att.replay is None) for att in verdict.attempts] == [
        (0, True, False),
        (1, False, True),
    ]
    text = render_text([verdict], 1.0)
    assert "      also (call 1's obligation): smallest: " in text and text.count("; not replayed") == 1
