"""The pytest plugin (`pytest --xenpin`): what it collects, the ids, `-k`, `-n`, pass/fail, reports, JUnit XML.

Each test runs an inner pytest with `pytester` (in-process unless it needs xdist's workers), on copies of the
shipped models in a temporary folder; only cheap obligations are proved.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import xenpin
from xenpin import shipped
from xenpin.symbolic.theorems import load_script

pytest_plugins = ["pytester"]

# the worktree whose xenpin this suite tests: inner pytests in subprocesses (xdist's workers) must import it too
SOURCE_ROOT = Path(xenpin.__file__).resolve().parents[1]


def _copy_models(pytester: pytest.Pytester) -> Path:
    """models/kernels, models/scenarios and proofs/ copied into the inner run's folder (the shipped layout)."""
    root = pytester.path
    shutil.copytree(shipped.KERNELS, root / "models" / "kernels")
    shutil.copytree(shipped.SCENARIOS, root / "models" / "scenarios")
    shutil.copytree(shipped.PROOFS, root / "proofs")
    return root


def _ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(("ERROR", "FAILED"))]


def test_without_the_option_nothing_is_collected(pytester: pytest.Pytester) -> None:
    _copy_models(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "models", "proofs")
    assert _ids(result) == []
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_paths_collect_every_scenario_variant_property_and_theorem(pytester: pytest.Pytester) -> None:
    _copy_models(pytester)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--xenpin", "--collect-only", "-q", "models", "proofs"
    )
    ids = _ids(result)
    variants = sorted(shipped.KERNELS.glob("*.toml"))
    scenarios = sorted(shipped.SCENARIOS.glob("*.toml"))
    from xenpin.linux.variant import PROPERTIES

    kernel_ids = [i for i in ids if i.startswith("models/kernels/")]
    assert len(kernel_ids) == len(variants) * len(PROPERTIES)
    assert "models/kernels/2.6.39-rc1.toml::2.6.39-rc1::no_rw_alias" in ids
    assert "models/scenarios/19-xsa148-xen41.toml::19-xsa148-xen41" in ids
    assert len([i for i in ids if i.startswith("models/scenarios/")]) == len(scenarios)
    assert "proofs/history_2011.py::2.6.39-rc1::no_rw_alias" in ids
    assert len([i for i in ids if i.startswith("proofs/history_2011.py::")]) == 13
    assert len(ids) == len(set(ids))
    assert not any(i.startswith("models/logs") for i in ids)  # manifest.toml is neither kind


def test_k_selects_by_variant_property_and_script(pytester: pytest.Pytester) -> None:
    _copy_models(pytester)
    args = ("-p", "no:cacheprovider", "--xenpin", "--collect-only", "-q", "models", "proofs")
    one = _ids(pytester.runpytest(*args, "-k", "history_2011.py::2.6.39-rc1::no_rw_alias"))
    assert one == ["proofs/history_2011.py::2.6.39-rc1::no_rw_alias"]
    both = _ids(pytester.runpytest(*args, "-k", "2.6.39-rc1::no_rw_alias"))
    assert sorted(both) == [
        "models/kernels/2.6.39-rc1.toml::2.6.39-rc1::no_rw_alias",
        "proofs/history_2011.py::2.6.39-rc1::no_rw_alias",
    ]
    scenarios = _ids(pytester.runpytest(*args, "-k", "scenario and xsa148"))
    assert sorted(scenarios) == [
        "models/scenarios/19-xsa148-xen41.toml::19-xsa148-xen41",
        "models/scenarios/20-xsa148-modern.toml::20-xsa148-modern",
    ]


def test_no_path_collects_the_shipped_models_and_proofs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--xenpin", "--collect-only", "-q")
    ids = _ids(result)
    assert "xenpin/models/kernels/2.6.39-rc1.toml::2.6.39-rc1::no_rw_alias" in ids
    assert "xenpin/models/scenarios/19-xsa148-xen41.toml::19-xsa148-xen41" in ids
    assert "xenpin/proofs/history_2011.py::2.6.39-rc1::no_rw_alias" in ids
    scripts = sum(len(load_script(p)) for p in shipped.proof_scripts())
    assert (
        len(ids)
        == 6 * len(list(shipped.KERNELS.glob("*.toml")))
        + len(list(shipped.SCENARIOS.glob("*.toml")))
        + scripts
    )


