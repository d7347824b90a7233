"""The harness itself: the contract, worker databases, and each isolation mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.migrations import current_revisions, head_revisions
from src.models import JournalEntry
from tests.contract import CONTRACT_KEYS, ContractError, TestContract, get_worker_database_url
from tests.harness import RebuildIsolation, SavepointIsolation, TruncateIsolation, isolation_from_environ
from tests.served_app import START_DEADLINE_SECONDS

BACKEND_DIR = Path(__file__).resolve().parents[1]
FULL_CONTRACT = {key: f"value-{key.lower()}" for key in CONTRACT_KEYS} | {
    "DATABASE_URL": "postgresql+psycopg://u:p%40ss@127.0.0.1:5432/finance_report_test_ns",
    "TEST_DATABASE_WORKER_PATTERN": "finance_report_test_ns__{worker}",
}


def test_worker_database_is_named_by_the_lifecycle_pattern() -> None:
    url = "postgresql+psycopg://u:p%40ss@127.0.0.1:5432/finance_report_test_ns"
    pattern = "finance_report_test_ns__{worker}"
    assert get_worker_database_url(url, "gw1", pattern) == (
        "postgresql+psycopg://u:p%40ss@127.0.0.1:5432/finance_report_test_ns__gw1"
    )
    assert get_worker_database_url(url, None, pattern) == url


def test_contract_reads_worker_and_prefixes() -> None:
    contract = TestContract.from_environ({**FULL_CONTRACT, "PYTEST_XDIST_WORKER": "gw3"})
    assert contract.database_url.endswith("/finance_report_test_ns__gw3")
    assert contract.redis_key_prefix == "value-redis_key_prefix:gw3"
    assert contract.s3_key_prefix == "gw3/"
    assert TestContract.from_environ(FULL_CONTRACT).worker == "main"


def test_missing_contract_names_the_keys_and_the_fix() -> None:
    with pytest.raises(ContractError, match=r"^run via `nox -s test`.*missing: DATABASE_URL"):
        TestContract.from_environ({"TEST_NAMESPACE": "x"})


@pytest.mark.e2e
def test_pytest_without_the_contract_stops_with_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in CONTRACT_KEYS}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("COV_CORE_SOURCE", None)
    # Not measured: this run stops in tests/conftest.py before any src/ code beyond the imports
    # every other test covers, and coverage would only add seconds to its start.
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:cov", "--co", "-q"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=START_DEADLINE_SECONDS,
    )
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: run via `nox -s test`")


def test_isolation_mode_comes_from_the_environment(engine: AsyncEngine) -> None:
    def mode(value: str | None) -> str:
        environ = {} if value is None else {"TEST_ISOLATION": value}
        return isolation_from_environ(engine, "postgresql+psycopg://x/y", environ).name

    assert [mode(None), mode("savepoint"), mode("truncate"), mode("rebuild")] == [
        "savepoint",
        "savepoint",
        "truncate",
        "rebuild",
    ]
    with pytest.raises(ContractError, match="TEST_ISOLATION='nightly' is not one of"):
        mode("nightly")


async def count_entries(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(select(func.count()).select_from(JournalEntry)) or 0


async def commit_an_entry(factory) -> None:
    async with factory() as session:
        await session.execute(
            text(
                "INSERT INTO journal_entries (date, description, amount, currency) "
                "VALUES ('2024-01-01', 'isolation probe', 1.00, 'USD')"
            )
        )
        await session.commit()


async def test_savepoint_isolation_undoes_committed_work(engine: AsyncEngine) -> None:
    async with SavepointIsolation(engine).isolate() as factory:
        await commit_an_entry(factory)
        async with factory() as session:
            assert await session.scalar(select(func.count()).select_from(JournalEntry)) == 1
        assert await count_entries(engine) == 0  # never visible outside the test's transaction
    assert await count_entries(engine) == 0


async def test_truncate_isolation_empties_tables_after_real_commits(engine: AsyncEngine) -> None:
    async with TruncateIsolation(engine).isolate() as factory:
        await commit_an_entry(factory)
        assert await count_entries(engine) == 1
    assert await count_entries(engine) == 0


async def test_rebuild_isolation_recreates_the_schema_at_head(engine: AsyncEngine, contract: TestContract) -> None:
    async with RebuildIsolation(engine, contract.database_url).isolate() as factory:
        await commit_an_entry(factory)
    assert await count_entries(engine) == 0
    async with engine.connect() as connection:
        assert await current_revisions(connection) == head_revisions()
