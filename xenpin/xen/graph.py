"""The mapping graph: a `networkx.MultiDiGraph` that is a view of the validator's compact state.

`Hypervisor.graph` is a `PageTableGraph` whose networkx mappings are read-only views over `storage.PageInfo`:
a node per frame (and per "no page" mfn that some entry names) with the `Frame` as its attribute mapping, and
an edge `table -> target` keyed by slot with `{"flags": ...}` per present entry, read from the table's raw
PTEs. The predecessor side (`_pred`: in_edges, predecessors, ancestors, shortest paths) comes from a reverse
index derived from the tables when it is first needed after a change. Every networkx algorithm sees the same
nodes, edges, keys, data and iteration order as it would on a plain `MultiDiGraph` holding the same state
(`tests/xen/test_graph_storage.py` checks it), while a million entries cost 8 bytes each.

The graph follows the state: an accepted hypercall shows at once, a rejected one never shows. It is read-only:
networkx's mutators (`add_edge`, `remove_node`, ...) raise `ReadOnlyGraphError`, since the state only changes
through the hypervisor's operations, and the attribute mappings refuse item assignment. `copy()`, `subgraph()`,
`reverse()` and the like give ordinary mutable graphs (or networkx's own read-only subgraph views).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import compress
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import networkx as nx

from xenpin.xen.flags import ALL_FLAGS, PAGE_SHIFT
from xenpin.xen.frame import Frame
from xenpin.xen.storage import MFN_MASK, PageInfo, present_mask

if TYPE_CHECKING:
    from collections.abc import Callable

_EMPTY: Mapping = MappingProxyType({})


class EdgeData(Mapping):
    """An edge's attribute mapping, `{"flags": flags}`, read-only; copies (`copy`, `copy.copy`, `deepcopy`,
    pickling) are plain dicts, as networkx's `copy()` and `reverse()` make them."""

    __slots__ = ("_flags",)

    def __init__(self, flags: int) -> None:
        self._flags = flags

    def __getitem__(self, key: str) -> int:
        if key == "flags":
            return self._flags
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("flags",))

    def __len__(self) -> int:
        return 1

    def copy(self) -> dict[str, int]:
        return {"flags": self._flags}

    __copy__ = copy

    def __deepcopy__(self, memo: dict) -> dict[str, int]:
        return self.copy()

    def __reduce__(self) -> tuple:
        return (dict, ((("flags", self._flags),),))

    def __repr__(self) -> str:
        return repr(self.copy())


# One shared mapping per flag value: a million edges with the same flags share one object.
_ATTRS: dict[int, EdgeData] = {}


def edge_data(flags: int) -> EdgeData:
    """The (shared, read-only) attribute mapping `{"flags": flags}` of an edge."""
    attrs = _ATTRS.get(flags)
    if attrs is None:
        attrs = _ATTRS[flags] = EdgeData(flags)
    return attrs


class ReadOnlyGraphError(nx.NetworkXError):
    """A networkx mutator was called on the hypervisor's graph, which only the hypervisor changes."""


def _node_key(mem: PageInfo, n: object) -> int | None:
    """The index of node `n`, or None; `n` may be anything hashable, as for a dict-backed graph."""
    if type(n) is not int:
        if isinstance(n, (int, float)) and n == int(n):  # True, 1.0 are the node 1 in a plain graph too
            n = int(n)
        else:
            return None
    return mem.index(n)


class _ByNode(Mapping):
    """A mapping keyed by the graph's nodes (every frame the storage knows), in the storage's node order."""

    __slots__ = ("_mem",)

    def __init__(self, mem: PageInfo) -> None:
        self._mem = mem

    def __contains__(self, n: object) -> bool:
        try:
            return _node_key(self._mem, n) is not None
        except TypeError:
            return False

    def __iter__(self) -> Iterator[int]:
        return self._mem.node_mfns()

    def __len__(self) -> int:
        return self._mem.nodes


class NodeMap(_ByNode):
    """`graph._node`: mfn -> `Frame`, for every node."""

    __slots__ = ()

    def __getitem__(self, n: object) -> Frame:
        i = _node_key(self._mem, n)
        if i is None:
            raise KeyError(n)
        return Frame(self._mem, i, self._mem.mfn_at(i))


