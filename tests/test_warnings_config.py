"""The pytest warning filters of both suites: every warning is an error, except the ones listed with why."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from noxlib.core.paths import REPO_ROOT

CONFIGS = [REPO_ROOT / "pyproject.toml", REPO_ROOT / "apps" / "backend" / "pyproject.toml"]
# What pytest's tmp_path cleanup warns when another pytest run removed the same garbage directory
# first (seen failing a nested run: two runs share /tmp/pytest-of-<user>).
RM_RF_RACE = (
    "(rm_rf) error removing /tmp/pytest-of-root/garbage-1/x\\n<class 'OSError'>: [Errno 39] Directory not empty"
)
PROBES = f'''
import warnings
import pytest

def test_a_lost_cleanup_race():
    warnings.warn(pytest.PytestWarning("{RM_RF_RACE}"))

def test_any_other_pytest_warning():
    warnings.warn(pytest.PytestWarning("something else"))
'''


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_a_lost_tmp_cleanup_race_is_not_a_failure_and_other_warnings_still_are(config, tmp_path):
    filters = tomllib.loads(config.read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nfilterwarnings =\n" + "".join(f"    {line}\n" for line in filters))
    (tmp_path / "test_probes.py").write_text(PROBES)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ini), "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "-rA",
         str(tmp_path / "test_probes.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "PASSED test_probes.py::test_a_lost_cleanup_race" in result.stdout, result.stdout
    assert "FAILED test_probes.py::test_any_other_pytest_warning" in result.stdout, result.stdout
