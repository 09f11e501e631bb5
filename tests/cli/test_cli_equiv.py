"""`xenpin equiv` on the command line: the Xen/native pair of issue 9 is `different` (exit 1) by paired boots
and says what it compared; an equivalence proved exits 0 and says so; paired boots that find nothing exit 3;
`--json` validates; a bad `--sizes` is one line on stderr and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from xenpin.cli import main
from xenpin.report.jsondoc import load_schema

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "models" / "kernels"


def _native_3_0(folder: Path) -> Path:
    """3.0 on bare metal, from 3.0's file (as `tests/symbolic/equiv_cases.native_3_0`)."""
    swap = {"name": 'name = "3.0-native"', "platform": 'platform = "native"', "readonly": 'readonly = "false"',
            "writable": 'writable = "false"'}  # fmt: skip
    lines = [
        swap.get(line.split("=")[0].strip(), line)
        for line in (KERNELS / "3.0.toml").read_text().splitlines()
        if line.split("=")[0].strip() not in ("xen_setup_kernel_pagetable", "xen_memory_setup")
    ]
    path = folder / "3.0-native.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_xen_against_native_is_different_on_what_both_leave(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    native = _native_3_0(tmp_path)
    assert main(["equiv", str(KERNELS / "3.0.toml"), str(native), "--sizes", "64M"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "different (paired boots at 64 MiB) on a domU and bare metal of 0x4000000 bytes" in out[0]
    assert out[1].startswith("  compared: what both platforms leave") and "pins: Xen only" in out[1]
    assert out[2].startswith("  replay 3.0 (") and "is RO, reserved" in out[2]
    assert out[3].startswith("  replay 3.0-native (") and "is RW, reserved" in out[3]


def test_json_validates_and_names_the_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    native = _native_3_0(tmp_path)
    assert main(["equiv", str(KERNELS / "3.0.toml"), str(native), "--sizes", "64M,128M", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(load_schema("equiv")).validate(doc)
    assert (doc["method"], doc["sizes"], doc["pins_compared"]) == ("paired boots", ["0x4000000"], False)
    assert doc["differing_pages"] > 0 and [r["page"]["pte"] for r in doc["replays"]] == ["RO", "RW"]
    bad = dict(doc, method="guess")
    assert not jsonschema.Draft202012Validator(load_schema("equiv")).is_valid(bad)


def test_paired_boots_that_find_nothing_are_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["equiv", str(KERNELS / "2.6.37.toml"), str(KERNELS / "2.6.38.toml"), "--sizes", "64M"])
    out = capsys.readouterr().out
    assert code == 3
    assert (
        "unknown (not proved: their code differs (xen_memory_setup); paired boots at 64 MiB leave the same"
        in out
    )
    assert "not a proof" in out


def test_a_proved_equivalence_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["equiv", str(KERNELS / "2.6.39.toml"), str(KERNELS / "2.6.39-inline.toml")]) == 0
    out = capsys.readouterr().out
    assert "equivalent (proof over every machine of the closed form's domain)" in out
    assert "Xen's pin" in out


@pytest.mark.parametrize("sizes", ["64M,,128M", "12345", "lots", "64M,32M"])
def test_bad_sizes_exit_2(sizes: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["equiv", str(KERNELS / "3.0.toml"), str(KERNELS / "3.1.toml"), "--sizes", sizes]) == 2
    captured = capsys.readouterr()
    assert (
        captured.out == "" and captured.err.startswith("xenpin: --sizes: ") and captured.err.count("\n") == 1
    )
