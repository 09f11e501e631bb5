"""Verdicts on several cores equal the verdicts of one process, in the same order, with lemmas proved once."""

from __future__ import annotations

from pathlib import Path

from xenpin.linux.variant import load_variant
from xenpin.symbolic.batch import prove_many
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
LIMITS = {"rlimit": DEFAULT_RLIMIT, "timeout_s": DEFAULT_TIMEOUT_S}


def _summary(verdicts) -> list[tuple]:
    return [
        (
            v.variant.name,
            v.prop,
            v.verdict,
            v.vacuous,
            v.witness,
            v.replay.outcome if v.replay else None,
            [(lv.ref, lv.verdict) for lv in v.lemmas],
        )
        for v in verdicts
    ]


def test_two_workers_give_the_verdicts_of_one() -> None:
    v30, rc, v39 = (load_variant(KERNELS / f"{n}.toml") for n in ("3.0", "2.6.39-rc", "3.9"))
    jobs = [(v30, "spare_writable"), (rc, "spare_writable"), (v39, "live_reserved"), (v30, "buffer_fits")]
    parallel = prove_many(jobs, workers=2, **LIMITS)
    serial = prove_many(jobs, workers=1, **LIMITS)
    assert _summary(parallel) == _summary(serial)
    assert [v.verdict for v in parallel] == ["proved", "counterexample", "proved", "proved"]
    assert parallel[2].vacuous and parallel[0].lemmas  # 3.9 has no buffer; 3.0's proof rests on lemmas
