"""Running one obligation: a fresh Z3 solver, a deterministic resource limit, a wall-clock backstop.

`proved` only from `unsat`; `sat` gives a model to minimise and replay; anything else (`unknown`, a limit hit)
is `unknown` with Z3's reason. The resource limit (`rlimit`) makes runs repeatable across machines; the timeout
only guards against a limit set too high. A call cut short by an interrupt (Ctrl-C, SIGTERM) is no verdict at
all: it raises KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

import z3

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


def check(
    formula: z3.BoolRef, *, rlimit: int = DEFAULT_RLIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SolverAnswer:
    """Decide `formula` in a fresh solver."""
    solver = configure(z3.SolverFor("QF_BV"), rlimit=rlimit, timeout_s=timeout_s)
    solver.add(formula)
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
    """What decided the obligations: `z3 4.x`, or with `--solver cvc5|both` also `cvc5 1.x`."""
    text = f"z3 {z3.get_version_string()}"
    if solver != "z3":
        import cvc5

        text += f" + cvc5 {cvc5.__version__}" if hasattr(cvc5, "__version__") else " + cvc5"
    return text


def check_cvc5(formula: z3.BoolRef, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> SolverAnswer:
    """Decide the same obligation with cvc5 (the SMT-LIB 2 text z3 writes), for `--solver cvc5|both`.

    Only the sat/unsat answer is used: witnesses and minimisation stay with z3, so a disagreement between the two
    solvers is reported, never papered over.
    """
    import cvc5  # an optional dependency: `pip install 'xenpin[cvc5]'`

    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("tlimit-per", str(max(1, int(timeout_s * 1000))))
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
    if answer in ("sat", "unsat"):
        return SolverAnswer(answer, None, elapsed)
    return SolverAnswer("unknown", None, elapsed, f"cvc5: {answer or 'no answer'}")


def cvc5_available() -> bool:
    try:
        import cvc5  # noqa: F401
    except ImportError:
        return False
    return True
