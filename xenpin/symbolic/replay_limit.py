"""The largest guest this machine can boot in the executable model: the replay limit of `prove` and `equiv`.

A replay holds the whole guest's page state, so its memory grows with the guest: `xenpin.linux.layout.
BOOT_RSS_GIB_PER_GUEST_GIB` of resident memory per GiB of guest, the one measured constant `xenpin boot`'s
`--mem` cap uses too (`layout.max_boot_bytes`). One replay may use at most `RAM_SHARE` of the machine's physical
RAM (the rest is headroom for the solver, the other workers of `--jobs N` and whatever else runs), and the limit
is never below `MIN_LIMIT_BYTES` (a machine too small for that fails like any program that runs out of memory).
"""

from __future__ import annotations

import functools

from xenpin.linux.layout import machine_ram_bytes, max_boot_bytes

GIB = 1 << 30
RAM_SHARE = 0.5  # of physical RAM, for one replay
MIN_LIMIT_BYTES = 4 * GIB


def physical_ram_bytes() -> int | None:
    """This machine's physical RAM (`layout.machine_ram_bytes`)."""
    return machine_ram_bytes()


@functools.cache
def replay_limit_bytes() -> int:
    """The largest guest (bytes, a whole number of GiB) a replay may boot on this machine."""
    ram = physical_ram_bytes()
    if ram is None:
        return MIN_LIMIT_BYTES
    return max(MIN_LIMIT_BYTES, max_boot_bytes(int(ram * RAM_SHARE)))


__all__ = ["MIN_LIMIT_BYTES", "RAM_SHARE", "physical_ram_bytes", "replay_limit_bytes"]
