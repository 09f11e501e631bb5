"""`hook` is gone from variant files: `[code] pagetable_reserve` drives the reserve step, an old file's `hook`
(or `placement`) key is rejected with what replaced it, and `writable` cannot be a policy nothing evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenpin import shipped
from xenpin.linux.boot import boot
from xenpin.linux.variant import VariantError, load_variant

BISECT = (shipped.KERNELS / "bisect-92bdaef7b2c5.toml").read_text()  # no hook: pagetable_reserve 2.6.37


def _variant(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "v.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('platform = "xen"', 'platform = "xen"\nhook = "none"'),
        ('pagetable_reserve = "2.6.37"', 'pagetable_reserve = "2.6.37"\nhook = "none"'),
        ('platform = "xen"', 'platform = "xen"\nplacement = "high"'),
    ],
)
def test_an_old_files_hook_is_rejected_naming_what_replaced_it(tmp_path: Path, old: str, new: str) -> None:
    path = _variant(tmp_path, BISECT.replace(old, new, 1))
    with pytest.raises(VariantError) as err:
        load_variant(path)
    line = new.splitlines()[1]
    key = line.split(" =")[0]
    lineno = BISECT.replace(old, new, 1).splitlines().index(line) + 1
    assert str(err.value).startswith(f"{path}:{lineno}: key '")
    assert f"{key}': removed: " in str(err.value)
    assert ("pagetable_reserve" if key == "hook" else "find_early_table_space") in str(err.value)


def test_pagetable_reserve_drives_the_reserve_step(tmp_path: Path) -> None:
    """The same file with the seed's hook instead of none: the free tail is made RW and the boot gets through."""
    none = load_variant(_variant(tmp_path, BISECT))
    hooked_text = BISECT.replace('pagetable_reserve = "2.6.37"', 'pagetable_reserve = "2.6.39"').replace(
        'writable = "false"', 'writable = "pgt_buf_end <= pfn < pgt_buf_top"'
    )
    hooked = load_variant(_variant(tmp_path, hooked_text))
    assert (none.hook, hooked.hook) == ("none", "x86_init")
    without, with_hook = boot(none, 64 << 20), boot(hooked, 64 << 20)
    assert without.outcome == "kernel-fault" and without.properties["spare_writable"] is False
    assert with_hook.outcome == "ok" and with_hook.properties["spare_writable"] is True


@pytest.mark.parametrize(("platform", "reserve"), [("xen", "2.6.37"), ("native", "2.6.39")])
def test_writable_must_be_false_where_nothing_makes_pages_rw(
    tmp_path: Path, platform: str, reserve: str
) -> None:
    text = BISECT.replace('writable = "false"', 'writable = "pgt_buf_end <= pfn < pgt_buf_top"').replace(
        'pagetable_reserve = "2.6.37"', f'pagetable_reserve = "{reserve}"'
    )
    if platform == "native":
        text = text.replace('platform = "xen"', 'platform = "native"')
        text = "\n".join(line for line in text.splitlines() if not line.startswith("xen_"))
    with pytest.raises(VariantError, match=r"key 'writable': nothing makes pages RW again") as err:
        load_variant(_variant(tmp_path, text))
    lineno = text.splitlines().index('writable = "pgt_buf_end <= pfn < pgt_buf_top"') + 1
    assert f":{lineno}:" in str(err.value)
