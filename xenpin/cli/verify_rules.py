"""`xenpin verify-rules`: Xen's PV pagetable rules proved with Z3, one obligation per (rule set, operation,
invariant), each counterexample written as a scenario file `xenpin replay` runs.

The verdicts are compared with an expectations file (`models/rules/expect.toml`, or `--expect FILE`): one
`[[expect]]` per obligation whose verdict is not `proved` (`rules`, `operation`, `invariant`, `verdict`, `why`);
every obligation it does not list is expected `proved`. Exit codes as `prove`'s: 1 if a decided verdict (proved,
counterexample) differs from its expectation, else 3 if a verdict is unknown or vacuous, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from xenpin import shipped
from xenpin.cli.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_UNKNOWN,
    MAX_RLIMIT,
    InputError,
    add_output_flags,
    add_solver_flags,
    check_output_dir,
    check_target,
    whole_number,
    write_whole,
)
from xenpin.xen.scenario import toml_error_position

MAX_FRAMES = 6
DEFAULT_SCENARIOS = "verify-rules-counterexamples"
DECIDED = ("proved", "counterexample")
EXPECT_FIELDS = ("rules", "operation", "invariant", "verdict", "why")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify-rules",
        help="prove that every PV pagetable hypercall keeps Xen's safety invariants, per rule set, with Z3",
        description="One obligation per (rule set, operation, invariant): the invariants before the step and"
        " the step imply the invariant after it, each obligation in a fresh Z3 solver within a stated bound."
        " Counterexamples are minimised, rebuilt from a fresh guest and replayed by the executable validator,"
        " and written as scenario files.",
    )
    p.add_argument(
        "--rules",
        action="append",
        default=None,
        metavar="RULES",
        help="only this rule set: xen-4.1 or modern (repeatable; default both)",
    )
    p.add_argument(
        "--op",
        action="append",
        default=None,
        metavar="OP",
        help="only this operation, e.g. 'mmu_update[l2]' (repeatable; default every one)",
    )
    p.add_argument(
        "--invariant",
        action="append",
        default=None,
        metavar="I",
        help="only this invariant (repeatable; default every one)",
    )
    p.add_argument(
        "--frames",
        default=None,
        metavar="N",
        help=f"the bound's guest frames, 1..{MAX_FRAMES} (default: the engine's bound)",
    )
    p.add_argument(
        "--scenarios",
        default=DEFAULT_SCENARIOS,
        metavar="DIR",
        help=f"where each counterexample's scenario goes, as <rules>.<op>.<invariant>.toml (default"
        f" ./{DEFAULT_SCENARIOS}; created only if there is a counterexample)",
    )
    p.add_argument(
        "--expect",
        default=None,
        metavar="FILE",
        help="the expected verdicts (default: the shipped models/rules/expect.toml)",
    )
    add_solver_flags(p)
    add_output_flags(p)
    p.set_defaults(handler=run)


# ------------------------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expectation:
    rules: str
    operation: str
    invariant: str
    verdict: str
    why: str
    line: int


Key = tuple[str, str, str]  # (rules, operation, invariant)

_HEADER = re.compile(r"^\s*\[\[\s*(?:expect|\"expect\"|'expect')\s*\]\]")


def _field_line(lines: list[str], start: int, end: int, field: str) -> int:
    """The line of `field = ...` in the entry spanning lines `start` (its header) .. `end` - 1, else `start`."""
    pattern = re.compile(rf"^\s*(?:{re.escape(field)}|\"{re.escape(field)}\"|'{re.escape(field)}')\s*=")
    return next((n for n in range(start + 1, end) if pattern.match(lines[n - 1])), start)


def load_expectations(path: str, known: dict[str, tuple[str, ...]]) -> dict[Key, Expectation]:
    """The `[[expect]]` entries of `path`, checked against the `known` names (`rules`, `operation`, `invariant`);
    a bad file is one InputError `FILE:LINE: entry N: field 'x': what`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error_position(exc, text)
        raise InputError(f"{path}:{line}: TOML syntax: {message}") from None
    lines = text.splitlines()
    for key in data:
        if key != "expect":
            raise InputError(f"{path}:1: field {key!r}: unknown (only [[expect]] entries)")
    entries = data.get("expect", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"{path}:1: field 'expect': must be [[expect]] tables")
    headers = [n + 1 for n, ln in enumerate(lines) if _HEADER.match(ln)]
    out: dict[Key, Expectation] = {}
    for index, entry in enumerate(entries, 1):
        start = headers[index - 1] if index <= len(headers) else 1
        end = headers[index] if index < len(headers) else len(lines) + 1

        def bad(field: str, what: str, start: int = start, end: int = end, index: int = index) -> InputError:
            return InputError(
                f"{path}:{_field_line(lines, start, end, field)}: entry {index}: field {field!r}: {what}"
            )

        for field in entry:
            if field not in EXPECT_FIELDS:
                raise bad(field, f"unknown (known: {', '.join(EXPECT_FIELDS)})")
        for field in EXPECT_FIELDS:
            if field not in entry:
                raise InputError(f"{path}:{start}: entry {index}: field {field!r}: missing")
            if not isinstance(entry[field], str) or not entry[field].strip():
                raise bad(field, "must be a non-empty string")
        for field, names in known.items():
            if entry[field] not in names:
                raise bad(field, f"unknown {field} {entry[field]!r} (known: {', '.join(names)})")
        if entry["verdict"] not in DECIDED:
            raise bad("verdict", f"{entry['verdict']!r} is not one of {', '.join(DECIDED)}")
        key = (entry["rules"], entry["operation"], entry["invariant"])
        if key in out:
            raise bad("invariant", f"{' '.join(key)} is already expected on line {out[key].line}")
        out[key] = Expectation(*key, entry["verdict"], entry["why"], start)
    return out


