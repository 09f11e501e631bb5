"""Rendering of `xenpin verify-rules`: the operation x invariant matrix per rule set, then each counterexample
in the validator's terms (the calls that build the state from a fresh guest, the step, what `check_invariants`
reported, the scenario file), the verdicts that are neither proved nor a counterexample with their reasons, and
a summary line with the bound every verdict holds within.
"""

from __future__ import annotations

from typing import Any

from xenpin.report.jsondoc import document
from xenpin.report.table import shown_path, table_lines
from xenpin.symbolic.pv.matrix import Matrix
from xenpin.symbolic.pv.obligations import RuleVerdict
from xenpin.symbolic.solver import solver_version

VERDICTS = ("proved", "counterexample", "vacuous", "unknown")
SHORT = {"proved": "proved", "counterexample": "CEX", "vacuous": "vacuous", "unknown": "unknown"}
DIFFERS = "!"  # marks a cell whose verdict is decided and not the expected one


def _key(v: RuleVerdict) -> tuple[str, str, str]:
    return (v.rules, v.operation, v.invariant)


def expected(expectations: dict, v: RuleVerdict) -> str:
    """The verdict expected of `v`'s obligation: its `[[expect]]` entry's, else `proved`."""
    found = expectations.get(_key(v))
    return found.verdict if found is not None else "proved"


def _why(expectations: dict, v: RuleVerdict) -> str:
    found = expectations.get(_key(v))
    return found.why if found is not None else ""


def differs(expectations: dict, v: RuleVerdict) -> bool:
    """A decided verdict (proved, counterexample) that is not the expected one."""
    return v.verdict in ("proved", "counterexample") and v.verdict != expected(expectations, v)


def _cell(expectations: dict, v: RuleVerdict) -> str:
    mark = f" {DIFFERS}" if differs(expectations, v) else ""
    return f"{SHORT.get(v.verdict, v.verdict)} {v.seconds:.2f}s{mark}"


def _matrix_lines(matrix: Matrix, expectations: dict) -> list[str]:
    out: list[str] = []
    rules = list(dict.fromkeys(v.rules for v in matrix.verdicts))
    for r in rules:
        mine = [v for v in matrix.verdicts if v.rules == r]
        operations = list(dict.fromkeys(v.operation for v in mine))
        invariants = list(dict.fromkeys(v.invariant for v in mine))
        cells = {(v.operation, v.invariant): v for v in mine}
        rows = [
            (op, *(_cell(expectations, cells[op, i]) if (op, i) in cells else "-" for i in invariants))
            for op in operations
        ]
        if out:
            out.append("")
        out.append(f"{r}:")
        out.extend(table_lines(("operation", *invariants), rows, indent=2))
    return out


def _counterexample_lines(
    v: RuleVerdict, expectations: dict, path: str | None, alt_paths: dict | None = None
) -> list[str]:
    wanted, why = expected(expectations, v), _why(expectations, v)
    head = f"{v.rules} {v.operation} {v.invariant}: counterexample"
    head += f" (expected: {why})" if wanted == "counterexample" and why else f" (expected {wanted})"
    out = [head, f"  clause: {v.clause or '-'}", "  steps from a fresh guest:"]
    out.extend(f"    {n}. {step}" for n, step in enumerate(v.steps, 1))
    if v.violations:
        out.append(f"  check_invariants: {v.violations[0]}")
        out.extend(f"                    {line}" for line in v.violations[1:3])
        if len(v.violations) > 3:
            out.append(f"                    ... and {len(v.violations) - 3} more")
    out.append(f"  scenario: {shown_path(path) if path else '(not written)'}")
    for n, alt in enumerate(v.alternatives, 1):
        if alt.verdict != "counterexample":
            out.append(f"  another hole, flipping other flags: {alt.verdict}: {alt.note}")
            continue
        out.append(f"  another hole, flipping other flags: {alt.steps[-1] if alt.steps else alt.note}")
        same = [line for line in alt.violations if line.split(":", 1)[0] == v.invariant]
        if same:
            out.append(f"    check_invariants: {same[0]}")
        alt_path = (alt_paths or {}).get(n)
        out.append(f"    scenario: {shown_path(alt_path) if alt_path else '(not written)'}")
    return out


