"""Rule sets: where Xen 4.1 (2011) and modern Xen differ in PV pagetable validation.

Sources: `xen/arch/x86/mm.c` at RELEASE-4.1.0 and current master, and the XSA-148 / XSA-182 fixes.
- `mod_l1_entry` / `mod_l2_entry` .. `mod_l4_entry` fast paths: which bits of the old and new entry must be
  equal (besides the frame number) for Xen to write the entry without revalidating it. 4.1 compares P and RW
  at L1 (`l1e_has_changed(ol1e, nl1e, _PAGE_RW | _PAGE_PRESENT)`) and only P at L2-L4; modern compares every
  bit outside `FASTPATH_FLAG_WHITELIST` (NX, AVAIL, GLOBAL, DIRTY, ACCESSED, USER).
- PSE at L2: 4.1 lets the flag past `L2_DISALLOW_MASK` and rejects it in `get_page_from_l2e` unless the
  `allowsuperpage` boot option is on; modern puts PSE in `L2_DISALLOW_MASK`.
- The errno of an L1 entry whose frame cannot take the `writable` type: 4.1 `-EINVAL`, 4.2+ `-EBUSY`; a foreign
  frame in an L1 entry: 4.1 `-EINVAL`, modern `-EPERM` (`xsm_priv_mapping`).
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
    foreign_errno: str  # `get_page_from_l1e` for a frame of another domain

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
)

MODERN = RuleSet(
    name="modern",
    disallow=(_L1_DISALLOW, _L2_DISALLOW_MODERN, _L3_DISALLOW, _L4_DISALLOW),
    l1_fastpath_compare=ALL_FLAGS & ~FASTPATH_FLAG_WHITELIST,
    upper_fastpath_compare=ALL_FLAGS & ~FASTPATH_FLAG_WHITELIST,
    pse_needs_allowsuperpage=False,
    l1_conflict_errno="EBUSY",
    foreign_errno="EPERM",
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
