"""`xenpin …` command line: thin argparse front end over the model, rendering in `xenpin.report`.

Exit codes (every command): 0 = everything as expected, 1 = an outcome differs from its expectation,
2 = bad input or usage (one line on stderr naming file/line/field, nothing on stdout), 3 = unknown.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import NoReturn

from xenpin import __version__

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3

Handler = Callable[[argparse.Namespace], int]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (`xenpin boot: the following arguments are required: MODEL`), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


class InputError(Exception):
    """Bad input: printed as `xenpin: <message>` on stderr, exit 2."""


# --- replay ---------------------------------------------------------------------------------------------------


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="run hypercall scenarios (models/scenarios/*.toml) against the Xen validator",
        description="Run each scenario's steps on a fresh validator and compare every result with its expect.",
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="scenario files, or directories of *.toml")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(handler=_cmd_replay)


def _cmd_replay(args: argparse.Namespace) -> int:
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


# --- boot -----------------------------------------------------------------------------------------------------

DEFAULT_MEM = "6G"  # above 4 GiB, so setup_arch makes its second init_memory_mapping call
MAX_BOOT_BYTES = 64 << 30  # a 64 GiB Xen boot needs about 15 GiB of RAM (16 GiB: 3.6 GiB)
MAX_NATIVE_BYTES = 1 << 40  # bare metal maps with 2 MiB pages: a 1 TiB boot needs about 0.5 GiB of RAM


def _add_boot(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "boot",
        help="boot kernel variants (models/kernels/*.toml) step by step against the Xen validator",
        description="Run each variant's setup_arch from Xen's start of day to the page allocator on one machine;"
        " print the console lines it prints, the buffers, the outcome and the property table. With --dmesg,"
        " configure the machine from a real boot log and compare every line of it with the boot's.",
    )
    p.add_argument("paths", nargs="+", metavar="MODEL", help="kernel variant files, or directories of *.toml")
    p.add_argument(
        "--mem",
        metavar="SIZE",
        help=f"a Xen guest's memory (xl's memory=, e.g. 1536M, 7.5G; default {DEFAULT_MEM}, or what --dmesg shows)",
    )
    p.add_argument("--role", choices=("domU", "dom0", "native"), help="the machine (default: domU for Xen"
                   " variants, native for bare-metal ones)")  # fmt: skip
    p.add_argument(
        "--e820", metavar="FILE", help="the host's E820 map in the kernel's print format (dom0, native)"
    )
    p.add_argument(
        "--kernel-size", metavar="SIZE", help="[_text, _end) of the kernel image (default 0x103b000)"
    )
    p.add_argument("--ramdisk-size", metavar="SIZE", help="the initrd (default 0xbff000; 0: none)")
    p.add_argument("--dmesg", metavar="LOG", help="a console log: configure the machine from it and compare")
    p.add_argument(
        "--rules", default="xen-4.1", choices=("xen-4.1", "modern"), help="Xen rule set (default xen-4.1)"
    )
    p.add_argument("--trace", action="store_true", help="print every step that touched the buffers")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(handler=_cmd_boot)


def _size_arg(name: str, text: str | None, zero: bool = False) -> int | None:
    """A size in bytes, a positive multiple of 4 KiB (or 0 where `zero`: no ramdisk)."""
    from xenpin.linux.layout import parse_size

    if text is None:
        return None
    try:
        value = parse_size(text)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None
    if value == 0 and zero:
        return 0
    if value <= 0 or value % 4096:
        raise InputError(f"{name}: {text} is not a positive multiple of 4 KiB")
    return value


def _boot_config(args: argparse.Namespace, variant):
    """The machine of the command line (without --dmesg)."""
    from xenpin.linux.layout import BootConfig

    role = args.role or ("domU" if variant.xen else "native")
    if variant.xen == (role == "native"):
        raise InputError(f"--role {role}: {variant.path} is a {variant.platform} variant")
    mem = _size_arg("--mem", args.mem if args.mem is not None else DEFAULT_MEM)
    if mem > (MAX_NATIVE_BYTES if role == "native" else MAX_BOOT_BYTES):
        raise InputError(f"--mem: {args.mem} is more than the model boots ({_limit_text(role)})")
    kw = {"role": role, "mem_bytes": mem, "e820": _e820_arg(args.e820)}
    for name, attr in (("--kernel-size", "kernel_size"), ("--ramdisk-size", "ramdisk_size")):
        value = _size_arg(name, getattr(args, attr), zero=attr == "ramdisk_size")
        if value is not None:
            kw[attr.replace("_size", "_bytes")] = value
    if role == "dom0" and kw["e820"] is None:
        raise InputError("--role dom0: give the host's map with --e820 FILE")
    cfg = BootConfig(**kw)
    _check_machine(cfg, variant, args.e820 or "--mem")
    return cfg


def _limit_text(role: str) -> str:
    if role == "native":
        return f"{MAX_NATIVE_BYTES >> 30} GiB of bare metal: about 0.5 GiB of RAM per TiB"
    return f"{MAX_BOOT_BYTES >> 30} GiB: about 0.23 GiB of RAM per GiB of guest"


def _check_machine(cfg, variant, source: str | None) -> None:
    """Refuse a machine the model would need too much time and RAM for: what the boot maps is the end of RAM of
    the E820 `xen_memory_setup` makes (a dom0's extra pages cover the host's RAM past its own), or bare metal's."""
    from xenpin.linux.memblock import Memblock
    from xenpin.linux.xen_setup import xen_memory_setup

    if cfg.role == "native":
        e820, limit = cfg.host_e820(), MAX_NATIVE_BYTES
    else:
        code = variant.code["xen_memory_setup"]
        e820 = xen_memory_setup(cfg.nr_pages, cfg.e820, cfg.dom0, code, Memblock(), 0, 0).e820
        limit = MAX_BOOT_BYTES
    end = max((e.end for e in e820.map if e.type == 1), default=0)
    if cfg.mem_bytes > limit:
        what = (
            f"a machine of {cfg.mem_bytes:#x} bytes"
            if cfg.role == "native"
            else f"a guest of {cfg.mem_bytes:#x} bytes"
        )
    elif end > limit + (1 << 30):  # a domU's slack, a PC's PCI hole are fine
        what = f"a machine whose RAM ends at {end:#x}"
    else:
        return
    raise InputError(f"{source}: {what} is more than the model boots ({_limit_text(cfg.role)})")


