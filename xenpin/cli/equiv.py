"""`xenpin equiv`: two variants compared for every memory size."""

from __future__ import annotations

import argparse
import json

from xenpin.cli.common import EXIT_MISMATCH, EXIT_OK, EXIT_UNKNOWN, InputError, add_output_flags


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "equiv",
        help="prove two variants leave the same mappings and reservations for every size, or distinguish them",
    )
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    add_output_flags(p, progress=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xenpin.linux.variant import VariantError, load_variant
    from xenpin.report.equiv import equiv_json, render_text
    from xenpin.symbolic.equiv import compare

    try:
        a, b = load_variant(args.model_a), load_variant(args.model_b)
    except VariantError as exc:
        raise InputError(str(exc)) from None
    r = compare(a, b)
    if args.json:
        print(json.dumps(equiv_json(r), indent=2))
    else:
        print(render_text(r))
    return {"equivalent": EXIT_OK, "different": EXIT_MISMATCH}.get(r.verdict, EXIT_UNKNOWN)
