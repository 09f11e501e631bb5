"""`explore --html` rendered in a real headless browser (Chromium from the distribution, which `.ci/run`
installs): what a person sees is the failing page's label, the legend, the timeline with Xen's line, and the
failing page's reddish-purple outline in the pixels.

Set XENPIN_NO_BROWSER=1 to skip the browser checks on a machine without Chromium; otherwise a missing browser
fails the test (CI installs it).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from bootcache import KERNELS

from xenpin.cli import main
from xenpin.report.explore import FAILING_COLOUR

CASES = [  # two of the shipped counterexamples: a pin Xen rejects, a store its ptwr emulation refuses
    ("2.6.39-rc1", "no_rw_alias", "0x40000", "Bad type (saw 7400000000000001"),
    ("bisect-4b239f458", "no_rw_alias", "0x181e", "ptwr_emulate: could not get_page_from_l1e()"),
]


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("XENPIN_NO_BROWSER") == "1":
        pytest.skip("XENPIN_NO_BROWSER=1: no browser checks")
    pytest.fail("chromium is not installed: `apt-get install chromium` (or set XENPIN_NO_BROWSER=1 to skip)")


def _chromium(browser: str, *args: str) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def _pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """A tiny PNG decoder (8-bit RGB or RGBA, non-interlaced): width, height and each row's RGB(A) bytes."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def _count(png: Path, hex_colour: str) -> int:
    want = bytes.fromhex(hex_colour.lstrip("#"))
    width, bpp, rows = _pixels(png)
    return sum(1 for row in rows for x in range(width) if row[x * bpp : x * bpp + 3] == want)


@pytest.mark.parametrize(("name", "prop", "pfn", "xen_line"), CASES)
def test_the_html_page_shows_the_counterexample(tmp_path: Path, capsys, name, prop, pfn, xen_line) -> None:
    page = tmp_path / f"{name}.html"
    assert main(["explore", str(KERNELS / f"{name}.toml"), prop, "--html", str(page)]) == 0
    capsys.readouterr()
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    browser = _browser()
    dom = _chromium(browser, "--dump-dom", page.as_uri())
    assert f"{name} · {prop} · counterexample" in dom
    assert f"failing page {pfn}:" in dom  # the label above the outlined page
    for entry in ("PTE RO (read-only)", "PTE RW (writable)", "not mapped", "live table: stripes",
                  "reserved: solid border", "free: dashed border", "failing page: thick reddish-purple outline"):  # fmt: skip
        assert entry in dom, entry
    assert "Minimal configuration" in dom and "Timeline of the failing page" in dom and xen_line in dom
    shot = tmp_path / "page.png"
    _chromium(browser, f"--screenshot={shot}", "--window-size=1000,900", page.as_uri())
    assert _count(shot, FAILING_COLOUR) > 100  # the failing page's outline is drawn, not just described


def test_html_without_a_counterexample_is_not_written(tmp_path: Path, capsys) -> None:
    page = tmp_path / "p.html"
    assert main(["explore", str(KERNELS / "3.0.toml"), "spare_writable", "--html", str(page)]) == 0
    assert f"no counterexample: {page} not written" in capsys.readouterr().out and not page.exists()


def test_html_to_a_directory_is_exit_2_with_no_output(tmp_path: Path, capsys) -> None:
    assert main(["explore", str(KERNELS / "2.6.39-rc1.toml"), "no_rw_alias", "--html", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"xenpin: {tmp_path}:") and list(tmp_path.iterdir()) == []
