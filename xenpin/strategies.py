"""Hypothesis strategies for property tests against xenpin's models: machines, E820 maps, policies, scenarios.

The ones xenpin's own test suite uses, public so that a user can test their own kernel variants:

- machines: `xen_machines` (a domU's pages), `domu_configs`, `native_machines`, `boot_configs`, `domain_sizes`;
- E820 maps: `e820_spans` / `e820_maps` (overlapping, unsanitized), `disjoint_e820_maps`;
- policies: expressions of the policy language (`int_exprs`, `bool_exprs`, `policy_exprs`, `policy_envs`),
  the rule shapes kernels shipped with their off-by-ones (`readonly_rules`, `reserve_rules`, `writable_rules`),
  and `mutants`, a variant with some of its policies replaced (`mutate` does it by hand);
- scenario programs: `scenario_texts` (TOML a hypercall scenario file could hold), `scenario_programs`
  (them loaded, for `xenpin.xen.scenario.run_scenario`), and `page_table_entries`.

A property test over a variant of your own:

    from hypothesis import given
    from xenpin import strategies as xst
    from xenpin.linux.boot import boot
    from xenpin.linux.variant import load_variant

    MINE = load_variant("models/kernels/mine.toml")

    @given(xst.domu_configs(max_nr=(2 << 30) >> 12))
    def test_mine_boots(config):
        assert boot(MINE, config).outcome == "ok"

hypothesis is not a dependency of xenpin itself: install it (`pip install hypothesis`) to import this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a venv without hypothesis
    raise ImportError(
        "xenpin.strategies needs hypothesis, which xenpin does not install: pip install 'hypothesis>=6.100'"
    ) from exc

from xenpin.linux.e820 import E820, E820_RAM, E820_RESERVED, E820Entry
from xenpin.linux.layout import DEFAULT_KERNEL_BYTES, DEFAULT_RAMDISK_BYTES, XEN_SLACK_BYTES, BootConfig
from xenpin.linux.policy import MASK, And, BinOp, Bool, Call, Compare, Expr, Not, Num, Or, Var, parse_policy
from xenpin.linux.variant import BUFFER_VARS, READONLY_VARS, KernelVariant
from xenpin.symbolic import form
from xenpin.xen.flags import NX, PSE, RW, US, A, D, Entry, G, P, format_flags

GIB = 1 << 30
KERNEL_PAGES = -(-DEFAULT_KERNEL_BYTES // 4096)
RAMDISK_PAGES = -(-DEFAULT_RAMDISK_BYTES // 4096)
SLACK_PAGES = XEN_SLACK_BYTES >> 12

__all__ = [
    "BOUND_HI",
    "BOUND_LO",
    "ENTRY_FLAGS",
    "INT_VARS",
    "IOREMAP_CLAUSES",
    "bool_exprs",
    "boot_configs",
    "disjoint_e820_maps",
    "domain_sizes",
    "domu_config",
    "domu_configs",
    "e820_maps",
    "e820_spans",
    "int_exprs",
    "interval_rules",
    "mutants",
    "mutate",
    "native_machines",
    "page_table_entries",
    "policy_envs",
    "policy_exprs",
    "readonly_rules",
    "reserve_rules",
    "scenario_programs",
    "scenario_texts",
    "u64s",
    "writable_rules",
    "xen_machines",
]

# ------------------------------------------------------------------------------------------ machines


@st.composite
def xen_machines(
    draw: st.DrawFn, max_nr: int = (2 * GIB) >> 12, shape: object | None = None
) -> tuple[int, int, int, int]:
    """(nr, kernel, ramdisk, slack) of a domU in pages, spread over the proofs' domain (`xenpin.symbolic.form`)
    and its corners (2 MiB multiples, just past a GiB and a chunk), with the default image sizes often. Filter
    to a variant's domain with `xenpin.symbolic.closed_form.in_domain` where it matters. (`shape` is accepted
    for callers that name the walk shape they test; every shape shares this domain.)"""
    del shape
    nr = draw(
        st.one_of(
            st.integers(form.DOMAIN_MIN_PFN, max_nr),
            st.integers(form.DOMAIN_MIN_PFN >> 9, max_nr >> 9).map(lambda c: c << 9),  # 2 MiB multiples
            st.integers(1, max_nr >> 18).map(lambda g: (g << 18) + 513),  # just past a GiB and a chunk
        )
    )
    kernel = draw(st.one_of(st.just(KERNEL_PAGES), st.integers(*form.KERNEL_PAGES)))
    ramdisk = draw(st.one_of(st.just(RAMDISK_PAGES), st.just(0), st.integers(*form.RAMDISK_PAGES)))
    slack = draw(st.one_of(st.just(SLACK_PAGES), st.just(0), st.integers(*form.SLACK_PAGES)))
    return nr, kernel, ramdisk, slack


def domu_config(
    nr: int, kernel: int = KERNEL_PAGES, ramdisk: int = RAMDISK_PAGES, slack: int = SLACK_PAGES
) -> BootConfig:
    """A domU of `nr` pages with a kernel image, ramdisk and E820 slack of so many pages."""
    return BootConfig(
        role="domU",
        mem_bytes=nr << 12,
        kernel_bytes=kernel << 12,
        ramdisk_bytes=ramdisk << 12,
        slack_bytes=slack << 12,
    )


def domu_configs(max_nr: int = (2 * GIB) >> 12) -> st.SearchStrategy[BootConfig]:
    """`xen_machines` as the `BootConfig` of a domU (for `xenpin.linux.boot.boot`)."""
    return xen_machines(max_nr=max_nr).map(lambda m: domu_config(*m))


@st.composite
def native_machines(draw: st.DrawFn) -> BootConfig:
    """A PC's E820 map of the shape `xenpin.symbolic.form` describes: the 640 KiB .. 1 MiB hole, RAM to a
    `low_end` at any page (maybe with a reserved range inside it above the kernel image), maybe RAM from 4 GiB,
    maybe 1 GiB pages."""
    low_end = draw(st.integers(form.DOMAIN_MIN_PFN, form.NATIVE_LOW_MAX)) << 12
    entries = [E820Entry(0, 0x9F000, E820_RAM), E820Entry(0x9F000, 0x1000, E820_RESERVED)]
    cut = draw(st.integers(0x4000, low_end >> 12).map(lambda p: p << 12))  # a reserved range inside low RAM
    hole = draw(st.integers(0, 0x1000)) << 12
    if hole and cut >= 0x3000000 and cut + hole < low_end:  # above the kernel image at 16 MiB
        entries += [
            E820Entry(0x100000, cut - 0x100000, E820_RAM),
            E820Entry(cut, hole, E820_RESERVED),
            E820Entry(cut + hole, low_end - cut - hole, E820_RAM),
        ]
    else:
        entries.append(E820Entry(0x100000, low_end - 0x100000, E820_RAM))
    high = draw(
        st.one_of(
            st.just(0),
            st.integers((4 * GIB >> 12) + 1, (64 * GIB) >> 12),
            st.integers(5, 64).map(lambda g: g << 18),
        )
    )
    if high:
        entries.append(E820Entry(4 * GIB, (high << 12) - 4 * GIB, E820_RAM))
    mem = low_end + max(0, (high << 12) - 4 * GIB)
    return BootConfig(role="native", mem_bytes=mem, e820=E820(entries), gbpages=draw(st.booleans()))


def boot_configs(max_nr: int = (2 * GIB) >> 12) -> st.SearchStrategy[BootConfig]:
    """A domU (`domu_configs`) or a bare-metal PC (`native_machines`): boot a Xen variant on the first, a
    native one on the second (`KernelVariant.xen` tells them apart)."""
    return st.one_of(domu_configs(max_nr), native_machines())


def domain_sizes() -> st.SearchStrategy[tuple[int, int, int]]:
    """(nr_pages, kernel image bytes, ramdisk bytes) for Xen's domain builder (`xc_dom_layout`): 64 MiB ..
    64 GiB of memory, a 2 .. 48 MiB kernel, a ramdisk up to 64 MiB."""
    return st.tuples(
        st.integers(0x4000, 0x1000000),
        st.integers(0x200000, 0x3000000),
        st.integers(0, 0x4000000),
    )


# ------------------------------------------------------------------------------------------ E820 maps

E820_TYPES = (1, 2, 3, 4, 5)  # RAM, reserved, ACPI, NVS, unusable


def e820_spans(
    max_page: int = 40, max_pages: int = 12, max_size: int = 8, types: Sequence[int] = E820_TYPES
) -> st.SearchStrategy[list[tuple[int, int, int]]]:
    """Raw E820 entries as (first page, pages, type): overlapping, unsorted, maybe empty -- what a BIOS or
    Xen hands `sanitize_e820_map`."""
    return st.lists(
        st.tuples(st.integers(0, max_page), st.integers(0, max_pages), st.sampled_from(list(types))),
        min_size=0,
        max_size=max_size,
    )


def e820_maps(**kwargs: int) -> st.SearchStrategy[E820]:
    """`e820_spans` as an unsanitized `E820` (call `.sanitize()` on it)."""
    return e820_spans(**kwargs).map(lambda raw: E820(E820Entry(a << 12, n << 12, t) for a, n, t in raw))


def disjoint_e820_maps(
    max_pages: int = 1 << 20, max_size: int = 6, types: Sequence[int] = (*E820_TYPES, 12)
) -> st.SearchStrategy[E820]:
    """A sorted map of 1 .. `max_size` entries with a one-page gap after each (type 12: one the kernel prints
    by number), as `e820_print_map` prints a sanitized one."""

    def build(spans: list[tuple[int, int]]) -> E820:
        addr, entries = 0, []
        for pages, t in spans:
            entries.append(E820Entry(addr, pages << 12, t))
            addr += (pages + 1) << 12
        return E820(entries)

    return st.lists(
        st.tuples(st.integers(1, max_pages), st.sampled_from(list(types))), min_size=1, max_size=max_size
    ).map(build)


# ------------------------------------------------------------------------------------------ policies

INT_VARS = tuple(BUFFER_VARS)  # pfn, pgt_buf_start, pgt_buf_end, pgt_buf_top
BOOL_VARS = tuple(n for n, kind in READONLY_VARS.items() if kind == "bool")  # ioremap


def u64s() -> st.SearchStrategy[int]:
    """64-bit values, small ones and the corners of wrap-around (page boundaries, 2**32, 2**63, the top)."""
    return st.one_of(
        st.integers(0, 70),
        st.sampled_from([0xFFF, 0x1000, 0x1001, 2**32 - 1, 2**63 - 1, 2**63, MASK - 4095, MASK - 1, MASK]),
        st.integers(0, MASK),
    )


def int_exprs(max_leaves: int = 8) -> st.SearchStrategy[Expr]:
    """Integer expressions of the policy language over the buffer variables: + - * << >>, PFN_PHYS/DOWN/UP."""
    leaf = st.one_of(st.builds(Num, u64s()), st.sampled_from([Var(n) for n in INT_VARS]))
    return st.recursive(
        leaf,
        lambda sub: st.one_of(
            st.builds(BinOp, st.sampled_from(["+", "-", "*", "<<", ">>"]), sub, sub),
            st.builds(Call, st.sampled_from(["PFN_PHYS", "PFN_DOWN", "PFN_UP"]), sub),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def _compares(draw: st.DrawFn, ints: st.SearchStrategy[Expr]) -> Compare:
    n = draw(st.integers(1, 3))
    ops = tuple(draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="])) for _ in range(n))
    operands = tuple(draw(ints) for _ in range(n + 1))
    return Compare(ops, operands)


def bool_exprs(max_leaves: int = 6) -> st.SearchStrategy[Expr]:
    """Boolean expressions (a policy): chained comparisons of `int_exprs`, `ioremap`, and/or/not."""
    ints = int_exprs()
    leaf = st.one_of(st.builds(Bool, st.booleans()), st.just(Var("ioremap")), _compares(ints))
    return st.recursive(
        leaf,
        lambda sub: st.one_of(st.builds(And, sub, sub), st.builds(Or, sub, sub), st.builds(Not, sub)),
        max_leaves=max_leaves,
    )


def policy_exprs() -> st.SearchStrategy[Expr]:
    """Any expression of the policy language, integer or boolean."""
    return st.one_of(int_exprs(), bool_exprs())


def policy_envs() -> st.SearchStrategy[dict[str, int | bool]]:
    """Values for every variable a `readonly` policy sees (`xenpin.linux.policy.evaluate`'s env)."""
    return st.fixed_dictionaries({**{n: u64s() for n in INT_VARS}, **{n: st.booleans() for n in BOOL_VARS}})


BOUND_LO = ["pgt_buf_start", "pgt_buf_start + 1", "pgt_buf_start - 1", "PFN_PHYS(pgt_buf_start)"]
BOUND_HI = [
    "pgt_buf_end",
    "pgt_buf_top",
    "pgt_buf_end + 1",
    "pgt_buf_end - 1",
    "pgt_buf_top - 1",
    "pgt_buf_top + 1",
    "PFN_PHYS(pgt_buf_top)",
]
IOREMAP_CLAUSES = [
    None,
    "pfn != pgt_buf_end - 1",
    "pfn != pgt_buf_end",
    "pfn != pgt_buf_end - 2",
    "pfn < pgt_buf_end - 1",
]


@st.composite
def readonly_rules(draw: st.DrawFn) -> str:
    """`mask_rw_pte` rules (policy text): the shipped shapes, with off-by-ones, `< end` or `< top`, PFN_PHYS
    units in one bound, and the ioremap clause present, off by one, or missing."""
    lo, hi = draw(st.sampled_from(BOUND_LO)), draw(st.sampled_from(BOUND_HI))
    op = draw(st.sampled_from(["<", "<="]))
    direct = f"not ioremap and {lo} <= pfn {op} {hi}"
    clause = draw(st.sampled_from(IOREMAP_CLAUSES))
    return direct if clause is None else f"({direct}) or (ioremap and {clause})"


@st.composite
def interval_rules(draw: st.DrawFn, lo: list[str], hi: list[str]) -> str:
    """`a <= pfn < b` (or `<=`) for a bound of `lo` and one of `hi`, sometimes all in bytes (the seed's form)."""
    a, b = draw(st.sampled_from(lo)), draw(st.sampled_from(hi))
    op = draw(st.sampled_from(["<", "<="]))
    if draw(st.booleans()):
        return f"PFN_PHYS({a}) <= PFN_PHYS(pfn) {op} PFN_PHYS({b})"
    return f"{a} <= pfn {op} {b}"


def reserve_rules() -> st.SearchStrategy[str]:
    """`reserve` policies: the right one, none, and intervals off by one or reaching `top`."""
    return st.one_of(
        st.just("pgt_buf_start <= pfn < pgt_buf_end"),
        st.just("false"),
        interval_rules(
            ["pgt_buf_start", "pgt_buf_start + 1"], ["pgt_buf_end", "pgt_buf_end - 1", "pgt_buf_top"]
        ),
    )


def writable_rules() -> st.SearchStrategy[str]:
    """`writable` (the Xen hook's) policies: none, the right one, units mixed, intervals off by one."""
    return st.one_of(
        st.just("false"),
        st.just("pgt_buf_end <= pfn < pgt_buf_top"),
        st.just("PFN_PHYS(pgt_buf_end) <= pfn < PFN_PHYS(pgt_buf_top)"),  # units mixed: bytes against a pfn
        interval_rules(
            ["pgt_buf_end", "pgt_buf_end + 1", "pgt_buf_end - 1", "pgt_buf_start"],
            ["pgt_buf_top", "pgt_buf_top - 1"],
        ),
    )


def mutate(
    variant: KernelVariant,
    readonly: str | None = None,
    reserve: str | None = None,
    writable: str | None = None,
) -> KernelVariant:
    """`variant` with the given policies (policy text) replaced, named `<name>*`; its `[expect]` is kept."""
    texts = {"readonly": readonly, "reserve": reserve, "writable": writable}
    variables = {"readonly": READONLY_VARS, "reserve": BUFFER_VARS, "writable": BUFFER_VARS}
    changes: dict[str, object] = {k: parse_policy(t, variables[k]) for k, t in texts.items() if t is not None}
    sources = {**variant.sources, **{k: t for k, t in texts.items() if t is not None}}
    return dataclasses.replace(variant, name=f"{variant.name}*", sources=sources, **changes)


@st.composite
def mutants(draw: st.DrawFn, variants: Sequence[KernelVariant]) -> KernelVariant:
    """One of `variants` with each of its policies kept or replaced by a `*_rules` one (`mutate`)."""
    base = draw(st.sampled_from(list(variants)))
    return mutate(
        base,
        readonly=draw(st.one_of(st.none(), readonly_rules())),
        reserve=draw(st.one_of(st.none(), reserve_rules())),
        writable=draw(st.one_of(st.none(), writable_rules())),
    )


# ------------------------------------------------------------------------------------------ scenario programs

# Flags of present page-table entries: RO/RW, accessed/dirty, NX, user, superpage, global.
ENTRY_FLAGS = (P, P | RW, P | A | D, P | RW | A | D | NX, P | RW | US, P | NX, P | PSE, P | RW | PSE, P | G)


def page_table_entries(
    targets: st.SearchStrategy[int], flags: Sequence[int] = ENTRY_FLAGS
) -> st.SearchStrategy[Entry | None]:
    """A page-table entry naming one of `targets` with one of `flags`, or None (not present)."""
    return st.one_of(st.none(), st.builds(Entry, targets, st.sampled_from(list(flags))))


def _toml_entry(entry: Entry | None) -> str:
    return "{}" if entry is None else f'{{ mfn = {entry.mfn}, flags = "{format_flags(entry.flags)}" }}'


@st.composite
def scenario_texts(
    draw: st.DrawFn,
    rules: str = "modern",
    frames: int = 8,
    foreign: Sequence[int] = (100,),
    slots: Sequence[int] = (0, 1, 2, 3, 256, 511),
    max_steps: int = 20,
) -> str:
    """A hypercall scenario file's text (no `expect`s: what each step returns is the question): plain stores,
    mmu_update, update_va_mapping, pin/unpin, new_baseptr, set_gdt and invariant checks over `frames` guest
    frames and the `foreign` ones. Save a failing one next to your scenarios and give it its `expect`s."""
    mfns = st.one_of(st.integers(0, frames - 1), st.sampled_from(list(foreign)) if foreign else st.nothing())
    slot = st.sampled_from(list(slots))
    entries = page_table_entries(mfns)
    lines = [f'name = "generated ({rules}, {frames} frames)"', f'rules = "{rules}"', f"frames = {frames}"]
    if foreign:
        lines.append(f"foreign = [{', '.join(map(str, foreign))}]")
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(
            st.sampled_from(
                [
                    "write",
                    "mmu_update",
                    "update_va_mapping",
                    "pin",
                    "unpin",
                    "new_baseptr",
                    "set_gdt",
                    "check",
                ]
            )
        )
        lines += ["", "[[step]]", f'op = "{op}"']
        if op in ("write", "mmu_update"):
            lines += [f"mfn = {draw(mfns)}", f"slot = {draw(slot)}", f"entry = {_toml_entry(draw(entries))}"]
        elif op == "update_va_mapping":
            va = sum(draw(slot) << shift for shift in (39, 30, 21, 12))
            lines += [f"va = {va}", f"entry = {_toml_entry(draw(entries))}"]
        elif op == "pin":
            lines += [f"level = {draw(st.integers(1, 4))}", f"mfn = {draw(mfns)}"]
        elif op != "check":
            lines.append(f"mfn = {draw(mfns)}")
    return "\n".join(lines) + "\n"


def scenario_programs(**kwargs: object) -> st.SearchStrategy[object]:
    """`scenario_texts` loaded as a `xenpin.xen.scenario.Scenario` (arguments as there), ready for
    `run_scenario`; each outcome's `step` and `result` say what Xen did."""
    from xenpin.xen.scenario import parse_scenario

    return scenario_texts(**kwargs).map(lambda text: parse_scenario(text, "<generated>"))
