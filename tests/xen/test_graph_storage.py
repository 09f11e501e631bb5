"""The validator's graph on compact storage: differential tests against a plain `networkx.MultiDiGraph`.

Over random reachable states (random hypercall sequences, with foreign frames, entries naming mfns with no page,
a p2m that is not the identity), every networkx query the project or a user makes gives the same answer on
`Hypervisor.graph` (a read-only view of `storage.PageInfo`) as on a plain `MultiDiGraph` built from
`snapshot()`. The bulk hot paths (an L1's runs validated and devalidated in slices, `fill_table`'s C-level
pass, `write_run`) give the same results, log lines and states as the entry-by-entry paths.
"""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenpin.xen.flags import NX, PSE, RW, US, Entry, P
from xenpin.xen.frame import Frame
from xenpin.xen.graph import PageTableGraph, ReadOnlyGraphError
from xenpin.xen.hypervisor import Hypervisor

FRAMES = 8
FOREIGN = 100
NO_PAGES = (200, 300)  # mfns with no frame: entries may name them
FLAGS = (P, P | RW, P | US, P | RW | US, P | NX, P | RW | PSE)
SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# p2m of the guest: the identity, ascending from an offset, descending (as the domain builder lays them out).
P2MS = {
    "identity": None,
    "offset": lambda p: 0x40 + p,
    "descending": lambda p: 0x80 - p,
}


def guest_mfns(p2m: str) -> list[int]:
    f = P2MS[p2m]
    return list(range(FRAMES)) if f is None else [f(p) for p in range(FRAMES)]


@st.composite
def calls(draw: st.DrawFn, mfns: list[int]) -> tuple:
    frames = st.sampled_from([*mfns, FOREIGN])
    targets = st.sampled_from([*mfns, FOREIGN, *NO_PAGES])
    slots = st.sampled_from((0, 1, 2, 3, 256, 511))
    entries = st.one_of(st.none(), st.builds(Entry, targets, st.sampled_from(FLAGS)))
    kind = draw(
        st.sampled_from(("write", "mmu_update", "fill", "pin", "unpin", "baseptr", "gdt", "add", "tree"))
    )
    if kind in ("write", "mmu_update"):
        return (kind, draw(frames), draw(slots), draw(entries))
    if kind == "fill":
        n = draw(st.integers(0, 6))
        run = [(draw(slots), draw(targets), draw(st.sampled_from(FLAGS))) for _ in range(n)]
        return (kind, draw(st.sampled_from(mfns)), run)
    if kind == "pin":
        return (kind, draw(st.integers(1, 4)), draw(frames))
    if kind == "add":
        return (kind, draw(st.sampled_from(NO_PAGES)))
    if kind == "tree":  # L4 -> L3 -> L2 -> L1 by plain stores, then the L4 as base pointer: deep paths
        chain = draw(st.permutations(mfns))[:4]
        return (kind, tuple(chain), tuple(draw(slots) for _ in chain), draw(targets))
    return (kind, draw(frames))


def apply(hv: Hypervisor, call: tuple) -> None:
    kind, *args = call
    try:
        if kind == "write":
            hv.write(*args)
        elif kind == "mmu_update":
            hv.mmu_update(*args)
        elif kind == "fill":
            hv.fill_table(*args)
        elif kind == "pin":
            hv.pin(*args)
        elif kind == "unpin":
            hv.unpin(*args)
        elif kind == "baseptr":
            hv.new_baseptr(*args)
        elif kind == "gdt":
            hv.set_gdt(*args)
        elif kind == "add":
            hv.add_guest_frames(args)
        elif kind == "tree":
            chain, idx, leaf = args
            for table, slot, below in zip(chain, idx, [*chain[1:], leaf], strict=True):
                hv.write(table, slot, Entry(below, P | RW))
            hv.new_baseptr(chain[0])
    except ValueError:
        pass  # a call the state refuses as API misuse (a live table for fill_table, ...): nothing changed


