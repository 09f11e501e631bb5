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
restores that too). Any other exception inside an operation rolls back too, then propagates.

Arguments are checked before anything runs: a frame that is not in the model, a slot outside 0..511 or a
malformed entry is API misuse and raises ValueError, changing nothing. An entry may name an mfn the model has no
page for (no RAM there: `!mfn_valid`): a plain store writes such bytes like any others (the graph gets a
"no page" node, owner None, that `frames`/`has_frame` do not list), and `get_page_from_l1e` refuses it on the
I/O-space path ("Non-privileged (1) attempt to map I/O space ...": 4.1 `-EINVAL`; modern "d1 non-privileged
attempt to map MMIO space ...", `-EPERM`), except `INVALID_MFN`, which both refuse with `-EINVAL` and no line.

Log lines carry the texts of the rule set's Xen (`RuleSet.log_texts`) and its `page_info` bit layout
(`RuleSet.type_info_layout`: the model's state is in 4.1's layout, `frame.log_type_info` converts).

Where Xen's own accounting goes wrong (Xen 4.1 removing an L2 entry that the XSA-148 fast path flipped to PSE
drops refs on 512 frames; see `_put_superpage`), xenpin does what Xen does as far as the counts stay
meaningful, never lets a count go below zero (Xen 4.1 wraps it, or hits an ASSERT in a debug build), and records
each such event in `damage`, which the invariant checker reports.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import networkx as nx

from xenpin.xen.console import MemLog
from xenpin.xen.flags import ALL_FLAGS, ENTRIES_PER_TABLE, PAGE_SHIFT, PSE, RW, Entry, P
from xenpin.xen.frame import (
    FRESH_COUNT_INFO,
    LEVEL_TYPE,
    TYPE_NAMES,
    WRITABLE_ONCE,
    Frame,
    PGC_count_mask,
    PGT_count_mask,
    PGT_l4_page_table,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
    log_count_info,
    log_type_info,
    table_level,
)
from xenpin.xen.rules import RuleSet, get_rules

MAPPED_ONCE_COUNT_INFO = FRESH_COUNT_INFO + 1  # shared: the count of a frame with one mapping

GUEST_DOMAIN = 1
FOREIGN_DOMAIN = 2

# L4 slots 256..271 belong to Xen (`is_guest_l4_slot`); validation skips them and guests may not write them.
XEN_L4_SLOTS = range(256, 272)

# The valid slots of a table, for `fill_table`'s one check of a whole batch.
_SLOTS = frozenset(range(ENTRIES_PER_TABLE))

# An entry's frame number is 40 bits wide (bits 12..51); the all-ones value is INVALID_MFN
# (`PADDR_MASK >> PAGE_SHIFT`), for which `get_page_from_l1e` logs nothing.
MFN_LIMIT = 1 << 40
INVALID_MFN = MFN_LIMIT - 1

# Xen 4.1 x86-64 maps all machine memory at DIRECTMAP_VIRT_START (PML4 slot 262); `map_domain_page(mfn)` is
# `mfn_to_virt(mfn)`, so the entry `mod_l4_entry` is handed lives at this address plus the entry's offset.
DIRECTMAP_VIRT_START = 0xFFFF830000000000

# `__addr_ok` (modern `asm/x86_64/uaccess.h`): below 1 << 47, or at/above HYPERVISOR_VIRT_END = PML4_ADDR(256)
# + 16 * PML4_ENTRY_BYTES (`asm/config.h`): canonical and outside Xen's 16 L4 slots.
HYPERVISOR_VIRT_END = 0xFFFF880000000000


def addr_ok(va: int) -> bool:
    """Modern Xen's `__addr_ok(va)`: a guest-range VA (no non-canonical one, none in Xen's L4 slots 256..271)."""
    return va < 1 << 47 or va >= HYPERVISOR_VIRT_END


# Xen's errno values (`xen/include/public/errno.h`), for modern lines that print an `rc` with `%d`.
_ERRNO = {"EPERM": 1, "EACCES": 13, "EFAULT": 14, "EBUSY": 16, "EINVAL": 22}


def _alt_hex(n: int) -> str:
    """C's `%#x`: `0x64`, but `0` for zero."""
    return f"{n:#x}" if n else "0"


# Edge attribute mappings are interned per flag value: a million entries share a handful of dicts.
# They are never mutated; an entry update replaces the edge's mapping. Only valid flags of a present entry are
# interned, so a value found here needs no further check (`fill_table` relies on it).
_EDGE_ATTRS: dict[int, dict[str, int]] = {}


def edge_attrs(flags: int) -> dict[str, int]:
    attrs = _EDGE_ATTRS.get(flags)
    if attrs is None:
        problem = _flags_problem(flags)
        if problem:
            raise ValueError(problem)
        attrs = _EDGE_ATTRS[flags] = {"flags": flags}
    return attrs


def _flags_problem(flags: object) -> str | None:
    """Why `flags` cannot be the flags of a present entry, or None."""
    if type(flags) is not int:
        return f"entry flags must be an int, not {type(flags).__name__}"
    if flags & ~ALL_FLAGS or flags < 0:
        return f"entry flags {flags:#x} have bits outside the modelled flags {ALL_FLAGS:#x}"
    if not flags & P:
        return f"entry flags {flags:#x} lack P: a not-present entry is written as None"
    return None


