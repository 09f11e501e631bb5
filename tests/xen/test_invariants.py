"""Every invariant of xenpin.xen.invariants fires on a state that breaks it and is quiet on correct states."""

from __future__ import annotations

import pytest
from xtrees import build_tree, fill

from xenpin.xen.flags import PSE, RW, Entry, G, P
from xenpin.xen.frame import PGT_validated, PGT_writable_page
from xenpin.xen.hypervisor import Hypervisor
from xenpin.xen.invariants import INVARIANTS, check_invariants, live_roots


def fired(hv: Hypervisor) -> set[str]:
    return {v.invariant for v in check_invariants(hv)}


def live_tree(rules: str = "modern"):
    """A busy but correct state: pinned 4-level tree as CR3, a linear L4 entry, a second pinned L2, a GDT."""
    hv = Hypervisor(rules, frames=12, foreign=[64])
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))  # RO self-linear L4
    fill(hv, 8, (0, t.l1, P), (1, 8, P))  # a second L2 sharing the L1, with a self-linear entry
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    assert hv.pin(2, 8).ok
    assert hv.mmu_update(t.l3, 7, Entry(8, P | RW)).ok
    assert hv.mmu_update(t.l2, 9, Entry(8, P)).ok  # linear to another validated L2
    assert hv.set_gdt(9).ok
    assert hv.mmu_update(t.l1, 20, Entry(9, P)).ok  # the GDT mapped RO
    assert hv.mmu_update(t.l1, 21, Entry(t.l3, P)).ok  # a table mapped RO
    return hv, t


# ------------------------------------------------------------------------------------------------ quiet


@pytest.mark.parametrize("rules", ["xen-4.1", "modern"])
def test_quiet_on_correct_states(rules):
    hv = Hypervisor(rules, frames=8)
    assert check_invariants(hv) == []
    hv, t = live_tree(rules)
    assert check_invariants(hv) == []
    assert live_roots(hv) == [t.l4]
    assert hv.unpin(8).ok
    assert hv.new_baseptr(10).ok
    assert hv.unpin(t.l4).ok
    assert check_invariants(hv) == []


def test_ro_linear_entries_are_not_a_global_safety_violation():
    # A read-only linear L4 entry makes the L4's RW entries look like RW leaves, but the walk passes through
    # the RO entry, so nothing is writable: the checker must follow RW on every level.
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))
    assert hv.new_baseptr(t.l4).ok
    assert check_invariants(hv) == []


# ------------------------------------------------------------------------------------------------ counts


def test_type_count_fires_on_a_corrupted_type_count():
    hv, t = live_tree()
    hv.frame(t.l2).type_info += 1
    assert fired(hv) == {"type_count"}
    hv.frame(t.l2).type_info -= 1
    assert check_invariants(hv) == []
    assert hv.frame(t.l1).type_count == 2  # the two L2s
    hv.frame(t.l1).type_info -= 1
    assert fired(hv) == {"type_count"}


def test_type_count_fires_on_a_writable_frame():
    hv, t = live_tree()
    hv.frame(t.rw).type_info += 1
    assert fired(hv) == {"type_count"}


def test_general_count_fires_on_a_corrupted_count():
    hv, t = live_tree()
    hv.frame(t.ro).count_info += 1
    assert fired(hv) == {"general_count"}
    hv.frame(t.ro).count_info -= 2
    assert fired(hv) == {"general_count"}


def test_general_count_fires_on_an_unused_frame():
    hv = Hypervisor("modern", frames=8)
    hv.frame(3).count_info -= 1  # lost PGC_allocated's ref
    assert fired(hv) == {"general_count"}


def test_counts_fire_when_a_pin_bit_is_lost():
    hv, _ = live_tree()
    f = hv.frame(8)
    f.type_info &= ~(1 << 59)  # PGT_pinned cleared, refs still held
    assert fired(hv) == {"type_count", "general_count"}


# ---------------------------------------------------------------------------------------------- exclusivity


def test_exclusivity_fires_on_a_live_rw_mapping_of_a_table():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    # Bypass Xen: a raw store into the live L1, with the refs a get would have taken on a writable frame.
    hv._store(t.l1, 30, Entry(t.l2, P | RW))
    hv.frame(t.l2).count_info += 1
    hv.frame(t.l2).type_info += 1
    assert "exclusivity" in fired(hv)
    assert "type_count" not in fired(hv) and "general_count" not in fired(hv)


def test_exclusivity_fires_on_a_type_nobody_wants():
    hv, t = live_tree()
    f = hv.frame(t.rw)
    f.type_info = (f.type_info & ~(15 << 60)) | (5 << 60)  # writable -> seg_desc, same count
    assert "exclusivity" in fired(hv)


def test_exclusivity_fires_on_a_counted_but_unvalidated_frame():
    hv, t = live_tree()
    hv.frame(t.rw).type_info &= ~PGT_validated
    assert fired(hv) == {"exclusivity"}


def test_exclusivity_fires_on_an_rw_mapping_of_the_gdt():
    hv, t = live_tree()
    # The GDT frame's RO mapping turned RW behind Xen's back, refs and all.
    hv._store(t.l1, 20, Entry(9, P | RW))
    hv.frame(9).type_info += 1
    assert "exclusivity" in fired(hv)


# --------------------------------------------------------------------------------------------------- closure


def test_closure_fires_on_an_rw_self_linear_entry_off_any_root():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 1, (0, 1, P))
    assert hv.pin(2, 1).ok
    hv._store(1, 0, Entry(1, P | RW))  # no refs either way: only closure can see it
    assert fired(hv) == {"closure"}


def test_closure_fires_on_a_disallowed_flag():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 1, (0, 2, P))
    assert hv.pin(2, 1).ok
    hv._store(1, 0, Entry(2, P | G))
    assert fired(hv) == {"closure"}


