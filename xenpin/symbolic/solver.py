"""Running one obligation: a fresh Z3 solver, a deterministic resource limit, a wall-clock backstop; or cvc5.

`proved` only from `unsat`; `sat` gives a model to minimise and replay; anything else (`unknown`, a limit hit)
is `unknown` with Z3's reason. The resource limit (`rlimit`) makes runs repeatable across machines; the timeout
only guards against a limit set too high. cvc5 (`--solver cvc5|both`) reads the SMT-LIB 2 text of the same
formula and is bounded by the timeout alone; its model of a `sat` answer is handed back for the witness.
A call cut short by an interrupt (Ctrl-C, SIGTERM) is no verdict at all: it raises KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

import z3

from xenpin.symbolic.narrow import narrow

DEFAULT_RLIMIT = 400_000_000
DEFAULT_TIMEOUT_S = 60.0

# z3's reasons for a call stopped from outside (its own Ctrl-C handler, `Context.interrupt()`). Not "canceled":
# z3 gives that one for an exhausted rlimit too.
INTERRUPTED_REASONS = ("interrupted from keyboard", "interrupted")

# Set by `xenpin.cli.signals` when SIGINT/SIGTERM arrives: whatever z3 then answers `unknown` was interrupted.
interrupt_requested = threading.Event()


def raise_if_interrupted(reason: str) -> None:
    """KeyboardInterrupt if z3's `reason` for `unknown`, or a signal, says the call was interrupted rather than
    decided."""
    if reason in INTERRUPTED_REASONS or interrupt_requested.is_set():
        raise KeyboardInterrupt


@dataclass(frozen=True)
class SolverAnswer:
    status: str  # "unsat" | "sat" | "unknown"
    model: z3.ModelRef | None
    seconds: float
    reason: str = ""
    # cvc5's model of a `sat` answer: (symbol, bit width or 0 for a Bool, value) per declared constant
    values: tuple[tuple[str, int, int], ...] = ()


def configure(solver: z3.Solver, *, rlimit: int, timeout_s: float) -> z3.Solver:
    """The limits of every solver call: `rlimit` (deterministic, per call) and the wall-clock backstop."""
    solver.set("rlimit", rlimit)
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    solver.set("ctrl_c", _z3_catches_ctrl_c())
    return solver


def _z3_catches_ctrl_c() -> bool:
    """Whether z3 should catch SIGINT during a call (turning it into `unknown`, which `check` then raises as
    KeyboardInterrupt): only where Python's default handler is in place. `xenpin.cli.signals` handles SIGINT
    itself and interrupts the call; worker processes ignore SIGINT and are stopped by their parent."""
    return signal.getsignal(signal.SIGINT) is signal.default_int_handler


# The pipeline of a one-shot `check`: word-level simplification, then the SAT solver on the bit-blasted formula.
# Measured on the shipped obligations, lemmas and non-vacuity checks (same answers, same process, interleaved),
# it takes 0.7-0.9x the CPU of `SolverFor("QF_BV")`'s incremental SAT solver, whose own preprocessing is meant for
# many checks of one solver (`minimise.py` keeps that one).
ONE_SHOT_TACTICS = ("simplify", "propagate-values", "solve-eqs", "simplify", "bit-blast", "sat")


def fresh_solver(tactics: tuple[str, ...] = ONE_SHOT_TACTICS) -> z3.Solver:
    """A new solver for one question (QF_BV, by `tactics`), without limits yet (`configure`)."""
    return z3.Then(*tactics).solver()


def check(
    formula: z3.BoolRef,
    *,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    tactics: tuple[str, ...] = ONE_SHOT_TACTICS,
) -> SolverAnswer:
    """Decide `formula`, its constants narrowed to the bits its bounds leave them (`narrow.py`), in a fresh
    solver running `tactics` (a `sat` answer's model, widened back to the formula's constants: evaluate it with
    `model_completion`, since a tactic may have eliminated a constant)."""
    narrowing = narrow(formula)
    solver = configure(fresh_solver(tactics), rlimit=rlimit, timeout_s=timeout_s)
    solver.add(narrowing.formula)
    answer = answer_of(solver)
    if answer.model is not None:
        narrowing.widen(answer.model)
    return answer


def answer_of(solver: z3.Solver) -> SolverAnswer:
    """`solver.check()` (limits already set) as an answer, timed; an interrupt is raised, not `unknown`."""
    t = time.perf_counter()
    result = solver.check()
    elapsed = time.perf_counter() - t
    if result == z3.unsat:
        return SolverAnswer("unsat", None, elapsed)
    if result == z3.sat:
        return SolverAnswer("sat", solver.model(), elapsed)
    reason = solver.reason_unknown()
    raise_if_interrupted(reason)
    return SolverAnswer("unknown", None, elapsed, reason)


def smt2(formula: z3.BoolRef) -> str:
    """The obligation as an SMT-LIB 2 script (`--smt2`)."""
    solver = z3.SolverFor("QF_BV")
    solver.add(formula)
    text = solver.to_smt2()
    return text if "(set-logic" in text else "(set-logic QF_BV)\n" + text


def solver_version(solver: str = "z3") -> str:
    """Who decided the obligations (`--solver`): `z3 4.x`; `cvc5 1.x` (with the z3 that minimises its
    counterexamples); or both, which had to agree."""
    z3_text = f"z3 {z3.get_version_string()}"
    if solver == "z3":
        return z3_text
    from importlib.metadata import PackageNotFoundError, version

    try:
        cvc5_text = f"cvc5 {version('cvc5')}"
    except PackageNotFoundError:
        cvc5_text = "cvc5"
    if solver == "cvc5":
        return f"{cvc5_text} decides ({z3_text} minimises its counterexamples)"
    return f"{z3_text} and {cvc5_text}, which must agree"


def check_cvc5(formula: z3.BoolRef, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> SolverAnswer:
    """Decide the same obligation with cvc5 (the SMT-LIB 2 text z3 writes), for `--solver cvc5|both`, within
    the wall-clock limit (cvc5 has no resource limit in z3's units). A `sat` answer carries cvc5's model as
    `values`, from which `model_from_values` makes the witness's first model."""
    import cvc5  # an optional dependency: `pip install 'xenpin[cvc5]'`

    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("tlimit-per", str(max(1, int(timeout_s * 1000))))
    solver.setOption("produce-models", "true")
    parser = cvc5.InputParser(solver)
    parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, smt2(formula), "xenpin-obligation")
    symbols = parser.getSymbolManager()
    answer = ""
    t = time.perf_counter()
    while True:
        command = parser.nextCommand()
        if command.isNull():
            break
        answer = command.invoke(solver, symbols).strip() or answer
    elapsed = time.perf_counter() - t
    if answer == "sat":
        values = []
        for term in symbols.getDeclaredTerms():
            value = solver.getValue(term)
            if value.isBitVectorValue():
                values.append(
                    (term.getSymbol(), term.getSort().getBitVectorSize(), int(value.getBitVectorValue(10)))
                )
            elif value.isBooleanValue():
                values.append((term.getSymbol(), 0, int(value.getBooleanValue())))
        return SolverAnswer("sat", None, elapsed, values=tuple(values))
    if answer == "unsat":
        return SolverAnswer("unsat", None, elapsed)
    return SolverAnswer("unknown", None, elapsed, f"cvc5: {answer or 'no answer'}")


def model_from_values(
    formula: z3.BoolRef,
    answer: SolverAnswer,
    *,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SolverAnswer:
    """cvc5's `sat` answer with a z3 model of it, for minimising and replaying: z3 is not asked whether
    `formula` holds, only to evaluate it with every constant fixed to cvc5's value. `unknown` if cvc5 gave no
    model, or its model does not satisfy `formula` (a disagreement between the solvers)."""
    if not answer.values:
        return SolverAnswer(
            "unknown", None, answer.seconds, "cvc5: sat, but no model to start a witness from"
        )
    fixed = [
        (z3.Bool(name) == bool(value)) if width == 0 else (z3.BitVec(name, width) == value)
        for name, width, value in answer.values
    ]
    own = check(z3.And(formula, *fixed), rlimit=rlimit, timeout_s=timeout_s)
    if own.status != "sat":
        return SolverAnswer("unknown", None, answer.seconds + own.seconds,
                            f"cvc5: sat, but its model is {own.status} for the obligation in z3")  # fmt: skip
    return SolverAnswer("sat", own.model, answer.seconds + own.seconds, values=answer.values)


def cvc5_available() -> bool:
    try:
        import cvc5  # noqa: F401
    except ImportError:
        return False
    return True
