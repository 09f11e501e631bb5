"""Xen's PV pagetable validator: type counts, validation, pinning and entry updates over a mapping graph.

Mirrors `xen/arch/x86/mm.c` (RELEASE-4.1.0, with the differences of modern Xen in `rules.py`):
`get_page` / `get_page_type` / `put_page_type`, `alloc_lN_table` / `free_lN_table` (validation and
devalidation), `get_page_from_lNe` / `put_page_from_lNe`, the linear-pagetable checks
(`define_get_linear_pagetable`), `mod_lN_entry` with their fast paths, and the hypercalls `do_mmuext_op`
(`PIN_Ln_TABLE`, `UNPIN_TABLE`, `NEW_BASEPTR`), `do_mmu_update`, `do_update_va_mapping` and `set_gdt`.

The guest's mappings are the graph `Hypervisor.graph`, a `networkx.MultiDiGraph`: a node per frame (its
attribute mapping is the `Frame`), an edge per present entry `table -> target` keyed by slot with
`{"flags": ...}`. The graph is a read-only view (`graph.PageTableGraph`) of compact storage
(`storage.PageInfo`): `count_info` / `type_info` arrays like Xen's `frame_table` and each table's 512 raw PTEs.
An edge holds references only while its table is validated (Xen's rule: only entries of validated tables
count). The hot paths work on that storage in bulk: validating (and devalidating) an L1 table takes a run of
entries naming consecutive frames with one flag value in a few C-level slice operations (`storage.run_length`
finds the runs), with the same result, errno and log lines as the entry-by-entry path any other entry takes;
`fill_table` and `write_run` store a batch or run of plain stores the same way.

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
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, compress
from operator import itemgetter

from xenpin.xen.console import MemLog
from xenpin.xen.flags import ALL_FLAGS, ENTRIES_PER_TABLE, PAGE_SHIFT, PSE, RW, Entry, P
from xenpin.xen.frame import (
    FRESH_COUNT_INFO,
    LEVEL_TYPE,
    TYPE_NAMES,
    WRITABLE_ONCE,
    Frame,
    PGC_allocated,
    PGC_count_mask,
    PGT_count_mask,
    PGT_l4_page_table,
    PGT_pinned,
    PGT_seg_desc_page,
    PGT_type_mask,
    PGT_validated,
    PGT_writable_page,
    live_level,
    log_count_info,
    log_type_info,
    table_level,
)
from xenpin.xen.graph import PageTableGraph, edge_data
from xenpin.xen.rules import RuleSet, get_rules
from xenpin.xen.storage import (
    ABSENT,
    MFN_MASK,
    NO_PAGE,
    FrameSet,
    PageInfo,
    present_mask,
    progression,
    run_at,
    run_length,
)

MAPPED_ONCE_COUNT_INFO = FRESH_COUNT_INFO + 1  # shared: the count of a frame with one mapping

GUEST_DOMAIN = 1
FOREIGN_DOMAIN = 2

# L4 slots 256..271 belong to Xen (`is_guest_l4_slot`); validation skips them and guests may not write them.
XEN_L4_SLOTS = range(256, 272)

# The valid slots of a table, for `fill_table`'s one check of a whole batch.
_SLOT_SET = frozenset(range(ENTRIES_PER_TABLE))
_SLOT_TUPLE = tuple(range(ENTRIES_PER_TABLE))
_SLOT_ARRAY = array("Q", _SLOT_TUPLE)
_COLUMNS = (itemgetter(0), itemgetter(1), itemgetter(2))  # a batch's slots, targets, flags

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


# The flag values already seen to be valid flags of a present entry (with their read-only edge attribute
# mapping), so a value found here needs no further check (`_check_args` and `fill_table` rely on it).
_EDGE_ATTRS: dict[int, Mapping[str, int]] = {}


def edge_attrs(flags: int) -> Mapping[str, int]:
    """The graph's attribute mapping `{"flags": flags}` of an entry; ValueError for flags no entry can have."""
    attrs = _EDGE_ATTRS.get(flags)
    if attrs is None:
        problem = _flags_problem(flags)
        if problem:
            raise ValueError(problem)
        attrs = _EDGE_ATTRS[flags] = edge_data(flags)
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


