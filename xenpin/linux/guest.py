"""The state of one booting guest, in the kernel's own terms: pfns, kernel page tables, memblock, the console.

The validator (`xenpin.xen.hypervisor`) works on machine frames; the kernel on pseudo-physical ones. `Guest`
keeps the pair: `mfn(pfn)` through the p2m (`pfn_to_mfn`), `entry(table, slot)` read back as the pfn it maps
(`mfn_to_pfn`), `lookup_pte(va)` (`lookup_address` through the current CR3). It also holds the kernel's static
page tables of arch/x86/kernel/head_64.S (`init_level4_pgt`, `level3_ident_pgt`, `level2_ident_pgt`,
`level3_kernel_pgt`, `level2_kernel_pgt`, `level2_fixmap_pgt`) and the early_ioremap table `bm_pte`
(arch/x86/mm/ioremap.c), placed inside the kernel image, and the boot's record: steps, console lines, buffers.
A failure stops the boot as it stops the guest (`BootStop`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from xenpin.linux.console import PAGE_OFFSET, Console
from xenpin.linux.e820 import E820
from xenpin.linux.layout import BootConfig, pfn_phys
from xenpin.linux.memblock import Memblock
from xenpin.linux.variant import KernelVariant
from xenpin.xen.domain_builder import P2M, StartOfDay
from xenpin.xen.flags import PSE, RW, Entry
from xenpin.xen.hypervisor import Hypervisor

DIRECT_MAP_L4_SLOT = (PAGE_OFFSET >> 39) & 511  # 272
KERNEL_L4_SLOT = 511  # __START_KERNEL_map, the modules and the fixmap
START_KERNEL_MAP = 0xFFFFFFFF80000000
KERNEL_L3_SLOT = 510  # level3_kernel_pgt[510] -> level2_kernel_pgt; [511] -> level2_fixmap_pgt
FIXMAP_L3_SLOT = 511
# early_ioremap's table bm_pte sits under level2_fixmap_pgt; its VA only shows in oops lines, which Xen's
# dummy shared info turns into "(null)" this early anyway. FIX_BTMAPS_SLOTS = 4 nested maps of NR_FIX_BTMAPS
# = 64 pages each.
BTMAP_L2_SLOT = 505
BTMAP_VA = 0xFFFFFFFFFF200000
NR_FIX_BTMAPS = 64
FIX_BTMAPS_SLOTS = 4


def direct_va(pfn: int) -> int:
    """`__va(PFN_PHYS(pfn))`."""
    return PAGE_OFFSET + pfn_phys(pfn)


class BootStop(Exception):
    """The guest stops here (BUG, panic or an unhandled fault); `failure` says how."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Failure:
    outcome: str  # xen-rejected | kernel-fault | panic
    step: int
    pfn: int
    message: str  # the kernel's own line (panic, oops), or for a BUG() this early Xen's trap line
    operation: str = ""
    errno: str | None = None
    xen_log: tuple[str, ...] = ()  # Xen's console lines, `(XEN) mm.c:2424:d1 Bad type ...`
    bug_site: str = ""
    reason: str = ""
    violates: str = ""  # the property this failure is a violation of
    phase: str = ""  # where in the boot: init_memory_mapping call N, initmem_init, the page allocator
    function: str = ""  # the kernel function that faulted (the oops' IP line names it)


@dataclass(frozen=True, slots=True)  # slots: a boot records a few steps per L1 table, millions at 1 TiB
class Step:
    index: int
    call: int  # which init_memory_mapping call (0, 1, ...); -1 outside them
    action: str
    pfn: int
    detail: str
    pgt_buf_end: int
    table: int | None = None  # the table whose entry the step writes (an L1 for set_pte), when it names one
    slot: int | None = None


@dataclass(frozen=True, slots=True)
class PageState:
    """One page as the kernel's tables and Xen see it at one moment (for pictures; not used by the checks).

    `pte` is the RW bit of its direct-map PTE (None: none), found through CR3 or, where CR3 does not reach it
    yet, in the L1 the walk wrote it into (`linked` False: that L1 is not yet linked into the live tree).
    """

    pte: bool | None
    l1: int | None
    slot: int | None
    linked: bool
    reserved: bool
    xen_type: str  # Xen's type of the frame: writable, l1 .. l4, none
    type_count: int
    pinned: bool


