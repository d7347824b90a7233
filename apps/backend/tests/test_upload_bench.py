"""A large upload must not freeze the server: health keeps answering while it is imported.

The proof is an order of events, not a count against the clock: the test holds a lock the
upload's COPY needs, waits until PostgreSQL shows the upload waiting for it (the server is then
inside the import: file parsed, object stored, statement row inserted, its transaction open), asks
/api/health, and only then lets the upload go. A server whose event loop the import blocked could
not answer; a loaded machine only makes every step slower, never the order different.

`measure_large_upload` is also the `bench` figure: the time a statement of N lines takes to
upload, and the worst /api/health latency seen while it did. Run it on its own, at the size of
the original report (200 000 lines, ~5 MB), with the figures printed:

    UPLOAD_BENCH_LINES=200000 uvx nox -s test -- tests/test_upload_bench.py -n 0 --no-cov -s
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.models import Statement
from tests.harness import WorkerBucket, waiting_lock_requests_sql
from tests.served_app import XDIST_GROUP, ServedApp

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]
DEFAULT_LINES = 40_000
HEALTH_INTERVAL_SECONDS = 0.05
# Probes of the idle server, for the figure line's "idle before" (what this machine manages anyway).
IDLE_PROBES = 10
# SHARE conflicts with the ROW EXCLUSIVE lock COPY takes, and with nothing a health check reads.
HOLD_COPY_SQL = "LOCK TABLE statement_lines IN SHARE MODE"
# Lock requests on statement_lines in this database that are waiting, not granted.
WAITING_FOR_COPY_SQL = waiting_lock_requests_sql("statement_lines")
# How often to look for the waiting upload; only how soon the test notices, never a verdict.
LOCK_POLL_SECONDS = 0.005


def large_statement(line_count: int) -> bytes:
    """~25 bytes a line, like the report's 200 000-line, 5 MB file."""
    rows = (
        f"2024-{month:02d}-{day:02d},p{number},{number % 997}.{number % 100:02d}"
        for number, month, day in ((number, number % 12 + 1, number % 28 + 1) for number in range(line_count))
    )
    return ("date,description,amount\n" + "\n".join(rows) + "\n").encode()


@dataclass
class UploadFigures:
    lines: int
    size_bytes: int
    upload_seconds: float = 0.0
    # Part of upload_seconds the test held the upload on its lock (not the server's time).
    held_seconds: float = 0.0
    status: int = 0
    body_bytes: int = 0
    body: dict = field(default_factory=dict)
    # (seconds since the upload started when the answer came, latency, status) per health probe
    health: list[tuple[float, float, int]] = field(default_factory=list)
    # Latencies of the same probe on the idle server just before: what this machine manages anyway.
    idle_health: list[float] = field(default_factory=list)

    def during_upload(self) -> list[tuple[float, float, int]]:
        return [probe for probe in self.health if probe[0] <= self.upload_seconds]

    def summary(self) -> str:
        during = self.during_upload()
        worst_at, worst, _ = max(during, key=lambda probe: probe[1], default=(float("nan"), float("nan"), 0))
        return (
            f"upload of {self.lines} lines ({self.size_bytes / 1e6:.1f} MB): "
            f"{self.upload_seconds - self.held_seconds:.1f} s, "
            f"HTTP {self.status}, response {self.body_bytes} bytes; /api/health during it: "
            f"{len(during)} answers, worst {worst * 1000:.0f} ms (answered at {worst_at:.1f} s); "
            f"idle before: worst {max(self.idle_health, default=float('nan')) * 1000:.0f} ms "
            f"of {len(self.idle_health)}"
        )


def measure_large_upload(base_url: str, line_count: int) -> UploadFigures:
    """Upload a generated statement of `line_count` lines while polling /api/health."""
    content = large_statement(line_count)
    figures = UploadFigures(lines=line_count, size_bytes=len(content))
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for _ in range(IDLE_PROBES):
            sent = time.perf_counter()
            client.get("/api/health")
            figures.idle_health.append(time.perf_counter() - sent)
            time.sleep(HEALTH_INTERVAL_SECONDS)
    started = time.perf_counter()
    done = threading.Event()

    def poll_health() -> None:
        with httpx.Client(base_url=base_url, timeout=120) as client:
            while not done.is_set():
                sent = time.perf_counter()
                status = client.get("/api/health").status_code
                answered = time.perf_counter()
                figures.health.append((answered - started, answered - sent, status))
                done.wait(HEALTH_INTERVAL_SECONDS)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    try:
        with httpx.Client(base_url=base_url, timeout=600) as client:
            response = client.post("/api/statements", files={"file": ("large.csv", content, "text/csv")})
        figures.upload_seconds = time.perf_counter() - started
        figures.status = response.status_code
        figures.body_bytes = len(response.content)
        figures.body = response.json()
    finally:
        done.set()
        poller.join(timeout=120)
    return figures


async def wait_until_the_upload_waits_for_copy(engine: AsyncEngine, upload: asyncio.Future[UploadFigures]) -> None:
    """Return once the server's COPY waits for the test's lock; fail if the upload ends first."""
    async with engine.connect() as connection:
        while not await connection.scalar(text(WAITING_FOR_COPY_SQL)):
            if upload.done():
                figures = upload.result()
                pytest.fail(f"the upload answered {figures.status} without reaching COPY: {figures.body}")
            await connection.rollback()  # a fresh snapshot of pg_locks for the next look
            await asyncio.sleep(LOCK_POLL_SECONDS)


@XDIST_GROUP
async def test_a_large_upload_leaves_health_answering(
    served_app: ServedApp, engine: AsyncEngine, bucket: WorkerBucket
) -> None:
    line_count = int(os.environ.get("UPLOAD_BENCH_LINES") or DEFAULT_LINES)
    upload: asyncio.Future[UploadFigures] | None = None
    try:
        async with engine.connect() as holder:
            await holder.execute(text(HOLD_COPY_SQL))
            upload = asyncio.ensure_future(asyncio.to_thread(measure_large_upload, served_app.base_url, line_count))
            await wait_until_the_upload_waits_for_copy(engine, upload)
            held_from = time.perf_counter()
            async with httpx.AsyncClient(base_url=served_app.base_url, timeout=120) as client:
                health = await client.get("/api/health")
            upload_still_open = not upload.done()
            await holder.rollback()  # lets the upload's COPY go
            held_seconds = time.perf_counter() - held_from
        figures = await upload
        figures.held_seconds = held_seconds
    finally:
        if upload is not None:
            await asyncio.wait([upload])  # its transaction ends before its row is deleted
        async with engine.begin() as connection:
            sha256 = hashlib.sha256(large_statement(line_count)).hexdigest()
            await connection.execute(delete(Statement).where(Statement.sha256 == sha256))
    print(f"\nbench: {figures.summary()}")
    # Issued while the upload waited inside its import, answered before the upload could answer.
    assert health.status_code == 200, health.text
    assert upload_still_open, "the upload answered while the test still held its COPY"
    assert figures.status == 201, figures.body
    assert figures.body["line_count"] == line_count
    assert "lines" not in figures.body, "the 201 body must count the lines, not echo them"
    assert all(status == 200 for _, _, status in figures.during_upload()), figures.summary()
