"""Obligations over Xen's PV rules: the solver rediscovers XSA-182 and XSA-148 under 4.1 as replayable
scenarios, proves the same steps safe under modern rules, finds a mutant's hole, and says `vacuous` where the
bound leaves an invariant nothing to speak of. Small bounds keep these fast."""

from __future__ import annotations

import dataclasses

import pytest

from xenpin.symbolic.pv.obligations import decide, invariant_witness, op_facts, safety_lemma
from xenpin.symbolic.pv.state import Bound
from xenpin.xen.flags import RW, P
from xenpin.xen.rules import MODERN, XEN_41
from xenpin.xen.scenario import parse_scenario, run_scenario

ONE, TWO = Bound(1, (0,)), Bound(2, (0,))


def verdict(rules, op, invariant, bound):
    return decide(rules, op, invariant, op_facts(rules, op, bound), bound)


def replays(text: str) -> bool:
    run = run_scenario(parse_scenario(text, "<generated>"))
    return run.passed and run.outcomes[-1].matched is True


def test_xsa182_is_found_under_xen_41_and_replays():
    v = verdict("xen-4.1", "mmu_update[l4]", "global_safety", ONE)
    assert v.verdict == "counterexample", v.note
    assert v.steps[-1].startswith("mmu_update(mfn=0, slot=") and v.steps[-1].endswith("P|RW) -> ok")
    assert "self-linear" not in v.clause
    assert replays(v.scenario)


def test_xsa182_at_l2_is_the_smallest_hole_in_xen_41_l2_updates():
    # 4.1's L2 fast path compares only P: a read-only self-linear L2 entry flipped to RW needs one frame
    v = verdict("xen-4.1", "mmu_update[l2]", "closure", TWO)
    assert v.verdict == "counterexample", v.note
    assert v.steps[-1] == "mmu_update(mfn=0, slot=0, entry=mfn 0 P|RW) -> ok"
    assert any("self-linear entry with RW" in line for line in v.violations)
    assert replays(v.scenario)


def test_xsa148_is_found_once_xsa182_is_fixed():
    # 4.1 with RW added to the L2-L4 fast-path comparison (XSA-182's fix alone): what is left is the PSE flip
    rules = dataclasses.replace(XEN_41, name="xen-4.1+xsa182", upper_fastpath_compare=P | RW)
    v = verdict(rules, "mmu_update[l2]", "closure", TWO)
    assert v.verdict == "counterexample", v.note
    assert "PSE" in v.steps[-1]
    assert any("superpage" in line for line in v.violations)


@pytest.mark.parametrize("op", ["mmu_update[l2]", "mmu_update[l4]"])
def test_the_same_steps_are_proved_under_modern(op):
    assert verdict("modern", op, "closure", TWO).verdict == "proved"


def test_a_mutant_fast_path_is_caught():
    # modern rules but 4.1's upper fast path (only P compared): the flip of a linear entry to RW gets through
    mutant = dataclasses.replace(MODERN, name="modern-41-fastpath", upper_fastpath_compare=0x1)
    v = verdict(mutant, "mmu_update[l4]", "closure", ONE)
    assert v.verdict == "counterexample", v.note
    assert any("RW" in line for line in v.violations)


def test_four_frames_leave_global_safety_nothing_to_speak_of():
    # an RW walk to a data page needs L4, L3, L2, L1 and the page: in 4 frames no safe state has one
    assert invariant_witness("modern", "global_safety", Bound(4, (0,))).verdict == "vacuous"
    assert invariant_witness("modern", "global_safety", Bound(5, (0,))).verdict == "proved"


def test_safety_lemma_and_the_bound_of_the_unrolling_hold_in_a_small_bound():
    assert safety_lemma("modern", TWO).verdict == "proved"
    facts = op_facts("modern", "unpin[l4]", TWO)
    assert facts.problem is None, facts


def test_xen_41_l2_updates_report_xsa148_beside_the_smaller_hole():
    v = verdict("xen-4.1", "mmu_update[l2]", "closure", TWO)
    assert [alt.verdict for alt in v.alternatives][:1] == ["counterexample"]
    pse = [alt for alt in v.alternatives if "PSE" in alt.steps[-1]]
    assert pse, [alt.steps[-1] for alt in v.alternatives]
    assert any("superpage" in line for line in pse[0].violations)
    assert replays(pse[0].scenario)
