"""The connections one app instance owns: database engine, Redis client, S3 storage.

Built from `Settings` by the app factory (and by the boot gates), held on `app.state.resources`,
closed by the app's lifespan. Nothing here connects at construction time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from src.config import Settings
from src.database import create_engine, create_session_factory
from src.stats_cache import StatsCache
from src.storage import StatementStorage


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    storage: StatementStorage
    stats_cache: StatsCache = field(init=False)

    def __post_init__(self) -> None:
        self.stats_cache = StatsCache(self.redis, self.settings.redis_key_prefix, self.settings.stats_cache_ttl_seconds)

    async def aclose(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


def create_resources(settings: Settings) -> Resources:
    engine = create_engine(settings)
    timeout = settings.health_check_timeout_seconds
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=True,
    )
    return Resources(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        redis=redis,
        storage=StatementStorage(settings),
    )
