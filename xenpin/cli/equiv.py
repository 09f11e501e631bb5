"""`xenpin equiv`: two variants compared on what their boots leave, for every machine (by proof) or at a list of
sizes (by paired boots, where the closed form cannot compare them)."""

from __future__ import annotations

import argparse
import json

from xenpin.cli.common import EXIT_MISMATCH, EXIT_OK, EXIT_UNKNOWN, InputError, add_output_flags, size_arg


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "equiv",
        help="prove two variants' boots leave the same PTEs, reservations and pins for every machine, or"
        " distinguish them",
    )
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    p.add_argument(
        "--sizes",
        metavar="LIST",
        default=None,
        help="the memory sizes paired boots try where the closed form cannot compare the two, comma-separated"
        " (e.g. 64M,300M,4160M; default 64M,80M,128M,200M,300M,1028M,4160M)",
    )
    add_output_flags(p, progress=False)
    p.set_defaults(handler=run)


def _sizes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [s.strip() for s in text.split(",")]
    if not all(parts):
        raise InputError(f"--sizes: {text!r} has an empty size")
    sizes = tuple(size_arg("--sizes", s) for s in parts)
    from xenpin.symbolic.form import DOMAIN_MIN_PFN

    for text, size in zip(parts, sizes, strict=True):
        if size < DOMAIN_MIN_PFN << 12:
            raise InputError(f"--sizes: {text} is below the smallest guest paired boots use (64 MiB)")
    return sizes


def run(args: argparse.Namespace) -> int:
    from xenpin.linux.variant import VariantError, load_variant
    from xenpin.report.equiv import equiv_json, render_text
    from xenpin.symbolic.equiv import PAIRED_SIZES, compare

    sizes = _sizes(args.sizes) or PAIRED_SIZES
    try:
        a, b = load_variant(args.model_a), load_variant(args.model_b)
    except VariantError as exc:
        raise InputError(str(exc)) from None
    r = compare(a, b, sizes=sizes)
    if args.json:
        print(json.dumps(equiv_json(r), indent=2))
    else:
        print(render_text(r))
    return {"equivalent": EXIT_OK, "different": EXIT_MISMATCH}.get(r.verdict, EXIT_UNKNOWN)
