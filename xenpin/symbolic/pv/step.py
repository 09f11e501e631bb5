"""Each operation of the executable validator as a function of the symbolic state: `(accepted, errno, new state)`.

This mirrors `xenpin.xen.hypervisor` (and so `xen/arch/x86/mm.c`, RELEASE-4.1.0 and modern, with the
differences read from `xenpin.xen.rules.RuleSet`) function by function: `_get_page`, `_get_page_type`,
`_alloc_l1_table` / `_alloc_upper_table`, `_get_page_from_l1e`, `_get_page_from_upper` with its linear-table
fallback (`_get_linear_pagetable`, XSA-240's exclusivity under modern rules), `_put_page_type` with
`_free_page_table`, `_put_superpage` (4.1's `put_spage_pages`, XSA-148), `_mod_entry` with the fast paths, and
the hypercalls `mmu_update`, the guest store (`write`, with ptwr emulation), `update_va_mapping`, `pin`,
`unpin`, `new_baseptr` and `set_gdt`.

How a hypercall runs symbolically (`Run`): `ok` says the operation has not failed so far on this path, and every
state update is guarded by it, so a failed path freezes where Xen raised (what the linear-table fallback of
`get_page_from_l2e` .. `l4e` then reads, as the executable does); `errno` is set by the first failure. Branches
(`when`) run under a condition and merge. At the end a rejected operation's state is the state before (Xen
unwinds; the executable rolls its journal back).

Recursion: validation goes down one level per call (an L4 validates L3s, ... L1s), so it is unrolled exactly to
the architecture's four levels. Devalidation frees a table at the level its type says, and a free may nest
another (down a level, across a linear entry, or anywhere through 4.1's `put_superpage`); below a put of a
table frees nest at most one deep per frame of the bound (`depth_for`), which is exact: a chain of nested frees
visits distinct frames. Two puts get no nested free at all -- a data page's (an RW L1 entry's target) and those
of `put_superpage` inside a free -- and a path that would need one is marked `outside`; `obligations` proves,
per operation, that no such path starts from a state of the invariants (and where it cannot, no verdict of that
operation is `proved`).

Counts change in their low `Bound.counter_bits` bits (`Run.counted`): a path on which that would differ from
Xen's arithmetic (a carry out of them, a borrow) is flagged `outside` too, and the same check proves no step from
the invariants is. With `superpages=False` (the obligations' encoding) 4.1's `put_superpage` is flagged rather
than unrolled; `Outcome.asymmetric` marks the paths that reach it (the one part of the step that reads mfns as
numbers, not names: `obligations` uses the symmetry of frames only where no step from the premise does).

`fold` (for runs on constant states, as the refinement test makes) simplifies every guard and value as it goes,
so such a run stays small and skips the branches it does not take; it changes no answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import z3

from xenpin.symbolic.pv.state import BV, MFN_MASK, SymState, W, c, select
from xenpin.xen.flags import ALL_FLAGS, ENTRIES_PER_TABLE, PAGE_SHIFT, PSE, RW, P
from xenpin.xen.frame import (
    LEVEL_TYPE,
    PGC_count_mask,
    PGT_count_mask,
    PGT_l4_page_table,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
)
from xenpin.xen.hypervisor import HYPERVISOR_VIRT_END, INVALID_MFN, XEN_L4_SLOTS
from xenpin.xen.rules import RuleSet

ERRNO = {"EPERM": 1, "EFAULT": 14, "EBUSY": 16, "EINVAL": 22}  # Xen returns -errno; these are the numbers
ERRNO_NAME = {v: k for k, v in ERRNO.items()}
ERR_BITS = 8
TABLE_TYPES = tuple(LEVEL_TYPE[1:])


def errno(name: str) -> BV:
    return z3.BitVecVal(ERRNO[name], ERR_BITS)


# The field readers below fold a constant word to a constant (the term z3's simplifier would make of it, built
# without the operations): a constant state (the refinement test's, the foreign frame) then reads in constants,
# and `select` picks the frame a constant mfn names directly.


def _value(t) -> int | None:
    return t.as_long() if z3.is_bv_value(t) else None


def _parts(args: tuple) -> list:
    return list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)


def _fold(args: tuple, unit: bool, make) -> z3.BoolRef:
    """`make` (z3.And, unit True; z3.Or, unit False) of the parts, constant parts folded away."""
    is_unit, is_zero = (z3.is_true, z3.is_false) if unit else (z3.is_false, z3.is_true)
    parts = []
    for p in _parts(args):
        if p is unit or is_unit(p):
            continue
        if p is (not unit) or is_zero(p):
            return z3.BoolVal(not unit)
        parts.append(p)
    return z3.BoolVal(unit) if not parts else parts[0] if len(parts) == 1 else make(parts)


def conj(*args) -> z3.BoolRef:
    """`z3.And` folding constant parts away (the same formula)."""
    return _fold(args, True, z3.And)


def disj(*args) -> z3.BoolRef:
    """`z3.Or` folding constant parts away (the same formula)."""
    return _fold(args, False, z3.Or)


def neg(p) -> z3.BoolRef:
    if z3.is_true(p):
        return z3.BoolVal(False)
    if z3.is_false(p):
        return z3.BoolVal(True)
    return z3.Not(p)


def implies(a, b) -> z3.BoolRef:
    if z3.is_false(a) or z3.is_true(b):
        return z3.BoolVal(True)
    if z3.is_true(a):
        return b
    return z3.Implies(a, b)


def eq(a: BV, b: BV | int) -> z3.BoolRef:
    """`a == b` folded where both are constants."""
    x = _value(a)
    y = b if isinstance(b, int) else _value(b)
    if x is not None and y is not None:
        return z3.BoolVal(x == y)
    return a == b


def entry_mfn(e: BV) -> BV:
    v = _value(e)
    if v is not None:
        return c(v >> PAGE_SHIFT & MFN_MASK)
    return z3.LShR(e, PAGE_SHIFT) & MFN_MASK


def entry_flags(e: BV) -> BV:
    v = _value(e)
    return c(v & ALL_FLAGS) if v is not None else e & ALL_FLAGS


def has(e: BV, flag: int) -> z3.BoolRef:
    v = _value(e)
    return z3.BoolVal(v & flag != 0) if v is not None else e & flag != 0


def type_of(ti: BV) -> BV:
    v = _value(ti)
    return c(v & PGT_type_mask) if v is not None else ti & PGT_type_mask


def type_count(ti: BV) -> BV:
    v = _value(ti)
    return c(v & PGT_count_mask) if v is not None else ti & PGT_count_mask


def is_table_type(ti: BV) -> z3.BoolRef:
    v = _value(ti)
    if v is not None:
        return z3.BoolVal(v & PGT_type_mask in TABLE_TYPES)
    return z3.Or([type_of(ti) == t for t in TABLE_TYPES])


def live_at(ti: BV, level: int) -> z3.BoolRef:
    """`Frame.level == level`: a validated table of that level with a type count."""
    v = _value(ti)
    if v is not None:
        return z3.BoolVal(
            v & PGT_type_mask == LEVEL_TYPE[level] and bool(v & PGT_validated) and v & PGT_count_mask != 0
        )
    return z3.And(type_of(ti) == LEVEL_TYPE[level], has(ti, PGT_validated), type_count(ti) != 0)


_LIVE_LEVELS: dict[int, tuple[BV, BV]] = {}  # `live_level` by the AST id of its `type_info` (and the term)


def live_level(ti: BV) -> BV:
    """`Frame.level` as a term: 1..4, or 0. The invariants ask it of the same words many times: it is built
    once per word (the cache holds the word, so its AST id is not reused while the entry is kept)."""
    key = ti.get_id()
    hit = _LIVE_LEVELS.get(key)
    if hit is not None and hit[0].eq(ti):
        return hit[1]
    v = _value(ti)
    if v is not None:
        return c(next((lv for lv in (1, 2, 3, 4) if z3.is_true(live_at(ti, lv))), 0))
    out = c(0)
    for level in range(4, 0, -1):
        out = z3.If(live_at(ti, level), c(level), out)
    if len(_LIVE_LEVELS) > 200_000:
        _LIVE_LEVELS.clear()
    _LIVE_LEVELS[key] = (ti, out)
    return out


def xen_l4_slot(slot: int | BV) -> z3.BoolRef | bool:
    if isinstance(slot, int):
        return slot in XEN_L4_SLOTS
    return z3.And(z3.UGE(slot, XEN_L4_SLOTS.start), z3.ULT(slot, XEN_L4_SLOTS.stop))


def has_linear_entries(s: SymState, mfn: BV) -> z3.BoolRef:
    """`Hypervisor.linear_entries(mfn) > 0`: the live L2-L4 table has an entry to another table of its type."""
    ti = s.ti(mfn)
    level = live_level(ti)
    parts = []
    for slot in s.bound.slots:
        e = s.entry(mfn, slot)
        target = entry_mfn(e)
        part = [has(e, P), target != mfn, type_of(s.ti(target)) == type_of(ti)]
        if slot in XEN_L4_SLOTS:
            part.append(level != 4)
        parts.append(z3.And(part))
    return z3.And(z3.UGE(level, 2), z3.Or(parts))


def has_linear_uses(s: SymState, mfn: BV) -> z3.BoolRef:
    """`Hypervisor.linear_uses(mfn) > 0`: a live table of its type, other than itself, has an entry naming it."""
    t = type_of(s.ti(mfn))
    parts = []
    for holder in range(s.bound.frames):
        hti = s.type_info[holder]
        hlevel = live_level(hti)
        for j, slot in enumerate(s.bound.slots):
            e = s.entries[holder][j]
            part = [mfn != holder, hlevel != 0, type_of(hti) == t, has(e, P), entry_mfn(e) == mfn]
            if slot in XEN_L4_SLOTS:
                part.append(hlevel != 4)
            parts.append(z3.And(part))
    return z3.And(z3.Or([t == LEVEL_TYPE[level] for level in (2, 3, 4)]), z3.Or(parts))


@dataclass(frozen=True)
class Outcome:
    accepted: z3.BoolRef
    errno: BV  # meaningful when not accepted
    state: SymState
    outside: z3.BoolRef  # the unrolling was cut short on some path (see the module docstring)
    # some path reached 4.1's `put_superpage`, the one part of the step that reads mfns as numbers (a range)
    # rather than as names: `obligations` uses the symmetry of frames only where no step from the premise can
    asymmetric: z3.BoolRef


class Run:
    """One operation in progress on one symbolic state (see the module docstring)."""

    def __init__(
        self,
        state: SymState,
        rules: RuleSet,
        levels: tuple[int, ...] = (0, 1, 2, 3, 4),
        fold: bool = False,
        superpages: bool = True,
    ) -> None:
        self.s = state
        # `fold`: simplify as the run goes (a state of constants stays constants, and dead branches are skipped)
        self.fold = z3.simplify if fold else (lambda t: t)
        # the live levels the operation's frame may have: an operation case leaves the other branches out
        self.levels = levels
        # `superpages=False`: 4.1's `put_superpage` is not unrolled but flagged `outside` (for obligations, whose
        # row facts prove no step from the premise reaches it; the refinement test runs it)
        self.superpages = superpages
        self.rules = rules
        self.ok: z3.BoolRef = z3.BoolVal(True)
        self.err: BV = z3.BitVecVal(0, ERR_BITS)
        self.outside_bound: z3.BoolRef = z3.BoolVal(False)
        self.asymmetric: z3.BoolRef = z3.BoolVal(False)
        self.n = state.bound.frames
        self.k = state.bound.counter_bits

    def depth_for(self, level: int) -> int:
        """The nested frees the unrolling allows below a put of a level-`level` table: one per frame of the
        bound. That is always enough: a table being freed loses `PGT_validated` before its entries are put and
        nothing validates during a put, so a chain of nested frees visits distinct frames."""
        return self.n

    # ---------------------------------------------------------------------------------- the run itself

    @property
    def dead(self) -> bool:
        """No path reaches here (known only where the guard folded to False)."""
        return z3.is_false(self.ok)

    def fail_if(self, cond: z3.BoolRef, name: str) -> None:
        if self.dead:
            return
        hit = self.fold(z3.And(self.ok, cond))
        self.err = self.fold(z3.If(hit, errno(name), self.err))
        self.ok = self.fold(z3.And(self.ok, z3.Not(cond)))

    def set_errno_where(self, cond: z3.BoolRef, name: str) -> None:
        self.err = self.fold(z3.If(cond, errno(name), self.err))

    def outside(self, cond: z3.BoolRef) -> None:
        """This path needs more unrolling than the bound gives: flag it, and stop it here."""
        if self.dead:
            return
        self.outside_bound = self.fold(z3.Or(self.outside_bound, z3.And(self.ok, cond)))
        self.fail_if(cond, "EINVAL")

    @contextmanager
    def when(self, cond: z3.BoolRef) -> Iterator[None]:
        """Run the block only on the paths where `cond` holds."""
        ok0 = self.ok
        self.ok = self.fold(z3.And(ok0, cond))
        yield
        self.ok = self.fold(z3.Or(z3.And(ok0, z3.Not(cond)), self.ok))

    def attempt(self, body: Callable[[], None]) -> z3.BoolRef:
        """Run `body`; the paths on which it failed (a raised XenError, still propagating)."""
        ok0 = self.ok
        body()
        return self.fold(z3.And(ok0, z3.Not(self.ok)))

    def on_failure(self, failed: z3.BoolRef, cleanup: Callable[[], None]) -> None:
        """`except XenError: cleanup(); raise` -- the cleanup runs on the failed paths, which stay failed."""
        ok_after = self.ok
        self.ok = failed
        cleanup()
        self.ok = ok_after

    # ---------------------------------------------------------------------------------- state updates

    def frame_update(self, name: str, mfn: BV, value: Callable[[BV], BV], cond=True) -> None:
        old = getattr(self.s, name)
        guard = self.fold(z3.And(self.ok, cond))
        if z3.is_false(guard):
            return
        new = []
        for i, v in enumerate(old):
            hit = self.fold(z3.And(guard, mfn == i))
            new.append(v if z3.is_false(hit) else self.fold(z3.If(hit, value(v), v)))
        self.s = self.s.with_(**{name: tuple(new)})

    def counted(self, v: BV, delta: int) -> tuple[BV, z3.BoolRef]:
        """`v + delta` (1 or -1) for a `count_info` or `type_info` word whose count is to change, computed in the
        count's low `k` bits (`Bound.counter_bits`), and the condition under which that differs from Xen's
        arithmetic on the whole word: a carry out of the low bits, or a borrow (a decrement is only ever made
        of a count that is not 0). Where it holds the path is flagged `outside`, so a narrowed step is the
        exact one on every path the obligations keep (and `op_facts` proves none is lost)."""
        k = self.k
        low = z3.Extract(k - 1, 0, v)
        new = z3.Concat(z3.Extract(W - 1, k, v), low + delta)
        return new, low == ((1 << k) - 1 if delta > 0 else 0)

    def count_update(self, name: str, mfn: BV, delta: int, cond=True) -> None:
        """`frame_update` by `counted`: the count of frame `mfn` goes up or down by one."""
        old = getattr(self.s, name)
        guard = self.fold(z3.And(self.ok, cond))
        if z3.is_false(guard):
            return
        new, wrong = [], []
        for i, v in enumerate(old):
            hit = self.fold(z3.And(guard, mfn == i))
            if z3.is_false(hit):
                new.append(v)
                continue
            value, bad = self.counted(v, delta)
            new.append(self.fold(z3.If(hit, value, v)))
            wrong.append(z3.And(hit, bad))
        self.s = self.s.with_(**{name: tuple(new)})
        if wrong:
            self.outside(z3.Or(wrong))

    def write_entry(self, table: BV, slot: BV, value: BV) -> None:
        """`_write_entry`: the entry's bytes (no reference counting)."""
        slots = self.s.bound.slots
        rows = tuple(
            tuple(z3.If(z3.And(self.ok, table == i, slot == slots[j]), value, v) for j, v in enumerate(row))
            for i, row in enumerate(self.s.entries)
        )
        self.s = self.s.with_(entries=rows)

    def note_damage(self, kind: str, cond) -> None:
        name = "damage_type" if kind == "type_count" else "damage_general"
        self.s = self.s.with_(**{name: self.fold(z3.Or(getattr(self.s, name), z3.And(self.ok, cond)))})

    # ------------------------------------------------------------------------------------- frames

    def is_guest(self, mfn: BV) -> z3.BoolRef:
        return z3.ULT(mfn, self.n)

    def has_frame(self, mfn: BV) -> z3.BoolRef:
        """A guest frame or the foreign one (`Hypervisor.has_frame`)."""
        return z3.ULE(mfn, self.n)

    # ---------------------------------------------------------------------------------- general refs

    def get_page(self, mfn: BV) -> z3.BoolRef:
        """`_get_page(mfn, guest)`: a general ref if the guest owns the frame; whether it did."""
        owned = self.is_guest(mfn)
        self.count_update("count_info", mfn, 1, owned)
        return owned

    def put_page(self, mfn: BV) -> None:
        """`_put_page`: at count 0 Xen 4.1 wraps; the model records damage and stays at 0."""
        zero = self.s.ci(mfn) & PGC_count_mask == 0
        self.note_damage("general_count", zero)
        self.count_update("count_info", mfn, -1, z3.Not(zero))

    # ------------------------------------------------------------------------------------- type refs

    def get_page_type(self, mfn: BV, type_: int) -> None:
        """`_get_page_type`: retype at count 0, refuse another type, validate on the first ref."""
        if self.dead:
            return
        x = self.s.ti(mfn)
        count0 = type_count(x) == 0
        retyped = (x & ~(PGT_type_mask | PGT_validated)) | type_
        if type_ == PGT_writable_page:
            retyped = retyped | PGT_validated  # "No special validation needed for writable pages."
        x = z3.If(z3.And(count0, type_of(x) != type_), retyped, x)
        self.fail_if(z3.And(z3.Not(count0), type_of(x) != type_), "EINVAL")
        # A frame with a type count but not validated is one this very call is validating, and validation only
        # asks for the next level down: the frame is requested again only at another level, a type mismatch
        # (refused above). So this cannot happen (the executable asserts it); it is refused like a mismatch.
        self.fail_if(z3.And(z3.Not(count0), z3.Not(has(x, PGT_validated))), "EINVAL")
        up, wrong = self.counted(x, 1)
        self.frame_update("type_info", mfn, lambda _old: up)
        self.outside(wrong)
        with self.when(z3.Not(has(x, PGT_validated))):
            self.alloc_page_type(mfn, type_)
            self.frame_update("type_info", mfn, lambda t: t | PGT_validated)

    def put_page_type(self, mfn: BV, depth: int) -> None:
        """`_put_page_type`: the last ref of a validated table devalidates it and frees its entries, at the
        frame's own level; `depth` is how many nested frees the unrolling still allows."""
        if self.dead:
            return
        x = self.s.ti(mfn)
        zero = type_count(x) == 0
        self.note_damage("type_count", zero)
        nx, wrong = self.counted(x, -1)
        self.outside(z3.And(z3.Not(zero), wrong))
        free = z3.And(z3.Not(zero), type_count(nx) == 0, is_table_type(x), has(x, PGT_validated))
        self.frame_update("type_info", mfn, lambda _old: z3.If(free, nx & ~PGT_validated, nx), z3.Not(zero))
        if depth:
            with self.when(free):
                self.free_page_table(mfn, z3.LShR(type_of(x), 60), depth - 1)
        else:
            self.outside(free)

    def get_page_and_type(self, mfn: BV, type_: int) -> None:
        """`_get_page_and_type`: general ref, then type ref; on failure the general ref is dropped again."""
        self.fail_if(z3.Not(self.is_guest(mfn)), "EINVAL")
        self.count_update("count_info", mfn, 1)
        failed = self.attempt(lambda: self.get_page_type(mfn, type_))
        self.on_failure(failed, lambda: self.put_page(mfn))

    def put_page_and_type(self, mfn: BV, depth: int) -> None:
        self.put_page_type(mfn, depth)
        self.put_page(mfn)

    # ---------------------------------------------------------------------------------- validation

    def alloc_page_type(self, mfn: BV, type_: int) -> None:
        level = LEVEL_TYPE.index(type_) if type_ in TABLE_TYPES else 0
        if level == 1:
            self.alloc_l1_table(mfn)
        elif level:
            self.alloc_upper_table(mfn, level)
        # PGT_seg_desc_page / writable: nothing to validate

    def guest_slots(self, level: int) -> list[int]:
        """The slots Xen validates at this level (`is_guest_l4_slot`)."""
        return [s for s in self.s.bound.slots if not (level == 4 and s in XEN_L4_SLOTS)]

    def alloc_l1_table(self, mfn: BV) -> None:
        if self.dead:
            return
        for slot in self.guest_slots(1):
            e = self.s.entry(mfn, slot)
            with self.when(has(e, P)):
                self.get_page_from_l1e(entry_mfn(e), entry_flags(e))

    def alloc_upper_table(self, mfn: BV, level: int) -> None:
        if self.dead:
            return
        for slot in self.guest_slots(level):
            e = self.s.entry(mfn, slot)
            with self.when(has(e, P)):
                self.get_page_from_upper(level, mfn, entry_mfn(e), entry_flags(e))

    def free_page_table(self, mfn: BV, level: BV, depth: int) -> None:
        """`_free_page_table` at the (symbolic) level of the frame: drop what every entry holds."""
        if self.dead:
            return
        for slot in self.s.bound.slots:
            e = self.s.entry(mfn, slot)
            cond = has(e, P)
            if slot in XEN_L4_SLOTS:
                cond = z3.And(cond, level != 4)
            with self.when(cond):
                self.put_page_from_entry(level, mfn, entry_mfn(e), entry_flags(e), depth)

    def get_page_from_l1e(self, target: BV, flags: BV) -> None:
        self.fail_if(flags & self.rules.disallow_mask(1) != 0, "EINVAL")
        no_page = z3.UGT(target, self.n)  # `!mfn_valid`: the I/O-space path, but INVALID_MFN is -EINVAL
        self.fail_if(z3.And(no_page, target == INVALID_MFN), "EINVAL")
        self.fail_if(no_page, self.rules.io_space_errno)
        self.fail_if(target == self.n, self.rules.foreign_errno)
        rw = has(flags, RW)
        with self.when(rw):
            self.get_page(target)
            failed = self.attempt(lambda: self.get_page_type(target, PGT_writable_page))
            self.set_errno_where(failed, self.rules.l1_conflict_errno)
        with self.when(z3.Not(rw)):
            self.get_page(target)

    def get_page_from_upper(self, level: int, table: BV, target: BV, flags: BV) -> None:
        if self.dead:
            return
        self.fail_if(flags & self.rules.disallow_mask(level) != 0, "EINVAL")
        if level == 2:
            self.fail_if(has(flags, PSE), "EINVAL")  # 4.1: no `allowsuperpage`
        ok0 = self.ok
        self.get_page_and_type(target, LEVEL_TYPE[level - 1])
        ok_after = self.ok
        # only -EINVAL may be a linear-pagetable attempt
        self.ok = self.fold(z3.And(ok0, z3.Not(ok_after), self.err == errno("EINVAL")))
        linear = self.get_linear_pagetable(level, table, target, flags)
        self.fail_if(z3.Not(linear), "EINVAL")
        self.ok = self.fold(z3.Or(ok_after, self.ok))

    def get_linear_pagetable(self, level: int, table: BV, target: BV, flags: BV) -> z3.BoolRef:
        """`_get_linear_pagetable`: read-only, to itself or to a validated table of the same level."""
        x = self.s.ti(target)
        fits = x & (PGT_type_mask | PGT_validated) == LEVEL_TYPE[level] | PGT_validated
        if self.rules.linear_pt_exclusive:
            fits = z3.And(
                fits, z3.Not(has_linear_uses(self.s, table)), z3.Not(has_linear_entries(self.s, target))
            )
        read_only = z3.Not(has(flags, RW))
        to_self = target == table
        take = z3.And(read_only, z3.Not(to_self), self.is_guest(target), fits)
        self.count_update("count_info", target, 1, take)
        self.count_update("type_info", target, 1, take)
        return z3.And(read_only, z3.Or(to_self, z3.And(self.is_guest(target), fits)))

    # ---------------------------------------------------------------------------------- devalidation

    def put_page_from_entry(self, level: int | BV, table: BV, target: BV, flags: BV, depth: int) -> None:
        """`_put_page_from_entry` for an entry of a table at `level` (a number, or a term when freeing)."""
        if self.dead:
            return
        nested = not isinstance(level, int)
        level = c(level) if isinstance(level, int) else level
        rw, pse = has(flags, RW), has(flags, PSE)
        l1 = level == 1
        upper = z3.And(z3.Not(l1), target != table)  # a self-linear entry holds nothing
        superpage = z3.And(level == 2, pse)
        with self.when(z3.And(l1, rw)):
            self.put_page_and_type(target, 0)  # a data page: no table to free (else outside the unrolling)
        with self.when(z3.And(upper, z3.Not(superpage))):
            self.put_page_and_type(target, depth)
        with self.when(z3.And(l1, z3.Not(rw))):
            self.put_page(target)
        if nested:
            # a PSE entry in a table being freed: only one the XSA-148 fast path flipped, never one of a state of
            # the invariants; the unrolling stops there (`obligations` proves no step from the invariants gets here)
            self.outside(z3.And(upper, superpage))
        else:
            with self.when(z3.And(upper, superpage)):
                self.put_superpage(target, flags, 0)  # its puts get no nested frees either

    def put_superpage(self, mfn: BV, flags: BV, depth: int) -> None:
        """`_put_superpage`: 4.1 drops a type and a general ref on each frame mfn .. mfn+511 (XSA-148)."""
        if self.dead:
            return
        self.asymmetric = self.fold(z3.Or(self.asymmetric, self.ok))
        if not self.superpages:
            self.outside(z3.BoolVal(True))
            return
        kept = (self.s.damage_type, self.s.damage_general)
        for frame in range(self.n + 1):
            in_range = z3.And(z3.ULE(mfn, frame), z3.ULT(c(frame), mfn + ENTRIES_PER_TABLE))
            m = c(frame)
            if self.rules.pse_put_all_types:
                with self.when(in_range):
                    self.put_page_and_type(m, depth)
            else:
                with self.when(z3.And(in_range, has(flags, RW))):
                    self.put_page_and_type(m, depth)
                with self.when(z3.And(in_range, z3.Not(has(flags, RW)))):
                    self.put_page(m)
        if self.rules.pse_put_all_types:
            self.note_damage("type_count", z3.BoolVal(True))
        else:  # modern: the per-frame events are not recorded (`_put_superpage` returns before noting them)
            self.s = self.s.with_(damage_type=kept[0], damage_general=kept[1])

    # ---------------------------------------------------------------------------------- entry updates

    def mod_entry(self, level: int, table: BV, slot: BV, new: BV) -> None:
        """`_mod_entry`: check and reference the new entry (unless the fast path applies), then drop the old."""
        if level == 4:
            self.fail_if(xen_l4_slot(slot), "EINVAL")
        old = self.s.entry(table, slot)
        compare = self.rules.l1_fastpath_compare if level == 1 else self.rules.upper_fastpath_compare
        fast = z3.And(has(old, P), entry_mfn(old) == entry_mfn(new), (old ^ new) & compare == 0)
        present = has(new, P)
        with self.when(present):
            self.fail_if(new & self.rules.disallow_mask(level) != 0, "EINVAL")
            with self.when(z3.Not(fast)):
                if level == 1:
                    self.get_page_from_l1e(entry_mfn(new), entry_flags(new))
                else:
                    self.get_page_from_upper(level, table, entry_mfn(new), entry_flags(new))
        self.write_entry(table, slot, new)
        with self.when(z3.And(z3.Not(z3.And(present, fast)), has(old, P))):
            self.put_page_from_entry(level, table, entry_mfn(old), entry_flags(old), self.depth_for(level))

    # ------------------------------------------------------------------------------------ operations

    def mmu_update(self, mfn: BV, slot: BV, new: BV) -> None:
        self.fail_if(z3.Not(self.is_guest(mfn)), "EINVAL")  # "Could not get page for normal update"
        x = self.s.ti(mfn)
        level = live_level(x)
        for lv in (1, 2, 3, 4):
            if lv in self.levels:
                with self.when(level == lv):
                    self.mod_entry(lv, mfn, slot, new)
        with self.when(z3.And(level == 0, z3.BoolVal(0 in self.levels))):
            self.fail_if(z3.And(type_of(x) == PGT_seg_desc_page, type_count(x) != 0), "EINVAL")
            self.get_page_type(mfn, PGT_writable_page)  # a transient writable type for the plain write
            self.write_entry(mfn, slot, new)
            self.put_page_type(mfn, 0)  # the transient writable type: nothing to free

    def write(self, mfn: BV, slot: BV, new: BV) -> None:
        """A guest store: plain into a frame that is no live table, emulated (ptwr) into a live L1."""
        self.fail_if(z3.Not(self.is_guest(mfn)), "EFAULT")
        x = self.s.ti(mfn)
        level = live_level(x)
        if 1 in self.levels:
            with self.when(level == 1):
                failed = self.attempt(lambda: self.mod_entry(1, mfn, slot, new))
                self.set_errno_where(failed, "EFAULT")  # ptwr refused: the guest's page fault
        plain = z3.And(level == 0, z3.Not(z3.And(type_of(x) == PGT_seg_desc_page, type_count(x) != 0)))
        self.fail_if(z3.And(level != 1, z3.Not(plain)), "EFAULT")
        with self.when(plain):
            self.write_entry(mfn, slot, new)

    def l1_slot_for_va(self, va: BV) -> tuple[BV, BV]:
        """`l1_slot_for_va` (`guest_map_l1e`): fails EINVAL where no L1 maps `va`."""
        s = self.s
        self.fail_if(z3.Not(s.has_baseptr), "EINVAL")
        table = s.baseptr
        for level in (4, 3, 2):
            slot = z3.LShR(va, 12 + 9 * (level - 1)) & (ENTRIES_PER_TABLE - 1)
            if level == 4:
                self.fail_if(xen_l4_slot(slot), "EINVAL")
            e = s.entry(table, slot)
            missing = z3.Not(has(e, P))
            if level in (2, 3):
                missing = z3.Or(missing, has(e, PSE))
            self.fail_if(z3.Or(missing, z3.Not(self.has_frame(entry_mfn(e)))), "EINVAL")
            table = entry_mfn(e)
        return table, z3.LShR(va, 12) & (ENTRIES_PER_TABLE - 1)

    def update_va_mapping(self, va: BV, new: BV) -> None:
        if self.rules.va_addr_ok:  # modern `map_guest_l1e`: `__addr_ok`
            self.fail_if(z3.Not(z3.Or(z3.ULT(va, 1 << 47), z3.UGE(va, HYPERVISOR_VIRT_END))), "EINVAL")
        l1, slot = self.l1_slot_for_va(va)
        self.fail_if(live_level(self.s.ti(l1)) != 1, "EINVAL")
        self.mod_entry(1, l1, slot, new)

    def pin(self, level: int, mfn: BV) -> None:
        self.get_page_and_type(mfn, LEVEL_TYPE[level])
        self.fail_if(has(self.s.ti(mfn), PGT_pinned), "EINVAL")  # "Mfn %lx already pinned"
        self.frame_update("type_info", mfn, lambda t: t | PGT_pinned)

    def unpin(self, mfn: BV) -> None:
        self.fail_if(z3.Not(self.is_guest(mfn)), "EINVAL")
        self.fail_if(z3.Not(has(self.s.ti(mfn), PGT_pinned)), "EINVAL")
        self.frame_update("type_info", mfn, lambda t: t & ~PGT_pinned)
        self.put_page_and_type(
            mfn, max(self.depth_for(level) for level in self.levels if level) if any(self.levels) else 0
        )

    def new_baseptr(self, mfn: BV) -> None:
        self.get_page_and_type(mfn, PGT_l4_page_table)
        old, had = self.s.baseptr, self.s.has_baseptr
        self.set_root("baseptr", mfn)
        with self.when(had):
            self.put_page_and_type(old, self.depth_for(4))

    def set_gdt(self, mfn: BV) -> None:
        self.get_page_and_type(mfn, PGT_seg_desc_page)
        old, had = self.s.gdt, self.s.has_gdt
        self.set_root("gdt", mfn)
        with self.when(had):
            self.put_page_and_type(old, 0)  # a descriptor page: nothing to free

    def set_root(self, name: str, mfn: BV) -> None:
        s = self.s
        flag = "has_" + name
        self.s = s.with_(
            **{
                name: self.fold(z3.If(self.ok, mfn, getattr(s, name))),
                flag: self.fold(z3.Or(getattr(s, flag), self.ok)),
            }
        )


def finish(before: SymState, run: Run) -> Outcome:
    """The operation's outcome: a rejected one leaves the state as it was."""
    ok, a, b = run.ok, run.s, before

    def pick(x, y):
        return z3.If(ok, x, y)

    merged = SymState(
        b.bound,
        tuple(map(pick, a.count_info, b.count_info)),
        tuple(map(pick, a.type_info, b.type_info)),
        tuple(tuple(map(pick, r, q)) for r, q in zip(a.entries, b.entries, strict=True)),
        pick(a.baseptr, b.baseptr),
        pick(a.has_baseptr, b.has_baseptr),
        pick(a.gdt, b.gdt),
        pick(a.has_gdt, b.has_gdt),
        pick(a.damage_type, b.damage_type),
        pick(a.damage_general, b.damage_general),
    )
    return Outcome(ok, run.err, merged, run.outside_bound, run.asymmetric)


__all__ = [
    "ERRNO",
    "ERRNO_NAME",
    "Outcome",
    "Run",
    "W",
    "entry_flags",
    "entry_mfn",
    "finish",
    "has",
    "has_linear_entries",
    "has_linear_uses",
    "live_at",
    "live_level",
    "select",
    "type_count",
    "type_of",
]
