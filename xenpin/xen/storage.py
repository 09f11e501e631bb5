"""Compact storage of the validator's state: Xen's `page_info` array and the guest's page-table memory.

`PageInfo` holds, per frame, what `struct page_info` holds in Xen: `count_info` and `type_info` as two
`array('Q')` (16 bytes a frame), an owner code (a `bytearray`, one byte); the frame's pfn follows an affine
rule over the window (the domain builder's p2m is a straight line), so an m2p array (8 bytes a frame) is made
only if some frame leaves it. A table's entries are its 512 raw 64-bit PTEs
(`array('Q')`, 4 KiB, exactly the page's bytes as `l1e_get_intpte` reads them, 0 when not present), made when
the frame is first written. Nothing else is stored: the mapping graph (`graph.PageTableGraph`) is a view of
these arrays, and its reverse adjacency (who maps a frame) is derived on demand (`ReverseIndex`).

Frames are indexed by mfn: a window `[lo, lo + window)` holds the guest's frames at index `mfn - lo` (the
guest's mfns are one contiguous range in every layout the model builds); any other mfn (a foreign frame, a
frame added later, an mfn with no page that some entry names) gets the next index after the window through a
dict. A node exists where the owner code is not `ABSENT`; `NO_PAGE` marks an mfn with no RAM (owner None).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Set
from itertools import compress, repeat

from xenpin.xen.flags import ALL_FLAGS, ENTRIES_PER_TABLE, PAGE_SHIFT
from xenpin.xen.frame import FRESH_COUNT_INFO

ABSENT = 0  # no node: the mfn is not in the model
NO_PAGE = 1  # a node for an mfn with no page (owner None), named by some entry's bytes
# owner codes >= 2 name a domain (`PageInfo.owners[code]`)

MFN_MASK = (1 << 40) - 1  # an entry's 40-bit frame field, bits 12..51
EMPTY_TABLE = bytes(8 * ENTRIES_PER_TABLE)
SLOTS = range(ENTRIES_PER_TABLE)

# The byte of an 8-byte entry that holds flag bits 0..7 (P is bit 0), for C-level slicing of a table's bytes.
_LOW_BYTE = 0 if sys.byteorder == "little" else 7
_PRESENT = bytes(b & 1 for b in range(256))  # bytes.translate table: the P bit of a low byte
_IS_FRAME = bytes(int(code >= 2) for code in range(256))  # translate table: a code naming an owner


def present_mask(table: array) -> bytes:
    """One byte per slot, nonzero where the entry is present: a C-level pass over the table's bytes."""
    return memoryview(table).cast("B")[_LOW_BYTE::8].tobytes().translate(_PRESENT)


def present_slots(table: array) -> Iterator[int]:
    """The slots of the present entries of a table, in order."""
    return compress(SLOTS, present_mask(table))


def entry_mfn(raw: int) -> int:
    return (raw >> PAGE_SHIFT) & MFN_MASK


def entry_flags(raw: int) -> int:
    return raw & ALL_FLAGS


# A table read as one integer (`int.from_bytes` of its bytes, little-endian: entry k is bits 64k..64k+63) turns a
# question about 512 entries into a few big-integer operations in C: the run `first, first + step, ...` of n
# entries is `first * _ONES + step * _RAMP` truncated to 64n bits, with no Python int made per entry.
_LANE = 1 << 64
_ONES = (_LANE**ENTRIES_PER_TABLE - 1) // (_LANE - 1)  # sum of 2**(64k), k < 512
_RAMP = (  # sum of k * 2**(64k), k < 512
    _LANE
    - ENTRIES_PER_TABLE * _LANE**ENTRIES_PER_TABLE
    + (ENTRIES_PER_TABLE - 1) * _LANE ** (ENTRIES_PER_TABLE + 1)
) // (_LANE - 1) ** 2
_LITTLE = sys.byteorder == "little"


