"""Reading a real boot log: what each line is, the machine it describes, and how a boot's lines compare to it.

A log is a console capture of an early boot, in any of the formats the kernels of 2010-2013 printed (2.6.37 ..
3.1, 3.9's `[mem ...]` ranges, the x86 tip tree of December 2010), with or without `[    0.000000]`
timestamps and `<N>` levels, and possibly with Xen's own `(XEN) ...` lines mixed in. `parse_log` classifies every
line by kind (`KINDS`) and keeps the values it carries. `configure` builds the `BootConfig` the log describes:
the role (a `(XEN) ...:d0` line or "Xen: setup ISA identity maps" means dom0; `Xen:` E820 lines or other Xen
lines a domU; a native variant boots bare metal), the memory (a domU's `nr_pages` is what, through the variant's
own `xen_memory_setup`, gives the logged `max_pfn` and `max_low_pfn`: 8 MiB of slack at `mem_end`, or at 4 GiB
for 2.6.39-rc5 .. 2.6.39.x), the kernel and ramdisk (`RAMDISK:` starts right after the kernel image in Xen's
layout; `initial memory mapped` of 2.6.39+ is where the ramdisk ends), the host E820 (native: the BIOS lines, or
RAM up to each `init_memory_mapping` end; dom0: Xen's own `(XEN)` E820 lines), dom0's allocation (`Dom0 alloc.:`,
`Loaded kernel:`, `Init. ramdisk:`), 1 GiB pages (a `page 1G` line, or 2 MiB pages over a whole GiB), the p2m
(a `(XEN) ... mfn M (pfn P)` pair), Xen's source line numbers, `sizeof(pg_data_t)` and the trampoline's size.
`compare` pairs each logged line of a compared kind with the boot's line of the same kind, in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xenpin.linux.e820 import E820, E820Entry, match_e820_line, strip_timestamp
from xenpin.linux.layout import (
    DEFAULT_KERNEL_BYTES,
    FOUR_GIB_PFN,
    BootConfig,
)
from xenpin.linux.memblock import Memblock
from xenpin.linux.variant import KernelVariant
from xenpin.linux.xen_setup import xen_memory_setup
from xenpin.xen.console import site_of
from xenpin.xen.domain_builder import KERNEL_START_PFN, P2M

if TYPE_CHECKING:
    from xenpin.linux.boot import BootResult

# The kinds `boot --dmesg` compares, and the kinds it reads but does not compare.
COMPARED = (
    "raw_console",
    "xen_setup",
    "e820",
    "last_pfn",
    "mapped",
    "trampoline",
    "init_memory_mapping",
    "page_size",
    "tables",
    "reserve",
    "setting_rw",
    "ramdisk",
    "numa",
    "node_data",
    "failure",
    "oops_ip",
    "xen",
)
# Reservations xenpin makes; a `memblock_x86_reserve_range` of another name (CRASH KERNEL, ACPI tables, ...)
# is read but not compared.
MODELLED_RESERVATIONS = frozenset(
    {
        "PGTABLE",
        "NODE_DATA",
        "TRAMPOLINE",
        "BRK",
        "TEXT DATA BSS",
        "RAMDISK",
        "XEN START INFO",
        "XEN PAGETABLES",
        "XEN EXTRA",
    }
)

_H = "[0-9a-fA-F]"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("last_pfn", re.compile(rf"^(?:e820: )?last_pfn = 0x(?P<a>{_H}+) max_arch_pfn = 0x{_H}+$")),
    ("mapped", re.compile(rf"^initial memory mapped ?: (?:0 - (?P<b>{_H}+)|\[mem 0x0+-0x(?P<b1>{_H}+)\])$")),
    ("init_memory_mapping", re.compile(rf"^init_memory_mapping: (?P<a>{_H}{{16}})-(?P<b>{_H}{{16}})$")),
    (
        "init_memory_mapping",
        re.compile(rf"^init_memory_mapping: \[(?:mem )?0x(?P<a>{_H}+)-0x(?P<b1>{_H}+)\]$"),
    ),
    ("page_size", re.compile(rf"^\s*(?P<a>{_H}{{10}}) - (?P<b>{_H}{{10}}) page (?P<size>4k|2M|1G)$")),
    ("page_size", re.compile(rf"^\s*\[mem 0x(?P<a>{_H}+)-0x(?P<b1>{_H}+)\] page (?P<size>4k|2M|1G)$")),
    ("tables", re.compile(rf"^kernel direct mapping tables up to (?P<e>{_H}+) @ (?P<a>{_H}+)-(?P<b>{_H}+)$")),
    (
        "tables",
        re.compile(
            rf"^kernel direct mapping tables up to (?P<e>{_H}+) @ \[0x(?P<a>{_H}+)-0x(?P<b1>{_H}+)\]$"
        ),
    ),
    (
        "reserve",
        re.compile(
            rf"^\s*memblock_x86_reserve_range: \[0x(?P<a>{_H}+)-0x(?P<b1>{_H}+)\]\s+(?P<name>.+?)\s*$"
        ),
    ),
    (
        "reserve",
        re.compile(rf"^\s*memblock_reserve: \[0x(?P<a>{_H}+)-0x(?P<b>{_H}+)\]\s+(?P<name>\S+?)(?:\+0x.*)?$"),
    ),
    ("reserve", re.compile(rf"^BRK \[0x(?P<a>{_H}+), 0x(?P<b1>{_H}+)\] (?P<name>PGTABLE)$")),
    ("setting_rw", re.compile(rf"^xen: setting RW the range (?P<a>{_H}+) - (?P<b>{_H}+)$")),
    ("ramdisk", re.compile(rf"^RAMDISK: (?P<a>{_H}+) - (?P<b>{_H}+)$")),
    ("ramdisk", re.compile(rf"^RAMDISK: \[mem 0x(?P<a>{_H}+)-0x(?P<b1>{_H}+)\]$")),
    ("trampoline", re.compile(rf"^Base memory trampoline at \[{_H}+\] (?P<a>{_H}+) size (?P<size>\d+)$")),
    ("numa", re.compile(r"^(No NUMA configuration found|NUMA turned off)$")),
    ("numa", re.compile(r"^NUMA: Using \d+ for the hash shift\.$")),
    ("numa", re.compile(r"^(Faking a node at|Initmem setup node \d+) .*$")),
    ("node_data", re.compile(rf"^\s*NODE_DATA \[(?:mem 0x)?(?P<a>{_H}+)(?: - |-0x)(?P<b1>{_H}+)\]$")),
    (
        "failure",
        re.compile(r"^BUG: unable to handle kernel (NULL pointer dereference|paging request) at\s+\S+$"),
    ),
    ("failure", re.compile(r"^Kernel panic - not syncing: .*$")),
    ("failure", re.compile(r"^kernel BUG at .*$")),
    ("oops_ip", re.compile(rf"^IP: \[<{_H}+>\] (?P<func>[\w.]+)\+0x{_H}+/0x{_H}+$")),
    (
        "raw_console",
        re.compile(
            r"^(mapping kernel into physical memory|Xen: setup ISA identity maps|about to get"
            r" started\.\.\.)$"
        ),
    ),
    ("xen_setup", re.compile(r"^released \d+ pages of unused memory$")),
    ("xen_setup", re.compile(r"^Set \d+ page\(s\) to 1-1 mapping\.$")),
    ("xen_setup", re.compile(rf"^1-1 mapping on {_H}+->{_H}+$")),
    ("xen_setup", re.compile(rf"^xen_release_chunk: looking at area pfn {_H}+-{_H}+: \d+ pages freed$")),
    ("xen_setup", re.compile(rf"^Freeing +{_H}+-{_H}+ pfn range: \d+ pages freed$")),
    ("e820_header", re.compile(r"^(e820: )?BIOS-provided physical RAM map:$")),
]
_XEN = re.compile(r"^\(XEN\)\s?(?:(?P<file>[\w-]+\.c):(?P<line>\d+):d(?P<dom>\d+)(?:v\d+)? )?(?P<msg>.*)$")
_XEN_E820 = re.compile(rf"^\s*(?P<a>{_H}{{16}}) - (?P<b>{_H}{{16}}) \((?P<t>[^)]*)\)$")
_XEN_DOM0_ALLOC = re.compile(
    rf"^\s*Dom0 alloc\.:\s+(?P<a>{_H}+)->(?P<b>{_H}+) \((?P<n>\d+) pages to be allocated\)"
)
_XEN_SEGMENT = re.compile(rf"^\s*(?P<what>Loaded kernel|Init\. ramdisk):\s+(?P<a>{_H}+)->(?P<b>{_H}+)$")
_MFN_PFN = re.compile(rf"for mfn (?P<mfn>{_H}+) \(pfn (?P<pfn>{_H}+)\)")
_XEN_COMPARED = ("Bad type", "Error while pinning", "Error getting mfn", "Unhandled", "domain_crash_sync",
                 "ptwr_emulate", "Bad L1 flags", "Failure in alloc_l", "Error while validating",
                 "Attempt to create linear")  # fmt: skip


class LogError(ValueError):
    """A log that cannot be used: `str()` names the file and line."""


@dataclass(frozen=True)
class LogLine:
    lineno: int
    text: str  # without timestamp
    kind: str  # one of COMPARED, or "e820_header", "dom0", "xen_e820", "xen_other", "other"
    fields: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> int:
        """A hex field; `b1` is an inclusive end, returned one past it as `b`."""
        if name == "b" and "b1" in self.fields and self.fields["b1"] is not None:
            return int(self.fields["b1"], 16) + 1
        return int(self.fields[name], 16)


@dataclass
class Log:
    path: str
    lines: list[LogLine]

    def of(self, kind: str) -> list[LogLine]:
        return [line for line in self.lines if line.kind == kind]

    @property
    def dialect(self) -> str:
        for line in self.of("init_memory_mapping"):
            if "[mem " in line.text:
                return "3.9"
            if "[" in line.text:
                return "tip-2010"
        return "3.9" if any("[mem " in line.text for line in self.lines if line.kind != "other") else "2.6"


def read_log(path: str | Path) -> Log:
    """Read and classify a console log; LogError for a file that cannot be read or holds no boot line."""
    path = Path(path)
    try:
        raw = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise LogError(f"{path}: cannot read: {err.strerror}") from None
    log = parse_log(raw.splitlines(), str(path))
    if not any(line.kind in COMPARED for line in log.lines):
        raise LogError(
            f"{path}:1: no early-boot line xenpin reads (init_memory_mapping, kernel direct mapping tables, "
            f"RAMDISK, NODE_DATA, (XEN) ...)"
        )
    return log


def parse_log(texts: list[str], path: str = "<log>") -> Log:
    out: list[LogLine] = []
    in_xen_e820 = False
    for n, raw in enumerate(texts, start=1):
        text = strip_timestamp(raw).rstrip()
        if not text.strip():
            continue
        probe = text.lstrip()  # a pasted line may be indented; the kernel's own leading spaces carry nothing
        m = _XEN.match(probe)
        if m:
            msg = m["msg"]
            if "Xen-e820 RAM map" in msg:
                in_xen_e820 = True
                out.append(LogLine(n, text, "xen_other"))
                continue
            e = _XEN_E820.match(msg)
            if in_xen_e820 and e:
                out.append(LogLine(n, text, "xen_e820", {"a": e["a"], "b": e["b"], "t": e["t"]}))
                continue
            in_xen_e820 = False
            fields = {k: v for k, v in m.groupdict().items() if v is not None}
            for pattern in (_XEN_DOM0_ALLOC, _XEN_SEGMENT, _MFN_PFN):
                sub = pattern.search(msg)
                if sub:
                    fields.update({k: v for k, v in sub.groupdict().items() if v is not None})
            kind = "xen" if msg.startswith(_XEN_COMPARED) else "xen_other"
            out.append(LogLine(n, text, kind, fields))
            continue
        e820 = match_e820_line(text)
        if e820:
            who, entry = e820
            out.append(LogLine(n, text, "e820", {"who": who, "a": f"{entry.addr:x}", "b": f"{entry.end:x}",
                                                  "t": str(entry.type)}))  # fmt: skip
            continue
        for kind, pattern in _PATTERNS:
            m = pattern.match(probe)
            if m:
                fields = {k: v for k, v in m.groupdict().items() if v is not None}
                if kind == "reserve" and fields.get("name", "") not in MODELLED_RESERVATIONS:
                    kind = "reserve_other"
                out.append(LogLine(n, text, kind, fields))
                break
        else:
            out.append(LogLine(n, text, "other"))
    return Log(path, out)


# ------------------------------------------------------------------------------------------- configure


@dataclass
class Configured:
    config: BootConfig
    dialect: str
    xen_lines: dict[str, tuple[str, int]]  # message prefix -> (file, line) of the log's Xen build
    notes: list[str]


def configure(
    log: Log,
    variant: KernelVariant,
    mem_bytes: int | None = None,
    e820: E820 | None = None,
    role: str | None = None,
) -> Configured:
    """The machine the log describes, for booting `variant` (see the module docstring). `mem_bytes`, `e820` and
    `role` are what the command line gave (`--mem`, `--e820`, `--role`); the log fills in the rest. LogError if
    nothing gives the memory size."""
    notes: list[str] = []
    xen_lines: dict[str, tuple[str, int]] = {}
    domid = None
    mfn_pfn = None
    for line in log.of("xen") + log.of("xen_other"):
        f = line.fields
        if "file" in f:
            domid = int(f["dom"])
            site = site_of(f["msg"])
            prefix = next((p for p in _XEN_COMPARED if f["msg"].startswith(p)), None)
            if prefix and site and (site[0], site[1]) != (f["file"], int(f["line"])):
                xen_lines[prefix] = (f["file"], int(f["line"]))
        if "mfn" in f and mfn_pfn is None:
            mfn_pfn = (int(f["mfn"], 16), int(f["pfn"], 16))
    if xen_lines:
        notes.append(
            "Xen's source line numbers are taken from the log (another Xen build than 4.1.0): "
            + ", ".join(f"{p!r} at {file}:{n}" for p, (file, n) in sorted(xen_lines.items()))
        )
    isa = [x for x in log.of("raw_console") if "ISA" in x.text]
    dom0 = domid == 0 or bool(isa) or role == "dom0"
    role = "native" if not variant.xen else ("dom0" if dom0 else "domU")
    kw: dict = {"role": role}
    if domid is not None:
        kw["domid"] = domid
    nd = log.of("node_data")
    if nd:
        kw["node_data_bytes"] = nd[0].value("b") - nd[0].value("a")
    tr = log.of("trampoline")
    if tr:
        kw["trampoline_bytes"] = int(tr[0].fields["size"])
    ram = log.of("ramdisk")
    mapped = log.of("mapped")
    if ram:
        start, end = ram[0].value("a"), ram[0].value("b")
        kw["ramdisk_bytes"] = end - start
        if role == "native":
            kw["ramdisk_start"] = start
        else:
            kw["kernel_bytes"] = start - (KERNEL_START_PFN << 12)
    elif mapped and role != "native" and variant.code["xen_setup_kernel_pagetable"] == "2.6.39-rc1":
        end = mapped[0].value("b")
        kw["kernel_bytes"], kw["ramdisk_bytes"] = (
            DEFAULT_KERNEL_BYTES,
            end - (KERNEL_START_PFN << 12) - DEFAULT_KERNEL_BYTES,
        )
        if kw["ramdisk_bytes"] < 0:
            kw["kernel_bytes"], kw["ramdisk_bytes"] = end - (KERNEL_START_PFN << 12), 0
    _segments_from_xen(log, kw, notes)
    pages = log.of("page_size")
    if role == "native":
        kw["gbpages"] = _gbpages(pages)
    max_pfn, max_low_pfn = _max_pfns(log)
    if e820 is not None:
        kw["e820"] = e820
    elif role == "native":
        kw["e820"] = _native_e820(log, max_pfn, max_low_pfn, notes)
    elif role == "dom0":
        host = [LogLine(x.lineno, x.text, "e820", x.fields) for x in log.of("xen_e820")]
        if host:
            kw["e820"] = E820([E820Entry(x.value("a"), x.value("b") - x.value("a"), _type(x.fields["t"]))
                               for x in host])  # fmt: skip
    if mem_bytes is not None and role != "native":
        kw["mem_bytes"] = mem_bytes
        notes.append(f"memory size from --mem ({mem_bytes:#x} bytes), not from the log")
    if role == "native":
        kw["mem_bytes"] = kw["e820"].ram_bytes()
    elif "mem_bytes" not in kw:
        kw["mem_bytes"] = _domain_memory(log, variant, role, kw, max_pfn, max_low_pfn, notes)
    if role == "dom0" and "e820" not in kw:  # xen_memory_setup: BUG_ON(xen_initial_domain()) without it
        raise LogError(
            f"{log.path}:1: a dom0 boots on the host's E820 (XENMEM_machine_memory_map) and the log shows none"
            f" ('(XEN) Xen-e820 RAM map:'); give it with --e820 FILE"
        )
    if mfn_pfn is not None and role != "native":
        nr = kw["mem_bytes"] >> 12
        # construct_dom0's p2m is one ascending chunk, but a debug Xen reverses it above v_end (REVERSE_START):
        # a logged mfn below its pfn can only be on that reversed part.
        up = role == "dom0" and "p2m" not in kw and mfn_pfn[0] >= mfn_pfn[1]
        kw["p2m"] = P2M.through(nr, mfn_pfn[1], mfn_pfn[0], 1 if up else -1)
        notes.append(
            f"p2m through the logged pair mfn {mfn_pfn[0]:x} (pfn {mfn_pfn[1]:x}): {kw['p2m'].describe()}"
        )
    kw["xen_build_lines"] = tuple(sorted(xen_lines.items()))
    if log.dialect == "tip-2010":  # not a release's format: print the boot's lines the way this kernel did
        kw["printk"] = "tip-2010"
        notes.append(
            "printk formats of the x86 tip tree of December 2010 (bracketed ranges), as the log shows"
        )
    return Configured(BootConfig(**kw), log.dialect, xen_lines, notes)


def _type(name: str) -> int:
    return {"usable": 1, "reserved": 2, "ACPI data": 3, "ACPI NVS": 4, "unusable": 5}.get(name, 2)


def _segments_from_xen(log: Log, kw: dict, notes: list[str]) -> None:
    """dom0's layout as Xen prints it (`Dom0 alloc.:`, `Loaded kernel:`, `Init. ramdisk:`)."""
    for line in log.of("xen_other"):
        f = line.fields
        if "n" in f:
            kw["mem_bytes"] = int(f["n"]) << 12
            kw["p2m"] = P2M(int(f["n"]), int(f["a"], 16) >> 12, 1)
            notes.append(
                f"dom0: {f['n']} pages from machine address {int(f['a'], 16):#x} (Xen's 'Dom0 alloc.')"
            )
        elif f.get("what") == "Loaded kernel":
            kw["kernel_bytes"] = int(f["b"], 16) - int(f["a"], 16)
        elif f.get("what") == "Init. ramdisk":
            kw["ramdisk_bytes"] = int(f["b"], 16) - int(f["a"], 16)


