"""Alembic environment: migrations run synchronously over psycopg 3.

The same `postgresql+psycopg://` URL serves the async app and this sync runner, so there is one
DATABASE_URL for both. A caller may hand over a URL in `config.attributes["database_url"]` (the
test harness does, to migrate a worker's database) or a live connection in
`config.attributes["connection"]`.
"""

from logging.config import fileConfig

from sqlalchemy import create_engine, pool

from alembic import context
from src.config import load_settings
from src.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("database_url") or load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
