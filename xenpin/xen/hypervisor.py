"""Xen's PV pagetable validator: type counts, validation, pinning and entry updates over a mapping graph.

Mirrors `xen/arch/x86/mm.c` (RELEASE-4.1.0, with the differences of modern Xen in `rules.py`):
`get_page` / `get_page_type` / `put_page_type`, `alloc_lN_table` / `free_lN_table` (validation and
devalidation), `get_page_from_lNe` / `put_page_from_lNe`, the linear-pagetable checks
(`define_get_linear_pagetable`), `mod_lN_entry` with their fast paths, and the hypercalls `do_mmuext_op`
(`PIN_Ln_TABLE`, `UNPIN_TABLE`, `NEW_BASEPTR`), `do_mmu_update`, `do_update_va_mapping` and `set_gdt`.

The guest's mappings live in a `networkx.MultiDiGraph`: a node per frame (its attribute mapping is the
`Frame`), an edge per present entry `table -> target` keyed by slot with `{"flags": ...}`. An edge holds
references only while its table is validated (Xen's rule: only entries of validated tables count).

A hypercall is all-or-nothing: every change to a frame or an entry is journaled, and a rejected operation
rolls the journal back, so the state afterwards equals the state before (Xen unwinds the refs it took; the
type field of a frame whose count fell back to zero is the one place Xen leaves a harmless trace, and xenpin
restores that too).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import networkx as nx

from xenpin.xen.flags import ENTRIES_PER_TABLE, PSE, RW, Entry
from xenpin.xen.frame import (
    FRESH_COUNT_INFO,
    LEVEL_TYPE,
    TYPE_NAMES,
    WRITABLE_ONCE,
    Frame,
    PGT_count_mask,
    PGT_l4_page_table,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
    table_level,
)
from xenpin.xen.rules import RuleSet, get_rules

MAPPED_ONCE_COUNT_INFO = FRESH_COUNT_INFO + 1  # shared: the count of a frame with one mapping

GUEST_DOMAIN = 1
FOREIGN_DOMAIN = 2

# L4 slots 256..271 belong to Xen (`is_guest_l4_slot`); validation skips them and guests may not write them.
XEN_L4_SLOTS = range(256, 272)

# Edge attribute mappings are interned per flag value: a million entries share a handful of dicts.
# They are never mutated; an entry update replaces the edge's mapping.
_EDGE_ATTRS: dict[int, dict[str, int]] = {}


def edge_attrs(flags: int) -> dict[str, int]:
    attrs = _EDGE_ATTRS.get(flags)
    if attrs is None:
        attrs = _EDGE_ATTRS[flags] = {"flags": flags}
    return attrs


class XenError(Exception):
    """A rejection inside Xen: the errno and the reason; the log lines are already emitted."""

    def __init__(self, errno: str, reason: str) -> None:
        super().__init__(reason)
        self.errno = errno
        self.reason = reason


@dataclass(frozen=True)
class Result:
    """What a hypercall (or guest store) did: accepted, or rejected with an errno and Xen's log lines."""

    op: str
    ok: bool
    errno: str | None = None
    log: tuple[str, ...] = ()
    reason: str = ""

    @property
    def outcome(self) -> str:
        return "ok" if self.ok else str(self.errno)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run a bulk build or a validation without the cyclic GC, then freeze what survived.

    The model makes no reference cycles, but the GC would rescan its millions of frames and dicts on every
    collection (measured: a third of a 4 GiB build); `gc.freeze` moves the survivors out of its sight.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _intpte(mfn: int, flags: int) -> int:
    return Entry(mfn, flags).intpte


