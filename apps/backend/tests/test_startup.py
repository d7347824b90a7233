"""The app's own start-up gate, in-process and as a real uvicorn process."""

from __future__ import annotations

import httpx
import pytest

from src.config import get_settings
from src.main import BootGateError, create_app
from tests.contract import TestContract
from tests.dead_endpoints import closed_port, free_port
from tests.served_app import START_DEADLINE_SECONDS, XDIST_GROUP, ServedApp, start_uvicorn

pytestmark = pytest.mark.integration


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


async def test_a_failed_gate_reaches_the_server_as_its_one_line_reason(contract: TestContract) -> None:
    """What uvicorn prints for a failed start-up is the lifespan's `startup.failed` message."""
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/nothing"
    app = create_app(contract.settings(database_url=dead, boot_gate_on_startup=True))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    # Starlette reports the failure, then re-raises it for the server (which ends the process).
    with pytest.raises(BootGateError):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    [failed] = [message for message in sent if message["type"] == "lifespan.startup.failed"]
    assert str(failed["message"]).startswith("refusing to start: database: OperationalError")
    assert "Traceback" not in str(failed["message"])


async def test_a_passing_gate_reaches_the_server_as_startup_and_shutdown_complete(contract: TestContract) -> None:
    """What uvicorn sees of a good start and stop: the lifespan messages, through every middleware."""
    app = create_app(contract.settings(boot_gate_on_startup=True))
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return next(events)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert [message["type"] for message in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


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


@pytest.mark.e2e
@XDIST_GROUP
def test_uvicorn_serves_health_over_http(served_app: ServedApp) -> None:
    response = httpx.get(f"{served_app.base_url}/api/health", timeout=120)
    assert response.status_code == 200
    assert response.json()["git_sha"] == served_app.git_sha


@pytest.mark.e2e
def test_uvicorn_refuses_to_start_with_a_clear_message(contract: TestContract) -> None:
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/nothing"
    process = start_uvicorn(contract, free_port(), DATABASE_URL=dead)
    try:
        output, _ = process.communicate(timeout=START_DEADLINE_SECONDS)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "refusing to start: database: OperationalError" in output
    assert "Traceback" not in output
