"""GET /api/ping and POST /api/ping/toggle persist their state in PostgreSQL."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.models import PingState

pytestmark = pytest.mark.integration


async def test_ping_before_any_toggle(client: AsyncClient) -> None:
    response = await client.get("/api/ping")
    assert response.status_code == 200
    assert response.json() == {"state": "ping", "toggle_count": 0, "updated_at": None}


async def test_toggle_flips_counts_and_persists(client: AsyncClient, db_session: AsyncSession) -> None:
    states = [(await client.post("/api/ping/toggle")).json() for _ in range(3)]
    assert [(state["state"], state["toggle_count"]) for state in states] == [
        ("pong", 1),
        ("ping", 2),
        ("pong", 3),
    ]
    assert all(state["updated_at"] for state in states)

    current = (await client.get("/api/ping")).json()
    assert (current["state"], current["toggle_count"]) == ("pong", 3)
    row = (await db_session.scalars(select(PingState))).one()
    assert (row.state, row.toggle_count) == ("pong", 3)


async def test_ping_only_answers_its_methods(client: AsyncClient) -> None:
    response = await client.delete("/api/ping")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
