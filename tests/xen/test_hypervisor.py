"""Unit tests of the Xen PV pagetable validator, one per mm.c rule (xenpin.xen.hypervisor)."""

from __future__ import annotations

import pytest
from xtrees import build_tree, counts, fill, state, va_of

from xenpin.xen.console import xen_line
from xenpin.xen.flags import NX, PSE, RW, A, D, Entry, P
from xenpin.xen.hypervisor import Hypervisor
from xenpin.xen.invariants import check_invariants

RULES = ("xen-4.1", "modern")


def names(hv: Hypervisor) -> set[str]:
    return {v.invariant for v in check_invariants(hv)}


def assert_rejected_cleanly(hv: Hypervisor, op, *args):
    """Run `op(*args)`, expect a rejection, and check it changed nothing at all."""
    before = hv.snapshot()
    r = op(*args)
    assert not r.ok, r
    assert hv.snapshot() == before
    assert check_invariants(hv) == []
    return r


# ------------------------------------------------------------------------------------------- get_page_type


def test_type_changes_freely_at_count_zero():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 2, (0, 5, P | RW))
    assert hv.pin(1, 2).ok
    assert state(hv, 5) == ("writable", 1, 2, True, False)
    # Drop the only RW mapping: count 0, the type field stays "writable" but means nothing.
    assert hv.mmu_update(2, 0, None).ok
    assert state(hv, 5) == ("writable", 0, 1, True, False)
    # ...so the frame may now become a table.
    r = hv.pin(1, 5)
    assert r.ok and r.log == ()
    assert state(hv, 5) == ("l1", 1, 2, True, True)
    assert check_invariants(hv) == []


@pytest.mark.parametrize("rules", RULES)
def test_bad_type_log_line_exact(rules):
    hv = Hypervisor(rules, frames=8)
    fill(hv, 2, (0, 1, P | RW))
    assert hv.pin(1, 2).ok  # frame 1 is now writable, validated, count 1
    r = assert_rejected_cleanly(hv, hv.pin, 1, 1)
    assert r.errno == "EINVAL"
    bad_type = {
        # 4.1: writable = 7 << 60, validated = bit 58, count 1; exp l1 = 1 << 60; MEM_LOG's "%lx" mfns.
        "xen-4.1": "Bad type (saw 7400000000000001 != exp 1000000000000000) for mfn 1 (pfn 1)",
        # modern asm/mm.h: writable = 7 << 61 (bits 61-63), validated still bit 58; l1 = 1 << 61; PRI_mfn "05lx".
        "modern": "Bad type (saw e400000000000001 != exp 2000000000000000) for mfn 00001 (pfn 00001)",
    }
    # modern `do_mmuext_op`: "Error %d while pinning mfn %" PRI_mfn with the rc
    pinning = {"xen-4.1": "Error while pinning mfn 1", "modern": "Error -22 while pinning mfn 00001"}
    assert r.log == (bad_type[rules], pinning[rules])


def test_bad_type_prints_pinned_and_validated_bits():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(1, 3).ok  # l1 | pinned | validated | count 1
    r = assert_rejected_cleanly(hv, hv.set_gdt, 3)
    # modern: l1 (1 << 61) | pinned (59) | validated (58) | 1; exp seg_desc = 5 << 61
    assert r.log == ("Bad type (saw 2c00000000000001 != exp a000000000000000) for mfn 00003 (pfn 00003)",)


@pytest.mark.parametrize(("have", "want"), [(2, 1), (3, 2), (4, 3)])
def test_bad_type_silent_for_possible_linear_map(have, want):
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(have, 1).ok
    r = assert_rejected_cleanly(hv, hv.pin, want, 1)
    assert r.errno == "EINVAL"
    assert r.log == ("Error -22 while pinning mfn 00001",)  # no "Bad type" line


@pytest.mark.parametrize(("have", "want"), [(1, 2), (2, 3), (3, 4), (1, 3), (4, 2)])
def test_bad_type_logged_otherwise(have, want):
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(have, 1).ok
    r = assert_rejected_cleanly(hv, hv.pin, want, 1)
    assert r.log[0].startswith("Bad type (saw ")
    assert r.log[0].endswith(f"!= exp {want << 61:016x}) for mfn 00001 (pfn 00001)")  # modern: type << 61


# ----------------------------------------------------------------------------------- validation / devalidation


def test_pin_l4_validates_the_whole_tree():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    r = hv.pin(4, t.l4)
    assert r.ok and r.log == ()
    assert state(hv, t.l4) == ("l4", 1, 2, True, True)  # pin: one type ref, one general ref
    assert state(hv, t.l3) == ("l3", 1, 2, True, False)  # the L4 entry
    assert state(hv, t.l2) == ("l2", 1, 2, True, False)
    assert state(hv, t.l1) == ("l1", 1, 2, True, False)
    assert state(hv, t.rw) == ("writable", 1, 2, True, False)  # RW L1 entry: general + writable
    assert state(hv, t.ro) == ("none", 0, 2, False, False)  # RO L1 entry: general ref only
    for m in (0, 7):
        assert state(hv, m) == ("none", 0, 1, False, False)  # PGC_allocated only
    assert check_invariants(hv) == []


def test_shared_l1_counts_every_parent_entry():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 4, (0, 5, P | RW))
    fill(hv, 3, (0, 4, P | RW), (1, 4, P), (7, 4, P | RW))
    assert hv.pin(2, 3).ok
    assert state(hv, 4) == ("l1", 3, 4, True, False)
    assert state(hv, 5) == ("writable", 1, 2, True, False)
    assert check_invariants(hv) == []


