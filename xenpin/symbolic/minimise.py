"""Smallest counterexamples: lexicographic minimisation of bit-vector terms over one satisfiable obligation.

Bit by bit from the most significant: a bit the current model already has at 0 stays 0 at no cost; a bit at 1
is asked once ("can it be 0, with the bits above as chosen?"), as an assumption in one incremental QF_BV solver
of the minimisation's own, so the clauses learnt for one bit serve the next. That is one solver call per set
bit of the answer instead of a fresh solver per bisection step: about 10 calls for a 2**18-page witness where
bisection over the domain takes 30, each cheaper. A call that gives up leaves that bit at its model's value:
the witness is still a model, only perhaps not the least, and the result says so.

Both narrow the formula's constants to the bits its bounds leave them first (`narrow.py`), as `solver.check`
does, and hand back models widened to the formula's own constants.

`least` asks the first question too ("is the formula satisfiable at all?") in that same solver, so a formula
whose model is only wanted to be minimised is bit-blasted and solved once rather than twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from xenpin.symbolic.narrow import narrow
from xenpin.symbolic.solver import SolverAnswer, answer_of, configure, raise_if_interrupted


@dataclass(frozen=True)
class Minimum:
    values: tuple[int, ...]  # one per term, in order
    model: z3.ModelRef  # a model with exactly these values
    minimal: bool  # False if a solver call gave up on the way
    checks: int


def lexicographic_min(
    formula: z3.BoolRef, terms: list[z3.BitVecRef], model: z3.ModelRef, *, rlimit: int, timeout_s: float
) -> Minimum:
    """The least assignment of `terms` (the first most significant) that satisfies `formula`; `model` is one."""
    narrowing = narrow(formula)
    solver = configure(z3.SolverFor("QF_BV"), rlimit=rlimit, timeout_s=timeout_s)
    solver.add(narrowing.formula)
    found = _descend(solver, [narrowing.term(t) for t in terms], narrowing.narrowed_model(model))
    narrowing.widen(found.model)
    return found


def least(
    formula: z3.BoolRef, terms: list[z3.BitVecRef], *, rlimit: int, timeout_s: float
) -> tuple[SolverAnswer, Minimum | None]:
    """Is `formula` satisfiable (the answer, with its first model), and if so its least assignment of `terms`,
    all in one solver: each call (the first and every bit's) with its own `rlimit` and timeout."""
    narrowing = narrow(formula)
    solver = configure(z3.SolverFor("QF_BV"), rlimit=rlimit, timeout_s=timeout_s)
    solver.add(narrowing.formula)
    answer = answer_of(solver)
    if answer.status != "sat":
        return answer, None
    found = _descend(solver, [narrowing.term(t) for t in terms], answer.model)
    narrowing.widen(answer.model)
    narrowing.widen(found.model)
    return answer, found


def _descend(solver: z3.Solver, terms: list[z3.BitVecRef], model: z3.ModelRef) -> Minimum:
    """Bit by bit from the most significant (module docstring), in `solver`, which holds the formula."""
    minimal, checks = True, 0
    for term in terms:
        value = model.eval(term, model_completion=True).as_long()
        for i in reversed(range(term.size())):
            bit = z3.Extract(i, i, term)
            if (value >> i) & 1:
                checks += 1
                answer = solver.check(bit == 0)
                if answer == z3.sat:
                    model = solver.model()
                    value = model.eval(term, model_completion=True).as_long()
                elif answer == z3.unknown:
                    raise_if_interrupted(solver.reason_unknown())  # Ctrl-C: no result, not a lesser one
                    minimal = False
            solver.add(bit == (value >> i) & 1)
    values = tuple(model.eval(t, model_completion=True).as_long() for t in terms)
    return Minimum(values, model, minimal, checks)
