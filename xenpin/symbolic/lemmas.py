"""Lemmas about the walk's closed form (`walk.py`): proved once per walk shape and call, then used by obligations.

Some facts every proof leans on are obvious to a person and costly for a bit-blaster at 64 bits: `pgt_buf_end`
only grows while `kernel_physical_mapping_init` runs, so the `pgt_buf_end` a PTE was written with is at most
the one `pagetable_reserve` sees; the n-th `alloc_low_page` lies inside `[pgt_buf_start, pgt_buf_top)`; no
quantity of interest comes near 2**64. Left to the solver, one of them costs 20 s inside an obligation; stated
as lemmas, each is proved in a fraction of a second, and the obligation that uses it as well.

A lemma is a formula over the walk's terms of one call and its own parameters (fresh 64-bit variables). Its
proof is an obligation like any other: the domain, the lemma's negation, and instances of the lemmas it `uses`,
in a fresh solver, `unsat` = proved. An *instance* is the lemma's formula with the caller's terms for the
parameters; adding it to an obligation is sound because it holds for every value of the parameters over the
whole domain. A verdict is `proved` only if every lemma it rests on, transitively, is proved (`prove.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import z3

from xenpin.symbolic.form import Call, Shape
from xenpin.symbolic.walk import BV, Terms, c, terms_of

SMALL_BITS = 30  # the domain's 2**28 pages, with room for the sums the walk forms


def small(x: BV) -> z3.BoolRef:
    """`x < 2**SMALL_BITS`, as zero high bits (what the bit-blaster propagates best)."""
    return z3.Extract(x.size() - 1, SMALL_BITS, x) == 0


@dataclass(frozen=True, order=True)
class LemmaRef:
    """A lemma for one walk shape (`form.Shape.key`) and `init_memory_mapping` call (`None` for arithmetic)."""

    name: str
    shape: str | None = None
    call: int | None = None

    def __str__(self) -> str:
        return self.name if self.shape is None else f"{self.name}[{self.shape}, call {self.call}]"


@dataclass(frozen=True)
class Instance:
    """`lemma` with `args` for its parameters, about call `k` of the walk `t` (ignored by arithmetic lemmas)."""

    lemma: str
    t: Terms
    k: Call
    args: tuple[BV, ...] = ()

    @property
    def ref(self) -> LemmaRef:
        if not LEMMAS[self.lemma].about_walk:
            return LemmaRef(self.lemma)
        return LemmaRef(self.lemma, self.t.shape.key, self.k.index)

    def formula(self) -> z3.BoolRef:
        """The claim, for this call if it is made: a walk lemma is proved under `domain and k.exists`, so an
        instance about a call that may not exist (call 1, used by call 0's obligation) says nothing without it."""
        lemma = LEMMAS[self.lemma]
        claim = lemma.claim(self.t, self.k, *self.args)
        return z3.Implies(self.k.exists, claim) if lemma.about_walk else claim


@dataclass(frozen=True)
class Lemma:
    name: str
    text: str
    params: tuple[str, ...]
    claim: Callable[..., z3.BoolRef]  # claim(t, k, *params)
    uses: Callable[..., list[Instance]]  # uses(t, k, *params): the instances its proof needs
    about_walk: bool = True  # False: a bit-vector fact, true without the domain


def _no_lemmas(t: Terms, k: Call, *params: BV) -> list[Instance]:
    return []


def _chunk(pfn: BV) -> BV:
    return z3.LShR(pfn, 9)


def _in_walk(k: Call, chunk: BV) -> z3.BoolRef:
    """`chunk` is one of the chunks whose PTE page this call allocates."""
    return z3.And(z3.ULE(k.first_new_chunk, chunk), z3.ULE(chunk, k.last_chunk))


def _walk_bounded(t: Terms, k: Call) -> z3.BoolRef:
    return z3.And(
        small(t.size),
        small(k.range_end),
        small(k.pgt_buf_start),
        small(k.pgt_buf_top),
        z3.ULE(k.pgt_buf_start, k.pgt_buf_top),
        small(k.total_allocs),
        small(k.chunk_alloc(k.last_chunk)),
    )


def _allocs_fit(t: Terms, k: Call) -> z3.BoolRef:
    return z3.ULE(k.total_allocs, k.tables)


def _chunk_in_range(t: Terms, k: Call, pfn: BV) -> z3.BoolRef:
    in_range = z3.And(z3.UGE(pfn, k.range_start), z3.ULT(pfn, k.range_end))
    return z3.Implies(in_range, z3.ULE(_chunk(pfn), k.last_chunk))


def _alloc_monotone(t: Terms, k: Call, x: BV, y: BV) -> z3.BoolRef:
    a_x, a_y = k.chunk_alloc(x), k.chunk_alloc(y)
    return z3.Implies(
        z3.And(_in_walk(k, x), _in_walk(k, y), z3.ULE(x, y)), z3.And(z3.UGE(a_x, c(1)), z3.ULE(a_x, a_y))
    )


def _add_monotone(t: Terms, k: Call, s: BV, a: BV, b: BV) -> z3.BoolRef:
    return z3.Implies(
        z3.And(small(s), small(a), small(b)),
        z3.And(
            z3.Implies(z3.ULE(a, b), z3.ULE(s + a, s + b)),
            z3.Implies(z3.ULT(a, b), z3.ULT(s + a, s + b)),
        ),
    )


def _pte_end_bounded(t: Terms, k: Call, pfn: BV) -> z3.BoolRef:
    written_with = k.end_when_pte_written(pfn)
    final = k.pgt_buf_end
    return z3.Implies(
        k.is_new_chunk_pfn(pfn), z3.And(z3.ULT(k.pgt_buf_start, written_with), z3.ULE(written_with, final))
    )


def _pte_end_bounded_uses(t: Terms, k: Call, pfn: BV) -> list[Instance]:
    chunk, start = _chunk(pfn), k.pgt_buf_start
    return [
        Instance("walk_bounded", t, k),
        Instance("chunk_in_range", t, k, (pfn,)),
        Instance("alloc_monotone", t, k, (chunk, k.last_chunk)),
        Instance("add_monotone", t, k, (start, k.chunk_alloc(chunk), k.chunk_alloc(k.last_chunk))),
        Instance("add_monotone", t, k, (start, c(0), k.chunk_alloc(chunk))),
    ]


def _alloc_in_buffer(t: Terms, k: Call, alloc: BV) -> z3.BoolRef:
    page = k.pgt_buf_start + alloc - c(1)
    return z3.Implies(
        z3.And(z3.UGE(alloc, c(1)), z3.ULE(alloc, k.total_allocs)),
        z3.And(z3.ULE(k.pgt_buf_start, page), z3.ULT(page, k.pgt_buf_top)),
    )


def _alloc_in_buffer_uses(t: Terms, k: Call, alloc: BV) -> list[Instance]:
    return [
        Instance("walk_bounded", t, k),
        Instance("allocs_fit", t, k),
        Instance("add_monotone", t, k, (k.pgt_buf_start, alloc - c(1), k.tables)),
        Instance("add_monotone", t, k, (k.pgt_buf_start, c(0), alloc - c(1))),
    ]


LEMMAS: dict[str, Lemma] = {
    lemma.name: lemma
    for lemma in (
        Lemma(
            "walk_bounded",
            "pgt_buf_start <= pgt_buf_top; the size, the range end, the buffer and the allocation count are below 2**30",
            (),
            _walk_bounded,
            _no_lemmas,
        ),
        Lemma(
            "allocs_fit",
            "the walk allocates no more pages than find_early_table_space reserved",
            (),
            _allocs_fit,
            lambda t, k: [Instance("walk_bounded", t, k)],
        ),
        Lemma(
            "chunk_in_range",
            "a pfn of the range lies in a chunk up to the range's last chunk",
            ("pfn",),
            _chunk_in_range,
            _no_lemmas,
        ),
        Lemma(
            "alloc_monotone",
            "a later chunk's PTE page is allocated no earlier (pgt_buf_end only grows)",
            ("x", "y"),
            _alloc_monotone,
            _no_lemmas,
        ),
        Lemma(
            "add_monotone",
            "below 2**30, s + a <= s + b if a <= b and s + a < s + b if a < b (no wrap-around)",
            ("s", "a", "b"),
            _add_monotone,
            _no_lemmas,
            about_walk=False,
        ),
        Lemma(
            "pte_end_bounded",
            "the pgt_buf_end a PTE of this call is written with lies in (pgt_buf_start, final pgt_buf_end]",
            ("pfn",),
            _pte_end_bounded,
            _pte_end_bounded_uses,
        ),
        Lemma(
            "alloc_in_buffer",
            "allocation n (1 <= n <= allocations) is page pgt_buf_start + n - 1, inside [start, top)",
            ("alloc",),
            _alloc_in_buffer,
            _alloc_in_buffer_uses,
        ),
    )
}


_PROOFS: dict[LemmaRef, tuple[Lemma, tuple[z3.BoolRef, list[LemmaRef]]]] = {}


def proof(ref: LemmaRef) -> tuple[z3.BoolRef, list[LemmaRef]]:
    """The lemma's obligation (`unsat` = proved) and the lemmas its proof rests on (built once per lemma)."""
    lemma = LEMMAS[ref.name]
    cached = _PROOFS.get(ref)
    if cached is None or cached[0] is not lemma:  # built for a lemma since replaced (tests do that)
        cached = _PROOFS[ref] = (lemma, _build_proof(ref))
    return cached[1]


def _build_proof(ref: LemmaRef) -> tuple[z3.BoolRef, list[LemmaRef]]:
    lemma = LEMMAS[ref.name]
    params = [z3.BitVec(f"{lemma.name}.{p}", 64) for p in lemma.params]
    t = terms_of(Shape.from_key(ref.shape) if ref.shape else ARITHMETIC_SHAPE)
    k = t.call(ref.call or 0)
    used = lemma.uses(t, k, *params)
    premises = [inst.formula() for inst in used]
    negation = z3.Not(lemma.claim(t, k, *params))
    if lemma.about_walk:
        formula = z3.And(t.domain, k.exists, *premises, negation)
    else:
        formula = z3.And(*premises, negation)
    return formula, sorted({inst.ref for inst in used})


# Arithmetic lemmas name no walk; their proofs are built over any one (its terms are not used).
ARITHMETIC_SHAPE = Shape("xen", "high", "2.6.39-rc1", "2.6.39-rc1", "2.6.39-rc5")


def closure(refs: Iterable[LemmaRef]) -> list[LemmaRef]:
    """Every lemma `refs` rest on, transitively, each before the lemmas whose proofs use it."""
    order: list[LemmaRef] = []
    visiting: set[LemmaRef] = set()

    def visit(ref: LemmaRef) -> None:
        if ref in order:
            return
        if ref in visiting:
            raise ValueError(f"lemma {ref} depends on itself")
        visiting.add(ref)
        for dep in proof(ref)[1]:
            visit(dep)
        visiting.discard(ref)
        order.append(ref)

    for ref in refs:
        visit(ref)
    return order


__all__ = ["LEMMAS", "Instance", "Lemma", "LemmaRef", "closure", "proof", "small"]