def _gbpages(pages: list[LogLine]) -> bool:
    """1 GiB pages: a `page 1G` line; or not, when a 2M range covers a whole aligned GiB."""
    for line in pages:
        if line.fields["size"] == "1G":
            return True
    for line in pages:
        a, b = line.value("a"), line.value("b")
        if line.fields["size"] == "2M" and (b >> 30) - (-(-a >> 30)) >= 1:
            return False
    return False


def _max_pfns(log: Log) -> tuple[int | None, int | None]:
    """`max_pfn` and `max_low_pfn` as the log shows them: from the `init_memory_mapping` calls of setup_arch
    (`[0, max_low_pfn)`, then `[4G, max_pfn)`), else from the `last_pfn` lines (max_pfn first, then max_low_pfn
    above 4 GiB)."""
    calls = [(line.value("a") >> 12, line.value("b") >> 12) for line in log.of("init_memory_mapping")]
    if calls and log.dialect != "3.9":
        low = next((end for start, end in calls if start == 0), None)
        high = next((end for start, end in calls if start == FOUR_GIB_PFN), None)
        if low is not None:
            return (high if high is not None else low), low
    last = [line.value("a") for line in log.of("last_pfn")]
    if calls:  # 3.9 maps in steps: the highest end is max_pfn
        top = max(end for _, end in calls)
        return top, (
            min(top, FOUR_GIB_PFN) if not last else (last[1] if len(last) > 1 else min(top, last[0]))
        )
    if last:
        return last[0], (last[1] if len(last) > 1 else last[0])
    return None, None