def _run_value(first: int, step: int, n: int) -> int:
    """The integer whose 64-bit lanes are `first, first + step, ...` (n of them, none above 2**64 - 1)."""
    if n == ENTRIES_PER_TABLE:
        ones, ramp = _ONES, _RAMP
    else:  # the top n lanes, by shifts (linear in the size; a mask of 64n bits costs as much to make)
        drop = ENTRIES_PER_TABLE - n
        ones = _ONES >> (64 * drop)
        ramp = (_RAMP >> (64 * drop)) - drop * ones
    if step == 1 << PAGE_SHIFT:
        return first * ones + (ramp << PAGE_SHIFT)
    if step == -1 << PAGE_SHIFT:
        return first * ones - (ramp << PAGE_SHIFT)
    return first * ones + step * ramp


def run_at(table: array, start: int, stop: int = ENTRIES_PER_TABLE) -> tuple[int, int]:
    """`(length, step)` of the run of present entries from `start`: consecutive frames upward (step 4 KiB) or
    downward (-4 KiB) with one flag value; `(1, 4 KiB)` for an entry that starts no run."""
    page = 1 << PAGE_SHIFT
    if start + 1 < stop:
        first, after = table[start], table[start + 1]
        if after == first - page:
            return run_length(table, start, stop, -page), -page
        if after == first + page:
            return run_length(table, start, stop, page), page
    return 1, page


def progression(first: int, step: int, n: int) -> array:
    """`array('Q', [first, first + step, ...])` of length n, built in C."""
    if step == 0:
        return array("Q", [first]) * n
    if first + (n - 1) * step < 0 or not _LITTLE or n > ENTRIES_PER_TABLE:
        return array("Q", range(first, first + n * step, step))  # (a lane below 0 raises OverflowError)
    out = array("Q")
    out.frombytes(_run_value(first, step, n).to_bytes(8 * n, "little"))
    return out


