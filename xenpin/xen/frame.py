"""Per-frame state of Xen's `struct page_info`, with the 4.1 x86-64 bit layout.

`count_info` holds the general reference count (and `PGC_allocated`, one ref while the domain owns the frame);
`type_info` holds the type (bits 60-63), `PGT_pinned` (59), `PGT_validated` (58), `PGT_partial` (56) and the type
count (bits 0-54), exactly as `xen/include/asm-x86/mm.h` (4.1) lays them out, so log lines print the same values
Xen prints (`saw 7400000000000001` = writable, validated, count 1).

Modern Xen moved the bits (`xen/arch/x86/include/asm/mm.h` at c447b7308b, master of August 2026): the type
is 3 bits wide (61-63), `PGT_locked` moved to 60, and the count is 55 bits wide as before; so the same state
prints as `e400000000000001` there. The model keeps 4.1's layout; `modern_type_info` / `modern_count_info`
convert a value for modern Xen's log lines.

The state itself lives in `storage.PageInfo` (two 64-bit arrays, 16 bytes a frame, like Xen's `frame_table`);
a `Frame` is a view of one frame's slot there and the node's attribute mapping in the mapping graph.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xenpin.xen.storage import PageInfo

PGT_TYPE_SHIFT = 60
PGT_none = 0 << PGT_TYPE_SHIFT
PGT_l1_page_table = 1 << PGT_TYPE_SHIFT
PGT_l2_page_table = 2 << PGT_TYPE_SHIFT
PGT_l3_page_table = 3 << PGT_TYPE_SHIFT
PGT_l4_page_table = 4 << PGT_TYPE_SHIFT
PGT_seg_desc_page = 5 << PGT_TYPE_SHIFT
PGT_writable_page = 7 << PGT_TYPE_SHIFT
PGT_type_mask = 15 << PGT_TYPE_SHIFT
PGT_pinned = 1 << 59
PGT_validated = 1 << 58
PGT_pae_xen_l2 = 1 << 57
PGT_partial = 1 << 56
PGT_locked = 1 << 55
PGT_count_mask = (1 << 55) - 1  # PGT_count_width = PG_shift(9)

PGC_allocated = 1 << 63
PGC_xen_heap = 1 << 62
PGC_count_mask = (1 << 55) - 1  # PGC_count_width = PG_shift(9)

# Counts as Xen encodes them are 64-bit values (36-byte ints in CPython); a frame's common values are shared
# objects so a million frames do not each carry their own copy.
FRESH_COUNT_INFO = PGC_allocated | 1  # owned by its domain, no other reference
WRITABLE_ONCE = PGT_writable_page | PGT_validated | 1  # one RW mapping: the state of most data frames

# `PGT_lN_page_table` by level; index 0 unused.
LEVEL_TYPE = (None, PGT_l1_page_table, PGT_l2_page_table, PGT_l3_page_table, PGT_l4_page_table)
TABLE_TYPES = frozenset(LEVEL_TYPE[1:])

TYPE_NAMES = {
    PGT_none: "none",
    PGT_l1_page_table: "l1",
    PGT_l2_page_table: "l2",
    PGT_l3_page_table: "l3",
    PGT_l4_page_table: "l4",
    PGT_seg_desc_page: "seg_desc",
    PGT_writable_page: "writable",
}


# Modern Xen's layout (`asm/mm.h`: `PG_mask(x, idx)` = x << (64 - idx)).
MODERN_PGT_TYPE_SHIFT = 61  # PGT_type_mask = PG_mask(7, 3): bits 61-63
MODERN_PGT_locked = 1 << 60  # PG_shift(4)
MODERN_PGT_count_mask = (1 << 55) - 1  # PGT_count_width = PG_shift(9)
MODERN_PGC_count_mask = (1 << 57) - 1  # PGC_count_width = PG_shift(7) (PG_shift(8) with shadow paging)
# 4.1 type value -> modern type value: the same numbers, except PGT_shared_page (8 in 4.1, 6 in modern).
_MODERN_TYPE = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 7: 7, 8: 6}
# Bits at the same place in both layouts (PG_shift(5), (6), (7), (8)).
_SAME_PGT_BITS = PGT_pinned | PGT_validated | PGT_pae_xen_l2 | PGT_partial


def modern_type_info(type_info: int) -> int:
    """`type_info` (4.1 layout) as modern Xen holds the same state: `7400000000000001` -> `e400000000000001`.

    Pure; ValueError for a 4.1 type with no modern counterpart (6, 9-15 are unused in 4.1 too).
    """
    t = (type_info & PGT_type_mask) >> PGT_TYPE_SHIFT
    if t not in _MODERN_TYPE:
        raise ValueError(f"type_info {type_info:#018x}: 4.1 type {t} has no modern counterpart")
    out = _MODERN_TYPE[t] << MODERN_PGT_TYPE_SHIFT
    out |= type_info & (_SAME_PGT_BITS | PGT_count_mask)
    if type_info & PGT_locked:
        out |= MODERN_PGT_locked
    return out


def modern_count_info(count_info: int) -> int:
    """`count_info` (4.1 layout) in modern Xen's: `PGC_allocated` (63), `PGC_xen_heap` (62) and the count keep
    their places, so every value the model makes is unchanged. ValueError for 4.1's other bits
    (`PGC_page_table`, the cache attributes, `PGC_broken`, the state), which the model never sets."""
    other = count_info & ~(PGC_allocated | PGC_xen_heap | PGC_count_mask)
    if other:
        raise ValueError(f"count_info {count_info:#018x}: bits {other:#x} are not modelled")
    return count_info


def log_type_info(type_info: int, layout: str) -> int:
    """`type_info` as Xen of `layout` ("xen-4.1" or "modern", `RuleSet.type_info_layout`) prints it."""
    return modern_type_info(type_info) if layout == "modern" else type_info


def log_count_info(count_info: int, layout: str) -> int:
    """`count_info` as Xen of `layout` prints it (the same value in both layouts for what the model sets)."""
    return modern_count_info(count_info) if layout == "modern" else count_info


def table_level(type_: int) -> int:
    """1..4 for `PGT_lN_page_table`, 0 for any other type."""
    return type_ >> PGT_TYPE_SHIFT if type_ in TABLE_TYPES else 0


def live_level(type_info: int) -> int:
    """The table level (1..4) a frame with this `type_info` is live as, or 0 if it is not a validated table."""
    if type_info & PGT_count_mask and type_info & PGT_validated:
        return table_level(type_info & PGT_type_mask)
    return 0


class Frame(Mapping):
    """`struct page_info` of one machine frame: a view of its slot in the hypervisor's `PageInfo` arrays.

    It is also the node's attribute mapping in the mapping graph (`graph.nodes[mfn]` is the frame), read-only as
    a mapping (`owner`, `pfn`, `count_info`, `type_info`; `copy()` gives a plain dict), so networkx algorithms
    and `nx.get_node_attributes` see the live state. A proxy is made on each lookup and holds no state of its
    own: two proxies of one frame are equal, like any two mappings with the same items. `count_info` and
    `type_info` are assignable attributes (the validator writes through them to the arrays).
    """

    __slots__ = ("_i", "_mem", "mfn")
    KEYS = ("owner", "pfn", "count_info", "type_info")

    def __init__(self, mem: PageInfo, index: int, mfn: int) -> None:
        self._mem = mem
        self._i = index
        self.mfn = mfn

    @property
    def owner(self) -> int | None:
        return self._mem.owner_at(self._i)

    @property
    def pfn(self) -> int:
        """`get_gpfn_from_mfn`: the identity unless the guest's p2m says otherwise."""
        return self._mem.pfn_at(self._i)

    @property
    def count_info(self) -> int:
        return self._mem.count_info[self._i]

    @count_info.setter
    def count_info(self, value: int) -> None:
        self._mem.count_info[self._i] = value

    @property
    def type_info(self) -> int:
        return self._mem.type_info[self._i]

    @type_info.setter
    def type_info(self, value: int) -> None:
        self._mem.type_info[self._i] = value

    # The read-only mapping of the node's attributes.
    def __getitem__(self, key: str) -> int | None:
        if key in Frame.KEYS:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(Frame.KEYS)

    def __len__(self) -> int:
        return len(Frame.KEYS)

    def copy(self) -> dict[str, int | None]:
        """The attributes as a plain dict (what `graph.copy()`, `reverse()` and `copy.deepcopy` make)."""
        return {key: getattr(self, key) for key in Frame.KEYS}

    __copy__ = copy

    def __deepcopy__(self, memo: dict) -> dict[str, int | None]:
        return self.copy()

    def __reduce__(self) -> tuple:
        return (dict, (self.copy(),))

    @property
    def type(self) -> int:
        return self.type_info & PGT_type_mask

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, hex(self.type))

    @property
    def type_count(self) -> int:
        return self.type_info & PGT_count_mask

    @property
    def validated(self) -> bool:
        return bool(self.type_info & PGT_validated)

    @property
    def pinned(self) -> bool:
        return bool(self.type_info & PGT_pinned)

    @property
    def count(self) -> int:
        return self.count_info & PGC_count_mask

    @property
    def level(self) -> int:
        """The table level this frame is live as (1..4), or 0 if it is not a validated table."""
        return live_level(self.type_info)

    def __repr__(self) -> str:
        flags = "".join(f for f, on in ((" validated", self.validated), (" pinned", self.pinned)) if on)
        return (
            f"<Frame mfn={self.mfn:#x} pfn={self.pfn:#x} d{self.owner} {self.type_name} type_count={self.type_count}"
            f" count={self.count}{flags}>"
        )