@dataclass
class BufferState:
    """One call's buffer: `pgt_buf_start/end/top` (PFNs) and the range the call maps."""

    call: int
    range_start: int
    range_end: int
    pgt_buf_start: int
    pgt_buf_end: int
    pgt_buf_top: int
    hook_ran: bool = False
    # Judged right after the call's reserve step (or where its guard skipped it):
    judged: bool = False
    ro_after_reserve: tuple[int, ...] = ()  # spare pages still mapped RO
    spare_reserved: tuple[int, ...] = ()  # spare pages reserved
    used_unreserved: tuple[int, ...] = ()  # used pages left free
    pages: dict[int, tuple[bool | None, bool]] = field(
        default_factory=dict
    )  # pfn -> (RW bit or None, reserved)
    states: dict[int, PageState] = field(default_factory=dict)  # the same moment, for pictures
    judged_at: int = -1  # the step index of that moment

    @property
    def used(self) -> range:
        return range(self.pgt_buf_start, self.pgt_buf_end)

    @property
    def spare(self) -> range:
        return range(self.pgt_buf_end, self.pgt_buf_top)


class PfnRanges:
    """A set of pfns kept as sorted, disjoint, non-adjacent runs `[lo, hi)`: a run of a million pfns is two ints."""

    def __init__(self) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []

    def add(self, pfn: int) -> None:
        self.add_range(pfn, pfn + 1)

    def add_range(self, lo: int, hi: int) -> None:
        if lo >= hi:
            return
        i = bisect_left(self._hi, lo)  # the first run ending at or after lo: it touches or follows [lo, hi)
        j = bisect_right(self._lo, hi)  # the runs before j start at or before hi
        if i < j:
            lo, hi = min(lo, self._lo[i]), max(hi, self._hi[j - 1])
        self._lo[i:j] = [lo]
        self._hi[i:j] = [hi]

    def runs(self) -> list[tuple[int, int]]:
        return list(zip(self._lo, self._hi, strict=True))

    def __contains__(self, pfn: object) -> bool:
        i = bisect_right(self._lo, pfn) - 1  # type: ignore[call-overload]
        return i >= 0 and pfn < self._hi[i]  # type: ignore[operator]

    def __iter__(self) -> Iterator[int]:
        for lo, hi in zip(self._lo, self._hi, strict=True):
            yield from range(lo, hi)

    def __len__(self) -> int:
        return sum(hi - lo for lo, hi in zip(self._lo, self._hi, strict=True))


@dataclass
class KernelTables:
    """The pfns of head_64.S's static tables and bm_pte, inside the kernel image."""

    init_level4_pgt: int
    level3_ident_pgt: int
    level2_ident_pgt: int
    level3_kernel_pgt: int
    level2_kernel_pgt: int
    level2_fixmap_pgt: int
    bm_pte: int
    level1_ident_pgt: list[int] = field(default_factory=list)  # the brk pages xen_map_identity_early takes