def test_unpin_devalidates_recursively_and_returns_counts():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fresh = counts(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.unpin(t.l4).ok
    assert counts(hv) == fresh
    for m, level in zip(t.tables, (4, 3, 2, 1), strict=True):
        f = hv.frame(m)
        assert not f.validated and f.type_count == 0 and f.level == 0
        assert f.type_name == f"l{level}"  # the type field stays, meaningless until the next get
    # The entries are just bytes again: a plain store into the former L2 is allowed.
    assert hv.write(t.l2, 9, Entry(t.l2, P | RW)).ok
    assert check_invariants(hv) == []


def test_devalidation_stops_at_a_table_still_referenced():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(2, t.l2).ok  # a second holder of the L2
    assert hv.pin(4, t.l4).ok
    assert state(hv, t.l2) == ("l2", 2, 3, True, True)
    assert hv.unpin(t.l4).ok
    assert state(hv, t.l3) == ("l3", 0, 1, False, False)
    assert state(hv, t.l2) == ("l2", 1, 2, True, True)
    assert state(hv, t.l1) == ("l1", 1, 2, True, False)
    assert check_invariants(hv) == []


def test_failed_validation_logs_the_chain():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fill(hv, t.l1, (100, t.l3, P | RW))  # an RW mapping of the L3, deep in the tree
    r = assert_rejected_cleanly(hv, hv.pin, 4, t.l4)
    assert r.errno == "EBUSY"  # modern: the L1 conflict's errno comes straight up
    assert r.log[0] == "Bad type (saw 6000000000000001 != exp e000000000000000) for mfn 00002 (pfn 00002)"
    assert "Failure -16 in promote_l1_table: slot 0x64" in r.log  # modern: the rc (-EBUSY), slot as %#x
    assert [line.split(" (")[0] for line in r.log if line.startswith("Error while validating")] == [
        "Error while validating mfn 00004",
        "Error while validating mfn 00003",
        "Error while validating mfn 00002",
        "Error while validating mfn 00001",
    ]
    assert r.log[-1] == "Error -16 while pinning mfn 00001"


@pytest.mark.parametrize("rules", RULES)
def test_failed_four_level_pin_restores_every_count(rules):
    hv = Hypervisor(rules, frames=8, foreign=[64])
    t = build_tree(hv)
    fill(hv, t.l1, (200, 64, P))  # a foreign frame after the good entries
    before_counts, before = counts(hv), hv.snapshot()
    r = hv.pin(4, t.l4)
    assert not r.ok
    assert counts(hv) == before_counts
    assert hv.snapshot() == before
    assert check_invariants(hv) == []


# -------------------------------------------------------------------------------------------- pin / unpin


def test_pin_already_pinned_and_unpin_not_pinned():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(1, 3).ok
    r = assert_rejected_cleanly(hv, hv.pin, 1, 3)
    assert (r.errno, r.log) == ("EINVAL", ("mfn 00003 already pinned",))  # modern's text
    assert hv.unpin(3).ok
    assert state(hv, 3) == ("l1", 0, 1, False, False)
    r = assert_rejected_cleanly(hv, hv.unpin, 3)
    assert (r.errno, r.log) == ("EINVAL", ("mfn 00003 not pinned",))


def test_unpin_of_a_table_that_is_not_pinned_but_in_use():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    r = assert_rejected_cleanly(hv, hv.unpin, t.l3)
    assert r.log == ("mfn 00002 not pinned",)


FOREIGN_GET_PAGE = {
    # `get_page` (4.1): the page is another domain's; then `get_page_from_pagenr` gives up.
    "xen-4.1": (
        "Error pfn 40: rd=d1, od=d2, caf=8000000000000001, taf=0000000000000000",
        "Could not get page ref for pfn 40",
    ),
    # modern `get_page`: gprintk "Error mfn %"PRI_mfn": rd=%pd od=%pd caf=%08lx taf=%"PRtype_info; then
    # `get_page_from_mfn` (asm/mm.h), where the caller uses it.
    "modern": (
        "Error mfn 00040: rd=d1 od=d2 caf=8000000000000001 taf=0000000000000000",
        "Could not get page ref for mfn 00040",
    ),
}


@pytest.mark.parametrize("rules", RULES)
def test_pin_and_unpin_foreign_frame(rules):
    # Every mmuext op that starts with get_page_from_pagenr logs get_page's line, then its own.
    hv = Hypervisor(rules, frames=8, foreign=[64])
    get_page = FOREIGN_GET_PAGE[rules]
    r = assert_rejected_cleanly(hv, hv.pin, 1, 64)
    if rules == "modern":
        # modern pin_page / UNPIN_TABLE use get_page_from_gfn: get_page's line, then only UNPIN's own
        assert r.log == get_page[:1]
        r = assert_rejected_cleanly(hv, hv.unpin, 64)
        assert r.log == (get_page[0], "mfn 00040 bad, or bad owner d1")
        r = assert_rejected_cleanly(hv, hv.new_baseptr, 64)  # new_guest_cr3: get_page_from_mfn's line too
        assert r.log == (*get_page, "Error while installing new baseptr 00040")
    else:
        assert r.log == (*get_page, "Error while pinning mfn 40")
        r = assert_rejected_cleanly(hv, hv.unpin, 64)
        assert r.log == (*get_page, "Mfn 40 bad domain")
        r = assert_rejected_cleanly(hv, hv.new_baseptr, 64)
        assert r.log == (*get_page, "Error while installing new baseptr 40")
    # set_gdt uses get_page_and_type, not the _from_pagenr variant: get_page's line only.
    r = assert_rejected_cleanly(hv, hv.set_gdt, 64)
    assert r.log == get_page[:1]


# ------------------------------------------------------------------------------------------- base pointer


def test_new_baseptr_needs_no_pin_and_drops_old_root():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fresh = counts(hv)
    assert hv.new_baseptr(t.l4).ok
    assert hv.baseptr == t.l4
    assert state(hv, t.l4) == ("l4", 1, 2, True, False)
    assert state(hv, t.l1) == ("l1", 1, 2, True, False)
    assert hv.new_baseptr(7).ok  # an empty L4
    assert hv.baseptr == 7
    assert state(hv, 7) == ("l4", 1, 2, True, False)
    assert {m: c for m, c in counts(hv).items() if m != 7} == {m: c for m, c in fresh.items() if m != 7}
    assert not hv.frame(t.l4).validated
    assert check_invariants(hv) == []


def test_new_baseptr_same_root_and_pinned_root():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    assert state(hv, t.l4) == ("l4", 2, 3, True, True)
    assert hv.new_baseptr(t.l4).ok
    assert state(hv, t.l4) == ("l4", 2, 3, True, True)
    assert check_invariants(hv) == []


def test_new_baseptr_rejects_non_l4():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(1, 3).ok
    r = assert_rejected_cleanly(hv, hv.new_baseptr, 3)
    assert r.log[-1] == "Error while installing new baseptr 00003"


# ----------------------------------------------------------------------------------------- linear entries


@pytest.mark.parametrize("level", [2, 3, 4])
def test_self_linear_read_only_takes_no_ref(level):
    hv = Hypervisor("modern", frames=8)
    fill(hv, 1, (0, 1, P))
    r = hv.pin(level, 1)
    assert r.ok and r.log == ()
    assert state(hv, 1) == (f"l{level}", 1, 2, True, True)  # the pin's refs only
    assert check_invariants(hv) == []
    assert hv.unpin(1).ok
    assert state(hv, 1) == (f"l{level}", 0, 1, False, False)


@pytest.mark.parametrize("level", [2, 3, 4])
def test_linear_to_another_validated_table_takes_a_ref(level):
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(level, 1).ok
    fill(hv, 2, (0, 1, P))
    assert hv.pin(level, 2).ok
    assert state(hv, 1) == (f"l{level}", 2, 3, True, True)
    assert check_invariants(hv) == []
    assert hv.unpin(2).ok
    assert state(hv, 1) == (f"l{level}", 1, 2, True, True)
    assert check_invariants(hv) == []


LINEAR_LINE = {2: 915, 3: 957, 4: 982}  # define_get_linear_pagetable(l2/l3/l4) in RELEASE-4.1.0 mm.c


@pytest.mark.parametrize("level", [2, 3, 4])
@pytest.mark.parametrize("self_linear", [True, False])
def test_linear_with_write_perms_rejected(level, self_linear):
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(level, 1).ok
    target = 1 if self_linear else 2
    if not self_linear:
        assert hv.pin(level, 2).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(target, P | RW))
    assert "Attempt to create linear p.t. with write perms" in r.log
    assert r.errno == "EINVAL"
    # Xen 4.1.0 prints it from define_get_linear_pagetable(l<level>)'s invocation line
    (message,) = [m for m in r.log if m.startswith("Attempt to create linear")]
    assert xen_line(message, 1) == f"(XEN) mm.c:{LINEAR_LINE[level]}:d1 {message}"
    # Read-only, the same update is fine.
    assert hv.mmu_update(1, 0, Entry(target, P)).ok
    assert check_invariants(hv) == []


