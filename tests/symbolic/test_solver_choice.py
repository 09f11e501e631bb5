"""`--solver z3|cvc5|both` decide differently: z3 alone, cvc5 alone (its own model starts the witness), or both
agreeing; the report names who decided."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import z3

from xenpin import shipped
from xenpin.cli import main
from xenpin.linux.variant import load_variant
from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic.prove import prove_property
from xenpin.symbolic.solver import SolverAnswer, check_cvc5, model_from_values, solver_version

pytest.importorskip("cvc5")

RC6 = load_variant(shipped.KERNELS / "2.6.39-rc6.toml")  # spare_writable: a counterexample at 64 MiB
V31 = load_variant(shipped.KERNELS / "3.1.toml")  # spare_freed: proved


@pytest.fixture(scope="module", autouse=True)
def cvc5_asked_once() -> Iterator[None]:
    """cvc5's answer to a formula, kept for this module's later `--solver cvc5|both` runs of the same
    obligation (z3 hash-conses: the same obligation is the same term, and the kept term keeps its id unique)."""
    real, answers = prove_mod.check_cvc5, {}

    def check_cvc5(formula: z3.BoolRef, timeout_s: float) -> SolverAnswer:
        key = (formula.get_id(), timeout_s)
        if key not in answers:
            answers[key] = (formula, real(formula, timeout_s=timeout_s))
        return answers[key][1]

    prove_mod.check_cvc5 = check_cvc5
    yield
    prove_mod.check_cvc5 = real


def test_the_report_names_who_decided() -> None:
    z3_only, cvc5_only, both = (solver_version(s) for s in ("z3", "cvc5", "both"))
    assert "cvc5" not in z3_only
    assert cvc5_only.startswith("cvc5 ") and "decides" in cvc5_only and "minimises" in cvc5_only
    assert "z3" in both and "cvc5" in both and "must agree" in both
    assert len({z3_only, cvc5_only, both}) == 3


def test_cvc5_unsat_where_z3_is_sat_cvc5_follows_cvc5_both_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prove_mod, "check_cvc5", lambda formula, timeout_s: SolverAnswer("unsat", None, 0.0))
    for cache in ("_LEMMA_VERDICTS", "_PREMISE_ANSWERS"):  # keep the made-up answers out of later tests
        monkeypatch.setattr(prove_mod, cache, {})
    assert prove_property(RC6, "spare_writable", solver="z3").verdict == "counterexample"
    assert prove_property(RC6, "spare_writable", solver="cvc5").verdict == "proved"
    both = prove_property(RC6, "spare_writable", solver="both")
    assert both.verdict == "unknown"
    assert any("solvers disagree: z3 sat, cvc5 unsat" in n for n in both.notes), both.notes


def test_rlimit_binds_z3_only_so_cvc5_decides_where_z3_gives_up() -> None:
    assert prove_property(V31, "spare_freed", solver="z3", rlimit=1000).verdict == "unknown"
    assert prove_property(V31, "spare_freed", solver="cvc5", rlimit=1000).verdict == "proved"
    assert prove_property(V31, "spare_freed", solver="both", rlimit=1000).verdict == "unknown"


def test_a_cvc5_counterexample_starts_from_cvc5s_model_and_replays() -> None:
    z3_verdict = prove_property(RC6, "spare_writable", solver="z3")
    v = prove_property(RC6, "spare_writable", solver="cvc5")
    assert v.verdict == "counterexample" and v.replay is not None
    assert v.witness == z3_verdict.witness  # minimised to the same least machine


def test_cvc5_model_is_checked_in_z3() -> None:
    x = z3.BitVec("x", 64)
    formula = z3.UGT(x, 100)
    answer = check_cvc5(formula, timeout_s=10)
    assert answer.status == "sat" and answer.values and answer.values[0][:2] == ("x", 64)
    good = model_from_values(formula, answer)
    assert good.status == "sat" and good.model.eval(x).as_long() == answer.values[0][2]
    wrong = SolverAnswer("sat", None, 0.0, values=(("x", 64, 5),))
    assert model_from_values(formula, wrong).status == "unknown"
    assert "no model" in model_from_values(formula, SolverAnswer("sat", None, 0.0)).reason


def test_cli_summary_line_names_the_solver(capsys: pytest.CaptureFixture[str]) -> None:
    lines = {}
    for solver in ("z3", "cvc5", "both"):
        argv = ["prove", str(V31.path), "--property", "spare_freed", "--solver", solver, "--jobs", "1"]
        assert main(argv) == 0
        lines[solver] = capsys.readouterr().out.splitlines()[-1]
    assert "must agree" in lines["both"] and "cvc5" in lines["cvc5"] and "cvc5" not in lines["z3"]