def verdicts_exit(expectations: dict[Key, Expectation], verdicts) -> int:
    """1 if a decided verdict differs from its expectation (whatever the others are); else 3 if a verdict is
    unknown or vacuous; else 0."""
    from xenpin.report.verify_rules import differs

    if any(differs(expectations, v) for v in verdicts):
        return EXIT_MISMATCH
    return EXIT_UNKNOWN if any(v.verdict not in DECIDED for v in verdicts) else EXIT_OK


# ----------------------------------------------------------------------------------------------- scenarios

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")


def _part(name: str) -> str:
    """A file-name part: `mmu_update[l2]` -> `mmu_update-l2` (only [A-Za-z0-9_.-], no leading dot)."""
    return _UNSAFE.sub("-", name).strip("-").lstrip(".") or "_"


def scenario_name(rules: str, operation: str, invariant: str) -> str:
    """The scenario file of one obligation's counterexample: `<rules>.<op>.<invariant>.toml`."""
    return f"{_part(rules)}.{_part(operation)}.{_part(invariant)}.toml"


def check_scenarios_dir(directory: str, names: list[str]) -> None:
    """`--scenarios DIR` before any solver work (`common.check_output_dir`); and none of the files a
    counterexample could be written to exists as something other than a regular file."""
    if check_output_dir("--scenarios", directory):
        for name in names:
            check_target(str(Path(directory) / name))


def write_scenarios(directory: str, texts: dict[str, str]) -> None:
    """Each counterexample's scenario text into `directory` (created if need be), each file whole; an error or
    an interrupt removes what this run created, the folder included."""
    if not texts:
        return
    out = Path(directory)
    made = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--scenarios: cannot create {directory}: {exc.strerror}") from None
    created: list[Path] = []
    try:
        for name, text in texts.items():
            target = out / name
            existed = os.path.lexists(target)
            write_whole(str(target), text)
            if not existed:
                created.append(target)
    except BaseException:
        for target in created:
            with contextlib.suppress(OSError):
                target.unlink()
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


# ------------------------------------------------------------------------------------------------- the run


