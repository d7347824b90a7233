"""Run by `nox -s test` inside the lifecycle tests: proves the environment a test run is handed.

Not collected by the suite itself (no test_ prefix); the lifecycle tests pass its path to
`nox -s test -- ...`. PROBE_READY_DIR gets a file once a worker is inside its test, and
PROBE_SLEEP keeps it there so a test can interrupt the run mid-way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
import redis


def _worker_database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"].replace("postgresql+psycopg", "postgresql"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    # The lifecycle names the worker clones and hands over the pattern; never re-derive it here.
    path = "/" + os.environ["TEST_DATABASE_WORKER_PATTERN"].replace("{worker}", worker) if worker else parts.path
    return urlunsplit(parts._replace(path=path))


def test_the_run_has_its_own_services():
    url = _worker_database_url()
    with psycopg.connect(url) as connection:
        name = connection.execute("SELECT current_database()").fetchone()[0]
        migrated = connection.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
    assert name.startswith("finance_report_test_" + os.environ["TEST_NAMESPACE"][:20])
    assert migrated, "the worker database must be a clone of the migrated template"

    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        region_name=os.environ["S3_REGION"],
    )
    s3.put_object(Bucket=os.environ["S3_BUCKET"], Key=f"probe/{name}", Body=b"x")

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.set(f"{os.environ['REDIS_KEY_PREFIX']}:probe:{name}", "1")

    ready_dir = os.environ.get("PROBE_READY_DIR")
    if ready_dir:
        Path(ready_dir, name).write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))


def test_second_probe_spreads_over_workers():
    assert os.environ["TEST_NAMESPACE"]
