"""Rendering of `xenpin list`: the kernel variants (with release, commits, placement, reserve step and what each
expects of every property), the properties, Xen's invariants and the rule sets, as text tables or one JSON
document."""

from __future__ import annotations

from typing import Any

from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.report.jsondoc import document, file_of
from xenpin.report.table import shown_path, table_lines
from xenpin.xen.flags import P
from xenpin.xen.invariants import INVARIANTS
from xenpin.xen.rules import RULES, RuleSet

# One line each, as the README's property table says them.
PROPERTY_MEANINGS = {
    "buffer_fits": "no alloc_low_page ever passes pgt_buf_top",
    "alias_writable": "every page alloc_low_page hands out is writable through its early_memremap alias",
    "no_rw_alias": "no page is ever a live page table while some validated L1 maps it RW",
    "spare_writable": "right after each call's reserve step, no mapped page in [pgt_buf_end, pgt_buf_top) is"
    " read-only",
    "spare_freed": "no page in [pgt_buf_end, pgt_buf_top) stays reserved",
    "live_reserved": "every page in [pgt_buf_start, pgt_buf_end) is reserved",
}

# One line each, from xenpin/xen/invariants.py's description.
INVARIANT_MEANINGS = {
    "exclusivity": "a validated table or descriptor frame has no live RW L1 mapping; a frame's type is one every"
    " holder agrees with",
    "type_count": "each frame's type count equals a recount of its holders; a reference Xen dropped that nobody"
    " held is reported",
    "general_count": "each frame's general count equals a recount of its holders (entries, pin, base pointer,"
    " GDT, allocation)",
    "closure": "every live entry passes its level's checks under the rule set; under modern rules no table both"
    " holds and is the target of linear entries",
    "global_safety": "no translation path from a live root ends RW in a validated table or descriptor frame"
    " (PSE leaves and linear entries included)",
}


def rule_meaning(rules: RuleSet) -> str:
    """What a rule set answers where Xen versions differ, from its fields."""
    fast = (
        "the L2-L4 fast path compares only P (XSA-148, XSA-182)"
        if rules.upper_fastpath_compare == P
        else "the fast paths compare every flag but NX, G, D, A and US"
    )
    pse = (
        "PSE at L2 refused without allowsuperpage"
        if rules.pse_needs_allowsuperpage
        else "PSE in L2_DISALLOW_MASK"
    )
    errnos = (
        f"a refused L1 entry {rules.l1_conflict_errno}, another domain's frame {rules.foreign_errno},"
        f" an mfn with no page {rules.io_space_errno}"
    )
    linear = (
        "a table has linear entries or is used linearly, not both (XSA-240)"
        if rules.linear_pt_exclusive
        else "no rule on linear page tables"
    )
    put = (
        "removing a PSE L2 entry drops a type ref off all 512 frames"
        if rules.pse_put_all_types
        else "removing a PSE L2 entry puts the data pages"
    )
    return "; ".join((fast, pse, errnos, linear, put))


def _expectations(v: KernelVariant) -> str:
    """`all proved`, or each verdict other than proved with its properties."""
    other: dict[str, list[str]] = {}
    for prop in PROPERTIES:
        if v.expect[prop] != "proved":
            other.setdefault(v.expect[prop], []).append(prop)
    return "; ".join(f"{verdict}: {', '.join(props)}" for verdict, props in other.items()) or "all proved"


def _reserve_step(v: KernelVariant) -> str:
    return v.code["pagetable_reserve"]


def render_text(variants: list[KernelVariant]) -> str:
    rows = [
        (
            v.name,
            shown_path(v.path),
            v.platform,
            v.release,
            v.commit,
            v.placement,
            _reserve_step(v),
            _expectations(v),
        )
        for v in variants
    ]
    columns = ("variant", "file", "platform", "release", "commit(s)", "placement", "reserve", "expected")
    return "\n".join(
        [
            "variants (reserve: the pagetable_reserve code it runs, by release):",
            *table_lines(columns, rows, 2),
            "",
            "properties:",
            *table_lines(("property", "meaning"), list(PROPERTY_MEANINGS.items()), 2),
            "",
            "invariants (xenpin replay's check):",
            *table_lines(("invariant", "meaning"), [(i, INVARIANT_MEANINGS[i]) for i in INVARIANTS], 2),
            "",
            "rule sets (--rules):",
            *table_lines(("rules", "meaning"), [(name, rule_meaning(r)) for name, r in RULES.items()], 2),
        ]
    )


def list_json(variants: list[KernelVariant]) -> dict[str, Any]:
    return document(
        "list",
        variants=[
            {
                "variant": v.name,
                "file": file_of(v.path),
                "platform": v.platform,
                "release": v.release,
                "commit": v.commit,
                "description": v.description,
                "placement": v.placement,
                "reserve_step": _reserve_step(v),
                "code": dict(v.code),
                "expect": {p: v.expect[p] for p in PROPERTIES},
            }
            for v in variants
        ],
        properties=[{"property": p, "meaning": PROPERTY_MEANINGS[p]} for p in PROPERTIES],
        invariants=[{"invariant": i, "meaning": INVARIANT_MEANINGS[i]} for i in INVARIANTS],
        rule_sets=[{"rules": name, "meaning": rule_meaning(r)} for name, r in RULES.items()],
    )