def _wrong_expectations(root: Path) -> None:
    """2.6.39-rc1 claiming no_rw_alias holds; scenario 01 claiming its first store is refused."""
    text = (shipped.KERNELS / "2.6.39-rc1.toml").read_text()
    assert 'no_rw_alias = "counterexample"' in text
    (root / "wrong").mkdir()
    (root / "wrong" / "rc1-claims-no-alias.toml").write_text(
        text.replace('no_rw_alias = "counterexample"', 'no_rw_alias = "proved"')
    )
    scenario = (shipped.SCENARIOS / "01-write-then-pin-l1.toml").read_text()
    (root / "wrong" / "store-refused.toml").write_text(
        scenario.replace('expect = "ok"', 'expect = "EINVAL"', 1)
    )
    shutil.copy(shipped.SCENARIOS / "05-ro-map-of-table.toml", root / "wrong" / "right.toml")


def test_a_wrong_expectation_fails_with_the_counterexample_and_its_replay(pytester: pytest.Pytester) -> None:
    _wrong_expectations(pytester.path)
    xml = pytester.path / "xenpin.xml"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--xenpin", "wrong", "-k", "no_rw_alias or spare_freed or scenario",
        f"--junitxml={xml}",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=2)
    text = result.stdout.str()
    # the counterexample in domain terms, its replayed boot, and how to replay it
    assert "2.6.39-rc1 no_rw_alias: counterexample, expected proved" in text
    assert "smallest: domU of 0x4001f000 bytes, init_memory_mapping call 0, pfn 0x40000" in text
    assert "replay: xen-rejected in init_memory_mapping call 0" in text
    assert "(XEN) mm.c:2985:d1 Error while pinning mfn fbffff" in text
    assert "replay it: xenpin boot " in text and "rc1-claims-no-alias.toml --mem 0x4001f000" in text
    # the scenario's mismatched step, and only it
    assert re.search(
        r"step 1 \(\S+store-refused.toml:\d+\): write mfn 0x3\[0\] <- mfn 0x4 P\|RW: got ok, expected EINVAL",
        text,
    )
    assert "step 2 " not in text
    # JUnit XML from pytest itself: one testcase per item, the failures carrying the report
    cases = ET.parse(xml).getroot().iter("testcase")
    by_name = {c.get("name"): c for c in cases}
    assert sorted(by_name) == ["no_rw_alias", "right", "spare_freed", "store-refused"]
    failure = by_name["no_rw_alias"].find("failure")
    assert failure is not None and "Bad type (saw 7400000000000001" in (failure.text or "")
    assert by_name["spare_freed"].find("failure") is None and by_name["right"].find("failure") is None


def test_an_unknown_verdict_fails_unless_expected(pytester: pytest.Pytester) -> None:
    shutil.copy(shipped.KERNELS / "2.6.37.toml", pytester.path / "v.toml")
    args = ("-p", "no:cacheprovider", "--xenpin", "v.toml", "-k", "spare_freed", "--xenpin-rlimit", "1")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    assert "spare_freed: unknown, expected proved" in result.stdout.str()
    text = (pytester.path / "v.toml").read_text().replace('spare_freed = "proved"', 'spare_freed = "unknown"')
    (pytester.path / "v.toml").write_text(text)
    pytester.runpytest(*args).assert_outcomes(passed=1)


