"""The orphan sweep: objects of uploads that never committed are reclaimed, nothing else."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import httpx
import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.models import Statement
from src.orphans import main, sweep
from src.resources import create_resources
from tests.contract import TestContract
from tests.dead_endpoints import closed_port
from tests.harness import WorkerBucket, waiting_lock_requests_sql
from tests.served_app import XDIST_GROUP, ServedApp
from tests.statement_files import statement_csv, upload

pytestmark = pytest.mark.integration
NO_GRACE = dt.timedelta(0)
# SHARE conflicts with the ROW EXCLUSIVE lock an INSERT takes, and with nothing the sweep reads.
HOLD_INSERTS_SQL = "LOCK TABLE statements IN SHARE MODE"
# Lock requests on statements in this database that are waiting, not granted: uploads whose
# object is stored and whose row waits for the test's lock.
WAITING_TO_INSERT_SQL = waiting_lock_requests_sql("statements")
CONCURRENT_UPLOADS = 6


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
    assert main(["--delete"]) == 1
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


@pytest.mark.parametrize("minutes", ["0", "-5", "12", "nan", "inf"])
def test_cli_refuses_a_grace_shorter_than_an_upload_in_one_line(
    contract: TestContract,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bucket: WorkerBucket,
    minutes: str,
) -> None:
    """`--min-age-minutes 0` deleted the objects of 6 uploads that committed 201 while it swept."""
    for key, value in contract.environ().items():
        monkeypatch.setenv(key, value)
    # The floor of the shipped configuration: it grows with the S3 timeouts, which the contract's
    # patient HEALTH_CHECK_TIMEOUT would lengthen (nothing here waits on a timeout).
    monkeypatch.delenv("HEALTH_CHECK_TIMEOUT")
    orphan = f"{bucket.prefix}statements/{hashlib.sha256(b'young orphan').hexdigest()}.csv"
    bucket.client.put_object(Bucket=bucket.bucket, Key=orphan, Body=b"young orphan")
    assert main(["--delete", "--min-age-minutes", minutes]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: --min-age-minutes {float(minutes):g} is refused: the grace must be at least 13 minutes, "
        "the longest an upload can take (a younger object may be one in flight)\n"
    )
    assert bucket.keys() == [orphan]
    # At the floor the sweep runs (the fresh orphan is in its grace, so it stays).
    assert main(["--delete", "--min-age-minutes", "13"]) == 0
    assert capsys.readouterr().out == "0 orphan(s) handled\n"


async def wait_for_uploads_at_their_insert(engine: AsyncEngine, uploads: list[asyncio.Future[httpx.Response]]) -> None:
    """Return once every upload has stored its object and waits to insert its row."""
    async with engine.connect() as connection:
        while await connection.scalar(text(WAITING_TO_INSERT_SQL)) < len(uploads):
            if finished := [upload.result() for upload in uploads if upload.done()]:
                pytest.fail(f"an upload answered {finished[0].status_code} before its INSERT: {finished[0].text}")
            await connection.rollback()  # a fresh snapshot of pg_locks for the next look
            await asyncio.sleep(0.005)


@XDIST_GROUP
async def test_a_sweep_with_no_grace_leaves_the_objects_of_uploads_in_flight(
    contract: TestContract, served_app: ServedApp, engine: AsyncEngine, bucket: WorkerBucket
) -> None:
    """The sweep read "no row", the upload committed its row, the sweep deleted the object: 201
    over a hole. Here every upload has stored its object and waits (on the test's lock) to insert
    its row while the sweep runs; afterwards every committed row must still have its object."""
    files = [statement_csv([("2024-05-01", f"in flight {index}", "-1.00")]) for index in range(CONCURRENT_UPLOADS)]
    shas = [hashlib.sha256(content).hexdigest() for content in files]
    resources = create_resources(contract.settings())
    uploads: list[asyncio.Future[httpx.Response]] = []
    try:
        async with httpx.AsyncClient(base_url=served_app.base_url, timeout=120) as client:
            async with engine.connect() as holder:
                await holder.execute(text(HOLD_INSERTS_SQL))
                uploads = [
                    asyncio.ensure_future(client.post("/api/statements", **upload(content, f"{index}.csv")))
                    for index, content in enumerate(files)
                ]
                await wait_for_uploads_at_their_insert(engine, uploads)
                assert len(bucket.keys()) == CONCURRENT_UPLOADS, "each upload stores its object before its row"
                swept = await sweep(resources, NO_GRACE, delete=True)
                await holder.rollback()  # the uploads insert and commit their rows now
            responses = await asyncio.gather(*uploads)
        assert [response.status_code for response in responses] == [201] * CONCURRENT_UPLOADS
        stored = bucket.keys()
        assert sorted(swept) == sorted(f"kept {key} (an upload is storing it)" for key in stored)
        async with engine.connect() as connection:
            keys = set(await connection.scalars(select(Statement.object_key).where(Statement.sha256.in_(shas))))
        assert len(keys) == CONCURRENT_UPLOADS
        assert set(bucket.keys()) == keys, "a committed row points at a deleted object"
        # Once committed, they are no orphans; only a real one is swept.
        real_orphan = resources.storage.statement_key(hashlib.sha256(b"never committed").hexdigest())
        await resources.storage.put(real_orphan, b"never committed")
        assert await sweep(resources, NO_GRACE, delete=True) == [f"deleted {real_orphan}"]
        assert set(bucket.keys()) == keys
    finally:
        if uploads:
            await asyncio.wait(uploads)  # their transactions end before their rows are deleted
        async with engine.begin() as connection:
            await connection.execute(delete(Statement).where(Statement.sha256.in_(shas)))
        await resources.aclose()
