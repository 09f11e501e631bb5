"""What Xen's domain builder leaves a 64-bit PV guest at start of day: the layout of its first pages and the
bootstrap page tables that map them, built in the validator.

Two builders, both from Xen 4.1:
- a domU, by libxc (`tools/libxc/xc_dom_core.c` `xc_dom_build_image`, `xc_dom_x86.c`): the kernel image at its
  ELF address (`virt_base` = `__START_KERNEL_map` is pfn 0, so `_text` at 16 MiB is pfn 0x1000), the ramdisk right
  after it, then the p2m list (`mfn_list`, 8 bytes per page), the start info, xenstore and console pages, the
  page tables (`count_pgtables`: one L4, L3, L2 and one L1 per 2 MiB, sized for the mapping they are part of),
  the boot stack, and at least 512 KiB of padding up to a 4 MiB boundary (`virt_pgtab_end`); all of it mapped RW
  by those tables, except the tables themselves, which are RO (`setup_pgtables_x86_64`);
- dom0, by the hypervisor (`xen/arch/x86/domain_build.c` `construct_dom0`): kernel, initrd, p2m, start info
  (no xenstore or console page), `nr_pt_pages` tables, the stack, `v_end` rounded up to 4 MiB with >= 512 KiB
  of padding (4 MiB more if the rounding leaves less).
The guest's pseudo-physical frames (pfns) are backed by machine frames (mfns) through a p2m that is not the
identity (`P2M`): Xen's messages name both (`for mfn b1d89 (pfn bacf7)`). The builder pins the L4 and loads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenpin.xen.flags import RW, P
from xenpin.xen.hypervisor import Hypervisor

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
VIRT_BASE = 0xFFFFFFFF80000000  # __START_KERNEL_map: the ELF note XEN_ELFNOTE_VIRT_BASE of a Linux kernel
KERNEL_START_PFN = 0x1000  # _text = 0xffffffff81000000 (CONFIG_PHYSICAL_START = 16 MiB)
PADDING_PAGES = 128  # "512kB padding"
ROUND_4M = 1 << (22 - PAGE_SHIFT)


def pages(nbytes: int) -> int:
    return -(-nbytes // PAGE_SIZE)


def round_up(x: int, to: int) -> int:
    return -(-x // to) * to


@dataclass(frozen=True)
class P2M:
    """The guest's pfn -> mfn table for the pfns Xen populated (`[0, nr_pages)`): `mfn = base + step * pfn`.

    Xen's buddy allocator hands a fresh domU its pages from the top of a free block down (`step = -1`);
    `construct_dom0` takes one contiguous chunk (`step = +1`).
    """

    nr_pages: int
    base: int
    step: int = -1
    released: tuple[tuple[int, int], ...] = ()  # pfn ranges given back to Xen (dom0's E820 holes)

    def mfn(self, pfn: int) -> int | None:
        if not 0 <= pfn < self.nr_pages:
            return None  # no memory behind it (INVALID_P2M_ENTRY): the extra region, E820 holes
        if self.released and any(lo <= pfn < hi for lo, hi in self.released):
            return None
        return self.base + self.step * pfn

    def pfn(self, mfn: int) -> int:
        return (mfn - self.base) // self.step

    def describe(self) -> str:
        if self.step == 1:
            return f"mfn = pfn + {self.base:#x}"
        return f"mfn = {self.base:#x} - pfn"

    @staticmethod
    def through(nr_pages: int, pfn: int, mfn: int, step: int) -> P2M:
        """The p2m of slope `step` that maps `pfn` to `mfn` (a pair a log names)."""
        return P2M(nr_pages, mfn - step * pfn, step)

    @staticmethod
    def default(nr_pages: int, dom0: bool) -> P2M:
        if dom0:
            return P2M(nr_pages, 0x100, 1)  # one chunk above the first MiB of the host, which Xen keeps
        top = max(0xFFFFFF, nr_pages + 0xFFFFF)  # a domU on a 64 GiB host (or bigger), from the top down
        return P2M(nr_pages, top, -1)


@dataclass(frozen=True)
class StartOfDay:
    """The pfns of the builder's layout (`start_info_t`'s fields, as pfns) and what the tables map."""

    dom0: bool
    nr_pages: int
    kernel_start: int
    kernel_end: int  # one past the last page of the image (`_end` rounded up)
    ramdisk_start: int
    ramdisk_end: int  # == ramdisk_start when there is none
    mfn_list: int
    start_info: int
    pt_base: int
    nr_pt_frames: int
    pg_l1: int  # the L1s among them (the first three are L4, L3, L2)
    boot_stack: int
    v_end: int  # one past the last pfn the bootstrap tables map (4 MiB aligned)

    @property
    def pt_end(self) -> int:
        return self.pt_base + self.nr_pt_frames


def xc_dom_layout(nr_pages: int, kernel_bytes: int, ramdisk_bytes: int) -> StartOfDay:
    """libxc 4.1 `xc_dom_build_image` for a 64-bit PV domU (see the module docstring)."""
    kernel_end = KERNEL_START_PFN + pages(kernel_bytes)
    ramdisk_end = kernel_end + pages(ramdisk_bytes)
    mfn_list = ramdisk_end  # alloc_magic_pages: "phys2mach"
    start_info = mfn_list + pages(nr_pages * 8)
    virt_alloc_end = start_info + 3  # start info, xenstore, console
    # count_pgtables(): extra_pages = boot stack + 128 pages of padding; one L4, L3 and L2 for the kernel's GiB.
    extra = 1 + PADDING_PAGES
    npages = extra
    while True:
        try_end = round_up(virt_alloc_end + npages, ROUND_4M)  # try_virt_end + 1, in pfns
        pg_l1 = try_end >> 9
        pgtables = 3 + pg_l1
        npages = pgtables + extra
        if virt_alloc_end + npages <= try_end:
            break
    return StartOfDay(
        dom0=False,
        nr_pages=nr_pages,
        kernel_start=KERNEL_START_PFN,
        kernel_end=kernel_end,
        ramdisk_start=kernel_end,
        ramdisk_end=ramdisk_end,
        mfn_list=mfn_list,
        start_info=start_info,
        pt_base=virt_alloc_end,
        nr_pt_frames=pgtables,
        pg_l1=pg_l1,
        boot_stack=virt_alloc_end + pgtables,
        v_end=try_end,
    )


def construct_dom0_layout(nr_pages: int, kernel_bytes: int, ramdisk_bytes: int) -> StartOfDay:
    """Xen 4.1 `construct_dom0` for a 64-bit dom0 (see the module docstring)."""
    kernel_end = KERNEL_START_PFN + pages(kernel_bytes)
    ramdisk_end = kernel_end + pages(ramdisk_bytes)
    mfn_list = ramdisk_end
    start_info = mfn_list + pages(nr_pages * 8)
    pt_start = start_info + 1  # start_info + dom0_vga_console_info fit one page
    nr_pt = 2
    while True:
        stack = pt_start + nr_pt
        v_end = round_up(stack + 1, ROUND_4M)
        if v_end - (stack + 1) < PADDING_PAGES:
            v_end += ROUND_4M  # "Add extra 4MB to get >= 512kB padding."
        l1s = -(-v_end // 512)
        if 1 + 1 + 1 + l1s <= nr_pt:  # L4, L3, L2 for the one GiB, and the L1s
            break
        nr_pt += 1
    return StartOfDay(
        dom0=True,
        nr_pages=nr_pages,
        kernel_start=KERNEL_START_PFN,
        kernel_end=kernel_end,
        ramdisk_start=kernel_end,
        ramdisk_end=ramdisk_end,
        mfn_list=mfn_list,
        start_info=start_info,
        pt_base=pt_start,
        nr_pt_frames=nr_pt,
        pg_l1=nr_pt - 3,
        boot_stack=stack,
        v_end=v_end,
    )


def build_bootstrap_tables(hv: Hypervisor, sod: StartOfDay, p2m: P2M) -> None:
    """`setup_pgtables_x86_64` (and construct_dom0's equivalent): L4[511] -> L3[510] -> L2[i] -> L1 i, the L1s
    mapping `[0, v_end)` RW but the tables RO; then the builder pins the L4 and makes it the guest's CR3."""
    m = p2m.mfn
    l4, l3, l2 = sod.pt_base, sod.pt_base + 1, sod.pt_base + 2
    l1s = range(sod.pt_base + 3, sod.pt_base + 3 + sod.pg_l1)
    table = range(sod.pt_base, sod.pt_end)
    hv.fill_table(m(l4), [(511, m(l3), P | RW)])
    hv.fill_table(m(l3), [(510, m(l2), P | RW)])
    hv.fill_table(m(l2), [(i, m(l1), P | RW) for i, l1 in enumerate(l1s)])
    for i, l1 in enumerate(l1s):
        base = i * 512
        hv.fill_table(
            m(l1),
            ((s, m(pfn), P if pfn in table else P | RW) for s, pfn in enumerate(range(base, base + 512))),
        )
    for r in (hv.pin(4, m(l4)), hv.new_baseptr(m(l4))):
        if not r.ok:  # pragma: no cover - the builder's own tables are valid by construction
            raise AssertionError(f"Xen's bootstrap tables were rejected: {r}")


__all__ = [
    "KERNEL_START_PFN",
    "P2M",
    "VIRT_BASE",
    "StartOfDay",
    "build_bootstrap_tables",
    "construct_dom0_layout",
    "xc_dom_layout",
]
