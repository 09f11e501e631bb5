"""Running one obligation: a fresh Z3 solver, a deterministic resource limit, a wall-clock backstop.

`proved` only from `unsat`; `sat` gives a model to minimise and replay; anything else (`unknown`, a limit hit)
is `unknown` with Z3's reason. The resource limit (`rlimit`) makes runs repeatable across machines; the timeout
only guards against a limit set too high.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import z3

DEFAULT_RLIMIT = 400_000_000
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SolverAnswer:
    status: str  # "unsat" | "sat" | "unknown"
    model: z3.ModelRef | None
    seconds: float
    reason: str = ""


def check(
    formula: z3.BoolRef, *, rlimit: int = DEFAULT_RLIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SolverAnswer:
    """Decide `formula` in a fresh solver."""
    solver = z3.SolverFor("QF_BV")
    solver.set("rlimit", rlimit)
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    solver.add(formula)
    t = time.perf_counter()
    result = solver.check()
    elapsed = time.perf_counter() - t
    if result == z3.unsat:
        return SolverAnswer("unsat", None, elapsed)
    if result == z3.sat:
        return SolverAnswer("sat", solver.model(), elapsed)
    return SolverAnswer("unknown", None, elapsed, solver.reason_unknown())


def smt2(formula: z3.BoolRef) -> str:
    """The obligation as an SMT-LIB 2 script (`--smt2`)."""
    solver = z3.SolverFor("QF_BV")
    solver.add(formula)
    return solver.to_smt2()


def solver_version() -> str:
    return z3.get_version_string()
