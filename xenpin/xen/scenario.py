"""Hypercall scenarios: a TOML script of guest operations against the Xen validator, with expected results.

A scenario models what a hypervisor developer would write as an XTF test: a PV guest (domain 1) owning
`frames` machine frames (plus some `foreign` frames of domain 2) issues plain stores, `mmu_update`,
`update_va_mapping` and `mmuext_op`s (pin/unpin/new_baseptr/set_gdt); after each one, the result Xen returns
(`ok` or an errno) is compared with the `expect`ed one. `check` steps assert the model's invariants.

Everything is validated when the file is loaded, before any step runs; every error is a `ScenarioError` whose
text is one line, `FILE:LINE: step N: field 'x': message`. The file format is described in DESIGN.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenpin.xen.flags import ENTRIES_PER_TABLE, Entry, P, parse_flags

RULES = ("modern", "xen-4.1")
ERRNOS = ("EINVAL", "EBUSY", "EPERM", "EFAULT")
HYPERCALL_EXPECTS = ("ok", *ERRNOS)
CHECK_EXPECTS = ("ok", "violated")
MAX_FRAMES = 1 << 20
VA_LIMIT = 1 << 64

# op -> its required argument fields (besides `op`), in display order.
OPS: dict[str, tuple[str, ...]] = {
    "write": ("mfn", "slot", "entry"),
    "mmu_update": ("mfn", "slot", "entry"),
    "update_va_mapping": ("va", "entry"),
    "pin": ("level", "mfn"),
    "unpin": ("mfn",),
    "new_baseptr": ("mfn",),
    "set_gdt": ("mfn",),
    "check": (),
}
# op -> optional fields allowed besides `expect`.
OPTIONAL: dict[str, tuple[str, ...]] = {"check": ("invariant",)}
TOP_LEVEL_REQUIRED = ("name", "rules", "frames")
TOP_LEVEL_OPTIONAL = ("foreign", "step")


class ScenarioError(Exception):
    """A malformed scenario. `str()` is one line: `FILE:LINE: [step N: ][field 'x': ]message`."""

    def __init__(
        self, path: str, line: int | None, message: str, *, step: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.step = step
        self.field = field
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        parts = [where]
        if step is not None:
            parts.append(f"step {step}")
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(message)
        super().__init__(": ".join(parts))


@dataclass(frozen=True)
class Step:
    """One operation. `index` is 1-based; `args` holds the op's fields (`entry` as an `Entry` or None)."""

    index: int
    op: str
    args: Mapping[str, Any]
    expect: str | None
    invariant: str | None
    line: int


@dataclass(frozen=True)
class Scenario:
    name: str
    rules: str
    frames: int
    foreign: tuple[int, ...]
    steps: tuple[Step, ...]
    path: str


@dataclass(frozen=True)
class StepOutcome:
    """What one step did. `outcome` is `ok`/an errno name (hypercalls) or `ok`/`violated` (check)."""

    step: Step
    outcome: str
    matched: bool | None  # None: the step had no `expect`
    result: Any = None  # xenpin.xen.hypervisor.Result for hypercall steps
    violations: tuple[Any, ...] = ()  # xenpin.xen.invariants.Violation for check steps

    @property
    def log(self) -> tuple[str, ...]:
        return tuple(self.result.log) if self.result is not None else ()


@dataclass
class ScenarioRun:
    scenario: Scenario
    outcomes: list[StepOutcome] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return sum(1 for o in self.outcomes if o.matched is True)

    @property
    def mismatched(self) -> int:
        return sum(1 for o in self.outcomes if o.matched is False)

    @property
    def passed(self) -> bool:
        return self.mismatched == 0


# ---------------------------------------------------------------------------------------------------------------
# Line lookup: tomllib gives values, not positions, so find them in the text.

_HEADER = re.compile(r"^\s*\[")


def _key_re(key: str) -> str:
    """A TOML key as written: bare, "basic" or 'literal'."""
    k = re.escape(key)
    return rf"(?:{k}|\"{k}\"|'{k}')"


_STEP_HEADER = re.compile(rf"^\s*\[\[\s*{_key_re('step')}\s*\]\]")


