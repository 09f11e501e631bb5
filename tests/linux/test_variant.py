"""Kernel-variant files: every shipped variant loads, and each kind of malformed file raises a VariantError
whose text is one line starting `path:line:` and naming the key (and the column inside a policy)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xenpin.linux.policy import Expr, evaluate
from xenpin.linux.variant import (
    CODE,
    PLACEMENTS,
    PLATFORMS,
    PROPERTIES,
    VERDICTS,
    KernelVariant,
    VariantError,
    load_variant,
    variant_files,
)

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
FILES = sorted(KERNELS.glob("*.toml"))
SHIPPED = (
    "2.6.37",
    "2.6.38",
    "2.6.38-native",
    "2.6.39-rc1",
    "2.6.39-rc5",
    "2.6.39-rc6",
    "bisect-a38647837a41",
    "2.6.39",
    "2.6.39-inline",
    "2.6.39-native",
    "3.0",
    "3.1",
    "3.1-native",
    "3.9",
    "bisect-4b239f458",
    "bisect-92bdaef7b2c5",
)

GOOD = """\
# a comment line
name = "test"
release = "none"
commit = "279b706bf800"
description = "a test variant"
platform = "xen"
readonly = "not ioremap and pgt_buf_start <= pfn < pgt_buf_top"
reserve = "pgt_buf_start <= pfn < pgt_buf_end"
writable = "pgt_buf_end <= pfn < pgt_buf_top"

[code]
init_mem_mapping = "2.6.37"
find_early_table_space = "2.6.39-rc1"
kernel_physical_mapping_init = "2.6.39-rc1"
xen_setup_kernel_pagetable = "2.6.39-rc1"
xen_memory_setup = "2.6.39-rc5"
initmem_init = "2.6.37"
pagetable_reserve = "2.6.39"

