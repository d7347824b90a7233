"""Run by `nox -s test` inside the fault tests: holds its run open until the test says go.

Not collected by the suite itself (no test_ prefix). Like tests/lifecycle/probe_run.py it uses
everything the run was handed, then writes a file to PROBE_READY_DIR and waits for a `go` file
there instead of sleeping a fixed time: the fault test injects its fault in between, at a moment
it knows, and opens the gate. After the gate the database must still answer, so a fault that
broke it shows up as an ordinary pytest failure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
import redis

GATE_TIMEOUT = 300.0


def _worker_database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"].replace("postgresql+psycopg", "postgresql"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    # The lifecycle names the worker clones and hands over the pattern; never re-derive it here.
    path = "/" + os.environ["TEST_DATABASE_WORKER_PATTERN"].replace("{worker}", worker) if worker else parts.path
    return urlunsplit(parts._replace(path=path))


def _wait_for_gate(ready_dir: Path) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT
    while not (ready_dir / "go").exists():
        assert time.monotonic() < deadline, "the fault test never opened the gate"
        time.sleep(0.05)


def test_holds_the_run_open_until_the_gate_opens():
    url = _worker_database_url()
    with psycopg.connect(url) as connection:
        name = connection.execute("SELECT current_database()").fetchone()[0]
    boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        region_name=os.environ["S3_REGION"],
    ).put_object(Bucket=os.environ["S3_BUCKET"], Key=f"probe/{name}", Body=b"x")
    redis.Redis.from_url(os.environ["REDIS_URL"]).set(f"{os.environ['REDIS_KEY_PREFIX']}:probe:{name}", "1")

    ready_dir = Path(os.environ["PROBE_READY_DIR"])
    (ready_dir / name).write_text(str(os.getpid()))
    _wait_for_gate(ready_dir)

    with psycopg.connect(url, connect_timeout=5) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