class Guest:
    """One boot's machine and kernel state (see the module docstring)."""

    def __init__(
        self,
        variant: KernelVariant,
        config: BootConfig,
        rules: str,
        on_step: Callable[[Guest], None] | None = None,
    ) -> None:
        self.variant = variant
        self.config = config
        self.rules = rules
        self.xen = variant.xen
        self.on_step = on_step
        own = "3.9" if variant.code["init_mem_mapping"] == "3.9" else "2.6"
        self.console = Console(config.printk or own)
        self.memblock = Memblock(printer=self.console.print, dialect=self.console.dialect)
        self.e820 = E820()
        self.steps: list[Step] = []
        self.buffers: list[BufferState] = []
        self.buf: BufferState | None = None
        self.call = -1
        self.sod: StartOfDay | None = None
        self.p2m: P2M | None = None
        self.hv: Hypervisor = None  # type: ignore[assignment]  # made by the start of day
        self.tables: KernelTables = None  # type: ignore[assignment]
        self.max_pfn = 0
        self.max_low_pfn = 0
        self.max_pfn_mapped = 0
        self.shared_info_ready = False  # xen_setup_shared_info(): before it, Xen's CR2 is read as 0
        self.pins = 0
        self.pte_writes = 0
        self.walk_done = False
        self.kernel_start = 0
        self.kernel_end = 0
        self.ramdisk: tuple[int, int] | None = None  # bytes
        self.ro_pfns = PfnRanges()  # pfns whose direct-map PTE was written RO at some point
        self.pte_home: dict[int, tuple[int, int]] = {}  # buffer pfn -> (L1, slot) its direct-map PTE went to

    # ----------------------------------------------------------------------------------- p2m and reads

    def mfn(self, pfn: int) -> int | None:
        """`pfn_to_mfn`: None where no memory backs the pfn (INVALID_P2M_ENTRY)."""
        return self.p2m.mfn(pfn) if self.p2m is not None else pfn

    def mfn_runs(self, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
        """`pfn_to_mfn` over pfns `[lo, hi)` in runs: `(first, end, mfn of first, step)` for the pfns memory backs,
        ascending, the mfns of consecutive pfns `step` apart (the p2m is `mfn = base + step * pfn`)."""
        p2m = self.p2m
        if p2m is None:
            return [(lo, hi, lo, 1)] if lo < hi else []
        pieces = [(max(lo, 0), min(hi, p2m.nr_pages))]
        for a, b in p2m.released:
            pieces = [q for x, y in pieces for q in ((x, min(y, a)), (max(x, b), y))]
        return [(x, y, p2m.base + p2m.step * x, p2m.step) for x, y in pieces if x < y]

    def entry(self, table: int, slot: int) -> tuple[int, int] | None:
        """The present entry `table[slot]` as (pfn it maps, flags)."""
        e = self.hv.entry(self.mfn(table), slot)
        if e is None:
            return None
        return (self.hv.frame(e.mfn).pfn if self.hv.has_frame(e.mfn) else e.mfn), e.flags

    def hv_entry(self, pfn: int | None, flags: int) -> Entry | None:
        """`pfn_pte(pfn, prot)` on Xen (`pte_pfn_to_mfn`): not present where the pfn has no mfn."""
        if pfn is None:
            return None
        mfn = self.mfn(pfn)
        return None if mfn is None else Entry(mfn, flags)

    def lookup_pte(self, va: int) -> tuple[int, int] | None:
        """`lookup_address(va)` for a 4 KiB mapping: (L1 pfn, slot) of the present PTE that maps `va`."""
        leaf = self.lookup(va)
        if leaf is None or leaf[2] != 1:
            return None
        return leaf[0], leaf[1]

    def lookup(self, va: int) -> tuple[int, int, int, int] | None:
        """`lookup_address(va, &level)`: (table pfn, slot, level, flags) of the present leaf entry mapping
        `va` through the current CR3 (level 2 or 3 for a PSE entry), or None."""
        hv = self.hv
        mfn = hv.baseptr
        for level in (4, 3, 2, 1):
            slot = (va >> (12 + 9 * (level - 1))) & 511
            e = hv.entry(mfn, slot) if mfn is not None and hv.has_frame(mfn) else None
            if e is None:
                return None
            if level == 1 or (level in (2, 3) and e.flags & PSE):
                return hv.frame(mfn).pfn, slot, level, e.flags
            mfn = e.mfn
        return None  # pragma: no cover

    def mapped_rw(self, pfn: int) -> bool | None:
        """The RW bit of `pfn`'s direct-map PTE (or large-page entry), or None if nothing maps it."""
        leaf = self.lookup(direct_va(pfn))
        return None if leaf is None else bool(leaf[3] & RW)

    def clear_page(self, pfn: int) -> None:
        """`clear_page` of a page about to become a table: no entry survives from before."""
        if not self.xen:  # bare metal: the model adds a frame as a page becomes a table
            self.hv.add_guest_frames([pfn])
        mfn = self.mfn(pfn)
        for slot, _ in self.hv.entries(mfn):
            self.hv.write(mfn, slot, None)

    def judge(self, buf: BufferState) -> None:
        """Record the buffer as the reserve step left it."""
        reserved = self.memblock.is_reserved
        buf.pages = {
            p: (self.mapped_rw(p), reserved(pfn_phys(p))) for p in range(buf.pgt_buf_start, buf.pgt_buf_top)
        }
        buf.ro_after_reserve = tuple(p for p in buf.spare if buf.pages[p][0] is False)
        buf.spare_reserved = tuple(p for p in buf.spare if buf.pages[p][1])
        buf.used_unreserved = tuple(p for p in buf.used if not buf.pages[p][1])
        buf.states = {p: self.page_state(p) for p in buf.pages}
        buf.judged_at = len(self.steps) - 1
        buf.judged = True

    def page_state(self, pfn: int) -> PageState:
        """`pfn` as the tables and Xen see it now (see `PageState`)."""
        leaf = self.lookup(direct_va(pfn))
        l1 = slot = None
        linked = leaf is not None
        if leaf is not None:
            rw: bool | None = bool(leaf[3] & RW)
            l1, slot = leaf[0], leaf[1]
        else:
            rw = None
            home = self.pte_home.get(pfn)
            e = self.entry(*home) if home is not None and self.mfn(home[0]) is not None else None
            if e is not None and e[0] == pfn:
                rw, (l1, slot) = bool(e[1] & RW), home
        mfn = self.mfn(pfn)
        frame = self.hv.frame(mfn) if mfn is not None and self.hv.has_frame(mfn) else None
        return PageState(
            pte=rw,
            l1=l1,
            slot=slot,
            linked=linked,
            reserved=self.memblock.is_reserved(pfn_phys(pfn)),
            xen_type=frame.type_name if frame is not None else "none",
            type_count=frame.type_count if frame is not None else 0,
            pinned=frame.pinned if frame is not None else False,
        )

    def live_level(self, pfn: int) -> int:
        mfn = self.mfn(pfn)
        return self.hv.live_level(mfn) if mfn is not None and self.hv.has_frame(mfn) else 0

    # ----------------------------------------------------------------------------------- records

    def step(
        self, action: str, pfn: int, detail: str = "", table: int | None = None, slot: int | None = None
    ) -> None:
        buf = self.buf
        self.steps.append(
            Step(len(self.steps), self.call, action, pfn, detail, buf.pgt_buf_end if buf else 0, table, slot)
        )
        if action == "set_pte" and table is not None and slot is not None:
            self.pte_home[pfn] = (table, slot)

    def in_buffer(self, pfn: int) -> bool:
        buf = self.buf
        return buf is not None and buf.pgt_buf_start <= pfn < buf.pgt_buf_top

    def buffer_pfns(self, lo: int, hi: int) -> range:
        """The pfns of `[lo, hi)` inside the current buffer (`in_buffer`), ascending."""
        buf = self.buf
        if buf is None:
            return range(0)
        return range(max(lo, buf.pgt_buf_start), min(hi, buf.pgt_buf_top))

    def stop(self, outcome: str, pfn: int, message: str, **kw) -> None:
        self.step(outcome, pfn, message)
        phase = kw.pop("phase", None) or (f"init_memory_mapping call {self.call}" if self.call >= 0 else "")
        raise BootStop(Failure(outcome, len(self.steps) - 1, pfn, message, phase=phase, **kw))

    def oops(self, va: int, pfn: int, reason: str, violates: str = "", function: str = "", **kw) -> None:
        """A write fault the kernel cannot fix up: `no_context` prints the oops line and the guest dies.

        Until `xen_setup_shared_info` maps the real shared info page, `xen_read_cr2` reads the dummy one's
        CR2 (0): the line says "NULL pointer dereference at (null)", as 92bdaef7b2c5's log shows.
        """
        self.console.oops(va if self.shared_info_ready else 0)
        line = self.console.lines[-1].text
        if function:  # the oops' "IP: [<address>] function+offset/size" (xenpin knows the function only)
            self.console.print("oops_ip", f"IP: {function}")
        # the oops kills the only task there is yet: do_exit() of pid 0
        self.console.print("failure", "Kernel panic - not syncing: Attempted to kill the idle task!")
        self.stop("kernel-fault", pfn, line, reason=reason, violates=violates, function=function, **kw)

    def notify(self) -> None:
        if self.on_step is not None:
            self.on_step(self)


__all__ = [
    "BootStop",
    "BufferState",
    "Failure",
    "Guest",
    "KernelTables",
    "PageState",
    "PfnRanges",
    "Step",
    "direct_va",
]
