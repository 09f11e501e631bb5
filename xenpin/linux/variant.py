"""Kernel variants: one TOML file per release of the early pagetable code (and per bisect state between them).

A variant names the release it is (`release`, or `"none"` for a state that only existed between commits), the
commit(s) that make it so, its platform (`xen`: the `xen_*` paravirt hooks of arch/x86/xen/mmu.c; `native`), which
version of each piece of kernel code it runs (`[code]`, see `CODE`: each value is the release that shipped that
version), and three policies in the expression language of `policy.py`: `readonly` (the `mask_rw_pte` rule,
evaluated when the PTE for `pfn` is written, with `pgt_buf_end` as it is then; `ioremap` is true for a PTE written
into the `early_ioremap` fixmap table), `reserve` (pages the reserve step reserves) and `writable` (pages the Xen
hook makes RW again), both evaluated when that step runs. `[expect]` gives each property's expected verdict.
Errors name the file, the line and the key (and the column inside a policy).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from xenpin.linux.policy import Expr, PolicyError, parse_policy, unparse

PLATFORMS = ("xen", "native")
PLACEMENTS = ("high", "low", "mapped")

# `[code]`: which version of each piece of early-boot code the variant runs, named by the release that first
# shipped it. Each entry: key -> {value: what that version does}.
CODE: dict[str, dict[str, str]] = {
    "init_mem_mapping": {
        "2.6.37": "setup_arch: init_memory_mapping(0, max_low_pfn << 12), then (1 << 32, max_pfn << 12) above 4 GiB",
        "3.9": "init_mem_mapping (8d57470d): [0, 1M), then top-down steps from the last free 2 MiB below the end",
    },
    "find_early_table_space": {
        "2.6.37": "memblock_find_in_range(0x8000, max_pfn_mapped << 12): the buffer low, below the initial mapping",
        "2.6.39-rc1": "memblock_find_in_range(0, end) (4b239f458): the buffer at the top of the range being mapped",
        "3.1": "memblock_find_in_range(0, max_pfn_mapped << 12) (8548c84da2f4): the buffer low again",
        "none": "no buffer: 3.9's alloc_low_pages takes a 5-page BRK seed, then already-mapped memory",
    },
    "kernel_physical_mapping_init": {
        "2.6.37": "existing page tables are written through __va (the direct map)",
        "2.6.39-rc1": "existing page tables are reached through map_low_page: an early_memremap fixmap alias",
        "3.9": "existing page tables through __va; new ones come from alloc_low_pages, already mapped",
    },
    "xen_setup_kernel_pagetable": {
        "2.6.37": "max_pfn_mapped from xen_map_identity_early: the identity map Xen's tables and level1_ident_pgt"
        " cover",
        "2.6.39-rc1": "max_pfn_mapped = PFN_DOWN(__pa(xen_start_info->mfn_list)) (14988a4d350c)",
        "3.9": "the same; no xen_map_identity_early on 64-bit, and check_pt_base frees Xen's L4, L3 and L2",
    },
    "xen_memory_setup": {
        "2.6.37": "xen_extra_mem_start = mem_end (the 8 MiB slack becomes XEN EXTRA there)",
        "2.6.38": "the same, and RAM entries lose their unaligned tail (7cb31b752c7)",
        "2.6.39-rc1": "the same, dom0's RAM past mem_end below 4 GiB E820_UNUSABLE, the 1-1 p2m of holes",
        "2.6.39-rc5": "xen_extra_mem_start = max(1ULL << 32, mem_end) (24bdb0b62cc8)",
        "3.0-rc4": "xen_extra_mem_start = mem_end for a domU, at least 4 GiB for dom0 (acd049c6e99d)",
        "3.1": "the same, extra pages clamped to the maximum reservation (xl: 256 pages of the slack)",
        "3.9": "extra pages up to MAX_DOMAIN_PAGES (500 GiB) for a domU; the rest of the slack is E820_UNUSABLE",
    },
    "initmem_init": {
        "2.6.37": "numa_64.c setup_node_bootmem: NODE_DATA top-down in the node, from 4 GiB up if it spans 4 GiB",
        "3.0": "numa.c setup_node_data: NODE_DATA top-down in [16 MiB, max_pfn_mapped)",
    },
    "pagetable_reserve": {
        "2.6.37": 'init_memory_mapping: memblock_x86_reserve_range(pgt_buf_start, pgt_buf_end, "PGTABLE")',
        "2.6.39-rc6": "the same, and mark_rw_past_pgt() makes the old [end, top) RW later (a38647837a41)",
        "2.6.39": "x86_init.mapping.pagetable_reserve(PFN_PHYS(start), PFN_PHYS(end)) (279b706, the seed)",
        "inline": "the seed's rejected alternative: if (xen_pv_domain()) the Xen reserve step inline",
        "3.9": "none: alloc_low_pages memblock_reserve()s each page as it takes it",
    },
}
_XEN_ONLY_CODE = ("xen_setup_kernel_pagetable", "xen_memory_setup")
PROPERTIES = (
    "buffer_fits",
    "alias_writable",
    "no_rw_alias",
    "spare_writable",
    "spare_freed",
    "live_reserved",
)
# Properties a variant file may leave out of `[expect]` (added after DESIGN.md's five), with their default.
DEFAULT_EXPECT = {"alias_writable": "proved"}
# `vacuous`: the proof holds only because the property's situation cannot arise (exit 3 unless expected)
VERDICTS = ("proved", "counterexample", "vacuous", "unknown")

BUFFER_VARS = {"pfn": "int", "pgt_buf_start": "int", "pgt_buf_end": "int", "pgt_buf_top": "int"}
READONLY_VARS = {**BUFFER_VARS, "ioremap": "bool"}
POLICY_VARS = {"readonly": READONLY_VARS, "reserve": BUFFER_VARS, "writable": BUFFER_VARS}

_REQUIRED = ("name", "release", "commit", "platform", "code", "readonly", "reserve", "writable", "expect")
_OPTIONAL = ("description",)
HOOKS = ("x86_init", "inline", "none", "deferred")  # the values of `KernelVariant.hook`
# Keys of older variant files that `[code]` replaced: what to write instead.
_REPLACED = {
    "hook": 'removed: the reserve step is [code] pagetable_reserve (the x86_init hook: "2.6.39", inline:'
    ' "inline", none: "2.6.37", deferred: "2.6.39-rc6")',
    "placement": 'removed: the buffer\'s placement is [code] find_early_table_space (high: "2.6.39-rc1",'
    ' low: "2.6.37" or "3.1")',
}
# `[code] pagetable_reserve` versions with a Xen step that makes pages RW again (where `writable` is evaluated)
RW_RESTORING = ("2.6.39-rc6", "2.6.39", "inline")


class VariantError(ValueError):
    """Bad kernel-variant file: `str()` is one line naming file, line and key."""


@dataclass(frozen=True)
class KernelVariant:
    name: str
    platform: str
    code: dict[str, str]
    readonly: Expr
    reserve: Expr
    writable: Expr
    expect: dict[str, str]
    release: str = "none"
    description: str = ""
    commit: str = ""
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, key: str) -> str:
        return self.sources.get(key) or unparse(getattr(self, key))

    @property
    def xen(self) -> bool:
        return self.platform == "xen"

    @property
    def placement(self) -> str:
        """Where the buffer goes: `high` (4b239f458), `low` (below max_pfn_mapped) or `mapped` (3.9+)."""
        if self.code["init_mem_mapping"] == "3.9":
            return "mapped"
        return "high" if self.code["find_early_table_space"] == "2.6.39-rc1" else "low"

    @property
    def hook(self) -> str:
        """How `[pgt_buf_end, pgt_buf_top)` is made RW: the x86_init hook, inline, deferred, or not at all."""
        return {"2.6.39": "x86_init", "inline": "inline", "2.6.39-rc6": "deferred"}.get(
            self.code["pagetable_reserve"], "none"
        )

    @property
    def map_low_page(self) -> bool:
        return self.code["kernel_physical_mapping_init"] == "2.6.39-rc1"


def _line_of(text: str, key: str, table: str | None = None) -> int:
    """The line where `key = ...` appears (inside `[table]` if given, or an inline `table = {...}`, or as a
    `[table.key]` header); 1 if not found."""
    in_table = table is None  # top-level keys: until the first table header
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            header = stripped.strip("[] ")
            if header == (key if table is None else f"{table}.{key}"):
                return n  # the key is a table: its `[key]` header (after other tables too)
            in_table = table is not None and header == table
            continue
        if in_table and re.match(rf"{re.escape(key)}\s*=", stripped):
            return n
    if table is not None:  # an inline table: `expect = { key = ... }`
        for n, line in enumerate(lines, start=1):
            if re.match(rf"\s*{re.escape(table)}\s*=", line) and re.search(rf"\b{re.escape(key)}\s*=", line):
                return n
    return 1


def load_variant(path: str | Path) -> KernelVariant:
    """Load and check one variant file; raise VariantError on the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise VariantError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise VariantError(f"{path}:{line}: not UTF-8 text (byte {err.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # `lineno` exists from Python 3.14; before, the line is only in the message: "... (at line N, column M)"
        at = re.search(r"\(at line (\d+)", err.args[0])
        lineno = getattr(err, "lineno", None) or (int(at.group(1)) if at else max(1, len(text.splitlines())))
        where = "" if at else " (at end of file)"  # "... (at end of document)": the last line
        raise VariantError(f"{path}:{lineno}: bad TOML: {err.args[0].split(' (at')[0]}{where}") from None

    def fail(key: str, message: str, table: str | None = None) -> VariantError:
        where = f"{table}.{key}" if table else key
        return VariantError(f"{path}:{_line_of(text, key, table)}: key '{where}': {message}")

    for key in _REQUIRED:
        if key not in raw:
            raise VariantError(f"{path}:1: key '{key}': missing (required: {', '.join(_REQUIRED)})")
    for key in raw:
        if key in _REPLACED:
            raise fail(key, _REPLACED[key])
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise fail(key, f"unknown key (known: {', '.join(_REQUIRED + _OPTIONAL)})")
    for key in ("name", "release", "commit", "platform", "readonly", "reserve", "writable", *_OPTIONAL):
        if key in raw and not isinstance(raw[key], str):
            raise fail(key, f"must be a string, not {type(raw[key]).__name__}")
    for key in ("name", "release", "commit"):
        if not raw[key].strip():
            raise fail(key, "must not be empty")
    if raw["platform"] not in PLATFORMS:
        raise fail("platform", f"must be one of {', '.join(PLATFORMS)}, not {raw['platform']!r}")
    code = _check_code(raw["code"], raw["platform"], fail)

    policies: dict[str, Expr] = {}
    for key, variables in POLICY_VARS.items():
        try:
            policies[key] = parse_policy(raw[key], variables)
        except PolicyError as err:
            raise fail(key, str(err)) from None
    if unparse(policies["writable"]) != "false" and not (raw["platform"] == "xen" and
                                                        code["pagetable_reserve"] in RW_RESTORING):  # fmt: skip
        raise fail(
            "writable",
            f"nothing makes pages RW again with pagetable_reserve {code['pagetable_reserve']} on"
            f' {raw["platform"]} (only {", ".join(RW_RESTORING)} on xen): write "false"',
        )

    expect = raw["expect"]
    if not isinstance(expect, dict):
        raise fail("expect", "must be a table: [expect] with one verdict per property")
    for prop in expect:
        if prop not in PROPERTIES:
            raise fail(prop, f"unknown property (known: {', '.join(PROPERTIES)})", "expect")
    expect = {**DEFAULT_EXPECT, **expect}
    for prop in PROPERTIES:
        if prop not in expect:
            raise VariantError(f"{path}:{_line_of(text, 'expect')}: key 'expect.{prop}': missing")
        if expect[prop] not in VERDICTS:
            raise fail(prop, f"must be one of {', '.join(VERDICTS)}, not {expect[prop]!r}", "expect")

    return KernelVariant(
        name=raw["name"],
        platform=raw["platform"],
        code=code,
        readonly=policies["readonly"],
        reserve=policies["reserve"],
        writable=policies["writable"],
        expect=dict(expect),
        release=raw["release"],
        description=raw.get("description", ""),
        commit=raw["commit"],
        path=path,
        sources={k: raw[k] for k in POLICY_VARS},
    )


def _check_code(code: object, platform: str, fail) -> dict[str, str]:
    """The `[code]` table: every key of `CODE` (the Xen-only ones only for `platform = "xen"`), known values."""
    if not isinstance(code, dict):
        raise fail("code", "must be a table: [code] with one version per piece of code")
    for key, value in code.items():
        if key in _REPLACED:
            raise fail(key, _REPLACED[key], "code")
        if key not in CODE:
            raise fail(key, f"unknown key (known: {', '.join(CODE)})", "code")
        if not isinstance(value, str) or value not in CODE[key]:
            raise fail(key, f"must be one of {', '.join(CODE[key])}, not {value!r}", "code")
    needed = [k for k in CODE if platform == "xen" or k not in _XEN_ONLY_CODE]
    if code.get("init_mem_mapping") == "3.9":
        needed = [k for k in needed if k != "find_early_table_space"]
    for key in needed:
        if key not in code:
            raise fail("code", f"key 'code.{key}' missing (one of {', '.join(CODE[key])})")
    out = dict(code)
    if out["init_mem_mapping"] == "3.9":
        out.setdefault("find_early_table_space", "none")
        if out["find_early_table_space"] != "none" or out["pagetable_reserve"] != "3.9":
            raise fail(
                "code",
                "init_mem_mapping 3.9 has no buffer: find_early_table_space none, pagetable_reserve 3.9",
            )
    elif out["find_early_table_space"] == "none" or out["pagetable_reserve"] == "3.9":
        raise fail(
            "code", "only init_mem_mapping 3.9 goes without find_early_table_space and pagetable_reserve"
        )
    for key in _XEN_ONLY_CODE:
        out.setdefault(key, "2.6.39-rc1" if key == "xen_setup_kernel_pagetable" else "2.6.39-rc5")
    return out


def variant_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories to their `*.toml` files (sorted); keep files as given. A directory without any is
    empty handed: callers that need a variant per path say so (`xenpin prove`), `load_variant` for files."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.toml")))
        else:
            out.append(p)
    return out


def variant_files_each(paths: list[str | Path]) -> list[Path]:
    """`variant_files`, refusing a directory that holds no `*.toml` (a mistyped or empty folder in a CI job must
    not pass as "nothing to check")."""
    for p in map(Path, paths):
        if p.is_dir() and not any(p.glob("*.toml")):
            raise VariantError(f"{p}: no kernel variant files (*.toml) in this folder")
    return variant_files(paths)
