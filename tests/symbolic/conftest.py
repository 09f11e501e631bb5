"""The verdicts of every shipped (variant, property), proved once per session, beside the other tests.

`xenpin prove --jobs 2` is most of the symbolic tests' time, and its two worker processes leave this one idle:
so once collection is done a separate process starts the batch, and the tests that read its verdicts run after
the others. A process, not a thread: z3's context is not thread-safe, and a thread of this process that
garbage-collects z3 objects (a pool's result thread does) while a test runs a solver call aborts the run. A test that changes the prover's module state that
the batch writes back (`prove._LEMMA_VERDICTS`) asks for `verdicts` too, so that it runs after the batch.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from symbolic_cases import JOBS, LIMITS, run_batch

from xenpin.symbolic.batch import prove_many
from xenpin.symbolic.prove import Verdict

HERE = Path(__file__).resolve().parent
_BATCH: dict[str, tuple[BaseProcess, Connection]] = {}


def _here(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """This directory's tests that read the verdicts go after its others (the batch runs meanwhile); under
    pytest-xdist (`-n 2 --dist loadgroup`) they all go to one worker, so that one batch serves them."""
    mine = [i for i, item in enumerate(items) if _here(item)]
    late = [items[i] for i in mine if "verdicts" in item_fixtures(items[i])]
    early = [items[i] for i in mine if "verdicts" not in item_fixtures(items[i])]
    for i, item in zip(mine, early + late, strict=True):
        items[i] = item
    for item in late:
        item.add_marker(pytest.mark.xdist_group("verdicts"))


def item_fixtures(item: pytest.Item) -> tuple[str, ...]:
    return tuple(getattr(item, "fixturenames", ()))


def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get(
        "PYTEST_XDIST_WORKER"
    ):  # every worker collects everything: the one that needs it proves
        return
    if any(_here(item) and "verdicts" in item_fixtures(item) for item in session.items):
        receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
        batch = multiprocessing.get_context("spawn").Process(target=run_batch, args=(send,), daemon=False)
        batch.start()
        send.close()
        _BATCH["batch"] = (batch, receive)


@pytest.fixture(scope="session")
def verdicts() -> dict[tuple[str, str], Verdict]:
    """`xenpin prove --jobs 2` over models/kernels: {(variant, property): verdict}."""
    if "batch" in _BATCH:
        batch, receive = _BATCH.pop("batch")
        found = receive.recv()
        batch.join()
    else:
        found = prove_many(JOBS, workers=2, **LIMITS)
    return {(v.variant.name, v.prop): v for v in found}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A batch nobody read (its tests deselected or failed early) is stopped, not waited for."""
    if "batch" in _BATCH:
        batch, receive = _BATCH.pop("batch")
        batch.kill()
        batch.join()
        receive.close()