def _selection(option: str, given: list[str] | None, known: tuple[str, ...], what: str) -> list[str]:
    if not given:
        return list(known)
    for name in given:
        if name not in known:
            raise InputError(f"{option}: unknown {what} {name!r} (known: {', '.join(known)})")
    return list(dict.fromkeys(given))


def run(args: argparse.Namespace) -> int:
    from xenpin.cli.progress import Bars, wanted
    from xenpin.report.verify_rules import render_text, verify_rules_json
    from xenpin.symbolic.batch import default_workers
    from xenpin.symbolic.pv.invariants import STATE_INVARIANTS
    from xenpin.symbolic.pv.matrix import verify
    from xenpin.symbolic.pv.operations import OPERATION_NAMES
    from xenpin.symbolic.pv.state import DEFAULT_BOUND, Bound
    from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S
    from xenpin.xen.rules import RULES

    rule_sets = _selection("--rules", args.rules, tuple(RULES), "rule set")
    operations = _selection("--op", args.op, OPERATION_NAMES, "operation")
    invariants = _selection("--invariant", args.invariant, STATE_INVARIANTS, "invariant")
    bound = DEFAULT_BOUND
    if args.frames is not None:
        bound = Bound(whole_number("--frames", args.frames, MAX_FRAMES), DEFAULT_BOUND.slots)
    rlimit = DEFAULT_RLIMIT if args.rlimit is None else whole_number("--rlimit", args.rlimit, MAX_RLIMIT)
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError("--timeout: must be a positive, finite number of seconds")
    if args.jobs is not None and args.jobs <= 0:
        raise InputError("--jobs: must be a positive integer")
    known = {"rules": tuple(RULES), "operation": OPERATION_NAMES, "invariant": STATE_INVARIANTS}
    expectations = load_expectations(args.expect or str(shipped.RULES_EXPECT), known)
    cells = [(r, op, i) for r in rule_sets for op in operations for i in invariants]
    names = {cell: scenario_name(*cell) for cell in cells}
    check_scenarios_dir(
        args.scenarios,
        [
            n.removesuffix(".toml") + suffix
            for n in names.values()
            for suffix in (".toml", ".alt1.toml", ".alt2.toml")
        ],
    )  # before any solver work

    workers = min(args.jobs or default_workers(), default_workers(), len(cells))
    started = time.perf_counter()
    with Bars(wanted(args), counts=True) as bars:
        task = bars.add("verify-rules: obligations", len(cells))
        matrix = verify(
            rule_sets,
            operations,
            invariants,
            bound=bound,
            workers=workers,
            rlimit=rlimit,
            timeout_s=args.timeout or DEFAULT_TIMEOUT_S,
            on_verdict=lambda v: bars.update(task, advance=1),
        )
    seconds = time.perf_counter() - started
    paths: dict[Key, str] = {}
    texts: dict[str, str] = {}
    for v in matrix.verdicts:
        if v.verdict == "counterexample" and v.scenario is not None:
            name = names[v.rules, v.operation, v.invariant]
            texts[name] = v.scenario
            paths[v.rules, v.operation, v.invariant] = os.path.join(args.scenarios, name)
            for n, alt in enumerate(v.alternatives, 1):  # other holes in the same step: `<name>.altN.toml`
                if alt.verdict == "counterexample" and alt.scenario is not None:
                    alt_name = name.removesuffix(".toml") + f".alt{n}.toml"
                    texts[alt_name] = alt.scenario
                    paths[v.rules, v.operation, v.invariant, n] = os.path.join(args.scenarios, alt_name)
    write_scenarios(args.scenarios, texts)  # before anything is printed: a write error leaves no output
    if args.json:
        print(json.dumps(verify_rules_json(matrix, expectations, paths, seconds), indent=2))
    else:
        print(render_text(matrix, expectations, paths, seconds))
    if texts and not args.json and not args.quiet:
        print(f"wrote {len(texts)} scenario files to {args.scenarios}", file=sys.stderr)
    return verdicts_exit(expectations, matrix.verdicts)
