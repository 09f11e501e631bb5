"""Placement as a parameter (`xenpin.symbolic.placement`, `form.py` item 3b): the properties `P@any`.

The closed form with the buffers at a given place is checked against the boot walk with the buffers put there
(`BootConfig.pgt_buf_start`), at places the search allows and the rule never picks (below 640 KiB, above the ISA
hole, right after Xen's tables, call 1 below 4 GiB); the boot refuses a place the search cannot return; the
rule's own places are ones the search allows (checked at sampled machines here, proved in the slow test); an
`@any` counterexample is minimised with its placement and replayed there; `prove` takes `P@any` and
`--placement`.
"""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
import z3
from symbolic_cases import BUFFERED_XEN, MIB, SHAPES, VARIANTS, domu, skip_unless_slow, slow
from test_closed_form import mismatches

from xenpin.cli import main
from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig
from xenpin.report.jsondoc import load_schema
from xenpin.report.prove import prove_json
from xenpin.symbolic import closed_form as cf
from xenpin.symbolic import placement
from xenpin.symbolic.form import INT, anywhere, calls, layout, search_allows, shape_of
from xenpin.symbolic.obligations import build
from xenpin.symbolic.prove import prove_property
from xenpin.symbolic.solver import check


def test_labels() -> None:
    assert placement.split("spare_writable@any") == ("spare_writable", "any")
    assert placement.split("spare_writable") == ("spare_writable", "rule")
    assert placement.selected(["live_reserved", "buffer_fits@any"], "both") == [
        "live_reserved",
        "live_reserved@any",
        "buffer_fits@any",
    ]
    assert placement.selected(["live_reserved"], "any") == ["live_reserved@any"]
    assert not placement.known("spare_writable@rule")
    v = VARIANTS["2.6.39-rc6"]
    assert placement.expected(v, "spare_writable@any") == "counterexample"  # the rule's, unless stated
    assert placement.expected(v, "no_rw_alias@any") == "proved"


def _allowed(name: str, config: BootConfig, starts: tuple[int, int]) -> bool:
    """The closed form says the search may return `starts` on this machine (item 3b)."""
    v = VARIANTS[name]
    placed = BootConfig(**{**config.__dict__, "pgt_buf_start": starts})
    return cf.in_domain(v, placed)


# (variant, machine, pgt_buf_start of each call): places the rule never picks. 2.6.39 (XEN EXTRA at 4 GiB: two
# calls at 64 MiB) with call 0 below 640 KiB and call 1 above the ISA hole, then call 0 there and call 1 right
# after Xen's tables (0x2c78); 2.6.39-rc6 with call 0 in the middle of free memory; 3.1 below 640 KiB; 2.6.37
# at the lowest page its search starts at, and between Xen's tables and max_pfn_mapped; 3.0 past 4 GiB with call
# 1's buffer below 4 GiB, under call 0's.
PLACED = [
    ("2.6.39", domu(0x4000), (0x1, 0x100)),
    ("2.6.39", domu(0x4000), (0x100, 0x2C78)),
    ("2.6.39-rc6", domu(0x4000), (0x3000, 0x200)),
    ("3.1", domu(0x4000), (0x10, 0)),
    ("2.6.37", domu(0x4000), (0x8, 0)),
    ("2.6.37", domu(0x4000), (0x3000, 0)),
    ("3.0", domu(0x100400), (0xFF000, 0xF0000)),
]


@pytest.mark.parametrize(
    ("name", "config", "starts"), PLACED, ids=lambda x: x if isinstance(x, str) else None
)
def test_closed_form_equals_the_boot_walk_at_a_given_placement(name: str, config, starts) -> None:
    v = VARIANTS[name]
    assert _allowed(name, config, starts), (name, starts)
    placed = BootConfig(**{**config.__dict__, "pgt_buf_start": starts})
    r = boot(v, placed)
    for b in r.buffers:
        if b.call >= 0:
            assert b.pgt_buf_start == starts[b.call]
    assert mismatches(v, placed, r) == []