@st.composite
def states(draw: st.DrawFn) -> Hypervisor:
    p2m = draw(st.sampled_from(sorted(P2MS)))
    hv = Hypervisor(draw(st.sampled_from(("modern", "xen-4.1"))), FRAMES, foreign=[FOREIGN], mfn_of=P2MS[p2m])
    for call in draw(st.lists(calls(guest_mfns(p2m)), max_size=25)):
        apply(hv, call)
    return hv


def plain_graph(hv: Hypervisor) -> nx.MultiDiGraph:
    """The same state as an ordinary `MultiDiGraph`, from `snapshot()` alone (node order: the view's)."""
    frames, edges, *_ = hv.snapshot()
    data = {m: {"owner": owner, "count_info": ci, "type_info": ti} for m, owner, ci, ti in frames}
    for m, d in data.items():
        d["pfn"] = hv.frame(m).pfn if hv.has_frame(m) else m
    g = nx.MultiDiGraph()
    assert sorted(hv.graph) == sorted(data)
    g.add_nodes_from((m, data[m]) for m in hv.graph)
    g.add_edges_from((u, v, s, {"flags": f}) for u, s, v, f in edges)  # by table, then slot
    return g


def answers(g: nx.MultiDiGraph) -> dict[str, object]:
    """What the project and users ask a graph, as plain values."""
    nodes = list(g)
    out: dict[str, object] = {
        "len": len(g),
        "nodes": list(g.nodes(data=True)),
        "edges": list(g.edges(keys=True, data=True)),
        "number_of_edges": g.number_of_edges(),
        "size": g.size(),
        "dict_of_dicts": nx.to_dict_of_dicts(g),
        "edgelist": list(nx.to_edgelist(g)),
        "degree": list(g.degree()),
        "in_degree": list(g.in_degree()),
        "out_degree": list(g.out_degree()),
        "node_attr": nx.get_node_attributes(g, "type_info"),
        "edge_attr": nx.get_edge_attributes(g, "flags"),
        "wcc": sorted(sorted(c) for c in nx.weakly_connected_components(g)),
        "scc": sorted(sorted(c) for c in nx.strongly_connected_components(g)),
        "dfs": list(nx.dfs_edges(g)),
        "dfs_pre": list(nx.dfs_preorder_nodes(g)),
        "reverse": list(g.reverse().edges(keys=True, data=True)),
        "copy": list(g.copy().edges(keys=True, data=True)),
        "contains": [n in g for n in (*nodes[:3], 10**6, "x", None, 1.0)],
    }
    for n in nodes:
        out[f"succ {n}"] = list(g.successors(n))
        out[f"pred {n}"] = list(g.predecessors(n))
        out[f"in {n}"] = list(g.in_edges(n, keys=True, data=True))
        out[f"out {n}"] = list(g.out_edges(n, keys=True, data=True))
        out[f"desc {n}"] = nx.descendants(g, n)
        out[f"anc {n}"] = nx.ancestors(g, n)
        out[f"bfs {n}"] = list(nx.bfs_edges(g, n))
        out[f"dfs {n}"] = list(nx.dfs_preorder_nodes(g, n))
        out[f"paths {n}"] = nx.single_source_shortest_path(g, n)
        out[f"adj {n}"] = {v: dict(kd) for v, kd in g[n].items()}
        out[f"node {n}"] = dict(g.nodes[n])
    for u in nodes[:6]:
        for v in nodes[:6]:
            out[f"has_path {u} {v}"] = nx.has_path(g, u, v)
            out[f"spath {u} {v}"] = nx.shortest_path(g, u, v) if nx.has_path(g, u, v) else None
            out[f"edge {u} {v}"] = g.get_edge_data(u, v)
            out[f"n_edges {u} {v}"] = g.number_of_edges(u, v)
            out[f"has_edge {u} {v}"] = g.has_edge(u, v)
    sub = g.subgraph(nodes[::2])
    out["subgraph"] = (
        list(sub.nodes(data=True)),
        list(sub.edges(keys=True, data=True)),
        sub.number_of_edges(),
    )
    out["subgraph desc"] = [nx.descendants(sub, n) for n in sub]
    return out