def test_linear_to_unvalidated_same_level_rejected():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(2, 1).ok
    assert hv.pin(2, 2).ok
    assert hv.unpin(2).ok  # frame 2: type l2, count 0, not validated
    # An L2 entry wants an l1: frame 2 takes it (count 0), so this is a normal entry, not a linear one.
    assert hv.mmu_update(1, 0, Entry(2, P)).ok
    assert state(hv, 2) == ("l1", 1, 2, True, False)
    assert check_invariants(hv) == []


# ------------------------------------------------------------------------------------------ Xen L4 slots


def test_xen_l4_slots_skipped_by_validation():
    hv = Hypervisor("modern", frames=8, foreign=[64])
    fill(hv, 1, (256, 64, P | RW), (271, 1, P | RW), (300, 2, P))
    before = counts(hv)
    assert hv.pin(4, 1).ok
    assert state(hv, 2) == ("l3", 1, 2, True, False)
    assert counts(hv)[64] == before[64]
    assert counts(hv)[1] == (1, 2)
    assert check_invariants(hv) == []
    assert hv.unpin(1).ok
    assert counts(hv) == before


@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("slot", [256, 263, 271])
def test_xen_l4_slots_rejected_by_mmu_update(slot, rules):
    hv = Hypervisor(rules, frames=8)
    assert hv.pin(4, 1).ok
    assert hv.pin(3, 2).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, slot, Entry(2, P | RW))
    # 4.1 prints `%p` of the entry: L4 mfn 1 in 4.1's direct map (0xffff830000000000) plus slot * 8; modern
    # `mod_l4_entry` prints the slot ("%#lx").
    assert (
        r.log
        == {
            "xen-4.1": (
                f"Illegal L4 update attempt in Xen-private area {0xFFFF830000001000 + slot * 8:016x}",
            ),
            "modern": (f"L4 update in Xen-private area, slot {slot:#x}",),
        }[rules]
    )
    assert r.errno == "EINVAL"
    assert_rejected_cleanly(hv, hv.mmu_update, 1, slot, None)


@pytest.mark.parametrize("slot", [255, 272])
def test_l4_slots_around_xen_area_are_guest_slots(slot):
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(4, 1).ok
    assert hv.mmu_update(1, slot, Entry(2, P | RW)).ok
    assert state(hv, 2) == ("l3", 1, 2, True, False)
    fill(hv, 3, (slot, 6, P | RW))  # the validation of a fresh L4 checks it too
    assert hv.pin(2, 6).ok
    r = assert_rejected_cleanly(hv, hv.pin, 4, 3)
    assert "Bad type (saw 4c00000000000001 != exp 6000000000000000) for mfn 00006 (pfn 00006)" in r.log


# ----------------------------------------------------------------------------------------------- PSE at L2


def test_pse_at_l2_xen41_needs_allowsuperpage():
    hv = Hypervisor("xen-4.1", frames=8)
    fill(hv, 1, (0, 0, P | RW | PSE))
    r = assert_rejected_cleanly(hv, hv.pin, 2, 1)
    assert r.log[0] == "Attempt to map superpage without allowsuperpage flag in hypervisor"
    assert r.log[-1] == "Error while pinning mfn 1"
    assert hv.pin(2, 2).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 2, 0, Entry(0, P | PSE))
    assert r.log == ("Attempt to map superpage without allowsuperpage flag in hypervisor",)


def test_pse_at_l2_modern_is_a_bad_flag():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 1, (0, 0, P | RW | PSE))
    r = assert_rejected_cleanly(hv, hv.pin, 2, 1)
    assert r.log[0] == "Bad L2 flags 80"
    assert hv.pin(2, 2).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 2, 0, Entry(0, P | PSE))
    assert r.log == ("Bad L2 flags 80",)


@pytest.mark.parametrize("rules", RULES)
def test_pse_in_l1_is_a_bad_flag(rules):
    hv = Hypervisor(rules, frames=8)
    assert hv.pin(1, 1).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(5, P | PSE))
    assert r.log == ({"xen-4.1": "Bad L1 flags 80", "modern": "Bad L1 flags 0x80"}[rules],)  # modern: %#x


# ------------------------------------------------------------------------------------------------ fast paths


