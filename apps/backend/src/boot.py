"""Boot gates: can this build start here? `python -m src.boot --mode dry-run|critical|full`.

- dry-run: the configuration loads and the app can be built (no network).
- critical: also the database answers and its schema is at the alembic head.
- full: also Redis answers, the S3 bucket exists, and the Vault secrets file is present and fresh
  (missing or stale is a warning, not an error: the app can run on its environment).

Prints one table row per check (check, status, message, ms). Exits 0 unless a check errors, 1 if
one does, 2 for bad arguments, 130 when interrupted. Deploys run it before switching traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from src.config import ConfigurationError, Settings, load_settings
from src.health import (
    CheckResult,
    CheckStatus,
    describe_exception,
    probe_database,
    probe_migrations,
    probe_redis,
    probe_vault_secrets,
    timed_check,
)
from src.resources import Resources, create_resources

Mode = Literal["dry-run", "critical", "full"]
# What each check verifies, in the order the checks run. These two lists are plain literals because
# the docs' boot-gate table is generated from them (docs/hooks/boot_gates.py reads this file
# without importing the app): change a check here and the docs follow.
CHECKS: dict[str, str] = {
    "config": "the settings load from the environment (types, values; staging and production need a real `SECRET_KEY`)",
    "app": "the app builds and generates its OpenAPI document, which touches every route and model",
    "database": "PostgreSQL at `DATABASE_URL` answers `SELECT 1`",
    "migrations": "the database's schema is at the alembic head",
    "redis": "Redis at `REDIS_URL` answers `PING`",
    "s3": "the bucket `S3_BUCKET` exists at `S3_ENDPOINT`",
    "vault_secrets": "the Vault secrets file (`VAULT_SECRETS_FILE`) exists and is fresh; missing or stale is a "
    "warning, not an error",
}
MODE_CHECKS: dict[str, tuple[str, ...]] = {
    "dry-run": ("config", "app"),
    "critical": ("config", "app", "database", "migrations"),
    "full": ("config", "app", "database", "migrations", "redis", "s3", "vault_secrets"),
}
CHECK_ORDER = tuple(CHECKS)
# A check runs only when the check it depends on passed; otherwise it is reported as skipped.
PREREQUISITES = {
    "app": "config",
    "database": "config",
    "migrations": "database",
    "redis": "config",
    "s3": "config",
    "vault_secrets": "config",
}
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class BootRun:
    """One pass over the checks of a mode; holds what earlier checks produced for later ones."""

    mode: Mode
    settings: Settings | None = None
    resources: Resources | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)

    async def check_config(self) -> str:
        self.settings = load_settings()
        return f"loaded (ENVIRONMENT={self.settings.environment})"

    async def check_app(self) -> str:
        # Imported here: importing the app is the thing under test.
        from src.main import create_app

        app = create_app(self.settings)
        await app.state.resources.aclose()
        # Generating the OpenAPI document touches every route and model, which surfaces
        # definition errors that would otherwise wait for the first request to /api/docs.
        return f"{len(app.openapi()['paths'])} API paths"

    async def check_database(self) -> str:
        return await probe_database(self.get_resources().engine)

    async def check_migrations(self) -> str:
        return await probe_migrations(self.get_resources().engine)

    async def check_redis(self) -> str:
        return await probe_redis(self.get_resources())

    async def check_s3(self) -> str:
        return await self.get_resources().storage.check_bucket()

    async def check_vault_secrets(self) -> str:
        assert self.settings is not None
        return await probe_vault_secrets(self.settings.vault_secrets_file, self.settings.vault_secrets_max_age_seconds)

    def get_resources(self) -> Resources:
        if self.resources is None:
            assert self.settings is not None
            self.resources = create_resources(self.settings)
        return self.resources

    async def run(self) -> list[CheckResult]:
        try:
            for name in CHECK_ORDER:
                self.results[name] = await self.run_one(name)
        finally:
            if self.resources is not None:
                await self.resources.aclose()
        return list(self.results.values())

    async def run_one(self, name: str) -> CheckResult:
        if name not in MODE_CHECKS[self.mode]:
            return CheckResult(name, "skipped", f"not part of --mode {self.mode}", 0.0)
        prerequisite = PREREQUISITES.get(name)
        if prerequisite and self.results[prerequisite].status == "error":
            return CheckResult(name, "skipped", f"{prerequisite} failed", 0.0)
        probe: Callable[[], Awaitable[str]] = getattr(self, f"check_{name}")
        if name in ("config", "app"):
            return await run_local_check(name, probe)
        assert self.settings is not None
        return await timed_check(name, probe, self.settings.health_check_timeout_seconds)


async def run_local_check(name: str, probe: Callable[[], Awaitable[str]]) -> CheckResult:
    """Like `timed_check` without a timeout: loading config and importing code do no I/O."""
    started = time.perf_counter()
    status: CheckStatus = "error"
    try:
        message, status = await probe(), "ok"
    except ConfigurationError as error:
        message = str(error)
    except Exception as error:
        message = describe_exception(error)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(name, status, message, elapsed_ms)


def render_table(results: Sequence[CheckResult]) -> str:
    header = ("check", "status", "message", "ms")
    rows = [(r.name, r.status, r.message, f"{r.duration_ms:.1f}") for r in results]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(3)]

    def line(row: tuple[str, str, str, str]) -> str:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        return "  ".join([*cells, row[3].rjust(8)]).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def exit_code_for(results: Sequence[CheckResult]) -> int:
    return EXIT_FAILED if any(result.status == "error" for result in results) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.boot", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=list(MODE_CHECKS), default="full")
    arguments = parser.parse_args(argv)
    try:
        results = asyncio.run(BootRun(arguments.mode).run())
    except KeyboardInterrupt:
        print("boot checks interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(render_table(results))
    code = exit_code_for(results)
    verdict = "passed" if code == EXIT_OK else "FAILED"
    print(f"boot gate {arguments.mode}: {verdict}")
    return code


if __name__ == "__main__":
    sys.exit(main())
