"""Rendering of scenario replays (`xenpin replay`): text for a hypervisor developer, or one JSON document.

Steps are shown in domain terms: frame numbers in hex, entries as `mfn 0x4 P|RW`, the result Xen returned next
to the expected one, and Xen's own log lines (4.1 format) under a rejected step.
"""

from __future__ import annotations

from typing import Any

from xenpin.report.jsondoc import document, file_of
from xenpin.report.table import shown_path, table_lines
from xenpin.xen.flags import Entry, format_flags
from xenpin.xen.scenario import ScenarioRun, Step, StepOutcome


def describe_entry(entry: Entry | None) -> str:
    return "not-present" if entry is None else f"mfn {entry.mfn:#x} {format_flags(entry.flags)}"


def describe_args(step: Step) -> str:
    """The step's arguments as a developer would say them, e.g. `mfn 0x3[0] <- mfn 0x4 P|RW`."""
    a = step.args
    if step.op in ("write", "mmu_update"):
        return f"mfn {a['mfn']:#x}[{a['slot']}] <- {describe_entry(a['entry'])}"
    if step.op == "update_va_mapping":
        return f"va {a['va']:#x} <- {describe_entry(a['entry'])}"
    if step.op == "pin":
        return f"L{a['level']} mfn {a['mfn']:#x}"
    if step.op in ("unpin", "new_baseptr", "set_gdt"):
        return f"mfn {a['mfn']:#x}"
    if step.op == "check" and step.invariant:
        return f"invariant {step.invariant}"
    return ""


def _status(outcome: StepOutcome) -> str:
    return {True: "MATCH", False: "MISMATCH", None: "-"}[outcome.matched]


def _verdict(run: ScenarioRun) -> str:
    return "pass" if run.passed else "FAIL"


def render_text(runs: list[ScenarioRun]) -> str:
    out: list[str] = []
    for run in runs:
        scn = run.scenario
        foreign = f", foreign {' '.join(f'{m:#x}' for m in scn.foreign)}" if scn.foreign else ""
        out.append(f"== {scn.name}")
        out.append(f"   {shown_path(scn.path)}  [rules {scn.rules}, {scn.frames} frames{foreign}]")
        rows = [
            (o.step.index, o.step.op, describe_args(o.step), o.outcome, o.step.expect or "-", _status(o))
            for o in run.outcomes
        ]
        header, *lines = table_lines(("step>", "op", "arguments", "result", "expected", "match"), rows, 2)
        out.append(header)
        for o, line in zip(run.outcomes, lines, strict=True):
            out.append(line)
            if o.result is not None and not o.result.ok:
                out.extend(f"         (XEN) {entry}" for entry in o.log)
                reason = getattr(o.result, "reason", "")
                if reason and not o.log:
                    out.append(f"         ({reason})")
            for v in o.violations:
                out.append(f"         violated {v.invariant}: {v.message}")
        out.append("")
    out.append(render_summary(runs))
    return "\n".join(out)


def render_summary(runs: list[ScenarioRun]) -> str:
    rows = [
        (
            r.scenario.name,
            shown_path(r.scenario.path),
            r.scenario.rules,
            len(r.outcomes),
            r.matched,
            _verdict(r),
        )
        for r in runs
    ]
    lines = table_lines(("scenario", "file", "rules", "steps>", "matched>", "verdict"), rows)
    rule = "-" * max(len(line) for line in lines)
    steps = sum(len(r.outcomes) for r in runs)
    matched = sum(r.matched for r in runs)
    mismatched = sum(r.mismatched for r in runs)
    failed = sum(1 for r in runs if not r.passed)
    overall = "PASS" if failed == 0 else "FAIL"
    return "\n".join(
        [
            lines[0],
            rule,
            *lines[1:],
            rule,
            f"{len(runs)} scenario(s), {steps} step(s): {matched} matched, {mismatched} mismatched, "
            f"{failed} scenario(s) failed -> {overall}",
        ]
    )


def _entry_json(entry: Entry | None) -> dict[str, Any]:
    if entry is None:
        return {"present": False}
    return {"present": True, "mfn": hex(entry.mfn), "flags": format_flags(entry.flags)}


def _arg_json(key: str, value: Any) -> Any:
    """A step argument: frames and addresses in hex, `slot` and `level` as the integers they are."""
    if key == "entry":
        return _entry_json(value)
    return hex(value) if key in ("mfn", "va") else value


def _step_json(o: StepOutcome) -> dict[str, Any]:
    step = o.step
    args = {k: _arg_json(k, v) for k, v in step.args.items()}
    doc: dict[str, Any] = {
        "index": step.index,
        "line": step.line,
        "op": step.op,
        "args": args,
        "text": describe_args(step),
        "result": o.outcome,
        "expected": step.expect,
        "match": o.matched,
    }
    if step.op == "check":
        doc["invariant"] = step.invariant
        doc["violations"] = [{"invariant": v.invariant, "message": v.message} for v in o.violations]
    else:
        doc["errno"] = o.result.errno
        doc["reason"] = getattr(o.result, "reason", "")
        doc["log"] = list(o.log)
    return doc


def replay_json(runs: list[ScenarioRun]) -> dict[str, Any]:
    return document(
        "replay",
        scenarios=[
            {
                "name": r.scenario.name,
                "file": file_of(r.scenario.path),
                "rules": r.scenario.rules,
                "frames": r.scenario.frames,
                "foreign": [hex(m) for m in r.scenario.foreign],
                "steps": [_step_json(o) for o in r.outcomes],
                "matched": r.matched,
                "mismatched": r.mismatched,
                "verdict": "pass" if r.passed else "fail",
            }
            for r in runs
        ],
        summary={
            "scenarios": len(runs),
            "steps": sum(len(r.outcomes) for r in runs),
            "matched": sum(r.matched for r in runs),
            "mismatched": sum(r.mismatched for r in runs),
            "failed": [r.scenario.name for r in runs if not r.passed],
            "verdict": "pass" if all(r.passed for r in runs) else "fail",
        },
    )
