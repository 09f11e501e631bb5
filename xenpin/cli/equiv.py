"""`xenpin equiv`: two variants compared for every memory size."""

from __future__ import annotations

import argparse
import json

from xenpin.cli.common import EXIT_MISMATCH, EXIT_OK, EXIT_UNKNOWN, InputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "equiv",
        help="prove two variants leave the same mappings and reservations for every size, or distinguish them",
    )
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument(
        "--quiet", action="store_true", help="accepted by every command (this one shows no progress)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xenpin.linux.variant import VariantError, load_variant
    from xenpin.symbolic.equiv import compare

    try:
        a, b = load_variant(args.model_a), load_variant(args.model_b)
    except VariantError as exc:
        raise InputError(str(exc)) from None
    r = compare(a, b)
    doc = {
        "a": a.name,
        "b": b.name,
        "verdict": r.verdict,
        "mem_bytes": hex(r.mem_bytes) if r.mem_bytes is not None else None,
        "call": r.call,
        "pfn": hex(r.pfn) if r.pfn is not None else None,
        "machine": r.witness.machine_json() if r.witness else None,
        "detail": r.detail,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    elif r.verdict == "equivalent":
        print(f"{a.name} and {b.name}: equivalent (same direct-map RW bits and reservations for every size)")
    elif r.verdict == "different":
        print(
            f"{a.name} and {b.name}: different on a {r.witness.describe()}, call {r.call}, pfn {r.pfn:#x}: {r.detail}"
        )
        for res in (r.replay_a, r.replay_b):
            rw, reserved = res.final_pages.get(r.pfn, (None, False))
            shown = {True: "RW", False: "RO", None: "unmapped"}[rw]
            print(
                f"  replay {res.variant.name}: outcome {res.outcome}; pfn {r.pfn:#x} is {shown}, {'reserved' if reserved else 'free'}"
            )
    else:
        print(f"{a.name} and {b.name}: unknown ({r.detail})")
    return {"equivalent": EXIT_OK, "different": EXIT_MISMATCH}.get(r.verdict, EXIT_UNKNOWN)
