"""The largest guest this machine can boot in the executable model: the replay limit of `prove` and `equiv`.

A replay holds the whole guest's page state, so its memory grows with the guest: `RSS_PER_GUEST_GIB` bytes of
resident memory per GiB of guest (measured: a 1 GiB domU boot peaks at 0.26 GiB of RSS, a 4 GiB one at 0.95
GiB, a 16 GiB one at ~4 GiB; re-measure with `/usr/bin/time -v python -m xenpin boot MODEL --mem 4G` when the
boot's data structures change). One replay may use at most `RAM_SHARE` of the machine's physical RAM (the rest
is headroom for the solver, the other workers of `--jobs N` and whatever else runs), and the limit is never
below `MIN_LIMIT_BYTES` (a machine too small for that fails like any program that runs out of memory).
"""

from __future__ import annotations

import functools
import os

GIB = 1 << 30
RSS_PER_GUEST_GIB = GIB // 4  # resident bytes per GiB of guest (see the module docstring)
RAM_SHARE = 0.5  # of physical RAM, for one replay
MIN_LIMIT_BYTES = 4 * GIB


def physical_ram_bytes() -> int | None:
    """This machine's physical RAM (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


@functools.cache
def replay_limit_bytes() -> int:
    """The largest guest (bytes, a whole number of GiB) a replay may boot on this machine."""
    ram = physical_ram_bytes()
    if ram is None:
        return MIN_LIMIT_BYTES
    guest_gib = int(ram * RAM_SHARE) // RSS_PER_GUEST_GIB
    return max(MIN_LIMIT_BYTES, guest_gib * GIB)


__all__ = ["RAM_SHARE", "RSS_PER_GUEST_GIB", "physical_ram_bytes", "replay_limit_bytes"]
