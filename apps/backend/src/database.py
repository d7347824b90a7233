"""The async SQLAlchemy engine and the per-request session.

The engine is built from `Settings` by the app factory and held on `app.state`, never at import
time, so tests and the boot gates can point an app at any database without touching globals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from src.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine whose connects give up quickly, so health and boot checks stay bounded."""
    # libpq's connect_timeout counts whole seconds and treats values below 2 as 2.
    connect_timeout = max(2, round(settings.health_check_timeout_seconds))
    return create_async_engine(
        settings.database_url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": connect_timeout},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: handlers serialise objects after committing them.
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request; tests override it to join their transaction."""
    async with request.app.state.resources.session_factory() as session:
        yield session