@pytest.mark.parametrize("rules", RULES)
def test_l1_fast_path_for_accessed_dirty_nx(rules):
    hv = Hypervisor(rules, frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    before = counts(hv)
    s1 = t.slots[3]
    r = hv.mmu_update(t.l1, s1, Entry(t.rw, P | RW | A | D | NX))
    assert r.ok and r.log == ()
    assert hv.entry(t.l1, s1) == Entry(t.rw, P | RW | A | D | NX)
    assert counts(hv) == before
    assert check_invariants(hv) == []


@pytest.mark.parametrize("rules", RULES)
def test_l1_rw_flip_takes_the_slow_path(rules):
    hv = Hypervisor(rules, frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    s1 = t.slots[3]
    assert hv.mmu_update(t.l1, s1, Entry(t.rw, P)).ok  # RW dropped: the writable ref goes
    assert state(hv, t.rw) == ("writable", 0, 2, True, False)
    assert hv.mmu_update(t.l1, s1 + 1, Entry(t.ro, P | RW)).ok  # RW added: a writable ref
    assert state(hv, t.ro) == ("writable", 1, 2, True, False)
    assert check_invariants(hv) == []
    # RW onto a table is refused even when only the flag changes.
    assert hv.mmu_update(t.l1, 9, Entry(t.l2, P)).ok
    assert_rejected_cleanly(hv, hv.mmu_update, t.l1, 9, Entry(t.l2, P | RW))


def test_xen41_l2_fast_path_lets_pse_rw_through_xsa148():
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    before = counts(hv)
    s2 = t.slots[2]
    r = hv.mmu_update(t.l2, s2, Entry(t.l1, P | RW | PSE))
    assert r.ok and r.log == ()  # only P compared: no revalidation, no allowsuperpage check
    assert counts(hv) == before
    found = names(hv)
    assert "global_safety" in found
    assert "type_count" not in found and "general_count" not in found


def test_modern_l2_pse_flip_rejected():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, t.l2, t.slots[2], Entry(t.l1, P | RW | PSE))
    assert r.log == ("Bad L2 flags 80",)


@pytest.mark.parametrize("rules", RULES)
def test_l2_rw_flip_is_harmless(rules):
    hv = Hypervisor(rules, frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    before = counts(hv)
    assert hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P)).ok
    assert hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P | RW)).ok
    assert counts(hv) == before
    assert check_invariants(hv) == []


def test_xen41_l4_fast_path_makes_linear_rw_xsa182():
    hv = Hypervisor("xen-4.1", frames=8)
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))  # RO self-linear: allowed
    assert hv.pin(4, t.l4).ok
    before = counts(hv)
    r = hv.mmu_update(t.l4, 0, Entry(t.l4, P | RW))
    assert r.ok and r.log == ()
    assert counts(hv) == before
    assert {"global_safety", "closure"} <= names(hv)


def test_modern_l4_linear_rw_flip_rejected():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))
    assert hv.pin(4, t.l4).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, t.l4, 0, Entry(t.l4, P | RW))
    assert "Attempt to create linear p.t. with write perms" in r.log


# -------------------------------------------------------------------------------- L1 conflicts and foreign


@pytest.mark.parametrize(("rules", "errno"), [("xen-4.1", "EINVAL"), ("modern", "EBUSY")])
def test_l1_rw_mapping_of_a_table_errno(rules, errno):
    hv = Hypervisor(rules, frames=8)
    assert hv.pin(1, 1).ok
    assert hv.pin(1, 2).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(2, P | RW))
    assert r.errno == errno
    assert (
        r.log
        == {
            "xen-4.1": (
                "Bad type (saw 1c00000000000001 != exp 7000000000000000) for mfn 2 (pfn 2)",
                "Error getting mfn 2 (pfn 2) from L1 entry 0000000000002003 for l1e_owner=1, pg_owner=1",
            ),
            # modern get_page_from_l1e: its own line after get_page_type fails, then could_not_pin's
            "modern": (
                "Bad type (saw 2c00000000000001 != exp e000000000000000) for mfn 00002 (pfn 00002)",
                "Could not get page type PGT_writable_page",
                "Error getting mfn 00002 (pfn 00002) from L1 entry 0000000000002003 for l1e_owner d1, pg_owner d1",
            ),
        }[rules]
    )
    # RO is fine.
    assert hv.mmu_update(1, 0, Entry(2, P)).ok
    assert check_invariants(hv) == []


# Modern get_page_from_l1e: a foreign owner goes to `could_not_pin`, which returns -EBUSY (xsm_priv_mapping
# only decides whether a privileged domain may map it); 4.1's boolean becomes -EINVAL in do_mmu_update.
@pytest.mark.parametrize(("rules", "errno"), [("xen-4.1", "EINVAL"), ("modern", "EBUSY")])
@pytest.mark.parametrize("flags", [P, P | RW])
def test_l1_foreign_frame(rules, errno, flags):
    hv = Hypervisor(rules, frames=8, foreign=[64])
    assert hv.pin(1, 1).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(64, flags))
    assert r.errno == errno
    assert (
        r.log
        == {
            "xen-4.1": (
                f"Error getting mfn 40 (pfn 40) from L1 entry {(64 << 12) | flags:016x} for l1e_owner=1, pg_owner=1",
            ),
            "modern": (
                "pg_owner d1 l1e_owner d1, but real_pg_owner d2",
                f"Error getting mfn 00040 (pfn 00040) from L1 entry {(64 << 12) | flags:016x}"
                " for l1e_owner d1, pg_owner d1",
            ),
        }[rules]
    )
    fill(hv, 2, (0, 64, flags))  # the same through validation (alloc_l1_table / promote_l1_table)
    r = assert_rejected_cleanly(hv, hv.pin, 1, 2)
    assert r.errno == errno


# An mfn with no page (`!mfn_valid`): get_page_from_l1e's I/O-space path. Without I/O capabilities 4.1
# refuses (boolean: -EINVAL), modern returns -EPERM, each with its own line.
IO_SPACE_LINE = {
    "xen-4.1": "Non-privileged (1) attempt to map I/O space 000003e7",
    "modern": "d1 non-privileged attempt to map MMIO space 003e7",
}


@pytest.mark.parametrize(("rules", "errno"), [("xen-4.1", "EINVAL"), ("modern", "EPERM")])
def test_l1_entry_to_an_mfn_with_no_page(rules, errno):
    hv = Hypervisor(rules, frames=8)
    assert hv.pin(1, 1).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(999, P))
    assert (r.errno, r.log) == (errno, (IO_SPACE_LINE[rules],))
    # A plain store of the same bytes into a data frame is just a store...
    before = counts(hv)
    assert hv.write(3, 0, Entry(999, P | RW)).ok
    assert hv.mmu_update(3, 1, Entry(999, P)).ok  # ...and so is mmu_update of a frame that is no table
    assert hv.entries(3) == [(0, Entry(999, P | RW)), (1, Entry(999, P))]
    assert counts(hv) == before and not hv.has_frame(999) and 999 not in hv.frames
    assert check_invariants(hv) == []
    # ...until the frame is validated as an L1.
    r = assert_rejected_cleanly(hv, hv.pin, 1, 3)
    assert r.errno == errno
    failure = {
        "xen-4.1": "Failure in alloc_l1_table: entry 0",
        "modern": "Failure -1 in promote_l1_table: slot 0",
    }
    assert r.log[:2] == (IO_SPACE_LINE[rules], failure[rules])