def successors_of(mem: PageInfo, mfn: int) -> Mapping:
    """target -> {slot: attrs} of the present entries of `mfn`, targets in order of their first slot."""
    raws = mem.tables.get(mfn)
    if raws is None:
        return _EMPTY
    row: dict[int, dict[int, Mapping]] = {}
    for slot, raw in compress(enumerate(raws), present_mask(raws)):
        target = (raw >> PAGE_SHIFT) & MFN_MASK
        kd = row.get(target)
        if kd is None:
            kd = row[target] = {}
        kd[slot] = edge_data(raw & ALL_FLAGS)
    return MappingProxyType({t: MappingProxyType(kd) for t, kd in row.items()})


def predecessors_of(mem: PageInfo, mfn: int) -> Mapping:
    """table -> {slot: attrs} of the entries naming `mfn`, tables in ascending order."""
    refs = mem.reverse().mappers(mfn)
    if not refs:
        return _EMPTY
    row: dict[int, dict[int, Mapping]] = {}
    tables = mem.tables
    for table, slot in refs:
        kd = row.get(table)
        if kd is None:
            kd = row[table] = {}
        kd[slot] = edge_data(tables[table][slot] & ALL_FLAGS)
    return MappingProxyType({t: MappingProxyType(kd) for t, kd in row.items()})


class _Adjacency(_ByNode):
    __slots__ = ("_row",)

    def __init__(self, mem: PageInfo, row: Callable[[PageInfo, int], Mapping]) -> None:
        super().__init__(mem)
        self._row = row

    def __getitem__(self, n: object) -> Mapping:
        i = _node_key(self._mem, n)
        if i is None:
            raise KeyError(n)
        return self._row(self._mem, self._mem.mfn_at(i))


def _read_only(name: str) -> Callable[..., Any]:
    mutator = getattr(nx.MultiDiGraph, name)

    def refuse(self: PageTableGraph, *args: Any, **kwargs: Any) -> Any:
        if self._mem is None:
            return mutator(self, *args, **kwargs)
        raise ReadOnlyGraphError(
            f"{name}: the hypervisor's graph is a read-only view of its state; change the state through the"
            " Hypervisor's operations (write, mmu_update, pin, ...), or work on graph.copy()"
        )

    refuse.__name__ = name
    refuse.__doc__ = mutator.__doc__
    return refuse


class PageTableGraph(nx.MultiDiGraph):
    """A `MultiDiGraph` over a `PageInfo` (read-only), or, made without one (as networkx does for `copy()`,
    `reverse()`, subgraph views), an ordinary empty `MultiDiGraph`."""

    def __init__(
        self, incoming_graph_data: Any = None, *, memory: PageInfo | None = None, **attr: Any
    ) -> None:
        self._mem = None
        super().__init__(incoming_graph_data, **attr)
        if memory is not None:
            self._mem = memory
            self._node = NodeMap(memory)
            self._adj = _Adjacency(memory, successors_of)  # sets _succ too
            self._pred = _Adjacency(memory, predecessors_of)
            # networkx caches backend conversions here; the view changes under it, so cache nothing.
            self.__networkx_cache__ = None

    add_node = _read_only("add_node")
    add_nodes_from = _read_only("add_nodes_from")
    remove_node = _read_only("remove_node")
    remove_nodes_from = _read_only("remove_nodes_from")
    add_edge = _read_only("add_edge")
    add_edges_from = _read_only("add_edges_from")
    add_weighted_edges_from = _read_only("add_weighted_edges_from")
    remove_edge = _read_only("remove_edge")
    remove_edges_from = _read_only("remove_edges_from")
    update = _read_only("update")
    clear = _read_only("clear")
    clear_edges = _read_only("clear_edges")

    def number_of_edges(self, u: Any = None, v: Any = None) -> int:
        if self._mem is None or u is not None:
            return super().number_of_edges(u, v)
        mem = self._mem
        return sum(present_mask(raws).count(1) for raws in mem.tables.values())

    def size(self, weight: Any = None) -> int | float:
        if weight is None and self._mem is not None:
            return self.number_of_edges()
        return super().size(weight)


__all__ = [
    "EdgeData",
    "NodeMap",
    "PageTableGraph",
    "ReadOnlyGraphError",
    "edge_data",
    "predecessors_of",
    "successors_of",
]