@SETTINGS
@given(states())
def test_every_networkx_query_answers_as_on_a_plain_multidigraph(hv):
    g = hv.graph
    assert isinstance(g, nx.MultiDiGraph) and isinstance(g, PageTableGraph)
    mine, plain = answers(g), answers(plain_graph(hv))
    assert mine.keys() == plain.keys()
    for key in mine:
        assert mine[key] == plain[key], key


@SETTINGS
@given(states(), st.lists(calls(guest_mfns("identity")), min_size=1, max_size=8))
def test_the_graph_follows_the_state_and_a_rejected_call_leaves_it_alone(hv, more):
    """The graph is a live view: after each call it equals the plain graph of the new state; a rejected
    hypercall leaves the snapshot and every answer as they were."""
    for call in more:
        before, view_before = hv.snapshot(), nx.to_dict_of_dicts(hv.graph)
        kind, *args = call
        result = None
        if kind in ("write", "mmu_update") and hv.has_frame(args[0]):
            result = getattr(hv, kind)(*args)
        else:
            apply(hv, call)
        if result is not None and not result.ok:
            assert hv.snapshot() == before
            assert nx.to_dict_of_dicts(hv.graph) == view_before
        plain = plain_graph(hv)
        assert list(hv.graph.edges(keys=True, data=True)) == list(plain.edges(keys=True, data=True))
        assert list(hv.graph.nodes(data=True)) == list(plain.nodes(data=True))


