"""Rendering of proof runs (`xenpin prove`): one line per obligation, the counterexample in the domain's terms.

A counterexample is shown as the memory size and the page (PFN and byte address in hex) where the property
fails, with what the boot walk did there when replayed: the Xen log lines and the kernel's failure line; then
every other witness found for the verdict (the other call's, a premise's), each with what its replay showed.
A `vacuous` or `unknown` verdict is followed by its notes (why).
"""

from __future__ import annotations

from typing import Any

from xenpin.linux.layout import pfn_phys
from xenpin.report.jsondoc import document, file_of
from xenpin.report.table import shown_path, table_lines
from xenpin.symbolic.prove import Attempt, LemmaVerdict, Verdict, Witness
from xenpin.symbolic.solver import solver_version
from xenpin.symbolic.walk import W


def _witness_text(w: Witness, page: bool = True) -> str:
    which = "smallest" if w.minimal else "another"
    if w.limit is not None:
        which = (
            f"smallest of at most {w.limit:#x} bytes"
            if w.minimal
            else f"another of at most {w.limit:#x} bytes"
        )
    # `page`: the property names a page (buffer_fits is about the whole call: its witness's pfn means nothing)
    where = f", pfn {w.pfn:#x} ({pfn_phys(w.pfn):#x})" if page else ""
    return f"{which}: {w.describe()}, init_memory_mapping call {w.call}{where}" + (
        f", allocation #{w.alloc}" if w.alloc else ""
    )


def _attempt_lines(att: Attempt, replayed: object, page: bool = True) -> list[str]:
    """A witness beside the verdict's own: where it comes from, and what its replay showed (`replayed`: the
    verdict's own replay, shown above)."""
    if att.replay is None:
        shown = "not replayed"
    elif att.replay is replayed:
        shown = "the replay above"
    else:
        f = att.replay.failure
        shown = f"replay: {att.replay.outcome}" + (f" at pfn {f.pfn:#x}" if f is not None else "")
        shown += ", confirms" if att.confirmed else ", does not confirm"
    return [f"      also ({att.source}): {_witness_text(att.witness, page)}; {shown}"]


def _witness_lines(v: Verdict) -> list[str]:
    w = v.witness
    if w is None:
        return []
    out = [f"      {_witness_text(w, page=v.prop != 'buffer_fits')}"]
    r = v.replay
    if r is not None:
        for b in r.buffers:
            if b.call >= 0:
                out.append(
                    f"      call {b.call}: pgt_buf_start {b.pgt_buf_start:#x} pgt_buf_end {b.pgt_buf_end:#x}"
                    f" pgt_buf_top {b.pgt_buf_top:#x}"
                )
        f = r.failure
        if f is not None:
            where = f" in {f.phase}" if f.phase else ""
            at = f", pfn {f.pfn:#x}" if v.prop != "buffer_fits" else ""
            out.append(f"      replay: {f.outcome}{where} at boot step {f.step}{at}")
            out.extend(f"        {line}" for line in f.xen_log)
            if not f.message.startswith("(XEN)"):
                out.append(f"        {f.message}")
        else:
            held = {True: "holds", False: "violated", None: "not reached"}[r.properties[v.prop]]
            out.append(f"      replay: boot ok, {v.prop} {held}")
    for att in v.attempts:
        if att.witness is not w:
            out.extend(_attempt_lines(att, r, page=v.prop != "buffer_fits"))
    out.extend(f"      note: {n}" for n in v.notes)
    return out


def lemmas_of(verdicts: list[Verdict]) -> list[LemmaVerdict]:
    """The lemmas the verdicts rest on, each once, in proof order."""
    seen: dict[object, LemmaVerdict] = {}
    for v in verdicts:
        for lv in v.lemmas:
            seen.setdefault(lv.ref, lv)
    return list(seen.values())


def _lemma_lines(lemmas: list[LemmaVerdict]) -> list[str]:
    """One line per lemma (its instances per placement and call together), one more per instance not proved."""
    if not lemmas:
        return []
    out = ["lemmas the proved verdicts rest on (each instance proved once, in its own solver):"]
    by_name: dict[str, list[LemmaVerdict]] = {}
    for lv in lemmas:
        by_name.setdefault(lv.ref.name, []).append(lv)
    for name, group in by_name.items():
        proved = [lv for lv in group if lv.verdict == "proved"]
        shapes = {lv.ref.shape for lv in proved if lv.ref.shape}
        where = f" [{len(proved)} instances: {len(shapes)} walk shapes x their calls]" if shapes else ""
        seconds = sum(lv.seconds for lv in proved)
        if proved:
            out.append(f"  proved   {seconds:5.2f}s  {name}{where}: {group[0].text}")
        for lv in group:
            if lv.verdict != "proved":
                reason = f" ({lv.reason})" if lv.reason else ""
                out.append(f"  {lv.verdict:<9}{lv.seconds:5.2f}s  {lv.ref}: {lv.text}{reason}")
    return out


