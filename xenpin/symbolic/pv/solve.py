"""One solver call of the PV rules' obligations: a fresh Z3 solver, the limits of `xenpin.symbolic.solver`.

The same contract as `xenpin.symbolic.solver.check` (a fresh solver per call, the deterministic `rlimit`, the
wall-clock backstop, `proved` only from `unsat`, an interrupt raised as KeyboardInterrupt), with one difference:
the solver is a fixed bit-vector pipeline (`PIPELINE`) rather than Z3's `QF_BV` default strategy. The step's
terms are long chains of `If`s over the frames guarded by equalities of a symbolic mfn with constants;
simplifying, propagating values and eliminating unconstrained terms before bit-blasting leaves a SAT problem
that Z3's SAT solver decides 2-3 times faster than the default strategy does (measured on the slowest
obligations of the matrix; `solve-eqs` was measured too and left out: it made them slower). Each step is an
equivalence-preserving rewrite, or (`elim-uncnstr`) a satisfiability-preserving one whose model converter
rebuilds a model of the original formula, so `sat` / `unsat` mean what they mean for the formula as built, and
a `sat` answer's model is one of it (every counterexample is evaluated on it and replayed besides).
"""

from __future__ import annotations

import z3

from xenpin.symbolic import solver
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S, SolverAnswer

PIPELINE = ("simplify", "propagate-values", "elim-uncnstr", "bit-blast", "sat")


def pipeline_solver() -> z3.Solver:
    """A fresh solver running `PIPELINE` (in the current Z3 context)."""
    return solver.fresh_solver(PIPELINE)


def check(
    formula: z3.BoolRef, *, rlimit: int = DEFAULT_RLIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SolverAnswer:
    """Decide `formula` in a fresh solver running `PIPELINE` (`xenpin.symbolic.solver.check`'s contract)."""
    return solver.check(formula, rlimit=rlimit, timeout_s=timeout_s, tactics=PIPELINE)


__all__ = ["PIPELINE", "check", "pipeline_solver"]
