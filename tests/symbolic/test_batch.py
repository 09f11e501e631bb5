"""Verdicts on several cores equal the verdicts of one process, in the same order: `--jobs 2` == `--jobs 1`.

The session's verdicts (conftest.py) come from two worker processes; here a sample of them is proved again in
this process, and through the command line with `--jobs 1`, and compared field by field."""

from __future__ import annotations

import json
import re

from bootcache import KERNELS
from symbolic_cases import LIMITS, VARIANTS

from xenpin.cli import main
from xenpin.report.prove import prove_json
from xenpin.symbolic.batch import prove_many

# a counterexample replayed with Xen's lines, one replayed without a failure, a proof with its non-vacuity
# checks, bare metal, and proofs resting on lemmas of a high and a low buffer (call 1 of the high one on call
# 0's reservation too)
SAMPLE = [
    ("bisect-4b239f458", "no_rw_alias"),
    ("2.6.39-rc6", "spare_writable"),
    ("3.0", "alias_writable"),
    ("3.9", "spare_freed"),
    ("2.6.39-native", "buffer_fits"),
    ("2.6.39", "spare_writable"),
    ("3.1", "no_rw_alias"),
]


def _summary(v) -> tuple:
    return (
        v.variant.name,
        v.prop,
        v.verdict,
        v.vacuous,
        v.witness,
        v.replay.outcome if v.replay else None,
        v.replay.failure.pfn if v.replay and v.replay.failure else None,
        v.notes,
        [(lv.ref, lv.verdict) for lv in v.lemmas],
        v.checks,
        [(att.source, att.witness, att.confirmed) for att in v.attempts],
    )


def test_two_workers_give_the_verdicts_of_one(verdicts) -> None:
    serial = prove_many([(VARIANTS[n], p) for n, p in SAMPLE], workers=1, **LIMITS)
    assert [_summary(v) for v in serial] == [_summary(verdicts[key]) for key in SAMPLE]
    assert [v.verdict for v in serial] == [
        "counterexample",
        "counterexample",
        "proved",
        "vacuous",
        "proved",
        "proved",
        "proved",
    ]
    assert serial[2].checks and not serial[2].vacuous and serial[4].lemmas and serial[5].lemmas
    assert serial[1].attempts[0].witness is serial[1].witness and serial[1].attempts[0].confirmed


def _without_times(doc: dict) -> dict:
    return json.loads(re.sub(r'"seconds": [0-9.e+-]+', '"seconds": 0', json.dumps(doc)))


def test_the_command_line_with_one_job_gives_the_verdicts_of_two(verdicts, capsys) -> None:
    names, props = ("2.6.39-rc6", "3.1"), ("spare_writable", "live_reserved")
    args = ["prove", *(str(KERNELS / f"{n}.toml") for n in names), *(f"--property={p}" for p in props)]
    assert main([*args, "--jobs", "1", "--json"]) == 0
    one = _without_times(json.loads(capsys.readouterr().out))
    two = _without_times(prove_json([verdicts[(n, p)] for n in names for p in props], 0.0))
    assert one["obligations"] == two["obligations"] and one["lemmas"] == two["lemmas"]
