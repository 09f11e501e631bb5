"""xenpin.strategies as a user would use it: property tests over their own variant and scenario programs."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenpin import shipped
from xenpin import strategies as xst
from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig
from xenpin.linux.policy import evaluate, parse_policy, unparse
from xenpin.linux.variant import BUFFER_VARS, READONLY_VARS, load_variant
from xenpin.xen.invariants import check_invariants
from xenpin.xen.scenario import make_hypervisor, parse_scenario, run_scenario

# "my" variant: a copy of 3.1 as a user would keep in their own repository
MINE = load_variant(shipped.KERNELS / "3.1.toml")
_quick = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_quick
@given(xst.domu_configs(max_nr=(1 << 30) >> 12))
def test_my_variant_boots_every_generated_domu(config: BootConfig) -> None:
    assert config.role == "domU" and config.mem_bytes % 4096 == 0
    result = boot(MINE, config)
    assert result.outcome == "ok", (config, result.failure)


@_quick
@given(xst.mutants([MINE]))
def test_mutants_keep_the_policy_language(v) -> None:
    assert v.name == "3.1*"
    for key, variables in (("readonly", READONLY_VARS), ("reserve", BUFFER_VARS), ("writable", BUFFER_VARS)):
        assert parse_policy(v.sources[key], variables) == getattr(v, key)
    assert v.expect == MINE.expect


@settings(max_examples=30, deadline=None)
@given(xst.policy_exprs(), xst.policy_envs())
def test_generated_expressions_print_and_read_back(expr, env) -> None:
    from xenpin.linux.policy import parse_expr

    assert parse_expr(unparse(expr)) == expr
    evaluate(expr, env)  # every generated expression is well-typed for every env


@settings(max_examples=20, deadline=None)
@given(xst.e820_maps())
def test_sanitized_maps_are_sorted_and_disjoint(e820) -> None:
    e820.sanitize()
    for x, y in zip(e820.map, e820.map[1:], strict=False):
        assert x.end <= y.addr and x.size > 0


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_modern_xen_keeps_its_invariants_on_any_program(data) -> None:
    text = data.draw(xst.scenario_texts(rules="modern", frames=6, max_steps=15))
    scenario = parse_scenario(text, "<generated>")  # the text is a valid scenario file
    run = run_scenario(scenario)
    assert len(run.outcomes) == len(scenario.steps)
    assert all(o.outcome == "ok" for o in run.outcomes if o.step.op == "check"), text
    hv = make_hypervisor(scenario)
    for step in scenario.steps:
        from xenpin.xen.scenario import apply_step

        apply_step(hv, step)
        assert check_invariants(hv) == []


@settings(max_examples=10, deadline=None)
@given(xst.scenario_programs(rules="xen-4.1", frames=4))
def test_scenario_programs_run(scenario) -> None:
    assert scenario.rules == "xen-4.1" and scenario.frames == 4
    assert all(o.matched is None for o in run_scenario(scenario).outcomes)  # no expects: nothing to match


def test_without_hypothesis_the_import_error_says_what_to_install(tmp_path) -> None:
    blocker = tmp_path / "hypothesis.py"
    blocker.write_text("raise ImportError('No module named hypothesis')\n")
    code = "import xenpin.strategies"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "xenpin.strategies needs hypothesis" in done.stderr and "pip install" in done.stderr
