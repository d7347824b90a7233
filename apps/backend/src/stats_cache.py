"""Reconciliation statistics cached in Redis.

Counting matches scans three tables, while the numbers change only when someone writes; so the
stats are cached under `<REDIS_KEY_PREFIX>:reconciliation:stats` and every write deletes that key.
The TTL bounds staleness should an invalidation be lost. Redis being down makes the cache a no-op,
never an error: the stats are always computable from PostgreSQL.
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

    async def get(self) -> dict[str, Any] | None:
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

    async def invalidate(self) -> None:
        try:
            await self.redis.delete(self.key)
        except (RedisError, OSError) as error:
            logger.warning("could not invalidate reconciliation stats: %s", error)