class _Lines:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.step_headers = [i + 1 for i, ln in enumerate(self.lines) if _STEP_HEADER.match(ln)]
        first_header = next((i + 1 for i, ln in enumerate(self.lines) if _HEADER.match(ln)), None)
        self.top_end = first_header if first_header is not None else len(self.lines) + 1

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*{_key_re(key)}\s*[.=]")
        sub = re.compile(rf"^\s*\[\s*{_key_re('step')}\s*\.\s*{_key_re(key)}\s*\]")
        for lineno in range(start, min(end, len(self.lines) + 1)):
            text = self.lines[lineno - 1]
            if pattern.match(text) or sub.match(text):
                return lineno
        return None

    def _find_table(self, key: str) -> int | None:
        """The line of a `[key]` / `[[key]]` header (or of a `[key.sub]` one), anywhere in the file."""
        header = re.compile(rf"^\s*\[\[?\s*{_key_re(key)}\s*[.\]]")
        return next((i + 1 for i, ln in enumerate(self.lines) if header.match(ln)), None)

    def top(self, key: str | None) -> int:
        if key is not None:
            found = self._find_key(key, 1, self.top_end)
            if found is None:
                found = self._find_table(key)
            if found is not None:
                return found
        return 1

    def step(self, index: int, key: str | None = None) -> int:
        """Line of step `index` (1-based) or of its field `key`; the header's line if the key is absent."""
        if index - 1 >= len(self.step_headers):
            return self.top("step")
        start = self.step_headers[index - 1]
        end = self.step_headers[index] if index < len(self.step_headers) else len(self.lines) + 1
        if key is not None:
            found = self._find_key(key, start + 1, end)
            if found is not None:
                return found
        return start


