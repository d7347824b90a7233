"""The app's own start-up gate, in-process and as a real uvicorn process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from src.config import get_settings
from src.main import BootGateError, create_app
from tests.dead_endpoints import closed_port
from tests.harness import TestContract

pytestmark = pytest.mark.integration
BACKEND_DIR = Path(__file__).resolve().parents[1]


async def test_lifespan_starts_when_the_critical_gate_passes(contract: TestContract) -> None:
    app = create_app(contract.settings(boot_gate_on_startup=True))
    async with app.router.lifespan_context(app):
        pass


async def test_lifespan_refuses_to_start_without_a_database(contract: TestContract) -> None:
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/nothing"
    app = create_app(contract.settings(database_url=dead, boot_gate_on_startup=True))
    with pytest.raises(BootGateError, match=r"^refusing to start: database: OperationalError"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started although its database is down")


async def test_lifespan_gate_can_be_switched_off(contract: TestContract) -> None:
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/nothing"
    app = create_app(contract.settings(database_url=dead, boot_gate_on_startup=False))
    async with app.router.lifespan_context(app):
        pass


def test_serving_with_a_bad_environment_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT", "soon")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as raised:
            create_app()
    finally:
        get_settings.cache_clear()
    assert str(raised.value).startswith("error: invalid configuration: HEALTH_CHECK_TIMEOUT")


def start_uvicorn(contract: TestContract, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "src.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=BACKEND_DIR,
        env=contract.environ(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_serving(process: subprocess.Popen[str], url: str) -> httpx.Response:
    """Poll until the server answers or exits; bounded, so a broken server fails the test."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"uvicorn exited with {process.returncode}:\n{output}")
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("uvicorn did not start serving within 60 s")


@pytest.mark.e2e
def test_uvicorn_serves_health_over_http(contract: TestContract) -> None:
    port = closed_port()
    process = start_uvicorn(contract, port, GIT_COMMIT_SHA="e2e-sha")
    try:
        response = wait_until_serving(process, f"http://127.0.0.1:{port}/api/health")
        assert response.status_code == 200
        assert response.json()["git_sha"] == "e2e-sha"
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:  # an open pipe left to the garbage collector is a ResourceWarning
            process.stdout.close()


@pytest.mark.e2e
def test_uvicorn_refuses_to_start_with_a_clear_message(contract: TestContract) -> None:
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/nothing"
    process = start_uvicorn(contract, closed_port(), DATABASE_URL=dead)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "refusing to start: database: OperationalError" in output
    assert "Traceback" not in output