def _native_e820(log: Log, max_pfn: int | None, max_low: int | None, notes: list[str]) -> E820:
    bios = [x for x in log.of("e820") if x.fields["who"] != "Xen"]
    if bios:
        return E820([E820Entry(x.value("a"), x.value("b") - x.value("a"), int(x.fields["t"])) for x in bios])
    if max_low is None:
        raise LogError(f"{log.path}:1: no E820 and no init_memory_mapping line: cannot tell the memory map")
    entries = [
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x9F000, 0x1000, 2),
        E820Entry(0x100000, (max_low << 12) - 0x100000, 1),
    ]
    if max_pfn is not None and max_pfn > max_low:
        entries.append(E820Entry(FOUR_GIB_PFN << 12, (max_pfn - FOUR_GIB_PFN) << 12, 1))
    notes.append(
        "the log shows no E820: RAM is taken to be [0, 0x9f000), [0x100000, the first call's end)"
        + (" and [4G, the second call's end)" if len(entries) > 3 else "")
    )
    return E820(entries)


def _domain_memory(
    log: Log,
    variant: KernelVariant,
    role: str,
    kw: dict,
    max_pfn: int | None,
    max_low: int | None,
    notes: list[str],
) -> int:
    """A domU's `nr_pages`: the size whose `xen_memory_setup` (this variant's) gives the logged max_pfn and
    max_low_pfn; the 8 MiB of slack sit at `mem_end` or, for 2.6.39-rc5 .. 2.6.39.x, at 4 GiB."""
    if max_pfn is None:
        need = "--mem and the host's map with --e820" if role == "dom0" else "--mem"
        raise LogError(
            f"{log.path}:1: no line gives the memory size (last_pfn, init_memory_mapping, E820) of this {role};"
            f" give {need}"
        )
    candidates = [max_pfn - 2048, max_pfn - 256]
    if max_low is not None:
        candidates.insert(0, max_low)
    for nr in candidates:
        if nr <= 0:
            continue
        ms = xen_memory_setup(
            nr, kw.get("e820"), role == "dom0", variant.code["xen_memory_setup"], Memblock(), 0, 0
        )
        got = ms.e820.end_of_ram_pfn()
        got_low = ms.e820.end_of_low_ram_pfn() if got > FOUR_GIB_PFN else got
        if got == max_pfn and (max_low is None or got_low == max_low):
            notes.append(f"memory: {nr << 12:#x} bytes ({nr:#x} pages), which {variant.name}'s xen_memory_setup"
                         f" turns into max_pfn {max_pfn:#x}")  # fmt: skip
            return nr << 12
    notes.append(
        f"no memory size makes {variant.name}'s xen_memory_setup end RAM at {max_pfn:#x}: the log is not from a"
        f" kernel with this variant's extra-memory placement; taking max_pfn - 8 MiB"
    )
    return (max_pfn - 2048) << 12


