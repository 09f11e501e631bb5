"""`xenpin list`: the kernel variants (release, commits, placement, reserve step, expectations), the properties,
Xen's invariants and the rule sets."""

from __future__ import annotations

import argparse
import json

from xenpin import shipped
from xenpin.cli.common import EXIT_OK, InputError, add_output_flags


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "list",
        help="list the kernel variants, the properties, the invariants and the rule sets",
        description="List kernel variants (name, file, platform, release, commits, buffer placement, reserve"
        " step, expected verdicts), the properties they are proved against, the invariants `replay` checks and"
        " the Xen rule sets.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="variant files or directories of *.toml (default: the shipped variants)",
    )
    add_output_flags(p, progress=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xenpin.linux.variant import VariantError, load_variant, variant_files_each
    from xenpin.report.listing import list_json, render_text

    paths = args.paths or [str(shipped.KERNELS)]
    try:
        variants = [load_variant(path) for path in variant_files_each(paths)]
    except VariantError as exc:
        raise InputError(str(exc)) from None
    if not variants:
        raise InputError(f"no kernel variant files in {' '.join(paths)}")
    if args.json:
        print(json.dumps(list_json(variants), indent=2))
    else:
        print(render_text(variants))
    return EXIT_OK
