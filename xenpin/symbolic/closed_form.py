"""The closed form of `form.py` over Python integers: one machine's buffers, evaluated, for the tests that put it
beside the boot walk (`xenpin.linux.boot`) at concrete sizes, and beside the Z3 terms of `walk.py`.

`machine_calls(variant, config)` takes a `BootConfig` (a domU, or bare metal with the simple map `form.py`
assumes) and returns the two calls' `form.Call` values with plain ints; `in_domain` says whether the closed
form claims to describe that machine.
"""

from __future__ import annotations

from xenpin.linux.layout import BootConfig
from xenpin.linux.variant import KernelVariant
from xenpin.symbolic.form import INT, Call, Params, calls, domain, layout, shape_of


def params_of(variant: KernelVariant, config: BootConfig) -> Params:
    if not variant.xen:
        ram = [(e.addr >> 12, e.end >> 12) for e in config.host_e820().map if e.type == 1]
        low = max(end for start, end in ram if start < 1 << 20)
        high = max((end for start, end in ram if start >= 1 << 20), default=0)
        return Params(low_end=min(low, 1 << 20), high_end=high)
    return Params(
        config.nr_pages,
        -(-config.kernel_bytes // 4096),
        -(-config.ramdisk_bytes // 4096),
        config.slack_bytes >> 12,
    )


def machine_calls(variant: KernelVariant, config: BootConfig) -> tuple[Call, Call]:
    return calls(INT, shape_of(variant), params_of(variant, config))


def in_domain(variant: KernelVariant, config: BootConfig) -> bool:
    shape, p = shape_of(variant), params_of(variant, config)
    k0, k1 = calls(INT, shape, p)
    return bool(domain(INT, shape, p, k0, k1))


def machine_layout(variant: KernelVariant, config: BootConfig):
    return layout(INT, shape_of(variant), params_of(variant, config))


__all__ = ["in_domain", "machine_calls", "machine_layout", "params_of"]
