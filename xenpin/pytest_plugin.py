"""pytest plugin: `pytest --xenpin [PATH ...]` collects xenpin's models and proofs as test items.

Registered by the `pytest11` entry point; without `--xenpin` it changes nothing. With it, pytest's own
collection of PATH (files or directories) also yields:

- every hypercall scenario (`*.toml` with `rules`/`frames`): one item, `<file>::<scenario file stem>`, passing
  iff every step gives the result it expects; a failure lists the mismatched steps as `xenpin replay` shows them;
- every (kernel variant x property) of a variant file (`*.toml` with `platform`/`[expect]`):
  `<file>::<variant name>::<property>`, passing iff the verdict is the one the variant's `[expect]` gives
  (`vacuous` and `unknown` fail unless expected: a vacuous proof is no evidence); a failure is the
  counterexample with its replayed boot, or the notes that say why the verdict is vacuous or unknown;
- every theorem of a proof script (`*.py` defining `THEOREMS`): `<script>::<variant name>::<property>`.

Items are also matched by `-k` on `variant::property` and `script.py::variant::property`. Each item is proved
or replayed in its own process's solver (no state shared between items), so `pytest-xdist`'s `-n` can spread
them. With `--xenpin` and no PATH on the command line, the shipped models and proof scripts
(`xenpin.shipped`) are collected besides whatever pytest collects by default. A model file that does not
load is a collection error whose text is the loader's one line.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xenpin import shipped

_SCENARIO_LINES = (re.compile(r"^\s*rules\s*=\s*\"", re.M), re.compile(r"^\s*\[\[\s*step\s*\]\]", re.M))
_VARIANT_LINES = (re.compile(r"^\s*platform\s*=", re.M), re.compile(r"^\s*\[\s*(expect|code)\s*\]", re.M))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xenpin")
    group.addoption(
        "--xenpin",
        action="store_true",
        help="collect xenpin scenarios, (variant x property) proofs and proof-script theorems from the given"
        " paths (none given: the shipped models and proofs) as test items",
    )
    group.addoption(
        "--xenpin-rlimit",
        type=_rlimit,
        default=None,
        metavar="N",
        help="Z3 resource limit per solver call (400000000 or 4e8; default as xenpin prove)",
    )
    group.addoption(
        "--xenpin-timeout", type=float, default=None, metavar="S", help="wall-clock backstop per solver call"
    )


def _rlimit(text: str) -> int:
    """`--xenpin-rlimit`: the notation `xenpin prove --rlimit` takes."""
    import argparse

    from xenpin.cli.common import MAX_RLIMIT, InputError, whole_number

    try:
        return whole_number("--xenpin-rlimit", text, MAX_RLIMIT)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("xenpin", default=False))


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    # No PATH on the command line: pytest collects its testpaths or the current folder; add the shipped
    # models and proofs to that (a user's CI job `pytest --xenpin` checks what xenpin ships).
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [*config.args, str(shipped.KERNELS), str(shipped.SCENARIOS), str(shipped.PROOFS)]


# ------------------------------------------------------------------------------------------ telling files apart


def toml_kind(path: Path) -> str | None:
    """`scenario`, `variant`, or None (some other TOML file: not collected), by its keys -- or, if it is not
    valid TOML, by its lines or its folder (`scenarios`, `kernels`), so that a broken model file is reported."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    if text is not None:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            pass
        else:
            # a scenario names its rule set and has steps; a variant names its platform, or has both [code] and
            # [expect]: other TOML files (a linter's [[rules]], a release.toml) are left alone
            if isinstance(doc.get("rules"), str) and ("step" in doc or "frames" in doc):
                return "scenario"
            if "platform" in doc or (
                isinstance(doc.get("code"), dict) and isinstance(doc.get("expect"), dict)
            ):
                return "variant"
            return None
        if all(line.search(text) for line in _SCENARIO_LINES):
            return "scenario"
        if all(line.search(text) for line in _VARIANT_LINES):
            return "variant"
    return {"scenarios": "scenario", "kernels": "variant"}.get(path.parent.name)


def is_proof_script(path: Path) -> bool:
    """A `*.py` that states `THEOREMS` at its top level (not `_private.py`, not a conftest)."""
    if path.suffix != ".py" or path.name.startswith("_") or path.name == "conftest.py":
        return False
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError):
        return False
    except SyntaxError:  # a script that does not parse is reported if it names THEOREMS at all
        return "THEOREMS" in path.read_text(encoding="utf-8")
    for node in tree.body:  # an assignment to THEOREMS at the top level, not a docstring that mentions it
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "THEOREMS" for t in targets):
            return True
    return False