def test_the_graph_refuses_mutation_and_stays_as_it_was():
    hv = Hypervisor("modern", frames=4)
    hv.fill_table(1, [(0, 2, P | RW)])
    g, before = hv.graph, hv.snapshot()
    for mutate in (
        lambda: g.add_edge(0, 1),
        lambda: g.add_edge(0, 1, key=3, flags=P),
        lambda: g.add_node(9),
        lambda: g.add_nodes_from([9]),
        lambda: g.add_edges_from([(0, 1)]),
        lambda: g.remove_edge(1, 2),
        lambda: g.remove_node(2),
        lambda: g.remove_nodes_from([2]),
        lambda: g.remove_edges_from([(1, 2)]),
        lambda: g.clear(),
        lambda: g.clear_edges(),
        lambda: g.update(edges=[(0, 1)]),
        lambda: nx.relabel_nodes(g, {0: 10}, copy=False),
    ):
        with pytest.raises(ReadOnlyGraphError, match="read-only view"):
            mutate()
    with pytest.raises(TypeError):
        g.nodes[1]["count_info"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        g[1][2][0]["flags"] = RW  # type: ignore[index]
    assert hv.snapshot() == before
    # What networkx builds from it are ordinary graphs.
    h = g.copy()
    h.add_edge(0, 1)
    assert h.number_of_edges() == 2 and g.number_of_edges() == 1
    assert type(h.nodes[1]) is dict and h.nodes[1] == g.nodes[1]


def test_frame_is_a_view_of_the_arrays():
    hv = Hypervisor("modern", frames=4, mfn_of=lambda p: 0x10 - p)
    f = hv.frame(0x10)
    assert isinstance(f, Frame) and f.pfn == 0 and hv.frame(0x0D).pfn == 3
    assert hv.graph.nodes[0x10] == f == {"owner": 1, "pfn": 0, "count_info": f.count_info, "type_info": 0}
    assert hv.pin(1, 0x10).ok
    assert f.validated and f.pinned and hv.graph.nodes[0x10]["type_info"] == f.type_info
    assert sorted(hv.frames) == [0x0D, 0x0E, 0x0F, 0x10] and len(hv.frames) == 4 and 0x0E in hv.frames


# ------------------------------------------------------------------------------ bulk against one by one


def one_by_one(hv: Hypervisor) -> Hypervisor:
    """`hv` with every bulk path off: each L1 entry, `fill_table` entry and run write goes alone."""
    hv._l1_run_refs = lambda raw, n, step=0: False  # type: ignore[method-assign]
    hv._l1_run_puts = lambda raw, n, step=0: False  # type: ignore[method-assign]
    hv._fill_in_bulk = lambda raws, batch: False  # type: ignore[method-assign]
    return hv


BIG = 1100  # frames: room for L1 runs of up to 512 entries and their tables


@st.composite
def run_tables(draw: st.DrawFn) -> list[tuple[int, list[tuple[int, int, int]]]]:
    """A few tables filled with runs (consecutive frames, one flag value), some odd entries in between."""
    tables = []
    for table in draw(st.lists(st.sampled_from(range(BIG - 8, BIG)), min_size=1, max_size=3, unique=True)):
        entries, slot = [], 0
        runs = st.tuples(
            st.integers(0, 3),  # gap before the run
            st.sampled_from((1, -1)),  # frames upward, or downward (a descending p2m)
            st.sampled_from((512, 64, 7, 2, 1)),
            st.sampled_from((0, 0, 5, 300, BIG - 16, BIG - 4, 2000)),  # first frame (2000: no page)
            st.sampled_from((P | RW, P | RW, P, P, P | RW | US, P | 0x100, P | PSE)),
        )
        for gap, step, n, first, flags in draw(st.lists(runs, max_size=5)):
            slot += gap
            first += (n - 1) * (step < 0)
            entries += [(s, first + k * step, flags) for k, s in enumerate(range(slot, min(512, slot + n)))]
            slot += n
        tables.append((table, entries))
    return tables


def state_and_log(hv: Hypervisor, results: list) -> tuple:
    return hv.snapshot(), [(r.op, r.ok, r.errno, r.log, r.reason) for r in results]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(("modern", "xen-4.1")),
    run_tables(),
    st.lists(
        st.tuples(st.sampled_from(("pin", "pin", "unpin", "write", "premap")), st.integers(0, 7)), max_size=8
    ),
)
def test_bulk_l1_validation_and_fill_table_match_one_by_one(rules, tables, ops):
    runs = []
    for hv in (Hypervisor(rules, BIG), one_by_one(Hypervisor(rules, BIG))):
        results = []
        for table, entries in tables:
            try:
                hv.fill_table(table, entries)
            except ValueError as err:
                results.append(str(err))
        tabs = [t for t, _ in tables]
        for op, k in ops:
            table = tabs[k % len(tabs)]
            if op == "pin":
                results.append(hv.pin(1, table))
            elif op == "unpin":
                results.append(hv.unpin(table))
            elif op == "premap":  # a frame some run maps, made a table or mapped writable first
                results.append(
                    hv.pin(1, 300 + k) if k % 2 else hv.mmu_update(BIG - 1 - k, 0, Entry(5 + k, P | RW))
                )
            else:
                results.append(hv.mmu_update(table, k, Entry(BIG - 16 + k, P | RW)))
        runs.append(
            (hv.snapshot(), [r if isinstance(r, str) else (r.op, r.ok, r.errno, r.log) for r in results])
        )
    assert runs[0] == runs[1]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(("modern", "xen-4.1")),
    st.integers(0, 511),
    st.integers(1, 520),
    st.sampled_from((0, 3, 600, 990, (1 << 40) - 4)),
    st.sampled_from((P, P | RW, P | US | RW, P | PSE, P | 0x100)),
    st.sampled_from(("fresh", "live", "premapped", "upper")),
    st.sampled_from((1, -1)),
)
def test_write_run_is_n_single_writes(rules, slot, n, target, flags, how, step):
    """`write_run` against N `write` calls: the same state, the same rejected (or logged) results."""
    n = min(n, 512 - slot, (1 << 40) - target if step > 0 else target + 1)
    out = []
    for bulk in (True, False):
        hv = Hypervisor(rules, 1000)
        table = 999
        if how == "premapped":
            hv.fill_table(table, [(slot, 7, P)])
        if how in ("live", "premapped"):
            assert hv.pin(1, table).ok
        if how == "upper":
            assert hv.pin(2, table).ok
        if bulk:
            noted = hv.write_run(table, slot, target, n, flags, step)
        else:
            rs = [hv.write(table, slot + k, Entry(target + k * step, flags)) for k in range(n)]
            noted = [r for r in rs if not r.ok or r.log]
        out.append(state_and_log(hv, noted))
    assert out[0] == out[1]


