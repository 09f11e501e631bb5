"""`xenpin explore`: a property's counterexamples, replayed, with a picture of the buffer."""

from __future__ import annotations

import argparse
import json
import time

from xenpin.cli.common import InputError, add_output_flags, check_targets, write_whole
from xenpin.cli.prove import verdicts_exit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "explore", help="show a property's counterexample(s), replayed, with a picture of the buffer"
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("property", metavar="PROPERTY")
    p.add_argument(
        "--all", type=int, default=1, metavar="N", help="up to N distinct counterexamples (default 1)"
    )
    p.add_argument("--svg", metavar="FILE", help="write the first counterexample's buffer picture as SVG")
    p.add_argument("--dot", metavar="FILE", help="write it as Graphviz DOT")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="write one self-contained HTML page: the configuration, the picture, the failing page's timeline",
    )
    add_output_flags(p, progress=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xenpin.linux.variant import PROPERTIES, VariantError, load_variant
    from xenpin.report import explore as pictures
    from xenpin.report.prove import explore_json
    from xenpin.report.prove import render_text as verdict_text
    from xenpin.symbolic.explore import counterexamples

    if args.property not in PROPERTIES:
        raise InputError(f"PROPERTY: unknown property {args.property!r} (known: {', '.join(PROPERTIES)})")
    if args.all < 1:
        raise InputError("--all: must be at least 1")
    try:
        variant = load_variant(args.model)
    except VariantError as exc:
        raise InputError(str(exc)) from None
    targets = {t: None for t in (args.svg, args.dot, args.html) if t is not None}
    # regular files only, each once, none of them the model: before any solver work
    check_targets([("--svg", args.svg), ("--dot", args.dot), ("--html", args.html)], [args.model])
    started = time.perf_counter()
    found = counterexamples(variant, args.property, args.all)
    seconds = time.perf_counter() - started  # the solver calls and every replay
    first = found[0]
    if first.replay is not None and first.witness is not None:
        w = first.witness
        if args.svg:
            targets[args.svg] = pictures.render_svg(first.replay, w.call, w.pfn, args.property)
        if args.dot:
            targets[args.dot] = pictures.render_dot(first.replay, w.call, w.pfn, args.property)
        if args.html:
            from xenpin.report.html import render_html

            targets[args.html] = render_html(first)
        for target, text in targets.items():
            write_whole(target, text)  # before anything is printed: a write error leaves no output at all
    if args.json:
        shown = [
            pictures.picture_json(v.replay, v.witness.call, v.witness.pfn, v.prop)
            if v.replay is not None and v.witness is not None
            else None
            for v in found
        ]
        # the first counterexample's picture is the one --svg/--dot/--html draw
        doc = explore_json(found, seconds, picture=shown[0])
        for obligation, picture in zip(doc["obligations"], shown, strict=True):
            obligation["picture"] = picture
        print(json.dumps(doc, indent=2))
    else:
        print(verdict_text(found, seconds))
        for v in found:
            if v.replay is not None and v.witness is not None:
                print(pictures.render_text(v.replay, v.witness.call, v.witness.pfn, v.prop))
        if targets and first.witness is None:
            print(f"no counterexample: {' and '.join(targets)} not written")
    return verdicts_exit([first])  # the same rule as prove's
