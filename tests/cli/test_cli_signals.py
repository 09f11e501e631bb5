"""Ctrl-C and SIGTERM stop every command at once (one line, exit 130/143, no workers left, no partial files);
a closed stdout ends quietly (exit 141, or the command's own code when its output got through)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "models" / "kernels"
SETTLE_S = 1.5  # the command is past its imports and loading, inside its work (solver calls, boots)
STOP_S = 3.0  # the product stops within a second; the bound is generous for a loaded 2-core machine


def _start(*args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xenpin", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of `pid` from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _descendants(pid: int) -> set[int]:
    found, frontier = set(), {pid}
    while frontier:
        children = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (st := _stat(int(entry))) is not None and st[1] in frontier:
                children.add(int(entry))
        frontier = children - found
        found |= children
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie waiting for init to reap it is dead)."""
    return {pid for pid in pids if (st := _stat(pid)) is not None and st[0] != "Z"}


def _workers(pid: int) -> set[int]:
    return {
        child
        for child in _descendants(pid)
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
    }


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[str, str, float, set[int]]:
    """Send `signum` and wait for the command; its output, the seconds it took to stop, and the processes it
    had started that are still running a moment after it ended."""
    children = _descendants(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=STOP_S + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    took = time.monotonic() - sent
    deadline = time.monotonic() + 2.0
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.05)
    return out, err, took, _alive(children)


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads /proc")


