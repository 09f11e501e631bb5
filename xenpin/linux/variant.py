"""Kernel variants: one TOML file per historical (or user-written) version of the early pagetable code.

A variant names its platform (`xen`: the `xen_*` paravirt hooks of arch/x86/xen/mmu.c; `native`), the buffer
placement regime (see `layout.py`), and three policies in the expression language of `policy.py`:
`readonly` (the `mask_rw_pte` rule, evaluated when the PTE for `pfn` is written, with `pgt_buf_end` as it is
then; `ioremap` is true for the `early_memremap` fixmap alias), `reserve` (pages the `pagetable_reserve` step
reserves) and `writable` (pages it makes RW again), both evaluated when the hook runs. `[expect]` gives each
property's expected verdict. Errors name the file, the line and the key (and the column inside a policy).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from xenpin.linux.policy import Expr, PolicyError, parse_policy, unparse

PLATFORMS = ("xen", "native")
PLACEMENTS = ("high", "low", "mapped")
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
VERDICTS = ("proved", "counterexample", "unknown")

BUFFER_VARS = {"pfn": "int", "pgt_buf_start": "int", "pgt_buf_end": "int", "pgt_buf_top": "int"}
READONLY_VARS = {**BUFFER_VARS, "ioremap": "bool"}
POLICY_VARS = {"readonly": READONLY_VARS, "reserve": BUFFER_VARS, "writable": BUFFER_VARS}

_REQUIRED = ("name", "platform", "placement", "readonly", "reserve", "writable", "expect")
_OPTIONAL = ("description", "commit", "hook")
HOOKS = ("x86_init", "inline", "none")


class VariantError(ValueError):
    """Bad kernel-variant file: `str()` is one line naming file, line and key."""


@dataclass(frozen=True)
class KernelVariant:
    name: str
    platform: str
    placement: str
    readonly: Expr
    reserve: Expr
    writable: Expr
    expect: dict[str, str]
    description: str = ""
    commit: str = ""
    hook: str = "x86_init"  # how the reserve step is reached: the x86_init hook, inlined, or not at all
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, key: str) -> str:
        return self.sources.get(key) or unparse(getattr(self, key))

    @property
    def xen(self) -> bool:
        return self.platform == "xen"


def _line_of(text: str, key: str, table: str | None = None) -> int:
    """The line where `key = ...` appears (inside `[table]` if given, or an inline `table = {...}`, or as a
    `[table.key]` header); 1 if not found."""
    in_table = table is None
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            header = stripped.strip("[] ")
            if header == (key if table is None else f"{table}.{key}"):
                return n  # the key is a table: its `[key]` header
            in_table = table is not None and header == table
            if table is None:
                break
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
        lineno = getattr(err, "lineno", None) or (int(at.group(1)) if at else 1)
        raise VariantError(f"{path}:{lineno}: bad TOML: {err.args[0].split(' (at')[0]}") from None

    def fail(key: str, message: str, table: str | None = None) -> VariantError:
        where = f"{table}.{key}" if table else key
        return VariantError(f"{path}:{_line_of(text, key, table)}: key '{where}': {message}")

    for key in _REQUIRED:
        if key not in raw:
            raise VariantError(f"{path}:1: key '{key}': missing (required: {', '.join(_REQUIRED)})")
    for key in raw:
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise fail(key, f"unknown key (known: {', '.join(_REQUIRED + _OPTIONAL)})")
    for key in ("name", "platform", "placement", "readonly", "reserve", "writable", *_OPTIONAL):
        if key in raw and not isinstance(raw[key], str):
            raise fail(key, f"must be a string, not {type(raw[key]).__name__}")
    if raw["platform"] not in PLATFORMS:
        raise fail("platform", f"must be one of {', '.join(PLATFORMS)}, not {raw['platform']!r}")
    if raw["placement"] not in PLACEMENTS:
        raise fail("placement", f"must be one of {', '.join(PLACEMENTS)}, not {raw['placement']!r}")
    hook = raw.get("hook", "x86_init")
    if hook not in HOOKS:
        raise fail("hook", f"must be one of {', '.join(HOOKS)}, not {hook!r}")

    policies: dict[str, Expr] = {}
    for key, variables in POLICY_VARS.items():
        try:
            policies[key] = parse_policy(raw[key], variables)
        except PolicyError as err:
            raise fail(key, str(err)) from None

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
        placement=raw["placement"],
        readonly=policies["readonly"],
        reserve=policies["reserve"],
        writable=policies["writable"],
        expect=dict(expect),
        description=raw.get("description", ""),
        commit=raw.get("commit", ""),
        hook=hook,
        path=path,
        sources={k: raw[k] for k in POLICY_VARS},
    )


def variant_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories to their `*.toml` files (sorted); keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.toml")))
        else:
            out.append(p)
    return out
