"""Reconciliation over the API: matching, no double matches, determinism, the stats cache."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import func, make_url, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from src.models import ReconciliationMatch
from tests.contract import TestContract
from tests.dead_endpoints import closed_port
from tests.harness import SessionFactory, app_with_settings, isolated_client
from tests.statement_files import statement_csv, upload
from tests.tcp_proxy import loopback_proxy

pytestmark = pytest.mark.integration


async def upload_lines(client: AsyncClient, rows: list[tuple[str, str, str]]) -> list[int]:
    response = await client.post("/api/statements", **upload(statement_csv(rows)))
    assert response.status_code == 201, response.text
    lines = await client.get(f"/api/statements/{response.json()['id']}/lines")
    return [line["id"] for line in lines.json()]


async def add_entry(client: AsyncClient, day: str, amount: str, description: str = "entry") -> int:
    response = await client.post("/api/journal", json={"date": day, "amount": amount, "description": description})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def stats(client: AsyncClient) -> dict:
    response = await client.get("/api/reconciliation/stats")
    assert response.status_code == 200
    return response.json()


async def test_run_matches_amount_within_three_days(client: AsyncClient) -> None:
    line_ids = await upload_lines(
        client,
        [("2024-03-01", "Coffee", "-3.50"), ("2024-03-10", "Rent", "-900.00")],
    )
    coffee = await add_entry(client, "2024-03-04", "-3.50")
    await add_entry(client, "2024-03-20", "-900.00")  # eleven days away: no match

    response = await client.post("/api/reconciliation/run")
    assert response.status_code == 200
    assert response.json() == {
        "matched": 1,
        "matches": [{"statement_line_id": line_ids[0], "journal_entry_id": coffee, "day_difference": 3}],
    }
    pending = (await client.get("/api/reconciliation/pending")).json()
    assert [line["id"] for line in pending] == [line_ids[1]]
    assert await stats(client) == {
        "matched": 1,
        "unmatched_statement_lines": 1,
        "unmatched_journal_entries": 1,
        "match_rate": 0.5,
    }


async def test_second_run_does_not_match_again(client: AsyncClient) -> None:
    await upload_lines(client, [("2024-03-01", "a", "5.00"), ("2024-03-01", "b", "5.00")])
    await add_entry(client, "2024-03-01", "5.00")

    first = (await client.post("/api/reconciliation/run")).json()
    second = (await client.post("/api/reconciliation/run")).json()
    assert first["matched"] == 1
    assert second == {"matched": 0, "matches": []}
    assert (await stats(client))["unmatched_statement_lines"] == 1


async def test_database_refuses_a_double_match(client: AsyncClient, db_session: AsyncSession) -> None:
    line_ids = await upload_lines(client, [("2024-03-01", "a", "5.00"), ("2024-03-02", "b", "5.00")])
    entry = await add_entry(client, "2024-03-01", "5.00")
    await client.post("/api/reconciliation/run")

    db_session.add(ReconciliationMatch(statement_line_id=line_ids[1], journal_entry_id=entry, day_difference=1))
    with pytest.raises(IntegrityError, match="uq_reconciliation_matches_journal_entry_id"):
        await db_session.flush()
    await db_session.rollback()


async def test_ties_are_broken_by_date_then_lowest_id(client: AsyncClient) -> None:
    # Entered out of date order, so insertion order and the rule disagree.
    far = await add_entry(client, "2024-03-04", "7.00", "three days")
    near_high = await add_entry(client, "2024-03-02", "7.00", "one day, entered second")
    near_low_date = await add_entry(client, "2024-02-29", "7.00", "one day before")
    line_ids = await upload_lines(client, [("2024-03-01", "x", "7.00"), ("2024-03-01", "y", "7.00")])

    matches = (await client.post("/api/reconciliation/run")).json()["matches"]
    assert [(m["statement_line_id"], m["journal_entry_id"]) for m in matches] == [
        (line_ids[0], near_high),
        (line_ids[1], near_low_date),
    ]
    assert far not in {m["journal_entry_id"] for m in matches}


async def test_stats_before_any_data(client: AsyncClient) -> None:
    assert await stats(client) == {
        "matched": 0,
        "unmatched_statement_lines": 0,
        "unmatched_journal_entries": 0,
        "match_rate": 0.0,
    }


async def test_stats_are_cached_and_every_write_invalidates(
    client: AsyncClient, redis: Redis, redis_keys: str, db_session: AsyncSession
) -> None:
    cache_key = f"{redis_keys}:reconciliation:stats"
    assert (await stats(client))["unmatched_journal_entries"] == 0
    assert await redis.exists(cache_key)

    # A write behind the API's back stays unseen while the cache holds: it is served from Redis.
    await db_session.execute(
        text(
            "INSERT INTO journal_entries (date, description, amount, currency) "
            "VALUES ('2024-01-01', 'direct', 1.00, 'USD')"
        )
    )
    await db_session.commit()
    assert (await stats(client))["unmatched_journal_entries"] == 0

    # Each write through the API clears the cache, so the next read is fresh.
    await add_entry(client, "2024-03-01", "2.00")
    assert not await redis.exists(cache_key)
    assert (await stats(client))["unmatched_journal_entries"] == 2

    await upload_lines(client, [("2024-03-01", "x", "2.00")])
    assert not await redis.exists(cache_key)
    assert (await stats(client))["unmatched_statement_lines"] == 1

    await client.post("/api/reconciliation/run")
    assert not await redis.exists(cache_key)
    assert (await stats(client))["matched"] == 1


async def test_stats_still_served_when_redis_is_down(contract: TestContract, session_factory: SessionFactory) -> None:
    dead_redis = contract.settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    async with (
        app_with_settings(dead_redis) as app,
        isolated_client(app, session_factory) as client,
    ):
        await add_entry(client, "2024-03-01", "2.00")
        assert (await stats(client))["unmatched_journal_entries"] == 1


async def test_a_write_during_a_redis_stall_never_leaves_stale_stats(
    contract: TestContract, session_factory: SessionFactory, redis: Redis, redis_keys: str
) -> None:
    """Redis hangs while a write invalidates the cache, then comes back still holding the old
    numbers: the next read must show the write, not the old numbers until the TTL ends."""
    cache_key = f"{redis_keys}:reconciliation:stats"
    redis_url = make_url(contract.redis_url)
    with loopback_proxy(redis_url.host or "127.0.0.1", redis_url.port or 6379) as proxy:
        proxied = redis_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = contract.settings(redis_url=proxied, health_check_timeout_seconds=0.5)
        async with app_with_settings(settings) as app, isolated_client(app, session_factory) as client:
            assert (await stats(client))["unmatched_journal_entries"] == 0
            assert await redis.exists(cache_key)

            proxy.stall()
            await add_entry(client, "2024-03-01", "2.00")
            proxy.resume()
            assert await redis.exists(cache_key), "the stall must have kept the old value in Redis"

            assert (await stats(client))["unmatched_journal_entries"] == 1
            # The fresh numbers replaced the stale ones; the cache is in use again.
            assert await redis.exists(cache_key)
            assert (await stats(client))["unmatched_journal_entries"] == 1


async def test_pending_paginates_oldest_first(client: AsyncClient, db_session: AsyncSession) -> None:
    line_ids = await upload_lines(
        client,
        [("2024-03-03", "c", "1.00"), ("2024-03-01", "a", "1.00"), ("2024-03-02", "b", "1.00")],
    )
    pending = (await client.get("/api/reconciliation/pending", params={"limit": 2})).json()
    assert [line["id"] for line in pending] == [line_ids[1], line_ids[2]]
    assert await db_session.scalar(select(func.count()).select_from(ReconciliationMatch)) == 0