def test_write_run_checks_its_arguments():
    hv = Hypervisor("modern", 8)
    before = hv.snapshot()
    for args, match in (
        ((99, 0, 1, 1, P), "no such frame"),
        ((1, 0, 1, 0, P), "count"),
        ((1, 510, 1, 3, P), "past slot 511"),
        ((1, 0, 1, 2, RW), "lack P"),
        ((1, 0, (1 << 40) - 1, 2, P), "40-bit"),
        ((1, 0, 1, 3, P, -1), "40-bit"),
        ((1, 0, 1, 3, P, 2), "step"),
    ):
        with pytest.raises(ValueError, match=match):
            hv.write_run(*args)
    assert hv.snapshot() == before


@pytest.mark.parametrize("rules", ["modern", "xen-4.1"])
def test_bulk_paths_on_the_direct_map_match_one_by_one(rules):
    """The shapes the bulk paths exist for, step by step against the one-by-one model: a direct-map L1 of 512
    fresh frames (RW), a second L1 over the same frames (already writable: +1), an RO run over frames with
    different counts, unpin and re-pin (devalidation in bulk), and a run that reaches a live table RW (refused
    at its first such entry, with Xen's log lines)."""
    steps = [
        lambda hv: hv.fill_table(1000, [(s, s, P | RW) for s in range(512)]),
        lambda hv: hv.fill_table(1001, [(s, s, P | RW) for s in range(512)]),
        lambda hv: hv.fill_table(1002, [(s, 256 + s, P) for s in range(512)]),
        lambda hv: hv.fill_table(1003, [(s, 990 + s, P | RW) for s in range(20)]),
        lambda hv: hv.fill_table(1004, [(s, 800 - s, P | RW) for s in range(100)]),  # downward
        lambda hv: hv.write_run(1005, 10, 800, 50, P, step=-1),
        lambda hv: hv.pin(1, 1004),
        lambda hv: hv.pin(1, 1005),
        lambda hv: hv.pin(1, 1000),
        lambda hv: hv.pin(1, 1001),
        lambda hv: hv.pin(1, 1002),
        lambda hv: hv.unpin(1001),
        lambda hv: hv.pin(1, 1001),
        lambda hv: hv.pin(1, 995),
        lambda hv: hv.pin(1, 1003),  # maps 995 (a live L1) RW: refused, all rolled back
        lambda hv: hv.unpin(1000),
        lambda hv: hv.unpin(1002),
        lambda hv: hv.write_run(1001, 0, 600, 1, P),
        lambda hv: hv.unpin(1001),
        lambda hv: hv.unpin(1004),
        lambda hv: hv.write_run(1005, 100, 700, 60, P | RW, step=-1),  # into a live L1, downward
        lambda hv: hv.unpin(1005),
    ]
    fast, slow = Hypervisor(rules, 1100), one_by_one(Hypervisor(rules, 1100))
    for i, step in enumerate(steps):
        a, b = step(fast), step(slow)
        assert a == b, i
        assert fast.snapshot() == slow.snapshot(), i
    assert not fast.frame(1003).validated and fast.frame(0).type_count == 0
