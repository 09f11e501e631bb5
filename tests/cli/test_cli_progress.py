"""Progress on a terminal: off without a TTY and under --json/--quiet, on (n/N, per call) with one, transient;
the boot's progress callback is called with increasing values, per init_memory_mapping call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xenpin import shipped
from xenpin.cli import main
from xenpin.linux.boot import boot
from xenpin.linux.variant import load_variant

ROOT = Path(__file__).resolve().parents[2]
KERNEL = str(shipped.KERNELS / "3.1.toml")
SMALL_PROVE = ["prove", KERNEL, "--property", "spare_freed", "--property", "live_reserved", "--jobs", "1"]
SMALL_BOOT = ["boot", str(shipped.KERNELS / "2.6.39.toml"), "--mem", "256M"]


def _fake_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def test_no_progress_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SMALL_BOOT) == 0
    assert capsys.readouterr().err == ""
    assert main(SMALL_PROVE) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "2 obligations" in captured.out


def test_prove_shows_n_of_n_on_a_terminal_and_leaves_stdout_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(SMALL_PROVE) == 0
    plain = capsys.readouterr().out
    _fake_tty(monkeypatch)
    assert main(SMALL_PROVE) == 0
    captured = capsys.readouterr()
    assert "2/2" in captured.err and "prove: obligations" in captured.err
    # the same report on stdout (only the timings differ)
    assert [line.split()[:4] for line in captured.out.splitlines()] == [
        line.split()[:4] for line in plain.splitlines()
    ]


def test_boot_names_the_call_and_a_percentage_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from xenpin.cli.progress import Bars

    _fake_tty(monkeypatch)
    shown: list[str] = []  # every description given to the bars (rich draws them ~10 times a second only)
    update = Bars.update

    def spy(self: Bars, task, **kw) -> None:
        if kw.get("description"):
            shown.append(kw["description"])
        update(self, task, **kw)

    monkeypatch.setattr(Bars, "update", spy)
    assert main(SMALL_BOOT) == 0
    err = capsys.readouterr().err
    assert any(d.startswith("2.6.39: init_memory_mapping call 0 [0x0,") for d in shown), shown[:5]
    assert "100%" in err and "2.6.39: ok" in err  # the last frame is drawn when the bars stop


@pytest.mark.parametrize("flag", ["--quiet", "--json"])
def test_quiet_and_json_silence_the_progress_on_a_terminal(
    flag: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tty(monkeypatch)
    assert main([*SMALL_BOOT, flag]) == 0
    assert capsys.readouterr().err == ""


def test_progress_under_a_real_pseudo_terminal() -> None:
    """stderr on a pty, stdout a pipe: the bars go to the terminal, stdout holds only the report."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xenpin", "prove", KERNEL, "--property", "spare_freed"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert b"1/1" in err and b"prove: obligations" in err
    assert "obligations" in out and "\x1b[" not in out


def test_the_boot_callback_follows_each_call_in_increasing_steps() -> None:
    events: list[tuple[str, int, int]] = []
    result = boot(
        load_variant(shipped.KERNELS / "2.6.39.toml"), 256 << 20, on_progress=lambda *e: events.append(e)
    )
    assert result.outcome == "ok"
    calls = list(dict.fromkeys(what for what, _, _ in events))
    assert [c.split(" [")[0] for c in calls] == ["init_memory_mapping call 0", "init_memory_mapping call 1"]
    for call in calls:
        done = [d for what, d, _ in events if what == call]
        totals = {t for what, _, t in events if what == call}
        assert len(totals) == 1 and done == sorted(done) and done[0] == 0 and done[-1] == totals.pop()
    # about once per L1 table (2 MiB), not per page
    walked = [d for what, d, _ in events if what == calls[0]]
    assert 256 // 2 <= len(walked) <= 256 // 2 + 8


@pytest.mark.parametrize(("name", "mem"), [("3.9", 256 << 20), ("2.6.39-native", 6 << 30)])
def test_the_boot_callback_for_3_9_and_bare_metal(name: str, mem: int) -> None:
    events: list[tuple[str, int, int]] = []
    boot(load_variant(shipped.KERNELS / f"{name}.toml"), mem, on_progress=lambda *e: events.append(e))
    for call in dict.fromkeys(what for what, _, _ in events):
        done = [d for what, d, _ in events if what == call]
        total = next(t for what, _, t in events if what == call)
        assert done == sorted(done) and done[-1] == total, call
    assert events[-1][1] == events[-1][2]  # the last call ends at 100%
    if name == "3.9":  # one bar for the whole of init_mem_mapping's top-down steps
        assert {what.split(",")[0] for what, _, _ in events} == {"init_mem_mapping [0x0"}
    else:  # 2 MiB and 1 GiB pages: reported per GiB, a few times in all
        assert len(events) < 20
