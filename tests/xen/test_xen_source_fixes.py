"""Behaviours checked against Xen's source (issue 11, "Fix on the way"): `update_va_mapping` with a VA that
fails `__addr_ok`, L1 entries naming INVALID_MFN, and modern Xen's `type_info` encoding in log lines."""

from __future__ import annotations

import pytest
from xtrees import build_tree, fill, va_of

from xenpin.xen.flags import RW, Entry, P
from xenpin.xen.frame import (
    FRESH_COUNT_INFO,
    WRITABLE_ONCE,
    PGT_l1_page_table,
    PGT_l4_page_table,
    PGT_locked,
    PGT_partial,
    PGT_pinned,
    PGT_validated,
    PGT_writable_page,
    modern_count_info,
    modern_type_info,
)
from xenpin.xen.hypervisor import HYPERVISOR_VIRT_END, Hypervisor, addr_ok
from xenpin.xen.invariants import check_invariants
from xenpin.xen.rules import MODERN, XEN_41

# ------------------------------------------------------------------------- update_va_mapping and __addr_ok


@pytest.mark.parametrize(
    ("va", "ok"),
    [
        (0, True),
        ((1 << 47) - 1, True),
        (1 << 47, False),  # first non-canonical VA
        (1 << 63, False),  # XTF xsa-279's VA
        (0xFFFF7FFFFFFFFFFF, False),  # last non-canonical VA
        (0xFFFF800000000000, False),  # HYPERVISOR_VIRT_START, L4 slot 256
        (HYPERVISOR_VIRT_END - 1, False),  # the end of L4 slot 271
        (HYPERVISOR_VIRT_END, True),  # L4 slot 272: the guest's again
        ((1 << 64) - 1, True),
    ],
)
def test_addr_ok_is_modern_xens_macro(va, ok):
    assert addr_ok(va) is ok


def _tree_at_va_zero(rules: str) -> tuple[Hypervisor, object]:
    hv = Hypervisor(rules, frames=8)
    t = build_tree(hv, slots=(0, 0, 0, 0))  # VA 0 is mapped by L1 slot 0
    assert hv.new_baseptr(t.l4).ok
    return hv, t


@pytest.mark.parametrize(
    "va",
    [
        1 << 63,  # XTF xsa-279: hypercall_update_va_mapping(1ul << 63, 0, UVMF_INVLPG | UVMF_ALL)
        (1 << 63) | va_of(0, 0, 0, 1),  # its low 48 bits name the RO slot of the tree
        1 << 47,
        0xFFFF800000000000,  # Xen's range: canonical, but __addr_ok refuses it too
    ],
)
def test_modern_update_va_mapping_refuses_a_va_failing_addr_ok(va):
    hv, t = _tree_at_va_zero("modern")
    assert hv.l1_slot_for_va(va) is None
    for entry in (None, Entry(7, P), Entry(7, P | RW)):
        before = hv.snapshot()
        r = hv.update_va_mapping(va, entry)
        # __do_update_va_mapping: map_guest_l1e returns NULL -> rc = -EINVAL, no log line, nothing changed.
        assert (r.ok, r.errno, r.log) == (False, "EINVAL", ())
        assert hv.snapshot() == before
    assert hv.entry(t.l1, 0) == Entry(t.rw, P | RW) and hv.entry(t.l1, 1) == Entry(t.ro, P)
    assert check_invariants(hv) == []


def test_xen41_update_va_mapping_masks_the_va_to_48_bits():
    """4.1's guest_map_l1e has no __addr_ok: `l2_linear_offset` masks with VADDR_MASK, so the non-canonical
    VA edits the entry of the canonical VA with the same low 48 bits (XTF xsa-279's 1 << 63: VA 0)."""
    hv, t = _tree_at_va_zero("xen-4.1")
    assert hv.l1_slot_for_va(1 << 63) == (t.l1, 0)
    r = hv.update_va_mapping(1 << 63, None)
    assert (r.ok, r.log) == (True, ())
    assert hv.entry(t.l1, 0) is None  # VA 0's entry went
    assert hv.update_va_mapping((1 << 63) | va_of(0, 0, 0, 1), Entry(7, P)).ok
    assert hv.entry(t.l1, 1) == Entry(7, P)
    assert check_invariants(hv) == []


