"""xenpin installed like a tool: a wheel of this checkout, installed into a fresh venv, used from another folder.

The fresh venv gets xenpin only from the wheel (`pip install --no-deps`). Its dependencies (z3, rich, pytest,
...) come from the running interpreter's site-packages through a `.pth` line: a plain path in a `.pth` file is
appended to sys.path, but the `.pth` files in that folder (the checkout's editable install) are not run, so the
checkout's `xenpin` cannot leak in -- the test checks that `xenpin.__file__` is inside the fresh venv.
Nothing is fetched from the network except, when the running interpreter cannot build a wheel itself (no
`wheel` package for its setuptools), the build backend pip's build isolation installs.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import xenpin

SOURCE_ROOT = Path(xenpin.__file__).resolve().parents[1]


def _can_build_without_isolation() -> bool:
    """setuptools' bdist_wheel: its own from 70.1, else the `wheel` package's."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    if (major, minor) >= (70, 1):
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


def _build_wheel(out: Path, tmp: Path) -> Path:
    """A wheel of the checkout, built from a copy (a stale `build/` in the checkout must not leak in)."""
    src = tmp / "src"
    shutil.copytree(
        SOURCE_ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".hypothesis"),
    )
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)]
    if _can_build_without_isolation():
        cmd.insert(5, "--no-build-isolation")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"cannot build a wheel with {sys.executable} (no `wheel` for its setuptools?): {last}")
    (wheel,) = out.glob("xenpin-*.whl")
    return wheel


def _venv_site_packages(root: Path) -> Path:
    (found,) = root.glob("lib/python*/site-packages")
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp / "dist", tmp)
    root = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (_venv_site_packages(root) / "xenpin-test-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    pip = [sys.executable, "-m", "pip", "--python", str(root / "bin" / "python")]
    done = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(root)
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return {"root": root, "env": env, "cwd": cwd, "package": _venv_site_packages(root) / "xenpin"}


def _start(installed: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=installed["cwd"],
        env=installed["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_the_installed_wheel_works_from_anywhere(installed: dict) -> None:
    root, package = installed["root"], installed["package"]
    python, xenpin_bin = str(root / "bin" / "python"), str(root / "bin" / "xenpin")
    # the slowest one (the shipped boot logs) beside the rest
    logs = _start(installed, python, "-m", "xenpin", "logs")

    probe = (
        "import sys, xenpin, z3; print(xenpin.__file__);"
        " print([type(f).__name__ for f in sys.meta_path if 'ditable' in type(f).__name__ + str(f)])"
    )
    rc, out, err = _finish(_start(installed, python, "-c", probe))
    assert rc == 0, err
    where, editable_finders = out.splitlines()
    assert Path(where).resolve() == (package / "__init__.py").resolve()  # not the checkout's
    assert editable_finders == "[]"  # the deps folder's .pth files (the editable install) did not run

    rc, out, err = _finish(_start(installed, xenpin_bin, "--version"))
    assert rc == 0 and out.strip() == f"xenpin {xenpin.__version__}", (out, err)

    # the shipped models by default (prove's default folder is list's), from the installed package
    rc, out, err = _finish(_start(installed, xenpin_bin, "list"))
    variants = sorted((package / "models" / "kernels").glob("*.toml"))
    assert rc == 0 and len(variants) >= 10, out + err
    for path in variants:
        assert f" {path.stem} " in out and str(path) in out, (path, out)
    # the bisected 4b239f458: a counterexample, replayed by a boot of the install with Xen's lines
    model = str(package / "models" / "kernels" / "bisect-4b239f458.toml")
    rc, out, err = _finish(_start(installed, xenpin_bin, "prove", model, "--property", "no_rw_alias"))
    assert rc == 0 and "1 obligations: 0 proved, 1 counterexample" in out, out + err
    assert "(XEN) mm.c:4967:d1 ptwr_emulate: could not get_page_from_l1e()" in out, out

    # the installed proof scripts: one by name, and their folder as a PATH
    rc, out, err = _finish(
        _start(installed, xenpin_bin, "prove", str(package / "proofs"), "--property", "spare_freed")
    )
    assert rc == 0 and "6 obligations: 6 proved" in out, out + err

    rc, out, err = _finish(
        _start(
            installed, python, "-m", "pytest", "-p", "no:cacheprovider", "--xenpin", "--collect-only", "-q"
        )
    )
    ids = [line for line in out.splitlines() if "::" in line]
    assert "xenpin/models/kernels/2.6.39-rc1.toml::2.6.39-rc1::no_rw_alias" in ids, out + err
    assert "xenpin/proofs/history_2011.py::2.6.39-rc1::no_rw_alias" in ids
    assert "xenpin/models/scenarios/19-xsa148-xen41.toml::19-xsa148-xen41" in ids
    assert (
        len(ids)
        == 6 * len(variants) + len(list((package / "models" / "scenarios").glob("*.toml"))) + 13 + 36 + 48
    )  # the theorems of history_2011.py, pagetable_reserve.py and placement.py

    rc, out, err = _finish(
        _start(
            installed,
            python,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--xenpin",
            "-q",
            "-k",
            "xsa148 or (2.6.37 and spare_freed)",
        )
    )
    assert rc == 0 and "4 passed" in out, out + err  # scenarios 19 and 20, 2.6.37's spare_freed and @any

    rc, out, err = _finish(logs)
    assert rc == 0, out + err
    assert "4b239f458-after.log" in out or "92bdaef7b2c5-domU.log" in out, out