# INVALID_MFN (all 40 bits set: `PADDR_MASK >> PAGE_SHIFT`): both versions skip the line
# (`if ( mfn != (PADDR_MASK >> PAGE_SHIFT) ) /* INVALID_MFN? */`); 4.1 returns 0 (-EINVAL) either way, modern
# `return -EINVAL;` on that branch, not the -EPERM of the MMIO line.
@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("flags", [P, P | RW])
def test_l1_entry_naming_invalid_mfn_is_einval_without_a_line(rules, flags):
    hv = Hypervisor(rules, frames=8)
    assert hv.pin(1, 1).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry((1 << 40) - 1, flags))
    assert (r.errno, r.log) == ("EINVAL", ())
    fill(hv, 2, (3, (1 << 40) - 1, flags))  # through validation: only alloc_l1_table's own lines
    r = assert_rejected_cleanly(hv, hv.pin, 1, 2)
    assert r.errno == "EINVAL"
    failure = {
        "xen-4.1": "Failure in alloc_l1_table: entry 3",
        "modern": "Failure -22 in promote_l1_table: slot 0x3",
    }
    assert r.log[0] == failure[rules]


@pytest.mark.parametrize("rules", RULES)
def test_upper_entry_to_an_mfn_with_no_page(rules):
    hv = Hypervisor(rules, frames=8)
    assert hv.pin(2, 1).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(999, P))
    # get_page_and_type_from_pagenr, then get_l2_linear_pagetable's own get_page_from_pagenr (modern: _from_mfn)
    no_ref = {
        "xen-4.1": "Could not get page ref for pfn 3e7",
        "modern": "Could not get page ref for mfn 003e7",
    }
    assert (r.errno, r.log) == ("EINVAL", (no_ref[rules],) * 2)
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(999, P | RW))
    assert r.log == (no_ref[rules], "Attempt to create linear p.t. with write perms")


def test_upper_entry_to_foreign_frame():
    hv = Hypervisor("modern", frames=8, foreign=[64])
    assert hv.pin(2, 1).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(64, P))
    assert r.errno == "EINVAL"
    assert r.log[0].startswith("Error mfn 00040: rd=d1 od=d2 ")


# --------------------------------------------------------------------------------------- update_va_mapping


@pytest.mark.parametrize("slots", [(1, 2, 3, 5), (0, 0, 0, 0), (255, 511, 17, 510), (272, 1, 2, 3)])
def test_update_va_mapping_walks_the_base_pointer(slots):
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv, slots=slots)
    assert hv.new_baseptr(t.l4).ok
    assert hv.l1_slot_for_va(t.va_rw) == (t.l1, slots[3])
    assert hv.l1_slot_for_va(t.va_rw | 0xABC) == (t.l1, slots[3])
    assert hv.update_va_mapping(t.va_rw, Entry(7, P | RW)).ok
    assert hv.entry(t.l1, slots[3]) == Entry(7, P | RW)
    assert state(hv, 7) == ("writable", 1, 2, True, False)
    assert state(hv, t.rw) == ("writable", 0, 1, True, False)
    assert hv.update_va_mapping(t.va_ro, None).ok
    assert hv.entry(t.l1, slots[3] + 1) is None
    assert state(hv, t.ro) == ("none", 0, 1, False, False)
    # The same checks as mmu_update: RW onto a table is refused.
    r = assert_rejected_cleanly(hv, hv.update_va_mapping, t.va_rw, Entry(t.l3, P | RW))
    assert r.errno == "EBUSY"
    assert check_invariants(hv) == []


def test_update_va_mapping_without_a_path():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    r = assert_rejected_cleanly(hv, hv.update_va_mapping, t.va_rw, Entry(7, P))  # no base pointer
    assert r.errno == "EINVAL"
    assert hv.new_baseptr(t.l4).ok
    s4, s3, s2, s1 = t.slots
    for va in (
        va_of(s4 + 1, s3, s2, s1),
        va_of(s4, s3 + 1, s2, s1),
        va_of(s4, s3, s2 + 1, s1),
        va_of(256, 0, 0, 0),
    ):
        assert_rejected_cleanly(hv, hv.update_va_mapping, va, Entry(7, P))


def test_update_va_mapping_through_a_linear_entry_hits_a_non_l1():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    fill(hv, t.l4, (0, t.l4, P))
    assert hv.new_baseptr(t.l4).ok
    # va 0: L4[0] -> L4 (as L3) [0] -> L4 (as L2) [0] -> L4 (as L1): not a validated L1.
    r = assert_rejected_cleanly(hv, hv.update_va_mapping, va_of(0, 0, 0, 0), Entry(7, P))
    assert r.errno == "EINVAL"


# ------------------------------------------------------------------------------------------- guest stores


def test_write_into_validated_upper_table_faults():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    for table in (t.l4, t.l3, t.l2):
        r = assert_rejected_cleanly(hv, hv.write, table, 0, Entry(7, P))
        assert r.errno == "EFAULT"


def test_write_into_validated_l1_is_emulated():
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.write(t.l1, 0, Entry(7, P | RW)).ok  # checked and referenced like mod_l1_entry
    assert state(hv, 7) == ("writable", 1, 2, True, False)
    r = assert_rejected_cleanly(hv, hv.write, t.l1, 1, Entry(t.l2, P | RW))
    assert r.errno == "EFAULT"  # ptwr refuses the emulation: the guest takes the page fault
    assert "EBUSY" in r.reason
    assert r.log == (
        "Bad type (saw 4400000000000001 != exp e000000000000000) for mfn 00003 (pfn 00003)",
        "Could not get page type PGT_writable_page",
        "Error getting mfn 00003 (pfn 00003) from L1 entry 0000000000003003 for l1e_owner d1, pg_owner d1",
        "could not get_page_from_l1e()",  # modern pv/ro-page-fault.c
    )
    r = assert_rejected_cleanly(hv, hv.write, t.l1, 1, Entry(7, P | PSE))
    assert r.log == ("Bad L1 flags 0x80", "could not get_page_from_l1e()")
    assert hv.write(t.l1, 0, None).ok
    assert state(hv, 7) == ("writable", 0, 1, True, False)
    assert check_invariants(hv) == []


def test_write_into_plain_frame_and_foreign_frame():
    hv = Hypervisor("modern", frames=8, foreign=[64])
    before = counts(hv)
    assert hv.write(3, 0, Entry(3, P | RW)).ok  # bytes only: nothing is referenced
    assert counts(hv) == before
    assert hv.entry(3, 0) == Entry(3, P | RW)
    r = assert_rejected_cleanly(hv, hv.write, 64, 0, Entry(3, P))
    assert r.errno == "EFAULT"


