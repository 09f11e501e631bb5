"""Rule sets: where Xen 4.1 (2011) and modern Xen differ in PV pagetable validation.

Sources: `xen/arch/x86/mm.c` at RELEASE-4.1.0 and current master, and the XSA-148 / XSA-182 fixes.
- `mod_l1_entry` / `mod_l2_entry` .. `mod_l4_entry` fast paths: which bits of the old and new entry must be
  equal (besides the frame number) for Xen to write the entry without revalidating it. 4.1 compares P and RW
  at L1 (`l1e_has_changed(ol1e, nl1e, _PAGE_RW | _PAGE_PRESENT)`) and only P at L2-L4; modern compares every
  bit outside `FASTPATH_FLAG_WHITELIST` (NX, AVAIL, GLOBAL, DIRTY, ACCESSED, USER).
- PSE at L2: 4.1 lets the flag past `L2_DISALLOW_MASK` and rejects it in `get_page_from_l2e` unless the
  `allowsuperpage` boot option is on; modern puts PSE in `L2_DISALLOW_MASK`.
- The errno of `get_page_from_l1e`: 4.1 returns a boolean, so every refusal is `-EINVAL` from `mod_l1_entry` /
  `alloc_l1_table`. Modern returns an errno: `could_not_pin` gives `-EBUSY` both for a frame that cannot take the
  `writable` type and for a frame of another domain (`real_pg_owner != pg_owner`; `xsm_priv_mapping` only decides
  whether a privileged domain may map it); an mfn that is no RAM page (`!mfn_valid`) takes the MMIO path, where
  a domain without I/O capabilities gets `-EPERM` ("non-privileged attempt to map MMIO space"), except for
  `INVALID_MFN` (`mfn == PADDR_MASK >> PAGE_SHIFT`), which gets `-EINVAL` and no line (4.1: no line either).
- Linear page tables (XSA-240): modern Xen counts, per page, linear entries *in* it (`inc_linear_entries`) and
  linear uses *of* it (`inc_linear_uses`) in one signed `linear_pt_count`, so a table may have linear entries or
  be the target of one, never both: chains of linear entries are refused (`-EINVAL`). 4.1 has no such rule.
- Removing a PSE L2 entry (`put_page_from_l2e`): 4.1 calls `put_superpage`, which without `allowsuperpage`
  is `put_spage_pages`: `put_page_and_type` on each of the 512 frames from the entry's mfn, whatever the entry
  took (an entry flipped to PSE through the fast path took one `l1` ref: XSA-148). Modern calls
  `put_data_pages` (a type ref only if RW), but can never hold such an entry.
- `update_va_mapping` with a VA outside the guest's range: modern `map_guest_l1e` (`xen/arch/x86/pv/mm.c`)
  starts with `if ( unlikely(!__addr_ok(linear)) ) return NULL;`, and `__do_update_va_mapping` (`mm.c`) then
  returns `-EINVAL` before `mod_l1_entry`, with no log line. `__addr_ok` (`asm/x86_64/uaccess.h`) is
  `addr < (1UL<<47) || addr >= HYPERVISOR_VIRT_END`: it refuses non-canonical VAs and Xen's own range
  (L4 slots 256..271) alike. The check came with d06a0d715e ("x86: add address validity check to
  guest_map_l1e()", Xen 4.4). 4.1's `guest_map_l1e` (`asm-x86/paging.h`) has none: it reads
  `__linear_l2_table[l2_linear_offset(addr)]`, and `l2_linear_offset` masks the VA with `VADDR_MASK` (48 bits),
  so a non-canonical VA edits the entry of the canonical VA with the same low 48 bits (XTF `xsa-279` passes
  `1ul << 63`: VA 0 under 4.1).
- Log lines: modern Xen prints its own texts (`Error mfn ...: rd=d1 od=d2 caf=... taf=...`, `%05lx` mfns,
  `d1 non-privileged attempt to map MMIO space ...`) and `type_info` in its own bit layout (`frame.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xenpin.xen.flags import ALL_FLAGS, NX, PSE, RW, US, A, D, G, P

# BASE_DISALLOW_MASK restricted to the flags xenpin models: PAT/PSE (bit 7) and GLOBAL (bit 8).
_L1_DISALLOW = PSE
_L2_DISALLOW_41 = G
_L2_DISALLOW_MODERN = G | PSE
_L3_DISALLOW = G | PSE
_L4_DISALLOW = G | PSE

FASTPATH_FLAG_WHITELIST = NX | G | D | A | US


@dataclass(frozen=True)
class RuleSet:
    """One Xen version's answers to the questions where versions differ."""

    name: str
    disallow: tuple[int, int, int, int]  # L1..L4 `lN_disallow_mask`
    l1_fastpath_compare: int  # flags that must be unchanged for the L1 fast path
    upper_fastpath_compare: int  # the same for L2..L4
    pse_needs_allowsuperpage: bool  # 4.1: PSE at L2 passes the mask, then fails without `allowsuperpage`
    l1_conflict_errno: str  # `get_page_from_l1e` when the `writable` type cannot be taken
    foreign_errno: str  # `get_page_from_l1e` for a frame of another domain (`could_not_pin`)
    io_space_errno: str  # `get_page_from_l1e` for an mfn with no page (`!mfn_valid`): the I/O-space path
    linear_pt_exclusive: bool  # XSA-240: a table has linear entries or is used linearly, not both
    pse_put_all_types: bool  # removing a PSE L2 entry: a type ref off all 512 frames (put_spage_pages)
    # update_va_mapping: `map_guest_l1e` refuses a VA failing `__addr_ok` (non-canonical or Xen's range)
    va_addr_ok: bool = False
    type_info_layout: str = "xen-4.1"  # `page_info` bit layout of `caf=` / `taf=` / `saw` values in log lines
    log_texts: str = "xen-4.1"  # whose message texts the validator's log lines use

    def disallow_mask(self, level: int) -> int:
        return self.disallow[level - 1]


XEN_41 = RuleSet(
    name="xen-4.1",
    disallow=(_L1_DISALLOW, _L2_DISALLOW_41, _L3_DISALLOW, _L4_DISALLOW),
    l1_fastpath_compare=P | RW,
    upper_fastpath_compare=P,
    pse_needs_allowsuperpage=True,
    l1_conflict_errno="EINVAL",
    foreign_errno="EINVAL",
    io_space_errno="EINVAL",
    linear_pt_exclusive=False,
    pse_put_all_types=True,
    va_addr_ok=False,
    type_info_layout="xen-4.1",
    log_texts="xen-4.1",
)

MODERN = RuleSet(
    name="modern",
    disallow=(_L1_DISALLOW, _L2_DISALLOW_MODERN, _L3_DISALLOW, _L4_DISALLOW),
    l1_fastpath_compare=ALL_FLAGS & ~FASTPATH_FLAG_WHITELIST,
    upper_fastpath_compare=ALL_FLAGS & ~FASTPATH_FLAG_WHITELIST,
    pse_needs_allowsuperpage=False,
    l1_conflict_errno="EBUSY",
    foreign_errno="EBUSY",
    io_space_errno="EPERM",
    linear_pt_exclusive=True,
    pse_put_all_types=False,
    va_addr_ok=True,
    type_info_layout="modern",
    log_texts="modern",
)

RULES: dict[str, RuleSet] = {r.name: r for r in (XEN_41, MODERN)}


def get_rules(name: str | RuleSet) -> RuleSet:
    """Look up a rule set by name; raise ValueError naming the known ones."""
    if isinstance(name, RuleSet):
        return name
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule set {name!r} (known: {', '.join(RULES)})") from None
