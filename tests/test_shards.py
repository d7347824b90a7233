"""Test shards: balanced, deterministic, and together exactly the unsharded collection."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noxlib.backend_tests import assign_shards, parse_shard, read_durations, shard_node_ids
from noxlib.errors import UserError
from tests.runs import run_nox

node_ids = st.lists(st.from_regex(r"tests/test_[a-z]{1,6}\.py::test_[a-z0-9_]{1,10}", fullmatch=True), unique=True)


@settings(max_examples=200, deadline=None)
@given(node_ids, st.integers(min_value=1, max_value=8), st.randoms(use_true_random=False))
def test_shards_partition_the_collection(ids, total, rng):
    durations = {node: rng.random() * 5 for node in ids if rng.random() < 0.7}
    shards = assign_shards(ids, durations, total)
    flat = [node for shard in shards for node in shard]
    assert sorted(flat) == sorted(ids)
    assert len(flat) == len(set(flat))
    assert assign_shards(list(ids), dict(durations), total) == shards  # deterministic


def test_shards_are_balanced_by_recorded_time():
    ids = [f"tests/test_a.py::test_{index}" for index in range(8)]
    durations = {ids[0]: 10.0, ids[1]: 10.0, **{node: 1.0 for node in ids[2:]}}
    loads = [sum(durations[n] for n in shard) for shard in assign_shards(ids, durations, 2)]
    assert loads == [13.0, 13.0]


@pytest.mark.parametrize("bad", ["0/4", "5/4", "two/4", "1-4"])
def test_bad_shard_is_a_clear_error(bad):
    with pytest.raises(UserError, match="must look like 2/4"):
        parse_shard(bad)


@pytest.mark.slow
@pytest.mark.journey  # it collects the backend's own tests, which import the app
def test_real_collection_is_split_exactly_once(services):
    """Collect the backend suite for real (inside a lifecycle run) and split it with the recorded durations."""
    result = run_nox(
        "-s", "test", "--", "--collect-only", "-q", "--no-cov", "-p", "no:xdist",
        BRANCH_NAME=f"collect-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    collected = [line for line in result.stdout.splitlines() if re.match(r"^tests/\S+::", line)]
    assert len(collected) > 50
    durations = read_durations()
    assert durations, "apps/backend/test_durations.json is missing: run `nox -s durations`"
    shards = [shard_node_ids(collected, durations, f"{index}/4") for index in range(1, 5)]
    flat = [node for shard in shards for node in shard]
    assert sorted(flat) == sorted(collected)
    assert len(set(flat)) == len(flat)
    assert all(shards), "every shard has tests"


def test_the_suite_s_own_shards_run_each_of_its_tests_exactly_once():
    """GitHub's noxlib_test_shard jobs: pytest-split over the recorded durations, every test in one shard."""
    import os
    import subprocess
    import sys

    from noxlib import suite_tests

    def collected(*extra: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             *suite_tests.NOXLIB_TESTS, *extra],
            cwd=suite_tests.REPO_ROOT, capture_output=True, text=True, check=False,
            # Its own state directory: the inherited one is this run's, which it would remove.
            env={key: value for key, value in os.environ.items() if key != "FR_CACHE_DIR"},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return [line for line in result.stdout.splitlines() if "::" in line]

    whole = collected()
    total = suite_tests.SHARD_COUNT
    shards = [collected(*suite_tests.pytest_args([], ["-n", "0"], f"{k}/{total}")) for k in range(1, total + 1)]
    flat = [node for shard in shards for node in shard]
    assert sorted(flat) == sorted(whole)
    assert all(shards), "every shard has tests"
    # Balanced by the recorded durations: no shard holds more than half the suite's recorded time.
    recorded = json.loads(suite_tests.DURATIONS_FILE.read_text())
    times = [sum(recorded.get(node, 0.0) for node in shard) for shard in shards]
    assert max(times) < sum(times) / 2, times
