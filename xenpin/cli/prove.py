"""`xenpin prove`: each variant's properties for every memory size, with Z3."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

from xenpin import shipped
from xenpin.cli.common import (
    MAX_RLIMIT,
    InputError,
    add_output_flags,
    add_solver_flags,
    check_output_dir,
    whole_number,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "prove",
        help="prove each variant's properties for every memory size with Z3, or give a replayed counterexample",
        description="One obligation per (variant, property, init_memory_mapping call), each in a fresh Z3 solver;"
        " counterexamples are minimised and replayed in the boot walk.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="variant files, proof scripts (*.py), or directories of either (default: the shipped variants)",
    )
    p.add_argument(
        "--property", action="append", default=None, help="only these properties, P or P@any (repeatable)"
    )
    p.add_argument(
        "--placement",
        choices=("rule", "any", "both"),
        default=None,
        help="where the buffer is: where the variant's rule puts it (default; the rows P), anywhere the memblock"
        " search allows (the rows P@any), or both",
    )
    p.add_argument("--smt2", metavar="DIR", help="also write each obligation as SMT-LIB 2 into DIR")
    p.add_argument(
        "--solver",
        choices=("z3", "cvc5", "both"),
        default="z3",
        help="who decides: z3 alone (default); cvc5 alone (z3 only minimises its counterexamples); both, which"
        " must agree (a disagreement is unknown)",
    )
    add_solver_flags(p)
    add_output_flags(p)
    p.set_defaults(handler=run)


def check_smt2_dir(directory: str) -> None:
    """`--smt2 DIR` before any work (`common.check_output_dir`)."""
    check_output_dir("--smt2", directory)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str) -> str:
    """A file-name part of `text`: only [A-Za-z0-9._-], no leading dot (no `..`, no hidden file)."""
    return _UNSAFE.sub("_", text).lstrip(".") or "_"


def smt2_stems(variants: list) -> dict[Path, str]:
    """Each variant file's part of its SMT-LIB file names: the file's stem (never the variant's `name`, which
    may hold `/` or `..`), made safe; stems that would coincide (the same stem in two folders, or two stems
    that are the same once made safe) each get `-` and 8 hex digits of the hash of their resolved path."""
    paths = sorted({_variant_path(v) for v in variants})
    stems = {p: _safe(p.stem) for p in paths}
    for p, stem in stems.items():
        if stem == "lemma" or stem.startswith("lemma."):  # the lemmas' own files
            stems[p] = "variant-" + stem
    counts = Counter(stems.values())
    return {
        p: stem if counts[stem] == 1 else f"{stem}-{hashlib.sha256(str(p).encode()).hexdigest()[:8]}"
        for p, stem in stems.items()
    }


def _variant_path(variant) -> Path:
    return Path(variant.path).resolve() if variant.path is not None else Path(_safe(variant.name)).absolute()


def _write_smt2(directory: str, jobs: list) -> None:
    """Every obligation of `jobs`, and every lemma they rest on, as an SMT-LIB 2 file in `directory` (checked
    by `check_smt2_dir` beforehand; `unsat` = holds), written as `write_whole` writes (regular files only, the
    umask, all at once). An obligation's file is `<stem>.<property>.call<N>.smt2` (`smt2_stems`); a lemma's
    `lemma.<name>[.<shape>.call<N>].smt2`."""
    from xenpin.cli.common import check_target, write_whole
    from xenpin.symbolic import lemmas
    from xenpin.symbolic.obligations import build
    from xenpin.symbolic.solver import smt2

    out = Path(directory)
    stems = smt2_stems([variant for variant, _ in jobs])
    texts: dict[str, str] = {}
    refs = set()
    todo = [(variant, prop, call) for variant, prop in jobs for call in (0, 1)]
    while todo:
        variant, prop, call = todo.pop(0)
        stem = stems[_variant_path(variant)]
        name = f"{stem}.{_safe(prop)}.call{call}.smt2"
        if name in texts:
            continue
        ob = build(variant, prop, call)
        refs.update(ob.lemmas)
        rests = "".join(
            f"; its closed form rests on {stem}.{_safe(p)}.call{c}.smt2 being unsat too\n"
            for p, c in ob.rests_on
        )
        todo.extend((variant, p, c) for p, c in ob.rests_on)
        where = f" ({variant.path})" if variant.path is not None else ""
        texts[name] = (
            f"; xenpin: {variant.name}{where} {prop}, init_memory_mapping call {call}\n"
            f"; assumes the lemmas {', '.join(map(str, ob.lemmas))} (lemma.*.smt2)\n"
            f"{rests}; sat = counterexample\n" + smt2(ob.formula())
        )
    for ref in lemmas.closure(sorted(refs)):
        formula, uses = lemmas.proof(ref)
        where = "" if ref.shape is None else f".{_safe(ref.shape.replace('/', '-'))}.call{ref.call}"
        texts[f"lemma.{_safe(ref.name)}{where}.smt2"] = (
            f"; xenpin lemma {ref}: {lemmas.LEMMAS[ref.name].text}\n"
            f"; assumes {', '.join(map(str, uses)) or 'nothing'}\n"
            f"; unsat = the lemma holds\n" + smt2(formula)
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--smt2: cannot create {directory}: {exc.strerror}") from None
    root = out.resolve()
    for name in texts:
        check_target(str(out / name))  # every file before the first is written (no symlinks, so no way out)
        if Path(os.path.normpath(root / name)).parent != root:  # a name is one safe part: this cannot happen
            raise AssertionError(f"--smt2: {name} would leave {directory}")
    created = []
    try:
        for name, text in texts.items():
            target = out / name
            existed = os.path.lexists(target)
            write_whole(str(target), text)
            if not existed:
                created.append(target)
    except BaseException:  # an unwritable file or an interrupt: no half-written set from this run
        for target in created:
            with contextlib.suppress(OSError):
                target.unlink()
        raise
    print(f"wrote {len(texts)} SMT-LIB files to {directory}", file=sys.stderr)


def _proof_scripts(path: str) -> list[Path]:
    """A proof script given by name, or the proof scripts of a folder (its variant files are loaded apart)."""
    if path.endswith(".py"):
        return [Path(path)]
    return shipped.proof_scripts(Path(path)) if Path(path).is_dir() else []


def run(args: argparse.Namespace) -> int:
    import time

    from xenpin.cli.progress import Bars, wanted
    from xenpin.linux.variant import PROPERTIES, KernelVariant, VariantError, load_variant, variant_files
    from xenpin.report.prove import prove_json, render_text
    from xenpin.symbolic import placement
    from xenpin.symbolic.batch import default_workers, prove_many
    from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S
    from xenpin.symbolic.theorems import load_script

    for prop in args.property or []:
        if not placement.known(prop):
            known = ", ".join(PROPERTIES)
            raise InputError(f"--property: unknown property {prop!r} (known: {known}, each also as P@any)")
    props = placement.selected(args.property or list(PROPERTIES), args.placement or "rule")
    chosen = args.property is not None or args.placement is not None  # else a proof script's theorems all run
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError("--timeout: must be a positive, finite number of seconds")
    rlimit = None if args.rlimit is None else whole_number("--rlimit", args.rlimit, MAX_RLIMIT)
    if args.jobs is not None and args.jobs <= 0:
        raise InputError("--jobs: must be a positive integer")
    if args.smt2 is not None:
        check_smt2_dir(args.smt2)  # before loading anything, let alone proving
    paths = args.paths or [str(shipped.KERNELS)]
    jobs: list[tuple[KernelVariant, str]] = []
    try:
        for path in paths:
            scripts = _proof_scripts(path)
            for script in scripts:
                theorems = [
                    (th.load(), th.prop) for th in load_script(script)
                ]  # each checked, even if filtered
                jobs.extend(job for job in theorems if job[1] in props or not chosen)
            files = [] if path.endswith(".py") else variant_files([path])
            if not scripts and not files:
                raise InputError(f"{path}: nothing to prove (no *.toml variant, no proof script)")
            jobs.extend((v, prop) for v in map(load_variant, files) for prop in props)
    except (VariantError, ValueError, OSError, SyntaxError) as exc:
        raise InputError(str(exc).splitlines()[0] if str(exc) else f"{path}: cannot load") from None
    if not jobs:
        raise InputError(f"nothing to prove in {' '.join(paths)} (no *.toml variant, no proof script)")
    if args.solver != "z3":
        from xenpin.symbolic.solver import cvc5_available

        if not cvc5_available():
            raise InputError("--solver: cvc5 is not installed (pip install 'xenpin[cvc5]')")
    limits = {
        "rlimit": rlimit or DEFAULT_RLIMIT,
        "timeout_s": args.timeout or DEFAULT_TIMEOUT_S,
    }
    t = time.perf_counter()
    if args.smt2 is not None:
        _write_smt2(args.smt2, jobs)
    workers = min(args.jobs or default_workers(), default_workers(), len(jobs))
    with Bars(wanted(args), counts=True) as bars:
        task = bars.add("prove: obligations", len(jobs))
        verdicts = prove_many(
            jobs,
            solver=args.solver,
            workers=workers,
            on_verdict=lambda v: bars.update(task, advance=1),
            **limits,
        )
    seconds = time.perf_counter() - t
    if args.json:
        print(json.dumps(prove_json(verdicts, seconds, args.solver), indent=2))
    else:
        print(render_text(verdicts, seconds, args.solver))
    return verdicts_exit(verdicts)


def verdicts_exit(verdicts: list) -> int:
    """1 if a verdict is proved or counterexample against its expectation (whatever the others are); else 3 if
    a verdict is vacuous or unknown where something else was expected; else 0 (a vacuous or unknown verdict
    that was expected is as expected)."""
    from xenpin.symbolic.prove import exit_code

    return exit_code(verdicts)
