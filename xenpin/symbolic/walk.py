"""The closed form of `form.py` over 64-bit Z3 bit-vectors: the terms every obligation and lemma reads.

`terms(variant)` gives the machine's parameters (fresh `BitVec(64)` variables: `nr`, `kernel`, `ramdisk`,
`slack`; bare metal's `low_end`, `high_end`, `base0`, `base1`, `gbpages`), the two `init_memory_mapping` calls
as terms of them, and the domain. They are built once per shape (`form.Shape`: the parts of a variant's code the closed
form depends on) and shared by every obligation and lemma of that shape, so a lemma instance and the
obligation that uses it speak of the same variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from xenpin.linux.variant import KernelVariant
from xenpin.symbolic.form import Z3, Call, Layout, Params, Shape, W, calls, domain, layout, shape_of

BV = z3.BitVecRef


def c(v: int) -> BV:
    return z3.BitVecVal(v, W)


def umin(a: BV, b: BV) -> BV:
    return z3.If(z3.ULE(a, b), a, b)


@dataclass(frozen=True)
class Terms:
    shape: Shape
    params: Params
    call0: Call
    call1: Call
    domain: z3.BoolRef
    layout: Layout

    def call(self, index: int) -> Call:
        return self.call0 if index == 0 else self.call1

    @property
    def size(self) -> BV:
        """The term a counterexample is minimised on first: the guest's memory (bare metal: its end of RAM)."""
        p = self.params
        return p.nr if self.shape.platform == "xen" else p.low_end


_TERMS: dict[Shape, Terms] = {}


def terms_of(shape: Shape) -> Terms:
    if shape not in _TERMS:
        p = Params.symbolic()
        k0, k1 = calls(Z3, shape, p)
        _TERMS[shape] = Terms(shape, p, k0, k1, domain(Z3, shape, p, k0, k1), layout(Z3, shape, p))
    return _TERMS[shape]


def terms(variant: KernelVariant) -> Terms:
    return terms_of(shape_of(variant))


__all__ = ["BV", "Terms", "c", "terms", "terms_of", "umin"]
