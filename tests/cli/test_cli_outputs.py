"""Output files: only regular files are written (devices, FIFOs, directories, symlinks refused with exit 2
before any solver work), with the umask's mode (a replaced file keeps its own), and `--smt2` names its files
after the variant files' paths, inside its directory, one file per variant file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenpin.cli import main
from xenpin.cli.common import InputError, write_whole
from xenpin.cli.prove import smt2_stems
from xenpin.linux.variant import load_variant

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "models" / "kernels"
CX_MODEL = str(KERNELS / "2.6.39-rc1.toml")  # no_rw_alias has a counterexample: there is a picture to write


@pytest.fixture
def no_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused target must fail before the solver is asked anything."""

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("solver work before the output targets were checked")

    monkeypatch.setattr("xenpin.symbolic.explore.counterexamples", refuse)


@pytest.fixture
def umask() -> Iterator[object]:
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    return captured.err


@pytest.mark.parametrize("option", ["--svg", "--dot"])
def test_dev_null_refused_and_untouched(
    option: str, no_solver: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = os.stat("/dev/null")
    err = _refused(capsys, "explore", CX_MODEL, "no_rw_alias", option, "/dev/null")
    assert err == "xenpin: /dev/null: not a file but a character device: only regular files are written\n"
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_fifo_refused(tmp_path: Path, no_solver: None, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    assert "a FIFO" in _refused(capsys, "explore", CX_MODEL, "no_rw_alias", "--svg", str(fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(tmp_path.iterdir()) == [fifo]


def test_symlink_refused_and_its_target_untouched(
    tmp_path: Path, no_solver: None, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "cx.dot"
    link.symlink_to(target)
    assert "a symlink" in _refused(capsys, "explore", CX_MODEL, "no_rw_alias", "--dot", str(link))
    assert link.is_symlink() and target.read_text() == "keep me\n"
    assert sorted(tmp_path.iterdir()) == [link, target]


def test_directory_and_empty_name_refused(
    tmp_path: Path, no_solver: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "a directory" in _refused(capsys, "explore", CX_MODEL, "no_rw_alias", "--svg", str(tmp_path))
    assert (
        _refused(capsys, "explore", CX_MODEL, "no_rw_alias", "--svg", "")
        == "xenpin: --svg: empty file name\n"
    )
    assert (
        _refused(capsys, "explore", CX_MODEL, "no_rw_alias", "--dot", "")
        == "xenpin: --dot: empty file name\n"
    )


def test_explore_pictures_follow_the_umask(tmp_path: Path, umask, capsys: pytest.CaptureFixture[str]) -> None:
    umask(0o022)
    svg, dot = tmp_path / "cx.svg", tmp_path / "cx.dot"
    assert main(["explore", CX_MODEL, "no_rw_alias", "--svg", str(svg), "--dot", str(dot)]) == 0
    capsys.readouterr()
    assert _mode(svg) == 0o644 and _mode(dot) == 0o644
    assert svg.read_text().lstrip().startswith("<") and "digraph" in dot.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".xenpin-")] == []


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_is_0666_less_umask(tmp_path: Path, umask, mask: int, mode: int) -> None:
    umask(mask)
    out = tmp_path / "out.svg"
    write_whole(str(out), "<svg/>\n")
    assert out.read_text() == "<svg/>\n" and _mode(out) == mode


def test_replaced_file_keeps_its_mode(tmp_path: Path, umask) -> None:
    umask(0o077)
    out = tmp_path / "out.dot"
    out.write_text("old\n")
    out.chmod(0o640)
    write_whole(str(out), "new\n")
    assert out.read_text() == "new\n" and _mode(out) == 0o640
    assert sorted(tmp_path.iterdir()) == [out]


def test_write_whole_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for target in ("/dev/null", str(tmp_path), str(tmp_path / "link"), ""):
        with pytest.raises(InputError):
            write_whole(target, "y")
    assert (tmp_path / "real").read_text() == "x"
    with pytest.raises(InputError, match="not a file in an existing directory"):
        write_whole(str(tmp_path / "missing" / "out.svg"), "y")


# --- prove --smt2 -------------------------------------------------------------------------------------------


def _variant(path: Path, name: str) -> Path:
    text = (KERNELS / "2.6.38.toml").read_text()
    lines = [f'name = "{name}"' if line.startswith("name = ") else line for line in text.splitlines()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_smt2_empty_or_not_a_directory_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(KERNELS / "2.6.38.toml")
    assert _refused(capsys, "prove", model, "--smt2", "") == "xenpin: --smt2: empty directory name\n"
    file = tmp_path / "file"
    file.write_text("")
    assert (
        _refused(capsys, "prove", model, "--smt2", str(file)) == f"xenpin: --smt2: {file}: not a directory\n"
    )
    assert _refused(capsys, "prove", model, "--smt2", str(file / "sub")).startswith(
        "xenpin: --smt2: cannot create"
    )
    assert file.read_text() == ""


def test_smt2_names_come_from_the_file_paths_and_stay_inside(
    tmp_path: Path, umask, capsys: pytest.CaptureFixture[str]
) -> None:
    umask(0o022)
    escaping = _variant(tmp_path / "one" / "k.toml", "../../x")
    slashed = _variant(tmp_path / "two" / "k.toml", "a/b")  # the same stem as `escaping`, in another folder
    same_name = _variant(tmp_path / "two" / "j.toml", "a/b")  # the same name as `slashed`
    out = tmp_path / "deep" / "smt2"  # created, parents too
    args = ["prove", str(escaping), str(tmp_path / "two"), "--property", "spare_freed", "--jobs", "1"]
    assert main([*args, "--smt2", str(out)]) == 0
    err = capsys.readouterr().err
    files = sorted(out.iterdir())
    assert err == f"wrote {len(files)} SMT-LIB files to {out}\n"
    # nothing outside DIR: the tree holds the three variants and DIR's files only
    everything = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert everything == {escaping, slashed, same_name, *files}
    assert all(f.resolve().parent == out.resolve() and _mode(f) == 0o644 for f in files)
    obligations = [f.name for f in files if not f.name.startswith("lemma.")]
    stems = {name.split(".")[0] for name in obligations}
    assert len(stems) == 3 and "j" in stems and len(obligations) == 3 * 2  # 3 variant files x 2 calls
    assert {s for s in stems if s.startswith("k-")} == stems - {"j"}  # the two k.toml told apart
    headers = {f.read_text().splitlines()[0] for f in files if f.name in obligations}
    for variant in (escaping, slashed, same_name):
        assert any(f"({variant})" in line for line in headers)  # each file says which variant file it is
    # the same run again gives the same names
    assert main([*args, "--smt2", str(out)]) == 0
    capsys.readouterr()
    assert sorted(out.iterdir()) == files


def test_smt2_symlink_inside_dir_refused_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "smt2"
    out.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (out / "2.6.38.spare_freed.call1.smt2").symlink_to(outside)
    model = str(KERNELS / "2.6.38.toml")
    err = _refused(capsys, "prove", model, "--property", "spare_freed", "--jobs", "1", "--smt2", str(out))
    assert "a symlink" in err
    assert outside.read_text() == "keep\n" and [p.name for p in out.iterdir()] == [
        "2.6.38.spare_freed.call1.smt2"
    ]


def test_smt2_stems_are_safe_and_deterministic(tmp_path: Path) -> None:
    odd = _variant(tmp_path / "..odd name;$(x).toml", "n")
    lemma = _variant(tmp_path / "lemma.toml", "n")
    stems = smt2_stems([load_variant(odd), load_variant(lemma)])
    assert stems == {odd.resolve(): "odd_name_x_", lemma.resolve(): "variant-lemma"}
    a, b = _variant(tmp_path / "a" / "v.toml", "n"), _variant(tmp_path / "b" / "v.toml", "n")
    first = smt2_stems([load_variant(a), load_variant(b)])
    assert first == smt2_stems([load_variant(b), load_variant(a)])
    assert len(set(first.values())) == 2 and all(s.startswith("v-") and len(s) == 10 for s in first.values())


def test_one_file_for_two_outputs_or_over_the_model_refused(
    tmp_path: Path, no_solver: None, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "my.toml"
    model.write_text(Path(CX_MODEL).read_text())
    same = str(tmp_path / "same.out")
    err = _refused(capsys, "explore", str(model), "no_rw_alias", "--svg", same, "--html", same)
    assert err == f"xenpin: --html: {same} is also the file of --svg\n"
    err = _refused(capsys, "explore", str(model), "no_rw_alias", "--svg", str(model))
    assert "is an input of this command, not an output file" in err
    assert model.read_text() == Path(CX_MODEL).read_text() and not (tmp_path / "same.out").exists()


def test_a_full_or_closed_stdout_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    for redirect in ("> /dev/full", ">&-"):
        proc = subprocess.run(
            f"{sys.executable} -m xenpin list {redirect}",
            shell=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if redirect == ">&-":  # nothing to write to: print() writes nothing, the command ends as usual
            assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        else:
            assert proc.returncode == 2 and proc.stderr == "xenpin: stdout: No space left on device\n"


def test_a_folder_without_models_or_a_file_that_is_no_manifest_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    model = str(KERNELS / "2.6.39.toml")
    assert "no kernel variant files" in _refused(capsys, "boot", str(empty), model, "--mem", "1G")
    assert "nothing to prove" in _refused(capsys, "prove", str(empty), model, "--property", "buffer_fits")
    assert "no kernel variant files" in _refused(capsys, "list", str(empty))
    assert "no [[log]] entries" in _refused(capsys, "logs", model)


def test_an_unreadable_manifest_is_one_plain_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nope = tmp_path / "nope.toml"
    assert _refused(capsys, "logs", str(nope)) == f"xenpin: {nope}: cannot read: No such file or directory\n"
