"""Rendering of boots (`xenpin boot`): the machine line, the console, the buffers, the outcome and the property
table; and the --dmesg comparison, as text and as JSON."""

from __future__ import annotations

import json

from bootcache import LOGS, booted, cached_boot, variant

from xenpin.linux.dmesg import compare, configure, read_log
from xenpin.report.boot import boot_json, dmesg_json, dmesg_text, machine_text, render_text, size_text
from xenpin.report.table import shown_path


def test_size_text() -> None:
    assert [size_text(n) for n in (1536 << 20, 1537 << 20, 6 << 30, 0x1E0000000, 0x1234)] == [
        "1.5 GiB", "1537 MiB", "6 GiB", "7.5 GiB", "0x1234 bytes",
    ]  # fmt: skip


def test_machine_text() -> None:
    assert machine_text(booted("3.0", "1536M")) == (
        "domU d1, 1.5 GiB (nr_pages 0x60000, max_pfn 0x60800), Xen rules xen-4.1; p2m mfn = 0xffffff - pfn"
    )
    # the PC map: 1.5 GiB less the 640 KiB .. 1 MiB hole and the page below 640 KiB
    assert (
        machine_text(booted("3.1-native", "1536M")) == "bare metal, 0x5ff9f000 bytes of RAM (max_pfn 0x60000)"
    )


def test_text_of_a_pin_failure() -> None:
    r = booted("2.6.39-rc1", "1536M")
    text = render_text(r)
    lines = text.splitlines()
    assert lines[0] == (
        "2.6.39-rc1 (release 2.6.39-rc1; 4b239f458c22 14988a4d350c d8aa5ec3382e): high placement (4b239f458),"
        " mask_rw_pte RO up to the moving pgt_buf_end, plus the ioremap clause"
    )
    assert (
        "  readonly: (not ioremap and pgt_buf_start <= pfn < pgt_buf_end) or (ioremap and pfn != pgt_buf_end - 1)"
        in lines
    )
    b = r.buffers[0]
    assert (
        f"  call 0: [0x0, 0x60800000)  pgt_buf_start {b.pgt_buf_start:#x}  pgt_buf_end {b.pgt_buf_end:#x}  "
        f"pgt_buf_top {b.pgt_buf_top:#x}  reserve step: not reached"
    ) in lines
    f = r.failure
    i = lines.index(
        f"outcome: xen-rejected in init_memory_mapping call 0 at step {f.step}, pfn {f.pfn:#x} ({f.pfn << 12:#x})"
    )
    assert lines[i + 1] == f"  hypercall: {f.operation} -> EINVAL"
    assert lines[i + 2 : i + 6] == [f"  {x}" for x in f.xen_log]
    assert lines[i + 6] == f"  why: {f.reason}"  # the trap line is Xen's: not repeated as a kernel message
    assert "  no_rw_alias     VIOLATED     counterexample  ok" in lines
    assert "  spare_writable  not reached  proved          ok" in lines
    assert lines[-1] == "result: as expected"
    assert "trace (steps that touched the buffers):" not in text
    assert "trace (steps that touched the buffers):" in render_text(r, trace=True)


def test_text_of_an_oops_and_of_3_9() -> None:
    lines = render_text(booted("bisect-92bdaef7b2c5", "1536M")).splitlines()
    assert "  BUG: unable to handle kernel NULL pointer dereference at           (null)" in lines
    assert "  in setup_node_bootmem" in lines
    assert any(line.startswith("outcome: kernel-fault in initmem_init at step ") for line in lines)
    seed = render_text(booted("3.9", "1536M")).splitlines()
    assert any("BRK seed (alloc_low_pages)" in line and "reserve step: none" in line for line in seed)


def test_json_of_a_boot_is_plain_data() -> None:
    r = booted("2.6.39-rc6", "1536M")
    doc = json.loads(json.dumps(boot_json(r, trace=True)))
    assert doc["variant"] == "2.6.39-rc6" and doc["file"].endswith("models/kernels/2.6.39-rc6.toml")
    assert doc["outcome"] == "ok" and doc["as_expected"] is True
    assert doc["properties"]["spare_writable"] == {"value": False, "expected": "counterexample", "ok": True}
    assert doc["buffers"][0]["range"] == ["0x0", "0x60000000"] and doc["buffers"][0]["hook_ran"] is True
    assert doc["trace"] and set(doc["trace"][0]) == {"step", "call", "action", "pfn", "detail"}
    assert doc["pins"] == r.pins > 0


def test_dmesg_text_and_json() -> None:
    log = read_log(LOGS / "4b239f458-after.log")
    v = variant("2.6.38-native")
    configured = configure(log, v)
    result = cached_boot(v, configured.config)
    rows = compare(log, [(line.kind, line.text) for line in result.console])
    lines = dmesg_text("after.log", result, configured, rows).splitlines()
    assert lines[0] == f"log after.log against 2.6.38-native (release 2.6.38; {shown_path(v.path)})"
    assert lines[1].startswith("  machine from the log: bare metal, ")
    assert "     1  mapped               match   initial memory mapped : 0 - 20000000" in lines
    i = lines.index("     5  tables               differ  logged:    kernel direct mapping tables up to 7f750000 @"
                    " [0x7f74c000-0x7f74ffff]")  # fmt: skip
    assert (
        lines[i + 1].strip()
        == "predicted: kernel direct mapping tables up to 7f750000 @ [0x1fffc000-0x1fffffff]"
    )
    assert lines[-2:] == ["11 logged line(s) compared: 7 match, 4 differ", "predicted outcome: ok"]
    doc = json.loads(json.dumps(dmesg_json("after.log", result, configured, rows)))
    assert doc["all_match"] is False and doc["outcome"] == "ok" and doc["failure"] is None
    assert len(doc["log_lines"]) == 11 and doc["notes"] == configured.notes
