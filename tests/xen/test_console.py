"""Xen's console lines (`MEM_LOG` / `gdprintk`): `(XEN) mm.c:LINE:dN message`, with RELEASE-4.1.0's lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xenpin.xen.console import (
    DOMAIN_CRASH_SYNC,
    XEN_41_SITES,
    MemLog,
    domain_crashed_line,
    site_of,
    trap_line,
    xen_line,
)

RESEARCH = Path("/work/research")


def test_bad_type_line_of_a_domu() -> None:
    message = "Bad type (saw 7400000000000001 != exp 1000000000000000) for mfn fa0021 (pfn 5ffde)"
    assert xen_line(message, 1) == f"(XEN) mm.c:2424:d1 {message}"
    assert (
        xen_line("Error while pinning mfn fa0021", 0) == "(XEN) mm.c:2985:d0 Error while pinning mfn fa0021"
    )


def test_modern_xen_prints_the_vcpu() -> None:
    assert xen_line("Bad L1 flags 80", 3, "modern") == "(XEN) d3v0 Bad L1 flags 80"


def test_another_build_s_line_numbers() -> None:
    """a38647837a41's xen-unstable printed `mm.c:2466` for Bad type: a log's numbers override 4.1.0's."""
    lines = {"Bad type": ("mm.c", 2466), "Unhandled": ("traps.c", 481)}
    assert xen_line("Bad type (saw 0 != exp 0) for mfn 1 (pfn 1)", 0, lines=lines).startswith(
        "(XEN) mm.c:2466:d0 "
    )
    assert xen_line(trap_line(6, "invalid opcode"), 0, lines=lines) == (
        "(XEN) traps.c:481:d0 Unhandled invalid opcode fault/trap [#6] on VCPU 0 [ec=0000]"
    )
    assert (
        xen_line("Error while pinning mfn 1", 0, lines=lines)
        == "(XEN) mm.c:2985:d0 Error while pinning mfn 1"
    )


def test_trap_and_crash_lines() -> None:
    assert trap_line(6, "invalid opcode") == "Unhandled invalid opcode fault/trap [#6] on VCPU 0 [ec=0000]"
    assert trap_line(14, "page fault", 1, 3) == "Unhandled page fault fault/trap [#14] on VCPU 1 [ec=0003]"
    assert xen_line(trap_line(6, "invalid opcode"), 1).startswith("(XEN) traps.c:451:d1 Unhandled ")
    assert DOMAIN_CRASH_SYNC == "(XEN) domain_crash_sync called from entry.S"
    assert domain_crashed_line(0) == "(XEN) Domain 0 (vcpu#0) crashed on cpu#0:"


def test_sites() -> None:
    assert site_of("Mfn 5 already pinned") == ("mm.c", 3001)
    assert site_of("Mfn 5 bad domain") == ("mm.c", 3036)
    assert site_of("Mfn 5 not pinned") == ("mm.c", 3046)
    assert site_of("Mfn 5 something else") is None
    assert site_of("no such message") is None
    assert xen_line("no such message", 1) == "(XEN) no such message"


def _last_line_of_call(source: list[str], prefix: str) -> int | None:
    """The 1-based line where the MEM_LOG/gdprintk whose format starts with `prefix` ends (its `;`)."""
    for i, text in enumerate(source):
        if re.search(r"\b(MEM_LOG|gdprintk)\(", text) and prefix.split(" %")[0] in " ".join(
            source[i : i + 2]
        ):
            j = i
            while not source[j].rstrip().endswith(";"):
                j += 1
            return j + 1
    return None


LINEAR = "Attempt to create linear p.t. with write perms"
_needs_source = pytest.mark.skipif(not (RESEARCH / "xen-4.1.0-mm.c").exists(), reason="no Xen 4.1.0 sources")


@_needs_source
@pytest.mark.parametrize(("prefix", "file", "line"), [s for s in XEN_41_SITES if s[0] not in ("Mfn", LINEAR)])
def test_site_table_is_release_4_1_0(prefix: str, file: str, line: int) -> None:
    source = (RESEARCH / f"xen-4.1.0-{file}").read_text(errors="replace").splitlines()
    assert _last_line_of_call(source, prefix) == line


@_needs_source
def test_linear_pagetable_site_is_the_macro_invocation() -> None:
    """The MEM_LOG sits in `define_get_linear_pagetable(level)`, a macro: `__LINE__` is that of its invocation,
    `define_get_linear_pagetable(l2)` at mm.c:915 (l3: 957, l4: 982), never the 723 of the macro body."""
    source = (RESEARCH / "xen-4.1.0-mm.c").read_text(errors="replace").splitlines()
    invocations = [n for n, t in enumerate(source, 1) if t.startswith("define_get_linear_pagetable(")]
    assert invocations == [915, 957, 982]
    assert [site_of(MemLog(LINEAR, level)) for level in (2, 3, 4)] == [("mm.c", n) for n in invocations]
