"""3.9's top-down walk in closed form (`topdown.py`) against the kernel's loop and the executable boot, and its
obligations against mutants that the boot shows broken or safe."""

from __future__ import annotations

import dataclasses
import random

import pytest
import z3
from bootcache import KERNELS

from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig, pfn_phys
from xenpin.linux.policy import parse_policy
from xenpin.linux.variant import POLICY_VARS, load_variant
from xenpin.symbolic import topdown
from xenpin.symbolic.obligations import build
from xenpin.symbolic.prove import prove_property, violated_in
from xenpin.symbolic.solver import check
from xenpin.symbolic.walk import c

V39 = load_variant(KERNELS / "3.9.toml")
KERNEL, RAMDISK, SLACK = 0x103B, 0xBFF, 0x800  # BootConfig's defaults, in pages
MAX_NR = (500 << 30) >> 12


def _kernel_loop(real_end: int) -> list[tuple[int, int]]:
    """init_mem_mapping's loop as arch/x86/mm/init.c (3.9.6) writes it, in pfns: the ranges it maps."""
    isa, step, mapped, last_start, out = 0x100, 512, 0, real_end, []
    while last_start > isa:
        start = max((last_start - 1) // step * step, isa) if last_start > step else isa
        out.append((start, last_start))
        new = last_start - start
        if new > mapped:
            step <<= 5
        mapped += new
        last_start = start
    return out


def test_the_unrolled_steps_are_the_kernels_loop() -> None:
    """Every `real_end` with the deepest schedules and a sample of the rest: the encoding's active steps are the
    loop's ranges, and MAX_STEPS is what the deepest needs (the lemma `topdown_steps` proves it for all)."""
    rng = random.Random(9)
    ends = [34636800, 17859584, 1082368, 558080, 33792, 17408, 4608, 1 << 18, MAX_NR]
    ends += [rng.randrange(0x4000, MAX_NR) >> 9 << 9 for _ in range(300)]
    deepest = 0
    for r in ends:
        td = topdown.evaluate(r, KERNEL, RAMDISK, 0)
        got = [(s.start, s.end) for s in td.steps[: topdown.MAX_STEPS] if s.active]
        assert got == _kernel_loop(r), hex(r)
        assert not td.beyond
        deepest = max(deepest, len(got))
    assert deepest == topdown.MAX_STEPS


def _booted(nr: int, kernel: int, ramdisk: int, slack: int, variant=V39):
    held = []
    cfg = BootConfig(role="domU", mem_bytes=pfn_phys(nr), kernel_bytes=pfn_phys(kernel),
                     ramdisk_bytes=pfn_phys(ramdisk), slack_bytes=pfn_phys(slack))  # fmt: skip
    result = boot(variant, cfg, on_step=lambda g: held or held.append(g))
    return result, held[0]


# 64 MiB; 64 MiB without slack (no final step: the seed keeps spare pages); a partial chunk and one spare seed
# page; just past 1 GiB (a new GiB in step 1); a GiB-aligned end; a random middle size with a big image
CASES = [
    (0x4000, KERNEL, RAMDISK, SLACK),
    (0x4000, KERNEL, RAMDISK, 0),
    (0x3C75C, 0x200, 0, 1),
    (0x40200, KERNEL, RAMDISK, SLACK),
    (0x40000, 0x4000, 0x8000, 0x3000),
    (0x2D9AB, 0x2345, 0x1D44E, 0x239AD),
]


@pytest.mark.parametrize(("nr", "kernel", "ramdisk", "slack"), CASES)
def test_the_closed_form_is_the_boot(nr: int, kernel: int, ramdisk: int, slack: int) -> None:
    """Allocations (their pages, in order), the seed's end, reservations and the final RW bits: the encoding's
    Python-int evaluation against the executable boot."""
    result, g = _booted(nr, kernel, ramdisk, slack)
    assert result.outcome == "ok"
    td = topdown.evaluate(nr, kernel, ramdisk, slack)
    assert not td.inexact and not td.panics() and not td.may_panic()
    walked = [s.pfn for s in result.steps if s.action == "alloc_low_pages"]
    pages = [td.allocation(n) for n in range(1, td.total_allocs + 1)]
    assert walked == [p for p, *_ in pages]
    assert all(ok for *_, ok in pages)
    seed = g.buffers[0]
    assert (td.seed_start, td.seed_end, td.seed_top) == (
        seed.pgt_buf_start,
        seed.pgt_buf_end,
        seed.pgt_buf_top,
    )
    memblock = [p for p, from_seed, *_ in pages if not from_seed]
    assert memblock == list(range(td.real_end - 1, td.real_end - 1 - td.total_memblock, -1))  # the run
    assert all(g.memblock.is_reserved(pfn_phys(p)) for p in walked)  # live_reserved
    assert all(td.brk <= p < td.brk_reserved_end for p, from_seed, *_ in pages if from_seed)
    assert all(g.mapped_rw(p) is False for p in walked)  # every table made RO by xen_alloc_pte/pmd
    below = td.real_end - td.total_memblock - 1  # the run's next page (NODE_DATA may take it later): RW
    assert g.mapped_rw(below) is True
    assert all(g.mapped_rw(p) is True for p in range(td.seed_end, td.seed_top))  # spare seed pages RW


def test_a_spare_seed_tail_exists_somewhere() -> None:
    """spare_writable talks about a situation that arises: without slack a 64 MiB guest's last step covers the
    brk, so the seed keeps pages it never hands out."""
    td = topdown.evaluate(0x4000, KERNEL, RAMDISK, 0)
    assert td.seed_end < td.seed_top


def test_large_domus_run_out_of_mapped_memory() -> None:
    """The solver's buffer_fits counterexample: 36 GiB + 70 MiB. Step 3 maps 64 MiB, more than the 6 MiB before
    it, so the step grows to 64 GiB; step 4 then needs 18407 tables (72 MiB) from the 70 MiB mapped so far."""
    td = topdown.evaluate(0x904600, KERNEL, RAMDISK, SLACK)
    assert td.panics() and not td.inexact
    four = td.steps[3]
    assert (four.start, four.end, four.allocs) == (0x100, 0x900000, 18407)
    assert four.memblock_before + four.from_memblock > td.real_end - four.lowest_mapped
    smaller = topdown.evaluate(0x904600 - 512, KERNEL, RAMDISK, SLACK)
    assert not smaller.panics()


def _variant(**policies: str):
    parsed = {k: parse_policy(v, POLICY_VARS[k]) for k, v in policies.items()}
    return dataclasses.replace(V39, name="3.9-mutant", sources={**V39.sources, **policies}, **parsed)


LIMITS = {"rlimit": 400_000_000, "timeout_s": 60.0}


def test_a_read_only_direct_map_is_a_replayed_counterexample() -> None:
    """`readonly = "true"`: every PTE the walk writes is RO, so the first page memblock hands out faults in
    clear_page. The prover finds it and the boot replays it."""
    v = _variant(readonly="true")
    verdict = prove_property(v, "alias_writable", **LIMITS)
    assert verdict.verdict == "counterexample" and not verdict.vacuous
    assert verdict.replay.failure.violates == "alias_writable"
    assert violated_in(verdict.replay, "alias_writable", 0)


def test_a_read_only_alias_changes_nothing_in_3_9() -> None:
    """`readonly = "ioremap"`: 3.9 maps no early_memremap alias (alloc_low_pages clears through __va), so the
    rule never applies: proved, not vacuous, and the boot agrees."""
    v = _variant(readonly="ioremap")
    verdict = prove_property(v, "alias_writable", **LIMITS)
    assert verdict.verdict == "proved" and not verdict.vacuous
    assert boot(v, 64 << 20).outcome == "ok"


def _at(ob, machine: dict[str, int]) -> z3.BoolRef:
    p = ob.params
    return z3.substitute(ob.non_vacuity(), *((getattr(p, n), c(v)) for n, v in machine.items()))


def test_only_spare_freed_is_vacuous() -> None:
    """Each property's situation arises at a concrete machine (a 64 MiB guest without slack), but spare_freed's:
    3.9 has no reserve step."""
    machine = {"nr": 0x4000, "kernel": KERNEL, "ramdisk": RAMDISK, "slack": 0}
    for prop in ("buffer_fits", "alias_writable", "no_rw_alias", "spare_writable", "live_reserved"):
        ob = build(V39, prop, 0)
        assert check(_at(ob, machine)).status == "sat", prop
    assert z3.is_false(build(V39, "spare_freed", 0).premise)
    assert z3.is_false(z3.simplify(build(V39, "no_rw_alias", 1).domain))  # no second call in 3.9


def test_other_3_9_code_is_refused() -> None:
    v = dataclasses.replace(V39, code={**V39.code, "xen_memory_setup": "3.1"})
    with pytest.raises(ValueError, match="xen_memory_setup"):
        build(v, "buffer_fits", 0)
