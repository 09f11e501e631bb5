"""Many verdicts on several cores: the lemmas first (each once), then the verdicts, in worker processes.

Every solver call stays what `prove.py` makes it (a fresh solver, the same limits); only where it runs
changes. Phase 1 proves every lemma the jobs' obligations rest on, each in its own task: a lemma's proof does
not depend on the verdicts of the lemmas it uses (`unproved_lemmas` judges the chain afterwards). Phase 2 runs
one task per (variant, property), handing each worker the phase-1 verdicts so that none proves a lemma again.
Results come back in the order of the jobs, so the output does not depend on the number of workers.

Workers are spawned, not forked: z3's context in the parent is not fork-safe once it has been used. They
ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; the parent decides) and die with the parent:
any exception in the parent, KeyboardInterrupt included, kills them at once rather than waiting for their
solver calls, and on Linux the kernel kills them if the parent dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from xenpin.linux.variant import KernelVariant
from xenpin.symbolic import lemmas
from xenpin.symbolic.lemmas import LemmaRef
from xenpin.symbolic.obligations import build
from xenpin.symbolic.prove import (
    CALLS,
    LemmaVerdict,
    Verdict,
    prove_lemma,
    prove_property,
    remember_lemmas,
)
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

Job = tuple[KernelVariant, str]


def default_workers() -> int:
    """The cores this process may run on (3.13: `os.process_cpu_count`; else its affinity mask)."""
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _worker_init(parent: int) -> None:
    """In each worker: leave interrupts to the parent, and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # and so z3 does not catch it either (`solver.configure`)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` spawned processes; leaving the block by an exception kills them at once."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    except BaseException:
        kill_workers(pool)
        raise
    pool.shutdown(wait=True)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's processes (their solver calls with them) and reap them; pending tasks are dropped."""
    # ProcessPoolExecutor has no public way to kill its workers before Python 3.14 (`kill_workers`)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(timeout=1.0)
    # and the pool's manager thread: left running, it races the interpreter's exit hook for the pool's wakeup
    # pipe ("Exception ignored ... Bad file descriptor" after the one line an interrupt prints)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=1.0)


@contextlib.contextmanager
def _spawning() -> Iterator[None]:
    """Submitting to the pool starts worker processes: with SIGINT blocked in this thread meanwhile, a worker
    inherits the blocked signal and cannot die of a Ctrl-C with a traceback while it is still importing (before
    `_worker_init` ignores it); here the signal stays pending and is handled as soon as the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _lemma_task(ref: LemmaRef, solver: str, limits: dict[str, Any]) -> LemmaVerdict:
    return prove_lemma(ref, solver, limits)


def _verdict_task(job: Job, solver: str, limits: dict[str, Any], known: list[LemmaVerdict]) -> Verdict:
    remember_lemmas(known, solver, limits)
    return prove_property(job[0], job[1], solver=solver, **limits)


def lemma_refs(jobs: list[Job]) -> list[LemmaRef]:
    """Every lemma the jobs' obligations rest on (and the obligations they rest on), in proof order."""
    refs = set()
    for v, prop in jobs:
        for call in CALLS:
            ob = build(v, prop, call)
            refs.update(ob.lemmas)
            for p, k in ob.rests_on:
                refs.update(build(v, p, k).lemmas)
    return lemmas.closure(sorted(refs))


def prove_many(
    jobs: list[Job],
    *,
    solver: str = "z3",
    workers: int = 1,
    refs: list[LemmaRef] | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
    **limits: Any,
) -> list[Verdict]:
    """The verdicts of `jobs`, in order; `workers` > 1 spreads the solver calls over processes. `limits` are
    `rlimit` and `timeout_s` (default: the solver's defaults). `refs`, `lemma_refs(jobs)` computed beforehand:
    with them and `workers` > 1 this process makes no z3 call at all (z3's context is not thread-safe, so a
    caller may then run this in a thread beside its own z3 work). `on_verdict` is called with each verdict as
    it comes in (in the order they finish), e.g. for a progress display."""
    limits = {"rlimit": DEFAULT_RLIMIT, "timeout_s": DEFAULT_TIMEOUT_S, **limits}
    report = on_verdict or (lambda verdict: None)
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for v, prop in jobs:
            out.append(prove_property(v, prop, solver=solver, **limits))
            report(out[-1])
        return out
    if refs is None:
        refs = lemma_refs(jobs)
    with worker_pool(workers) as pool:
        with _spawning():
            lemma_futures = [pool.submit(_lemma_task, ref, solver, limits) for ref in refs]
        known = [f.result() for f in lemma_futures]
        remember_lemmas(known, solver, limits)
        with _spawning():
            futures = [pool.submit(_verdict_task, job, solver, limits, known) for job in jobs]
        for done in as_completed(futures):
            report(done.result())
        return [f.result() for f in futures]