def test_update_va_mapping_in_xen_range_is_einval_under_both():
    for rules in ("xen-4.1", "modern"):
        hv, _t = _tree_at_va_zero(rules)
        before = hv.snapshot()
        r = hv.update_va_mapping(0xFFFF830000000000, Entry(7, P))  # the direct map, L4 slot 262
        assert (r.ok, r.errno, r.log) == (False, "EINVAL", ())
        assert hv.snapshot() == before


def test_rule_fields():
    assert (XEN_41.va_addr_ok, MODERN.va_addr_ok) == (False, True)
    assert (XEN_41.type_info_layout, MODERN.type_info_layout) == ("xen-4.1", "modern")
    assert (XEN_41.log_texts, MODERN.log_texts) == ("xen-4.1", "modern")


# ------------------------------------------------------------------------------------------- INVALID_MFN


def test_modern_invalid_mfn_is_einval_not_eperm_through_update_va_mapping():
    hv, t = _tree_at_va_zero("modern")
    assert hv.pin(4, t.l4).ok
    before = hv.snapshot()
    r = hv.update_va_mapping(0, Entry((1 << 40) - 1, P | RW))
    assert (r.errno, r.log) == ("EINVAL", ())
    assert hv.snapshot() == before
    r = hv.update_va_mapping(0, Entry((1 << 40) - 2, P))  # any other mfn with no page: MMIO, -EPERM
    assert (r.errno, r.log) == ("EPERM", ("d1 non-privileged attempt to map MMIO space fffffffffe",))


# ------------------------------------------------------------------------------- modern type_info layout


@pytest.mark.parametrize(
    ("xen41", "modern"),
    [
        (0x7400000000000001, 0xE400000000000001),  # writable, validated, count 1 (the example)
        (WRITABLE_ONCE, 0xE400000000000001),
        (0x1C00000000000001, 0x2C00000000000001),  # l1, pinned, validated
        (PGT_l1_page_table, 0x2000000000000000),
        (PGT_l4_page_table | PGT_validated | 3, 0x8400000000000003),
        (PGT_writable_page, 0xE000000000000000),
        (5 << 60 | PGT_validated | 2, 0xA400000000000002),  # seg_desc
        (8 << 60, 6 << 61),  # PGT_shared_page: 8 in 4.1, 6 in modern
        (PGT_l1_page_table | PGT_partial | 1, 0x2100000000000001),
        (PGT_l1_page_table | PGT_locked, 0x3000000000000000),  # PGT_locked: bit 55 -> bit 60
        (PGT_pinned | ((1 << 55) - 1), PGT_pinned | ((1 << 55) - 1)),  # count field: 55 bits in both
        (0, 0),
    ],
)
def test_modern_type_info_conversion(xen41, modern):
    assert modern_type_info(xen41) == modern


def test_modern_type_info_refuses_a_type_with_no_counterpart():
    with pytest.raises(ValueError, match="type 6"):
        modern_type_info(6 << 60)


def test_modern_count_info_keeps_allocated_and_count():
    assert modern_count_info(FRESH_COUNT_INFO) == FRESH_COUNT_INFO == 0x8000000000000001
    with pytest.raises(ValueError):
        modern_count_info(1 << 61)  # 4.1's PGC_page_table: modern has PGC_extra there


@pytest.mark.parametrize(
    ("rules", "line"),
    [
        ("xen-4.1", "Bad type (saw 1400000000000001 != exp 7000000000000000) for mfn 3 (pfn 3)"),
        ("modern", "Bad type (saw 2400000000000001 != exp e000000000000000) for mfn 00003 (pfn 00003)"),
    ],
)
def test_rw_mapping_of_a_validated_l1_prints_the_versions_encoding(rules, line):
    hv = Hypervisor(rules, frames=8)
    fill(hv, 2, (0, 3, P))  # an L2 whose entry makes frame 3 a validated (unpinned) L1, count 1
    assert hv.pin(2, 2).ok
    assert hv.pin(1, 1).ok
    r = hv.mmu_update(1, 5, Entry(3, P | RW))
    assert not r.ok and r.log[0] == line


def test_error_while_validating_prints_modern_encoding():
    hv = Hypervisor("modern", frames=8)
    assert hv.pin(1, 3).ok
    fill(hv, 2, (0, 3, P | RW))  # validating 2 as an L1 needs 3 writable: it is a pinned L1
    r = hv.pin(1, 2)
    assert r.log[-2] == (
        "Error while validating mfn 00002 (pfn 00002) for type 2000000000000000:"
        " caf=8000000000000002 taf=2000000000000001"
    )
