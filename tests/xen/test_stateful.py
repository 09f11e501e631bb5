"""Random hypercall sequences against the validator model.

`modern`: after every step all invariants hold, and a rejected operation leaves the snapshot untouched.
`xen-4.1`: the same machine is *expected* to reach a global_safety violation (XSA-148 / XSA-182 through the
L2-L4 fast path that compares only P); the search must fail to find one once that fast path is fixed.

Entries may name an mfn with no page (`NO_PAGE`): plain stores accept the bytes, Xen's checks refuse them.
Calls with a frame that is not in the model, a bad slot, level or va, or a malformed entry must raise
ValueError and leave the snapshot untouched.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from xtrees import va_of

from xenpin.strategies import ENTRY_FLAGS, page_table_entries
from xenpin.xen.flags import RW, Entry, P
from xenpin.xen.hypervisor import Hypervisor
from xenpin.xen.invariants import check_invariants
from xenpin.xen.rules import MODERN, XEN_41, RuleSet

FOREIGN = 100
NO_PAGE = 200  # an mfn the model has no frame for (`!mfn_valid` in Xen)
# Flags of present entries; a not-present entry is None.
FLAGS = ENTRY_FLAGS

# (description, call) of API misuse: each must raise ValueError and change nothing.
BAD_CALLS = (
    ("write to a frame not in the model", lambda hv, m, s: hv.write(NO_PAGE, s, None)),
    ("write to a negative mfn", lambda hv, m, s: hv.write(-1 - m, s, None)),
    ("write slot 512+", lambda hv, m, s: hv.write(m, 512 + s, Entry(m, P))),
    ("write slot < 0", lambda hv, m, s: hv.write(m, -1 - s, None)),
    ("write entry without P", lambda hv, m, s: hv.write(m, s, Entry(m, RW))),
    ("write entry mfn too wide", lambda hv, m, s: hv.write(m, s, Entry(1 << 40, P))),
    ("mmu_update frame not in the model", lambda hv, m, s: hv.mmu_update(NO_PAGE, s, Entry(m, P))),
    ("mmu_update slot 512+", lambda hv, m, s: hv.mmu_update(m, 512 + s, None)),
    ("mmu_update unknown flag bit", lambda hv, m, s: hv.mmu_update(m, s, Entry(m, P | 0x200))),
    ("update_va_mapping entry without P", lambda hv, m, s: hv.update_va_mapping(s << 12, Entry(m, RW))),
    ("update_va_mapping negative va", lambda hv, m, s: hv.update_va_mapping(-1 - s, None)),
    ("pin frame not in the model", lambda hv, m, s: hv.pin(1 + s % 4, NO_PAGE)),
    ("pin level 0", lambda hv, m, s: hv.pin(0, m)),
    ("unpin frame not in the model", lambda hv, m, s: hv.unpin(NO_PAGE + m)),
    ("new_baseptr frame not in the model", lambda hv, m, s: hv.new_baseptr(NO_PAGE)),
    ("set_gdt frame not in the model", lambda hv, m, s: hv.set_gdt(NO_PAGE)),
    ("fill_table frame not in the model", lambda hv, m, s: hv.fill_table(NO_PAGE, [(s, m, P)])),
    ("fill_table bad slot last", lambda hv, m, s: hv.fill_table(m, [(s, NO_PAGE, P), (512 + s, m, P)])),
)


class Found(Exception):
    """Raised by the 4.1 search when a global_safety violation is reached."""


def make_machine(
    name: str, ruleset: str | RuleSet, frames: int, slots: tuple[int, ...], search: bool
) -> type[RuleBasedStateMachine]:
    """A state machine over `frames` guest frames (+1 foreign) using entry slots `slots`.

    `search=False`: every invariant must hold after every step. `search=True` (4.1): the counts must stay
    right, and reaching a global_safety violation raises `Found` -- Hypothesis then shrinks it, like `find`.
    """
    mfns = st.integers(0, frames - 1)
    targets = st.one_of(mfns, st.just(FOREIGN))
    entry_targets = st.one_of(mfns, st.sampled_from([FOREIGN, NO_PAGE]))
    slot_st = st.sampled_from(slots)
    flags_st = st.sampled_from(FLAGS)
    entries = page_table_entries(entry_targets, FLAGS)

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.hv = Hypervisor(ruleset, frames=frames, foreign=[FOREIGN])
            self.last = None

        def _run(self, op, *args):
            before = self.hv.snapshot()
            result = op(*args)
            self.last = result
            if not result.ok:
                assert result.errno, result
                assert self.hv.snapshot() == before, f"rejected {result.op} changed the state"

        @rule(mfn=targets, slot=slot_st, entry=entries)
        def write(self, mfn, slot, entry):
            self._run(self.hv.write, mfn, slot, entry)

        @rule(mfn=targets, slot=slot_st, entry=entries)
        def mmu_update(self, mfn, slot, entry):
            self._run(self.hv.mmu_update, mfn, slot, entry)

        @rule(mfn=mfns, slot=slot_st, flags=flags_st, via_write=st.booleans())
        def reflag(self, mfn, slot, flags, via_write):
            """Change only the flags of `mfn[slot]` (an absent entry becomes a self-reference)."""
            old = self.hv.entry(mfn, slot)
            entry = Entry(mfn if old is None else old.mfn, flags)
            self._run(self.hv.write if via_write else self.hv.mmu_update, mfn, slot, entry)

        @precondition(lambda self: self._present())
        @rule(data=st.data(), flags=flags_st)
        def flip_flags(self, data, flags):
            """`mmu_update` an existing entry to new flags, same frame: what the fast paths are for."""
            mfn, slot, target = data.draw(st.sampled_from(self._present()), label="entry")
            self._run(self.hv.mmu_update, mfn, slot, Entry(target, flags))

        def _present(self):
            return [(m, s, e.mfn) for m in range(frames) for s, e in self.hv.entries(m)]

        @rule(
            chain=st.permutations(range(frames)).map(lambda p: p[:4]),
            idx=st.tuples(slot_st, slot_st, slot_st, slot_st),
            leaf=st.builds(Entry, entry_targets, flags_st),
        )
        def build_tree(self, chain, idx, leaf):
            """What a guest does: fill L4..L1 by plain stores (RW entries), then load the L4 as CR3."""
            if len(chain) < 4:
                return
            for table in chain:  # zero the page first (plain stores; a live table refuses them)
                for slot, _e in self.hv.entries(table):
                    self._run(self.hv.write, table, slot, None)
            for table, slot, below in zip(chain, idx, [*chain[1:], None], strict=True):
                self._run(self.hv.write, table, slot, Entry(below, P | RW) if below is not None else leaf)
            self._run(self.hv.new_baseptr, chain[0])

        @rule(data=st.data(), entry=entries)
        def update_va_mapping(self, data, entry):
            """A va whose walk mostly follows present entries from the base pointer (else random slots)."""
            idx, table = [], self.hv.baseptr
            for _ in range(4):
                present = [s for s, _e in self.hv.entries(table)] if table is not None else []
                slot = data.draw(st.sampled_from(present) if present else slot_st, label="slot")
                idx.append(slot)
                e = self.hv.entry(table, slot) if table is not None else None
                table = e.mfn if e is not None and self.hv.has_frame(e.mfn) else None
            self._run(self.hv.update_va_mapping, va_of(*idx), entry)

        @rule(bad=st.sampled_from(BAD_CALLS), mfn=mfns, slot=slot_st)
        def bad_arguments(self, bad, mfn, slot):
            """API misuse: ValueError, and not a bit of state changed (no rollback needed: nothing ran)."""
            what, call = bad
            before = self.hv.snapshot()
            with pytest.raises(ValueError):
                call(self.hv, mfn, slot)
            assert self.hv.snapshot() == before, f"{what}: the state changed"

        @rule(level=st.integers(1, 4), mfn=targets)
        def pin(self, level, mfn):
            self._run(self.hv.pin, level, mfn)

        @rule(mfn=targets)
        def unpin(self, mfn):
            self._run(self.hv.unpin, mfn)

        @rule(mfn=targets)
        def new_baseptr(self, mfn):
            self._run(self.hv.new_baseptr, mfn)

        @rule(mfn=targets)
        def set_gdt(self, mfn):
            self._run(self.hv.set_gdt, mfn)

        @invariant()
        def invariants_hold(self):
            violations = check_invariants(self.hv)
            if not search:
                assert violations == [], f"after {self.last}: {[str(v) for v in violations]}"
                return
            # 4.1's fast path lets PSE / RW linear entries in, which `closure` reports; counts must stay right,
            # except after Xen 4.1 itself mis-counted (put_superpage of a flipped PSE entry, in `damage`).
            allowed = {"global_safety", "closure"}
            if self.hv.damage:
                allowed |= {"type_count", "general_count"}
            assert {v.invariant for v in violations} <= allowed, [str(v) for v in violations]
            unsafe = [str(v) for v in violations if v.invariant == "global_safety"]
            if unsafe:
                raise Found(f"after {self.last}: {unsafe[0]}")

    Machine.__name__ = Machine.__qualname__ = name
    return Machine


# 4.1 with the XSA-148/182 fixes: modern's fast-path comparison, everything else as 4.1.
XEN_41_FIXED = dataclasses.replace(
    XEN_41,
    name="xen-4.1+xsa148+xsa182",
    l1_fastpath_compare=MODERN.l1_fastpath_compare,
    upper_fastpath_compare=MODERN.upper_fastpath_compare,
)

ModernMachine = make_machine("ModernMachine", MODERN, 8, (0, 1, 2, 3, 256, 511), search=False)
# The search runs in a smaller world (4 frames, 3 slots) so that short sequences reach linear entries.
SEARCH_WORLD = {"frames": 4, "slots": (0, 1, 256)}
Xen41Search = make_machine("Xen41Search", XEN_41, **SEARCH_WORLD, search=True)
Xen41FixedSearch = make_machine("Xen41FixedSearch", XEN_41_FIXED, **SEARCH_WORLD, search=True)


def _settings(**kw) -> settings:
    return settings(
        settings.default,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        **kw,
    )


# A hit takes ~150 random examples on average (worst seen: ~500); the search stops at the first one.
SEARCH_BUDGET = {"max_examples": max(settings.default.max_examples, 1000), "stateful_step_count": 50}


def test_modern_random_sequences_keep_every_invariant():
    run_state_machine_as_test(ModernMachine, settings=_settings(stateful_step_count=40))


def test_xen41_search_finds_a_global_safety_violation():
    # No shrink phase: the test needs a hit, not the least one (shrinking a 50-step hit costs 5-40x the search).
    with pytest.raises(Found) as found:
        run_state_machine_as_test(
            Xen41Search,
            settings=_settings(**SEARCH_BUDGET, phases=[Phase.generate], print_blob=False),
        )
    assert "global_safety: live " in str(found.value)


def test_xen41_search_finds_nothing_once_the_fast_path_is_fixed():
    # The control for the test above: only the fast-path comparison differs, so the
    # search above depends on 4.1's fast path and would fail if it were fixed.
    # Smaller than the search's cap to keep the file fast; the unfixed search usually hits within ~150.
    budget = {**SEARCH_BUDGET, "max_examples": max(settings.default.max_examples, 300)}
    run_state_machine_as_test(Xen41FixedSearch, settings=_settings(**budget))