class _NotInBulk(Exception):
    """A bulk path met an entry it does not take: the caller rolls back and goes entry by entry."""


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


def _entry(raw: int) -> Entry | None:
    """The Entry of a raw PTE (None when not present)."""
    return Entry((raw >> PAGE_SHIFT) & MFN_MASK, raw & ALL_FLAGS) if raw & P else None


def _raw(entry: Entry | None) -> int:
    return 0 if entry is None else (entry.mfn << PAGE_SHIFT) | entry.flags


_INC = (1).__add__  # for `map` over an array slice: every count + 1 in C
_DEC = (-1).__add__
_WRITABLE_VALIDATED = PGT_writable_page | PGT_validated


def _page_info(mfns: range | array, owner: int, p2m: bool) -> PageInfo:
    """The `PageInfo` of a fresh guest whose pfn p is frame `mfns[p]`: one window over the guest's mfns, made
    by C-level repetition when they are consecutive (ascending or descending, the layouts the domain builder
    makes), frame by frame otherwise."""
    n = len(mfns)
    lo, hi = min(mfns), max(mfns)
    if hi - lo + 1 > 2 * n:  # too sparse for a window: every frame through the dict
        mem = PageInfo(lo, 0)
        for p, m in enumerate(mfns):
            mem.add(m, owner, p)
        return mem
    if hi - lo + 1 == n and mfns[0] == lo and (not p2m or mfns == progression(lo, 1, n)):
        return PageInfo(lo, n, owner, 0 if p2m else None)
    if hi - lo + 1 == n and p2m and mfns == progression(hi, -1, n):
        return PageInfo(lo, n, owner, n - 1, -1)
    mem = PageInfo(lo, hi - lo + 1)
    for p, m in enumerate(mfns):
        if mem.index(m) is not None:
            raise ValueError(f"the p2m maps two pfns to mfn {m:#x}")
        mem.add(m, owner, p)
    return mem


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
        self.baseptr: int | None = None  # `v->arch.guest_table`
        self.gdt: int | None = None
        self._log: list[str] = []
        self._journal: list | None = None
        # Xen's own accounting errors (see the module docstring): `(invariant, message)` pairs.
        self.damage: tuple[tuple[str, str], ...] = ()
        self._damage_sink: list[tuple[str, int]] | None = None
        foreign = sorted(set(foreign))
        self._guest_frames = frames
        self._foreign = tuple(foreign)
        # `mfn_of(pfn)`: the guest's p2m (the identity when not given); each frame records its pfn (the m2p).
        self._mfn_of = mfn_of
        guest_mfns = range(frames) if mfn_of is None else array("Q", map(mfn_of, range(frames)))
        clash = set(foreign).intersection(guest_mfns) if foreign else ()
        if clash:
            raise ValueError(f"foreign frame {min(clash)} is one of the guest's frames")
        self._mem = mem = _page_info(guest_mfns, guest, mfn_of is not None)
        for m in foreign:
            mem.add(m, foreign_owner)
        self.graph = PageTableGraph(memory=mem)
        self._node = self.graph._node
        self._own_code = mem.owner_code(guest)
        self._own_run = bytes([self._own_code]) * ENTRIES_PER_TABLE  # `code` of a run of the guest's frames

    def add_guest_frames(self, mfns: Iterable[int]) -> None:
        """Give the guest more frames (pfn = mfn): a bare-metal boot adds pages as they become tables."""
        mem = self._mem
        for m in mfns:
            i = mem.index(m)
            if i is None:
                mem.add(m, self.domain)
            elif mem.code[i] == NO_PAGE:  # entries already name it: it keeps its edges, becomes a real frame
                mem.make_frame(i, self.domain)

    # ----------------------------------------------------------------------------------------------- queries

    def _page(self, mfn: int) -> Frame | None:
        """The node `mfn` (a frame, or a "no page" node with owner None), or None."""
        i = self._mem.index(mfn)
        return None if i is None else Frame(self._mem, i, mfn)

    def frame(self, mfn: int) -> Frame:
        i = self._mem.frame_index(mfn) if type(mfn) is int else None
        if i is None:
            raise KeyError(f"no frame {mfn:#x}")
        return Frame(self._mem, i, mfn)

    def has_frame(self, mfn: int) -> bool:
        return self._mem.frame_index(mfn) is not None

    @property
    def frames(self) -> FrameSet:
        """Every frame of the model (guest and foreign); not the "no page" nodes entries may name."""
        return FrameSet(self._mem)

    def _table(self, mfn: int) -> array | None:
        """The raw entries of node `mfn` (None if it never had any); KeyError if there is no such node."""
        if self._mem.index(mfn) is None:
            raise KeyError(mfn)
        return self._mem.tables.get(mfn)

    def entry(self, mfn: int, slot: int) -> Entry | None:
        """The present entry at `slot` of frame `mfn`, or None."""
        raws = self._table(mfn)
        return None if raws is None or not 0 <= slot < ENTRIES_PER_TABLE else _entry(raws[slot])

    def entries(self, mfn: int) -> list[tuple[int, Entry]]:
        """All present entries of a frame, by slot."""
        raws = self._table(mfn)
        if raws is None:
            return []
        return [
            (s, Entry((raw >> PAGE_SHIFT) & MFN_MASK, raw & ALL_FLAGS))
            for s, raw in compress(enumerate(raws), present_mask(raws))
        ]

    def present_entries(self, mfn: int) -> Iterator[tuple[int, int, int]]:
        """`(slot, target mfn, flags)` of every present entry of node `mfn`, by slot (cheaper than `entries`)."""
        raws = self._table(mfn)
        if raws is not None:
            for slot, raw in compress(enumerate(raws), present_mask(raws)):
                yield slot, (raw >> PAGE_SHIFT) & MFN_MASK, raw & ALL_FLAGS

    def table_frames(self) -> list[int]:
        """The nodes that have (or had) entries, in node order: the only ones `present_entries` can list."""
        index = self._mem.index
        return sorted(self._mem.tables, key=index)

    def snapshot(self) -> tuple:
        """The whole state, hashable and comparable: frames, entries, base pointer, GDT and recorded damage."""
        mem = self._mem
        ci, ti, code, owners = mem.count_info, mem.type_info, mem.code, mem.owners
        index = mem.index
        frames = tuple(
            (m, owners[code[i]], ci[i], ti[i]) for m, i in sorted((m, index(m)) for m in mem.node_mfns())
        )
        edges = tuple(sorted((u, s, v, f) for u in mem.tables for s, v, f in self.present_entries(u)))
        return (frames, edges, self.baseptr, self.gdt, self.damage)

    def live_level(self, mfn: int) -> int:
        """The level at which this frame's entries hold references (0: none)."""
        i = self._mem.index(mfn)
        if i is None:
            raise KeyError(mfn)
        return live_level(self._mem.type_info[i])

    # ------------------------------------------------------------------------------------------ journaling

    # The journal is a flat list of triples (24 bytes each, not a tuple's 72):
    # (frame index, count_info, type_info) | ("entry", mfn << 9 | slot, old raw entry) | ("node", mfn, None)
    # for a "no page" node created | ("range", first index, (n, old count_info, old type_info)) for n
    # consecutive frames a bulk step changed, each old value an int (the same for all n) or an array of n
    # (None: unchanged) | (attribute name, old value, None). A validation in bulk journals one "range" per run
    # of entries, so a 4 GiB pin journals a few thousand triples, not a million.

    def _save(self, page: Frame) -> None:
        if self._journal is not None:
            i = page._i
            self._journal.extend((i, self._mem.count_info[i], self._mem.type_info[i]))

    def _rollback(self, journal: list) -> None:
        mem = self._mem
        for i in range(len(journal) - 3, -1, -3):
            what, a, b = journal[i : i + 3]
            if type(what) is int:
                mem.count_info[what] = a
                mem.type_info[what] = b
            elif what == "range":
                n, old_ci, old_ti = b
                for column, old in ((mem.count_info, old_ci), (mem.type_info, old_ti)):
                    if old is not None:
                        column[a : a + n] = array("Q", [old]) * n if type(old) is int else old
            elif what == "entry":
                mem.set_raw(a >> 9, a & 511, b)
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
            and self._mem.frame_index(mfn) is not None
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
        if self._mem.frame_index(mfn) is None:
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

    def _phantom(self, mfn: int) -> None:
        """Add a node for an mfn the model has no frame for (journaled)."""
        problem = _mfn_problem(mfn)
        if problem:
            raise ValueError(problem)
        self._mem.add(mfn, None)
        if self._journal is not None:
            self._journal.extend(("node", mfn, None))

    def _drop_phantom(self, mfn: int) -> None:
        self._mem.drop(mfn)

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
        """Write an entry's bytes into the table (its target is a node already). No reference counting here."""
        self._mem.set_raw(mfn, slot, _raw(entry))

    def _write_entry(self, mfn: int, slot: int, entry: Entry | None) -> None:
        mem = self._mem
        if entry is not None and mem.index(entry.mfn) is None:
            self._phantom(entry.mfn)  # journaled before the entry, so a rollback removes it after the entry
        if self._journal is not None:
            self._journal.extend(("entry", mfn << 9 | slot, mem.raw(mfn, slot)))
        mem.set_raw(mfn, slot, _raw(entry))

    # ---------------------------------------------------------------------------------- general refs

    def _get_page(self, mfn: int, domain: int) -> Frame | None:
        """Mirrors `mfn_valid(mfn) && get_page(page, domain)`: a general ref if `domain` owns the frame.

        `get_page` logs `Error pfn ...` for a page another domain owns; an mfn with no page logs nothing here.
        """
        page = self._page(mfn)
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

        The hot path of a pin (512 entries a table, a million in a 4 GiB guest), taken run by run
        (`storage.run_length`): a run of entries naming consecutive frames with one flag value (the direct map
        is one run a table), all of them the guest's and in one state, is referenced with a few slice
        operations (`_l1_run_refs`); any other entry goes one by one (`_l1_entry_refs`).
        """
        raws = self._mem.tables.get(page.mfn)
        if raws is None:
            return
        slot, single = 0, -1  # single: the first slot of a span of entries in no run, not yet referenced
        while slot < ENTRIES_PER_TABLE:
            raw = raws[slot]
            if not raw:
                slot += run_length(raws, slot, ENTRIES_PER_TABLE, 0)
                continue
            n, step = run_at(raws, slot)
            if n < 2:
                single = slot if single < 0 else single
            else:
                if single >= 0:  # slot order: the span before this run first
                    self._l1_entry_refs(raws, single, slot)
                    single = -1
                if not self._l1_run_refs(raw, n, step):
                    self._l1_entry_refs(raws, slot, slot + n)
            slot += n
        if single >= 0:
            self._l1_entry_refs(raws, single, ENTRIES_PER_TABLE)

    def _l1_run_refs(self, raw: int, n: int, step: int = 1 << PAGE_SHIFT) -> bool:
        """`get_page_from_l1e` for n entries `raw`, `raw + step`, ... (step: plus or minus one frame) in bulk,
        if all take the common path: allowed flags, frames of the guest in the window, all with one `type_info`
        that an RO mapping leaves alone or an RW one makes (or keeps) writable. False, changing nothing,
        otherwise. The frames are distinct and in one state, so their order does not matter."""
        flags = raw & ALL_FLAGS
        if flags & self.rules.disallow_mask(1):
            return False
        mem = self._mem
        i = ((raw >> PAGE_SHIFT) & MFN_MASK) - mem.lo - (n - 1 if step < 0 else 0)
        if i < 0 or i + n > mem.window or mem.code[i : i + n] != self._own_run[:n]:
            return False
        ci, ti = mem.count_info, mem.type_info
        old_ti = None
        if flags & RW:
            t = ti[i]
            if ti[i : i + n].count(t) != n:
                return False
            if t & PGT_count_mask == 0 and t & PGT_type_mask != PGT_writable_page:
                new_t = WRITABLE_ONCE
            elif t & (PGT_type_mask | PGT_validated) == _WRITABLE_VALIDATED:
                new_t = t + 1
            else:
                return False
            ti[i : i + n] = array("Q", [new_t]) * n
            old_ti = t
        old_ci = ci[i : i + n]
        c = old_ci[0]
        if old_ci.count(c) == n:
            ci[i : i + n] = array("Q", [c + 1]) * n
            self._journal.extend(("range", i, (n, c, old_ti)))
        else:
            ci[i : i + n] = array("Q", map(_INC, old_ci))
            self._journal.extend(("range", i, (n, old_ci, old_ti)))
        return True

    def _l1_entry_refs(self, raws: array, start: int, stop: int) -> None:
        """`get_page_from_l1e` for the entries of slots start..stop-1, one by one: the common entry, an allowed
        RO or RW mapping of the guest's own frame that is free or already writable, is referenced inline;
        anything else goes through `_get_page_from_l1e` and its checks and log lines."""
        mem, journal, own = self._mem, self._journal, self._own_code
        index, code, ci, ti = mem.index, mem.code, mem.count_info, mem.type_info
        disallow = self.rules.disallow_mask(1)
        for slot in range(start, stop):
            raw = raws[slot]
            if not raw & P:
                continue
            target, flags = (raw >> PAGE_SHIFT) & MFN_MASK, raw & ALL_FLAGS
            i = index(target)
            if i is not None and code[i] == own and not flags & disallow:
                t = ti[i]
                if not flags & RW:
                    journal.extend((i, ci[i], t))
                    ci[i] += 1
                    continue
                if t & PGT_count_mask == 0 and t & PGT_type_mask != PGT_writable_page:
                    journal.extend((i, ci[i], t))
                    ci[i] += 1
                    ti[i] = WRITABLE_ONCE
                    continue
                if t & (PGT_type_mask | PGT_validated) == _WRITABLE_VALIDATED:
                    journal.extend((i, ci[i], t))
                    ci[i] += 1
                    ti[i] = t + 1
                    continue
            try:
                self._get_page_from_l1e(target, flags)
            except XenError as err:
                self._log_table_failure(1, slot, err)
                raise

    def _guest_entries(self, page: Frame, level: int) -> Iterator[tuple[int, int, int]]:
        """`(slot, target, flags)` of the entries Xen validates, in slot order (`is_guest_l4_slot`)."""
        for slot, target, flags in self.present_entries(page.mfn):
            if level == 4 and slot in XEN_L4_SLOTS:
                continue
            yield slot, target, flags

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
        """Mirrors `free_l1_table` .. `free_l4_table`: drop what every entry holds (an L1's runs in bulk)."""
        if level == 1:
            raws = self._mem.tables.get(page.mfn)
            slot = 0
            while raws is not None and slot < ENTRIES_PER_TABLE:
                raw = raws[slot]
                if not raw:
                    slot += run_length(raws, slot, ENTRIES_PER_TABLE, 0)
                    continue
                n, step = run_at(raws, slot)
                if n < 2 or not self._l1_run_puts(raw, n, step):
                    for r in raws[slot : slot + n]:  # a run from a present entry is all present
                        self._put_page_from_entry(1, page.mfn, (r >> PAGE_SHIFT) & MFN_MASK, r & ALL_FLAGS)
                slot += n
            return
        for _slot, target, flags in self._guest_entries(page, level):
            self._put_page_from_entry(level, page.mfn, target, flags)

    def _l1_run_puts(self, raw: int, n: int, step: int = 1 << PAGE_SHIFT) -> bool:
        """`put_page_from_l1e` for n entries `raw`, `raw + step`, ... in bulk, if none of them reaches a
        zero count and the frames are in the window with one writable `type_info` (RW entries); False,
        changing nothing, otherwise."""
        mem = self._mem
        i = ((raw >> PAGE_SHIFT) & MFN_MASK) - mem.lo - (n - 1 if step < 0 else 0)
        if i < 0 or i + n > mem.window or mem.code[i : i + n] != self._own_run[:n]:
            return False
        ci, ti = mem.count_info, mem.type_info
        old_ci = ci[i : i + n]
        if min(old_ci) <= PGC_allocated:  # some count would reach below 1 (or a frame has no allocation ref)
            return False
        old_ti = None
        if raw & RW:
            t = ti[i]
            if t & PGT_count_mask == 0 or table_level(t & PGT_type_mask) or ti[i : i + n].count(t) != n:
                return False
            ti[i : i + n] = array("Q", [t - 1]) * n
            old_ti = t
        c = old_ci[0]
        if old_ci.count(c) == n:
            ci[i : i + n] = array("Q", [c - 1]) * n
            self._journal.extend(("range", i, (n, c, old_ti)))
        else:
            ci[i : i + n] = array("Q", map(_DEC, old_ci))
            self._journal.extend(("range", i, (n, old_ci, old_ti)))
        return True

    def _get_page_from_l1e(self, target: int, flags: int) -> None:
        """Mirrors `get_page_from_l1e` (non-present entries never reach here)."""
        bad = flags & self.rules.disallow_mask(1)
        if bad:
            self._mem_log(self._bad_flags_line(1, bad))
            raise XenError("EINVAL", f"L1 entry has disallowed flags {bad:#x}")
        page = self._page(target)
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
        if level < 2:  # an L1's entries map data (an RO map of an L1 is no linear entry)
            return 0
        mem, type_ = self._mem, page.type
        ti, index = mem.type_info, mem.index
        return sum(
            1
            for slot, target, _flags in self.present_entries(mfn)
            if target != mfn
            and ti[index(target)] & PGT_type_mask == type_
            and not (level == 4 and slot in XEN_L4_SLOTS)
        )

    def linear_uses(self, mfn: int) -> int:
        """How many live linear entries in other L2-L4 tables of its level point at the table `mfn`."""
        page = self._node[mfn]
        type_ = page.type
        if table_level(type_) < 2:
            return 0
        # Xen counts these in `linear_pt_count`; xenpin scans the (few) tables of the same type, which needs no
        # reverse map kept up to date on every store.
        mem = self._mem
        ti, index = mem.type_info, mem.index
        uses = 0
        for table, raws in mem.tables.items():
            t = ti[index(table)]
            if table == mfn or not live_level(t) or t & PGT_type_mask != type_:
                continue
            xen_slots = live_level(t) == 4
            uses += sum(
                1
                for slot, raw in compress(enumerate(raws), present_mask(raws))
                if (raw >> PAGE_SHIFT) & MFN_MASK == mfn and not (xen_slots and slot in XEN_L4_SLOTS)
            )
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
        missing = 0
        outer, self._damage_sink = self._damage_sink, []
        try:
            for m in range(mfn, mfn + ENTRIES_PER_TABLE):
                page = self._page(m)
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
        page = self._page(mfn)
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

        The fast path of a guest filling a fresh page before it pins it; the same as one `write` per entry, in
        order (a later entry for a slot wins), but all or nothing: a live table, a descriptor page, a frame not
        the guest's, a bad slot, target or flags raise ValueError and leave the frame as it was. A batch whose
        slots, flags and targets pass set-level checks (valid slots, flags already seen valid, targets that are
        nodes of the window) is written with one C-level pass (`_fill_in_bulk`); any other goes entry by entry,
        which names the first bad entry (a bad slot only after the whole batch, as before). A target with no node
        becomes a "no page" node: Xen stores any bytes.
        """
        self._check_mfn(mfn)
        page = self._node[mfn]
        if page.level or page.owner != self.domain or (page.type_count and page.type == PGT_seg_desc_page):
            raise ValueError(
                f"fill_table: frame {mfn:#x} is a live table, a descriptor page or not the guest's"
            )
        mem = self._mem
        raws = mem.table(mfn)
        before = raws[:]
        phantoms: list[int] = []
        slot = None
        try:
            with paused_gc():
                batch = entries if type(entries) is list else list(entries)
                if not self._fill_in_bulk(raws, batch):
                    bad_slot: list = []
                    for slot, target, flags in batch:
                        if flags not in _EDGE_ATTRS:
                            edge_attrs(flags)
                        if type(target) is not int or mem.index(target) is None:
                            self._phantom(target)  # an mfn with no page: fine for a plain store
                            phantoms.append(target)
                        if type(slot) is int and 0 <= slot < ENTRIES_PER_TABLE:
                            raws[slot] = target << PAGE_SHIFT | flags
                        elif not bad_slot:
                            bad_slot.append(slot)
                    if bad_slot:
                        slot = bad_slot[0]
                        raise ValueError(f"slot {slot!r} not in 0..{ENTRIES_PER_TABLE - 1}")
                mem.version += 1
        except BaseException as err:
            raws[:] = before
            for t in reversed(phantoms):
                self._drop_phantom(t)
            if isinstance(err, (ValueError, TypeError, KeyError)):
                raise ValueError(f"fill_table {mfn:#x}: entry for slot {slot!r}: {err}") from err
            raise

    def _fill_in_bulk(self, raws: array, batch: list) -> bool:
        """`fill_table`'s C-level path: True if the batch passed the set-level checks and is written.

        The checks and the columns of the batch are C-level passes (`map`, `set`, tuple comparisons) that make
        no new int; a batch of consecutive slots naming consecutive frames with one flag value (a direct-map
        page) is written as one `progression`, any other with one expression per entry.
        """
        try:
            if not batch:
                return True
            if set(map(len, batch)) != {3}:
                return False
            if self._fill_run(raws, batch):
                return True
            slots, targets, flags = (tuple(map(column, batch)) for column in _COLUMNS)
            if set(map(type, slots)) != {int} or set(map(type, targets)) != {int}:
                return False
            if not _SLOT_SET.issuperset(slots) or not all(map(_EDGE_ATTRS.__contains__, set(flags))):
                return False
        except TypeError:  # an unhashable or unsized value: the entry-by-entry path names it
            return False
        mem, n = self._mem, len(batch)
        lo, hi = min(targets), max(targets)
        if (
            lo < mem.lo
            or hi - mem.lo >= mem.window
            or mem.code.find(ABSENT, lo - mem.lo, hi - mem.lo + 1) != -1
        ):
            return False
        first = slots[0]
        if slots == _SLOT_TUPLE[first : first + n]:  # consecutive slots
            f = flags[0]
            if (
                hi - lo == n - 1
                and flags.count(f) == n
                and len(set(targets)) == n
                and list(targets) == sorted(targets)
            ):  # consecutive frames, one flag value
                raws[first : first + n] = progression(lo << PAGE_SHIFT | f, 1 << PAGE_SHIFT, n)
                return True
            raws[first : first + n] = array(
                "Q", [t << PAGE_SHIFT | f for t, f in zip(targets, flags, strict=True)]
            )
            return True
        for slot, target, f in batch:
            raws[slot] = target << PAGE_SHIFT | f
        return True

    def _fill_run(self, raws: array, batch: list) -> bool:
        """`_fill_in_bulk` for a batch of 3-tuples that is one run (consecutive slots naming consecutive frames
        of the window, upward or downward, one valid flag value): the batch flattened into one `array('Q')` (which also refuses
        anything but ints in 0..2**64-1) and compared column by column with ideal runs, all in C."""
        try:
            flat = array("Q", chain.from_iterable(batch))
        except (TypeError, OverflowError):
            return False
        n, first, flags = len(batch), flat[0], flat[2]
        if first + n > ENTRIES_PER_TABLE or flat[0::3] != _SLOT_ARRAY[first : first + n]:
            return False
        if flags not in _EDGE_ATTRS or flat[2::3].count(flags) != n:
            return False
        mem, target = self._mem, flat[1]
        step = -1 if n > 1 and flat[4] == target - 1 else 1  # frames upward, or downward (a descending p2m)
        i = target - mem.lo - (n - 1 if step < 0 else 0)
        if i < 0 or i + n > mem.window or mem.code.find(ABSENT, i, i + n) != -1:
            return False
        if flat[1::3] != progression(target, step, n):
            return False
        raws[first : first + n] = progression(target << PAGE_SHIFT | flags, step << PAGE_SHIFT, n)
        return True

    def write_run(self, mfn: int, slot: int, target: int, n: int, flags: int, step: int = 1) -> list[Result]:
        """`n` plain guest stores `mfn[slot + k] = Entry(target + k * step, flags)`, k = 0..n-1, `step` 1 or -1:
        the same as `n` calls of `write` in that order (each its own all-or-nothing operation), for a PTE page
        a guest fills with a run of consecutive frames, such as the direct map (`step` -1: a guest's
        pfn-ordered stores through a descending p2m).

        Returns the Results of the stores that were refused or logged a line, in order; every other store
        returned `Result(f"write {mfn:#x}[{slot + k}]", True)`, which is not listed (a million of them would
        cost 100 MB). Into a frame that is not a live table the run is one slice store; into a validated L1
        (ptwr emulation) whose slots are empty a run that takes `get_page_from_l1e`'s common path is referenced
        in bulk (`_l1_run_refs`); anything else is `n` single writes. ValueError, changing nothing, for a
        frame not in the model, a run not within slots 0..511, a target run not within the 40-bit frame field,
        flags no present entry can have, or another step.
        """
        self._check_mfn(mfn)
        self._check_slot(slot)
        if type(n) is not int or n < 1:
            raise ValueError(f"write_run: the count must be an int >= 1, not {n!r}")
        if slot + n > ENTRIES_PER_TABLE:
            raise ValueError(f"write_run: {n} entries from slot {slot} run past slot {ENTRIES_PER_TABLE - 1}")
        if step not in (1, -1) or type(step) is not int:
            raise ValueError(f"write_run: step must be 1 or -1, not {step!r}")
        problem = _mfn_problem(target) or _mfn_problem(target + (n - 1) * step) or _flags_problem(flags)
        if problem:
            raise ValueError(f"write_run: {problem}")
        edge_attrs(flags)
        if self._write_run_in_bulk(mfn, slot, target, n, flags, step):
            return []
        noted = []
        for k in range(n):
            result = self.write(mfn, slot + k, Entry(target + k * step, flags))
            if not result.ok or result.log:
                noted.append(result)
        return noted

    def _write_run_in_bulk(self, mfn: int, slot: int, target: int, n: int, flags: int, step: int) -> bool:
        """`write_run`'s bulk paths; False (nothing changed) where the run must go store by store."""
        mem = self._mem
        page = self._node[mfn]
        level, raw = page.level, target << PAGE_SHIFT | flags
        if (
            page.owner != self.domain
            or (level and level != 1)
            or (page.type_count and page.type == PGT_seg_desc_page)
        ):
            return False  # each store faults: `write` gives each its Result
        raws = mem.table(mfn)
        run = progression(raw, step << PAGE_SHIFT, n)
        if level == 1:
            if raws[slot : slot + n].count(0) != n:
                return False  # replacing entries drops their references: one by one

            def refs() -> None:
                if not self._l1_run_refs(raw, n, step << PAGE_SHIFT):
                    raise _NotInBulk
                raws[slot : slot + n] = run
                mem.version += 1

            try:
                result = self._hypercall(f"write_run {mfn:#x}[{slot}..{slot + n - 1}]", refs)
            except _NotInBulk:
                return False
            return result.ok  # the bulk path raises no XenError: an entry it cannot take sends it back
        low = min(target, target + (n - 1) * step)
        i = low - mem.lo
        if i < 0 or i + n > mem.window or mem.code.find(ABSENT, i, i + n) != -1:
            for t in range(target, target + n * step, step):  # plain stores: any bytes; a "no page" node
                if mem.index(t) is None:
                    self._phantom(t)
        raws[slot : slot + n] = run
        mem.version += 1
        return True

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