def test_a_bad_model_file_is_a_collection_error_with_the_loaders_line(pytester: pytest.Pytester) -> None:
    text = (shipped.KERNELS / "2.6.37.toml").read_text().replace('platform = "xen"', 'platform = "arm"')
    (pytester.path / "arm.toml").write_text(text)
    (pytester.path / "scn.toml").write_text('name = "x"\nrules = "xen-9"\nframes = 4\n')
    result = pytester.runpytest("-p", "no:cacheprovider", "--xenpin", "arm.toml", "scn.toml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*arm.toml:*: key 'platform': must be one of xen, native, not 'arm'", "*scn.toml:2: *rules*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_proof_scripts_are_not_imported_as_test_modules(pytester: pytest.Pytester) -> None:
    _copy_models(pytester)
    # a proof script with a function pytest would take for a test if it imported the script as a module
    script = (pytester.path / "proofs" / "history_2011.py").read_text()
    (pytester.path / "proofs" / "mine.py").write_text(
        script.replace(
            "THEOREMS = [", "def test_not_a_test():\n    raise AssertionError\n\n\nTHEOREMS = [", 1
        )
    )
    (pytester.path / "proofs" / "test_user.py").write_text("def test_user_own():\n    assert True\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--xenpin", "--collect-only", "-q", "proofs/mine.py", "proofs/test_user.py"
    )
    ids = _ids(result)
    assert "proofs/test_user.py::test_user_own" in ids
    assert "proofs/mine.py::2.6.37::no_rw_alias" in ids
    assert not any("test_not_a_test" in i for i in ids)


def test_items_distribute_over_xdist_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    _wrong_expectations(pytester.path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SOURCE_ROOT), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--xenpin", "-n", "2", "wrong", "-k", "scenario",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    assert "got ok, expected EINVAL" in result.stdout.str()


def test_other_toml_and_python_files_are_left_alone(pytester: pytest.Pytester) -> None:
    """A linter's `[[rules]]`, a release.toml and a module that only mentions THEOREMS are not xenpin's."""
    shutil.copy(shipped.KERNELS / "2.6.37.toml", pytester.path / "v.toml")
    (pytester.path / "gitleaks.toml").write_text('[[rules]]\nid = "aws"\nregex = "AKIA"\n')
    (pytester.path / "release.toml").write_text('release = "1.2"\ncommit = "abc"\n[expect]\nx = 1\n')
    (pytester.path / "notes.py").write_text(
        '"""How to write proofs:\nTHEOREMS = [...]\n"""\nraise SystemExit(1)\n'
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--xenpin", "--collect-only", "-q", ".")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    ids = _ids(result)
    assert len(ids) == 6 and all(i.startswith("v.toml::2.6.37::") for i in ids), ids


def test_rlimit_takes_the_clis_notation_and_the_report_repeats_it(pytester: pytest.Pytester) -> None:
    shutil.copy(shipped.KERNELS / "2.6.37.toml", pytester.path / "v.toml")
    base = ("-p", "no:cacheprovider", "--xenpin", "v.toml", "-k", "buffer_fits")
    pytester.runpytest(*base, "--xenpin-rlimit", "4e8").assert_outcomes(passed=1)
    bad = pytester.runpytest(*base, "--xenpin-rlimit", "0")
    assert (
        bad.ret == pytest.ExitCode.USAGE_ERROR and "--xenpin-rlimit: 0 is not between 1" in bad.stderr.str()
    )
    failed = pytester.runpytest(*base, "--xenpin-rlimit", "1")
    failed.assert_outcomes(failed=1)
    assert "--property buffer_fits --rlimit 1" in failed.stdout.str()


def test_a_proof_script_imports_its_sibling_helper(pytester: pytest.Pytester) -> None:
    """As under `python script.py`, a script's folder is importable while it loads (`from _common import K`)."""
    proofs = pytester.path / "proofs"
    proofs.mkdir()
    (proofs / "_common.py").write_text(f"K = {str(shipped.KERNELS / '2.6.37.toml')!r}\n")
    (proofs / "uses_helper.py").write_text(
        "from _common import K\nfrom xenpin.symbolic.theorems import Theorem\n"
        "THEOREMS = [Theorem(K, 'buffer_fits')]\n"
    )
    pytester.runpytest("-p", "no:cacheprovider", "--xenpin", "proofs").assert_outcomes(passed=1)
    assert [th.prop for th in load_script(proofs / "uses_helper.py")] == ["buffer_fits"]
