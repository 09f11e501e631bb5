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

The closed form itself is proved equal to the kernel's loop by an induction over the loop's iterations
(`step_function.py`): `step_base`, the step in parts (`step_state`, `step_allocates`, `step_writes`,
`step_links`; bare metal `step_state`), `step_exit`, each proved once per platform and call over *any* walk
in bounds (fresh variables for the range end, buffer, kept chunks: `step_function.abstract_walk`), which covers
every shape; `walk_bounded` proves each shape's calls in those bounds. They are no premise of anything (an
obligation reads the closed form's terms directly), but every other lemma about the walk *rests on* them: its
claim is about the kernel only if the closed form is the kernel's walk, so a verdict is `proved` only if they
are too (`Lemma.rests_on`; 3.9's shape has no step function).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import z3

from xenpin.symbolic import step_function as sf
from xenpin.symbolic.form import Z3, Call, Shape
from xenpin.symbolic.walk import BV, Terms, c, terms_of

SMALL_BITS = 36  # bare metal's 2**34 pages (64 TiB), with room for the sums the walk forms
XEN_SMALL_BITS = 30  # a domU's 2**27 pages (500 GiB)


def small(x: BV, bits: int = SMALL_BITS) -> z3.BoolRef:
    """`x < 2**bits`, as zero high bits (what the bit-blaster propagates best)."""
    return z3.Extract(x.size() - 1, bits, x) == 0


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
        lemma = LEMMAS[self.lemma]
        if not lemma.about_walk:
            return LemmaRef(self.lemma)
        if lemma.generic is not None:  # proved once per platform and call, for every shape
            return LemmaRef(self.lemma, self.t.shape.platform, self.k.index)
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
    rests_on_walk: bool = True  # (about the walk) means something only if the closed form is the walk
    # Proved over a walk of fresh variables (`step_function.abstract_walk`) rather than over a shape's domain:
    # once per platform and call, for every shape (whose calls `walk_bounded` proves within those bounds; every
    # obligation and lemma that uses one of these also rests on its own shape's `walk_bounded`).
    generic: Callable[..., z3.BoolRef] | None = None  # generic(walk, call, *params)

    def rests_on(self, shape: Shape, call: int | None) -> list[LemmaRef]:
        """Lemmas this one's meaning depends on without being premises of its proof: the induction that proves
        the closed form equal to the step function (module docstring)."""
        if not (self.about_walk and self.rests_on_walk and sf.has_step_function(shape)):
            return []
        return step_refs(shape.platform, call or 0)


def step_refs(platform: str, call: int) -> list[LemmaRef]:
    """The induction's lemmas for call `call` of a platform's walks (one set serves every shape: they are
    proved over any walk in bounds, `step_function.abstract_walk`)."""
    parts = sf.parts_of(platform == "native")
    return [
        LemmaRef(name, platform, call) for name in ("step_base", *(f"step_{p}" for p in parts), "step_exit")
    ]


def _step_walk(t: Terms, k: Call) -> sf.Walk:
    return sf.walk_of(Z3, t.shape, t.params, k.index, t.layout, (t.call0, k))


def _no_lemmas(t: Terms, k: Call, *params: BV) -> list[Instance]:
    return []


def _chunk(pfn: BV) -> BV:
    return z3.LShR(pfn, 9)


def _in_walk(k: Call, chunk: BV) -> z3.BoolRef:
    """`chunk` is one of the chunks whose PTE page this call allocates."""
    return z3.And(z3.ULE(k.first_new_chunk, chunk), z3.ULE(chunk, k.last_chunk))


def _walk_bounded(t: Terms, k: Call) -> z3.BoolRef:
    bits = XEN_SMALL_BITS if t.shape.platform == "xen" else SMALL_BITS
    # and the call is one the induction covers (`step_function.walk_bounds`): what carries its lemmas here
    covered = sf.walk_bounds(_step_walk(t, k), k) if sf.has_step_function(t.shape) else z3.BoolVal(True)
    return z3.And(
        covered,
        small(t.size, bits),
        small(k.range_end, bits),
        small(k.pgt_buf_start, bits),
        small(k.pgt_buf_top, bits),
        z3.ULE(k.pgt_buf_start, k.pgt_buf_top),
        small(k.total_allocs, bits),
        small(k.chunk_alloc(k.last_chunk), bits),
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


def _step_lemmas() -> tuple[Lemma, ...]:
    """The induction's lemmas (`step_function.py`), each proved over any walk in bounds of a platform's call."""
    out = [
        Lemma("step_base", "closed form = step function: before the loop, the walk's state is the closed form's"
              " at k = 0", (), lambda t, k: sf.base_claim(_step_walk(t, k), k), _no_lemmas,
              rests_on_walk=False, generic=sf.base_claim),
        Lemma("step_exit", "closed form = step function: the loop stops after n >= 1 iterations with the closed"
              " form's pgt_buf_end and allocation count", (), lambda t, k: sf.exit_claim(_step_walk(t, k), k),
              _no_lemmas, rests_on_walk=False, generic=sf.exit_claim),
    ]  # fmt: skip
    texts = {
        "state": "one iteration of kernel_physical_mapping_init from the closed form's state at k < n gives"
        " its state at k + 1",
        "allocates": "the PMD and PTE pages an iteration allocates are the closed form's pmd_alloc and chunk_alloc",
        "writes": "an iteration writes the PTEs the closed form's is_new_chunk_pfn names, with its"
        " end_when_pte_written",
        "links": "an iteration's PTE page becomes reachable after the closed form's gib_linked_after",
    }
    for part in sf.STEP_PARTS:
        out.append(
            Lemma(
                f"step_{part}",
                f"closed form = step function: {texts[part]}",
                ("k", "pfn"),
                lambda t, k, kk, pfn, part=part: sf.step_claims(_step_walk(t, k), k, kk, pfn)[part],
                _no_lemmas,
                rests_on_walk=False,
                generic=lambda w, k, kk, pfn, part=part: sf.step_claims(w, k, kk, pfn)[part],
            )
        )
    return tuple(out)


LEMMAS: dict[str, Lemma] = {
    lemma.name: lemma
    for lemma in (
        *_step_lemmas(),
        Lemma(
            "walk_bounded",
            "pgt_buf_start <= pgt_buf_top; the size, the range end, the buffer and the allocation count are below"
            " 2**30 (bare metal 2**36); the call is one the step function's induction covers",
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
            generic=lambda w, k, pfn: _chunk_in_range(None, k, pfn),
        ),
        Lemma(
            "alloc_monotone",
            "a later chunk's PTE page is allocated no earlier (pgt_buf_end only grows)",
            ("x", "y"),
            _alloc_monotone,
            _no_lemmas,
            generic=lambda w, k, x, y: _alloc_monotone(None, k, x, y),
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
    if lemma.generic is not None:  # over any walk in bounds, not only the domain's (`abstract_walk`)
        shape = NATIVE_SHAPE if ref.shape == "native" else ARITHMETIC_SHAPE
        w, k_any, bounds = sf.abstract_walk(shape, ref.call or 0)
        formula = z3.And(bounds, z3.Not(lemma.generic(w, k_any, *params)))
        return formula, [] if not lemma.rests_on_walk else step_refs(shape.platform, ref.call or 0)
    t = terms_of(Shape.from_key(ref.shape) if ref.shape else ARITHMETIC_SHAPE)
    k = t.call(ref.call or 0)
    used = lemma.uses(t, k, *params)
    premises = [inst.formula() for inst in used]
    negation = z3.Not(lemma.claim(t, k, *params))
    if lemma.about_walk:
        formula = z3.And(t.domain, k.exists, *premises, negation)
    else:
        formula = z3.And(*premises, negation)
    shape = Shape.from_key(ref.shape) if ref.shape else ARITHMETIC_SHAPE
    return formula, sorted({inst.ref for inst in used} | set(lemma.rests_on(shape, ref.call)))


# Arithmetic lemmas name no walk; their proofs are built over any one (its terms are not used).
ARITHMETIC_SHAPE = Shape("xen", "high", "2.6.39-rc1", "2.6.39-rc1", "2.6.39-rc5")
NATIVE_SHAPE = Shape("native", "any", "none", "none", "none")


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
