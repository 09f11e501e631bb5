"""Boots shared by the test modules: each (variant, machine) is booted once per test session.

A Xen boot costs about 0.25-0.5 s per GiB of guest, so the history tests, the console-format tests and the CLI
tests read the same few boots. Results are shared: tests must not change them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from xenpin.linux.boot import BootResult, boot
from xenpin.linux.layout import BootConfig, parse_size
from xenpin.linux.variant import KernelVariant, load_variant

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "models" / "kernels"
LOGS = ROOT / "models" / "logs"
NAMES = tuple(sorted(p.stem for p in KERNELS.glob("*.toml")))


@cache
def variant(name: str) -> KernelVariant:
    return load_variant(KERNELS / f"{name}.toml")


@cache
def booted(name: str, mem: str, rules: str = "xen-4.1") -> BootResult:
    """`xenpin boot models/kernels/NAME.toml --mem MEM` (a domU, or bare metal for a native variant)."""
    v = variant(name)
    return cached_boot(v, BootConfig(role="domU" if v.xen else "native", mem_bytes=parse_size(mem)), rules)


_BOOTS: dict[tuple[str, str, str], BootResult] = {}


def cached_boot(v: KernelVariant, config: BootConfig | int, rules: str = "xen-4.1", **kw) -> BootResult:
    """`xenpin.linux.boot.boot`, remembered by (variant, machine, rules): what CLI tests patch in, so that
    a log's machine is booted once however many tests compare against it."""
    if kw:
        return boot(v, config, rules, **kw)
    key = (repr(v), repr(config), rules)
    if key not in _BOOTS:
        _BOOTS[key] = boot(v, config, rules, observe=())  # with `left`, for the equiv tests
    return _BOOTS[key]