def test_right_after_xens_tables_the_ioremap_clause_maps_the_last_l1_rw() -> None:
    """2.6.39 with the buffer at `pt_end`: before the first allocation `pgt_buf_end - 1` is Xen's last L1."""
    config = domu(0x4000)
    pt_end = cf.machine_layout(VARIANTS["2.6.39"], config).pt_end
    r = boot(VARIANTS["2.6.39"], BootConfig(**{**config.__dict__, "pgt_buf_start": (pt_end, 0x100)}))
    assert r.properties["no_rw_alias"] is False
    assert r.failure is not None and r.failure.pfn == pt_end - 1
    assert any(f"pfn {pt_end - 1:x}" in line for line in r.failure.xen_log)


def test_the_boot_refuses_a_place_the_search_cannot_return() -> None:
    config = domu(0x4000)
    for bad in (0x1000, 0x9B, 0):  # the kernel image, the trampoline, page 0
        r = boot(VARIANTS["2.6.39"], BootConfig(**{**config.__dict__, "pgt_buf_start": (bad,)}))
        assert r.outcome == "panic" and "cannot return it" in r.failure.message, bad
        assert not _allowed("2.6.39", config, (bad, 0x100))


@pytest.mark.parametrize("name", BUFFERED_XEN)
def test_the_rules_places_are_places_the_search_allows(name: str) -> None:
    """At sampled machines (the proof for every machine is the slow test below)."""
    v = VARIANTS[name]
    shape = shape_of(v)
    for nr in (0x4000, 0x40201, 0xFFFFF, 0x100401, 0x180000):
        config = domu(nr)
        if not cf.in_domain(v, config):
            continue
        p = cf.params_of(v, config)
        k0, k1 = calls(INT, shape, p)
        lay = layout(INT, shape, p)
        assert search_allows(INT, anywhere(shape), p, lay, 0, k0.pgt_buf_start, k0.tables), (name, nr)
        if k1.exists:
            assert search_allows(INT, anywhere(shape), p, lay, 1, k1.pgt_buf_start, k1.tables), (name, nr)
            assert k1.pgt_buf_top <= k0.pgt_buf_start or k1.pgt_buf_start >= k0.pgt_buf_end
        starts = (k0.pgt_buf_start, k1.pgt_buf_start if k1.exists else 0)
        assert _allowed(name, config, starts)


@slow
@skip_unless_slow
@pytest.mark.parametrize("shape", [s for s in SHAPES if anywhere(s) != s], ids=lambda s: s.key)
def test_the_rule_is_one_placement_of_the_search_for_every_machine(shape) -> None:
    for call in (0, 1):
        for formula in placement.rule_is_searched(shape, call):
            assert check(formula, timeout_s=300).status == "unsat", (shape.key, call)


def test_an_any_placement_counterexample_is_replayed_where_it_puts_the_buffer() -> None:
    """2.6.39's hook holds where the rule puts the buffer, but not right after Xen's boot tables."""
    v = prove_property(VARIANTS["2.6.39"], "no_rw_alias@any")
    assert (v.verdict, v.label, v.placement) == ("counterexample", "no_rw_alias@any", "any"), v.notes
    w = v.witness
    start = w["pgt_buf_start0"]
    assert v.replay.buffer(0).pgt_buf_start == start
    assert v.replay.config.pgt_buf_start == (start, w["pgt_buf_start1"])
    assert w.pfn == start - 1 and w.mem_bytes == 64 * MIB  # the page below the buffer, the least guest
    assert "buffer at pfn" in w.describe() and w.machine_json()["pgt_buf_start0"] == hex(start << 12)
    doc = prove_json([v], v.seconds)  # the witness's placement in the JSON, as the schema says
    jsonschema.Draft202012Validator(load_schema("prove")).validate(doc)
    assert doc["obligations"][0]["witness"]["machine"]["pgt_buf_start0"] == hex(start << 12)


