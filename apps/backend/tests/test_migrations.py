"""The migrations and the models agree, and the migrations run both ways.

PostgreSQL's DDL is transactional, so both tests work inside the test's own transaction and leave
the worker's database exactly as they found it.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncSession

from alembic import command
from src.migrations import alembic_config, current_revisions, head_revisions
from src.models import Base

pytestmark = pytest.mark.integration


async def test_models_match_the_migrated_schema(db_session: AsyncSession) -> None:
    def differences(connection: Connection) -> list:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    connection = await db_session.connection()
    assert await connection.run_sync(differences) == []


async def test_downgrade_to_base_and_upgrade_again(db_session: AsyncSession) -> None:
    def table_names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    def migrate(connection: Connection, revision: str) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if revision == "base":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    connection = await db_session.connection()
    await connection.run_sync(migrate, "base")
    assert await connection.run_sync(table_names) <= {"alembic_version"}
    await connection.run_sync(migrate, "head")
    assert await connection.run_sync(table_names) >= set(Base.metadata.tables)
    assert await current_revisions(connection) == head_revisions()