def test_write_into_gdt_frame_faults():
    hv = Hypervisor("modern", frames=8)
    assert hv.set_gdt(3).ok
    r = assert_rejected_cleanly(hv, hv.write, 3, 0, Entry(5, P))
    assert r.errno == "EFAULT"


# -------------------------------------------------------------------------------------------------- set_gdt


def test_set_gdt_on_rw_mapped_frame_is_bad_type():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 1, (0, 3, P | RW))
    assert hv.pin(1, 1).ok
    r = assert_rejected_cleanly(hv, hv.set_gdt, 3)
    assert r.errno == "EINVAL"
    assert r.log == ("Bad type (saw e400000000000001 != exp a000000000000000) for mfn 00003 (pfn 00003)",)


def test_set_gdt_switches_frames_and_blocks_rw_mappings():
    hv = Hypervisor("modern", frames=8)
    assert hv.set_gdt(3).ok
    assert state(hv, 3) == ("seg_desc", 1, 2, True, False)
    assert hv.pin(1, 1).ok
    assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(3, P | RW))
    assert hv.mmu_update(1, 0, Entry(3, P)).ok
    assert hv.set_gdt(4).ok
    assert state(hv, 3) == ("seg_desc", 0, 2, True, False)
    assert state(hv, 4) == ("seg_desc", 1, 2, True, False)
    assert hv.mmu_update(1, 1, Entry(3, P | RW)).ok  # count 0: may become writable
    assert check_invariants(hv) == []


# ------------------------------------------------------------------------------------- mmu_update, plain frame


def test_mmu_update_on_plain_frame_is_a_checked_write():
    hv = Hypervisor("modern", frames=8)
    before = counts(hv)
    r = hv.mmu_update(3, 7, Entry(5, P | RW))
    assert r.ok and r.log == ()
    assert hv.entry(3, 7) == Entry(5, P | RW)
    assert counts(hv) == before  # a transient writable type, dropped again
    assert hv.frame(3).type_name == "writable"
    assert check_invariants(hv) == []


def test_mmu_update_on_rw_mapped_frame_and_gdt_frame():
    hv = Hypervisor("modern", frames=8, foreign=[64])
    fill(hv, 1, (0, 3, P | RW))
    assert hv.pin(1, 1).ok
    assert hv.mmu_update(3, 0, Entry(5, P)).ok
    assert state(hv, 3) == ("writable", 1, 2, True, False)
    assert hv.set_gdt(4).ok
    r = assert_rejected_cleanly(hv, hv.mmu_update, 4, 0, Entry(5, P))
    assert r.errno == "EINVAL"
    r = assert_rejected_cleanly(hv, hv.mmu_update, 64, 0, Entry(5, P))
    # modern do_mmu_update: get_page_from_gfn (get_page's line), then its own
    assert r.log == (FOREIGN_GET_PAGE["modern"][0], "Could not get page for normal update")


# ---------------------------------------------------------------------------------------- rollback, broadly


def _rejections(rules):
    """(name, setup, op) for many rejected operations on a live 4-level tree."""

    def live(hv):
        t = build_tree(hv)
        fill(hv, t.l4, (0, t.l4, P))
        assert hv.pin(4, t.l4).ok
        assert hv.new_baseptr(t.l4).ok
        assert hv.set_gdt(7).ok
        return t

    cases = [
        ("pin l1 on l2", lambda hv, t: hv.pin(1, t.l2)),
        ("pin again", lambda hv, t: hv.pin(4, t.l4)),
        ("unpin unpinned", lambda hv, t: hv.unpin(t.l3)),
        ("baseptr l3", lambda hv, t: hv.new_baseptr(t.l3)),
        ("baseptr rw frame", lambda hv, t: hv.new_baseptr(t.rw)),
        ("gdt on table", lambda hv, t: hv.set_gdt(t.l1)),
        ("gdt on rw frame", lambda hv, t: hv.set_gdt(t.rw)),
        ("l1 rw to l4", lambda hv, t: hv.mmu_update(t.l1, 0, Entry(t.l4, P | RW))),
        ("l1 rw to gdt", lambda hv, t: hv.mmu_update(t.l1, 0, Entry(7, P | RW))),
        ("l1 replace with rw to table", lambda hv, t: hv.mmu_update(t.l1, t.slots[3], Entry(t.l1, P | RW))),
        ("l2 -> rw data", lambda hv, t: hv.mmu_update(t.l2, 0, Entry(t.rw, P))),
        ("l2 -> l3", lambda hv, t: hv.mmu_update(t.l2, 0, Entry(t.l3, P))),
        ("l3 -> l1", lambda hv, t: hv.mmu_update(t.l3, 0, Entry(t.l1, P))),
        ("l4 -> l2", lambda hv, t: hv.mmu_update(t.l4, 5, Entry(t.l2, P))),
        ("l4 xen slot", lambda hv, t: hv.mmu_update(t.l4, 256, Entry(t.l3, P))),
        ("l4 self rw", lambda hv, t: hv.mmu_update(t.l4, 9, Entry(t.l4, P | RW))),
        ("l2 G flag", lambda hv, t: hv.mmu_update(t.l2, 0, Entry(0, P | 0x100))),
        ("store l3", lambda hv, t: hv.write(t.l3, 0, None)),
        ("va unmapped", lambda hv, t: hv.update_va_mapping(va_of(9, 9, 9, 9), Entry(0, P))),
        ("va rw to gdt", lambda hv, t: hv.update_va_mapping(t.va_rw, Entry(7, P | RW))),
        ("plain write on gdt", lambda hv, t: hv.mmu_update(7, 0, Entry(0, P))),
    ]
    if rules == "modern":
        cases.append(("l4 linear rw flip", lambda hv, t: hv.mmu_update(t.l4, 0, Entry(t.l4, P | RW))))
        cases.append(("l2 pse flip", lambda hv, t: hv.mmu_update(t.l2, t.slots[2], Entry(t.l1, P | PSE))))
    return [(f"{rules}: {name}", rules, live, op) for name, op in cases]


@pytest.mark.parametrize(
    ("rules", "setup", "op"),
    [c[1:] for r in RULES for c in _rejections(r)],
    ids=[c[0] for r in RULES for c in _rejections(r)],
)
def test_every_rejection_leaves_the_state_untouched(rules, setup, op):
    hv = Hypervisor(rules, frames=8)
    t = setup(hv)
    assert check_invariants(hv) == []
    before = hv.snapshot()
    r = op(hv, t)
    assert not r.ok, r
    assert r.errno
    assert hv.snapshot() == before
    assert check_invariants(hv) == []


