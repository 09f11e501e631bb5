"""Placement as a parameter of the proofs: the properties `P@any`, true wherever the memblock search may put the
buffer, beside the properties `P`, true where the variant's own rule puts it.

A property's *label* is `P` (the rule: `form.py` item 3, today's verdicts) or `P@any` (every placement the
release's `find_early_table_space` search allows: item 3b, `form.search_allows`). `P@any` is proved over the same
machines with each call's `pgt_buf_start` a free 64-bit parameter; its counterexample names the machine *and* the
placement (`pgt_buf_start0`, `pgt_buf_start1` in the witness, minimised after the memory size, lowest first), and
is replayed in the boot walk with the buffer put there (`BootConfig.pgt_buf_start`). Bare metal's closed form
leaves the buffer free already, and 3.9 has no buffer, so their `P@any` is `P`.

`P@any` is expected to be what `P` is expected to be unless a proof script says otherwise
(`Theorem(path, "spare_writable@any", "counterexample")`): the seed's claim is about any buffer. A rule
counterexample is an `@any` counterexample too, as the rule's placement is one the search allows (the lemma
`rule_is_searched`, `tests/symbolic/test_placement.py`).
"""

from __future__ import annotations

from typing import Any

import z3

from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.symbolic.form import Z3, Shape, search_allows
from xenpin.symbolic.lemmas import Instance
from xenpin.symbolic.walk import terms_of

RULE, ANY = "rule", "any"
PLACEMENTS = (RULE, ANY)
SUFFIX = "@any"
LABELS = PROPERTIES + tuple(p + SUFFIX for p in PROPERTIES)
# A witness's placement, after the machine: each call's pgt_buf_start (pfns), the form's free `base0`/`base1`
PLACEMENT_PARAMS = (("pgt_buf_start0", "base0"), ("pgt_buf_start1", "base1"))


def split(label: str) -> tuple[str, str]:
    """`"spare_writable@any"` -> `("spare_writable", "any")`; `"spare_writable"` -> `(..., "rule")`."""
    if label.endswith(SUFFIX):
        return label[: -len(SUFFIX)], ANY
    return label, RULE


def label(prop: str, placement: str) -> str:
    return prop + SUFFIX if placement == ANY else prop


def labels(props: list[str], placement: str) -> list[str]:
    """`--placement`'s labels for `props` (base properties): `rule`, `any`, or `both` (each rule then any)."""
    wanted = PLACEMENTS if placement == "both" else (placement,)
    return [label(p, where) for p in props for where in wanted]


def selected(props: list[str], placement: str) -> list[str]:
    """`prove --property ... --placement ...`: a label `P@any` as given, a plain `P` as `labels` makes it."""
    return [out for p in props for out in ([p] if p.endswith(SUFFIX) else labels([p], placement))]


def known(text: str) -> bool:
    return text in LABELS


def expected(variant: KernelVariant, text: str) -> str:
    """The verdict `variant` is expected to have for the label `text` (module docstring)."""
    prop, _ = split(text)
    return variant.expect.get(text, variant.expect[prop])


def rule_is_searched(shape: Shape, call: int) -> list[z3.BoolRef]:
    """One formula per condition of item 3b, each satisfiable iff some machine of the rule's domain has call
    `call` placed by the rule (`form.py` item 3) where that condition fails (call 1: in one of two cases): all
    `unsat` proves the rule one
    of the placements `P@any` ranges over, so a rule counterexample is an `@any` one too. Assumes the lemma
    `walk_bounded` of both calls (proved with every verdict that rests on it)."""
    t = terms_of(shape)
    k, lay = t.call(call), t.layout
    allowed = search_allows(Z3, shape, t.params, lay, call, k.pgt_buf_start, k.tables)
    conditions = list(allowed.children())
    if call == 1:
        k0 = t.call0
        conditions.append(
            z3.Or(z3.ULE(k.pgt_buf_top, k0.pgt_buf_start), z3.UGE(k.pgt_buf_start, k0.pgt_buf_end))
        )
    bounded = [Instance("walk_bounded", t, x).formula() for x in (t.call0, t.call1)]  # proved lemmas
    # call 1 case by case: its buffer below call 0's, or not (the high rule's two cases: far quicker apart)
    below = z3.ULE(k.pgt_buf_top, t.call0.pgt_buf_start)
    cases = [below, z3.Not(below)] if call == 1 else [z3.BoolVal(True)]
    return [z3.And(t.domain, k.exists, *bounded, case, z3.Not(cond)) for cond in conditions for case in cases]


def machine_terms(ob: Any) -> list[tuple[str, Any]]:
    """The witness's placement terms of an obligation (`obligations.Obligation`): none under the rule or on a
    walk whose placement is free already."""
    if not ob.terms.shape.anywhere:
        return []
    p = ob.terms.params
    return [(name, getattr(p, field)) for name, field in PLACEMENT_PARAMS]


def pgt_buf_start(machine: dict[str, int]) -> tuple[int, ...] | None:
    """A witness's placement as `BootConfig.pgt_buf_start` (None: the witness names none)."""
    if PLACEMENT_PARAMS[0][0] not in machine:
        return None
    return tuple(machine[name] for name, _ in PLACEMENT_PARAMS)


def describe(machine: dict[str, int]) -> str:
    """`, buffer at pfn 0x.. (call 0) and 0x.. (call 1)`: the placement a witness names (a call that is never
    made has its start minimised to 0 and is not shown)."""
    starts = pgt_buf_start(machine)
    if starts is None:
        return ""
    shown = [f"{s:#x} (call {k})" for k, s in enumerate(starts) if s or k == 0]
    return ", buffer at pfn " + " and ".join(shown)


__all__ = [
    "ANY",
    "LABELS",
    "PLACEMENTS",
    "PLACEMENT_PARAMS",
    "RULE",
    "SUFFIX",
    "describe",
    "expected",
    "known",
    "label",
    "labels",
    "machine_terms",
    "pgt_buf_start",
    "rule_is_searched",
    "selected",
    "split",
]
