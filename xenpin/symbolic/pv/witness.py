"""A solver's state made real: rebuilt from a fresh guest by accepted hypercalls, written as a scenario, replayed.

`construction(pre)` finds hypercalls that take a fresh guest of the bound (`fresh_hypervisor`) to exactly the
state `pre`: plain stores of every entry while no frame is a table yet; then, for a frame whose type outlived
its last reference, the history that leaves it (a transient writable type from `mmu_update`, a pin and unpin,
an earlier GDT); then the holders -- pins, the base pointer, the GDT -- in an order that validates each table
after the tables its linear entries name; if no order does, again with every live table that is not pinned
pinned first (lowest levels first) and unpinned at the end, which is how a table held only by linear entries
came to be validated. Every call must be accepted and the validator's state must equal
`pre` (`state.of_hypervisor`); a state no order reaches is reported as not reachable this way.

`scenario_text` writes the construction, a `check` that the invariants hold, the operation with the result the
symbolic step gives, and a `check` that the invariant is violated, in the `models/scenarios` format, so that
`xenpin replay FILE` shows the same violation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from xenpin.symbolic.pv.state import Bound, Concrete, OutsideBound, of_hypervisor
from xenpin.xen.flags import Entry, format_flags
from xenpin.xen.frame import (
    PGT_count_mask,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
    table_level,
)
from xenpin.xen.hypervisor import Hypervisor, Result
from xenpin.xen.rules import RuleSet

MAX_ORDERS = 5040  # 7! orders of the holders: more than a bound of 5 frames has


def fresh_hypervisor(bound: Bound, rules: RuleSet) -> Hypervisor:
    return Hypervisor(rules=rules, frames=bound.frames, foreign=[bound.foreign])


@dataclass(frozen=True)
class Call:
    """One hypercall or guest store, with its arguments as the scenario format names them."""

    op: str
    args: dict = field(default_factory=dict)

    def apply(self, hv: Hypervisor) -> Result:
        a = self.args
        if self.op == "pin":
            return hv.pin(a["level"], a["mfn"])
        if self.op in ("unpin", "new_baseptr", "set_gdt"):
            return getattr(hv, self.op)(a["mfn"])
        if self.op == "update_va_mapping":
            return hv.update_va_mapping(a["va"], a["entry"])
        return getattr(hv, self.op)(a["mfn"], a["slot"], a["entry"])

    def toml(self, expect: str, comment: str = "") -> str:
        lines = ["[[step]]", f'op = "{self.op}"' + (f"  # {comment}" if comment else "")]
        for key in ("level", "mfn", "va", "slot"):
            if key in self.args:
                value = self.args[key]
                lines.append(f"{key} = {value:#x}" if key == "va" else f"{key} = {value}")
        if "entry" in self.args:
            e = self.args["entry"]
            lines.append(
                "entry = {}"
                if e is None
                else f'entry = {{ mfn = {e.mfn}, flags = "{format_flags(e.flags)}" }}'
            )
        lines.append(f'expect = "{expect}"')
        return "\n".join(lines)

    def __str__(self) -> str:
        parts = []
        for key, value in self.args.items():
            parts.append(f"{key}={value:#x}" if isinstance(value, int) and key == "va" else f"{key}={value}")
        return f"{self.op}({', '.join(parts)})"


def _entry_at(pre: Concrete, bound: Bound, mfn: int, slot: int) -> Entry | None:
    j = bound.slots.index(slot)
    return next((e for m, k, e in pre.present() if m == mfn and k == j), None)


def _stale_history(pre: Concrete, bound: Bound) -> list[Call] | None:
    """Calls that leave each frame with no type count in the type it has (None: no such history here)."""
    calls: list[Call] = []
    for m in range(bound.frames):
        ti = pre.type_info[m]
        if ti & PGT_count_mask:
            continue
        type_ = ti & PGT_type_mask
        if not type_:
            continue
        if type_ == PGT_writable_page:
            slot = bound.slots[0]
            calls.append(
                Call("mmu_update", {"mfn": m, "slot": slot, "entry": _entry_at(pre, bound, m, slot)})
            )
        elif table_level(type_):
            calls += [Call("pin", {"level": table_level(type_), "mfn": m}), Call("unpin", {"mfn": m})]
        elif type_ == PGT_seg_desc_page and pre.gdt not in (None, m):
            calls.append(Call("set_gdt", {"mfn": m}))
        else:
            return None
    return calls


def construction(pre: Concrete, bound: Bound, rules: RuleSet) -> list[Call] | None:
    """Accepted calls from a fresh guest to exactly `pre`, or None if this construction reaches no such state."""
    writes = [Call("write", {"mfn": m, "slot": bound.slots[j], "entry": e}) for m, j, e in pre.present()]
    stale = _stale_history(pre, bound)
    if stale is None:
        return None
    holders = [
        Call("pin", {"level": table_level(pre.type_info[m] & PGT_type_mask), "mfn": m})
        for m in range(bound.frames)
        if pre.type_info[m] & PGT_pinned
    ]
    if pre.baseptr is not None:
        holders.append(Call("new_baseptr", {"mfn": pre.baseptr}))
    if pre.gdt is not None:
        holders.append(Call("set_gdt", {"mfn": pre.gdt}))
    # a live table held only by linear entries was validated while something else held it: pin it for the
    # while, lowest levels first, and unpin it once its holders are in place
    held_for_a_while = sorted(
        (
            m
            for m in range(bound.frames)
            if pre.type_info[m] & PGT_count_mask
            and table_level(pre.type_info[m] & PGT_type_mask)
            and pre.type_info[m] & PGT_validated
            and not pre.type_info[m] & PGT_pinned
        ),
        key=lambda m: table_level(pre.type_info[m] & PGT_type_mask),
    )
    for temporary in ([], held_for_a_while):
        pins = [
            Call("pin", {"level": table_level(pre.type_info[m] & PGT_type_mask), "mfn": m}) for m in temporary
        ]
        unpins = [Call("unpin", {"mfn": m}) for m in temporary]
        for order in itertools.islice(itertools.permutations(holders), MAX_ORDERS):
            calls = writes + stale + pins + list(order) + unpins
            if reaches(calls, pre, bound, rules):
                return calls
    return None


def reaches(calls: list[Call], pre: Concrete, bound: Bound, rules: RuleSet) -> bool:
    hv = fresh_hypervisor(bound, rules)
    for call in calls:
        if not call.apply(hv).ok:
            return False
    try:
        return of_hypervisor(hv, bound) == pre
    except OutsideBound:
        return False


def run_calls(calls: list[Call], bound: Bound, rules: RuleSet) -> Hypervisor:
    hv = fresh_hypervisor(bound, rules)
    for call in calls:
        call.apply(hv)
    return hv


def scenario_text(
    title: str,
    notes: list[str],
    rules: RuleSet,
    bound: Bound,
    calls: list[Call],
    op: Call,
    outcome: str,
    invariant: str,
) -> str:
    head = [f"# {line}" for line in notes]
    head += [
        f'name = "{title}"',
        f'rules = "{rules.name}"',
        f"frames = {bound.frames}",
        f"foreign = [{bound.foreign}]",
    ]
    steps = [call.toml("ok") for call in calls]
    steps.append('[[step]]\nop = "check"  # the state before the step: every invariant holds\nexpect = "ok"')
    steps.append(op.toml(outcome, "the step"))
    steps.append(f'[[step]]\nop = "check"\nexpect = "violated"\ninvariant = "{invariant}"')
    return "\n".join(head) + "\n\n" + "\n\n".join(steps) + "\n"


__all__ = ["Call", "construction", "fresh_hypervisor", "reaches", "run_calls", "scenario_text"]