def render_text(verdicts: list[Verdict], seconds: float, solver: str = "z3") -> str:
    rows = []
    for v in verdicts:
        mark = "" if v.as_expected else "<-- differs"
        rows.append(
            (
                v.variant.name,
                shown_path(v.variant.path),
                v.label,  # P, or P@any (symbolic/placement.py)
                v.verdict,
                v.expected,
                f"{v.seconds:.2f}s",
                mark,
            )
        )
    header, *lines = table_lines(("variant", "file", "property", "verdict", "expected", "time>", ""), rows)
    out = [header]
    for v, line in zip(verdicts, lines, strict=True):
        out.append(line)
        out.extend(_witness_lines(v))
        if v.verdict in ("unknown", "vacuous") and not v.witness:
            out.extend(f"      note: {n}" for n in v.notes)
    lemmas = lemmas_of(verdicts)
    out.extend(_lemma_lines(lemmas))
    out.append(_summary_line(summary_json(verdicts, seconds, solver)))
    return "\n".join(out)


def summary_json(verdicts: list[Verdict], seconds: float, solver: str = "z3") -> dict[str, Any]:
    """The counts of the text's last line: verdicts, differences from expectation, lemmas, time, solver."""
    lemmas = lemmas_of(verdicts)
    return {
        "obligations": len(verdicts),
        **{
            k: sum(v.verdict == k for v in verdicts)
            for k in ("proved", "counterexample", "vacuous", "unknown")
        },
        "differ": sum(not v.as_expected for v in verdicts),
        "lemmas": len(lemmas),
        "lemmas_proved": sum(lv.verdict == "proved" for lv in lemmas),
        "seconds": round(seconds, 3),
        "solver": solver_version(solver),
        "bit_width": W,
    }


def _summary_line(s: dict[str, Any]) -> str:
    lemma_text = f" (resting on {s['lemmas_proved']}/{s['lemmas']} proved lemmas)" if s["lemmas"] else ""
    return (
        f"{s['obligations']} obligations: {s['proved']} proved{lemma_text},"
        f" {s['counterexample']} counterexample, {s['vacuous']} vacuous, {s['unknown']} unknown;"
        f" {s['differ']} differ from expectation;"
        f" {s['seconds']:.1f} s; {s['solver']}, {s['bit_width']}-bit bit-vectors"
    )


def witness_json(w: Witness) -> dict[str, Any]:
    return {
        "call": w.call,
        "mem_bytes": hex(w.mem_bytes),
        "machine": w.machine_json(),
        "pfn": hex(w.pfn),
        "alloc": w.alloc,
        "minimal": w.minimal,
        "limit": None if w.limit is None else hex(w.limit),
    }


def replay_json(r: Any, prop: str) -> dict[str, Any]:
    return {
        "outcome": r.outcome,
        "property_value": r.properties[prop],
        "xen_log": list(r.failure.xen_log) if r.failure else [],
        "message": r.failure.message if r.failure else "",
    }


def obligation_json(v: Verdict) -> dict[str, Any]:
    """One (variant, property) verdict: its witness, replay, every witness tried, the non-vacuity checks and the
    lemmas it rests on."""
    w, r = v.witness, v.replay
    return {
        "variant": v.variant.name,
        "file": file_of(v.variant.path),
        "property": v.label,
        "verdict": v.verdict,
        "expected": v.expected,
        "as_expected": v.as_expected,
        "vacuous": v.vacuous,
        "seconds": round(v.seconds, 3),
        "witness": None if w is None else witness_json(w),
        "lemmas": [str(lv.ref) for lv in v.lemmas],
        "replay": None if r is None else replay_json(r, v.prop),
        "witnesses": [
            {
                "source": att.source,
                "witness": witness_json(att.witness),
                "replay": None if att.replay is None else replay_json(att.replay, v.prop),
                "confirmed": att.confirmed,
            }
            for att in v.attempts
        ],
        "non_vacuity": [
            {"call": ch.call, "premise": ch.premise, "situation": ch.situation} for ch in v.checks
        ],
        "notes": list(v.notes),
    }


def verdicts_json(verdicts: list[Verdict], seconds: float, solver: str = "z3") -> dict[str, Any]:
    """What `prove` and `explore` documents share: the obligations, every lemma once, the summary."""
    return {
        "obligations": [obligation_json(v) for v in verdicts],
        "lemmas": [
            {
                "lemma": str(lv.ref),
                "claim": lv.text,
                "verdict": lv.verdict,
                "seconds": round(lv.seconds, 3),
                "reason": lv.reason,
            }
            for lv in lemmas_of(verdicts)
        ],
        "summary": summary_json(verdicts, seconds, solver),
    }


def prove_json(verdicts: list[Verdict], seconds: float, solver: str = "z3") -> dict[str, Any]:
    """`prove --json`."""
    return document("prove", **verdicts_json(verdicts, seconds, solver))


def explore_json(
    verdicts: list[Verdict], seconds: float, solver: str = "z3", picture: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`explore --json`: the variant and property explored, then `prove`'s keys for its counterexamples; the
    first counterexample's buffer `picture` when there is one."""
    first = verdicts[0]
    doc = document(
        "explore",
        variant=first.variant.name,
        file=file_of(first.variant.path),
        property=first.prop,
        **verdicts_json(verdicts, seconds, solver),
    )
    if picture is not None:
        doc["picture"] = picture
    return doc
