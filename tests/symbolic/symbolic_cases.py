"""What the symbolic tests share: the shipped variants and their walk shapes, machines, cached boots, the
per-call reading of a boot (`boot_violates`), mutant policies, and the marker for slow tests.

Everything is derived from `models/kernels/*.toml`, so a variant added there is covered without a test change.
"""

from __future__ import annotations

import os
import pickle
from multiprocessing.connection import Connection

import pytest
from bootcache import NAMES, cached_boot, variant

from xenpin.linux.boot import BootResult
from xenpin.linux.layout import DEFAULT_KERNEL_BYTES, DEFAULT_RAMDISK_BYTES, XEN_SLACK_BYTES, BootConfig
from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.strategies import mutate
from xenpin.symbolic.form import Shape, shape_of
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

MIB, GIB = 1 << 20, 1 << 30
LIMITS = {"rlimit": DEFAULT_RLIMIT, "timeout_s": DEFAULT_TIMEOUT_S}
VARIANTS: dict[str, KernelVariant] = {name: variant(name) for name in NAMES}
JOBS = [(VARIANTS[name], prop) for name in NAMES for prop in PROPERTIES]


def run_batch(send: Connection) -> None:
    """In a process of its own (conftest.py, early_verdicts.py): the verdicts of JOBS, `xenpin prove --jobs
    2`, sent back pickled (bytes: a receiver that only writes them to a file never builds z3 objects)."""
    from xenpin.symbolic.batch import prove_many

    send.send_bytes(pickle.dumps(prove_many(JOBS, workers=2, **LIMITS)))
    send.close()


XEN = tuple(n for n in NAMES if VARIANTS[n].xen)
NATIVE = tuple(n for n in NAMES if not VARIANTS[n].xen)
BUFFERED_XEN = tuple(n for n in XEN if VARIANTS[n].placement != "mapped")  # 3.9 has no pgt_buf buffer
SHAPES: dict[Shape, tuple[str, ...]] = {}
for _name in NAMES:
    SHAPES.setdefault(shape_of(VARIANTS[_name]), ())
    SHAPES[shape_of(VARIANTS[_name])] += (_name,)
SHAPE_LIST = sorted(SHAPES, key=lambda s: s.key)
REPRESENTATIVE = {shape: names[0] for shape, names in SHAPES.items()}  # one variant per walk shape

KERNEL = -(-DEFAULT_KERNEL_BYTES // 4096)
RAMDISK = -(-DEFAULT_RAMDISK_BYTES // 4096)
SLACK = XEN_SLACK_BYTES >> 12

slow = pytest.mark.slow
skip_unless_slow = pytest.mark.skipif(os.environ.get("XENPIN_SLOW") != "1", reason="slow: set XENPIN_SLOW=1")


def domu(nr: int, kernel: int = KERNEL, ramdisk: int = RAMDISK, slack: int = SLACK) -> BootConfig:
    """A domU of `nr` pages with a kernel image, ramdisk and E820 slack of so many pages."""
    return BootConfig(
        role="domU", mem_bytes=nr << 12, kernel_bytes=kernel << 12, ramdisk_bytes=ramdisk << 12,
        slack_bytes=slack << 12,
    )  # fmt: skip


def boot_of(v: KernelVariant | str, config: BootConfig) -> BootResult:
    """A boot shared by every test that asks for the same (variant, machine)."""
    return cached_boot(VARIANTS[v] if isinstance(v, str) else v, config)


# --- the boot walk, read per init_memory_mapping call ------------------------------------------------------

WALK_PROPERTIES = ("buffer_fits", "alias_writable", "no_rw_alias")


def failed_call(r: BootResult) -> int | None:
    """The call a failure belongs to: the call it happened in; 2.6.39-rc6's deferred mark_rw_past_pgt the
    call whose buffer it restores; after the walk, the call whose buffer holds the page."""
    f = r.failure
    restores = [s for s in r.steps[: f.step] if s.action not in ("make_lowmem_page_readwrite",)]
    if restores and restores[-1].action == "mark_rw_past_pgt":
        end = restores[-1].pfn
        return next((b.call for b in r.buffers if b.call >= 0 and b.pgt_buf_end == end), None)
    call = r.steps[f.step].call
    if call >= 0:
        return call
    return next((b.call for b in r.buffers if b.call >= 0 and b.pgt_buf_start <= f.pfn < b.pgt_buf_top), None)


def boot_violates(r: BootResult, prop: str, call: int) -> bool | None:
    """Written independently of `prove.violated_in`: did this boot violate `prop` in `call`; None where the
    boot stopped before it could tell."""
    if r.failure is not None and r.failure.violates == prop and failed_call(r) == call:
        return True
    buf = next((b for b in r.buffers if b.call == call), None)
    if buf is None or not buf.judged:
        return None
    if prop == "no_rw_alias" and r.variant.code["pagetable_reserve"] == "2.6.39-rc6":
        # the deferred restore of this buffer is part of it: known once it ran, or the boot finished
        ran = any(s.action == "mark_rw_past_pgt" and s.pfn == buf.pgt_buf_end for s in r.steps)
        return False if ran or r.failure is None else None
    if prop in WALK_PROPERTIES:
        return False
    if prop == "spare_writable":
        return any(buf.pages[p][0] is False for p in buf.spare)
    if prop == "spare_freed":
        return buf.hook_ran and any(buf.pages[p][1] for p in buf.spare)
    assert prop == "live_reserved"
    return any(not buf.pages[p][1] for p in buf.used)


# --- mutant policies ------------------------------------------------------------------------------------------


def mutant(base: str, readonly: str | None = None, reserve: str | None = None, writable: str | None = None):
    """`base` with some of its policies replaced (named after what changed)."""
    return mutate(VARIANTS[base], readonly, reserve, writable)
