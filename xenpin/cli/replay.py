"""`xenpin replay`: hypercall scenarios against the Xen validator."""

from __future__ import annotations

import argparse
import json

from xenpin.cli.common import EXIT_MISMATCH, EXIT_OK, InputError, add_output_flags


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="run hypercall scenarios (models/scenarios/*.toml) against the Xen validator",
        description="Run each scenario's steps on a fresh validator and compare every result with its expect.",
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="scenario files, or directories of *.toml")
    add_output_flags(p, progress=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xenpin.report.replay import render_text, replay_json
    from xenpin.xen.scenario import ScenarioError, load_scenario, run_scenario, scenario_files

    try:
        scenarios = [load_scenario(path) for path in scenario_files(args.paths)]
        runs = [run_scenario(scn) for scn in scenarios]
    except ScenarioError as exc:
        raise InputError(str(exc)) from None
    if args.json:
        print(json.dumps(replay_json(runs), indent=2))
    else:
        print(render_text(runs))
    return EXIT_OK if all(run.passed for run in runs) else EXIT_MISMATCH
