"""The operations a PV guest can ask of Xen's pagetable code, as cases of the symbolic step.

Each `Operation` names one hypercall of `xenpin.xen.hypervisor.Hypervisor` (the method `call`) and, where the
hypercall does different things for different frames, one case of it: `mmu_update` of a live L1 .. L4 (with
each level's fast path) or of any other frame; a guest store into a live L1 (ptwr emulation) or anywhere else;
`pin` at each level. The cases of a hypercall together cover every argument the executable accepts (a frame of
the model, a slot of the bound, a well-formed entry); the obligation matrix has a row per case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from xenpin.symbolic.pv.state import BV, ENTRY_BITS, Bound, SymState, W, c, shaped
from xenpin.symbolic.pv.step import Outcome, Run, entry_mfn, finish, has, live_level
from xenpin.xen.flags import ENTRIES_PER_TABLE, P


@dataclass(frozen=True)
class Operation:
    name: str
    call: str  # the Hypervisor method
    args: tuple[str, ...]  # of "mfn", "slot", "entry", "va"
    level: int | None = None  # pin's level
    frame_level: int | None = None  # the case: the live level of the frame `mfn` (0: not a live table)
    ptwr: bool | None = None  # write's case: into a live L1 or not
    # a case Xen always refuses (unpin of a frame that is no live table: only a live table is ever pinned); its
    # obligations hold because a refusal changes nothing, and the hypercall's other cases can succeed
    refused_case: bool = False

    @property
    def levels(self) -> tuple[int, ...]:
        """The live levels `mfn` may have in this case (the step builds only their branches)."""
        if self.frame_level is not None:
            return (self.frame_level,)
        if self.ptwr is not None:
            return (1,) if self.ptwr else (0, 2, 3, 4)
        return (0, 1, 2, 3, 4)

    def symbolic_args(self, bound: Bound, prefix: str = "a") -> dict[str, BV]:
        """The arguments as 64-bit terms whose bits are variables only where `precondition` lets them be set
        (an mfn in 0 .. frames, a slot of the bound, a well-formed entry; a VA is any word): every use asks the
        precondition of them, so this leaves out no argument that matters, only bits that are always 0."""
        free = {
            "mfn": (1 << bound.frames.bit_length()) - 1,
            "slot": (1 << max(bound.slots).bit_length()) - 1,
            "entry": ENTRY_BITS,
            "va": (1 << W) - 1,
        }
        return {name: shaped(f"{prefix}.{name}", free[name]) for name in self.args}

    def precondition(self, s: SymState, args: dict[str, BV]) -> z3.BoolRef:
        """What the executable accepts as arguments (else ValueError), within the bound, and this case."""
        n = s.bound.frames
        parts = []
        if "mfn" in args:
            parts.append(z3.ULE(args["mfn"], n))  # a frame of the model: the guest's or the foreign one
        if "slot" in args:
            parts.append(z3.Or([args["slot"] == k for k in s.bound.slots]))
        if "entry" in args:
            e = args["entry"]
            parts += [e & ~ENTRY_BITS == 0, z3.Implies(z3.Not(has(e, P)), e == 0)]
        if "va" in args:
            l1_slot = z3.LShR(args["va"], 12) & (ENTRIES_PER_TABLE - 1)
            parts.append(z3.Or([l1_slot == k for k in s.bound.slots]))  # the entry it edits is in the bound
        level = live_level(s.ti(args["mfn"])) if "mfn" in args else None
        if self.frame_level is not None:
            guest = z3.ULT(args["mfn"], n)
            parts.append(
                z3.And(guest, level == self.frame_level)
                if self.frame_level
                else z3.Or(z3.Not(guest), level == 0)
            )
        if self.ptwr is not None:
            parts.append(level == 1 if self.ptwr else level != 1)
        return z3.And(parts)

    def named_frames(self, s: SymState, args: dict[str, BV]) -> list[BV]:
        """The frames this case names, in order: the frame argument, the targets of its entries (the entry the
        call writes, old and new), the walk of `update_va_mapping`, the root the call replaces. Each is a term
        that renaming the guest's frames renames with it (an absent entry or root names `no_frame`, which no
        renaming moves): what `symmetry_breaking` orders."""
        n = s.bound.frames
        no_frame = c(n + 1)

        def target(e: BV) -> BV:
            return z3.If(has(e, P), entry_mfn(e), no_frame)

        out: list[BV] = []
        if "va" in args:
            va, table = args["va"], z3.If(s.has_baseptr, s.baseptr, no_frame)
            out.append(table)
            for level in (4, 3, 2):
                slot = z3.LShR(va, 12 + 9 * (level - 1)) & (ENTRIES_PER_TABLE - 1)
                table = target(s.entry(table, slot))
                out.append(table)
            out.append(target(s.entry(table, z3.LShR(va, 12) & (ENTRIES_PER_TABLE - 1))))
        if "mfn" in args:
            out.append(args["mfn"])
            if "slot" in args:
                out.append(target(s.entry(args["mfn"], args["slot"])))
            else:
                out += [target(s.entry(args["mfn"], k)) for k in s.bound.slots]
        if "entry" in args:
            out.append(target(args["entry"]))
        if self.call == "new_baseptr":
            out.append(z3.If(s.has_baseptr, s.baseptr, no_frame))
        if self.call == "set_gdt":
            out.append(z3.If(s.has_gdt, s.gdt, no_frame))
        return out

    def symmetry_breaking(self, s: SymState, args: dict[str, BV]) -> tuple[z3.BoolRef, int]:
        """The guest frames `named_frames` names are 0, 1, ... in the order of their first mention, and how many
        names there are (every named guest frame is below it).

        Sound for an obligation whose premise, step and invariant are unchanged by renaming guest frames (a
        permutation of 0 .. frames-1 applied to the frame indices, entry targets and roots; it fixes the foreign
        frame and every mfn with no page): any state and arguments can be renamed so that their named frames come
        in this order, so a counterexample exists with the constraint if one exists without it."""
        n = s.bound.frames
        parts, fresh = [], c(0)  # `fresh`: the next unnamed frame (the named ones so far are 0 .. fresh-1)
        names = self.named_frames(s, args)
        for term in names:
            guest = z3.ULT(term, n)
            parts.append(z3.Implies(guest, z3.ULE(term, fresh)))
            fresh = z3.If(z3.And(guest, term == fresh), fresh + 1, fresh)
        return z3.And(parts), len(names)

    def run(
        self, s: SymState, args: dict[str, BV], rules, fold: bool = False, superpages: bool = True
    ) -> Outcome:
        r = Run(s, rules, self.levels, fold, superpages)
        method: Callable = getattr(r, self.call)
        values = [args[name] for name in self.args]
        if self.level is not None:
            method(self.level, *values)
        else:
            method(*values)
        return finish(s, r)


OPERATIONS: tuple[Operation, ...] = (
    *(
        Operation(f"mmu_update[l{lv}]", "mmu_update", ("mfn", "slot", "entry"), frame_level=lv)
        for lv in (1, 2, 3, 4)
    ),
    Operation("mmu_update[other]", "mmu_update", ("mfn", "slot", "entry"), frame_level=0),
    Operation("write[ptwr]", "write", ("mfn", "slot", "entry"), ptwr=True),
    Operation("write[plain]", "write", ("mfn", "slot", "entry"), ptwr=False),
    Operation("update_va_mapping", "update_va_mapping", ("va", "entry")),
    *(Operation(f"pin[l{lv}]", "pin", ("mfn",), level=lv) for lv in (1, 2, 3, 4)),
    *(Operation(f"unpin[l{lv}]", "unpin", ("mfn",), frame_level=lv) for lv in (1, 2, 3, 4)),
    Operation("unpin[other]", "unpin", ("mfn",), frame_level=0, refused_case=True),
    Operation("new_baseptr", "new_baseptr", ("mfn",)),
    Operation("set_gdt", "set_gdt", ("mfn",)),
)
OPERATION_NAMES = tuple(op.name for op in OPERATIONS)


def operation(name: str) -> Operation:
    for op in OPERATIONS:
        if op.name == name:
            return op
    raise KeyError(name)


__all__ = ["OPERATIONS", "OPERATION_NAMES", "Operation", "operation"]
