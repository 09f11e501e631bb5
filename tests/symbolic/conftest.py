"""The verdicts of every shipped (variant, property), proved once per session, beside the other tests.

`xenpin prove --jobs 2` is most of the symbolic tests' time, and its two worker processes leave this one idle:
so once collection is done a separate process starts the batch, and the tests that read its verdicts run after
the others. A process, not a thread: z3's context is not thread-safe, and a thread of this process that
garbage-collects z3 objects (a pool's result thread does) while a test runs a solver call aborts the run.
Under pytest-xdist the first worker that needs the verdicts proves them and the others read its result. A
test that changes the prover's module state that the batch writes back (`prove._LEMMA_VERDICTS`) asks for
`verdicts` too, so that it runs after the batch.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import pickle
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import early_verdicts
import pytest
from symbolic_cases import JOBS, LIMITS, run_batch

from xenpin.symbolic.batch import prove_many
from xenpin.symbolic.prove import Verdict

HERE = Path(__file__).resolve().parent
_BATCH: dict[str, tuple[BaseProcess, Connection]] = {}


def _here(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """This directory's tests that read the verdicts go after its others (the batch runs meanwhile)."""
    mine = [i for i, item in enumerate(items) if _here(item)]
    late = [items[i] for i in mine if "verdicts" in item_fixtures(items[i])]
    early = [items[i] for i in mine if "verdicts" not in item_fixtures(items[i])]
    for i, item in zip(mine, early + late, strict=True):
        items[i] = item


def item_fixtures(item: pytest.Item) -> tuple[str, ...]:
    return tuple(getattr(item, "fixturenames", ()))


def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker collects everything: see `_shared_batch`
        return
    if any(_here(item) and "verdicts" in item_fixtures(item) for item in session.items):
        receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
        batch = multiprocessing.get_context("spawn").Process(target=run_batch, args=(send,), daemon=False)
        batch.start()
        send.close()
        _BATCH["batch"] = (batch, receive)


@pytest.fixture(scope="session")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Verdict]:
    """`xenpin prove --jobs 2` over models/kernels: {(variant, property): verdict}."""
    if "batch" in _BATCH:
        batch, receive = _BATCH.pop("batch")
        found = pickle.loads(receive.recv_bytes())
        batch.join()
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        found = _shared_batch(tmp_path_factory.getbasetemp().parent)  # the run's folder, beside popen-gwN
    else:
        found = prove_many(JOBS, workers=2, **LIMITS)
    return {(v.variant.name, v.prop): v for v in found}


def _shared_batch(folder: Path) -> list[Verdict]:
    """Under pytest-xdist: the first worker that needs the verdicts proves them, the others wait and read its
    result, so that the batch runs once per test run and not once per worker."""
    path = folder / early_verdicts.RESULT  # where the xdist controller writes it (early_verdicts.py)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return pickle.loads(path.read_bytes())
        found = prove_many(JOBS, workers=2, **LIMITS)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(found))
        tmp.replace(path)
        return found


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A batch nobody read (its tests deselected or failed early) is stopped, not waited for."""
    if "batch" in _BATCH:
        batch, receive = _BATCH.pop("batch")
        batch.kill()
        batch.join()
        receive.close()