def summary_json(matrix: Matrix, expectations: dict, seconds: float) -> dict[str, Any]:
    vs = matrix.verdicts
    return {
        "obligations": len(vs),
        **{k: sum(v.verdict == k for v in vs) for k in VERDICTS},
        "differ": sum(differs(expectations, v) for v in vs),
        "seconds": round(seconds, 3),
        "solver": solver_version("z3"),
        "bound": str(matrix.bound),
    }


def _summary_line(s: dict[str, Any]) -> str:
    return (
        f"{s['obligations']} obligations: {s['proved']} proved, {s['counterexample']} counterexample,"
        f" {s['vacuous']} vacuous, {s['unknown']} unknown; {s['differ']} differ from expectation;"
        f" {s['seconds']:.1f} s; {s['solver']}; bound: {s['bound']}"
    )


def render_text(matrix: Matrix, expectations: dict, paths: dict, seconds: float) -> str:
    """The matrix, the counterexamples, the notes and the summary (`paths`: scenario files written, by key)."""
    out = _matrix_lines(matrix, expectations)
    cexes = [v for v in matrix.verdicts if v.verdict == "counterexample"]
    for v in cexes:
        out.append("")
        alts = {k[3]: p for k, p in paths.items() if len(k) == 4 and k[:3] == _key(v)}
        out.extend(_counterexample_lines(v, expectations, paths.get(_key(v)), alts))
    open_ = [v for v in matrix.verdicts if v.verdict in ("vacuous", "unknown")]
    if open_:
        out.append("")
        out.append("not decided:")
        out.extend(f"  {v.rules} {v.operation} {v.invariant}: {v.verdict}: {v.note}" for v in open_)
    differ = [v for v in matrix.verdicts if differs(expectations, v)]
    if differ:
        out.append("")
        out.append(f"differ from expectation ({DIFFERS}):")
        for v in differ:
            why = _why(expectations, v)
            out.append(
                f"  {v.rules} {v.operation} {v.invariant}: {v.verdict}, expected"
                f" {expected(expectations, v)}" + (f" ({why})" if why else "")
            )
    state = [s for s in (*matrix.lemmas, *matrix.witnesses) if s.verdict != "proved"]
    if state:
        out.append("")
        out.append("state checks not proved (a proved verdict that rests on one is vacuous or unknown):")
        out.extend(f"  {s.rules} {s.invariant}: {s.verdict}: {s.note}" for s in state)
    out.append("")
    out.append(_summary_line(summary_json(matrix, expectations, seconds)))
    return "\n".join(out)


def obligation_json(v: RuleVerdict, expectations: dict, path: str | None) -> dict[str, Any]:
    return {
        "rules": v.rules,
        "operation": v.operation,
        "invariant": v.invariant,
        "verdict": v.verdict,
        "expected": expected(expectations, v),
        "as_expected": not differs(expectations, v) and v.verdict in ("proved", "counterexample"),
        "seconds": round(v.seconds, 3),
        "scenario": path,
        "clause": v.clause,
        "note": v.note,
        "steps": list(v.steps),
        "violations": list(v.violations),
    }


def _lemma_json(v: RuleVerdict) -> dict[str, Any]:
    return {
        "rules": v.rules,
        "lemma": v.invariant,
        "verdict": v.verdict,
        "seconds": round(v.seconds, 3),
        "clause": v.clause,
        "note": v.note,
    }


def _witness_json(v: RuleVerdict) -> dict[str, Any]:
    return {
        "rules": v.rules,
        "invariant": v.invariant,
        "verdict": v.verdict,
        "seconds": round(v.seconds, 3),
        "note": v.note,
        "steps": list(v.steps),
    }


def verify_rules_json(matrix: Matrix, expectations: dict, paths: dict, seconds: float) -> dict[str, Any]:
    """`verify-rules --json`."""
    return document(
        "verify-rules",
        bound=str(matrix.bound),
        obligations=[obligation_json(v, expectations, paths.get(_key(v))) for v in matrix.verdicts],
        lemmas=[_lemma_json(v) for v in matrix.lemmas],
        witnesses=[_witness_json(v) for v in matrix.witnesses],
        facts=[
            {
                "rules": f.rules,
                "operation": f.operation,
                "premise": f.premise,
                "can_succeed": f.can_succeed,
                "can_fail": f.can_fail,
                "inside_bound": f.inside_bound,
                "seconds": round(f.seconds, 3),
            }
            for f in matrix.facts
        ],
        summary=summary_json(matrix, expectations, seconds),
    )
