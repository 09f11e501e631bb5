"""`xenpin replay`: exit codes 0/1/2, one JSON document with --json, one-line errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import z3
from bootcache import cached_boot

from xenpin.cli import main
from xenpin.linux import layout
from xenpin.linux.e820 import strip_timestamp
from xenpin.symbolic.solver import check

GOOD = """# pin an empty L1
name = "good"
rules = "modern"
frames = 8

[[step]]
op = "pin"
level = 1
mfn = 3
expect = "ok"

[[step]]
op = "pin"
level = 1
mfn = 3
expect = "EINVAL"
"""

MISMATCH = GOOD.replace('name = "good"', 'name = "wrong"').replace('expect = "EINVAL"', 'expect = "ok"')
BAD = GOOD.replace('level = 1\nmfn = 3\nexpect = "EINVAL"', 'level = 7\nmfn = 3\nexpect = "EINVAL"')


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("good", GOOD), ("mismatch", MISMATCH), ("bad", BAD)):
        out[name] = tmp_path / f"{name}.toml"
        out[name].write_text(text)
    return out


def test_all_expectations_met_exit_0(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(files["good"])]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "MATCH" in out and "MISMATCH" not in out
    assert "mfn 00003 already pinned" in out  # Xen's log line (modern's text) under the rejected step
    assert "L1 mfn 0x3" in out


def test_mismatch_exit_1(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(files["good"]), str(files["mismatch"])]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "FAIL" in out


def test_json_is_one_document(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--json", str(files["good"]), str(files["mismatch"])]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["verdict"] == "fail"
    assert [s["name"] for s in doc["scenarios"]] == ["good", "wrong"]
    step = doc["scenarios"][0]["steps"][1]
    assert step["result"] == "EINVAL" and step["expected"] == "EINVAL" and step["match"] is True
    assert step["log"]


def test_bad_file_exit_2_one_line_no_stdout(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(files["good"]), str(files["bad"])]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"xenpin: {files['bad']}:14: step 2: field 'level'")


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("xenpin: ")


def test_toml_syntax_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('name = "x"\nrules = \n')
    assert main(["replay", "--json", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"{path}:2:" in captured.err


def test_directory_argument(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = tmp_path / "dir"
    only.mkdir()
    (only / "a.toml").write_text(GOOD)
    assert main(["replay", str(only)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["replay", str(empty)]) == 2


@pytest.mark.parametrize("argv", [[], ["replay"], ["nosuchcommand"], ["replay", "--frobnicate", "x.toml"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().out == ""


def test_shipped_scenarios_replay_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = Path(__file__).resolve().parents[2] / "models" / "scenarios"
    code = main(["replay", "--json", str(scenarios)])
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert doc["summary"]["scenarios"] >= 22
    assert (code == 0) == (doc["summary"]["verdict"] == "pass")


# --- xenpin boot ------------------------------------------------------------------------------------------------

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
LOGS = Path(__file__).resolve().parents[2] / "models" / "logs"
HOST_E820 = """\
[    0.000000]  BIOS-e820: 0000000000000000 - 000000000009f000 (usable)
[    0.000000]  BIOS-e820: 000000000009f000 - 00000000000a0000 (reserved)
[    0.000000]  BIOS-e820: 00000000000f0000 - 0000000000100000 (reserved)
[    0.000000]  BIOS-e820: 0000000000100000 - 00000000bf780000 (usable)
[    0.000000]  BIOS-e820: 00000000bf780000 - 00000000c0000000 (reserved)
[    0.000000]  BIOS-e820: 0000000100000000 - 0000000140000000 (usable)
"""


@pytest.fixture
def cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Boots of one machine are shared by the tests (a 7.5 GiB boot costs seconds)."""
    monkeypatch.setattr("xenpin.linux.boot.boot", cached_boot)