def run_length(table: array, start: int, stop: int, step: int = 1 << PAGE_SHIFT) -> int:
    """How many entries from `start` (before `stop`) continue `table[start]` by `step` each: the length of a run
    of consecutive frames with the same flags (step 4 KiB; -4 KiB for descending frames, as a guest's
    pfn-ordered stores give through a descending p2m) or of equal entries (step 0).

    The entries and the ideal run are compared as two integers: their XOR's lowest set bit is the first entry
    that breaks the run, found in C with no Python step per entry. A run of one costs one comparison.
    """
    first = table[start]
    if start + 1 == stop or table[start + 1] != first + step:
        return 1
    n = stop - start
    if step < 0:
        n = min(n, first // -step + 1)  # no ideal entry below 0 (no borrow between lanes)
    if not _LITTLE:
        ideal = progression(first, step, n)
        return next((k for k in range(n) if table[start + k] != ideal[k]), n)
    diff = int.from_bytes(memoryview(table)[start:stop], "little") ^ _run_value(first, step, n)
    if not diff:
        return n
    return ((diff & -diff).bit_length() - 1) // 64


class PageInfo:
    """Xen's `frame_table` for the model's frames (see the module docstring) and the guest's table pages."""

    def __init__(
        self, lo: int, window: int, owner: int | None = None, pfn_first: int | None = None, pfn_step: int = 1
    ) -> None:
        """An empty window of `window` mfns from `lo`, or with `owner` one of fresh frames of `owner`, made by
        C-level repetition with no temporary copy. The window's pfns are `pfn_first + pfn_step * index` (an
        affine p2m, the only kind the domain builder makes: no m2p array), by default the mfns."""
        self.lo = lo
        self.window = window
        self.owners: list[int | None] = [None, None]  # by code; 0 and 1 have none
        self._code_of: dict[int, int] = {}
        fresh = owner is not None
        self.count_info = array("Q", [FRESH_COUNT_INFO if fresh else 0]) * window
        self.type_info = array("Q", [0]) * window
        self.code = bytearray([self.owner_code(owner) if fresh else ABSENT]) * window
        self._pfn_first, self._pfn_step = (lo, 1) if pfn_first is None else (pfn_first, pfn_step)
        self.pfns: array | None = None  # the m2p, made only once some pfn leaves the affine rule
        self.extra: dict[int, int] = {}  # mfn -> index, for mfns outside the window
        self.extra_mfns = array("Q")  # the mfn of index window + k
        self.tables: dict[int, array] = {}  # mfn -> its 512 raw entries, once written
        self.nodes = window if fresh else 0
        self.no_page = 0
        self.version = 0  # bumped on every change to the graph's structure (entries, nodes)
        self._reverse: ReverseIndex | None = None

    # --------------------------------------------------------------------------------------- frames

    def owner_code(self, owner: int | None) -> int:
        if owner is None:
            return NO_PAGE
        code = self._code_of.get(owner)
        if code is None:
            if len(self.owners) == 256:
                raise ValueError("more than 254 owning domains")
            code = self._code_of[owner] = len(self.owners)
            self.owners.append(owner)
        return code

    def _own_pfns(self) -> array:
        if self.pfns is None:
            first, step = self._pfn_first, self._pfn_step
            self.pfns = array("Q", range(first, first + step * self.window, step))
            self.pfns.extend(self.extra_mfns)
        return self.pfns

    def index(self, mfn: int) -> int | None:
        """The index of the node `mfn` (a frame or a "no page" node), or None."""
        i = mfn - self.lo
        if 0 <= i < self.window:
            return i if self.code[i] else None
        return self.extra.get(mfn)

    def frame_index(self, mfn: int) -> int | None:
        """The index of the frame `mfn` (not a "no page" node), or None."""
        i = mfn - self.lo
        if 0 <= i < self.window:
            return i if self.code[i] >= 2 else None
        i = self.extra.get(mfn)
        return i if i is not None and self.code[i] >= 2 else None

    def mfn_at(self, i: int) -> int:
        return self.lo + i if i < self.window else self.extra_mfns[i - self.window]

    def owner_at(self, i: int) -> int | None:
        return self.owners[self.code[i]]

    def pfn_at(self, i: int) -> int:
        if self.pfns is not None:
            return self.pfns[i]
        return self._pfn_first + self._pfn_step * i if i < self.window else self.extra_mfns[i - self.window]

    def add(self, mfn: int, owner: int | None, pfn: int | None = None) -> int:
        """Add the node `mfn` (fresh frame of `owner`, or a "no page" node for owner None); its index."""
        code = self.owner_code(owner)
        i = mfn - self.lo
        if not 0 <= i < self.window:
            i = self.window + len(self.extra_mfns)
            self.extra[mfn] = i
            self.extra_mfns.append(mfn)
            self.count_info.append(0)
            self.type_info.append(0)
            self.code.append(0)
            if self.pfns is not None:
                self.pfns.append(mfn)
        if self.code[i]:
            raise AssertionError(f"node {mfn:#x} exists")
        self.code[i] = code
        self.count_info[i] = 0 if owner is None else FRESH_COUNT_INFO
        self.type_info[i] = 0
        pfn = mfn if pfn is None else pfn
        if self.pfn_at(i) != pfn:
            self._own_pfns()[i] = pfn
        self.nodes += 1
        self.no_page += owner is None
        self.version += 1
        return i

    def make_frame(self, i: int, owner: int) -> None:
        """A "no page" node becomes a fresh frame of `owner` (its pfn is its mfn); entries naming it stay."""
        self.code[i] = self.owner_code(owner)
        self.count_info[i] = FRESH_COUNT_INFO
        self.type_info[i] = 0
        self.no_page -= 1
        mfn = self.mfn_at(i)
        if self.pfn_at(i) != mfn:
            self._own_pfns()[i] = mfn

    def drop(self, mfn: int) -> None:
        """Remove the "no page" node `mfn` (no entry names it any more)."""
        i = self.index(mfn)
        if i is None or self.code[i] != NO_PAGE:
            raise AssertionError(f"{mfn:#x} is no 'no page' node")
        self.code[i] = ABSENT
        self.count_info[i] = self.type_info[i] = 0
        self.nodes -= 1
        self.no_page -= 1
        self.version += 1
        if i >= self.window:
            del self.extra[mfn]
            if i == len(self.code) - 1:  # the usual case: a rollback drops the newest node first
                for column in (self.count_info, self.type_info, self.code, self.extra_mfns, self.pfns):
                    if column is not None:
                        del column[-1]

    def node_mfns(self) -> Iterator[int]:
        """Every node (frames and "no page" nodes), window first, in index order."""
        yield from compress(range(self.lo, self.lo + self.window), self.code[: self.window])
        yield from self.extra

    def frame_mfns(self) -> Iterator[int]:
        """Every frame (not the "no page" nodes), in index order."""
        yield from compress(
            range(self.lo, self.lo + self.window), self.code[: self.window].translate(_IS_FRAME)
        )
        code = self.code
        yield from (m for m, i in self.extra.items() if code[i] >= 2)

    # -------------------------------------------------------------------------------------- entries

    def table(self, mfn: int) -> array:
        """The raw entries of frame `mfn`, made (all zero: not present) on first use."""
        t = self.tables.get(mfn)
        if t is None:
            t = self.tables[mfn] = array("Q", EMPTY_TABLE)
        return t

    def raw(self, mfn: int, slot: int) -> int:
        t = self.tables.get(mfn)
        return 0 if t is None else t[slot]

    def set_raw(self, mfn: int, slot: int, raw: int) -> None:
        self.table(mfn)[slot] = raw
        self.version += 1

    def reverse(self) -> ReverseIndex:
        """Who maps each frame, derived from the tables; rebuilt only after the graph changed."""
        if self._reverse is None or self._reverse.version != self.version:
            self._reverse = ReverseIndex(self)
        return self._reverse


class ReverseIndex:
    """The graph's predecessor lists, derived from the tables: `(table, slot)` of every present entry by target.

    Two sorted arrays (16 bytes an entry), built with one C-level sort; a lookup is two bisections. Xen keeps no
    such list either (it has counts); only networkx's `_pred` (in_edges, ancestors, shortest paths) needs it.
    """

    __slots__ = ("refs", "targets", "version")

    def __init__(self, mem: PageInfo) -> None:
        self.version = mem.version
        keys: list[int] = []
        for table, raws in mem.tables.items():
            base = table << 9
            keys.extend(
                ((raw >> PAGE_SHIFT) & MFN_MASK) << 49 | base | slot
                for slot, raw in compress(enumerate(raws), present_mask(raws))
            )
        keys.sort()
        self.targets = array("Q", (k >> 49 for k in keys))
        self.refs = array("Q", (k & ((1 << 49) - 1) for k in keys))

    def mappers(self, target: int) -> list[tuple[int, int]]:
        """`(table, slot)` of every present entry naming `target`, by table then slot."""
        lo = bisect_left(self.targets, target)
        hi = bisect_right(self.targets, target, lo)
        return [(r >> 9, r & 511) for r in self.refs[lo:hi]]


class FrameSet(Set):
    """The mfns of the model's frames, as a live set (not the "no page" nodes): `Hypervisor.frames`."""

    __slots__ = ("_mem",)

    def __init__(self, mem: PageInfo) -> None:
        self._mem = mem

    def __contains__(self, mfn: object) -> bool:
        return type(mfn) is int and self._mem.frame_index(mfn) is not None

    def __iter__(self) -> Iterator[int]:
        return self._mem.frame_mfns()

    def __len__(self) -> int:
        return self._mem.nodes - self._mem.no_page


__all__ = [
    "ABSENT",
    "NO_PAGE",
    "FrameSet",
    "PageInfo",
    "ReverseIndex",
    "entry_flags",
    "entry_mfn",
    "present_mask",
    "present_slots",
    "progression",
    "repeat",
    "run_at",
    "run_length",
]