# ---------------------------------------------------------------------------------------------------------------
# Loading


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        str: "a string",
        float: "a float",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class _Loader:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = _Lines(text)
        self.frames = 0
        self.foreign: tuple[int, ...] = ()

    # errors -----------------------------------------------------------------------------------------------
    def top_error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(self.path, self.lines.top(key), message, field=key)

    def step_error(self, index: int, key: str | None, message: str) -> ScenarioError:
        line_key = key.split(".")[0] if key else None
        return ScenarioError(self.path, self.lines.step(index, line_key), message, step=index, field=key)

    # values -----------------------------------------------------------------------------------------------
    @staticmethod
    def _int(value: object) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def frame_error(self, mfn: int) -> str | None:
        if 0 <= mfn < self.frames or mfn in self.foreign:
            return None
        foreign = f", foreign {', '.join(str(f) for f in self.foreign)}" if self.foreign else ""
        return f"frame {mfn} out of range (guest owns 0..{self.frames - 1}{foreign})"

    def load(self, data: dict[str, Any]) -> Scenario:
        for key in data:
            if key not in TOP_LEVEL_REQUIRED + TOP_LEVEL_OPTIONAL:
                raise self.top_error(
                    key, f"unknown field (expected: {', '.join(TOP_LEVEL_REQUIRED + TOP_LEVEL_OPTIONAL)})"
                )
        for key in TOP_LEVEL_REQUIRED:
            if key not in data:
                raise ScenarioError(self.path, 1, "missing", field=key)

        name = data["name"]
        if not isinstance(name, str):
            raise self.top_error("name", f"must be a non-empty string, not {_type_name(name)}")
        if not name.strip():
            raise self.top_error("name", "must not be empty")
        rules = data["rules"]
        if not isinstance(rules, str):
            raise self.top_error("rules", f"must be a string, not {_type_name(rules)}")
        if rules not in RULES:
            raise self.top_error("rules", f"unknown rules {rules!r} (known: {', '.join(RULES)})")
        frames = self._int(data["frames"])
        if frames is None:
            raise self.top_error("frames", f"must be an integer, not {_type_name(data['frames'])}")
        if not 1 <= frames <= MAX_FRAMES:
            raise self.top_error("frames", f"must be between 1 and {MAX_FRAMES}, not {frames}")
        self.frames = frames

        raw_foreign = data.get("foreign", [])
        if not isinstance(raw_foreign, list):
            raise self.top_error("foreign", f"must be an array of integers, not {_type_name(raw_foreign)}")
        foreign: list[int] = []
        for item in raw_foreign:
            mfn = self._int(item)
            if mfn is None:
                raise self.top_error("foreign", f"must be an array of integers, found {_type_name(item)}")
            if mfn < frames:
                raise self.top_error("foreign", f"frame {mfn} is owned by the guest (mfns 0..{frames - 1})")
            if mfn in foreign:
                raise self.top_error("foreign", f"frame {mfn} listed twice")
            if mfn >= MAX_FRAMES:
                raise self.top_error("foreign", f"frame {mfn} beyond {MAX_FRAMES - 1}")
            foreign.append(mfn)
        self.foreign = tuple(foreign)

        raw_steps = data.get("step", [])
        if isinstance(raw_steps, dict):
            raise self.top_error(
                "step", "a single [step] table: each step is an array-of-tables entry, [[step]]"
            )
        if not isinstance(raw_steps, list) or not all(isinstance(s, dict) for s in raw_steps):
            raise self.top_error("step", "must be an array of tables ([[step]])")
        steps = tuple(self.load_step(i, raw) for i, raw in enumerate(raw_steps, start=1))
        return Scenario(
            name=name, rules=rules, frames=frames, foreign=self.foreign, steps=steps, path=self.path
        )

    def load_step(self, index: int, raw: dict[str, Any]) -> Step:
        if "op" not in raw:
            raise self.step_error(index, "op", f"missing (one of: {', '.join(OPS)})")
        op = raw["op"]
        if not isinstance(op, str):
            raise self.step_error(index, "op", f"must be a string, not {_type_name(op)}")
        if op not in OPS:
            raise self.step_error(index, "op", f"unknown op {op!r} (known: {', '.join(OPS)})")
        required = OPS[op]
        allowed = ("op", *required, "expect", *OPTIONAL.get(op, ()))
        for key in raw:
            if key not in allowed:
                raise self.step_error(
                    index, key, f"not a field of op {op!r} (fields: {', '.join(allowed[1:])})"
                )
        for key in required:
            if key not in raw:
                raise self.step_error(index, key, f"missing (op {op!r} needs: {', '.join(required)})")

        args: dict[str, Any] = {}
        for key in required:
            args[key] = self.load_arg(index, key, raw[key])

        expect = raw.get("expect")
        choices = CHECK_EXPECTS if op == "check" else HYPERCALL_EXPECTS
        if expect is not None:
            if not isinstance(expect, str):
                raise self.step_error(index, "expect", f"must be a string, not {_type_name(expect)}")
            if expect not in choices:
                raise self.step_error(
                    index, "expect", f"unknown result {expect!r} (expected one of: {', '.join(choices)})"
                )
        invariant = raw.get("invariant")
        if invariant is not None:
            if not isinstance(invariant, str):
                raise self.step_error(index, "invariant", f"must be a string, not {_type_name(invariant)}")
            known = _invariant_names()
            if invariant not in known:
                raise self.step_error(
                    index, "invariant", f"unknown invariant {invariant!r} (known: {', '.join(known)})"
                )
            if expect != "violated":
                raise self.step_error(index, "invariant", 'only meaningful with expect = "violated"')
        return Step(
            index=index, op=op, args=args, expect=expect, invariant=invariant, line=self.lines.step(index)
        )

    def load_arg(self, index: int, key: str, value: object) -> Any:
        if key == "entry":
            return self.load_entry(index, value)
        number = self._int(value)
        if number is None:
            raise self.step_error(index, key, f"must be an integer, not {_type_name(value)}")
        if key == "mfn":
            problem = self.frame_error(number)
            if problem:
                raise self.step_error(index, key, problem)
        elif key == "slot":
            if not 0 <= number < ENTRIES_PER_TABLE:
                raise self.step_error(index, key, f"slot {number} not in 0..{ENTRIES_PER_TABLE - 1}")
        elif key == "level":
            if not 1 <= number <= 4:
                raise self.step_error(index, key, f"level {number} not in 1..4")
        elif key == "va" and not 0 <= number < VA_LIMIT:
            raise self.step_error(index, key, f"address {number:#x} is not a 64-bit virtual address")
        return number

    def load_entry(self, index: int, value: object) -> Entry | None:
        """`{ mfn = M, flags = "P|..." }` is a present entry; `{}` is the not-present entry (Xen ignores every
        other bit of an entry without P, so the format has one way to write it, and an entry that names a
        frame or flags but lacks P is refused as a likely mistake)."""
        if not isinstance(value, dict):
            raise self.step_error(
                index, "entry", f'must be a table like {{ mfn = 4, flags = "P|RW" }}, not {_type_name(value)}'
            )
        for key in value:
            if key not in ("mfn", "flags"):
                raise self.step_error(index, f"entry.{key}", "not a field of an entry (fields: mfn, flags)")
        if not value:
            return None  # `entry = {}`: not present
        not_present = "write entry = {} for a not-present entry"
        if "flags" not in value:
            raise self.step_error(
                index,
                "entry.flags",
                f'missing: a present entry needs flags with P, e.g. "P|RW"; {not_present}',
            )
        raw_flags = value["flags"]
        if not isinstance(raw_flags, str):
            raise self.step_error(
                index, "entry.flags", f'must be a string like "P|RW", not {_type_name(raw_flags)}'
            )
        if not raw_flags.strip():
            raise self.step_error(
                index, "entry.flags", f'empty: a present entry needs P, e.g. "P|RW"; {not_present}'
            )
        try:
            flags = parse_flags(raw_flags)
        except ValueError as exc:
            raise self.step_error(index, "entry.flags", str(exc)) from None
        if not flags & P:
            raise self.step_error(
                index,
                "entry.flags",
                f'{raw_flags!r} lacks P: a present entry needs it, e.g. "P|RW"; {not_present}',
            )
        mfn: int | None = None
        if "mfn" in value:
            mfn = self._int(value["mfn"])
            if mfn is None:
                raise self.step_error(
                    index, "entry.mfn", f"must be an integer, not {_type_name(value['mfn'])}"
                )
            problem = self.frame_error(mfn)
            if problem:
                raise self.step_error(index, "entry.mfn", problem)
        if mfn is None:
            raise self.step_error(index, "entry.mfn", "missing (a present entry names a frame)")
        return Entry(mfn, flags)