def _mfn_problem(mfn: object) -> str | None:
    if type(mfn) is not int:
        return f"an entry's mfn must be an int, not {type(mfn).__name__}"
    if not 0 <= mfn < MFN_LIMIT:
        return f"entry mfn {mfn:#x} does not fit the 40-bit frame field of a PTE"
    return None


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
        mfn_of: Callable[[int], int] | None = None,
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
        # Xen's own accounting errors (see the module docstring): `(invariant, message)` pairs.
        self.damage: tuple[tuple[str, str], ...] = ()
        self._damage_sink: list[tuple[str, int]] | None = None
        self._phantoms: set[int] = set()  # "no page" nodes: mfns entries name that have no frame
        foreign = sorted(set(foreign))
        self._guest_frames = frames
        self._foreign = tuple(foreign)
        # `mfn_of(pfn)`: the guest's p2m (the identity when not given); each frame records its pfn (the m2p).
        self._mfn_of = mfn_of
        guest_mfns = range(frames) if mfn_of is None else [mfn_of(p) for p in range(frames)]
        clash = set(foreign).intersection(guest_mfns)
        if clash:
            raise ValueError(f"foreign frame {min(clash)} is one of the guest's frames")
        with paused_gc():
            self._add_frames(guest_mfns, guest, None if mfn_of is None else range(frames))
            self._add_frames(foreign, foreign_owner)
        self._node = self.graph._node
        self._succ = self.graph._succ
        self._pred = self.graph._pred

    def _add_frames(self, mfns: Iterable[int], owner: int, pfns: Iterable[int] | None = None) -> None:
        # Direct adjacency writes: `add_nodes_from` costs ~1 us a node more, and a 4 GiB guest has a million.
        mfns = list(mfns)
        g = self.graph
        if pfns is None:
            g._node.update((m, Frame(m, owner)) for m in mfns)
        else:
            g._node.update((m, Frame(m, owner, p)) for m, p in zip(mfns, pfns, strict=True))
        g._succ.update((m, {}) for m in mfns)
        g._pred.update((m, {}) for m in mfns)

    def add_guest_frames(self, mfns: Iterable[int]) -> None:
        """Give the guest more frames (pfn = mfn): a bare-metal boot adds pages as they become tables."""
        mfns = list(mfns)
        for m in mfns:
            if m in self._phantoms:  # entries already name it: it keeps its edges and becomes a real frame
                self._phantoms.discard(m)
                self._node[m] = Frame(m, self.domain)
        new = [m for m in mfns if m not in self._node]
        with paused_gc():
            self._add_frames(new, self.domain)

    # ----------------------------------------------------------------------------------------------- queries

    def frame(self, mfn: int) -> Frame:
        page = self._node.get(mfn)
        if page is None or page.owner is None:
            raise KeyError(f"no frame {mfn:#x}")
        return page

    def has_frame(self, mfn: int) -> bool:
        return mfn in self._node and mfn not in self._phantoms

    @property
    def frames(self) -> Iterable[int]:
        """Every frame of the model (guest and foreign); not the "no page" nodes entries may name."""
        if not self._phantoms:
            return self._node.keys()
        return [m for m in self._node if m not in self._phantoms]

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
        """The whole state, hashable and comparable: frames, entries, base pointer, GDT and recorded damage."""
        frames = tuple((m, f.owner, f.count_info, f.type_info) for m, f in sorted(self._node.items()))
        edges = tuple(
            sorted(
                (u, s, v, d["flags"])
                for u, nbrs in self._succ.items()
                for v, kd in nbrs.items()
                for s, d in kd.items()
            )
        )
        return (frames, edges, self.baseptr, self.gdt, self.damage)

    def live_level(self, mfn: int) -> int:
        """The level at which this frame's entries hold references (0: none)."""
        return self._node[mfn].level

    # ------------------------------------------------------------------------------------------ journaling

    # The journal is a flat list of triples (a million of them in a 4 GiB pin: 24 bytes each, not a tuple's 72):
    # (frame, count_info, type_info) | ("entry", (mfn, slot), old entry) | ("node", mfn, None) for a "no page"
    # node created | (attribute name, old value, None).

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
            elif what == "node":
                self._drop_phantom(a)
            else:
                setattr(self, what, a)

    def _set_attr(self, name: str, value: int | None) -> None:
        if self._journal is not None:
            self._journal.extend((name, getattr(self, name), None))
        setattr(self, name, value)

    def _hypercall(self, op: str, fn, *args) -> Result:
        """Run one operation all-or-nothing; collect Xen's log lines.

        A XenError is Xen refusing: the journal is rolled back and the Result carries the errno. Any other
        exception is rolled back the same way and then propagates, so no half-applied state survives it.
        """
        self._log = []
        self._journal = journal = []
        try:
            with paused_gc():
                fn(*args)
        except XenError as err:
            self._rollback(journal)
            return Result(op, False, err.errno, tuple(self._log), err.reason)
        except BaseException:
            self._rollback(journal)
            raise
        finally:
            self._journal = None
        return Result(op, True, None, tuple(self._log), "")

    def _note_damage(self, invariant: str, message: str, mfn: int | None = None) -> None:
        """Record that Xen's own accounting went wrong here (reported by `check_invariants`).

        Inside `_put_superpage` a per-frame event (`mfn` given) is collected and summarised in one record.
        """
        if mfn is not None and self._damage_sink is not None:
            self._damage_sink.append((invariant, mfn))
            return
        self._set_attr("damage", (*self.damage, (invariant, message)))

    # ---------------------------------------------------------------------------------- argument checks

    def _frames_text(self) -> str:
        foreign = f", foreign {', '.join(f'{m:#x}' for m in self._foreign)}" if self._foreign else ""
        if self._mfn_of is not None:
            return f"guest pfns 0x0..{self._guest_frames - 1:#x} through the p2m{foreign}"
        return f"guest frames 0x0..{self._guest_frames - 1:#x}{foreign}"

    def _check_args(self, mfn: object, slot: object = 0, entry: object = None) -> None:
        """ValueError unless `mfn` is a frame of the model, `slot` in 0..511 and `entry` a valid Entry or None.

        One inline test for the common, valid call (flags already interned in `_EDGE_ATTRS` are valid); the
        precise checks and messages only when it fails.
        """
        if (
            type(mfn) is int
            and mfn in self._node
            and mfn not in self._phantoms
            and type(slot) is int
            and 0 <= slot < ENTRIES_PER_TABLE
            and (
                entry is None
                or (
                    type(entry) is Entry
                    and type(entry.mfn) is int
                    and 0 <= entry.mfn < MFN_LIMIT
                    and type(entry.flags) is int
                    and entry.flags in _EDGE_ATTRS
                )
            )
        ):
            return
        self._check_mfn(mfn)
        self._check_slot(slot)
        self._check_entry(entry)

    def _check_mfn(self, mfn: object, what: str = "mfn") -> None:
        if type(mfn) is not int:
            raise ValueError(f"{what} must be an int, not {type(mfn).__name__}")
        if mfn not in self._node or mfn in self._phantoms:
            raise ValueError(f"{what} {mfn:#x}: no such frame in this model ({self._frames_text()})")

    @staticmethod
    def _check_slot(slot: object) -> None:
        if type(slot) is not int:
            raise ValueError(f"slot must be an int, not {type(slot).__name__}")
        if not 0 <= slot < ENTRIES_PER_TABLE:
            raise ValueError(f"slot {slot} not in 0..{ENTRIES_PER_TABLE - 1}")

    @staticmethod
    def _check_entry(entry: object) -> None:
        if entry is None:
            return
        if not isinstance(entry, Entry):
            raise ValueError(f"entry must be an Entry or None (not present), not {type(entry).__name__}")
        problem = _mfn_problem(entry.mfn) or _flags_problem(entry.flags)
        if problem:
            raise ValueError(problem)

    # ------------------------------------------------------------------------------ "no page" nodes

    def _phantom(self, mfn: int) -> dict:
        """Add a node for an mfn the model has no frame for (journaled); return its predecessor map."""
        problem = _mfn_problem(mfn)
        if problem:
            raise ValueError(problem)
        page = Frame(mfn, None)  # type: ignore[arg-type]
        page.count_info = 0
        self._node[mfn] = page
        self._succ[mfn] = {}
        pred = self._pred[mfn] = {}
        self._phantoms.add(mfn)
        if self._journal is not None:
            self._journal.extend(("node", mfn, None))
        return pred

    def _drop_phantom(self, mfn: int) -> None:
        del self._node[mfn], self._succ[mfn], self._pred[mfn]
        self._phantoms.discard(mfn)

    @property
    def _modern_texts(self) -> bool:
        return self.rules.log_texts == "modern"

    def _mfn(self, mfn: int) -> str:
        """An mfn or pfn as the log line prints it: 4.1 `%lx`, modern `PRI_mfn` / `PRI_pfn` ("05lx")."""
        return f"{mfn:05x}" if self._modern_texts else f"{mfn:x}"

    def _taf(self, type_info: int) -> int:
        return log_type_info(type_info, self.rules.type_info_layout)

    def _caf(self, count_info: int) -> int:
        return log_count_info(count_info, self.rules.type_info_layout)

    def _mem_log(self, line: str, level: int | None = None) -> None:
        """`MEM_LOG(...)`: Xen prints `(XEN) mm.c:LINE:dN <line>`; xenpin keeps the message (and the level of a
        per-level macro's message, which picks its line)."""
        self._log.append(MemLog(line, level))

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
            attrs = edge_attrs(entry.flags)
            succ = self._succ[mfn]
            kd = succ.get(target)
            if kd is None:
                pred = self._pred.get(target)
                if pred is None:
                    pred = self._phantom(target)
                kd = succ[target] = pred[mfn] = {}
            kd[slot] = attrs
            slots[slot] = target

    def _write_entry(self, mfn: int, slot: int, entry: Entry | None) -> None:
        if entry is not None and entry.mfn not in self._pred:
            self._phantom(entry.mfn)  # journaled before the entry, so a rollback removes it after the entry
        if self._journal is not None:
            self._journal.extend(("entry", (mfn, slot), self.entry(mfn, slot)))
        self._store(mfn, slot, entry)

    # ---------------------------------------------------------------------------------- general refs

    def _get_page(self, mfn: int, domain: int) -> Frame | None:
        """Mirrors `mfn_valid(mfn) && get_page(page, domain)`: a general ref if `domain` owns the frame.

        `get_page` logs `Error pfn ...` for a page another domain owns; an mfn with no page logs nothing here.
        """
        page = self._node.get(mfn)
        if page is None or page.owner != domain:
            if page is not None and page.owner is not None:
                caf, taf = self._caf(page.count_info), self._taf(page.type_info)
                if self._modern_texts:
                    # modern `get_page`: gprintk(XENLOG_INFO, "Error mfn %"PRI_mfn": rd=%pd od=%pd caf=%08lx
                    # taf=%"PRtype_info"\n", ...), caf being `count_info - !!owner`: the count before the call.
                    self._mem_log(
                        f"Error mfn {mfn:05x}: rd=d{domain} od=d{page.owner} caf={caf:08x} taf={taf:016x}"
                    )
                else:
                    self._mem_log(
                        f"Error pfn {mfn:x}: rd=d{domain}, od=d{page.owner}, caf={caf:08x}, taf={taf:016x}"
                    )
            return None
        self._save(page)
        page.count_info += 1
        return page

    def _get_page_from_pagenr(self, mfn: int, domain: int) -> Frame | None:
        """Mirrors `get_page_from_pagenr`: `get_page`, and on failure `Could not get page ref for pfn ...`."""
        page = self._get_page(mfn, domain)
        if page is None:
            if self._modern_texts:  # modern `get_page_from_mfn` (asm/mm.h)
                self._mem_log(f"Could not get page ref for mfn {mfn:05x}")
            else:
                self._mem_log(f"Could not get page ref for pfn {mfn:x}")
        return page

    def _put_page(self, page: Frame) -> None:
        self._save(page)
        if not page.count_info & PGC_count_mask:
            # Only after Xen 4.1's put_superpage dropped a ref it never took; Xen wraps the count.
            self._note_damage(
                "general_count", f"frame {page.mfn:#x}: a general reference was dropped at count 0", page.mfn
            )
            return
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
                # Same text in 4.1 (MEM_LOG) and modern (`_get_page_type`: gdprintk(XENLOG_WARNING, "Bad type
                # (saw %" PRtype_info " != exp %" PRtype_info ") for mfn %" PRI_mfn " (pfn %" PRI_pfn ")\n"));
                # modern's PRI_mfn is "05lx" and its PGT_* bits are elsewhere.
                self._mem_log(
                    f"Bad type (saw {self._taf(x):016x} != exp {self._taf(type_):016x})"
                    f" for mfn {self._mfn(page.mfn)} (pfn {self._mfn(page.pfn)})"
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
        """Mirrors `put_page_type`: drop a type ref; the last ref of a validated table devalidates it.

        Like Xen, this leaves `PGT_pinned` alone (UNPIN_TABLE clears it before the put): a pinned frame whose
        count reaches zero can only come from a ref dropped by someone who never took it.
        """
        self._save(page)
        x = page.type_info
        if not x & PGT_count_mask:
            self._note_damage(
                "type_count",
                f"frame {page.mfn:#x}: a type reference was dropped at type count 0 (type {page.type_name})",
                page.mfn,
            )
            return
        nx_ = x - 1
        if nx_ & PGT_count_mask == 0:
            level = table_level(x & PGT_type_mask)
            if level and x & PGT_validated:
                page.type_info = nx_ & ~PGT_validated
                self._free_page_table(page, level)  # `free_page_type`
                return
        page.type_info = nx_

    def _get_page_and_type(self, mfn: int, type_: int, domain: int, from_pagenr: bool = True) -> Frame:
        """Mirrors `get_page_and_type_from_pagenr` (`from_pagenr`) or `get_page_and_type`: general ref, then
        type ref; all or nothing."""
        page = self._get_page_from_pagenr(mfn, domain) if from_pagenr else self._get_page(mfn, domain)
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
            # 4.1 MEM_LOG / modern `alloc_page_type` gdprintk: the same text, modern with PRI_mfn "05lx".
            self._mem_log(
                f"Error while validating mfn {self._mfn(page.mfn)} (pfn {self._mfn(page.pfn)}) for type"
                f" {self._taf(type_):016x}: caf={self._caf(page.count_info):08x}"
                f" taf={self._taf(page.type_info):016x}"
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
            except XenError as err:
                self._log_table_failure(1, slot, err)
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
            except XenError as err:
                self._log_table_failure(level, slot, err)
                raise

    def _log_table_failure(self, level: int, slot: int, err: XenError) -> None:
        """4.1 `alloc_lN_table`: "Failure in alloc_lN_table: entry %d"; modern `promote_lN_table`:
        gdprintk "Failure %d in promote_lN_table: slot %#x" with the (negative) rc."""
        if self._modern_texts:
            rc = -_ERRNO[err.errno]
            self._mem_log(f"Failure {rc} in promote_l{level}_table: slot {_alt_hex(slot)}")
        else:
            self._mem_log(f"Failure in alloc_l{level}_table: entry {slot}")

    def _free_page_table(self, page: Frame, level: int) -> None:
        """Mirrors `free_l1_table` .. `free_l4_table`: drop what every entry holds."""
        for _slot, target, flags in self._guest_entries(page, level):
            self._put_page_from_entry(level, page.mfn, target, flags)

    def _get_page_from_l1e(self, target: int, flags: int) -> None:
        """Mirrors `get_page_from_l1e` (non-present entries never reach here)."""
        bad = flags & self.rules.disallow_mask(1)
        if bad:
            self._mem_log(self._bad_flags_line(1, bad))
            raise XenError("EINVAL", f"L1 entry has disallowed flags {bad:#x}")
        page = self._node.get(target)
        if page is None or page.owner is None:
            # `!mfn_valid(mfn)`: the I/O-space path; a domain without I/O capabilities may not map it.
            # Both versions test `mfn != (PADDR_MASK >> PAGE_SHIFT) /* INVALID_MFN? */` before logging; 4.1 then
            # returns 0 (-EINVAL) either way, modern `-EPERM` after the line and `-EINVAL` for INVALID_MFN.
            if target == INVALID_MFN:
                raise XenError("EINVAL", f"mfn {target:#x} is INVALID_MFN")
            if self._modern_texts:
                self._mem_log(f"d{self.domain} non-privileged attempt to map MMIO space {target:05x}")
            else:
                self._mem_log(f"Non-privileged ({self.domain}) attempt to map I/O space {target:08x}")
            raise XenError(self.rules.io_space_errno, f"mfn {target:#x} is no RAM page (I/O space)")
        if page.owner != self.domain:
            if self._modern_texts:  # modern: this line, then `goto could_not_pin`
                self._mem_log(
                    f"pg_owner d{self.domain} l1e_owner d{self.domain}, but real_pg_owner d{page.owner}"
                )
            self._log_could_not_pin(target, flags)
            raise XenError(
                self.rules.foreign_errno, f"frame {target:#x} belongs to d{page.owner}, not d{self.domain}"
            )
        if flags & RW:
            page = self._get_page(target, self.domain)
            try:
                self._get_page_type(page, PGT_writable_page)
            except XenError as err:
                if self._modern_texts:
                    self._mem_log("Could not get page type PGT_writable_page")
                self._log_could_not_pin(target, flags)
                raise XenError(
                    self.rules.l1_conflict_errno,
                    f"RW mapping of frame {target:#x}, which is a {page.type_name} (type count {page.type_count})",
                ) from err
        else:
            self._get_page(target, self.domain)

    def _bad_flags_line(self, level: int, bad: int) -> str:
        """ "Bad L%d flags %x"; modern prints L1's with "%#x" (`get_page_from_l1e`, `mod_l1_entry`)."""
        if level == 1 and self._modern_texts:
            return f"Bad L1 flags {_alt_hex(bad)}"
        return f"Bad L{level} flags {bad:x}"

    def _log_could_not_pin(self, target: int, flags: int) -> None:
        pfn = self._node[target].pfn
        if self._modern_texts:
            owners = f"l1e_owner d{self.domain}, pg_owner d{self.domain}"
        else:
            owners = f"l1e_owner={self.domain}, pg_owner={self.domain}"
        self._mem_log(
            f"Error getting mfn {self._mfn(target)} (pfn {self._mfn(pfn)}) from L1 entry"
            f" {_intpte(target, flags):016x} for {owners}"
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
        """Mirrors `define_get_linear_pagetable`: RO, to itself or to a validated table of the same level.

        Modern Xen (XSA-240) also refuses, silently, a linear entry in a table that is itself used linearly
        (`inc_linear_entries`) or to a table that has linear entries (`inc_linear_uses`); self-linear entries do
        not count. Xen keeps the two counts in `linear_pt_count`; xenpin recounts them from the graph when
        asked, which gives the same answer (every live linear entry is an edge between two live tables of the
        same type) and needs no state of its own to roll back.
        """
        if flags & RW:
            self._mem_log("Attempt to create linear p.t. with write perms", level)
            return False
        if target == table:
            return True  # self-linear: no reference
        page = self._get_page_from_pagenr(target, self.domain)
        if page is None:
            return False
        x = page.type_info
        if x & (PGT_type_mask | PGT_validated) != LEVEL_TYPE[level] | PGT_validated or (
            self.rules.linear_pt_exclusive and (self.linear_uses(table) or self.linear_entries(target))
        ):
            self._put_page(page)
            return False
        page.type_info = x + 1
        return True

    def linear_entries(self, mfn: int) -> int:
        """How many live linear entries the live L2-L4 table `mfn` holds (to other tables of its level)."""
        page = self._node[mfn]
        level = page.level
        if level < 2 or not page.slots:  # an L1's entries map data (an RO map of an L1 is no linear entry)
            return 0
        node, type_ = self._node, page.type
        return sum(
            1
            for slot, target in page.slots.items()
            if target != mfn and node[target].type == type_ and not (level == 4 and slot in XEN_L4_SLOTS)
        )

    def linear_uses(self, mfn: int) -> int:
        """How many live linear entries in other L2-L4 tables of its level point at the table `mfn`."""
        page = self._node[mfn]
        type_ = page.type
        if table_level(type_) < 2:
            return 0
        node = self._node
        uses = 0
        for table, keydict in self._pred[mfn].items():
            holder = node[table]
            if table == mfn or holder.level == 0 or holder.type != type_:
                continue
            uses += sum(1 for slot in keydict if not (holder.level == 4 and slot in XEN_L4_SLOTS))
        return uses

    def _put_page_from_entry(self, level: int, table: int, target: int, flags: int) -> None:
        """Mirrors `put_page_from_l1e` .. `put_page_from_l4e`."""
        page = self._node[target]
        if level == 1:
            if flags & RW:
                self._put_page_and_type(page)
            else:
                self._put_page(page)
        elif target == table:
            return  # self-linear: held nothing
        elif level == 2 and flags & PSE:
            self._put_superpage(target, flags)
        else:
            self._put_page_and_type(page)

    def _put_superpage(self, mfn: int, flags: int) -> None:
        """`put_page_from_l2e` of a PSE entry.

        Xen 4.1: `put_superpage(mfn)`, which without `allowsuperpage` is `put_spage_pages`: `put_page_and_type`
        on each of the 512 frames mfn..mfn+511 -- whatever the entry took. The only PSE entry a 4.1 guest can
        have in a validated L2 is one flipped by the fast path (XSA-148), which took one `l1` (or linear `l2`)
        ref on `mfn` when it was installed; its removal (clearing or replacing it, or devalidating the L2)
        then drops 511 type refs and 511 general refs that other holders own, devalidating tables whose count
        reaches zero and freeing (count 0) frames whose allocation ref goes. Xen 4.1 also decrements counts that
        are already zero (they wrap; a debug build hits an ASSERT) and the `page_info` of frames the guest does
        not own: xenpin stops at zero and leaves frames outside the model alone, and records all of it in
        `damage`. Modern Xen (`put_data_pages`: type refs only for RW) never holds such an entry.
        """
        node = self._node
        missing = 0
        outer, self._damage_sink = self._damage_sink, []
        try:
            for m in range(mfn, mfn + ENTRIES_PER_TABLE):
                page = node.get(m)
                if page is None or page.owner is None:
                    missing += 1
                elif self.rules.pse_put_all_types or flags & RW:
                    self._put_page_and_type(page)
                else:
                    self._put_page(page)
            events = self._damage_sink
        finally:
            self._damage_sink = outer
        if not self.rules.pse_put_all_types:
            return
        wrapped = {kind: [m for k, m in events if k == kind] for kind in ("type_count", "general_count")}
        text = (
            f"put_superpage({mfn:#x}): removing a PSE L2 entry that held one reference dropped a type and a"
            f" general reference on each frame {mfn:#x}..{mfn + ENTRIES_PER_TABLE - 1:#x} (XSA-148)"
        )
        if wrapped["type_count"]:
            text += f"; type count already 0 (Xen wraps it) on {_ranges(wrapped['type_count'])}"
        if missing:
            text += f"; {missing} frames not in the model left alone"
        self._note_damage("type_count", text)
        if wrapped["general_count"]:
            self._note_damage(
                "general_count",
                f"put_superpage({mfn:#x}): general count already 0 (Xen wraps it) on"
                f" {_ranges(wrapped['general_count'])}",
            )

    # ---------------------------------------------------------------------------------- entry updates

    def _mod_entry(self, level: int, table: int, slot: int, new: Entry | None) -> None:
        """Mirrors `mod_l1_entry` .. `mod_l4_entry`: check and reference the new entry, then drop the old."""
        if level == 4 and slot in XEN_L4_SLOTS:
            if self._modern_texts:  # modern `mod_l4_entry`: "L4 update in Xen-private area, slot %#lx\n"
                self._mem_log(f"L4 update in Xen-private area, slot {slot:#x}")
            else:  # 4.1 MEM_LOG `%p` of the entry: its address in Xen's direct map, 16 hex digits, no 0x.
                va = DIRECTMAP_VIRT_START + (table << PAGE_SHIFT) + slot * 8
                self._mem_log(f"Illegal L4 update attempt in Xen-private area {va:016x}")
            raise XenError("EINVAL", f"L4 slot {slot} belongs to Xen")
        old = self.entry(table, slot)
        if new is not None:
            bad = new.flags & self.rules.disallow_mask(level)
            if bad:
                self._mem_log(self._bad_flags_line(level, bad))
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
        """`get_page_from_pagenr(mfn, d)` as a check: the ref it takes is dropped again by the same call, so
        xenpin takes none; on failure it logs what Xen logs, then `what`. Modern Xen's callers
        (`do_mmu_update`, `MMUEXT_UNPIN_TABLE`) use `get_page_from_gfn`, which is `get_page` for a PV guest:
        only get_page's line."""
        page = self._node.get(mfn)
        if page is None or page.owner != self.domain:
            if self._modern_texts:
                self._get_page(mfn, self.domain)
            else:
                self._get_page_from_pagenr(mfn, self.domain)  # fails, with get_page's and its own log lines
            self._mem_log(what)
            raise XenError("EINVAL", f"frame {mfn:#x} is not owned by d{self.domain}")
        return page

    # ----------------------------------------------------------------------------------- operations

    def write(self, mfn: int, slot: int, entry: Entry | None) -> Result:
        """A plain guest store of a PTE-shaped value into frame `mfn`.

        Into a frame that is not a validated table the store just happens (Xen is not involved). A store into a
        validated L1 (mapped RO) traps and is emulated by `ptwr_emulated_update` with `mod_l1_entry`'s checks;
        L2-L4 and descriptor pages are never emulated: the store faults. The bytes of a plain store may name any
        mfn, even one with no page. ValueError for a frame not in the model, a bad slot or a malformed entry.
        """
        self._check_args(mfn, slot, entry)
        return self._hypercall(f"write {mfn:#x}[{slot}]", self._do_write, mfn, slot, entry)

    def _do_write(self, mfn: int, slot: int, entry: Entry | None) -> None:
        page = self._node[mfn]
        if page.owner != self.domain:
            raise XenError("EFAULT", f"the guest has no mapping of frame {mfn:#x}")
        level = page.level
        if level == 1:
            try:
                self._mod_entry(1, mfn, slot, entry)
            except XenError as err:
                # `ptwr_emulated_update`: get_page_from_l1e failed -> X86EMUL_UNHANDLEABLE -> the guest's #PF.
                # modern `pv/ro-page-fault.c`: gdprintk "could not get_page_from_l1e()"
                self._mem_log(
                    "could not get_page_from_l1e()"
                    if self._modern_texts
                    else "ptwr_emulate: could not get_page_from_l1e()"
                )
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

        The fast path of a guest filling a fresh page before it pins it. All or nothing: a live table, a
        descriptor page, a frame not the guest's, a bad slot, target or flags raise ValueError and leave the
        frame as it was. The checks stay out of the per-entry loop where they can: flags are valid once
        interned (`edge_attrs`), a target with no node shows up as the adjacency lookup failing (it becomes a
        "no page" node: Xen stores any bytes), and the slots of the batch are checked in one C-level pass.
        """
        self._check_mfn(mfn)
        page = self._node[mfn]
        if page.level or page.owner != self.domain or (page.type_count and page.type == PGT_seg_desc_page):
            raise ValueError(
                f"fill_table: frame {mfn:#x} is a live table, a descriptor page or not the guest's"
            )
        slots = page.slots
        if slots is None:
            slots = page.slots = {}
        succ, pred = self._succ[mfn], self._pred
        before = [(s, t, succ[t][s]["flags"]) for s, t in slots.items()] if slots else []
        phantoms: list[int] = []
        slot = None
        try:
            with paused_gc():
                for slot, target, flags in entries:
                    attrs = _EDGE_ATTRS.get(flags) or edge_attrs(flags)
                    if slot in slots:
                        self._store(mfn, slot, None)
                    kd = succ.get(target)
                    if kd is None:
                        try:
                            pt = pred[target]
                        except KeyError:
                            pt = self._phantom(target)  # an mfn with no page: fine for a plain store
                            phantoms.append(target)
                        succ[target] = pt[mfn] = {slot: attrs}
                    else:
                        kd[slot] = attrs
                    slots[slot] = target
                if not _SLOTS.issuperset(slots):  # one C-level pass instead of a test per entry
                    slot = next(s for s in slots if s not in _SLOTS)
                    raise ValueError(f"slot {slot!r} not in 0..{ENTRIES_PER_TABLE - 1}")
        except BaseException as err:
            for s in list(slots):
                self._store(mfn, s, None)
            for s, t, f in before:
                self._store(mfn, s, Entry(t, f))
            for t in phantoms:
                self._drop_phantom(t)
            if isinstance(err, (ValueError, TypeError, KeyError)):
                raise ValueError(f"fill_table {mfn:#x}: entry for slot {slot!r}: {err}") from err
            raise

    def mmu_update(self, mfn: int, slot: int, entry: Entry | None) -> Result:
        """`HYPERVISOR_mmu_update` with `MMU_NORMAL_PT_UPDATE` of `mfn[slot]`."""
        self._check_args(mfn, slot, entry)
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
        if type(va) is not int or not 0 <= va < 1 << 64:
            raise ValueError(f"va must be a 64-bit address, not {va!r}")
        self._check_entry(entry)
        return self._hypercall(f"update_va_mapping {va:#x}", self._do_update_va_mapping, va, entry)

    def l1_slot_for_va(self, va: int) -> tuple[int, int] | None:
        """Mirrors `guest_map_l1e` / `map_guest_l1e`: the (L1 mfn, slot) mapping `va` through the base pointer.

        Modern `map_guest_l1e` (`xen/arch/x86/pv/mm.c`) first refuses a VA failing `__addr_ok` (non-canonical,
        or in Xen's range): None. 4.1's `guest_map_l1e` (`asm-x86/paging.h`) does not check: it indexes
        `__linear_l2_table` by `l2_linear_offset(addr)`, which masks the VA to its low 48 bits (`VADDR_MASK`),
        so a non-canonical VA walks as the VA with the same bits 12..47. A VA in Xen's L4 slots gives None under
        both: what 4.1 reads there is Xen's own tables, which the model does not have.
        """
        if self.rules.va_addr_ok and not addr_ok(va):
            return None
        table = self.baseptr
        if table is None:
            return None
        for level in (4, 3, 2):
            slot = (va >> (12 + 9 * (level - 1))) & (ENTRIES_PER_TABLE - 1)
            if level == 4 and slot in XEN_L4_SLOTS:
                return None
            e = self.entry(table, slot)
            if e is None or (level in (2, 3) and e.flags & PSE) or not self.has_frame(e.mfn):
                return None
            table = e.mfn
        return table, (va >> 12) & (ENTRIES_PER_TABLE - 1)

    def _do_update_va_mapping(self, va: int, entry: Entry | None) -> None:
        # `__do_update_va_mapping` (mm.c): rc = -EINVAL; pl1e = map_guest_l1e(va, &gl1mfn); NULL -> `goto out`,
        # before `mod_l1_entry` and with no log line (since XSA-279, 6c8d502887, no TLB flush on error either).
        if self.rules.va_addr_ok and not addr_ok(va):
            raise XenError("EINVAL", f"va {va:#x} fails __addr_ok (non-canonical or in Xen's range)")
        where = self.l1_slot_for_va(va)
        if where is None:
            raise XenError("EINVAL", f"no L1 table maps va {va:#x} through the current base pointer")
        l1, slot = where
        if self._node[l1].level != 1:
            raise XenError("EINVAL", f"the table at {l1:#x} mapping va {va:#x} is not a validated L1")
        self._mod_entry(1, l1, slot, entry)

    def pin(self, level: int, mfn: int) -> Result:
        """`MMUEXT_PIN_Ln_TABLE`."""
        if type(level) is not int or level not in (1, 2, 3, 4):
            raise ValueError(f"pin level must be 1..4, got {level!r}")
        self._check_mfn(mfn)
        return self._hypercall(f"pin_l{level} {mfn:#x}", self._do_pin, level, mfn)

    def _do_pin(self, level: int, mfn: int) -> None:
        if self._modern_texts:
            self._do_pin_modern(level, mfn)
            return
        try:
            page = self._get_page_and_type(mfn, LEVEL_TYPE[level], self.domain)
        except XenError:
            self._mem_log(f"Error while pinning mfn {mfn:x}")
            raise
        if page.type_info & PGT_pinned:
            self._mem_log(f"Mfn {mfn:x} already pinned")
            raise XenError("EINVAL", f"frame {mfn:#x} is already pinned")
        page.type_info |= PGT_pinned

    def _do_pin_modern(self, level: int, mfn: int) -> None:
        """Modern `do_mmuext_op` `pin_page`: `get_page_from_gfn` (get_page's line only, `-EINVAL`), then
        `get_page_type_preemptible` ("Error %d while pinning mfn %" PRI_mfn), then `_PGT_pinned`."""
        page = self._get_page(mfn, self.domain)
        if page is None:
            raise XenError("EINVAL", f"frame {mfn:#x} is not owned by d{self.domain}")
        try:
            self._get_page_type(page, LEVEL_TYPE[level])
        except XenError as err:
            self._mem_log(f"Error {-_ERRNO[err.errno]} while pinning mfn {mfn:05x}")
            raise
        if page.type_info & PGT_pinned:
            self._mem_log(f"mfn {mfn:05x} already pinned")
            raise XenError("EINVAL", f"frame {mfn:#x} is already pinned")
        page.type_info |= PGT_pinned

    def unpin(self, mfn: int) -> Result:
        """`MMUEXT_UNPIN_TABLE`."""
        self._check_mfn(mfn)
        return self._hypercall(f"unpin {mfn:#x}", self._do_unpin, mfn)

    def _do_unpin(self, mfn: int) -> None:
        if self._modern_texts:
            page = self._require_owned(mfn, f"mfn {mfn:05x} bad, or bad owner d{self.domain}")
        else:
            page = self._require_owned(mfn, f"Mfn {mfn:x} bad domain")
        if not page.type_info & PGT_pinned:
            self._mem_log(f"mfn {mfn:05x} not pinned" if self._modern_texts else f"Mfn {mfn:x} not pinned")
            raise XenError("EINVAL", f"frame {mfn:#x} is not pinned")
        self._save(page)
        page.type_info &= ~PGT_pinned
        self._put_page_and_type(page)

    def new_baseptr(self, mfn: int) -> Result:
        """`MMUEXT_NEW_BASEPTR` (`new_guest_cr3`): take an l4 ref on the new root, drop the old root's."""
        self._check_mfn(mfn)
        return self._hypercall(f"new_baseptr {mfn:#x}", self._do_new_baseptr, mfn)

    def _do_new_baseptr(self, mfn: int) -> None:
        try:
            self._get_page_and_type(mfn, PGT_l4_page_table, self.domain)
        except XenError:
            self._mem_log(f"Error while installing new baseptr {self._mfn(mfn)}")
            raise
        old = self.baseptr
        self._set_attr("baseptr", mfn)
        if old is not None:
            self._put_page_and_type(self._node[old])

    def set_gdt(self, mfn: int) -> Result:
        """`HYPERVISOR_set_gdt` with a one-frame GDT: a `seg_desc` type ref on the frame."""
        self._check_mfn(mfn)
        return self._hypercall(f"set_gdt {mfn:#x}", self._do_set_gdt, mfn)

    def _do_set_gdt(self, mfn: int) -> None:
        # `set_gdt`: `mfn_valid(mfn) && get_page_and_type(page, d, PGT_seg_desc_page)`, no "Could not get page ref".
        self._get_page_and_type(mfn, PGT_seg_desc_page, self.domain, from_pagenr=False)
        old = self.gdt
        self._set_attr("gdt", mfn)
        if old is not None:
            self._put_page_and_type(self._node[old])


def _ranges(mfns: Iterable[int]) -> str:
    """`0x1-0x3, 0x5` for a set of mfns."""
    out: list[str] = []
    run: list[int] = []
    for m in sorted(set(mfns)):
        if run and m == run[-1] + 1:
            run.append(m)
            continue
        if run:
            out.append(f"{run[0]:#x}" if len(run) == 1 else f"{run[0]:#x}-{run[-1]:#x}")
        run = [m]
    if run:
        out.append(f"{run[0]:#x}" if len(run) == 1 else f"{run[0]:#x}-{run[-1]:#x}")
    return ", ".join(out)


def _tname(type_: int) -> str:
    return TYPE_NAMES.get(type_, hex(type_))


__all__ = ["Entry", "Hypervisor", "Result", "XenError", "edge_attrs", "paused_gc"]