def test_prove_with_workers_sigint_kills_them_exit_130(tmp_path: Path) -> None:
    smt2 = tmp_path / "smt2"
    proc = _start("prove", str(KERNELS / "2.6.38.toml"), str(KERNELS / "2.6.39.toml"), "--jobs", "2",
                  "--smt2", str(smt2))  # fmt: skip
    deadline = time.monotonic() + 20
    while len(_workers(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    workers = _workers(proc.pid)
    assert len(workers) == 2, "the pool never started"
    time.sleep(0.5)  # they are in their solver calls
    out, err, took, left = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and took < STOP_S
    files = sorted(p.name for p in smt2.iterdir())
    # besides the one line, only the summary of --smt2 (written before the proving)
    assert err.splitlines() == [f"wrote {len(files)} SMT-LIB files to {smt2}", "xenpin: interrupted"]
    assert out == ""
    assert not left and not _alive(workers)
    # those files are all there and whole, with no temporary file beside them
    assert files and not [f for f in files if f.startswith(".xenpin-")]
    assert all((smt2 / f).read_text().rstrip().endswith("(check-sat)") for f in files)


def test_prove_in_process_sigint_is_no_unknown_exit_130() -> None:
    proc = _start("prove", str(KERNELS / "2.6.38.toml"), "--jobs", "1")
    time.sleep(SETTLE_S)
    assert proc.poll() is None
    out, err, took, left = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and took < STOP_S
    assert err == "xenpin: interrupted\n" and out == ""  # no table of `unknown` verdicts, no PASS
    assert not left


def test_prove_with_workers_sigterm_exit_143() -> None:
    proc = _start("prove", str(KERNELS / "2.6.38.toml"), str(KERNELS / "2.6.39.toml"), "--jobs", "2")
    time.sleep(SETTLE_S + 0.5)
    assert proc.poll() is None
    out, err, took, left = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143 and took < STOP_S
    assert err == "xenpin: terminated\n" and out == ""
    assert not left


def test_equiv_sigint_exit_130() -> None:
    proc = _start("equiv", str(KERNELS / "2.6.37.toml"), str(KERNELS / "2.6.38.toml"))
    time.sleep(SETTLE_S)
    assert proc.poll() is None
    out, err, took, _ = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and took < STOP_S
    assert err == "xenpin: interrupted\n" and out == ""


def test_boot_sigterm_exit_143() -> None:
    proc = _start("boot", str(KERNELS))
    time.sleep(SETTLE_S)
    assert proc.poll() is None
    out, err, took, _ = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143 and took < STOP_S
    assert err == "xenpin: terminated\n" and out == ""


def test_explore_sigint_writes_no_picture(tmp_path: Path) -> None:
    svg = tmp_path / "cx.svg"
    proc = _start("explore", str(KERNELS / "2.6.39-rc1.toml"), "no_rw_alias", "--svg", str(svg))
    time.sleep(1.0)
    assert proc.poll() is None
    out, err, took, _ = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and took < STOP_S
    assert err == "xenpin: interrupted\n" and out == ""
    assert list(tmp_path.iterdir()) == []  # neither the picture nor a temporary file


def test_closed_stdout_exit_141_quietly() -> None:
    reader, writer = os.pipe()
    os.close(reader)  # every write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "xenpin", "replay", str(ROOT / "models" / "scenarios")],
            cwd=ROOT,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert done.returncode == 141
    assert done.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError" at shutdown


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "models/scenarios"],
        ["prove", "models/kernels/2.6.38.toml", "--property", "spare_freed", "--jobs", "1"],
    ],
    ids=["replay", "prove"],
)
def test_head_1_ends_quietly(args: list[str]) -> None:
    command = " ".join([sys.executable, "-m", "xenpin", *args])
    done = subprocess.run(
        ["bash", "-c", f"{command} | head -1; echo rc=${{PIPESTATUS[0]}} >&2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(done.stdout.splitlines()) == 1
    # 141 when a write found the pipe closed, the command's own code when its output got through first
    assert done.stderr in ("rc=141\n", "rc=0\n"), done.stderr


BLOCKED = """
import ctypes, sys
from xenpin.cli import signals
print("ready", flush=True)
with signals.handled():
    ctypes.CDLL(None).system(b"exec sleep 6 </dev/null >/dev/null 2>&1")  # C code that does not come back on a signal (it retries its wait)
print("came back", flush=True)
"""


def test_backstop_ends_a_call_that_cannot_be_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", BLOCKED], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    time.sleep(0.5)
    out, err, took, left = _stop(proc, signal.SIGTERM)
    for pid in left:  # the `sleep` system() started: not a worker of ours, so nobody killed it
        os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 143 and err == "xenpin: terminated\n" and out == ""
    assert 1.5 < took < 4.5  # the backstop (2 s), not the end of the call (6 s)


def test_a_limit_is_unknown_an_interrupt_is_no_answer() -> None:
    import z3

    from xenpin.symbolic import solver

    a, b = z3.BitVec("a", 128), z3.BitVec("b", 128)
    factor = z3.And(a * b == 1000000000000000003 * 1000000000000000009, z3.UGT(a, 1), z3.UGT(b, 1),
                    z3.ULT(a, 1 << 64), z3.ULT(b, 1 << 64))  # fmt: skip
    answer = solver.check(factor, rlimit=2_000_000)  # z3 says "canceled" here: a limit, not an interrupt
    assert answer.status == "unknown" and answer.reason == "canceled"
    solver.interrupt_requested.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            solver.check(factor, rlimit=1_000_000)
    finally:
        solver.interrupt_requested.clear()
    for reason in ("interrupted from keyboard", "interrupted"):
        with pytest.raises(KeyboardInterrupt):
            solver.raise_if_interrupted(reason)
    solver.raise_if_interrupted("max. resource limit exceeded")


def test_a_signal_during_a_finaliser_still_stops_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # z3 objects free their C side in __del__, where a raised KeyboardInterrupt would be printed as
    # "Exception ignored in ..." and dropped: the command must stop all the same, with nothing printed.
    from xenpin.cli import signals

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)

    class Freed:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # bytecodes: the handler runs here, inside the finaliser
                pass

    slept = []
    with pytest.raises(KeyboardInterrupt), signals.handled():
        Freed()  # freed at once
        for _ in range(150):  # 1.5 s: inside the watcher's backstop
            time.sleep(0.01)
            slept.append(1)
    assert dropped == [] and signals.received() == signal.SIGTERM
    assert len(slept) < 100  # raised once the finaliser returned, not at the end of the block


STRESS = """
import signal, sys, threading, time, z3
from xenpin.cli import signals

stops = 0
for _ in range(40):
    timer = threading.Timer(0.005, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    try:
        with signals.handled():
            timer.start()
            while True:
                z3.Context()  # most of the time is spent in Z3_mk_context_rc, inside Context.__init__
    except KeyboardInterrupt:
        stops += 1
print(stops)
"""


def test_a_signal_inside_z3s_wrappers_leaves_no_half_built_object() -> None:
    # The handler runs as soon as a z3 C call returns, before the wrapper has set its fields; raised there, the
    # half-built Context's __del__ fails and Python prints "Exception ignored in ...". It is raised just after.
    proc = subprocess.run(
        [sys.executable, "-c", STRESS], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "40\n" and proc.stderr == ""


def test_a_z3_error_left_on_the_context_does_not_kill_the_watcher(monkeypatch: pytest.MonkeyPatch) -> None:
    # z3's Context.interrupt() checks the context's error code after the C call, and a Z3Exception the main
    # thread caught leaves one set: the watcher thread must survive it (its backstop depends on it).
    import threading

    import z3

    from xenpin.cli import signals

    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    with pytest.raises(z3.Z3Exception):
        z3.parse_smt2_string("(assert (")
    with pytest.raises(KeyboardInterrupt), signals.handled():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.01)
    time.sleep(0.2)  # the watcher has run its interrupt by now
    assert died == [] and signals.received() == signal.SIGTERM