[expect]
buffer_fits = "proved"
no_rw_alias = "proved"
spare_writable = "proved"
spare_freed = "proved"
live_reserved = "proved"
"""


def _write(tmp_path: Path, text: str, name: str = "v.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line_no(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def _error(path: Path) -> str:
    with pytest.raises(VariantError) as info:
        load_variant(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}:"), message
    return message


# ------------------------------------------------------------------------------------ shipped variants


def test_all_shipped_variants_are_present() -> None:
    assert sorted(p.stem for p in FILES) == sorted(SHIPPED)
    assert variant_files([KERNELS]) == FILES


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_shipped_variant_loads(path: Path) -> None:
    v = load_variant(path)
    assert isinstance(v, KernelVariant)
    assert v.name == path.stem
    assert v.path == path
    assert v.platform in PLATFORMS
    assert v.placement in PLACEMENTS
    assert set(v.expect) == set(PROPERTIES)
    assert all(verdict in VERDICTS for verdict in v.expect.values())
    for key in ("readonly", "reserve", "writable"):
        assert isinstance(getattr(v, key), Expr)
        assert v.source(key)
    assert v.xen == (v.platform == "xen")
    assert set(v.code) == set(CODE) and all(v.code[k] in CODE[k] for k in CODE)
    assert v.commit and v.description
    # a release variant is named by its release (bisect states and the seed's rejected alternative are not)
    assert v.release == "none" or v.name in (v.release, f"{v.release}-native")


def test_shipped_variants_encode_the_history() -> None:
    """The rules of linux-releases-2011.md, evaluated at a sample buffer [100, 120) with 110 pages used."""
    v = {p.stem: load_variant(p) for p in FILES}
    buf = {"pgt_buf_start": 100, "pgt_buf_end": 110, "pgt_buf_top": 120}

    def ro(name: str, pfn: int, ioremap: bool = False) -> bool:
        return bool(evaluate(v[name].readonly, {**buf, "pfn": pfn, "ioremap": ioremap}))

    def ev(name: str, key: str, pfn: int) -> bool:
        return bool(evaluate(getattr(v[name], key), {**buf, "pfn": pfn}))

    xen = [n for n in SHIPPED if v[n].xen]
    # mask_rw_pte: `< end` (fef5ba79 .. 2.6.39-rc5) vs `< top` (b9269dc7, 2.6.39-rc6 on); never on 3.9
    for name in ("2.6.37", "2.6.38", "2.6.39-rc1", "2.6.39-rc5", "bisect-4b239f458", "bisect-a38647837a41"):
        assert ro(name, 105) and not ro(name, 110) and not ro(name, 119) and not ro(name, 99), name
    for name in ("2.6.39-rc6", "2.6.39", "2.6.39-inline", "3.0", "3.1", "bisect-92bdaef7b2c5"):
        assert ro(name, 100) and ro(name, 110) and ro(name, 119) and not ro(name, 120) and not ro(name, 99)
    # d8aa5ec3382e's ioremap clause: the fixmap alias is RO except for the page being filled
    with_clause = {n for n in xen if ro(n, 105, ioremap=True)}
    assert with_clause == {
        "2.6.39-rc1",
        "2.6.39-rc5",
        "bisect-a38647837a41",
        "2.6.39-rc6",
        "2.6.39",
        "2.6.39-inline",
        "3.0",
        "3.1",
        "bisect-92bdaef7b2c5",
    }
    assert not any(ro(n, 109, ioremap=True) for n in with_clause)
    for name in [n for n in SHIPPED if not v[n].xen] + ["3.9"]:
        assert not any(ro(name, p, io) for p in range(95, 125) for io in (False, True)), name
    # every buffer variant reserves exactly [start, end)
    for name in SHIPPED:
        if name != "3.9":
            assert [p for p in range(95, 125) if ev(name, "reserve", p)] == list(range(100, 110)), name
    # the seed's hook, its inlined twin and 2.6.39-rc6's deferred mark_rw_past_pgt make [end, top) RW again
    for name in ("2.6.39-rc6", "bisect-a38647837a41", "2.6.39", "2.6.39-inline", "3.0", "3.1"):
        assert [p for p in range(95, 125) if ev(name, "writable", p)] == list(range(110, 120)), name
    for name in (
        "2.6.37",
        "2.6.38",
        "2.6.39-rc1",
        "2.6.39-rc5",
        "3.9",
        "bisect-4b239f458",
        "bisect-92bdaef7b2c5",
    ):
        assert not any(ev(name, "writable", p) for p in range(95, 125)), name
    # placement: 4b239f458 is in 2.6.39-rc1, not 2.6.38; released 3.0 is still high; 3.1 low again
    high = {n for n in SHIPPED if v[n].placement == "high"}
    assert high == {"2.6.39-rc1", "2.6.39-rc5", "bisect-a38647837a41", "2.6.39-rc6", "2.6.39", "2.6.39-inline",
                    "2.6.39-native", "3.0", "bisect-4b239f458", "bisect-92bdaef7b2c5"}  # fmt: skip
    assert v["3.9"].placement == "mapped" and v["3.1"].placement == v["2.6.38"].placement == "low"
    assert {n: v[n].hook for n in ("2.6.37", "2.6.39-rc6", "2.6.39", "2.6.39-inline", "3.9")} == {
        "2.6.37": "none", "2.6.39-rc6": "deferred", "2.6.39": "x86_init", "2.6.39-inline": "inline", "3.9": "none"
    }  # fmt: skip
    assert {n for n in SHIPPED if v[n].map_low_page} == high - {"2.6.39-rc1"} | {
        "2.6.39-rc1",
        "3.1",
        "3.1-native",
    }
    # xen_memory_setup as each release shipped it: the alignment guard (2.6.38), dom0's UNUSABLE and the 1-1 p2m
    # (2.6.39-rc1), the extra region at max(4G, mem_end) (2.6.39-rc5, 24bdb0b62cc8), at mem_end again (3.0-rc4),
    # clamped to the maximum reservation (3.1); the bisect states have what their commit's tree had
    assert {n: v[n].code["xen_memory_setup"] for n in SHIPPED if v[n].xen} == {
        "2.6.37": "2.6.37", "2.6.38": "2.6.38", "2.6.39-rc1": "2.6.39-rc1", "2.6.39-rc5": "2.6.39-rc5",
        "2.6.39-rc6": "2.6.39-rc5", "2.6.39": "2.6.39-rc5", "2.6.39-inline": "2.6.39-rc5", "3.0": "3.0-rc4",
        "3.1": "3.1", "3.9": "3.9", "bisect-4b239f458": "2.6.37", "bisect-92bdaef7b2c5": "2.6.39-rc5",
        "bisect-a38647837a41": "2.6.39-rc5",
    }  # fmt: skip
    # what each release is expected to violate
    broken = {n: sorted(p for p in PROPERTIES if v[n].expect[p] != "proved") for n in SHIPPED}
    assert {n: b for n, b in broken.items() if b} == {
        "2.6.39-rc1": ["no_rw_alias"],
        "2.6.39-rc5": ["no_rw_alias"],
        "bisect-a38647837a41": ["no_rw_alias"],
        "2.6.39-rc6": ["spare_writable"],
        "bisect-4b239f458": ["no_rw_alias"],
        "bisect-92bdaef7b2c5": ["spare_writable"],
        "3.9": ["buffer_fits", "spare_freed"],  # out of mapped memory from 36 GiB; no reserve step (vacuous)
    }


def test_good_template_loads(tmp_path: Path) -> None:
    v = load_variant(_write(tmp_path, GOOD))
    assert v.name == "test" and v.hook == "x86_init" and v.commit == "279b706bf800" and v.release == "none"
    assert v.placement == "high" and v.map_low_page
    assert v.sources["readonly"] == "not ioremap and pgt_buf_start <= pfn < pgt_buf_top"


def test_native_variant_needs_no_xen_code_and_3_9_no_buffer(tmp_path: Path) -> None:
    nothing_rw = GOOD.replace('writable = "pgt_buf_end <= pfn < pgt_buf_top"', 'writable = "false"')
    native = nothing_rw.replace('platform = "xen"', 'platform = "native"')
    native = native.replace('xen_setup_kernel_pagetable = "2.6.39-rc1"\n', "").replace(
        'xen_memory_setup = "2.6.39-rc5"\n', ""
    )
    v = load_variant(_write(tmp_path, native))
    assert not v.xen and v.code["xen_memory_setup"] == "2.6.39-rc5"  # a default nobody reads
    v39 = (
        nothing_rw.replace('init_mem_mapping = "2.6.37"', 'init_mem_mapping = "3.9"')
        .replace('find_early_table_space = "2.6.39-rc1"\n', "")
        .replace('pagetable_reserve = "2.6.39"', 'pagetable_reserve = "3.9"')
    )
    v = load_variant(_write(tmp_path, v39, "v39.toml"))
    assert v.placement == "mapped" and v.code["find_early_table_space"] == "none"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('initmem_init = "2.6.37"', 'initmem_init = "2.6.38"', "key 'code.initmem_init': must be one of"),
        ('initmem_init = "2.6.37"', "initmem_init = 37", "key 'code.initmem_init': must be one of"),
        ('initmem_init = "2.6.37"', 'initmem = "2.6.37"', "key 'code.initmem': unknown key"),
        ('initmem_init = "2.6.37"\n', "", "key 'code': key 'code.initmem_init' missing"),
        (
            'pagetable_reserve = "2.6.39"',
            'pagetable_reserve = "3.9"',
            "only init_mem_mapping 3.9 goes without",
        ),
        ('init_mem_mapping = "2.6.37"', 'init_mem_mapping = "3.9"', "init_mem_mapping 3.9 has no buffer"),
    ],
)
def test_bad_code_table(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = GOOD.replace(old, new)
    path = _write(tmp_path, text)
    got = _error(path)
    assert message in got, got
    if "must be one of" in message or "unknown key" in message:
        assert got.startswith(f"{path}:{_line_no(text, new.strip())}:"), got


def test_code_must_be_a_table(tmp_path: Path) -> None:
    head, tail = GOOD.split("[code]")
    text = head + 'code = "2.6.39"\n[expect]' + tail.split("[expect]")[1]
    path = _write(tmp_path, text)
    assert _error(path).startswith(f"{path}:{_line_no(text, 'code =')}: key 'code': must be a table")


# ------------------------------------------------------------------------------------ malformed files


def test_missing_file(tmp_path: Path) -> None:
    message = _error(tmp_path / "absent.toml")
    assert "cannot read" in message


def test_bad_toml(tmp_path: Path) -> None:
    text = GOOD.replace('platform = "xen"', 'platform = "xen')  # unterminated string
    path = _write(tmp_path, text)
    message = _error(path)
    assert re.match(rf"{re.escape(str(path))}:{_line_no(text, 'platform')}: bad TOML", message), message


def test_bad_toml_duplicate_key(tmp_path: Path) -> None:
    text = GOOD + 'buffer_fits = "proved"\n'
    path = _write(tmp_path, text)
    message = _error(path)
    assert re.match(rf"{re.escape(str(path))}:{len(text.splitlines())}: bad TOML", message), message


@pytest.mark.parametrize("key", ["name", "release", "commit", "platform", "readonly", "reserve", "writable"])
def test_missing_required_key(tmp_path: Path, key: str) -> None:
    text = "".join(line for line in GOOD.splitlines(keepends=True) if not line.startswith(f"{key} ="))
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}:1: key '{key}': missing"), message


@pytest.mark.parametrize("key", ["name", "release", "commit"])
def test_empty_name_release_or_commit(tmp_path: Path, key: str) -> None:
    text = re.sub(rf'^{key} = ".*"$', f'{key} = " "', GOOD, count=1, flags=re.M)
    path = _write(tmp_path, text)
    assert _error(path) == f"{path}:{_line_no(text, f'{key} = ')}: key '{key}': must not be empty"


def test_bad_toml_at_end_of_file_names_the_last_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "x"\nplatform = [\n')
    assert _error(path) == f"{path}:2: bad TOML: Invalid value (at end of file)"


def test_missing_expect_table(tmp_path: Path) -> None:
    text = GOOD.split("[expect]")[0]
    message = _error(_write(tmp_path, text))
    assert "key 'expect': missing" in message


@pytest.mark.parametrize("key", ["placment", "placement", "hook"])  # a typo; keys of the old format
def test_unknown_key(tmp_path: Path, key: str) -> None:
    text = GOOD.replace('platform = "xen"', f'platform = "xen"\n{key} = "low"')
    path = _write(tmp_path, text)
    message = _error(path)
    what = "unknown key" if key == "placment" else "removed: "  # an old key says what replaced it
    assert message.startswith(f"{path}:{_line_no(text, f'{key} =')}: key '{key}': {what}"), message


def test_non_string_value(tmp_path: Path) -> None:
    text = GOOD.replace('name = "test"', "name = 3")
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}:{_line_no(text, 'name = 3')}: key 'name': must be a string"), message


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("platform", 'platform = "xen"', 'platform = "kvm"'),
    ],
)
def test_bad_enumerated_value(tmp_path: Path, key: str, old: str, new: str) -> None:
    text = GOOD.replace(old, new)
    path = _write(tmp_path, text)
    message = _error(path)
    bad = new.split('"')[-2]
    assert message.startswith(f"{path}:{_line_no(text, f'{key} =')}: key '{key}': must be one of"), message
    assert repr(bad) in message


@pytest.mark.parametrize(
    ("key", "policy", "column"),
    [
        ("readonly", "pgt_buf_start <= pfn < pgt_buf_top and", 39),  # dangling operator: the end
        ("readonly", "pgt_buf_start <= pfm", 18),  # unknown variable
        ("reserve", "pgt_buf_start <= pfn < pgt_buf_end and ioremap", 40),  # ioremap: readonly only
        ("writable", "pfn + 1", 1),  # not a boolean
        ("writable", "pfn < pgt_buf_top )", 19),  # stray token
    ],
)
def test_bad_policy_expression(tmp_path: Path, key: str, policy: str, column: int) -> None:
    lines = GOOD.splitlines(keepends=True)
    text = "".join(f'{key} = "{policy}"\n' if line.startswith(f"{key} =") else line for line in lines)
    path = _write(tmp_path, text)
    message = _error(path)
    prefix = f"{path}:{_line_no(text, f'{key} =')}: key '{key}': column {column}: "
    assert message.startswith(prefix), message


def test_missing_expect_property(tmp_path: Path) -> None:
    text = GOOD.replace('spare_freed = "proved"\n', "")
    path = _write(tmp_path, text)
    message = _error(path)
    expected = f"{path}:{_line_no(text, '[expect]')}: key 'expect.spare_freed': missing"
    assert message.startswith(expected), message


def test_unknown_expect_property(tmp_path: Path) -> None:
    text = GOOD + 'spare_free = "proved"\n'
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}:{len(text.splitlines())}: key 'expect.spare_free': unknown"), message


def test_bad_verdict(tmp_path: Path) -> None:
    text = GOOD.replace('no_rw_alias = "proved"', 'no_rw_alias = "yes"')
    path = _write(tmp_path, text)
    message = _error(path)
    expected = f"{path}:{_line_no(text, 'no_rw_alias')}: key 'expect.no_rw_alias': must be one of"
    assert message.startswith(expected), message
    assert "'yes'" in message


def test_expect_not_a_table(tmp_path: Path) -> None:
    text = GOOD.split("[expect]")[0].replace("[code]", 'expect = "proved"\n\n[code]')
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}:{_line_no(text, 'expect =')}: key 'expect': must be a table"), message


def test_key_line_ignores_same_name_in_other_table(tmp_path: Path) -> None:
    """A top-level key is located at its own line, not at a same-named key further down."""
    text = GOOD.replace('platform = "xen"', 'platform = "arm"')
    path = _write(tmp_path, text)
    assert _error(path).startswith(f"{path}:{_line_no(text, 'platform =')}:")


def test_alias_writable_defaults_to_proved_and_can_be_stated(tmp_path: Path) -> None:
    assert load_variant(_write(tmp_path, GOOD)).expect["alias_writable"] == "proved"
    stated = GOOD + 'alias_writable = "counterexample"\n'
    assert load_variant(_write(tmp_path, stated, "s.toml")).expect["alias_writable"] == "counterexample"


@pytest.mark.parametrize(
    ("policy", "column"),
    [
        ("not " * 150 + "true", 401),  # 100 levels of `not`, then too deep
        ("(" * 150 + "pfn" + ")" * 150 + " < 1", 101),
        ("pfn" + " + 1" * 500 + " < 2", 1),  # a flat chain: an AST 500 deep
    ],
)
def test_policy_too_deep_is_an_error_not_a_crash(tmp_path: Path, policy: str, column: int) -> None:
    text = GOOD.replace('writable = "pgt_buf_end <= pfn < pgt_buf_top"', f'writable = "{policy}"')
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}:{_line_no(text, 'writable =')}: key 'writable': column {column}: ")
    assert "nested too deeply" in message


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_bytes(GOOD.replace('"a test variant"', '"caf\xe9"').encode("latin-1"))
    assert _error(path) == f"{path}:5: not UTF-8 text (byte {GOOD.index('a test variant') + 3})"


def test_inline_and_sub_table_expectations_name_their_line(tmp_path: Path) -> None:
    head, _ = GOOD.split("[expect]")
    inline = head.replace("[code]", 'expect = {buffer_fits = "proved", no_rw_alias = "yes"}\n\n[code]')
    path = _write(tmp_path, inline)
    assert _error(path).startswith(
        f"{path}:{_line_no(inline, 'expect =')}: key 'expect.no_rw_alias': must be"
    )
    sub = GOOD + "[expect.extra]\nx = 1\n"
    path = _write(tmp_path, sub, "sub.toml")
    assert _error(path).startswith(f"{path}:{_line_no(sub, '[expect.extra]')}: key 'expect.extra': unknown")
