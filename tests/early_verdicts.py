"""Under pytest-xdist: the session's verdicts (tests/symbolic/conftest.py's `verdicts`) proved from the start.

The verdicts of every shipped (variant, property) are the suite's largest single piece of work. Under xdist the
controller process collects nothing and runs no test, so it starts that batch as soon as the run is configured,
beside the workers, instead of the first worker that needs it starting it late in the run. The controller holds
the lock `_shared_batch` (tests/symbolic/conftest.py) takes, from before the workers start until the batch's
result is written beside their folders; a worker that needs the verdicts waits on that lock and reads them. If
the batch fails, the lock is released with nothing written, and the first worker that needs them proves them
itself, as it would without this module. The batch starts only when the whole of tests/symbolic is selected
(no `-k`/`-m`, no narrower path), and is stopped, not waited for, if the run ends first.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SYMBOLIC = TESTS / "symbolic"
RESULT = "xenpin-verdicts.pickle"  # in the controller's basetemp, the parent of every worker's


def _prove_and_send(send: Connection) -> None:
    """In a process of its own: tests/symbolic's batch (`symbolic_cases.run_batch`), whose folder the
    controller never imports from."""
    sys.path.insert(0, str(SYMBOLIC))
    from symbolic_cases import run_batch

    run_batch(send)


def _selects_all_of_symbolic(config: pytest.Config) -> bool:
    if config.option.keyword or config.option.markexpr or config.option.collectonly:
        return False
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [TESTS]
    return any(path == SYMBOLIC or path in SYMBOLIC.parents for path in paths)


class EarlyBatch:
    """The batch process, and the controller's thread that writes its result and then releases the lock."""

    def __init__(self, folder: Path) -> None:
        self.lock = open(folder / Path(RESULT).with_suffix(".lock"), "w")  # noqa: SIM115 (held past this call)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.path = folder / RESULT
        context = multiprocessing.get_context("spawn")
        self.receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_prove_and_send, args=(send,), daemon=False)
        self.process.start()
        send.close()
        self.writer = threading.Thread(target=self._write, name="xenpin-early-verdicts", daemon=True)
        self.writer.start()

    def _write(self) -> None:
        try:
            data = self.receive.recv_bytes()
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(self.path)
        except (EOFError, OSError):
            pass  # no result: the first worker that needs the verdicts proves them
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.receive.close()
        self.writer.join(timeout=5)


_EARLY: list[EarlyBatch] = []


def start(config: pytest.Config) -> None:
    """From the xdist controller's `pytest_configure`: start the batch if this run will read its verdicts."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", None):
        return
    if getattr(config.option, "dist", "no") == "no" or not _selects_all_of_symbolic(config):
        return
    _EARLY.append(EarlyBatch(config._tmp_path_factory.getbasetemp()))


def stop() -> None:
    """From `pytest_unconfigure`: a batch still running when the run ends is stopped."""
    while _EARLY:
        with contextlib.suppress(OSError):
            _EARLY.pop().stop()
