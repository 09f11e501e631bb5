"""Verdicts: every shipped variant's equal its [expect]; counterexamples are minimal and replay as the same
property in the same call; what does not replay, or rests on something unproved, is `unknown`."""

from __future__ import annotations

import dataclasses

import pytest
import z3
from symbolic_cases import (
    KERNEL,
    NAMES,
    RAMDISK,
    REPRESENTATIVE,
    SLACK,
    VARIANTS,
    XEN,
    boot_of,
    boot_violates,
    domu,
    mutant,
)

from xenpin.linux.layout import BootConfig
from xenpin.linux.variant import PROPERTIES
from xenpin.symbolic import closed_form as cf
from xenpin.symbolic import lemmas
from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic.obligations import build
from xenpin.symbolic.prove import CALLS, Witness, defaults, prove_property, violated_in
from xenpin.symbolic.solver import SolverAnswer, check
from xenpin.symbolic.walk import c


def test_every_shipped_verdict_is_as_expected(verdicts) -> None:
    assert set(verdicts) == {(name, prop) for name in NAMES for prop in PROPERTIES}
    differ = {key: (v.verdict, v.expected, v.notes) for key, v in verdicts.items() if not v.as_expected}
    assert differ == {}
    for v in verdicts.values():
        if v.verdict == "proved":
            assert v.notes == [] and v.witness is None and v.lemmas, (v.variant.name, v.prop)
            assert all(lv.verdict == "proved" for lv in v.lemmas)
        elif v.verdict == "vacuous":  # 3.9 has no reserve step: spare_freed's situation never arises there
            assert (
                v.variant.placement == "mapped" and v.prop == "spare_freed" and v.notes and v.witness is None
            )
        else:
            assert v.verdict == "counterexample" and v.replay is not None


def test_no_shipped_proof_is_vacuous(verdicts) -> None:
    """Every `proved` verdict's premise and situation can arise in each call its domain makes; a vacuous one is
    `vacuous`, and says which call's situation cannot arise."""
    for v in verdicts.values():
        if v.verdict == "proved":
            made = [(ch.call, ch.premise, ch.situation) for ch in v.checks if ch.premise != "none"]
            assert made and made == [(k, "sat", "sat") for k, _, _ in made], (v.variant.name, v.prop)
            assert made[0][0] == 0  # call 0 is made by every machine (3.9's walk is one call)
        if v.verdict == "vacuous":
            assert any(ch.situation == "unsat" or ch.premise == "unsat" for ch in v.checks)
            assert any("situation never arises" in n or "premise is unsatisfiable" in n for n in v.notes)


def test_every_lemma_the_obligations_rest_on_is_proved(verdicts) -> None:
    """The closure of every obligation's lemmas (and of the call-0 obligations call 1 rests on), each proved in
    its own solver: what the proved verdicts carry."""
    needed = set()
    for name in NAMES:
        for prop in PROPERTIES:
            if (
                verdicts[(name, prop)].verdict != "proved"
            ):  # 3.9's buffer_fits: its step lemmas are not needed
                continue
            for call in CALLS:
                ob = build(VARIANTS[name], prop, call)
                needed.update(ob.lemmas)
                for p, k in ob.rests_on:
                    needed.update(build(VARIANTS[name], p, k).lemmas)
    carried = {lv.ref: lv.verdict for v in verdicts.values() for lv in v.lemmas}
    assert set(lemmas.closure(sorted(needed))) <= set(carried)
    assert set(carried.values()) == {"proved"}
    order = lemmas.closure(sorted(needed))
    for i, ref in enumerate(order):  # each after the lemmas its own proof uses
        assert set(lemmas.proof(ref)[1]) <= set(order[:i]), ref


def test_vacuity_is_flagged_for_3_9_only(verdicts) -> None:
    """3.9's top-down walk (topdown.py) has no reserve step: spare_freed's situation cannot arise there; every
    other property of every variant talks about something that happens."""
    vacuous = {key for key, v in verdicts.items() if v.vacuous}
    three_nine = [n for n in NAMES if VARIANTS[n].placement == "mapped"]
    assert three_nine and vacuous == {(n, "spare_freed") for n in three_nine}


def _counterexamples(verdicts):
    return [v for v in verdicts.values() if v.verdict == "counterexample"]


def test_counterexamples_are_the_smallest_in_either_call(verdicts) -> None:
    found = _counterexamples(verdicts)
    assert {(v.variant.name, v.prop) for v in found} == {
        (n, p) for n in NAMES for p in PROPERTIES if VARIANTS[n].expect[p] == "counterexample"
    }
    for v in found:
        w = v.witness
        assert w.minimal and not any("minimisation" in n for n in v.notes)
        usual = all(w[n] == d for n, d in (("kernel", KERNEL), ("ramdisk", RAMDISK), ("slack", SLACK)))
        for call in CALLS:
            ob = build(v.variant, v.prop, call)
            if usual:  # no smaller guest with the default image and slack fails, in either call
                smaller = z3.And(ob.formula(), defaults(ob), z3.ULT(ob.size, c(w.size)))
            else:  # no guest with the default image and slack fails at all, and no smaller one with any
                assert check(z3.And(ob.formula(), defaults(ob))).status == "unsat", (v.variant.name, v.prop)
                smaller = z3.And(ob.formula(), z3.ULT(ob.size, c(w.size)))
            assert check(smaller).status == "unsat", (v.variant.name, v.prop, call)
        assert cf.in_domain(v.variant, w.config())


