"""The orphan sweep: objects of uploads that never committed are reclaimed, nothing else."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from src.models import Statement
from src.orphans import main, sweep
from src.resources import create_resources
from tests.contract import TestContract
from tests.dead_endpoints import closed_port
from tests.harness import WorkerBucket

pytestmark = pytest.mark.integration
NO_GRACE = dt.timedelta(0)


async def test_sweep_removes_only_old_unreferenced_objects(
    contract: TestContract, engine: AsyncEngine, bucket: WorkerBucket
) -> None:
    resources = create_resources(contract.settings())
    storage = resources.storage
    orphan_sha, kept_sha = (hashlib.sha256(name).hexdigest() for name in (b"orphan", b"kept"))
    orphan_key, kept_key = storage.statement_key(orphan_sha), storage.statement_key(kept_sha)
    try:
        await storage.put(orphan_key, b"never committed")
        await storage.put(kept_key, b"committed")
        # Committed for real: the sweep reads with its own connections, outside any test transaction.
        async with engine.begin() as connection:
            await connection.execute(
                insert(Statement).values(
                    filename="kept.csv", object_key=kept_key, size_bytes=9, sha256=kept_sha, line_count=0
                )
            )

        assert await sweep(resources, dt.timedelta(minutes=60), delete=True) == [], "fresh objects are in grace"
        assert await sweep(resources, NO_GRACE, delete=False) == [f"orphan {orphan_key}"]
        assert sorted(bucket.keys()) == sorted([orphan_key, kept_key]), "listing deletes nothing"
        assert await sweep(resources, NO_GRACE, delete=True) == [f"deleted {orphan_key}"]
        assert bucket.keys() == [kept_key]
    finally:
        async with engine.begin() as connection:
            await connection.execute(delete(Statement).where(Statement.sha256 == kept_sha))
        await resources.aclose()


def test_cli_says_in_one_line_when_storage_is_down(
    contract: TestContract, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = contract.environ(S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert main(["--delete", "--min-age-minutes", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: orphan sweep could not reach its services: ")
    assert captured.err.count("\n") == 1


def test_cli_lists_and_summarises(
    contract: TestContract, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bucket: WorkerBucket
) -> None:
    for key, value in contract.environ().items():
        monkeypatch.setenv(key, value)
    assert main([]) == 0
    assert capsys.readouterr().out == "0 orphan(s)\n"