class Hypervisor:
    """One guest domain (and optionally frames of a second domain) as Xen's mm.c sees them."""

    def __init__(
        self,
        rules: str | RuleSet = "modern",
        frames: int = 32,
        foreign: Iterable[int] = (),
        guest: int = GUEST_DOMAIN,
        foreign_owner: int = FOREIGN_DOMAIN,
    ) -> None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.rules = get_rules(rules)
        self.domain = guest
        self.graph = nx.MultiDiGraph()
        self.baseptr: int | None = None  # `v->arch.guest_table`
        self.gdt: int | None = None
        self._log: list[str] = []
        self._journal: list | None = None
        foreign = sorted(set(foreign))
        clash = [m for m in foreign if m < frames]
        if clash:
            raise ValueError(f"foreign frame {clash[0]} is inside the guest's frames 0..{frames - 1}")
        with paused_gc():
            self._add_frames(range(frames), guest)
            self._add_frames(foreign, foreign_owner)
        self._node = self.graph._node
        self._succ = self.graph._succ
        self._pred = self.graph._pred

    def _add_frames(self, mfns: Iterable[int], owner: int) -> None:
        # Direct adjacency writes: `add_nodes_from` costs ~1 us a node more, and a 4 GiB guest has a million.
        mfns = list(mfns)
        g = self.graph
        g._node.update((m, Frame(m, owner)) for m in mfns)
        g._succ.update((m, {}) for m in mfns)
        g._pred.update((m, {}) for m in mfns)

    # ----------------------------------------------------------------------------------------------- queries

    def frame(self, mfn: int) -> Frame:
        try:
            return self._node[mfn]
        except KeyError:
            raise KeyError(f"no frame {mfn:#x}") from None

    def has_frame(self, mfn: int) -> bool:
        return mfn in self._node

    @property
    def frames(self) -> Iterable[int]:
        return self._node.keys()

    def entry(self, mfn: int, slot: int) -> Entry | None:
        """The present entry at `slot` of frame `mfn`, or None."""
        slots = self._node[mfn].slots
        if not slots or slot not in slots:
            return None
        target = slots[slot]
        return Entry(target, self._succ[mfn][target][slot]["flags"])

    def entries(self, mfn: int) -> list[tuple[int, Entry]]:
        """All present entries of a frame, by slot."""
        slots = self._node[mfn].slots or {}
        succ = self._succ[mfn]
        return [(s, Entry(t, succ[t][s]["flags"])) for s, t in sorted(slots.items())]

    def snapshot(self) -> tuple:
        """The whole state, hashable and comparable: frames, entries, base pointer and GDT."""
        frames = tuple((m, f.owner, f.count_info, f.type_info) for m, f in sorted(self._node.items()))
        edges = tuple(
            sorted(
                (u, s, v, d["flags"])
                for u, nbrs in self._succ.items()
                for v, kd in nbrs.items()
                for s, d in kd.items()
            )
        )
        return (frames, edges, self.baseptr, self.gdt)

    def live_level(self, mfn: int) -> int:
        """The level at which this frame's entries hold references (0: none)."""
        return self._node[mfn].level

    # ------------------------------------------------------------------------------------------ journaling

    # The journal is a flat list of triples (a million of them in a 4 GiB pin: 24 bytes each, not a tuple's 72):
    # (frame, count_info, type_info) | ("entry", (mfn, slot), old entry) | (attribute name, old value, None).

    def _save(self, page: Frame) -> None:
        if self._journal is not None:
            self._journal.extend((page, page.count_info, page.type_info))

    def _rollback(self, journal: list) -> None:
        for i in range(len(journal) - 3, -1, -3):
            what, a, b = journal[i : i + 3]
            if isinstance(what, Frame):
                what.count_info = a
                what.type_info = b
            elif what == "entry":
                self._store(a[0], a[1], b)
            else:
                setattr(self, what, a)

    def _set_attr(self, name: str, value: int | None) -> None:
        if self._journal is not None:
            self._journal.extend((name, getattr(self, name), None))
        setattr(self, name, value)

    def _hypercall(self, op: str, fn, *args) -> Result:
        """Run one operation all-or-nothing; collect Xen's log lines."""
        self._log = []
        self._journal = journal = []
        try:
            with paused_gc():
                fn(*args)
        except XenError as err:
            self._rollback(journal)
            return Result(op, False, err.errno, tuple(self._log), err.reason)
        finally:
            self._journal = None
        return Result(op, True, None, tuple(self._log), "")

    def _mem_log(self, line: str) -> None:
        """`MEM_LOG(...)`: Xen prints `(XEN) mm.c:LINE:dN <line>`; xenpin keeps the message."""
        self._log.append(line)

    # ------------------------------------------------------------------------------------ entry storage

    def _store(self, mfn: int, slot: int, entry: Entry | None) -> None:
        """Write an entry's bytes: the graph edge and the slot index. No reference counting here."""
        page = self._node[mfn]
        slots = page.slots
        if slots is not None and slot in slots:
            old_target = slots.pop(slot)
            kd = self._succ[mfn][old_target]
            del kd[slot]
            if not kd:
                del self._succ[mfn][old_target]
                del self._pred[old_target][mfn]
        if entry is not None:
            if slots is None:
                slots = page.slots = {}
            target = entry.mfn
            slots[slot] = target
            succ = self._succ[mfn]
            kd = succ.get(target)
            if kd is None:
                kd = succ[target] = {}
                self._pred[target][mfn] = kd
            kd[slot] = edge_attrs(entry.flags)

    def _write_entry(self, mfn: int, slot: int, entry: Entry | None) -> None:
        if self._journal is not None:
            self._journal.extend(("entry", (mfn, slot), self.entry(mfn, slot)))
        self._store(mfn, slot, entry)

    # ---------------------------------------------------------------------------------- general refs

    def _get_page(self, mfn: int, domain: int) -> Frame | None:
        """Mirrors `get_page`: take a general ref if the frame exists and `domain` owns it."""
        page = self._node.get(mfn)
        if page is None or page.owner != domain:
            if page is not None:
                self._mem_log(
                    f"Error pfn {mfn:x}: rd=d{domain}, od=d{page.owner}, caf={page.count_info:08x},"
                    f" taf={page.type_info:016x}"
                )
            return None
        self._save(page)
        page.count_info += 1
        return page

    def _put_page(self, page: Frame) -> None:
        self._save(page)
        page.count_info -= 1

    # ------------------------------------------------------------------------------------- type refs

    def _get_page_type(self, page: Frame, type_: int) -> None:
        """Mirrors `get_page_type`: take a type ref, changing the type at count 0 and validating on 0 -> 1."""
        x = page.type_info
        if x & PGT_count_mask == 0:
            if x & PGT_type_mask != type_:
                x = (x & ~(PGT_type_mask | PGT_validated)) | type_
                if type_ == PGT_writable_page:
                    x |= PGT_validated  # "No special validation needed for writable pages."
        elif x & PGT_type_mask != type_:
            saw = x & PGT_type_mask
            # "Don't log failure if it could be a recursive-mapping attempt."
            if not (table_level(saw) and table_level(type_) and saw == type_ + (1 << 60)):
                self._mem_log(
                    f"Bad type (saw {x:016x} != exp {type_:016x}) for mfn {page.mfn:x} (pfn {page.pfn:x})"
                )
            raise XenError("EINVAL", f"frame {page.mfn:#x} is {page.type_name}, wanted {_tname(type_)}")
        elif not x & PGT_validated:
            # Only a table being validated has a count and no PGT_validated; reaching it again is a cycle,
            # which strictly decreasing levels make impossible.
            raise AssertionError(f"re-entrant validation of mfn {page.mfn:#x}")
        self._save(page)
        page.type_info = x + 1
        if not x & PGT_validated:
            self._alloc_page_type(page, type_)

    def _put_page_type(self, page: Frame) -> None:
        """Mirrors `put_page_type`: drop a type ref; the last ref of a validated table devalidates it."""
        self._save(page)
        x = page.type_info
        nx_ = x - 1
        if nx_ & PGT_count_mask == 0:
            nx_ &= ~PGT_pinned
            level = table_level(x & PGT_type_mask)
            if level and x & PGT_validated:
                page.type_info = nx_ & ~PGT_validated
                self._free_page_table(page, level)  # `free_page_type`
                return
        page.type_info = nx_

    def _get_page_and_type(self, mfn: int, type_: int, domain: int) -> Frame:
        """Mirrors `get_page_and_type_from_pagenr`: general ref, then type ref; all or nothing."""
        page = self._get_page(mfn, domain)
        if page is None:
            raise XenError("EINVAL", f"frame {mfn:#x} is not owned by d{domain}")
        try:
            self._get_page_type(page, type_)
        except XenError:
            # `get_page_and_type_from_pagenr`: "if ( unlikely(rc) ) put_page(page);" -- callers such as
            # `get_page_from_l2e` go on to try a linear entry, which must not inherit this ref.
            self._put_page(page)
            raise
        return page

    def _put_page_and_type(self, page: Frame) -> None:
        self._put_page_type(page)
        self._put_page(page)

    # ---------------------------------------------------------------------------------- validation

    def _alloc_page_type(self, page: Frame, type_: int) -> None:
        """Mirrors `alloc_page_type`: validate every present entry; on failure log and propagate."""
        level = table_level(type_)
        try:
            if level == 1:
                self._alloc_l1_table(page)
            elif level:
                self._alloc_upper_table(page, level)
            # PGT_seg_desc_page: descriptor contents are not modelled; `alloc_segdesc_page` accepts them.
        except XenError:
            self._mem_log(
                f"Error while validating mfn {page.mfn:x} (pfn {page.pfn:x}) for type {type_:016x}:"
                f" caf={page.count_info:08x} taf={page.type_info:016x}"
            )
            raise
        page.type_info |= PGT_validated

    def _alloc_l1_table(self, page: Frame) -> None:
        """Mirrors `alloc_l1_table`: `get_page_from_l1e` for every entry, in slot order.

        The hot path of a pin (512 entries a table, a million in a 4 GiB guest): the common entry, an allowed
        RO or RW mapping of the guest's own frame that is free or already writable, is referenced inline;
        anything else goes through `_get_page_from_l1e` and its checks and log lines.
        """
        slots = page.slots
        if not slots:
            return
        succ, node, journal, domain = self._succ[page.mfn], self._node, self._journal, self.domain
        disallow = self.rules.disallow_mask(1)
        for slot in sorted(slots):
            target = slots[slot]
            flags = succ[target][slot]["flags"]
            t = node.get(target)
            if t is not None and t.owner == domain and not flags & disallow:
                ti = t.type_info
                if not flags & RW:
                    journal.extend((t, t.count_info, ti))
                    t.count_info += 1
                    continue
                if ti & PGT_count_mask == 0 and ti & PGT_type_mask != PGT_writable_page:
                    ci = t.count_info
                    journal.extend((t, ci, ti))
                    t.count_info = MAPPED_ONCE_COUNT_INFO if ci is FRESH_COUNT_INFO else ci + 1
                    t.type_info = WRITABLE_ONCE
                    continue
                if ti & (PGT_type_mask | PGT_validated) == PGT_writable_page | PGT_validated:
                    journal.extend((t, t.count_info, ti))
                    t.count_info += 1
                    t.type_info = ti + 1
                    continue
            try:
                self._get_page_from_l1e(target, flags)
            except XenError:
                self._mem_log(f"Failure in alloc_l1_table: entry {slot}")
                raise

    def _guest_entries(self, page: Frame, level: int) -> Iterator[tuple[int, int, int]]:
        """`(slot, target, flags)` of the entries Xen validates, in slot order (`is_guest_l4_slot`)."""
        if not page.slots:
            return
        succ = self._succ[page.mfn]
        for slot, target in sorted(page.slots.items()):
            if level == 4 and slot in XEN_L4_SLOTS:
                continue
            yield slot, target, succ[target][slot]["flags"]

    def _alloc_upper_table(self, page: Frame, level: int) -> None:
        """Mirrors `alloc_l2_table` .. `alloc_l4_table` (Xen's own L4 slots are skipped)."""
        for slot, target, flags in self._guest_entries(page, level):
            try:
                self._get_page_from_upper(level, page.mfn, target, flags)
            except XenError:
                self._mem_log(f"Failure in alloc_l{level}_table: entry {slot}")
                raise

    def _free_page_table(self, page: Frame, level: int) -> None:
        """Mirrors `free_l1_table` .. `free_l4_table`: drop what every entry holds."""
        for _slot, target, flags in self._guest_entries(page, level):
            self._put_page_from_entry(level, page.mfn, target, flags)

    def _get_page_from_l1e(self, target: int, flags: int) -> None:
        """Mirrors `get_page_from_l1e` (non-present entries never reach here)."""
        bad = flags & self.rules.disallow_mask(1)
        if bad:
            self._mem_log(f"Bad L1 flags {bad:x}")
            raise XenError("EINVAL", f"L1 entry has disallowed flags {bad:#x}")
        page = self._node.get(target)
        if page is None or page.owner != self.domain:
            self._log_could_not_pin(target, flags)
            owner = "no domain" if page is None else f"d{page.owner}"
            raise XenError(
                self.rules.foreign_errno, f"frame {target:#x} belongs to {owner}, not d{self.domain}"
            )
        if flags & RW:
            page = self._get_page(target, self.domain)
            try:
                self._get_page_type(page, PGT_writable_page)
            except XenError as err:
                self._log_could_not_pin(target, flags)
                raise XenError(
                    self.rules.l1_conflict_errno,
                    f"RW mapping of frame {target:#x}, which is a {page.type_name} (type count {page.type_count})",
                ) from err
        else:
            self._get_page(target, self.domain)

    def _log_could_not_pin(self, target: int, flags: int) -> None:
        pfn = self._node[target].pfn if target in self._node else target
        self._mem_log(
            f"Error getting mfn {target:x} (pfn {pfn:x}) from L1 entry {_intpte(target, flags):016x}"
            f" for l1e_owner={self.domain}, pg_owner={self.domain}"
        )

    def _get_page_from_upper(self, level: int, table: int, target: int, flags: int) -> None:
        """Mirrors `get_page_from_l2e` .. `get_page_from_l4e`: the next level's type, else a linear entry."""
        bad = flags & self.rules.disallow_mask(level)
        if bad:
            self._mem_log(f"Bad L{level} flags {bad:x}")
            raise XenError("EINVAL", f"L{level} entry has disallowed flags {bad:#x}")
        if level == 2 and flags & PSE:
            self._mem_log("Attempt to map superpage without allowsuperpage flag in hypervisor")
            raise XenError("EINVAL", "2 MiB superpage mapping without allowsuperpage")
        try:
            self._get_page_and_type(target, LEVEL_TYPE[level - 1], self.domain)
        except XenError as err:
            # Only -EINVAL may be a linear-pagetable attempt; modern Xen passes -EBUSY etc. straight up.
            if err.errno != "EINVAL":
                raise
            if not self._get_linear_pagetable(level, table, target, flags):
                raise XenError(
                    "EINVAL", f"L{level} entry -> {target:#x}: {err.reason}, and not a valid linear entry"
                ) from err

    def _get_linear_pagetable(self, level: int, table: int, target: int, flags: int) -> bool:
        """Mirrors `define_get_linear_pagetable`: RO, to itself or to a validated table of the same level."""
        if flags & RW:
            self._mem_log("Attempt to create linear p.t. with write perms")
            return False
        if target == table:
            return True  # self-linear: no reference
        page = self._get_page(target, self.domain)
        if page is None:
            return False
        x = page.type_info
        if x & (PGT_type_mask | PGT_validated) != LEVEL_TYPE[level] | PGT_validated:
            self._put_page(page)
            return False
        page.type_info = x + 1
        return True

    def _put_page_from_entry(self, level: int, table: int, target: int, flags: int) -> None:
        """Mirrors `put_page_from_l1e` .. `put_page_from_l4e`."""
        page = self._node[target]
        if level == 1:
            if flags & RW:
                self._put_page_and_type(page)
            else:
                self._put_page(page)
        elif target != table:
            self._put_page_and_type(page)

    # ---------------------------------------------------------------------------------- entry updates

    def _mod_entry(self, level: int, table: int, slot: int, new: Entry | None) -> None:
        """Mirrors `mod_l1_entry` .. `mod_l4_entry`: check and reference the new entry, then drop the old."""
        if level == 4 and slot in XEN_L4_SLOTS:
            self._mem_log(f"Illegal L4 update attempt in Xen-private area (slot {slot})")
            raise XenError("EINVAL", f"L4 slot {slot} belongs to Xen")
        old = self.entry(table, slot)
        if new is not None:
            bad = new.flags & self.rules.disallow_mask(level)
            if bad:
                self._mem_log(f"Bad L{level} flags {bad:x}")
                raise XenError("EINVAL", f"L{level} entry has disallowed flags {bad:#x}")
            compare = self.rules.l1_fastpath_compare if level == 1 else self.rules.upper_fastpath_compare
            if old is not None and old.mfn == new.mfn and not (old.flags ^ new.flags) & compare:
                self._write_entry(table, slot, new)  # fast path: same frame, no revalidation
                return
            if level == 1:
                self._get_page_from_l1e(new.mfn, new.flags)
            else:
                self._get_page_from_upper(level, table, new.mfn, new.flags)
        self._write_entry(table, slot, new)
        if old is not None:
            self._put_page_from_entry(level, table, old.mfn, old.flags)

    def _require_owned(self, mfn: int, what: str) -> Frame:
        page = self._node.get(mfn)
        if page is None or page.owner != self.domain:
            self._mem_log(what)
            raise XenError("EINVAL", f"frame {mfn:#x} is not owned by d{self.domain}")
        return page

    # ----------------------------------------------------------------------------------- operations

    def write(self, mfn: int, slot: int, entry: Entry | None) -> Result:
        """A plain guest store of a PTE-shaped value into frame `mfn`.

        Into a frame that is not a validated table the store just happens (Xen is not involved). A store into a
        validated L1 (mapped RO) traps and is emulated by `ptwr_emulated_update` with `mod_l1_entry`'s checks;
        L2-L4 and descriptor pages are never emulated: the store faults.
        """
        return self._hypercall(f"write {mfn:#x}[{slot}]", self._do_write, mfn, slot, entry)

    def _do_write(self, mfn: int, slot: int, entry: Entry | None) -> None:
        page = self._node.get(mfn)
        if page is None or page.owner != self.domain:
            raise XenError("EFAULT", f"the guest has no mapping of frame {mfn:#x}")
        level = page.level
        if level == 1:
            try:
                self._mod_entry(1, mfn, slot, entry)
            except XenError as err:
                raise XenError(
                    "EFAULT", f"ptwr emulation refused the store ({err.errno}: {err.reason}): page fault"
                ) from err
        elif level or (page.type_count and page.type == PGT_seg_desc_page):
            raise XenError(
                "EFAULT", f"store into a live {page.type_name} frame: page fault, Xen does not emulate it"
            )
        else:
            self._write_entry(mfn, slot, entry)

    def fill_table(self, mfn: int, entries: Iterable[tuple[int, int, int]]) -> None:
        """Bulk plain stores of `(slot, target mfn, flags)` into a frame that is not a validated table.

        The fast path of a guest filling a fresh page before it pins it; raises ValueError otherwise.
        """
        page = self._node[mfn]
        if page.level or page.owner != self.domain:
            raise ValueError(f"fill_table: frame {mfn:#x} is a live table or not the guest's")
        slots = page.slots
        if slots is None:
            slots = page.slots = {}
        succ, pred = self._succ[mfn], self._pred
        with paused_gc():
            for slot, target, flags in entries:
                if slot in slots:
                    self._store(mfn, slot, None)
                slots[slot] = target
                attrs = _EDGE_ATTRS.get(flags) or edge_attrs(flags)
                kd = succ.get(target)
                if kd is None:
                    succ[target] = pred[target][mfn] = {slot: attrs}
                else:
                    kd[slot] = attrs

    def mmu_update(self, mfn: int, slot: int, entry: Entry | None) -> Result:
        """`HYPERVISOR_mmu_update` with `MMU_NORMAL_PT_UPDATE` of `mfn[slot]`."""
        return self._hypercall(f"mmu_update {mfn:#x}[{slot}]", self._do_mmu_update, mfn, slot, entry)

    def _do_mmu_update(self, mfn: int, slot: int, entry: Entry | None) -> None:
        page = self._require_owned(mfn, "Could not get page for normal update")
        level = page.level
        if level:  # `page_lock` succeeded on a validated table
            self._mod_entry(level, mfn, slot, entry)
        elif page.type_count and page.type == PGT_seg_desc_page:
            raise XenError("EINVAL", f"frame {mfn:#x} is a descriptor page")
        else:
            self._get_page_type(page, PGT_writable_page)  # a transient writable type for the plain write
            self._write_entry(mfn, slot, entry)
            self._put_page_type(page)

    def update_va_mapping(self, va: int, entry: Entry | None) -> Result:
        """`HYPERVISOR_update_va_mapping`: the L1 entry mapping `va` in the current tables."""
        return self._hypercall(f"update_va_mapping {va:#x}", self._do_update_va_mapping, va, entry)

    def l1_slot_for_va(self, va: int) -> tuple[int, int] | None:
        """Mirrors `guest_map_l1e`: the (L1 mfn, slot) mapping `va` through the base pointer, if any."""
        table = self.baseptr
        if table is None:
            return None
        for level in (4, 3, 2):
            slot = (va >> (12 + 9 * (level - 1))) & (ENTRIES_PER_TABLE - 1)
            if level == 4 and slot in XEN_L4_SLOTS:
                return None
            e = self.entry(table, slot)
            if e is None or (level == 2 and e.flags & PSE) or e.mfn not in self._node:
                return None
            table = e.mfn
        return table, (va >> 12) & (ENTRIES_PER_TABLE - 1)

    def _do_update_va_mapping(self, va: int, entry: Entry | None) -> None:
        where = self.l1_slot_for_va(va)
        if where is None:
            raise XenError("EINVAL", f"no L1 table maps va {va:#x} through the current base pointer")
        l1, slot = where
        if self._node[l1].level != 1:
            raise XenError("EINVAL", f"the table at {l1:#x} mapping va {va:#x} is not a validated L1")
        self._mod_entry(1, l1, slot, entry)

    def pin(self, level: int, mfn: int) -> Result:
        """`MMUEXT_PIN_Ln_TABLE`."""
        if level not in (1, 2, 3, 4):
            raise ValueError(f"pin level must be 1..4, got {level}")
        return self._hypercall(f"pin_l{level} {mfn:#x}", self._do_pin, level, mfn)

    def _do_pin(self, level: int, mfn: int) -> None:
        try:
            page = self._get_page_and_type(mfn, LEVEL_TYPE[level], self.domain)
        except XenError:
            self._mem_log(f"Error while pinning mfn {mfn:x}")
            raise
        if page.type_info & PGT_pinned:
            self._mem_log(f"Mfn {mfn:x} already pinned")
            raise XenError("EINVAL", f"frame {mfn:#x} is already pinned")
        page.type_info |= PGT_pinned

    def unpin(self, mfn: int) -> Result:
        """`MMUEXT_UNPIN_TABLE`."""
        return self._hypercall(f"unpin {mfn:#x}", self._do_unpin, mfn)

    def _do_unpin(self, mfn: int) -> None:
        page = self._require_owned(mfn, f"Mfn {mfn:x} bad domain")
        if not page.type_info & PGT_pinned:
            self._mem_log(f"Mfn {mfn:x} not pinned")
            raise XenError("EINVAL", f"frame {mfn:#x} is not pinned")
        self._save(page)
        page.type_info &= ~PGT_pinned
        self._put_page_and_type(page)

    def new_baseptr(self, mfn: int) -> Result:
        """`MMUEXT_NEW_BASEPTR` (`new_guest_cr3`): take an l4 ref on the new root, drop the old root's."""
        return self._hypercall(f"new_baseptr {mfn:#x}", self._do_new_baseptr, mfn)

    def _do_new_baseptr(self, mfn: int) -> None:
        try:
            self._get_page_and_type(mfn, PGT_l4_page_table, self.domain)
        except XenError:
            self._mem_log(f"Error while installing new baseptr {mfn:x}")
            raise
        old = self.baseptr
        self._set_attr("baseptr", mfn)
        if old is not None:
            self._put_page_and_type(self._node[old])

    def set_gdt(self, mfn: int) -> Result:
        """`HYPERVISOR_set_gdt` with a one-frame GDT: a `seg_desc` type ref on the frame."""
        return self._hypercall(f"set_gdt {mfn:#x}", self._do_set_gdt, mfn)

    def _do_set_gdt(self, mfn: int) -> None:
        self._get_page_and_type(mfn, PGT_seg_desc_page, self.domain)
        old = self.gdt
        self._set_attr("gdt", mfn)
        if old is not None:
            self._put_page_and_type(self._node[old])


def _tname(type_: int) -> str:
    return TYPE_NAMES.get(type_, hex(type_))


__all__ = ["Entry", "Hypervisor", "Result", "XenError", "edge_attrs", "paused_gc"]
