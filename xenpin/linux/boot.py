"""One boot of one kernel variant on one machine, driving the Xen validator, and what it shows.

`boot(variant, config)` runs the release's code from Xen's start of day to the page allocator's first writes
(`start_of_day`, `setup_arch`, `init_memory_mapping`, `pv_ops`), stopping at the first failure as the guest
would. The `BootResult` holds the outcome and the failure (with Xen's log lines and the kernel's own line), the
buffers of every `init_memory_mapping` call, every console line the boot printed, the trace of steps that touched
the buffers, and the properties of DESIGN.md judged on this run:
- `buffer_fits`: no `alloc_low_page` panicked;
- `alias_writable`: no store through an `early_memremap` alias (or 3.9's `__va`) of a new table page faulted;
- `no_rw_alias`: Xen accepted every pin, link and PTE store (no page was a table while mapped RW);
- `spare_writable`: right after each call's reserve step (or where its guard skipped it) no spare page of the
  buffer was still mapped read-only, and no later write faulted on one;
- `spare_freed` / `live_reserved`: right after the reserve step, no spare page reserved / every used page
  reserved.
A property is None ("not reached") when the boot stopped before it could be judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from xenpin.linux.console import Line
from xenpin.linux.e820 import E820
from xenpin.linux.guest import BootStop, BufferState, Failure, Guest, PageState, Step, direct_va
from xenpin.linux.init_memory_mapping import ProgressCallback
from xenpin.linux.layout import BootConfig, pfn_phys
from xenpin.linux.setup_arch import setup_arch
from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.xen.domain_builder import P2M, StartOfDay

OUTCOMES = ("ok", "xen-rejected", "kernel-fault", "panic")


@dataclass
class BootResult:
    variant: KernelVariant
    config: BootConfig
    rules: str
    outcome: str
    failure: Failure | None
    buffers: list[BufferState]
    properties: dict[str, bool | None]  # None: the boot stopped before the property could be judged
    console: list[Line] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    pins: int = 0
    pte_writes: int = 0
    e820: E820 | None = None
    start_of_day: StartOfDay | None = None
    p2m: P2M | None = None
    max_pfn: int = 0
    max_low_pfn: int = 0
    # Every buffer page as its call's reserve step left it (a buffer the boot never finished: as the boot
    # stopped): (RW bit of its direct-map PTE, or None if unmapped; reserved)
    final_pages: dict[int, tuple[bool | None, bool]] = field(default_factory=dict)
    # For pictures: the pages of every buffer the boot did not finish, and the failing page, as the boot ended
    # (a rejected operation is rolled back: the state just before the failing step)
    end_states: dict[int, PageState] = field(default_factory=dict)
    # What the boot leaves, as it ended (`xenpin equiv` compares it): every page it touched -- a buffer page,
    # a page whose direct-map PTE was ever written read-only or made so, a page table of Xen's or of the
    # kernel, a pinned page -- and the pages `observe` names, as (RW bit of its direct-map PTE or None if
    # unmapped, reserved, pinned); empty unless `boot` is given `observe`
    left: dict[int, tuple[bool | None, bool, bool]] = field(default_factory=dict)

    @property
    def mem_bytes(self) -> int:
        return self.config.mem_bytes

    def buffer(self, call: int) -> BufferState | None:
        """The buffer of `init_memory_mapping` call `call` (None: the boot never made that call)."""
        return next((b for b in self.buffers if b.call == call), None)

    def lines(self, kind: str | None = None) -> list[str]:
        return [line.text for line in self.console if kind is None or line.kind == kind]

    def mismatches(self) -> list[str]:
        """What differs from the variant's expectations: each property it expects `proved` that this run
        violates, and a failed boot that no violated property accounts for."""
        out = [p for p in PROPERTIES if self.variant.expect[p] == "proved" and self.properties[p] is False]
        if self.failure is not None and not any(v is False for v in self.properties.values()):
            out.append(f"outcome {self.outcome}, which no property accounts for")
        return out


def boot(
    variant: KernelVariant,
    config: BootConfig | int,
    rules: str = "xen-4.1",
    *,
    on_step: Callable[[Guest], None] | None = None,
    on_progress: ProgressCallback | None = None,
    observe: Iterable[int] | None = None,
) -> BootResult:
    """Boot `variant` on `config` (or, given an int, a domU -- bare metal for a native variant -- of that many
    bytes). ValueError for a machine the model cannot build (too small a guest, a kernel image too small).
    `on_progress(what, done, total)` is told which mapping call runs and how many of its pages are mapped, once
    per L1 table (2 MiB) or 1 GiB entry: for a progress display, at no measurable cost. `observe`: pages to
    record in `left` as well (another boot's touched pages, for a comparison); None (the default): `left` is not
    recorded (`xenpin equiv` asks for it with `observe=()`; it costs a page walk per touched page)."""
    if isinstance(config, int):
        config = BootConfig(role="domU" if variant.xen else "native", mem_bytes=config)
    if variant.xen == (config.role == "native"):
        raise ValueError(f"variant {variant.name} is for {variant.platform}, the machine is a {config.role}")
    g = Guest(variant, config, rules, on_step)
    failure = None
    try:
        setup_arch(g, on_progress)
    except BootStop as stop:
        failure = stop.failure
    return BootResult(
        variant=variant,
        config=config,
        rules=rules,
        outcome=failure.outcome if failure else "ok",
        failure=failure,
        buffers=g.buffers,
        properties=_properties(g, failure),
        console=list(g.console.lines),
        steps=g.steps,
        pins=g.pins,
        pte_writes=g.pte_writes,
        e820=g.e820,
        start_of_day=g.sod,
        p2m=g.p2m,
        max_pfn=g.max_pfn,
        max_low_pfn=g.max_low_pfn,
        final_pages=_final_pages(g),
        end_states=_end_states(g, failure),
        left=_left(g, observe) if observe is not None else {},
    )


def _left(g: Guest, observe: Iterable[int]) -> dict[int, tuple[bool | None, bool, bool]]:
    """`BootResult.left`: the touched pages (and `observe`) as the boot ended."""
    if g.hv is None:
        return {}
    touched = (
        set(observe) | set(g.ro_pfns) | {p for b in g.buffers for p in range(b.pgt_buf_start, b.pgt_buf_top)}
    )
    touched |= {s.pfn for s in g.steps if s.action == "pin_pagetable_pfn"}
    if g.sod is not None:
        touched |= set(range(g.sod.pt_base, g.sod.pt_end))
    if g.tables is not None:
        t = g.tables
        touched |= {t.init_level4_pgt, t.level3_ident_pgt, t.level2_ident_pgt, t.level3_kernel_pgt,
                    t.level2_kernel_pgt, t.level2_fixmap_pgt, t.bm_pte, *t.level1_ident_pgt}  # fmt: skip
    out = {}
    for p in sorted(touched):
        s = g.page_state(p)
        out[p] = (s.pte, s.reserved, s.pinned)
    return out


def _end_states(g: Guest, failure: Failure | None) -> dict[int, PageState]:
    if g.hv is None:
        return {}
    pfns = [p for b in g.buffers if not b.judged for p in range(b.pgt_buf_start, b.pgt_buf_top)]
    if failure is not None:
        pfns.append(failure.pfn)
    return {p: g.page_state(p) for p in pfns}


def _final_pages(g: Guest) -> dict[int, tuple[bool | None, bool]]:
    out: dict[int, tuple[bool | None, bool]] = {}
    if g.hv is None:
        return out
    for b in g.buffers:
        if b.judged:
            out.update(b.pages)
        else:
            out.update(
                (p, (g.mapped_rw(p), g.memblock.is_reserved(pfn_phys(p))))
                for p in range(b.pgt_buf_start, b.pgt_buf_top)
            )
    return out


def _properties(g: Guest, failure: Failure | None) -> dict[str, bool | None]:
    props: dict[str, bool | None] = dict.fromkeys(PROPERTIES)
    violated = failure.violates if failure else ""
    done = [b for b in g.buffers if b.judged]
    for prop in ("buffer_fits", "alias_writable", "no_rw_alias"):
        props[prop] = False if violated == prop else (True if g.walk_done else None)
    if done or g.walk_done:
        props["spare_writable"] = violated != "spare_writable" and not any(b.ro_after_reserve for b in done)
        props["spare_freed"] = not any(b.spare_reserved for b in done if b.hook_ran)
        props["live_reserved"] = violated != "live_reserved" and not any(b.used_unreserved for b in done)
        if not g.walk_done:  # a later call could still have shown a violation
            for prop in ("spare_writable", "spare_freed", "live_reserved"):
                props[prop] = props[prop] and None
    elif violated in ("spare_writable", "live_reserved"):
        props[violated] = False
    return props


__all__ = ["OUTCOMES", "BootResult", "boot", "direct_va"]