def _boot(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["boot", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _bad(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Exit 2, nothing on stdout, one line on stderr without a traceback: that line."""
    code, out, err = _boot(argv, capsys)
    assert (code, out) == (2, ""), (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("xenpin: "), err
    return err.rstrip("\n")


def _model(tmp_path: Path, name: str, *replace: tuple[str, str]) -> Path:
    text = (KERNELS / f"{name}.toml").read_text()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{name}-changed.toml"
    path.write_text(text)
    return path


def test_boot_pin_failure_is_as_expected(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot([str(KERNELS / "2.6.39-rc1.toml"), "--mem", "1536M"], capsys)
    assert code == 0  # the variant expects the no_rw_alias counterexample
    assert "  domU d1, 1.5 GiB (nr_pages 0x60000, max_pfn 0x60800), Xen rules xen-4.1" in out
    assert "  kernel direct mapping tables up to 60800000 @ 5fcf9000-60000000" in out
    assert "outcome: xen-rejected in init_memory_mapping call 0" in out
    assert "  (XEN) traps.c:451:d1 Unhandled invalid opcode fault/trap [#6] on VCPU 0 [ec=0000]" in out
    assert "  no_rw_alias     VIOLATED     counterexample  ok" in out and "result: as expected" in out


def test_boot_text_json_and_trace(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot([str(KERNELS / "2.6.39.toml"), "--mem", "1536M", "--trace"], capsys)
    assert code == 0
    assert "reserve step: ran" in out and "xen: setting RW the range 5ffe2000 - 60000000" in out
    assert "alloc_low_page" in out and "pin_pagetable_pfn" in out and "pagetable_reserve" in out
    assert "outcome: ok (" in out and "result: as expected" in out
    code, out, _ = _boot([str(KERNELS / "2.6.39.toml"), "--mem", "1536M", "--json"], capsys)
    doc = json.loads(out)["boots"][0]
    assert code == 0 and doc["outcome"] == "ok" and doc["as_expected"] is True and doc["release"] == "2.6.39"
    assert (doc["role"], doc["mem_bytes"], doc["max_pfn"]) == ("domU", hex(1536 << 20), "0x100800")
    assert [b["call"] for b in doc["buffers"]] == [0, 1] and all(b["hook_ran"] for b in doc["buffers"])
    assert {p: v["value"] for p, v in doc["properties"].items()} == dict.fromkeys(
        ("buffer_fits", "alias_writable", "no_rw_alias", "spare_writable", "spare_freed", "live_reserved"),
        True,
    )
    assert {"kind": "tables", "text": "kernel direct mapping tables up to 60000000 @ 5fcfd000-60000000"} in (
        doc["console"]
    )
    assert "trace" not in doc and doc["failure"] is None


def test_boot_json_of_a_failure(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot([str(KERNELS / "bisect-92bdaef7b2c5.toml"), "--mem", "1536M", "--json"], capsys)
    doc = json.loads(out)["boots"][0]
    assert code == 0 and doc["outcome"] == "kernel-fault"
    f = doc["failure"]
    assert (f["phase"], f["function"], f["violates"]) == (
        "initmem_init",
        "setup_node_bootmem",
        "spare_writable",
    )
    assert f["message"] == "BUG: unable to handle kernel NULL pointer dereference at           (null)"
    assert doc["properties"]["spare_writable"] == {"value": False, "expected": "counterexample", "ok": True}


def test_boot_several_variants_one_json_list_and_a_summary(
    cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("3.1", "2.6.39-rc6"):
        (models / f"{name}.toml").write_text((KERNELS / f"{name}.toml").read_text())
    code, out, _ = _boot([str(models), "--mem", "128M", "--json"], capsys)
    docs = json.loads(out)["boots"]
    assert code == 0 and [d["variant"] for d in docs] == ["2.6.39-rc6", "3.1"]
    code, out, _ = _boot([str(models), "--mem", "128M"], capsys)
    header, *rows = out.splitlines()[-3:]
    assert header.split() == ["variant", "file", "outcome", "as", "expected"]
    assert [row.split() for row in rows] == [
        ["2.6.39-rc6", str(models / "2.6.39-rc6.toml"), "ok", "yes"],
        ["3.1", str(models / "3.1.toml"), "ok", "yes"],
    ]


@pytest.mark.parametrize(
    ("name", "change", "mismatch"),
    [
        (
            "2.6.39-rc1",
            ('no_rw_alias = "counterexample"', 'no_rw_alias = "proved"'),
            "MISMATCH (no_rw_alias)",
        ),
        (
            "2.6.39-rc6",
            ('spare_writable = "counterexample"', 'spare_writable = "proved"'),
            "MISMATCH (spare_writable)",
        ),
        # the fixmap alias RO for every page: the kernel faults clearing its first table (alias_writable)
        ("3.0", (" or (ioremap and pfn != pgt_buf_end - 1)", " or ioremap"), "MISMATCH (alias_writable)"),
    ],
)
def test_boot_exit_1_on_a_mismatch(
    name: str, change: tuple[str, str], mismatch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _boot([str(_model(tmp_path, name, change)), "--mem", "1200M"], capsys)
    assert code == 1 and f"result: {mismatch}" in out


def test_boot_exit_1_on_an_unexplained_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import xenpin.linux.boot as boot_module
    from xenpin.linux.guest import Failure

    real = boot_module.boot

    def unexplained(*args, **kw):
        r = real(*args, **kw)
        r.failure = Failure("panic", 0, 0, "Kernel panic - not syncing: something else")
        r.outcome = "panic"
        return r

    monkeypatch.setattr("xenpin.linux.boot.boot", unexplained)
    code, out, _ = _boot([str(KERNELS / "3.1.toml"), "--mem", "64M"], capsys)
    assert code == 1 and "MISMATCH (outcome panic, which no property accounts for)" in out


# --- --mem, --role, --e820, --kernel-size, --ramdisk-size


@pytest.mark.parametrize(
    ("mem", "message"),
    [
        ("3X", "--mem: bad memory size '3X' (use e.g. 1536M, 4G, 6GiB or a byte count)"),
        ("", "--mem: bad memory size ''"),
        ("-5G", "--mem: -5G is not a positive multiple of 4 KiB"),
        ("0", "--mem: 0 is not a positive multiple of 4 KiB"),
        ("4097", "--mem: 4097 is not a positive multiple of 4 KiB"),
        ("1.5K", "--mem: 1.5K is not a positive multiple of 4 KiB"),
        ("infG", "--mem: bad memory size 'infG'"),
        ("nanG", "--mem: bad memory size 'nanG'"),
        ("99999999999999999999999G", "--mem: 99999999999999999999999G is more than the model boots ("),
        ("65T", "--mem: 65T is more than the model boots ("),  # the cap: tests/cli/test_cli_boot_cap.py
        ("1M", "models/kernels/3.0.toml: 0x100000 bytes is too small: the domain builder's layout needs"),
    ],
)
def test_boot_bad_mem_exit_2(mem: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _bad([str(KERNELS / "3.0.toml"), f"--mem={mem}"], capsys).startswith(f"xenpin: {message}".replace(
        "models/kernels/3.0.toml", str(KERNELS / "3.0.toml")))  # fmt: skip


def test_boot_bare_metal_mem_bound(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(KERNELS / "2.6.39-native.toml")
    assert _bad([model, "--mem", "64T"], capsys).startswith(
        "xenpin: --mem: 64T is more than the model boots (1024 GiB"
    )
    assert "no RAM holds the kernel image" in _bad([model, "--mem", "8M"], capsys)


def test_boot_mem_is_mib_granular(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot([str(KERNELS / "3.0.toml"), "--mem", "1537M", "--json"], capsys)
    doc = json.loads(out)["boots"][0]
    assert code == 0 and doc["mem_bytes"] == hex(1537 << 20) and doc["max_pfn"] == hex((1537 + 8) << 8)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["3.0", "--role", "dom0"], "xenpin: --role dom0: give the host's map with --e820 FILE"),
        (["3.0", "--role", "native"], "xenpin: --role native: {models}/3.0.toml is a xen variant"),
        (
            ["3.1-native", "--role", "domU"],
            "xenpin: --role domU: {models}/3.1-native.toml is a native variant",
        ),
    ],
)
def test_boot_bad_role_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    name, *rest = argv
    assert _bad([str(KERNELS / f"{name}.toml"), "--mem", "256M", *rest], capsys) == message.format(
        models=KERNELS
    )
    code, out, err = _boot([str(KERNELS / "3.0.toml"), "--role", "guest"], capsys)  # a usage error
    assert (code, out, err.count("\n")) == (2, "", 1) and err.startswith("xenpin boot: argument --role")


def test_boot_dom0_on_a_host_map(cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    e820 = tmp_path / "host.e820"
    e820.write_text(HOST_E820)
    argv = [str(KERNELS / "2.6.39.toml"), "--role", "dom0", "--e820", str(e820), "--mem", "1G", "--json"]
    code, out, _ = _boot(argv, capsys)
    doc = json.loads(out)["boots"][0]
    assert code == 0 and doc["role"] == "dom0" and doc["outcome"] == "ok"
    texts = [c["text"] for c in doc["console"]]
    assert texts[:3] == [
        "mapping kernel into physical memory",
        "Xen: setup ISA identity maps",
        "about to get started...",
    ]
    assert " Xen: 0000000040000000 - 00000000bf780000 (unusable)" in texts  # the host's RAM past nr_pages
    assert doc["max_pfn"] == hex((1 << 20) + (0xBF780000 - (1 << 30) + (1 << 30)) // 4096)  # all of it extra


def test_boot_native_on_a_host_map(cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    e820 = tmp_path / "host.e820"
    e820.write_text(HOST_E820)
    code, out, _ = _boot([str(KERNELS / "2.6.39-native.toml"), "--e820", str(e820), "--json"], capsys)
    doc = json.loads(out)["boots"][0]
    assert code == 0 and doc["max_pfn"] == "0x140000"
    assert [c["text"] for c in doc["console"] if c["kind"] == "init_memory_mapping"] == [
        "init_memory_mapping: 0000000000000000-00000000bf780000",
        "init_memory_mapping: 0000000100000000-0000000140000000",
    ]


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        (HOST_E820 + "garbage\n", 7, "not an E820 line"),
        (HOST_E820.replace("(reserved)", "(bogus)", 1), 2, "not an E820 line"),
        (
            HOST_E820 + " BIOS-e820: 0000000100000000 - 0000000200000000 (usable)\n",
            7,
            "entry 0x100000000 overlaps",
        ),
        ("", 1, "no E820 entries"),
    ],
)
def test_boot_bad_e820_exit_2_names_file_and_line(
    content: str, where: int, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    e820 = tmp_path / "host.e820"
    e820.write_text(content)
    message = _bad(
        [str(KERNELS / "2.6.39.toml"), "--role", "dom0", "--e820", str(e820), "--mem", "1G"], capsys
    )
    assert message.startswith(f"xenpin: {e820}:{where}: {what}"), message


def test_boot_e820_unreadable_or_too_big(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = str(KERNELS / "2.6.39-native.toml")
    assert _bad([model, "--e820", str(tmp_path / "nope")], capsys) == (
        f"xenpin: {tmp_path / 'nope'}: cannot read: No such file or directory"
    )
    big = tmp_path / "big.e820"
    big.write_text(" BIOS-e820: 0000000000100000 - 0000100000000000 (usable)\n")
    assert _bad([model, "--e820", str(big)], capsys).startswith(f"xenpin: {big}: a machine whose RAM ends at")
    # a machine whose RAM gives a 32 GiB cap (layout.max_boot_bytes)
    monkeypatch.setattr(
        layout, "machine_ram_bytes", lambda: int(32.5 * layout.BOOT_RSS_GIB_PER_GUEST_GIB * (1 << 30))
    )
    dom0 = [str(KERNELS / "3.0.toml"), "--role", "dom0", "--e820", str(big), "--mem", "64G"]
    assert "is more than the model boots (32 GiB on this machine" in _bad(dom0, capsys)
    small = tmp_path / "small.e820"  # 2 GiB of RAM: Xen cannot give a dom0 8 GiB of it
    small.write_text(" BIOS-e820: 0000000000100000 - 0000000080000000 (usable)\n")
    dom0 = [str(KERNELS / "3.0.toml"), "--role", "dom0", "--e820", str(small), "--mem", "8G"]
    assert _bad(dom0, capsys) == (
        f"xenpin: --mem: a dom0 of 0x200000000 bytes is more than the RAM of {small} (0x7ff00000 bytes)"
    )


def test_boot_kernel_and_ramdisk_sizes(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(KERNELS / "3.0.toml"), "--mem", "256M", "--kernel-size", "0x1800000", "--ramdisk-size", "4M"]
    code, out, _ = _boot([*argv, "--json"], capsys)
    doc = json.loads(out)["boots"][0]
    texts = {c["kind"]: c["text"] for c in doc["console"]}
    assert code == 0 and texts["ramdisk"] == "RAMDISK: 02800000 - 02c00000"  # right after the image
    assert texts["mapped"] == "initial memory mapped : 0 - 02c00000"  # mfn_list right after the ramdisk
    code, out, _ = _boot(
        [str(KERNELS / "3.0.toml"), "--mem", "256M", "--ramdisk-size", "0", "--json"], capsys
    )
    texts = {c["kind"]: c["text"] for c in json.loads(out)["boots"][0]["console"]}
    assert code == 0 and "ramdisk" not in texts  # no initrd: mfn_list right after the image
    assert texts["mapped"] == "initial memory mapped : 0 - 0203b000"
    assert _bad([str(KERNELS / "3.0.toml"), "--kernel-size", "0"], capsys) == (
        "xenpin: --kernel-size: 0 is not a positive multiple of 4 KiB"
    )
    assert _bad([str(KERNELS / "3.0.toml"), "--kernel-size", "12Q"], capsys).startswith(
        "xenpin: --kernel-size: bad memory size '12Q'"
    )
    assert _bad([str(KERNELS / "3.0.toml"), "--mem", "256M", "--kernel-size", "4K"], capsys).endswith(
        "a kernel image of 0x1000 bytes is too small"
    )


def test_boot_bad_policy_exit_2_names_file_line_key_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(
        tmp_path, "3.0", ('writable = "PFN_PHYS(pgt_buf_end)', 'writable = "PFN_PHYS(pgt_buf_edn)')
    )
    writable_line = next(
        i for i, row in enumerate(model.read_text().splitlines(), 1) if row.startswith("writable")
    )
    assert _bad([str(model), "--mem", "64M"], capsys).startswith(
        f"xenpin: {model}:{writable_line}: key 'writable': column 10: unknown variable 'pgt_buf_edn'"
    )


def test_usage_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xenpin boot: ") and "MODEL" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _bad([str(empty)], capsys) == f"xenpin: {empty}: no kernel variant files (*.toml) in this folder"
    assert _bad([str(tmp_path / "nope.toml")], capsys) == (
        f"xenpin: {tmp_path / 'nope.toml'}: cannot read: No such file or directory"
    )


# --- --dmesg


def test_dmesg_92bdaef7b2c5_reproduces(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot(
        [str(KERNELS / "2.6.39-rc6.toml"), "--dmesg", str(LOGS / "92bdaef7b2c5-domU.log")], capsys
    )
    assert code == 0
    assert "  machine from the log: domU d1, 7.5 GiB (nr_pages 0x1e0000, max_pfn 0x1e0800)" in out
    assert (
        "     6  tables               match   kernel direct mapping tables up to 100000000 @ ff7fb000-100000000"
        in out
    )
    assert "19 logged line(s) compared: 19 match, 0 differ" in out
    assert (
        "predicted outcome: kernel-fault in initmem_init: memset(NODE_DATA): page 0x1dfffb is mapped read-only"
        in out
    )


def test_dmesg_92bdaef7b2c5_against_the_seed(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot(
        [str(KERNELS / "2.6.39.toml"), "--dmesg", str(LOGS / "92bdaef7b2c5-domU.log")], capsys
    )
    assert code == 1
    differ = [line.split()[:2] for line in out.splitlines() if " differ " in line]
    assert differ == [["17", "failure"], ["18", "oops_ip"], ["60", "failure"]]
    assert "predicted: (none)" in out and "predicted outcome: ok" in out


@pytest.mark.parametrize(
    ("log", "name", "code"),
    [("before", "2.6.38-native", 0), ("after", "2.6.39-native", 0), ("after", "2.6.38-native", 1),
     ("before", "2.6.39-native", 1)],
)  # fmt: skip
def test_dmesg_4b239f458(
    log: str, name: str, code: int, cached: None, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, _ = _boot(
        [str(KERNELS / f"{name}.toml"), "--dmesg", str(LOGS / f"4b239f458-{log}.log")], capsys
    )
    assert got == code
    differ = [line.split()[0] for line in out.splitlines() if " differ " in line]
    assert differ == ([] if code == 0 else ["5", "6", "9", "10"])
    if log == "after" and code == 1:
        assert "logged:    kernel direct mapping tables up to 7f750000 @ [0x7f74c000-0x7f74ffff]" in out
        assert "predicted: kernel direct mapping tables up to 7f750000 @ [0x1fffc000-0x1fffffff]" in out
    assert "11 logged line(s) compared" in out


def test_dmesg_json_shape(cached: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _boot(
        [str(KERNELS / "2.6.39-native.toml"), "--dmesg", str(LOGS / "4b239f458-before.log"), "--json"], capsys
    )
    doc = json.loads(out)
    assert code == 1 and doc["outcome"] == "ok" and doc["all_match"] is False
    assert doc["variant"] == "2.6.39-native" and doc["log"].endswith("4b239f458-before.log")
    assert all(set(row) == {"kind", "logged", "predicted", "match", "line"} for row in doc["log_lines"])
    assert [r["line"] for r in doc["log_lines"] if not r["match"]] == [5, 6, 9, 10]
    assert doc["log_lines"][0] == {
        "line": 1, "kind": "mapped", "logged": "initial memory mapped : 0 - 20000000",
        "predicted": "initial memory mapped : 0 - 20000000", "match": True,
    }  # fmt: skip


def test_dmesg_log_without_layout_facts(capsys: pytest.CaptureFixture[str]) -> None:
    """a38647837a41's dom0 log: Xen's lines only. What it does now: exit 2, one line naming the file."""
    log = LOGS / "a38647837a41-dom0.log"
    model = str(KERNELS / "2.6.39-rc1.toml")
    assert _bad([model, "--dmesg", str(log)], capsys) == (
        f"xenpin: {log}:1: no line gives the memory size (last_pfn, init_memory_mapping, E820) of this dom0; give --mem and the host's map with --e820"
    )
    assert _bad([model, "--dmesg", str(log), "--mem", "3G"], capsys).startswith(
        f"xenpin: {log}:1: a dom0 boots on the host's E820"
    )


def test_dmesg_log_with_the_facts_given(
    cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    e820 = tmp_path / "host.e820"
    e820.write_text(HOST_E820)
    argv = [str(KERNELS / "2.6.39-rc1.toml"), "--dmesg", str(LOGS / "a38647837a41-dom0.log"), "--mem", "3G"]
    code, out, _ = _boot([*argv, "--e820", str(e820)], capsys)
    assert code == 1 and "7 logged line(s) compared: 5 match, 2 differ" in out
    row = next(line for line in out.splitlines() if line.split()[:3] == ["6", "xen", "match"])
    assert row.split(None, 3)[3].startswith("(XEN) traps.c:481:d0 Unhandled invalid opcode fault/trap")


def _pasted(text: str) -> str:
    lines = [strip_timestamp(line) for line in text.splitlines()]
    return "".join(f"<6>[    0.000000] {' '.join(line.split())}\r\n" for line in lines)


@pytest.mark.parametrize("log", ["4b239f458-before.log", "92bdaef7b2c5-domU.log"])
def test_dmesg_pasted_log(log: str, cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Timestamps, `<6>` levels, CRLF and collapsed spaces: the same lines, the same verdict."""
    name = "2.6.38-native" if log.startswith("4b") else "2.6.39-rc6"
    pasted = tmp_path / "pasted.log"
    pasted.write_text(_pasted((LOGS / log).read_text()))
    code, out, _ = _boot([str(KERNELS / f"{name}.toml"), "--dmesg", str(pasted)], capsys)
    assert code == 0 and " 0 differ" in out


def test_dmesg_excerpt(cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (LOGS / "4b239f458-after.log").read_text().splitlines()
    excerpt = tmp_path / "excerpt.log"
    excerpt.write_text("\n".join([lines[1], lines[4], lines[6], lines[8], lines[10]]) + "\n")
    code, out, _ = _boot([str(KERNELS / "2.6.39-native.toml"), "--dmesg", str(excerpt)], capsys)
    assert code == 0 and "5 logged line(s) compared: 5 match, 0 differ" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 16, ":1: no early-boot line xenpin reads"),
        (b"", ":1: no early-boot line xenpin reads"),
        (
            b"Linux version 2.6.39-0-virtual\nCommand line: root=/dev/xvda1 ro\n",
            ":1: no early-boot line xenpin reads",
        ),
        (None, ": cannot read: No such file or directory"),
    ],
)
def test_dmesg_bad_log_exit_2(content: bytes | None, message: str, tmp_path: Path, capsys) -> None:
    log = tmp_path / "bad.log"
    if content is not None:
        log.write_bytes(content)
    assert _bad([str(KERNELS / "2.6.39.toml"), "--dmesg", str(log)], capsys).startswith(
        f"xenpin: {log}{message}"
    )
    assert _bad([str(KERNELS / "2.6.39.toml"), "--dmesg", str(tmp_path)], capsys).endswith(
        ": cannot read: Is a directory"
    )


def test_dmesg_needs_one_variant_and_a_bounded_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = LOGS / "92bdaef7b2c5-domU.log"
    two = [str(KERNELS / "2.6.39.toml"), str(KERNELS / "3.0.toml")]
    assert _bad([*two, "--dmesg", str(log)], capsys) == "xenpin: --dmesg: give exactly one kernel variant"
    huge = tmp_path / "huge.log"
    huge.write_text("init_memory_mapping: 0000000000000000-0000000100000000\n"
                    "init_memory_mapping: 0000000100000000-0000100000000000\n")  # fmt: skip
    assert _bad([str(KERNELS / "3.0.toml"), "--dmesg", str(huge)], capsys).startswith(
        f"xenpin: {huge}: a guest of 0xfffff800000 bytes is more than the model boots ("
    )


# --- xenpin prove / explore / equiv ----------------------------------------------------------------------------


def test_explore_shows_replayed_counterexample_and_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svg, dot = tmp_path / "b.svg", tmp_path / "b.dot"
    code = main(
        ["explore", str(KERNELS / "2.6.39-rc6.toml"), "spare_writable", "--svg", str(svg), "--dot", str(dot)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "smallest: domU of 0x4000000 bytes, init_memory_mapping call 0" in out
    assert "replay: boot ok, spare_writable violated" in out
    assert "0x3fe2 (1 page): spare, RO, free  <== counterexample" in out
    assert svg.read_text().startswith("<svg") and "counterexample" in svg.read_text()
    assert dot.read_text().startswith("digraph buffer {")


def test_prove_json_and_bad_property(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", str(KERNELS / "3.0.toml"), "--property", "spare_freed", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [o["verdict"] for o in doc["obligations"]] == ["proved"] and doc["summary"]["bit_width"] == 64
    assert main(["prove", "--property", "nope"]) == 2
    assert capsys.readouterr().err.startswith("xenpin: --property: unknown property 'nope'")


def test_prove_resource_limit_hit_is_unknown_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prove", str(KERNELS / "2.6.38.toml"), "--property", "spare_writable", "--rlimit", "1000"])
    out = capsys.readouterr().out
    assert code == 3
    row = out.splitlines()[1].split()
    assert [row[0], *row[2:4]] == ["2.6.38", "spare_writable", "unknown"] and row[1].endswith(
        "2.6.38.toml"
    )  # a limit hit is never `proved`
    assert "solver gave up (max. resource limit exceeded)" in out


def test_equiv_inline_alternative(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["equiv", str(KERNELS / "2.6.39.toml"), str(KERNELS / "2.6.39-inline.toml")]) == 0
    assert "equivalent" in capsys.readouterr().out


def test_prove_smt2_writes_obligations_and_the_lemmas_they_assume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "smt"
    assert main(["prove", str(KERNELS / "3.0.toml"), "--property", "spare_writable", "--smt2", str(out)]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert "3.0.spare_writable.call0.smt2" in names and "3.0.spare_writable.call1.smt2" in names
    # call 1 is proved only with call 0's live_reserved and spare_freed, so their files are written too
    assert "3.0.live_reserved.call0.smt2" in names and "3.0.spare_freed.call0.smt2" in names
    assert any(n.startswith("lemma.pte_end_bounded.") and n.endswith(".call0.smt2") for n in names)
    assert "lemma.add_monotone.smt2" in names
    for name in names:
        text = (out / name).read_text()
        assert "(set-logic QF_BV)" in text
        # every obligation of a proved verdict, every lemma: the file read back is `unsat`
        assert check(z3.And(*z3.parse_smt2_string(text))).status == "unsat", name
    header = (out / "3.0.spare_writable.call0.smt2").read_text().splitlines()[1]
    assert header.startswith("; assumes the lemmas ") and "pte_end_bounded[xen/high/" in header


def test_prove_bad_jobs_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", str(KERNELS / "3.0.toml"), "--jobs", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "xenpin: --jobs: must be a positive integer\n"


def test_boot_exit_1_on_a_failure_no_property_accounts_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only fixmap alias: the kernel faults filling its first table page (alias_writable)."""
    text = (
        (KERNELS / "3.0.toml").read_text().replace(" or (ioremap and pfn != pgt_buf_end - 1)", " or ioremap")
    )
    model = tmp_path / "ro-alias.toml"
    model.write_text(text)
    assert main(["boot", str(model), "--mem", "64M"]) == 1
    out = capsys.readouterr().out
    assert "outcome: kernel-fault" in out and "MISMATCH (alias_writable)" in out
    assert main(["prove", str(model), "--property", "alias_writable", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert any(
        line.split()[2:5] == ["alias_writable", "counterexample", "proved"] for line in out.splitlines()
    )
    assert "replay: kernel-fault" in out


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "-1"])
def test_prove_bad_timeout_exit_2(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", str(KERNELS / "3.0.toml"), f"--timeout={timeout}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("xenpin: --timeout: ")


def test_explore_unwritable_picture_is_exit_2_with_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(KERNELS / "2.6.39-rc6.toml")
    assert main(["explore", model, "spare_writable", "--svg", str(tmp_path)]) == 2  # a directory
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"xenpin: {tmp_path}: not a file")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main(["explore", model, "spare_writable", "--svg", str(locked / "b.svg")])
    finally:
        locked.chmod(0o700)
    captured = capsys.readouterr()
    if code != 0:  # root may write anyway
        assert code == 2 and captured.out == "" and "cannot write" in captured.err
        assert list(locked.iterdir()) == []  # no partial file, no temporary left behind


def test_explore_without_counterexample_says_no_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svg = tmp_path / "b.svg"
    assert main(["explore", str(KERNELS / "3.0.toml"), "spare_writable", "--svg", str(svg)]) == 0
    assert f"no counterexample: {svg} not written" in capsys.readouterr().out and not svg.exists()


SCRIPTS = {
    "nameerr.py": (
        "from xenpin.symbolic.theorems import Theorem\nTHEOREMS = [VARIANT]\n",
        ":2: the script failed: NameError",
    ),
    "exits.py": ("import sys\nsys.exit(0)\n", ":2: the script failed: exits while loading"),
    "typo.py": (
        "from xenpin.symbolic.theorems import Theorem\n"
        "THEOREMS = [\n"
        "    Theorem('{KERNELS}/3.0.toml', 'spare_freed'),\n"
        "    Theorem('{KERNELS}/3.0.toml', 'spare_writeable'),\n"
        "]\n",
        ":4: Theorem prop: unknown property 'spare_writeable'",
    ),
    "badverdict.py": (
        "from xenpin.symbolic.theorems import Theorem\nTHEOREMS = [Theorem('{KERNELS}/3.0.toml', 'spare_freed', 'yes')]\n",
        ":2: Theorem expect: unknown verdict 'yes'",
    ),
    "syntax.py": ("THEOREMS = [\n", ":1: syntax error"),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_bad_proof_script_exit_2_names_script_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, message = SCRIPTS[name]
    script = tmp_path / name
    script.write_text(source.replace("{KERNELS}", str(KERNELS)))
    assert main(["prove", str(script), "--property", "spare_freed"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"xenpin: {script}{message}"), (
        captured.err
    )


def test_proof_script_prints_do_not_spoil_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(
        "from xenpin.symbolic.theorems import Theorem\nprint('hello')\n"
        f"THEOREMS = [Theorem('{KERNELS}/3.0.toml', 'spare_freed')]\n"
    )
    assert main(["prove", str(script), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["obligations"][0]["verdict"] == "proved" and "hello" in captured.err
