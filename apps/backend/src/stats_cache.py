"""Reconciliation statistics cached in Redis.

Counting matches scans three tables, while the numbers change only when someone writes; so the
stats are cached under `<REDIS_KEY_PREFIX>:reconciliation:stats` and every write deletes that key.
Redis being down makes the cache a no-op, never an error: the stats are always computable from
PostgreSQL.

An invalidation that fails (Redis stalled or down during a write) would leave the old numbers in
Redis once it answers again, served until the TTL ran out. So a failed invalidation is remembered:
until a later delete or a fresh store succeeds, this instance does not read the cache at all. Other
instances never saw the failure; for them the TTL still bounds how stale a value can be.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class StatsCache:
    def __init__(self, redis: Redis, key_prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.key = f"{key_prefix}:reconciliation:stats"
        self.ttl_seconds = ttl_seconds
        # True while a write's invalidation has not reached Redis: the cached value may be stale.
        self.invalidation_pending = False

    async def get(self) -> dict[str, Any] | None:
        if self.invalidation_pending and not await self._delete():
            return None
        try:
            cached = await self.redis.get(self.key)
        except (RedisError, OSError) as error:
            logger.warning("stats cache unavailable, computing from the database: %s", error)
            return None
        return None if cached is None else json.loads(cached)

    async def store(self, stats: dict[str, Any]) -> None:
        try:
            await self.redis.set(self.key, json.dumps(stats), ex=self.ttl_seconds)
        except (RedisError, OSError) as error:
            logger.warning("could not cache reconciliation stats: %s", error)
            return
        # Freshly computed numbers replaced whatever the missed invalidation left behind.
        self.invalidation_pending = False

    async def invalidate(self) -> None:
        self.invalidation_pending = True
        await self._delete()

    async def _delete(self) -> bool:
        try:
            await self.redis.delete(self.key)
        except (RedisError, OSError) as error:
            logger.warning("could not invalidate reconciliation stats; bypassing the cache until it works: %s", error)
            return False
        self.invalidation_pending = False
        return True