def test_prove_cli_takes_any_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["prove", "models/kernels/3.0.toml", "--property", "spare_freed", "--placement", "both", "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert [o["property"] for o in doc["obligations"]] == ["spare_freed", "spare_freed@any"]
    assert [o["verdict"] for o in doc["obligations"]] == ["proved", "proved"]
    assert code == 0
    assert main(["prove", "models/kernels/3.0.toml", "--property", "spare_freed@rule"]) == 2
    assert "each also as P@any" in capsys.readouterr().err


def test_boot_cli_puts_the_buffer_where_it_is_told(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["boot", "models/kernels/3.1.toml", "--mem", "64M", "--json"]
    assert main([*argv, "--pgt-buf-start", "0x10000"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["boots"][0]["buffers"][0]["pgt_buf_start"] == "0x10"
    for bad in ("0x10001", "0x10000,0x20000,0x30000", "x", "0x1000,"):
        assert main([*argv, "--pgt-buf-start", bad]) == 2, bad
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("xenpin: --pgt-buf-start: "), bad


@slow
@skip_unless_slow
@pytest.mark.parametrize("name", ["2.6.39", "2.6.39-inline", "3.0", "2.6.39-rc6"])
def test_no_rw_alias_fails_only_right_after_xens_tables(name: str) -> None:
    """`no_rw_alias@any` of the seed's releases: every counterexample has call 0's buffer at `pt_end`."""
    for call in (0, 1):
        ob = build(VARIANTS[name], "no_rw_alias@any", call)
        elsewhere = ob.terms.call0.pgt_buf_start != ob.terms.layout.pt_end
        assert check(z3.And(ob.formula(), elsewhere), timeout_s=300).status == "unsat", (name, call)


def test_rc6s_tail_stays_ro_only_where_the_call_maps_it() -> None:
    """2.6.39-rc6's `spare_writable@any` fails, but not for a buffer in chunks Xen's tables map already (their
    RW PTEs are kept), nor for call 1's buffer below 4 GiB clear of call 0's."""
    v = VARIANTS["2.6.39-rc6"]
    ob = build(v, "spare_writable@any", 0)
    t = ob.terms
    mapped_by_xen = z3.ULE(t.call0.pgt_buf_top, t.layout.existing_chunks * 512)
    assert check(z3.And(ob.formula(), mapped_by_xen)).status == "unsat"
    ob1 = build(v, "spare_writable@any", 1)
    k0, k1 = ob1.terms.call0, ob1.terms.call1
    clear = z3.Or(z3.ULE(k1.pgt_buf_top, k0.pgt_buf_start), z3.UGE(k1.pgt_buf_start, k0.pgt_buf_top))
    below_4g = z3.ULT(k1.pgt_buf_top, 1 << 20)
    assert check(z3.And(ob1.formula(), mapped_by_xen, clear, below_4g)).status == "unsat"
    assert check(z3.And(ob.formula(), z3.Not(mapped_by_xen))).status == "sat"


@pytest.mark.parametrize("name", ["2.6.39", "3.1", "2.6.37", "2.6.39-rc6"])
def test_closed_form_equals_the_boot_walk_at_random_placements(name: str) -> None:
    """Two places drawn (seeded) among those the search allows at 64 MiB: the boot and the closed form agree."""
    rng = random.Random(f"placement-{name}")
    config, found = domu(0x4000), 0
    for _ in range(400):
        starts = (rng.randrange(1, 0x4000), rng.randrange(1, 0x4000))
        if not _allowed(name, config, starts):
            continue
        placed = BootConfig(**{**config.__dict__, "pgt_buf_start": starts})
        r = boot(VARIANTS[name], placed)
        assert r.buffer(0).pgt_buf_start == starts[0]
        assert mismatches(VARIANTS[name], placed, r) == [], starts
        found += 1
        if found == 2:
            return
    raise AssertionError("no allowed placement drawn")
