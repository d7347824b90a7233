"""Dependency checks shared by GET /api/health, the boot gates and the app's start-up gate.

Each probe is an awaitable that returns a short message when the dependency is fine and raises
otherwise; `timed_check` bounds it with the configured timeout so a dead dependency (a port that
accepts but never answers) costs at most that long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.migrations import describe_migration_state
from src.resources import Resources

CheckStatus = Literal["ok", "warning", "error", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    message: str
    duration_ms: float


class CheckWarning(Exception):
    """Raised by a probe for a problem worth reporting that does not stop the app."""


def describe_exception(error: BaseException) -> str:
    """The first line of an error, prefixed by its type, short enough for a table cell."""
    lines = str(error).strip().splitlines()
    described = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return described[:200]


async def timed_check(name: str, probe: Callable[[], Awaitable[str]], timeout_seconds: float) -> CheckResult:
    started = time.perf_counter()
    try:
        message = await asyncio.wait_for(probe(), timeout_seconds)
        status: CheckStatus = "ok"
    except CheckWarning as warning:
        status, message = "warning", str(warning)
    except TimeoutError:
        status, message = "error", f"timed out after {timeout_seconds:g} s"
    except Exception as error:
        status, message = "error", describe_exception(error)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return CheckResult(name, status, message, round(elapsed_ms, 1))


async def probe_database(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return "reachable"


async def probe_migrations(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return await describe_migration_state(connection)


async def probe_redis(resources: Resources) -> str:
    await resources.redis.ping()
    return "PONG"


async def probe_vault_secrets(path: Path, max_age_seconds: int) -> str:
    """Missing or stale secrets are warnings: the app can run on its env, but someone must look."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        raise CheckWarning(f"{path} not found; is the Vault agent running?") from None
    age_seconds = max(0.0, time.time() - modified)
    age = format_age(age_seconds)
    if age_seconds > max_age_seconds:
        raise CheckWarning(f"{path} is {age} old (stale after {format_age(max_age_seconds)})")
    return f"{path} is {age} old"


def format_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def check_dependencies(resources: Resources) -> list[CheckResult]:
    """database, redis and s3 concurrently, so the health endpoint costs one timeout at most."""
    timeout = resources.settings.health_check_timeout_seconds
    return list(
        await asyncio.gather(
            timed_check("database", lambda: probe_database(resources.engine), timeout),
            timed_check("redis", lambda: probe_redis(resources), timeout),
            timed_check("s3", resources.storage.check_bucket, timeout),
        )
    )


async def run_critical_gate(resources: Resources) -> list[CheckResult]:
    """The checks without which the app must not serve: database reachable, schema at head."""
    timeout = resources.settings.health_check_timeout_seconds
    database = await timed_check("database", lambda: probe_database(resources.engine), timeout)
    if database.status == "error":
        return [database, CheckResult("migrations", "skipped", "database unreachable", 0.0)]
    migrations = await timed_check("migrations", lambda: probe_migrations(resources.engine), timeout)
    return [database, migrations]
