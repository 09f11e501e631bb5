"""The safety invariants of `xenpin.xen.invariants`, as predicates over the symbolic state.

Each predicate says what `check_invariants` checks, clause by clause, so that on every concrete state of the
bound the predicate holds exactly when `check_invariants` reports no violation of that invariant (the
differential test in `tests/symbolic/pv/` checks it):
- `exclusivity`: no live RW L1 entry maps a validated table or a descriptor page in use; every holder of a
  frame with a type count wants the frame's type; a frame with a type count is validated.
- `type_count` / `general_count`: the counts equal the holders (live entries, pin, base pointer, GDT, and the
  allocation ref), and Xen's own accounting never went wrong (`damage`).
- `closure`: every live entry passes its level's checks; under modern rules no table both holds linear
  entries and is used as one (XSA-240).
- `global_safety`: no hardware walk with RW at every level, from the base pointer or a pinned L4, ends at a
  protected frame (PSE leaves and linear entries included).
`wellformed` holds in every state a guest can reach and is what makes the others inductive: entries and counts
use only the bits Xen's encoding has, the foreign frame is untouched, a pinned frame is a live table, the base
pointer a live L4, the GDT a descriptor page in use, a table with no type count is not validated, a writable or
descriptor page always is, and an untyped page never.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import z3

from xenpin.symbolic.pv.state import BV, ENTRY_BITS, SymState, c
from xenpin.symbolic.pv.step import (
    conj,
    disj,
    entry_mfn,
    eq,
    has,
    has_linear_entries,
    has_linear_uses,
    implies,
    is_table_type,
    live_at,
    live_level,
    neg,
    type_count,
    type_of,
)
from xenpin.xen.flags import ENTRIES_PER_TABLE, PSE, RW, P
from xenpin.xen.frame import (
    FRESH_COUNT_INFO,
    LEVEL_TYPE,
    TYPE_NAMES,
    PGC_allocated,
    PGC_count_mask,
    PGT_count_mask,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
)
from xenpin.xen.hypervisor import XEN_L4_SLOTS
from xenpin.xen.invariants import INVARIANTS
from xenpin.xen.rules import RuleSet

STATE_INVARIANTS = ("wellformed", *INVARIANTS)


def live_entries(s: SymState) -> list[tuple[int, int, int, z3.BoolRef, BV]]:
    """Every entry that may hold references: `(level, table, slot, is live at that level, entry)`."""
    out = []
    for table, row in enumerate(s.entries):
        ti = s.type_info[table]
        for j, slot in enumerate(s.bound.slots):
            e = row[j]
            for level in (1, 2, 3, 4):
                if level == 4 and slot in XEN_L4_SLOTS:
                    continue
                out.append((level, table, slot, conj(live_at(ti, level), has(e, P)), e))
    return out


def protected(s: SymState, mfn: BV) -> z3.BoolRef:
    """A frame the guest must never write: a validated table, or a descriptor page in use."""
    ti = s.ti(mfn)
    return disj(
        neg(eq(live_level(ti), 0)), conj(neg(eq(type_count(ti), 0)), eq(type_of(ti), PGT_seg_desc_page))
    )


def _owned(s: SymState, mfn: BV) -> z3.BoolRef:
    return z3.ULT(mfn, s.bound.frames)


Clauses = list[tuple[str, z3.BoolRef]]


def closure(s: SymState, rules: RuleSet) -> Clauses:
    """Per table frame: its live entries pass their level's checks (and XSA-240's rule for it)."""
    per_table: dict[int, list] = {m: [] for m in range(s.bound.frames)}
    for level, table, _slot, live, e in live_entries(s):
        target = entry_mfn(e)
        ok = [_owned(s, target), e & rules.disallow_mask(level) == 0]
        if level == 2:
            ok.append(neg(has(e, PSE)))
        if level > 1:
            tti = s.ti(target)
            linear = conj(eq(type_of(tti), LEVEL_TYPE[level]), has(tti, PGT_validated))
            below = conj(eq(type_of(tti), LEVEL_TYPE[level - 1]), has(tti, PGT_validated))
            ok.append(z3.If(target == table, neg(has(e, RW)), z3.If(linear, neg(has(e, RW)), below)))
        per_table[table].append(implies(live, conj(ok)))
    out = [(f"entries of frame {m:#x}", conj(parts)) for m, parts in per_table.items()]
    if rules.linear_pt_exclusive:
        out += [
            (
                f"frame {m:#x}: linear entries or linear uses (XSA-240)",
                neg(conj(has_linear_entries(s, c(m)), has_linear_uses(s, c(m)))),
            )
            for m in range(s.bound.frames)
        ]
    return out


def exclusivity(s: SymState, rules: RuleSet) -> Clauses:
    """Per frame: no live RW L1 entry maps it while protected, its holders want its type, and a frame with a
    type count is validated."""
    per_frame: dict[int, list] = {m: [] for m in range(s.bound.frames + 1)}
    unprotected = [neg(protected(s, c(m))) for m in range(s.bound.frames)]  # built once a frame
    for level, table, _slot, live, e in live_entries(s):
        target = entry_mfn(e)
        for m in range(s.bound.frames):  # entries naming a frame the guest does not own: closure's business
            ti = s.type_info[m]
            names = conj(live, eq(target, m))
            if level == 1:
                per_frame[m].append(implies(conj(names, has(e, RW)), unprotected[m]))
                per_frame[m].append(
                    implies(
                        conj(names, has(e, RW), neg(eq(type_count(ti), 0))),
                        eq(type_of(ti), PGT_writable_page),
                    )
                )
            elif table != m:
                same = conj(eq(type_of(ti), LEVEL_TYPE[level]), has(ti, PGT_validated))
                wanted = z3.If(same, c(LEVEL_TYPE[level]), c(LEVEL_TYPE[level - 1]))
                per_frame[m].append(implies(conj(names, neg(eq(type_count(ti), 0))), eq(type_of(ti), wanted)))
    for m, ti in enumerate(s.type_info):
        per_frame[m].append(implies(neg(eq(type_count(ti), 0)), has(ti, PGT_validated)))
    return [(f"frame {m:#x}", conj(parts)) for m, parts in per_frame.items()]


def holder_limit(s: SymState) -> int:
    """The most holders a frame can have in the bound: every entry, the pin, the base pointer and the GDT."""
    return s.bound.frames * len(s.bound.slots) + 3


def count_bits(s: SymState) -> int:
    """Holders are summed in this many bits: enough for `holder_limit` plus the allocation ref, so no sum
    overflows."""
    return (holder_limit(s) + 1).bit_length()


def _holders(s: SymState, mfn: int, typed: bool) -> BV:
    """How many holders have a (type, if `typed`) reference on frame `mfn`, besides the allocation, as a
    64-bit value (summed in `count_bits`, which cannot overflow)."""
    bits = count_bits(s)
    one, zero = z3.BitVecVal(1, bits), z3.BitVecVal(0, bits)
    terms = []
    if mfn < s.bound.frames:  # entries naming a frame the guest does not own hold nothing
        for table, row in enumerate(s.entries):
            level = live_level(s.type_info[table])
            for j, slot in enumerate(s.bound.slots):
                e = row[j]
                held = [level != 0, has(e, P), eq(entry_mfn(e), mfn)]
                if slot in XEN_L4_SLOTS:
                    held.append(level != 4)
                if (
                    typed
                ):  # an L1 entry takes a type ref only if RW; upper entries always, but not self-linear
                    held.append(z3.If(level == 1, has(e, RW), z3.BoolVal(table != mfn)))
                elif table == mfn:
                    held.append(
                        level == 1
                    )  # an L1 mapping itself holds a general ref; a self-linear entry none
                terms.append(z3.If(conj(held), one, zero))
    terms.append(z3.If(has(s.type_info[mfn], PGT_pinned), one, zero))
    terms.append(z3.If(conj(s.has_baseptr, s.baseptr == mfn), one, zero))
    terms.append(z3.If(conj(s.has_gdt, s.gdt == mfn), one, zero))
    return z3.ZeroExt(64 - bits, sum(terms[1:], terms[0]))


def type_count_inv(s: SymState, rules: RuleSet) -> Clauses:
    out = [
        (f"frame {m:#x}", type_count(s.type_info[m]) == _holders(s, m, typed=True))
        for m in range(s.bound.frames + 1)
    ]
    return [*out, ("no type reference dropped that nobody held", neg(s.damage_type))]


def general_count(s: SymState, rules: RuleSet) -> Clauses:
    out = [
        (f"frame {m:#x}", s.count_info[m] & PGC_count_mask == _holders(s, m, typed=False) + 1)
        for m in range(s.bound.frames + 1)
    ]
    return [*out, ("no general reference dropped that nobody held", neg(s.damage_general))]


def roots(s: SymState) -> list[z3.BoolRef]:
    """Per guest frame: it is the base pointer or a pinned live L4."""
    return [
        disj(conj(has(ti, PGT_pinned), live_at(ti, 4)), conj(s.has_baseptr, s.baseptr == m))
        for m, ti in enumerate(s.type_info[: s.bound.frames])
    ]


def writable_protected(
    s: SymState, leaf: Callable[[SymState, BV], z3.BoolRef] = protected, root: int | None = None
) -> z3.BoolRef:
    """Some walk from a root (or from frame `root`, if it is one) with RW at every level ends at a `leaf` frame
    (`writable_leaves`; by default a protected one)."""
    slots = s.bound.slots
    found = []
    frames = range(s.bound.frames + 1)  # the guest's and the foreign frame: the ones a PSE leaf can be
    leaves = [leaf(s, c(m)) for m in frames]  # built once, not once a walk

    def leaf_at(mfn: BV) -> z3.BoolRef:
        v = mfn.as_long() if z3.is_bv_value(mfn) else None
        return leaves[v] if v is not None and v in frames else leaf(s, mfn)

    def walk(table: BV, level: int, path: z3.BoolRef) -> None:
        for slot in slots:
            if level == 4 and slot in XEN_L4_SLOTS:
                continue
            e = s.entry(table, slot)
            rw = conj(path, has(e, RW))
            target = entry_mfn(e)
            if level == 1:
                found.append(conj(rw, leaf_at(target)))
            elif level == 2:
                if z3.is_bv_value(target):  # a constant state: the frames of the superpage are known
                    first = target.as_long() & ~(ENTRIES_PER_TABLE - 1)
                    in_page = [leaves[m] for m in frames if first <= m < first + ENTRIES_PER_TABLE]
                else:
                    base = target & ~(ENTRIES_PER_TABLE - 1)
                    in_page = [
                        conj(z3.ULE(base, m), z3.ULT(c(m), base + ENTRIES_PER_TABLE), leaves[m])
                        for m in frames
                    ]
                found.append(conj(rw, has(e, PSE), disj(in_page)))
                walk(target, 1, conj(rw, neg(has(e, PSE))))
            else:
                walk(target, level - 1, rw)

    for m, is_root in enumerate(roots(s)):
        if root is None or root == m:
            walk(c(m), 4, is_root)
    return disj(found)


def global_safety(s: SymState, rules: RuleSet) -> Clauses:
    """Per root frame: no RW walk from it ends at a protected frame."""
    return [(f"walks from frame {m:#x}", neg(writable_protected(s, root=m))) for m in range(s.bound.frames)]


def wellformed(s: SymState, rules: RuleSet) -> Clauses:
    n = s.bound.frames
    out: Clauses = []
    known_types = [c(t) for t in TYPE_NAMES]
    limit = 1 << count_bits(s)
    for m in range(n + 1):
        ci, ti = s.count_info[m], s.type_info[m]
        parts = [
            ci & ~(PGC_allocated | PGC_count_mask) == 0,
            has(ci, PGC_allocated),
            # counts fit `count_bits`: implied by the count invariants (`holder_limit`), stated for the solver
            z3.ULT(ci & PGC_count_mask, limit),
            z3.ULT(type_count(ti), limit),
            ti & ~(PGT_type_mask | PGT_pinned | PGT_validated | PGT_count_mask) == 0,
            disj([eq(type_of(ti), t) for t in known_types]),
            implies(has(ti, PGT_pinned), neg(eq(live_level(ti), 0))),
            implies(conj(is_table_type(ti), type_count(ti) == 0), neg(has(ti, PGT_validated))),
            # writable and descriptor pages are validated once typed and stay so; type none never is
            implies(eq(type_of(ti), PGT_writable_page), has(ti, PGT_validated)),
            implies(eq(type_of(ti), PGT_seg_desc_page), has(ti, PGT_validated)),
            implies(eq(type_of(ti), 0), neg(has(ti, PGT_validated))),
        ]
        if m < n:
            for e in s.entries[m]:
                parts += [e & ~ENTRY_BITS == 0, implies(neg(has(e, P)), e == 0)]
        else:  # the foreign frame: the guest cannot change it
            parts += [ci == FRESH_COUNT_INFO, ti == 0]
        out.append((f"frame {m:#x}", conj(parts)))
    gdt = s.ti(s.gdt)
    out.append(
        ("base pointer", implies(s.has_baseptr, conj(z3.ULT(s.baseptr, n), live_at(s.ti(s.baseptr), 4))))
    )
    out.append(
        (
            "GDT",
            implies(
                s.has_gdt,
                conj(z3.ULT(s.gdt, n), eq(type_of(gdt), PGT_seg_desc_page), neg(eq(type_count(gdt), 0))),
            ),
        )
    )
    return out


CLAUSES: dict[str, Callable[[SymState, RuleSet], Clauses]] = {
    "wellformed": wellformed,
    "exclusivity": exclusivity,
    "type_count": type_count_inv,
    "general_count": general_count,
    "closure": closure,
    "global_safety": global_safety,
}
# Assumed of the state before every step: every invariant but global safety, which follows from them
# (`obligations.SAFETY_LEMMA` proves it) and whose walks would only weigh the solver down.
PREMISES = ("wellformed", "exclusivity", "type_count", "general_count", "closure")


_FRAME = re.compile(r"frame (0x[0-9a-f]+)")


def clause_frame(name: str) -> int | None:
    """The frame a clause speaks of (`frame 0x3`, `entries of frame 0x3`, `walks from frame 0x3`), or None for
    a clause about no one frame. Each invariant's clauses of one kind are the same predicate for each frame:
    renaming the frames of a state renames the clauses with them (what `obligations` uses)."""
    found = _FRAME.search(name)
    return int(found.group(1), 16) if found else None


def clause_for_frame(name: str, frame: int) -> str:
    """The clause of the same kind as `name` about `frame`."""
    return _FRAME.sub(f"frame {frame:#x}", name, count=1)


def clauses(name: str, s: SymState, rules: RuleSet) -> Clauses:
    return CLAUSES[name](s, rules)


def holds(name: str, s: SymState, rules: RuleSet) -> z3.BoolRef:
    return conj([clause for _name, clause in CLAUSES[name](s, rules)])


def premises_hold(s: SymState, rules: RuleSet) -> z3.BoolRef:
    return conj([holds(name, s, rules) for name in PREMISES])


def all_hold(s: SymState, rules: RuleSet) -> z3.BoolRef:
    return conj([holds(name, s, rules) for name in CLAUSES])


# What makes an invariant's non-vacuity witness non-trivial: the thing it speaks of exists.
def subject(name: str, s: SymState) -> z3.BoolRef:
    entries = live_entries(s)
    if name == "wellformed":
        return disj([has(ti, PGT_pinned) for ti in s.type_info])
    if name == "exclusivity":
        return disj([conj(live, has(e, RW)) for level, _t, _s, live, e in entries if level == 1])
    if name == "type_count":
        return disj([neg(eq(type_count(ti), 0)) for ti in s.type_info[: s.bound.frames]])
    if name == "general_count":
        return disj([z3.UGE(ci & PGC_count_mask, 2) for ci in s.count_info])
    if name == "closure":
        return disj([live for level, _t, _s, live, _e in entries if level > 1])
    if name == "global_safety":
        return writable_protected(s, lambda st, mfn: _owned(st, mfn))
    raise KeyError(name)


__all__ = [
    "CLAUSES",
    "PREMISES",
    "STATE_INVARIANTS",
    "all_hold",
    "clause_for_frame",
    "clause_frame",
    "clauses",
    "holds",
    "live_entries",
    "premises_hold",
    "protected",
    "roots",
    "subject",
    "writable_protected",
]