def _e820_arg(path: str | None):
    from xenpin.linux.e820 import E820Error, parse_e820_lines

    if path is None:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return parse_e820_lines(enumerate(fh.read().splitlines(), start=1), path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except E820Error as exc:
        raise InputError(str(exc)) from None


def _cmd_boot(args: argparse.Namespace) -> int:
    from xenpin.linux.boot import boot
    from xenpin.linux.variant import VariantError, load_variant, variant_files
    from xenpin.report.boot import boot_json, render_text

    try:
        variants = [load_variant(path) for path in variant_files(args.paths)]
    except VariantError as exc:
        raise InputError(str(exc)) from None
    if not variants:
        raise InputError(f"no kernel variant files in {' '.join(args.paths)}")
    if args.dmesg:
        return _boot_dmesg(args, variants)
    results = []
    for v in variants:
        cfg = _boot_config(args, v)
        try:
            results.append(boot(v, cfg, args.rules))
        except ValueError as exc:
            raise InputError(f"{v.path}: {exc}") from None
    if args.json:
        docs = [boot_json(r, args.trace) for r in results]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        print("\n\n".join(render_text(r, args.trace) for r in results))
        if len(results) > 1:
            print(f"\n{'variant':<18}{'outcome':<15}as expected")
            for r in results:
                print(f"{r.variant.name:<18}{r.outcome:<15}{'yes' if not r.mismatches() else 'NO'}")
    return EXIT_OK if all(not r.mismatches() for r in results) else EXIT_MISMATCH


def _boot_dmesg(args: argparse.Namespace, variants: list) -> int:
    from xenpin.linux.dmesg import LogError, reproduce
    from xenpin.report.boot import dmesg_json, dmesg_text

    if len(variants) != 1:
        raise InputError("--dmesg: give exactly one kernel variant")
    v = variants[0]
    try:
        configured, result, rows = reproduce(
            args.dmesg,
            v,
            mem_bytes=_size_arg("--mem", args.mem),
            e820=_e820_arg(args.e820),
            role=args.role,
            rules=args.rules,
            check=lambda cfg: _check_machine(cfg, v, args.dmesg),
        )
    except (LogError, ValueError) as exc:
        raise InputError(str(exc) if isinstance(exc, LogError) else f"{args.dmesg}: {exc}") from None
    if args.json:
        print(json.dumps(dmesg_json(args.dmesg, result, configured, rows), indent=2))
    else:
        print(dmesg_text(args.dmesg, result, configured, rows))
    return EXIT_OK if rows and all(r.match for r in rows) else EXIT_MISMATCH


# --- logs -----------------------------------------------------------------------------------------------------

DEFAULT_MANIFEST = "models/logs/manifest.toml"


def _add_logs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "logs",
        help="reproduce the shipped boot logs (models/logs/manifest.toml) with boot --dmesg",
        description="For each log of the manifest, configure the machine from it, boot its variant and compare"
        " every line; the expectation is match, differ or unusable (the log cannot configure the machine).",
    )
    p.add_argument(
        "manifest", nargs="?", default=DEFAULT_MANIFEST, metavar="MANIFEST", help="a manifest TOML"
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(handler=_cmd_logs)


def _cmd_logs(args: argparse.Namespace) -> int:
    import tomllib
    from pathlib import Path

    from xenpin.linux.dmesg import LogError, reproduce
    from xenpin.linux.variant import VariantError, load_variant

    path = Path(args.manifest)
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("log", [])
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: bad TOML: {exc}") from None
    kernels = path.resolve().parent.parent / "kernels"
    rows = []
    for n, entry in enumerate(entries, start=1):
        for key in ("file", "variant", "expect"):
            if not isinstance(entry.get(key), str):
                raise InputError(f"{path}: log #{n}: key '{key}' missing or not a string")
        if entry["expect"] not in ("match", "differ", "unusable"):
            raise InputError(f"{path}: log #{n}: expect must be match, differ or unusable")
        log_path = path.parent / entry["file"]
        try:
            variant = load_variant(kernels / f"{entry['variant']}.toml")
        except VariantError as exc:
            raise InputError(str(exc)) from None
        try:
            check = functools.partial(_check_machine, variant=variant, source=str(log_path))
            _, result, lines = reproduce(log_path, variant, check=check)
        except (LogError, ValueError, InputError) as exc:
            rows.append((entry, "unusable", 0, 0, str(exc)))
            continue
        good = sum(r.match for r in lines)
        got = "match" if lines and good == len(lines) else "differ"
        rows.append((entry, got, good, len(lines), f"predicted outcome {result.outcome}"))
    ok = all(got == entry["expect"] for entry, got, *_ in rows)
    if args.json:
        print(json.dumps({"logs": [{"file": e["file"], "variant": e["variant"], "expect": e["expect"],
                                    "result": got, "matched": good, "compared": total, "detail": detail}
                                   for e, got, good, total, detail in rows], "as_expected": ok}, indent=2))  # fmt: skip
    else:
        for e, got, good, total, detail in rows:
            mark = "" if got == e["expect"] else "   <-- expected " + e["expect"]
            counts = f"{good}/{total} lines match" if got != "unusable" else detail
            print(f"{e['file']:<28} {e['variant']:<16} {got:<9} {counts}{mark}")
            if got != "unusable":
                print(f"{'':<28} {detail}")
    return EXIT_OK if ok else EXIT_MISMATCH


# --- prove ----------------------------------------------------------------------------------------------------


def _add_prove(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "prove",
        help="prove each variant's properties for every memory size with Z3, or give a replayed counterexample",
        description="One obligation per (variant, property, init_memory_mapping call), each in a fresh Z3 solver;"
        " counterexamples are minimised and replayed in the boot walk.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="MODEL", default=["models/kernels"], help="variant files or directories"
    )
    p.add_argument(
        "--timeout", type=float, default=None, metavar="S", help="wall-clock backstop per solver call"
    )
    p.add_argument("--rlimit", type=int, default=None, metavar="N", help="Z3 resource limit per solver call")
    p.add_argument("--property", action="append", default=None, help="only these properties (repeatable)")
    p.add_argument("--smt2", metavar="DIR", help="also write each obligation as SMT-LIB 2 into DIR")
    p.add_argument(
        "--solver",
        choices=("z3", "cvc5", "both"),
        default="z3",
        help="re-check every obligation with cvc5 (cvc5, both): a disagreement is unknown (default z3)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes for the solver calls (default: the number of cores; 1 runs in-process)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(handler=_cmd_prove)


def _write_smt2(directory: str, jobs: list) -> None:
    """Every obligation of `jobs`, and every lemma they rest on, as an SMT-LIB 2 file (`unsat` = holds)."""
    from pathlib import Path

    from xenpin.symbolic import lemmas
    from xenpin.symbolic.obligations import build
    from xenpin.symbolic.solver import smt2

    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--smt2: cannot create {directory}: {exc.strerror}") from None
    refs = set()
    todo = [(variant, prop, call) for variant, prop in jobs for call in (0, 1)]
    written = set()
    while todo:
        variant, prop, call = todo.pop(0)
        name = f"{variant.name}.{prop}.call{call}.smt2"
        if name in written:
            continue
        written.add(name)
        ob = build(variant, prop, call)
        refs.update(ob.lemmas)
        rests = "".join(
            f"; its closed form rests on {variant.name}.{p}.call{c}.smt2 being unsat too\n"
            for p, c in ob.rests_on
        )
        todo.extend((variant, p, c) for p, c in ob.rests_on)
        (out / name).write_text(
            f"; xenpin: {variant.name} {prop}, init_memory_mapping call {call}\n"
            f"; assumes the lemmas {', '.join(map(str, ob.lemmas))} (lemma.*.smt2)\n"
            f"{rests}; sat = counterexample\n" + smt2(ob.formula())
        )
    for ref in lemmas.closure(sorted(refs)):
        formula, uses = lemmas.proof(ref)
        where = "" if ref.shape is None else f".{ref.shape.replace('/', '-')}.call{ref.call}"
        (out / f"lemma.{ref.name}{where}.smt2").write_text(
            f"; xenpin lemma {ref}: {lemmas.LEMMAS[ref.name].text}\n"
            f"; assumes {', '.join(map(str, uses)) or 'nothing'}\n"
            f"; unsat = the lemma holds\n" + smt2(formula)
        )


def _cmd_prove(args: argparse.Namespace) -> int:
    import time

    from xenpin.linux.variant import PROPERTIES, KernelVariant, VariantError, load_variant, variant_files
    from xenpin.report.prove import prove_json, render_text
    from xenpin.symbolic.batch import default_workers, prove_many
    from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S
    from xenpin.symbolic.theorems import load_script

    props = args.property or list(PROPERTIES)
    for prop in props:
        if prop not in PROPERTIES:
            raise InputError(f"--property: unknown property {prop!r} (known: {', '.join(PROPERTIES)})")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError("--timeout: must be a positive, finite number of seconds")
    if args.rlimit is not None and args.rlimit <= 0:
        raise InputError("--rlimit: must be a positive integer")
    if args.jobs is not None and args.jobs <= 0:
        raise InputError("--jobs: must be a positive integer")
    jobs: list[tuple[KernelVariant, str]] = []
    try:
        for path in args.paths:
            if str(path).endswith(".py"):
                theorems = [
                    (th.load(), th.prop) for th in load_script(path)
                ]  # each checked, even if filtered
                jobs.extend(job for job in theorems if job[1] in props)
            else:
                jobs.extend((v, prop) for v in map(load_variant, variant_files([path])) for prop in props)
    except (VariantError, ValueError, OSError, SyntaxError) as exc:
        raise InputError(str(exc).splitlines()[0] if str(exc) else f"{path}: cannot load") from None
    if not jobs:
        raise InputError(f"nothing to prove in {' '.join(args.paths)}")
    if args.solver != "z3":
        from xenpin.symbolic.solver import cvc5_available

        if not cvc5_available():
            raise InputError("--solver: cvc5 is not installed (pip install 'xenpin[cvc5]')")
    limits = {
        "rlimit": args.rlimit or DEFAULT_RLIMIT,
        "timeout_s": args.timeout or DEFAULT_TIMEOUT_S,
    }
    t = time.perf_counter()
    if args.smt2:
        _write_smt2(args.smt2, jobs)
    verdicts = prove_many(jobs, solver=args.solver, workers=args.jobs or default_workers(), **limits)
    seconds = time.perf_counter() - t
    if args.json:
        print(json.dumps(prove_json(verdicts, seconds, args.solver), indent=2))
    else:
        print(render_text(verdicts, seconds, args.solver))
    differs = [v for v in verdicts if not v.as_expected]
    if any(v.verdict != "unknown" for v in differs):
        return EXIT_MISMATCH
    return EXIT_UNKNOWN if differs else EXIT_OK


# --- explore --------------------------------------------------------------------------------------------------


def _add_explore(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(handler=_cmd_explore)


def _cmd_explore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from xenpin.linux.variant import PROPERTIES, VariantError, load_variant
    from xenpin.report import explore as pictures
    from xenpin.report.prove import prove_json
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
    targets = {t: None for t in (args.svg, args.dot) if t}
    for target in targets:
        if Path(target).is_dir() or not Path(target).resolve().parent.is_dir():
            raise InputError(f"{target}: not a file in an existing directory")
    found = counterexamples(variant, args.property, args.all)
    first = found[0]
    if first.replay is not None and first.witness is not None:
        w = first.witness
        if args.svg:
            targets[args.svg] = pictures.render_svg(first.replay, w.call, w.pfn)
        if args.dot:
            targets[args.dot] = pictures.render_dot(first.replay, w.call, w.pfn)
        for target, text in targets.items():
            _write_whole(target, text)  # before anything is printed: a write error leaves no output at all
    if args.json:
        doc = prove_json(found, sum(v.seconds for v in found))
        print(json.dumps(doc, indent=2))
    else:
        print(verdict_text(found, sum(v.seconds for v in found)))
        for v in found:
            if v.replay is not None and v.witness is not None:
                print(pictures.render_text(v.replay, v.witness.call, v.witness.pfn))
        if targets and first.witness is None:
            print(f"no counterexample: {' and '.join(targets)} not written")
    if first.verdict == "unknown":
        return EXIT_UNKNOWN
    return EXIT_OK if first.verdict == variant.expect[args.property] else EXIT_MISMATCH


def _write_whole(target: str, text: str) -> None:
    """Write `target` all at once (a temporary file renamed over it), or raise InputError leaving nothing."""
    directory = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".xenpin-")
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        os.unlink(tmp)
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None


# --- equiv ----------------------------------------------------------------------------------------------------


def _add_equiv(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "equiv",
        help="prove two variants leave the same mappings and reservations for every size, or distinguish them",
    )
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(handler=_cmd_equiv)


def _cmd_equiv(args: argparse.Namespace) -> int:
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


# --- registry -------------------------------------------------------------------------------------------------

# Each registrar adds one subcommand and sets `handler`; add new commands here.
SUBCOMMANDS: list[Registrar] = [_add_replay, _add_boot, _add_logs, _add_prove, _add_explore, _add_equiv]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xenpin", description="Check the Xen PV early-boot pagetable protocol by execution and by proof."
    )
    parser.add_argument("--version", action="version", version=f"xenpin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (2) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except InputError as exc:
        print(f"xenpin: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
