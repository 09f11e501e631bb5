"""`xenpin boot --mem`: the largest Xen guest follows the machine's RAM (`layout.max_boot_bytes`), with one line
naming --mem, the cap and why past it."""

from __future__ import annotations

import pytest

from xenpin.cli import main
from xenpin.linux import layout
from xenpin.linux.layout import BOOT_RSS_GIB_PER_GUEST_GIB, MAX_PHYSMEM_BITS, max_boot_bytes
from xenpin.shipped import KERNELS, LOGS

GIB = 1 << 30
MODEL = str(KERNELS / "3.0.toml")


def _ram(monkeypatch: pytest.MonkeyPatch, ram_bytes: int) -> int:
    """This machine has `ram_bytes` of RAM; the cap it gives, in GiB."""
    monkeypatch.setattr(layout, "machine_ram_bytes", lambda: ram_bytes)
    return int(ram_bytes / GIB / BOOT_RSS_GIB_PER_GUEST_GIB)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_past_the_cap_one_line_names_mem_the_cap_and_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = _ram(monkeypatch, 2 * GIB)
    code, out, err = _run(["boot", MODEL, "--mem", f"{cap + 1}G"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"xenpin: --mem: {cap + 1}G is more than the model boots ({cap} GiB on this machine: 2.0 GiB of RAM,"
        f" and a boot needs about {BOOT_RSS_GIB_PER_GUEST_GIB} GiB of it per GiB of guest)\n"
    )


def test_the_cap_grows_with_the_machine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small, big = _ram(monkeypatch, 4 * GIB), int(24 / BOOT_RSS_GIB_PER_GUEST_GIB)
    assert max_boot_bytes(4 * GIB) == small * GIB < max_boot_bytes(24 * GIB) == big * GIB
    assert max_boot_bytes() == small * GIB  # this machine's, as the command sees it
    assert max_boot_bytes(1) == GIB  # never below a GiB
    assert max_boot_bytes(1 << 60) == 1 << MAX_PHYSMEM_BITS  # nor above what x86-64 maps
    _ram(monkeypatch, 1 << 60)
    code, _, err = _run(["boot", MODEL, "--mem", "65T"], capsys)
    assert code == 2 and err.endswith(
        "is more than the model boots (64 TiB: MAX_PHYSMEM_BITS = 46 of x86-64)\n"
    )


def test_at_the_cap_the_boot_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _ram(monkeypatch, int(0.6 * GIB * BOOT_RSS_GIB_PER_GUEST_GIB))  # a cap of 1 GiB (never below)
    code, out, err = _run(["boot", MODEL, "--mem", "256M"], capsys)
    assert (code, err) == (0, "") and "outcome: ok" in out
    code, out, err = _run(["boot", MODEL, "--mem", "1025M"], capsys)
    assert (code, out) == (2, "") and err.startswith(
        "xenpin: --mem: 1025M is more than the model boots (1 GiB"
    )


def test_a_log_past_the_cap_names_the_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cap = _ram(
        monkeypatch, int(4 * GIB * BOOT_RSS_GIB_PER_GUEST_GIB)
    )  # a 4 GiB cap: the log's domU has 7.5 GiB
    log = LOGS / "92bdaef7b2c5-domU.log"
    code, out, err = _run(["boot", str(KERNELS / "2.6.39-rc6.toml"), "--dmesg", str(log)], capsys)
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert (
        err.startswith(f"xenpin: {log}: a guest of ") and f"the model boots ({cap} GiB on this machine" in err
    )