def test_closure_fires_on_a_level_mismatch():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(3, 2).ok
    assert hv.pin(2, 1).ok
    hv._store(1, 0, Entry(2, P))  # an L2 entry to an L3, with the refs an l1 entry would hold
    hv.frame(2).type_info += 1
    hv.frame(2).count_info += 1
    assert "closure" in fired(hv)


def test_closure_fires_on_a_foreign_target():
    hv = Hypervisor("modern", frames=8, foreign=[64])
    assert hv.pin(1, 1).ok
    hv._store(1, 0, Entry(64, P))
    assert fired(hv) == {"closure"}


def test_closure_fires_on_a_linear_chain_under_modern_rules():
    # XSA-240: a table with linear entries that is itself the target of one. Xen refuses to build it;
    # forge it (with the refs the entry would hold) and the closure check must see it.
    hv = Hypervisor("modern", frames=8)
    for m in (1, 2, 3):
        assert hv.pin(2, m).ok
    assert hv.mmu_update(2, 0, Entry(3, P)).ok
    assert check_invariants(hv) == []
    hv._store(1, 0, Entry(2, P))
    hv.frame(2).type_info += 1
    hv.frame(2).count_info += 1
    violations = check_invariants(hv)
    assert [v.invariant for v in violations] == ["closure"]
    assert "l2 frame 0x2 has linear entries and is used as a linear table" in violations[0].message


def test_the_same_chain_is_no_violation_under_xen41_rules():
    hv = Hypervisor("xen-4.1", frames=8)
    for m in (1, 2, 3):
        assert hv.pin(2, m).ok
    assert hv.mmu_update(2, 0, Entry(3, P)).ok
    assert hv.mmu_update(1, 0, Entry(2, P)).ok
    assert check_invariants(hv) == []


def test_damage_recorded_by_the_model_is_reported():
    hv = Hypervisor("modern", frames=8)
    assert check_invariants(hv) == []
    hv.damage = (("type_count", "put_superpage(0x0): ..."),)
    assert [(v.invariant, v.message) for v in check_invariants(hv)] == [
        ("type_count", "put_superpage(0x0): ...")
    ]


# --------------------------------------------------------------------------------------------- global safety


def test_global_safety_fires_after_xsa148_on_xen41():
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    assert check_invariants(hv) == []
    assert hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P | RW | PSE)).ok
    violations = [v for v in check_invariants(hv) if v.invariant == "global_safety"]
    assert {v.message.split(" is writable")[0] for v in violations} == {
        f"live l{lvl} frame {m:#x}" for lvl, m in zip((4, 3, 2, 1), t.tables, strict=True)
    }
    assert fired(hv) == {"global_safety", "closure"}  # closure: PSE at L2 without allowsuperpage


def test_global_safety_fires_after_xsa182_on_xen41():
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))
    assert hv.pin(4, t.l4).ok
    assert check_invariants(hv) == []  # pinned L4s are live roots too
    assert hv.mmu_update(t.l4, 0, Entry(t.l4, P | RW)).ok
    assert "global_safety" in fired(hv)
    msgs = [v.message for v in check_invariants(hv) if v.invariant == "global_safety"]
    assert f"live l4 frame {t.l4:#x} is writable via 0x1[0] -> 0x1[0] -> 0x1[0] -> 0x1[0]" in msgs


def test_global_safety_only_from_live_roots():
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    fill(hv, t.l2, (0, t.l2, P))
    assert hv.pin(2, t.l2).ok
    assert hv.mmu_update(t.l2, 0, Entry(t.l2, P | RW)).ok  # XSA-182 shape, but at an unrooted L2
    assert fired(hv) == {"closure"}
    assert hv.pin(4, t.l4).ok  # now a live root reaches it
    assert "global_safety" in fired(hv)


def test_global_safety_ignores_rw_leaves_under_an_ro_upper_entry():
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    assert hv.new_baseptr(t.l4).ok
    assert hv.mmu_update(t.l3, t.slots[1], Entry(t.l2, P)).ok  # RO above
    assert hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P | RW | PSE)).ok
    assert "global_safety" not in fired(hv)


def test_global_safety_fires_for_the_gdt():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.new_baseptr(t.l4).ok
    assert hv.set_gdt(7).ok
    hv._store(t.l1, 0, Entry(7, P | RW))  # raw: no refs, so exclusivity/type_count fire as well
    assert "global_safety" in fired(hv)


def test_global_safety_modern_blocks_both_sequences():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    assert not hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P | RW | PSE)).ok
    assert not hv.mmu_update(t.l4, 0, Entry(t.l4, P | RW)).ok
    assert check_invariants(hv) == []


# ---------------------------------------------------------------------------------------------- coverage


def test_no_invariant_is_vacuous():
    """Every name in INVARIANTS is produced by at least one of the corruptions above."""
    seen: set[str] = set()
    hv, t = live_tree()
    hv.frame(t.l2).type_info += 1
    seen |= fired(hv)
    hv, t = live_tree()
    hv.frame(t.ro).count_info += 1
    seen |= fired(hv)
    hv, t = live_tree()
    hv.frame(t.rw).type_info &= ~PGT_validated
    seen |= fired(hv)
    hv = Hypervisor("modern", frames=8)
    fill(hv, 1, (0, 1, P))
    assert hv.pin(2, 1).ok
    hv._store(1, 0, Entry(1, P | RW))
    seen |= fired(hv)
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    assert hv.new_baseptr(t.l4).ok
    assert hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P | RW | PSE)).ok
    seen |= fired(hv)
    assert seen == set(INVARIANTS)
    assert PGT_writable_page  # the type the exclusivity checks revolve around
