"""`xenpin boot`: kernel variants booted step by step against the Xen validator, or beside a real log."""

from __future__ import annotations

import argparse
import json

from xenpin.cli.common import EXIT_MISMATCH, EXIT_OK, InputError, add_output_flags, size_arg

DEFAULT_MEM = "6G"  # above 4 GiB, so setup_arch makes its second init_memory_mapping call
# A Xen boot's cap follows this machine's RAM: `xenpin.linux.layout.max_boot_bytes`.
MAX_NATIVE_BYTES = 1 << 40  # bare metal maps with 2 MiB pages: a 1 TiB boot needs about 0.5 GiB of RAM


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        help=f"a Xen guest's memory (xl's memory=, e.g. 1536M, 7.5G; default {DEFAULT_MEM}, or what --dmesg shows;"
        " at most what this machine's RAM can boot)",
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
    p.add_argument(
        "--pgt-buf-start",
        metavar="ADDR[,ADDR]",
        help="put init_memory_mapping call 0's (and call 1's) buffer at these page-aligned physical addresses"
        " instead of where the top-down search puts it (a `prove` P@any witness's placement)",
    )
    p.add_argument("--trace", action="store_true", help="print every step that touched the buffers")
    add_output_flags(p)
    p.set_defaults(handler=run)


def _boot_config(args: argparse.Namespace, variant):
    """The machine of the command line (without --dmesg)."""
    from xenpin.linux.layout import BootConfig

    role = args.role or ("domU" if variant.xen else "native")
    if variant.xen == (role == "native"):
        raise InputError(f"--role {role}: {variant.path} is a {variant.platform} variant")
    mem = size_arg("--mem", args.mem if args.mem is not None else DEFAULT_MEM)
    if mem > _limit(role):
        raise InputError(f"--mem: {args.mem} is more than the model boots ({_limit_text(role)})")
    kw = {"role": role, "mem_bytes": mem, "e820": _e820_arg(args.e820)}
    for name, attr in (("--kernel-size", "kernel_size"), ("--ramdisk-size", "ramdisk_size")):
        value = size_arg(name, getattr(args, attr), zero=attr == "ramdisk_size")
        if value is not None:
            kw[attr.replace("_size", "_bytes")] = value
    if args.pgt_buf_start is not None:
        kw["pgt_buf_start"] = _placement_arg(args.pgt_buf_start)
    if role == "dom0" and kw["e820"] is None:
        raise InputError("--role dom0: give the host's map with --e820 FILE")
    if role == "dom0":
        ram = kw["e820"].ram_bytes()
        if (
            mem > ram
        ):  # construct_dom0 (Xen 4.1 compute_dom0_nr_pages) would clamp dom0_mem to what the host has
            raise InputError(
                f"--mem: a dom0 of {mem:#x} bytes is more than the RAM of {args.e820} ({ram:#x} bytes)"
            )
    cfg = BootConfig(**kw)
    check_machine(cfg, variant, args.e820 or "--mem")
    return cfg


def _limit(role: str) -> int:
    from xenpin.linux.layout import max_boot_bytes

    return MAX_NATIVE_BYTES if role == "native" else max_boot_bytes()


def _placement_arg(text: str) -> tuple[int, ...]:
    """`--pgt-buf-start 0x100000,0x3000000` -> pfns per call (`BootConfig.pgt_buf_start`)."""
    parts = text.split(",")
    try:
        addrs = [int(part, 0) for part in parts]
    except ValueError:
        addrs = []
    if not 1 <= len(parts) <= 2 or len(addrs) != len(parts) or any(a < 0 or a % 4096 for a in addrs):
        raise InputError(
            f"--pgt-buf-start: {text!r} is not one or two page-aligned addresses (0x100000,0x3000000)"
        )
    return tuple(a >> 12 for a in addrs)


def _limit_text(role: str) -> str:
    from xenpin.linux.layout import max_boot_reason

    if role == "native":
        return f"{MAX_NATIVE_BYTES >> 30} GiB of bare metal: about 0.5 GiB of RAM per TiB"
    return max_boot_reason()


def check_machine(cfg, variant, source: str | None) -> None:
    """Refuse a machine the model would need too much time and RAM for: what the boot maps is the end of RAM of
    the E820 `xen_memory_setup` makes (a dom0's extra pages cover the host's RAM past its own), or bare metal's."""
    from xenpin.linux.memblock import Memblock
    from xenpin.linux.xen_setup import xen_memory_setup

    limit = _limit(cfg.role)
    if cfg.role == "native":
        e820 = cfg.host_e820()
    else:
        code = variant.code["xen_memory_setup"]
        e820 = xen_memory_setup(cfg.nr_pages, cfg.e820, cfg.dom0, code, Memblock(), 0, 0).e820
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


def run(args: argparse.Namespace) -> int:
    from xenpin.linux.boot import boot
    from xenpin.linux.variant import VariantError, load_variant, variant_files_each
    from xenpin.report.boot import boot_summary, boots_json, render_text

    try:
        variants = [load_variant(path) for path in variant_files_each(args.paths)]
    except VariantError as exc:
        raise InputError(str(exc)) from None
    if not variants:
        raise InputError(f"no kernel variant files in {' '.join(args.paths)}")
    if args.dmesg:
        return _boot_dmesg(args, variants)
    from xenpin.cli.progress import Bars, wanted

    configs = [_boot_config(args, v) for v in variants]  # every machine checked before the first boot
    results = []
    with Bars(wanted(args), counts=False) as bars:
        for v, cfg in zip(variants, configs, strict=True):
            try:
                results.append(boot(v, cfg, args.rules, on_progress=bars.boot_callback(v.name)))
            except ValueError as exc:
                raise InputError(f"{v.path}: {exc}") from None
            bars.boot_done(v.name, results[-1].outcome)
    if args.json:
        print(json.dumps(boots_json(results, args.trace), indent=2))
    else:
        print("\n\n".join(render_text(r, args.trace) for r in results))
        if len(results) > 1:
            print(f"\n{boot_summary(results)}")
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
            mem_bytes=size_arg("--mem", args.mem),
            e820=_e820_arg(args.e820),
            role=args.role,
            rules=args.rules,
            check=lambda cfg: check_machine(cfg, v, args.dmesg),
        )
    except (LogError, ValueError) as exc:
        raise InputError(str(exc) if isinstance(exc, LogError) else f"{args.dmesg}: {exc}") from None
    if args.json:
        print(json.dumps(dmesg_json(args.dmesg, result, configured, rows), indent=2))
    else:
        print(dmesg_text(args.dmesg, result, configured, rows))
    return EXIT_OK if rows and all(r.match for r in rows) else EXIT_MISMATCH
