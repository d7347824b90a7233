"""The app as a deploy runs it: a real uvicorn process on loopback, started once per worker.

Starting uvicorn costs a process and the app's imports (seconds under coverage), so the tests
whose point is a served app — health over real HTTP, a large upload beside health probes — share
one (`served_app` in conftest.py, its tests in one xdist group). A test about start-up itself
(refusing a dead database) still starts its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.contract import TestContract
from tests.dead_endpoints import free_port

BACKEND_DIR = Path(__file__).resolve().parents[1]
# Generous: on a loaded machine, importing the app under coverage alone can take tens of seconds
# (a boot gate run has taken over 60 s beside 6 CPU hogs). Every test that runs a Python process
# bounds it by this: a guard against a hang, never a verdict on speed.
START_DEADLINE_SECONDS = 300
# Room for the upload bench's large statement (16 MiB), above the app's default limit.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
GIT_COMMIT_SHA = "e2e-sha"
XDIST_GROUP = pytest.mark.xdist_group("served_app")


@dataclass(frozen=True)
class ServedApp:
    base_url: str
    git_sha: str
    max_upload_bytes: int
    log: Path


def start_uvicorn(
    contract: TestContract, port: int, output: IO[str] | int = subprocess.PIPE, **env: str
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "src.main:create_app", "--host", "127.0.0.1"]
    return subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=BACKEND_DIR,
        env=contract.environ(**env),
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_serving(process: subprocess.Popen[str], url: str, log: Path | None = None) -> httpx.Response:
    """Poll until the server answers or exits; bounded, so a broken server fails the test."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text() if log else (process.stdout.read() if process.stdout else "")
            pytest.fail(f"uvicorn exited with {process.returncode}:\n{output}")
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"uvicorn did not start serving {url} within {START_DEADLINE_SECONDS} s")


@contextmanager
def serve(contract: TestContract, log_dir: Path) -> Iterator[ServedApp]:
    """A uvicorn serving this worker's services until the block ends (its log in `log_dir`:
    a pipe nobody reads would fill with access-log lines and stall the server)."""
    port = free_port()
    log = log_dir / "uvicorn.log"
    with log.open("w") as output:
        process = start_uvicorn(
            contract, port, output, GIT_COMMIT_SHA=GIT_COMMIT_SHA, MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES)
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_serving(process, f"{base_url}/api/health", log)
            yield ServedApp(base_url, GIT_COMMIT_SHA, MAX_UPLOAD_BYTES, log)
        finally:
            process.terminate()
            process.wait(timeout=30)