def _python_test_file(path: Path, parent: pytest.Collector) -> bool:
    """Would pytest's python plugin collect this file as a test module (`python_files`)?"""
    from _pytest.pathlib import fnmatch_ex

    return any(fnmatch_ex(pattern, path) for pattern in parent.config.getini("python_files"))


def _nodeid(path: Path, parent: pytest.Collector) -> str | None:
    """A shipped file's id starts at the package (`xenpin/models/kernels/3.0.toml`) wherever it is installed;
    other files keep pytest's own (None)."""
    try:
        rel = path.resolve().relative_to(shipped.PACKAGE.parent)
    except ValueError:
        return None
    try:
        path.resolve().relative_to(parent.session.config.rootpath.resolve())
    except ValueError:
        return rel.as_posix()
    return None  # inside the rootdir (a checkout): pytest's id is already short


def _file_node(cls: type[pytest.File], parent: pytest.Collector, path: Path) -> pytest.File:
    nodeid = _nodeid(path, parent)
    if nodeid is None:
        return cls.from_parent(parent, path=path)
    return cls.from_parent(parent, path=path, nodeid=nodeid)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not _enabled(parent.config):
        return None
    if file_path.suffix == ".toml":
        kind = toml_kind(file_path)
        if kind == "scenario":
            return _file_node(ScenarioFile, parent, file_path)
        if kind == "variant":
            return _file_node(VariantFile, parent, file_path)
        return None
    # a script named on the command line is collected by pytest's python plugin, which asks
    # pytest_pycollect_makemodule below; this path is for the scripts found in a folder
    if (
        file_path.suffix == ".py"
        and not _python_test_file(file_path, parent)
        and not parent.session.isinitpath(file_path)
        and is_proof_script(file_path)
    ):
        return _file_node(ProofScript, parent, file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A proof script given on the command line is ours, not a test module to import."""
    if (
        _enabled(parent.config)
        and not _python_test_file(module_path, parent)
        and is_proof_script(module_path)
    ):
        return _file_node(ProofScript, parent, module_path)
    return None


# ------------------------------------------------------------------------------------------ failures


class XenpinFailure(Exception):
    """An item's result differs from its expectation; `args[0]` is the report in the domain's terms."""


class _XenpinItem(pytest.Item):
    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, XenpinFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


# ------------------------------------------------------------------------------------------ scenarios


class ScenarioFile(pytest.File):
    """A hypercall scenario file: one item."""

    def collect(self) -> Iterator[pytest.Item]:
        from xenpin.xen.scenario import ScenarioError, load_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        item = ScenarioItem.from_parent(self, name=self.path.stem, scenario=scenario)
        item.extra_keyword_matches.update({"scenario", f"scenario {self.path.stem}"})
        yield item


class ScenarioItem(_XenpinItem):
    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from xenpin.xen.scenario import run_scenario

        run = run_scenario(self.scenario)
        if not run.passed:
            raise XenpinFailure(scenario_report(run))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"xenpin scenario {self.scenario.name}"


def scenario_report(run: Any) -> str:
    """The mismatched steps of a scenario run, as `xenpin replay` says them, with Xen's lines."""
    from xenpin.report.replay import describe_args

    scn = run.scenario
    out = [
        f"scenario {scn.name!r} ({scn.path}, rules {scn.rules}, {scn.frames} frames):"
        f" {run.mismatched} of {len(run.outcomes)} steps differ from their expect",
    ]
    for o in run.outcomes:
        if o.matched is not False:
            continue
        step = o.step
        out.append(
            f"  step {step.index} ({scn.path}:{step.line}): {step.op} {describe_args(step)}".rstrip()
            + f": got {o.outcome}, expected {step.expect}"
        )
        out.extend(f"      (XEN) {line}" for line in o.log)
        reason = getattr(o.result, "reason", "") if o.result is not None else ""
        if reason and not o.log:
            out.append(f"      ({reason})")
        out.extend(f"      violated {v.invariant}: {v.message}" for v in o.violations)
    out.append(f"replay it: xenpin replay {scn.path}")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ proofs


_LIMIT_OPTIONS = (("rlimit", "xenpin_rlimit"), ("timeout", "xenpin_timeout"))  # xenpin prove's, the plugin's


def _limits(config: pytest.Config) -> dict[str, Any]:
    from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

    return {
        "rlimit": config.getoption("xenpin_rlimit", default=None) or DEFAULT_RLIMIT,
        "timeout_s": config.getoption("xenpin_timeout", default=None) or DEFAULT_TIMEOUT_S,
    }


def _limit_flags(config: pytest.Config) -> str:
    """The limits given to the plugin, as `xenpin prove` flags (`--rlimit 1`), for a failure's replay line."""
    return "".join(
        f" --{flag} {value}"
        for flag, option in _LIMIT_OPTIONS
        if (value := config.getoption(option, default=None)) is not None
    )


class PropertyItem(_XenpinItem):
    """One (variant, property): proved in this process (one worker), as `xenpin prove --jobs 1` does."""

    def __init__(self, *, variant: Any, prop: str, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self.prop = prop
        self.label = label  # `variant::property` or `script.py::variant::property`
        self.extra_keyword_matches.update({label, f"{variant.name}::{prop}"})

    def runtest(self) -> None:
        from xenpin.symbolic.batch import prove_many

        verdict = prove_many([(self.variant, self.prop)], workers=1, **_limits(self.config))[0]
        if not verdict.as_expected:
            raise XenpinFailure(proof_report(verdict, _limit_flags(self.config)))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"xenpin {self.label}"


def proof_report(verdict: Any, limits: str = "") -> str:
    """One verdict as `xenpin prove` shows it (the counterexample, its replayed boot) and how to replay it."""
    from xenpin.report.prove import render_text
    from xenpin.symbolic import placement

    v = verdict.variant
    head = f"{v.name} {verdict.label}: {verdict.verdict}, expected {verdict.expected} ({v.path})"
    out = [head, render_text([verdict], verdict.seconds)]
    w = verdict.witness
    if w is not None and w.xen:
        from xenpin.linux.layout import DEFAULT_KERNEL_BYTES, DEFAULT_RAMDISK_BYTES

        sizes = ""
        if w["kernel"] << 12 != DEFAULT_KERNEL_BYTES:
            sizes += f" --kernel-size {w['kernel'] << 12:#x}"
        if w["ramdisk"] << 12 != DEFAULT_RAMDISK_BYTES:
            sizes += f" --ramdisk-size {w['ramdisk'] << 12:#x}"
        starts = placement.pgt_buf_start(dict(w.machine))  # a P@any witness: where it put the buffers
        if starts is not None:
            sizes += " --pgt-buf-start " + ",".join(f"{s << 12:#x}" for s in starts if s)
        out.append(f"replay it: xenpin boot {v.path} --mem {w.mem_bytes:#x}{sizes}")
    if w is not None and verdict.placement == "rule":  # explore takes P only
        out.append(f"explore it: xenpin explore {v.path} {verdict.prop}")
    out.append(f"prove it again: xenpin prove {v.path} --property {verdict.label}{limits}")
    return "\n".join(out)


class VariantFile(pytest.File):
    """A kernel variant file: one item per property."""

    def collect(self) -> Iterator[pytest.Node]:
        from xenpin.linux.variant import VariantError, load_variant

        try:
            variant = load_variant(self.path)
        except VariantError as exc:
            raise self.CollectError(str(exc)) from None
        yield VariantNode.from_parent(self, name=variant.name, jobs=[(variant, p) for p in _properties()])


def _properties() -> tuple[str, ...]:
    from xenpin.linux.variant import PROPERTIES

    return PROPERTIES


class VariantNode(pytest.Collector):
    """The properties of one variant, under the variant's name (`2.6.39-rc1::no_rw_alias`)."""

    def __init__(self, *, jobs: list[tuple[Any, str]], script: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs = jobs
        self.script = script

    def collect(self) -> Iterator[pytest.Item]:
        seen: dict[str, int] = {}
        for variant, prop in self.jobs:
            seen[prop] = seen.get(prop, 0) + 1
            name = prop if seen[prop] == 1 else f"{prop}[{seen[prop]}]"  # a theorem stated twice
            label = f"{variant.name}::{prop}"
            yield PropertyItem.from_parent(
                self,
                name=name,
                variant=variant,
                prop=prop,
                label=f"{self.script}::{label}" if self.script else label,
            )


class ProofScript(pytest.File):
    """A proof script: one item per theorem, grouped by variant name, in the order they are stated."""

    def collect(self) -> Iterator[pytest.Node]:
        from xenpin.linux.variant import VariantError
        from xenpin.symbolic.theorems import load_script

        try:
            jobs = [(th.load(), th.prop) for th in load_script(self.path)]
        except (VariantError, ValueError) as exc:
            raise self.CollectError(
                str(exc).splitlines()[0] if str(exc) else f"{self.path}: cannot load"
            ) from None
        groups: dict[str, list[tuple[Any, str]]] = {}
        for variant, prop in jobs:
            groups.setdefault(variant.name, []).append((variant, prop))
        for name, group in groups.items():
            yield VariantNode.from_parent(self, name=name, jobs=group, script=self.path.name)