def _invariant_names() -> tuple[str, ...]:
    from xenpin.xen.invariants import INVARIANTS

    return tuple(INVARIANTS)


_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def toml_error_position(exc: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    """A TOML syntax error as one-line errors print it: its line, and its message with the column (or "at end
    of file")."""
    message = str(exc)
    match = _TOML_POS.search(message)
    if match:
        return int(match.group(1)), f"{message[: match.start()]} (column {match.group(2)})"
    return max(1, len(text.splitlines())), f"{_TOML_END.sub('', message)} (at end of file)"


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Parse and validate scenario text; `path` is used in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error_position(exc, text)
        raise ScenarioError(path, line, f"TOML syntax: {message}") from None
    return _Loader(path, text).load(data)


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate one scenario file."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(name, None, "no such file") from None
    except IsADirectoryError:
        raise ScenarioError(name, None, "is a directory") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(name, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ScenarioError(name, None, exc.strerror or str(exc)) from None
    return parse_scenario(text, name)


# ---------------------------------------------------------------------------------------------------------------
# Running


def make_hypervisor(scn: Scenario) -> Any:
    """A fresh Hypervisor for the scenario's rules and frames."""
    from xenpin.xen.hypervisor import Hypervisor

    try:
        return Hypervisor(rules=scn.rules, frames=scn.frames, foreign=list(scn.foreign))
    except ValueError as exc:
        raise ScenarioError(scn.path, 1, str(exc)) from None


def _call(hv: Any, step: Step) -> Any:
    a = step.args
    calls: dict[str, Callable[[], Any]] = {
        "write": lambda: hv.write(a["mfn"], a["slot"], a["entry"]),
        "mmu_update": lambda: hv.mmu_update(a["mfn"], a["slot"], a["entry"]),
        "update_va_mapping": lambda: hv.update_va_mapping(a["va"], a["entry"]),
        "pin": lambda: hv.pin(a["level"], a["mfn"]),
        "unpin": lambda: hv.unpin(a["mfn"]),
        "new_baseptr": lambda: hv.new_baseptr(a["mfn"]),
        "set_gdt": lambda: hv.set_gdt(a["mfn"]),
    }
    return calls[step.op]()


def apply_step(hv: Any, step: Step) -> StepOutcome:
    """Run one step on `hv` and compare with its expectation."""
    if step.op == "check":
        from xenpin.xen.invariants import check_invariants

        violations = tuple(check_invariants(hv))
        outcome = "violated" if violations else "ok"
        matched: bool | None = None
        if step.expect == "ok":
            matched = not violations
        elif step.expect == "violated":
            matched = bool(violations) and (
                step.invariant is None or any(v.invariant == step.invariant for v in violations)
            )
        return StepOutcome(step=step, outcome=outcome, matched=matched, violations=violations)
    result = _call(hv, step)
    outcome = "ok" if result.ok else str(result.errno)
    matched = None if step.expect is None else outcome == step.expect
    return StepOutcome(step=step, outcome=outcome, matched=matched, result=result)


def run_scenario(scn: Scenario) -> ScenarioRun:
    """Execute every step in order on a fresh Hypervisor (a failed step does not stop the run)."""
    hv = make_hypervisor(scn)
    run = ScenarioRun(scenario=scn)
    for step in scn.steps:
        run.outcomes.append(apply_step(hv, step))
    return run


def scenario_files(paths: list[str | Path]) -> list[Path]:
    """Expand FILE|DIR arguments: a directory gives its `*.toml` files, sorted."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.glob("*.toml"))
            if not found:
                raise ScenarioError(str(p), None, "no *.toml scenario files in this directory")
            files.extend(found)
        else:
            files.append(p)
    return files
