"""`xenpin explore`: the minimal counterexample, then others at other sizes, each replayed in its own call; the
buffer pictures; and the prove / explore / equiv command lines (--smt2 files, --jobs, exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import z3
from bootcache import KERNELS
from symbolic_cases import VARIANTS, boot_violates

from xenpin.cli import main
from xenpin.report import explore as pictures
from xenpin.symbolic import explore as explore_mod
from xenpin.symbolic.explore import counterexamples
from xenpin.symbolic.solver import check


@pytest.fixture
def small_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Further counterexamples among guests of at most 512 MiB (the default, 8 GiB, boots for seconds)."""
    monkeypatch.setattr(explore_mod, "EXTRA_LIMIT_BYTES", 512 << 20)


def test_explore_gives_the_minimal_counterexample_then_others_at_other_sizes(small_extras) -> None:
    found = counterexamples(VARIANTS["2.6.39-rc6"], "spare_writable", 3)
    assert len(found) == 3 and [v.verdict for v in found] == ["counterexample"] * 3
    first, *others = found
    assert first.witness.minimal and not any(v.witness.minimal for v in others)
    sizes = [v.witness.size for v in found]
    assert len(set(sizes)) == 3 and min(sizes) == sizes[0] and max(sizes) <= (512 << 20) >> 12
    for v in found:
        assert boot_violates(v.replay, "spare_writable", v.witness.call) is True


def test_explore_of_a_proved_property_is_its_verdict_alone() -> None:
    found = counterexamples(VARIANTS["2.6.39"], "spare_freed", 3)
    assert [v.verdict for v in found] == ["proved"] and found[0].witness is None


def test_explore_marks_a_further_counterexample_that_does_not_replay(small_extras, monkeypatch) -> None:
    real_boot = explore_mod.boot
    calls = []

    def boot_fixed_after_the_first(variant, config):
        calls.append(config)
        return real_boot(VARIANTS["2.6.39"], config)  # the hook restores the tail: nothing to see

    monkeypatch.setattr(explore_mod, "boot", boot_fixed_after_the_first)
    found = counterexamples(VARIANTS["2.6.39-rc6"], "spare_writable", 2)
    assert found[0].verdict == "counterexample" and found[1].verdict == "unknown"
    assert found[1].notes == ["does not replay: in the boot walk spare_writable holds in call 0"] and calls


# --- pictures -------------------------------------------------------------------------------------------------


def test_buffer_pictures_show_roles_rw_and_reservations() -> None:
    v = counterexamples(VARIANTS["2.6.39-rc6"], "spare_writable")[0]
    w, r = v.witness, v.replay
    buf = r.buffers[w.call]
    segs = pictures.segments(r, w.call, w.pfn)
    assert segs[0].first == buf.pgt_buf_start and segs[-1].last == buf.pgt_buf_top - 1
    assert sum(s.last - s.first + 1 for s in segs) == buf.pgt_buf_top - buf.pgt_buf_start
    assert [s.marked for s in segs].count(True) == 1
    marked = next(s for s in segs if s.marked)
    assert (marked.first, marked.last, marked.role, marked.pte, marked.reserved) == (
        w.pfn,
        w.pfn,
        "spare",
        "RO",
        False,
    )
    assert all((s.role == "live") == (s.last < buf.pgt_buf_end) for s in segs)
    text = pictures.render_text(r, w.call, w.pfn)
    assert text.splitlines()[0].startswith(f"buffer of call {w.call}: pgt_buf_start {buf.pgt_buf_start:#x}")
    assert f"{w.pfn:#x} (1 page): spare, RO, free  <== counterexample" in text
    dot = pictures.render_dot(r, w.call, w.pfn)
    assert dot.startswith("digraph buffer {") and dot.count(" -> ") == len(segs) - 1 and "penwidth=4" in dot
    svg = pictures.render_svg(r, w.call, w.pfn)
    assert svg.startswith("<svg ") and svg.count('class="page ') == 2 * len(segs) + 9  # bar, rows, legend
    assert svg.count('class="failing-outline"') == 1


