"""`xenpin explore`: counterexamples of one property, several if asked, each minimised and replayed.

Distinct counterexamples differ in memory size: after each one, the next query excludes its size. Each comes
with the replay's picture of the buffer (see `xenpin.report.explore`), and counts as a counterexample only if
the replay violates the property in the same call (`prove.violated_in`).
"""

from __future__ import annotations

import z3

from xenpin.linux.boot import boot
from xenpin.linux.variant import KernelVariant
from xenpin.symbolic import prove
from xenpin.symbolic.obligations import ALLOCATION_PROPERTIES, build
from xenpin.symbolic.prove import (
    CALLS,
    NATIVE_PARAMS,
    XEN_PARAMS,
    Verdict,
    Witness,
    defaults,
    placed_witness,
    prove_property,
    violated_in,
)
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S, check
from xenpin.symbolic.walk import c

# further counterexamples are sought among sizes the replay boots in seconds (and never past the replay limit)
EXTRA_LIMIT_BYTES = 8 << 30


def counterexamples(
    variant: KernelVariant,
    prop: str,
    count: int = 1,
    *,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Verdict]:
    """The minimal counterexample first, then up to `count - 1` more at other sizes (not minimised)."""
    first = prove_property(variant, prop, rlimit=rlimit, timeout_s=timeout_s)
    found = [first]
    if first.witness is None:
        return found
    seen = {first.witness.size}
    for call in CALLS:
        ob = build(variant, prop, call)
        while len(found) < count:
            excluded = [ob.size != c(m) for m in sorted(seen)]
            limit = min(EXTRA_LIMIT_BYTES, prove.REPLAY_LIMIT_BYTES)
            small = z3.ULE(prove.mem_pages(ob), c(limit >> 12))  # replayable sizes only
            query = z3.And(ob.formula(), small, defaults(ob), *excluded)
            answer = check(query, rlimit=rlimit, timeout_s=timeout_s)
            if answer.status != "sat":
                break
            m = answer.model
            names = XEN_PARAMS if ob.terms.shape.platform == "xen" else NATIVE_PARAMS
            w = Witness(
                call,
                tuple((n, m.eval(getattr(ob.params, n), model_completion=True).as_long()) for n in names),
                m.eval(ob.pfn, model_completion=True).as_long(),
                m.eval(ob.alloc, model_completion=True).as_long() if prop in ALLOCATION_PROPERTIES else None,
                minimal=False,
            )
            seen.add(w.size)
            v = Verdict(variant, prop, "unknown", answer.seconds, witness=w)
            v.replay = boot(variant, w.config())
            shown = violated_in(v.replay, prop, call)
            if shown:
                v.verdict = "counterexample"
                if not w.xen:  # the page where the boot placed the buffer, as for the first
                    v.witness = placed_witness(v, w, {"rlimit": rlimit, "timeout_s": timeout_s}) or w
            else:
                what = "holds" if shown is False else "is not reached"
                v.notes.append(f"does not replay: in the boot walk {prop} {what} in call {call}")
            found.append(v)
    return found
