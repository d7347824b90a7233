"""Test shards, the backend's and the suite's own: pytest-split over recorded durations.

Each set of shards must run every collected test exactly once and be balanced by the recorded
time; pytest-split's algorithm is its own (and tested there), what is ours is that the sessions
hand it the right collection, the right durations file and every group.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from noxlib.names.run_contract import RunContract
from noxlib.services import ServiceUrls
from noxlib.sessions import backend_tests, suite_tests
from tests.runs import ENVDIR

# Names only: collecting connects to nothing, but the backend's conftest checks the contract first.
NOWHERE = ServiceUrls(
    postgres_host="127.0.0.1", postgres_port=1, postgres_user="nobody", postgres_password="unused",
    redis_url="redis://127.0.0.1:1/0", s3_endpoint="http://127.0.0.1:1", s3_access_key="unused",
    s3_secret_key="unused",
)  # fmt: skip


def collected(argv: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def assert_partition(whole: list[str], shards: list[list[str]], durations: Path) -> None:
    flat = [node for shard in shards for node in shard]
    assert sorted(flat) == sorted(whole)
    assert len(set(flat)) == len(flat)
    assert all(shards), "every shard has tests"
    # Balanced by the recorded durations: no shard holds half the recorded time of the whole.
    # Recorded under `--dist loadgroup`, a grouped test's id ends in `@group`; collected here without.
    recorded = {re.sub(r"@[\w-]+$", "", node): seconds for node, seconds in json.loads(durations.read_text()).items()}
    times = [sum(recorded.get(node, 0.0) for node in shard) for shard in shards]
    assert max(times) < sum(times) / 2, times


@pytest.mark.journey  # it collects the backend's own tests, which import the app
@pytest.mark.journey_selection
def test_the_backend_shards_run_each_collected_test_exactly_once():
    """The test venv's pytest (as `nox -s test-3.12(shard=k/4)` runs it), with the shards' own arguments."""
    pytest_bin = Path(ENVDIR) / "test" / "bin" / "pytest"
    if not pytest_bin.exists():
        pytest.skip(f"{pytest_bin} is prepared by the journeys session; run the suite through it")
    env = {key: value for key, value in os.environ.items() if key not in backend_tests.INHERITED_PYTEST_VARIABLES}
    env.update(RunContract.for_run("test", NOWHERE, "collect_shards").to_env())

    def collect(*extra: str) -> list[str]:
        argv = [str(pytest_bin), "--collect-only", "-q", "--no-cov", "-p", "no:cacheprovider", *extra]
        return collected(argv, backend_tests.BACKEND_DIR, env)

    total = backend_tests.SHARD_COUNT
    # Five collections that each import the app: side by side, not one after another.
    with ThreadPoolExecutor(max_workers=total + 1) as pool:
        whole_run = pool.submit(collect)
        shard_runs = [pool.submit(collect, *backend_tests.shard_args(f"{k}/{total}")) for k in range(1, total + 1)]
        whole, shards = whole_run.result(), [run.result() for run in shard_runs]
    assert len(whole) > 50
    assert_partition(whole, shards, backend_tests.DURATIONS_FILE)


def test_the_suite_s_own_shards_run_each_of_its_tests_exactly_once():
    """GitHub's noxlib_test_shard jobs: pytest-split over the recorded durations, every test in one shard."""
    # Its own state directory: the inherited one is this run's, which a nested pytest would remove.
    env = {key: value for key, value in os.environ.items() if key != "FR_CACHE_DIR"}

    def collect(*extra: str) -> list[str]:
        argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                *suite_tests.NOXLIB_TESTS, *extra]  # fmt: skip
        return collected(argv, suite_tests.REPO_ROOT, env)

    total = suite_tests.SHARD_COUNT
    with ThreadPoolExecutor(max_workers=total + 1) as pool:
        whole_run = pool.submit(collect)
        shard_runs = [
            pool.submit(collect, *suite_tests.pytest_args([], ["-n", "0"], f"{k}/{total}")) for k in range(1, total + 1)
        ]
        whole, shards = whole_run.result(), [run.result() for run in shard_runs]
    assert_partition(whole, shards, suite_tests.DURATIONS_FILE)


def test_durations_are_replaced_by_a_green_recording_only(tmp_path: Path):
    """A red or cut-short run would record a part of the suite: `--clean-durations` would drop the rest."""
    durations = tmp_path / "test_durations.json"
    durations.write_text('{"test_gone.py::test_gone": 1.0}')
    (tmp_path / "test_one.py").write_text("import os\n\ndef test_one():\n    assert os.environ['OUTCOME'] == 'green'\n")
    env = {key: value for key, value in os.environ.items() if key not in backend_tests.INHERITED_PYTEST_VARIABLES}

    def record(outcome: str) -> None:
        with backend_tests.recording_durations(durations) as args:
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args]
            subprocess.run(argv, cwd=tmp_path, env=dict(env, OUTCOME=outcome), capture_output=True, check=True)

    with pytest.raises(subprocess.CalledProcessError):
        record("red")
    assert json.loads(durations.read_text()) == {"test_gone.py::test_gone": 1.0}
    record("green")
    assert list(json.loads(durations.read_text())) == ["test_one.py::test_one"]  # the gone test dropped
    assert not list(suite_tests.NOX_DIR.glob(f"durations-{tmp_path.name}-*")), "no scratch file is left"