def test_counterexamples_replay_as_the_same_property_in_the_same_call(verdicts) -> None:
    for v in _counterexamples(verdicts):
        w, r = v.witness, v.replay  # read here independently of prove.violated_in
        assert r.config == w.config() and r.variant is not None
        assert boot_violates(r, v.prop, w.call) is True, (v.variant.name, v.prop, w)
        if w.alloc:  # an allocation's page is the one the property fails at
            assert w.pfn == r.buffers[w.call].pgt_buf_start + w.alloc - 1
        if r.failure is not None and v.prop in ("no_rw_alias", "alias_writable"):
            assert r.failure.pfn == w.pfn and r.failure.violates == v.prop


def test_a_counterexample_that_does_not_replay_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay boots a variant whose hook restores the tail: spare_writable holds there."""
    real_boot = prove_mod.boot
    monkeypatch.setattr(prove_mod, "boot", lambda variant, config: real_boot(VARIANTS["2.6.39"], config))
    v = prove_property(VARIANTS["2.6.39-rc6"], "spare_writable")
    assert v.verdict == "unknown" and v.witness is not None and v.replay is not None
    assert any("does not replay: in the boot walk spare_writable holds in call 0" in n for n in v.notes)


def test_a_replay_that_fails_in_another_call_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where only call 0's obligation is satisfiable (call 1's made to hold here) and its replay shows the
    violation in call 1 instead, nothing confirms: unknown."""
    real_boot, real_build = prove_mod.boot, prove_mod.build

    def other_call(variant, config):  # the boot's call-0 buffer, reported as call 1's
        r = real_boot(variant, config)
        return dataclasses.replace(
            r, buffers=[dataclasses.replace(b, call=1) for b in r.buffers if b.call == 0]
        )

    def call_1_holds(variant, prop, call):
        ob = real_build(variant, prop, call)
        return dataclasses.replace(ob, violation=z3.BoolVal(False)) if call == 1 else ob

    monkeypatch.setattr(prove_mod, "boot", other_call)
    monkeypatch.setattr(prove_mod, "build", call_1_holds)
    v = prove_property(VARIANTS["2.6.39-rc6"], "spare_writable")
    assert v.verdict == "unknown"
    assert any("but the boot walk violates spare_writable in call 1" in n for n in v.notes), v.notes