# --- the command lines ----------------------------------------------------------------------------------------

MODEL = str(KERNELS / "2.6.39-rc6.toml")


def test_cli_explore_text_json_and_pictures(tmp_path: Path, capsys, small_extras) -> None:
    svg, dot = tmp_path / "b.svg", tmp_path / "b.dot"
    assert main(["explore", MODEL, "spare_writable", "--svg", str(svg), "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert any(
        line.split()[2:5] == ["spare_writable", "counterexample", "counterexample"]
        for line in out.splitlines()
    )
    assert "<== counterexample" in out
    assert svg.read_text().startswith("<svg ") and dot.read_text().startswith("digraph buffer {")
    assert main(["explore", MODEL, "spare_writable", "--all", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [o["verdict"] for o in doc["obligations"]] == ["counterexample", "counterexample"]
    assert [o["witness"]["minimal"] for o in doc["obligations"]] == [True, False]
    assert main(["explore", str(KERNELS / "2.6.39.toml"), "spare_freed"]) == 0  # proved, as expected
    assert main(["explore", MODEL, "no_such_property"]) == 2


def test_cli_prove_smt2_writes_every_obligation_lemma_and_premise(tmp_path: Path, capsys) -> None:
    out = tmp_path / "smt2"
    assert (
        main(["prove", str(KERNELS / "2.6.39.toml"), "--property", "spare_writable", "--smt2", str(out)]) == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert "2.6.39.spare_writable.call0.smt2" in names and "2.6.39.spare_writable.call1.smt2" in names
    # call 1 of a high buffer rests on call 0's reservation: those obligations are written too
    assert "2.6.39.live_reserved.call0.smt2" in names and "2.6.39.spare_freed.call0.smt2" in names
    assert "lemma.add_monotone.smt2" in names and any(
        n.startswith("lemma.pte_end_bounded.xen-high-") for n in names
    )
    for name in names:  # each file is a complete SMT-LIB 2 problem; those of a proved verdict are unsat
        text = (out / name).read_text()
        assert text.startswith("; xenpin") and "(set-logic QF_BV)" in text and "(check-sat)" in text
        if not name.startswith("lemma.") or name.startswith(("lemma.walk_bounded.", "lemma.add_monotone")):
            assert check(z3.And(*z3.parse_smt2_string(text))).status == "unsat", name
    header = (out / "2.6.39.spare_writable.call1.smt2").read_text().splitlines()
    assert header[1].startswith("; assumes the lemmas ") and "pte_end_bounded[" in header[1]
    assert "rests on 2.6.39.live_reserved.call0.smt2" in " ".join(header[:5])
    capsys.readouterr()


def test_cli_equiv_text_and_json(capsys) -> None:
    assert main(["equiv", str(KERNELS / "2.6.39.toml"), str(KERNELS / "2.6.39-inline.toml")]) == 0
    assert "equivalent" in capsys.readouterr().out
    other = str(KERNELS / "bisect-92bdaef7b2c5.toml")  # rc6's deferred restore goes to paired boots
    assert main(["equiv", str(KERNELS / "2.6.39-rc5.toml"), other, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "different" and doc["call"] == 0 and doc["machine"]["nr"] == hex(0x4000 << 12)
    assert [r["page"]["pte"] for r in doc["replays"]] == ["RW", "RO"] and doc["b"]["file"] == other
    assert main(["equiv", str(KERNELS / "2.6.39-rc5.toml"), other]) == 1
    text = capsys.readouterr().out
    assert "on a domU of 0x4000000 bytes, call 0: pfn" in text and "replay bisect-92bdaef7b2c5 (" in text
    assert main(["equiv", str(KERNELS / "3.1.toml"), str(KERNELS / "3.9.toml"), "--sizes", "64M"]) == 1
    assert "different (paired boots at 64 MiB)" in capsys.readouterr().out
