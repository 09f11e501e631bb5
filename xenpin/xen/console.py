"""Xen's console lines as Xen 4.1.0 prints them: `(XEN) mm.c:2424:d1 Bad type (saw ...) for mfn ... (pfn ...)`.

`MEM_LOG(fmt, ...)` is `gdprintk(XENLOG_WARNING, fmt "\\n", ...)`, which prints `%s:%d:d%d ` with `__FILE__`
(relative: `mm.c`), `__LINE__` and the current domain's id. The GCC of 2011 gave a macro invocation that spans
lines the number of its *last* line; xen-unstable of April 2011 prints `mm.c:2466` for "Bad type" (a38647837a41's
log), which is 2463 + 3 in the mm.c of 87e0dc6ea0. The table below gives, for each message xenpin's validator
emits, its file and that line in RELEASE-4.1.0 (`xen/arch/x86/mm.c`, `traps.c`). Another Xen build prints other
line numbers: `with_lines` takes them from a log.

Modern Xen (`xen/include/xen/lib.h`, master c447b7308b): `gprintk(lvl, fmt, ...)` is
`printk(XENLOG_GUEST lvl "%pv " fmt, current, ...)` (`d1v0 `); a debug build's `gdprintk` is
`printk(XENLOG_GUEST lvl "%s:%d:%pv " fmt, __FILE__, __LINE__, current, ...)`, and with `NDEBUG` (release builds)
`gdprintk` and `dprintk` are empty inline functions: nothing is printed. Every line the validator emits is a
`gdprintk` in modern Xen except `get_page`'s "Error mfn ...", a `gprintk(XENLOG_INFO, ...)`, which a release
build's default guest log level (`XENLOG_GUEST_UPPER_THRESHOLD` 2 in `drivers/char/console.c`: "Do not print
INFO and DEBUG") also drops. xenpin prints modern lines as `(XEN) d1v0 <message>`, the `%pv` prefix without a
debug build's file and line.
"""

from __future__ import annotations

from collections.abc import Mapping

# (message prefix, file, last line of the MEM_LOG/gdprintk call in RELEASE-4.1.0)
XEN_41_SITES: tuple[tuple[str, str, int], ...] = (
    ("Could not get page ref for pfn", "mm.c", 658),
    ("Attempt to create linear p.t. with write perms", "mm.c", 915),  # per level: _LINEAR_SITES
    ("Bad L1 flags", "mm.c", 806),
    ("Error getting mfn", "mm.c", 907),
    ("Bad L2 flags", "mm.c", 928),
    ("Attempt to map superpage without allowsuperpage", "mm.c", 943),
    ("Bad L3 flags", "mm.c", 969),
    ("Bad L4 flags", "mm.c", 994),
    ("Failure in alloc_l1_table", "mm.c", 1222),
    ("Failure in alloc_l2_table", "mm.c", 1366),
    ("Failure in alloc_l3_table", "mm.c", 1476),
    ("Failure in alloc_l4_table", "mm.c", 1523),
    ("Error pfn", "mm.c", 2097),
    ("Error while validating mfn", "mm.c", 2177),
    ("Bad type (saw", "mm.c", 2424),
    ("Error while installing new baseptr", "mm.c", 2752),
    ("Error while pinning mfn", "mm.c", 2985),
    ("Mfn", "mm.c", 3001),  # "Mfn %lx already pinned"; "bad domain" and "not pinned" below
    ("ptwr_emulate: could not get_page_from_l1e()", "mm.c", 4967),
    ("Unhandled", "traps.c", 451),
)
_MFN_SITES = {"already pinned": 3001, "bad domain": 3036, "not pinned": 3046}
# The linear-pagetable MEM_LOG is in the body of the macro `define_get_linear_pagetable(level)`, so `__LINE__`
# is that of the macro's invocation for the level: mm.c:915 (l2), 957 (l3), 982 (l4) in RELEASE-4.1.0.
_LINEAR_SITES = {2: 915, 3: 957, 4: 982}


class MemLog(str):
    """A `MEM_LOG` message as the validator logs it; `level` is the table level of a message printed from a
    per-level macro, whose line number depends on it."""

    level: int | None

    def __new__(cls, message: str, level: int | None = None) -> MemLog:
        self = super().__new__(cls, message)
        self.level = level
        return self


def site_of(message: str) -> tuple[str, int] | None:
    """`(file, line)` of the Xen 4.1.0 call that prints `message`, if xenpin knows it."""
    level = message.level if isinstance(message, MemLog) else None
    if level in _LINEAR_SITES and message.startswith(XEN_41_SITES[1][0]):
        return "mm.c", _LINEAR_SITES[level]
    for prefix, file, line in XEN_41_SITES:
        if message.startswith(prefix):
            if prefix == "Mfn":
                for tail, n in _MFN_SITES.items():
                    if message.endswith(tail):
                        return file, n
                return None
            return file, line
    return None


def xen_line(
    message: str, domid: int, rules: str = "xen-4.1", lines: Mapping[str, tuple[str, int]] = {}
) -> str:
    """The console line Xen prints for `message` (a `gdprintk` from the guest's context)."""
    if rules == "modern":
        return f"(XEN) d{domid}v0 {message}"
    site = next((s for p, s in lines.items() if message.startswith(p)), None) or site_of(message)
    if site is None:
        return f"(XEN) {message}"
    return f"(XEN) {site[0]}:{site[1]}:d{domid} {message}"


def trap_line(trapnr: int, name: str, vcpu: int = 0, error_code: int = 0) -> str:
    """`do_guest_trap` with no guest handler: `Unhandled %s fault/trap [#%d] on VCPU %d [ec=%04x]`."""
    return f"Unhandled {name} fault/trap [#{trapnr}] on VCPU {vcpu} [ec={error_code:04x}]"


DOMAIN_CRASH_SYNC = "(XEN) domain_crash_sync called from entry.S"


def domain_crashed_line(domid: int) -> str:
    """`domain_crash_synchronous` -> `__domain_crash`: `Domain %d (vcpu#%d) crashed on cpu#%d:` (cpu unknown)."""
    return f"(XEN) Domain {domid} (vcpu#0) crashed on cpu#0:"


__all__ = [
    "DOMAIN_CRASH_SYNC",
    "XEN_41_SITES",
    "MemLog",
    "domain_crashed_line",
    "site_of",
    "trap_line",
    "xen_line",
]
