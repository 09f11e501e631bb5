"""The closed form of `form.py` over Python integers: one machine's buffers, evaluated, for the tests that put it
beside the boot walk (`xenpin.linux.boot`) at concrete sizes, and beside the Z3 terms of `walk.py`.

`machine_calls(variant, config)` takes a `BootConfig` (a domU, or bare metal with the simple map `form.py`
assumes) and returns the two calls' `form.Call` values with plain ints; `in_domain` says whether the closed
form claims to describe that machine: the domain of `form.domain`, and a machine `form.Params` can describe at
all (a domU whose E820 `xen_memory_setup` makes itself, with xl's maximum reservation, and whose p2m backs every
pfn; bare metal whose E820 leaves
no GiB of `[0, max_pfn)` without an entry).

A domU whose `BootConfig.pgt_buf_start` places the buffers is described by the shape with the buffers anywhere
(`form.py` item 3b) at those places. A bare-metal buffer's place is a free parameter of the closed form (no property depends on it): `bases` gives the
two calls' `pgt_buf_start`; by default the lowest place the domain allows (0x100), so that `in_domain` answers
"is there a placement for which the closed form describes this machine", which holds wherever the tables fit.
"""

from __future__ import annotations

from xenpin.linux.e820 import E820_RAM
from xenpin.linux.layout import DEFAULT_TRAMPOLINE_BYTES, BootConfig
from xenpin.linux.variant import KernelVariant
from xenpin.symbolic.form import INT, Call, Params, Shape, anywhere, calls, domain, layout, shape_of

NATIVE_BASE = 0x100  # the lowest `pgt_buf_start` form.domain allows on bare metal
FOUR_G = 1 << 20  # pfns
GIB = 1 << 18  # pfns


def params_of(
    variant: KernelVariant, config: BootConfig, bases: tuple[int, int] = (NATIVE_BASE, NATIVE_BASE)
) -> Params:
    if not variant.xen:
        ram = [(e.addr >> 12, e.end >> 12) for e in config.host_e820().map if e.type == E820_RAM]
        low = max((end for start, end in ram if start < FOUR_G), default=0)
        high = max((end for start, end in ram if start >= FOUR_G), default=0)
        return Params(
            low_end=min(low, FOUR_G),
            high_end=high,
            base0=bases[0],
            base1=bases[1],
            gbpages=int(config.gbpages),
        )
    base0, base1 = (*(config.pgt_buf_start or ()), 0, 0)[:2]  # a placement given: form.py item 3b
    return Params(
        config.nr_pages,
        -(-config.kernel_bytes // 4096),
        -(-config.ramdisk_bytes // 4096),
        config.slack_bytes >> 12,
        base0=base0,
        base1=base1,
    )


def machine_shape(variant: KernelVariant, config: BootConfig) -> Shape:
    """The variant's walk shape; with the buffers anywhere (`form.anywhere`) if the machine places them."""
    shape = shape_of(variant)
    return anywhere(shape) if variant.xen and config.pgt_buf_start is not None else shape


def machine_calls(
    variant: KernelVariant, config: BootConfig, bases: tuple[int, int] = (NATIVE_BASE, NATIVE_BASE)
) -> tuple[Call, Call]:
    return calls(INT, machine_shape(variant, config), params_of(variant, config, bases))


def describable(variant: KernelVariant, config: BootConfig) -> bool:
    """`form.Params` describes this machine at all (see the module docstring)."""
    if variant.xen:
        if config.pgt_buf_start is not None and config.trampoline_bytes != DEFAULT_TRAMPOLINE_BYTES:
            return False  # item 3b's free runs below 640 KiB end at the default trampoline
        if config.role != "domU" or config.e820 is not None or config.max_reservation is not None:
            return False  # dom0, a domU handed a map or another toolstack's maximum: not what form.layout computes
        p2m = config.p2m
        return p2m is None or (
            not p2m.released and all(p2m.mfn(pfn) is not None for pfn in (0, config.nr_pages - 1))
        )
    if config.role != "native":
        return False
    e820 = config.host_e820()
    p = params_of(variant, config)
    if any(e.type == E820_RAM and e.addr >> 12 < FOUR_G < e.end >> 12 for e in e820.map):
        return False  # RAM across 4 GiB: low_end and high_end do not describe it
    ranges = [(0, p.low_end)] + ([(FOUR_G, p.high_end)] if p.high_end else [])
    return all(
        e820.any_mapped(g << 30, (g + 1) << 30) for lo, hi in ranges for g in range(lo // GIB, -(-hi // GIB))
    )


def in_domain(
    variant: KernelVariant, config: BootConfig, bases: tuple[int, int] = (NATIVE_BASE, NATIVE_BASE)
) -> bool:
    if not describable(variant, config):
        return False
    shape, p = machine_shape(variant, config), params_of(variant, config, bases)
    k0, k1 = calls(INT, shape, p)
    return bool(domain(INT, shape, p, k0, k1))


def machine_layout(variant: KernelVariant, config: BootConfig):
    return layout(INT, shape_of(variant), params_of(variant, config))


__all__ = ["NATIVE_BASE", "describable", "in_domain", "machine_calls", "machine_layout", "params_of"]