# ------------------------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Comparison:
    kind: str
    logged: str
    predicted: str | None
    match: bool
    lineno: int


def _key(line_kind: str, text: str) -> str:
    """Lines are paired in order within a kind; reservations within their name."""
    if line_kind == "reserve":
        m = re.search(r"\]\s+(\S.*?)\s*$", text)
        return f"reserve:{m.group(1) if m else ''}"
    return line_kind


def _norm(text: str) -> str:
    return " ".join(text.split())


def compare(log: Log, predicted: list[tuple[str, str]]) -> list[Comparison]:
    """Each logged line of a compared kind beside the boot's line of the same kind.

    Within a kind (reservations: within a name) the logged lines must appear in the boot's order; a log that
    is an excerpt may skip lines, so a logged line matches the first equal predicted line at or after the
    last one matched. A line with no equal one is shown beside the next predicted line of its kind."""
    queues: dict[str, list[str]] = {}
    for kind, text in predicted:
        if kind in COMPARED:
            queues.setdefault(_key(kind, text), []).append(text)
    position: dict[str, int] = {}
    out = []
    for line in log.lines:
        if line.kind not in COMPARED:
            continue
        if line.kind == "xen" and line.fields.get("msg", "").startswith("Domain ") and "crashed" in line.text:
            continue
        key = _key(line.kind, line.text)
        queue, pos = queues.get(key, []), position.get(key, 0)
        if line.kind == "oops_ip":  # xenpin knows the function, not its address or offset
            wanted, same = line.fields["func"], lambda got, want: got.split()[-1] == want
        else:
            wanted, same = _norm(line.text), lambda got, want: _norm(got) == want
        hit = next((k for k in range(pos, len(queue)) if same(queue[k], wanted)), None)
        if hit is not None:
            out.append(Comparison(line.kind, line.text, queue[hit], True, line.lineno))
            position[key] = hit + 1
        else:
            got = queue[pos] if pos < len(queue) else None
            out.append(Comparison(line.kind, line.text, got, False, line.lineno))
            position[key] = pos + 1
    return out


def reproduce(
    path: str | Path,
    variant: KernelVariant,
    *,
    mem_bytes: int | None = None,
    e820: E820 | None = None,
    role: str | None = None,
    rules: str = "xen-4.1",
    check: Callable[[BootConfig], None] | None = None,
) -> tuple[Configured, BootResult, list[Comparison]]:
    """`boot --dmesg`: read the log, configure its machine (`check` may refuse it), boot `variant` on it and
    compare. LogError / ValueError for a log or machine that cannot be used."""
    from xenpin.linux.boot import boot  # the boot walk sits above this module's readers

    log = read_log(path)
    configured = configure(log, variant, mem_bytes, e820, role)
    if check is not None:
        check(configured.config)
    result = boot(variant, configured.config, rules)
    return configured, result, compare(log, [(line.kind, line.text) for line in result.console])


__all__ = [
    "COMPARED",
    "Comparison",
    "Configured",
    "Log",
    "LogError",
    "compare",
    "configure",
    "parse_log",
    "read_log",
    "reproduce",
]
