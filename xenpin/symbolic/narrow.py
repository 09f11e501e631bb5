"""Narrowing a formula's free bit-vector constants to the bits its own bounds leave them, before bit-blasting.

The obligations bound every machine parameter at the top level (`nr <= 2**25` pages, `kernel <= 32768`, ...),
but a 64-bit constant is bit-blasted as 64 free bits all the same, and the SAT solver has to learn for itself
that the high ones are 0 through every adder, multiplier and divider they feed. Here a constant `x` of width `w`
that the formula bounds by `x <= c` in a top-level conjunct is replaced by `ZeroExt(w - k, x')`, `x'` a fresh
constant of `k = c.bit_length()` bits. Every term stays at its real width (the arithmetic is still 64-bit and
wraps where the kernel's does); only the constants' impossible values are gone.

Sound both ways: a top-level conjunct holds in every model, so every model of the formula has `x < 2**k` and is
a model of the narrowed one (with `x'` the low bits of `x`); a model of the narrowed one is a model of the
formula with `x = ZeroExt(x')` (`Narrowing.widen`). So both are `sat` or both `unsat`, and `unsat` of the
narrowed formula proves the original.

Bounds come from top-level conjuncts comparing a constant with a numeral: `x <= c`, `x < c`, `c >= x`, `c > x`
(unsigned, and their negations `not (x > c)`, ...), `x == c` and `Extract(w-1, k, x) == 0`. Those are the
domain's bounds on the machine's parameters. Bounds that follow from other terms (`pfn < nr`) are not used:
measured, narrowing `pfn` by them made some obligations 10-20x slower, the SAT solver losing the relation
between `pfn` and the terms that bound it. Measured on the 631 one-shot checks of `xenpin prove` (z3 5.4, the
one-shot pipeline, best of 2 each, interleaved): 0.71x the solver time, no check more than 0.2 s slower; z3's
own `reduce-bv-size` tactic, which looks for such bounds, gave 0.9x on 3.0's obligations.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3


@dataclass(frozen=True)
class Narrowing:
    formula: z3.BoolRef  # the narrowed formula
    # per narrowed constant: (x, x' or None when x can only be 0, x's replacement ZeroExt(w - k, x'))
    parts: tuple[tuple[z3.BitVecRef, z3.BitVecRef | None, z3.BitVecRef], ...]

    def term(self, t: z3.ExprRef) -> z3.ExprRef:
        """`t` over the narrowed constants."""
        return z3.substitute(t, *((x, r) for x, _, r in self.parts)) if self.parts else t

    def widen(self, model: z3.ModelRef) -> z3.ModelRef:
        """`model` (of the narrowed formula) with a value for each original constant too, so that terms over
        them evaluate as in a model of the original formula."""
        for x, _, replacement in self.parts:
            model.update_value(x, model.eval(replacement, model_completion=True))
        return model

    def narrowed_model(self, model: z3.ModelRef) -> z3.ModelRef:
        """`model` (of the original formula) with a value for each narrowed constant too: a model of the
        narrowed formula."""
        for x, low, _ in self.parts:
            if low is not None:
                value = model.eval(x, model_completion=True).as_long()
                model.update_value(low, z3.BitVecVal(value & ((1 << low.size()) - 1), low.size()))
        return model


def narrow(formula: z3.BoolRef) -> Narrowing:
    """`formula` with each free bit-vector constant its top-level conjuncts bound below `2**k` by a numeral
    made `k` bits wide (zero-extended back to its width)."""
    constants: dict[int, z3.BitVecRef] = {}  # by id: z3's `==` on terms builds a formula
    bounds: dict[int, int] = {}
    for c in _conjuncts(formula):
        for x, bound in _bounds_in(c):
            key = x.get_id()
            constants[key] = x
            bounds[key] = min(bound, bounds.get(key, bound))
    parts = []
    for key, bound in bounds.items():
        x = constants[key]
        k, w = bound.bit_length(), x.size()
        if k >= w:
            continue
        low = z3.BitVec(f"{x}.bits{k}", k) if k else None
        parts.append((x, low, z3.ZeroExt(w - k, low) if k else z3.BitVecVal(0, w)))
    if not parts:
        return Narrowing(formula, ())
    return Narrowing(z3.substitute(formula, *((x, r) for x, _, r in parts)), tuple(parts))


def _conjuncts(formula: z3.BoolRef) -> list[z3.BoolRef]:
    """The top-level conjuncts of `formula` (through nested `And` and `Not(Or ...)`), each as it stands."""
    out, todo, seen = [], [formula], set()
    while todo:
        f = todo.pop()
        if f.get_id() in seen:
            continue
        seen.add(f.get_id())
        if z3.is_and(f):
            todo.extend(f.children())
        elif z3.is_implies(f) and z3.is_true(f.arg(0)):
            todo.append(f.arg(1))
        elif z3.is_not(f) and z3.is_or(f.arg(0)):
            todo.extend(z3.Not(g) for g in f.arg(0).children())
        else:
            out.append(f)
    return out


def _is_free(t: z3.ExprRef) -> bool:
    return z3.is_bv(t) and z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED


# (i, j, strict): arg i <= arg j (< if strict), for a comparison by its kind, as it stands or negated
_LE = {z3.Z3_OP_ULEQ: (0, 1, False), z3.Z3_OP_ULT: (0, 1, True),
       z3.Z3_OP_UGEQ: (1, 0, False), z3.Z3_OP_UGT: (1, 0, True)}  # fmt: skip
_NOT_LE = {z3.Z3_OP_UGT: (0, 1, False), z3.Z3_OP_UGEQ: (0, 1, True),
           z3.Z3_OP_ULT: (1, 0, False), z3.Z3_OP_ULEQ: (1, 0, True)}  # fmt: skip


def _bounds_in(c: z3.BoolRef) -> list[tuple[z3.BitVecRef, int]]:
    """The upper bounds conjunct `c` puts on free constants by numerals."""
    negated = z3.is_not(c)
    atom = c.arg(0) if negated else c
    if not z3.is_app(atom) or atom.num_args() != 2:
        return []
    kind = atom.decl().kind()
    if kind == z3.Z3_OP_EQ and not negated:
        found = []
        for x, t in ((atom.arg(0), atom.arg(1)), (atom.arg(1), atom.arg(0))):
            if not z3.is_bv_value(t):
                continue
            if _is_free(x):
                found.append((x, t.as_long()))
            elif z3.is_app_of(x, z3.Z3_OP_EXTRACT) and t.as_long() == 0 and _is_free(x.arg(0)):
                hi, lo = x.params()  # Extract(w-1, lo, x) == 0: x < 2**lo
                if hi == x.arg(0).size() - 1:
                    found.append((x.arg(0), (1 << lo) - 1))
        return found
    table = _NOT_LE if negated else _LE
    if kind not in table:
        return []
    i, j, strict = table[kind]
    x, t = atom.arg(i), atom.arg(j)
    if not _is_free(x) or not z3.is_bv_value(t):
        return []
    bound = t.as_long()
    if strict and bound == 0:
        return []  # x < 0: unsatisfiable, left to the solver
    return [(x, bound - 1 if strict else bound)]
