"""Rendering of scenario replays (`xenpin replay`): text for a hypervisor developer, or one JSON document.

Steps are shown in domain terms: frame numbers in hex, entries as `mfn 0x4 P|RW`, the result Xen returned next
to the expected one, and Xen's own log lines (4.1 format) under a rejected step.
"""

from __future__ import annotations

from typing import Any

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
        out.append(f"   {scn.path}  [rules {scn.rules}, {scn.frames} frames{foreign}]")
        for o in run.outcomes:
            step = o.step
            expected = step.expect if step.expect is not None else "-"
            out.append(
                f"  {step.index:>3}  {step.op:<17} {describe_args(step):<40} "
                f"{o.outcome:<8} expect {expected:<8} {_status(o)}"
            )
            if o.result is not None and not o.result.ok:
                out.extend(f"         (XEN) {line}" for line in o.log)
                reason = getattr(o.result, "reason", "")
                if reason and not o.log:
                    out.append(f"         ({reason})")
            for v in o.violations:
                out.append(f"         violated {v.invariant}: {v.message}")
        out.append("")
    out.append(render_summary(runs))
    return "\n".join(out)


def render_summary(runs: list[ScenarioRun]) -> str:
    width = max([len("scenario"), *(len(r.scenario.name) for r in runs)])
    width = min(width, 70)
    lines = [f"{'scenario':<{width}}  {'rules':<7}  {'steps':>5}  {'matched':>7}  verdict"]
    lines.append("-" * len(lines[0]))
    for r in runs:
        name = r.scenario.name if len(r.scenario.name) <= width else r.scenario.name[: width - 1] + "…"
        lines.append(
            f"{name:<{width}}  {r.scenario.rules:<7}  {len(r.outcomes):>5}  {r.matched:>7}  {_verdict(r)}"
        )
    steps = sum(len(r.outcomes) for r in runs)
    matched = sum(r.matched for r in runs)
    mismatched = sum(r.mismatched for r in runs)
    failed = sum(1 for r in runs if not r.passed)
    overall = "PASS" if failed == 0 else "FAIL"
    lines.append("-" * len(lines[0]))
    lines.append(
        f"{len(runs)} scenario(s), {steps} step(s): {matched} matched, {mismatched} mismatched, "
        f"{failed} scenario(s) failed -> {overall}"
    )
    return "\n".join(lines)


def _entry_json(entry: Entry | None) -> dict[str, Any]:
    if entry is None:
        return {"present": False}
    return {"present": True, "mfn": entry.mfn, "flags": format_flags(entry.flags)}


def _step_json(o: StepOutcome) -> dict[str, Any]:
    step = o.step
    args = {k: (_entry_json(v) if k == "entry" else v) for k, v in step.args.items()}
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
    return {
        "command": "replay",
        "scenarios": [
            {
                "name": r.scenario.name,
                "file": r.scenario.path,
                "rules": r.scenario.rules,
                "frames": r.scenario.frames,
                "foreign": list(r.scenario.foreign),
                "steps": [_step_json(o) for o in r.outcomes],
                "matched": r.matched,
                "mismatched": r.mismatched,
                "verdict": "pass" if r.passed else "fail",
            }
            for r in runs
        ],
        "summary": {
            "scenarios": len(runs),
            "steps": sum(len(r.outcomes) for r in runs),
            "matched": sum(r.matched for r in runs),
            "mismatched": sum(r.mismatched for r in runs),
            "failed": [r.scenario.name for r in runs if not r.passed],
            "verdict": "pass" if all(r.passed for r in runs) else "fail",
        },
    }
