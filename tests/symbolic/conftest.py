"""The verdicts of every shipped (variant, property), proved once per session, beside the other tests.

`xenpin prove --jobs 2` is most of the symbolic tests' time, and its two worker processes leave this one idle:
so once collection is done (and the lemma list made, here: z3 is not thread-safe) a thread starts the batch,
and the tests that read its verdicts run after the others. A test that changes the prover's module state that
the batch writes back (`prove._LEMMA_VERDICTS`) asks for `verdicts` too, so that it runs after the batch.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from symbolic_cases import LIMITS, NAMES, VARIANTS

from xenpin.linux.variant import PROPERTIES
from xenpin.symbolic.batch import lemma_refs, prove_many
from xenpin.symbolic.prove import Verdict

JOBS = [(VARIANTS[name], prop) for name in NAMES for prop in PROPERTIES]
HERE = Path(__file__).resolve().parent
_BATCH: dict[str, Future] = {}


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
    if any(_here(item) and "verdicts" in item_fixtures(item) for item in session.items):
        refs = lemma_refs(JOBS)  # the z3 part, in this thread
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xenpin-prove")
        _BATCH["future"] = pool.submit(prove_many, JOBS, workers=2, refs=refs, **LIMITS)
        pool.shutdown(wait=False)


@pytest.fixture(scope="session")
def verdicts() -> dict[tuple[str, str], Verdict]:
    """`xenpin prove --jobs 2` over models/kernels: {(variant, property): verdict}."""
    future = _BATCH.get("future")
    found = future.result() if future is not None else prove_many(JOBS, workers=2, **LIMITS)
    return {(v.variant.name, v.prop): v for v in found}