# ----------------------------------------------------------------------------- XSA-240: linear chains (modern)


def _three_l2s(rules):
    hv = Hypervisor(rules, frames=8)
    for m in (1, 2, 3):
        assert hv.pin(2, m).ok
    return hv


def test_xsa240_a_table_with_linear_entries_cannot_be_used_linearly():
    hv = _three_l2s("modern")
    assert hv.mmu_update(2, 0, Entry(3, P)).ok  # 2 has a linear entry (2 -> 3)
    assert (hv.linear_entries(2), hv.linear_uses(3)) == (1, 1)
    r = assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(2, P))  # 1 -> 2 would chain 1 -> 2 -> 3
    assert (r.errno, r.log) == ("EINVAL", ())  # refused silently, like Xen
    # Through validation too: a fresh L2 with an entry to 2.
    fill(hv, 4, (0, 2, P))
    r = assert_rejected_cleanly(hv, hv.pin, 2, 4)
    assert r.errno == "EINVAL" and r.log[-1] == "Error -22 while pinning mfn 00004"
    # Once 2 drops its linear entry, 2 may be used linearly.
    assert hv.mmu_update(2, 0, None).ok
    assert (hv.linear_entries(2), hv.linear_uses(3)) == (0, 0)
    assert hv.mmu_update(1, 0, Entry(2, P)).ok
    assert check_invariants(hv) == []


def test_xsa240_a_table_used_linearly_cannot_get_linear_entries():
    hv = _three_l2s("modern")
    assert hv.mmu_update(1, 0, Entry(2, P)).ok  # 2 is used linearly
    r = assert_rejected_cleanly(hv, hv.mmu_update, 2, 0, Entry(3, P))  # 2 -> 3 would chain 1 -> 2 -> 3
    assert r.errno == "EINVAL"
    # What stays allowed: more entries in 1, more users of 2, and self-linear entries anywhere.
    assert hv.mmu_update(1, 1, Entry(3, P)).ok
    assert hv.mmu_update(3, 0, Entry(2, P)).ok is False  # 3 is used linearly by 1 now
    fill(hv, 5, (0, 2, P), (1, 5, P))
    assert hv.pin(2, 5).ok
    assert hv.mmu_update(2, 9, Entry(2, P)).ok  # self-linear: not counted
    assert (hv.linear_entries(1), hv.linear_uses(2), hv.linear_entries(2)) == (2, 2, 0)
    assert check_invariants(hv) == []
    # Devalidating a holder releases its uses.
    assert hv.unpin(5).ok
    assert hv.linear_uses(2) == 1


def test_xsa240_chains_are_allowed_in_xen41():
    hv = _three_l2s("xen-4.1")
    assert hv.mmu_update(2, 0, Entry(3, P)).ok
    assert hv.mmu_update(1, 0, Entry(2, P)).ok  # 1 -> 2 -> 3: 4.1 had no such rule
    assert check_invariants(hv) == []


def test_xsa240_ro_mappings_between_l1s_are_not_linear_entries():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(1, 1).ok and hv.pin(1, 2).ok and hv.pin(2, 3).ok
    assert hv.mmu_update(1, 0, Entry(2, P)).ok  # an L1 mapping another L1 read-only: plain data mapping
    assert hv.mmu_update(2, 0, Entry(1, P)).ok
    assert hv.mmu_update(3, 0, Entry(1, P)).ok  # and an L2 using one of them as its L1
    assert (hv.linear_entries(1), hv.linear_uses(1)) == (0, 0)
    assert check_invariants(hv) == []


@pytest.mark.parametrize("level", [3, 4])
def test_xsa240_applies_at_every_level(level):
    hv = Hypervisor("modern", frames=8)
    for m in (1, 2, 3):
        assert hv.pin(level, m).ok
    assert hv.mmu_update(2, 0, Entry(3, P)).ok
    assert_rejected_cleanly(hv, hv.mmu_update, 1, 0, Entry(2, P))


# ------------------------------------------------------------ xen-4.1: removing an L2 entry flipped to PSE


def _xsa148_flipped(rules="xen-4.1"):
    """L2 4 (pinned) -> L1 0 (pinned); the L2 entry flipped to PSE through 4.1's fast path."""
    hv = Hypervisor(rules, frames=8)
    assert hv.write(4, 0, Entry(0, P | RW)).ok
    assert hv.pin(1, 0).ok
    assert hv.pin(2, 4).ok
    assert hv.mmu_update(4, 0, Entry(0, P | RW | PSE)).ok
    assert state(hv, 0) == ("l1", 2, 3, True, True)  # the flipped entry still holds its one l1 ref
    return hv


def _superpage_damage(hv):
    return [v.message for v in check_invariants(hv) if v.message.startswith("put_superpage(0x0)")]


def test_xen41_clearing_a_pse_l2_entry_drops_refs_on_512_frames():
    hv = _xsa148_flipped()
    r = hv.mmu_update(4, 0, None)
    assert r.ok and r.log == ()  # Xen 4.1 (release) says nothing
    # put_superpage -> put_spage_pages: put_page_and_type on frames 0..511.
    assert state(hv, 0) == ("l1", 1, 2, True, True)  # its own ref: right by luck
    assert state(hv, 4) == ("l2", 0, 1, False, True)  # the L2 lost its pin's type ref: devalidated
    assert state(hv, 5) == ("none", 0, 0, False, False)  # allocation ref gone: Xen freed the page
    assert all(hv.frame(m).count >= 0 and hv.frame(m).type_count >= 0 for m in hv.frames)
    [message] = _superpage_damage(hv)
    assert "type count already 0 (Xen wraps it) on 0x1-0x3, 0x5-0x7" in message
    assert "504 frames not in the model left alone" in message
    found = {v.invariant for v in check_invariants(hv)}
    assert {"type_count", "general_count"} <= found
    # Later puts of refs that were stolen stop at zero too, and are recorded.
    assert hv.unpin(4).ok
    assert any(
        "frame 0x4: a type reference was dropped at type count 0" in v.message for v in check_invariants(hv)
    )


@pytest.mark.parametrize("how", ["replace", "devalidate"])
def test_xen41_every_removal_of_a_pse_l2_entry_is_put_superpage(how):
    hv = _xsa148_flipped()
    if how == "replace":
        assert hv.mmu_update(4, 0, Entry(1, P)).ok  # slow path: get the new l1, put the old PSE entry
    else:
        assert hv.unpin(4).ok  # free_l2_table -> put_page_from_l2e
    assert len(_superpage_damage(hv)) == 1
    assert hv.frame(6).count == 0


