"""`xenpin logs`: the shipped boot logs reproduced with `boot --dmesg`."""

from __future__ import annotations

import argparse
import functools
import json

from xenpin import shipped
from xenpin.cli.boot import check_machine
from xenpin.cli.common import EXIT_MISMATCH, EXIT_OK, InputError, add_output_flags
from xenpin.report.logs import LogRow

DEFAULT_MANIFEST = str(shipped.MANIFEST)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "logs",
        help="reproduce the shipped boot logs (models/logs/manifest.toml) with boot --dmesg",
        description="For each log of the manifest, configure the machine from it, boot its variant and compare"
        " every line; the expectation is match, differ or unusable (the log cannot configure the machine).",
    )
    p.add_argument(
        "manifest",
        nargs="?",
        default=DEFAULT_MANIFEST,
        metavar="MANIFEST",
        help="a manifest TOML (default: the shipped logs)",
    )
    add_output_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import tomllib
    from pathlib import Path

    from xenpin.cli.progress import Bars, wanted
    from xenpin.report.logs import logs_json, render_text

    path = Path(args.manifest)
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("log", [])
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: bad TOML: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no [[log]] entries: not a log manifest")
    kernels = path.resolve().parent.parent / "kernels"
    rows = []
    with Bars(wanted(args), counts=True) as bars:
        task = bars.add("logs", len(entries))
        for n, entry in enumerate(entries, start=1):
            bars.update(task, description=f"logs: {entry.get('file', n)}")
            rows.append(_reproduce(path, kernels, n, entry))
            bars.update(task, advance=1)
    ok = all(r.as_expected for r in rows)
    if args.json:
        print(json.dumps(logs_json(str(path), rows), indent=2))
    else:
        print(render_text(rows))
    return EXIT_OK if ok else EXIT_MISMATCH


def _reproduce(path, kernels, n: int, entry: dict) -> LogRow:
    """Log #`n` of the manifest at `path`, booted and compared."""
    from xenpin.linux.dmesg import LogError, reproduce
    from xenpin.linux.variant import VariantError, load_variant

    for key in ("file", "variant", "expect"):
        if not isinstance(entry.get(key), str):
            raise InputError(f"{path}: log #{n}: key '{key}' missing or not a string")
    if entry["expect"] not in ("match", "differ", "unusable"):
        raise InputError(f"{path}: log #{n}: expect must be match, differ or unusable")
    log_path = path.parent / entry["file"]
    variant_path = kernels / f"{entry['variant']}.toml"
    try:
        variant = load_variant(variant_path)
    except VariantError as exc:
        raise InputError(str(exc)) from None
    try:
        check = functools.partial(check_machine, variant=variant, source=str(log_path))
        _, result, lines = reproduce(log_path, variant, check=check)
    except (LogError, ValueError, InputError) as exc:
        got, good, total, detail = "unusable", 0, 0, str(exc)
    else:
        good, total = sum(r.match for r in lines), len(lines)
        got = "match" if lines and good == total else "differ"
        detail = f"predicted outcome {result.outcome}"
    return LogRow(
        str(log_path), entry["variant"], str(variant_path), entry["expect"], got, good, total, detail
    )