def test_a_counterexample_past_the_replay_limit_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of at most 1 MiB exists (the domain starts at 64 MiB): unknown, and the note says so."""
    monkeypatch.setattr(prove_mod, "REPLAY_LIMIT_BYTES", 1 << 20)
    v = prove_property(VARIANTS["2.6.39-rc6"], "spare_writable")
    assert v.verdict == "unknown" and v.replay is None and all(att.replay is None for att in v.attempts)
    assert any("more than the replay limit (0x100000" in n and "there is none of at most that size" in n
               for n in v.notes), v.notes  # fmt: skip


def test_solver_disagreement_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prove_mod, "check_cvc5", lambda formula, timeout_s: SolverAnswer("sat", None, 0.0))
    v = prove_property(VARIANTS["3.1"], "spare_freed", solver="both")
    assert v.verdict == "unknown" and any("solvers disagree: z3 unsat, cvc5 sat" in n for n in v.notes)


def test_cvc5_agrees_with_z3() -> None:
    pytest.importorskip("cvc5")
    v = prove_property(VARIANTS["2.6.39-native"], "live_reserved", solver="both")
    assert v.verdict == "proved" and v.lemmas and all(lv.verdict == "proved" for lv in v.lemmas)


def test_a_resource_limit_is_unknown_never_proved() -> None:
    v = prove_property(VARIANTS["2.6.39"], "spare_writable", rlimit=1000)
    assert v.verdict == "unknown" and v.notes and all("solver gave up" in n for n in v.notes)


# --- the call-1 placement rests on call 0's reservation ------------------------------------------------------


def test_call_1_rests_on_call_0_reserving_its_buffer_exactly() -> None:
    """A reservation that skips pgt_buf_start moves call 1's buffer up by a page, onto call 0's first table,
    which call 1's hook then makes RW: the boot fails no_rw_alias in call 1. The closed form places call 1 below
    [start, end), so its `unsat` there must not count (it was once `proved`); booted at call 0's live_reserved
    witness, the walk shows the violation, so it is a counterexample (it was once `unknown`) with both witnesses.
    The call-0 counterexample that the boot fails in call 1 before showing is still confirmed (it was once not)."""
    v = mutant("2.6.39", reserve="pgt_buf_start + 1 <= pfn < pgt_buf_end")
    r = boot_of(v, domu(0x4000))
    assert boot_violates(r, "no_rw_alias", 1) is True and boot_violates(r, "live_reserved", 0) is True
    assert build(v, "no_rw_alias", 1).rests_on == (("live_reserved", 0), ("spare_freed", 0))
    alias = prove_property(v, "no_rw_alias")
    assert alias.verdict == "counterexample" and alias.witness.call == 1 and not alias.witness.minimal
    assert alias.witness.machine == (
        ("nr", 0x4000),
        ("kernel", KERNEL),
        ("ramdisk", RAMDISK),
        ("slack", SLACK),
    )
    assert alias.replay.failure.violates == "no_rw_alias" and alias.witness.pfn == alias.replay.failure.pfn
    premise = alias.attempts[1]
    assert premise.source == "call 0's live_reserved, which call 1 rests on" and premise.witness.call == 0
    assert premise.witness.machine == alias.witness.machine and premise.witness.minimal
    assert any("live_reserved fails in call 0" in n for n in alias.notes), alias.notes
    live = prove_property(v, "live_reserved")
    assert live.verdict == "counterexample" and live.witness.call == 0
    assert live.replay.failure is not None and live.replay.failure.violates == "no_rw_alias"


def test_the_premise_is_only_for_high_buffers() -> None:
    for name in XEN:
        v = VARIANTS[name]
        expect = (("live_reserved", 0), ("spare_freed", 0)) if v.placement == "high" else ()
        assert (
            build(v, "spare_writable", 1).rests_on == expect and build(v, "spare_writable", 0).rests_on == ()
        )


# --- the smallest witness ------------------------------------------------------------------------------------


def test_the_smallest_witness_prefers_the_default_image_over_both_calls() -> None:
    """Call 0 fails only with another kernel image, call 1 with the default one at a larger size: the witness
    is call 1's (the machine most users have), not the smaller call-0 one."""
    v = VARIANTS["2.6.39-rc5"]
    ob0, ob1 = (build(v, "spare_freed", call) for call in CALLS)
    p = ob0.params
    ob0 = dataclasses.replace(ob0, violation=z3.And(p.nr == c(0x5000), p.kernel == c(0x300), ob0.pfn == c(7)))
    ob1 = dataclasses.replace(ob1, violation=z3.And(z3.UGE(p.nr, c(0x6000)), ob1.pfn == c(9)))
    first = check(ob0.formula())
    assert first.status == "sat"
    limits = {"rlimit": prove_mod.DEFAULT_RLIMIT, "timeout_s": prove_mod.DEFAULT_TIMEOUT_S}
    w = prove_mod._smallest([ob0, ob1], first.model, limits)
    assert (w.call, w["nr"], w["kernel"], w["ramdisk"], w["slack"], w.pfn) == (
        1,
        0x6000,
        KERNEL,
        RAMDISK,
        SLACK,
        9,
    )
    # with no default machine anywhere: the least over all machines, call 0's
    ob1 = dataclasses.replace(
        ob1, violation=z3.And(z3.UGE(p.nr, c(0x6000)), p.slack == c(3), ob1.pfn == c(9))
    )
    w = prove_mod._smallest([ob0, ob1], first.model, limits)
    assert (w.call, w["nr"], w["kernel"]) == (0, 0x5000, 0x300) and w.minimal


# --- witnesses and the per-call reading of a replay -----------------------------------------------------------


def test_a_bare_metal_witness_boots_its_machine() -> None:
    w = Witness(1, (("low_end", 0x40000), ("high_end", 0x140201), ("gbpages", 1)), 0x140000, None)
    config = w.config()
    assert config.role == "native" and config.gbpages and w.mem_bytes == (1 << 30) + (1 << 30) + 0x201000
    assert "1 GiB pages" in w.describe() and w.machine_json() == {
        "low_end": "0x40000000", "high_end": "0x140201000", "gbpages": 1,
    }  # fmt: skip
    assert cf.in_domain(VARIANTS["2.6.39-native"], config, (0x1000, 0x100000))


@pytest.mark.parametrize("name", NAMES)
def test_violated_in_reads_a_boot_as_the_tests_do(name: str) -> None:
    """prove.violated_in against the tests' own reading, on boots that fail in many ways (mutants included)."""
    v = VARIANTS[name]
    configs = (
        [domu(0x4000), domu(0x4000, slack=0)] if v.xen else [BootConfig(role="native", mem_bytes=64 << 20)]
    )
    variants = [v]
    if (name in REPRESENTATIVE.values() and v.xen and v.placement != "mapped") or v.hook == "deferred":
        variants += [mutant(name, reserve="pgt_buf_start + 1 <= pfn < pgt_buf_end"),
                     mutant(name, writable="pgt_buf_start <= pfn < pgt_buf_top"),
                     mutant(name, readonly="pgt_buf_start <= pfn < pgt_buf_top")]  # fmt: skip
    for variant in variants:
        for config in configs:
            r = boot_of(variant, config)
            for prop in PROPERTIES:
                for call in CALLS:
                    assert violated_in(r, prop, call) == boot_violates(r, prop, call), (
                        variant.sources,
                        prop,
                        call,
                    )