def test_xen41_pse_flip_back_before_removal_is_harmless():
    hv = _xsa148_flipped()
    assert hv.mmu_update(4, 0, Entry(0, P | RW)).ok  # fast path again: back to a plain L2 entry
    assert hv.mmu_update(4, 0, None).ok
    assert state(hv, 0) == ("l1", 1, 2, True, True)
    assert check_invariants(hv) == [] and hv.damage == ()


def test_xen41_put_superpage_is_rolled_back_with_its_damage(monkeypatch):
    hv = _xsa148_flipped()
    before = hv.snapshot()
    real = hv._put_superpage

    def then_fail(mfn, flags):
        real(mfn, flags)
        assert hv.damage
        raise RuntimeError("after put_superpage")

    monkeypatch.setattr(hv, "_put_superpage", then_fail)
    with pytest.raises(RuntimeError):
        hv.mmu_update(4, 0, None)
    assert hv.snapshot() == before and hv.damage == ()


# ------------------------------------------------------------------------- bad arguments and rollback


def _busy(rules="modern"):
    hv = Hypervisor(rules, frames=8, foreign=[64])
    t = build_tree(hv)
    assert hv.pin(4, t.l4).ok
    assert hv.new_baseptr(t.l4).ok
    return hv, t


BAD_CALLS = {
    "write no frame": lambda hv, t: hv.write(99, 0, None),
    "write slot 512": lambda hv, t: hv.write(7, 512, Entry(5, P)),
    "write slot -1": lambda hv, t: hv.write(7, -1, Entry(5, P)),
    "write slot str": lambda hv, t: hv.write(7, "0", Entry(5, P)),
    "write entry tuple": lambda hv, t: hv.write(7, 0, (5, P)),
    "write entry no P": lambda hv, t: hv.write(7, 0, Entry(5, RW)),
    "write entry flags": lambda hv, t: hv.write(7, 0, Entry(5, P | 0x200)),
    "write entry mfn": lambda hv, t: hv.write(7, 0, Entry(1 << 40, P)),
    "write entry mfn neg": lambda hv, t: hv.write(7, 0, Entry(-1, P)),
    "mmu_update no frame": lambda hv, t: hv.mmu_update(999, 0, Entry(5, P)),
    "mmu_update slot": lambda hv, t: hv.mmu_update(t.l1, 600, Entry(5, P)),
    "mmu_update bool mfn": lambda hv, t: hv.mmu_update(True, 0, None),
    "va": lambda hv, t: hv.update_va_mapping(-1, None),
    "va entry": lambda hv, t: hv.update_va_mapping(t.va_rw, Entry(5, 0)),
    "pin no frame": lambda hv, t: hv.pin(1, 999),
    "pin level": lambda hv, t: hv.pin(5, 7),
    "unpin no frame": lambda hv, t: hv.unpin(-3),
    "baseptr no frame": lambda hv, t: hv.new_baseptr(8),
    "gdt no frame": lambda hv, t: hv.set_gdt(None),
    "fill no frame": lambda hv, t: hv.fill_table(99, [(0, 1, P)]),
    "fill live table": lambda hv, t: hv.fill_table(t.l1, [(0, 7, P)]),
    "fill bad slot late": lambda hv, t: hv.fill_table(7, [(0, 5, P), (1, 999, P), (600, 5, P)]),
    "fill bad flags": lambda hv, t: hv.fill_table(7, [(0, 5, P), (1, 5, RW)]),
    "fill bad target": lambda hv, t: hv.fill_table(7, [(0, 5, P), (1, 1 << 40, P)]),
    "fill not triples": lambda hv, t: hv.fill_table(7, [(0, 5, P), (1, 5)]),
}


@pytest.mark.parametrize("call", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_bad_arguments_raise_value_error_and_change_nothing(call):
    hv, t = _busy()
    fill(hv, 7, (3, 6, P), (4, 999, P))  # a frame with entries, one to an mfn with no page
    before = hv.snapshot()
    with pytest.raises(ValueError) as info:
        BAD_CALLS[call](hv, t)
    assert "\n" not in str(info.value)
    assert hv.snapshot() == before
    assert check_invariants(hv) == []


def test_the_reviewers_repros():
    hv = Hypervisor("modern", frames=8)
    assert hv.mmu_update(3, 0, Entry(999, P)).ok  # was: KeyError, type count left at 1
    assert state(hv, 3) == ("writable", 0, 1, True, False)
    assert hv.write(3, 1, Entry(999, P)).ok  # was: slots={0: 999} and an orphan edge
    assert hv.entries(3) == [(0, Entry(999, P)), (1, Entry(999, P))]
    assert sorted(hv.graph.predecessors(999)) == [3]
    assert hv.write(3, 0, None).ok and hv.write(3, 1, None).ok
    assert hv.entries(3) == [] and not hv.has_frame(999)
    for slot in (600, -1):
        with pytest.raises(ValueError, match="slot"):
            hv.write(3, slot, None)
    assert check_invariants(hv) == []


def test_fill_table_is_all_or_nothing_over_existing_entries():
    hv = Hypervisor("modern", frames=8)
    fill(hv, 7, (3, 6, P), (4, 5, P | RW))
    before = hv.snapshot()
    with pytest.raises(ValueError, match="slot 512"):
        hv.fill_table(7, [(3, 1, P), (9, 999, P), (512, 2, P)])  # overwrites slot 3 before failing
    assert hv.snapshot() == before
    hv.fill_table(7, [(3, 1, P), (9, 999, P)])
    assert hv.entries(7) == [(3, Entry(1, P)), (4, Entry(5, P | RW)), (9, Entry(999, P))]


def test_any_exception_inside_a_hypercall_rolls_back(monkeypatch):
    hv = Hypervisor("modern", frames=8)
    t = build_tree(hv)
    assert hv.pin(2, 7).ok
    before = hv.snapshot()
    calls = []
    real = hv._get_page_type

    def boom(page, type_):
        calls.append(page.mfn)
        if len(calls) == 3:  # the L2, after the L4 and the L3 took their refs and began validating
            raise RuntimeError("model bug")
        return real(page, type_)

    monkeypatch.setattr(hv, "_get_page_type", boom)
    with pytest.raises(RuntimeError, match="model bug"):
        hv.pin(4, t.l4)
    assert calls == [t.l4, t.l3, t.l2]
    assert hv.snapshot() == before
    monkeypatch.undo()
    assert check_invariants(hv) == []
    assert hv.pin(4, t.l4).ok
