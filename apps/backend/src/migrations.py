"""Where the database stands against the alembic scripts shipped with this build."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

# alembic.ini sits beside src/ in the source tree and in the container image.
ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    """The project's alembic config; `database_url` overrides DATABASE_URL for this run only."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logging"] = False
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(connection: AsyncConnection) -> set[str]:
    return await connection.run_sync(_current_revisions)


class MigrationsNotAtHead(RuntimeError):
    """The schema is older (or newer) than the code; running would fail in confusing ways."""


async def describe_migration_state(connection: AsyncConnection) -> str:
    """`at head <rev>`, or raise `MigrationsNotAtHead` naming both sides and the fix."""
    current, heads = await current_revisions(connection), head_revisions()
    if current != heads:
        shown = ", ".join(sorted(current)) or "none (empty database)"
        raise MigrationsNotAtHead(
            f"database at {shown}, code expects {', '.join(sorted(heads))}; "
            "run `alembic upgrade head` from apps/backend"
        )
    return f"at head {', '.join(sorted(heads))}"
