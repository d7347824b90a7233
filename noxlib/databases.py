"""Every CREATE and DROP DATABASE of the suite, and the guard that keeps them to our own names.

Like pytest-postgresql's DatabaseJanitor: one class owns template, clone and drop. A test
database is a clone of a template that was migrated once (cloning is a file copy; migrating
is minutes of DDL), templates are keyed by a hash of the migration files so an unchanged schema
is never migrated twice, and drops use `WITH (FORCE)` because a leftover connection must not
keep a crashed run's database alive. The guard refuses any name outside this run's namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.errors import ServiceError
from noxlib.namespace import TEMPLATE_PREFIX, get_template_db_name, get_test_db_name

# psycopg is imported inside the functions that talk to PostgreSQL: importing noxlib (every
# `nox -l`) must not pay for the client.
if TYPE_CHECKING:
    import psycopg

_TEMPLATE_NAME = re.compile(rf"^{TEMPLATE_PREFIX}[0-9a-f]{{12}}$")
_CLONE_RETRIES = 20


class NotOurDatabaseError(RuntimeError):
    """Raised instead of dropping a database this run does not own."""


def migrations_hash(migration_root: Path) -> str:
    """A hash of every migration file's path and content: same hash, same schema."""
    digest = hashlib.sha256()
    for path in sorted(migration_root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(migration_root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


class DatabaseJanitor:
    """Create, clone and drop the databases of one namespace on one server."""

    def __init__(self, admin_url: str, namespace: str) -> None:
        self.admin_url = admin_url
        self.namespace = namespace
        self.test_db = get_test_db_name(namespace)
        self._own = re.compile(rf"^{re.escape(self.test_db)}(_gw[0-9]{{1,3}})?$")

    def _connect(self) -> psycopg.Connection:
        import psycopg

        try:
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise ServiceError(f"cannot connect to PostgreSQL: {_first_line(error)}") from error

    # ----- guard ---------------------------------------------------------------------------
    def owns(self, name: str) -> bool:
        """True only for this namespace's test database and its `_gwN` worker clones."""
        return bool(self._own.match(name))

    def _assert_owned(self, name: str) -> None:
        if not self.owns(name):
            raise NotOurDatabaseError(
                f"refusing to drop {name!r}: it is not a test database of namespace {self.namespace!r}"
            )

    # ----- queries -------------------------------------------------------------------------
    def list_databases(self) -> list[str]:
        with self._connect() as connection:
            rows = connection.execute("SELECT datname FROM pg_database ORDER BY datname").fetchall()
        return [row[0] for row in rows]

    def own_databases(self) -> list[str]:
        return [name for name in self.list_databases() if self.owns(name)]

    def _is_ready_template(self, connection: psycopg.Connection, name: str) -> bool:
        row = connection.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return bool(row and row[0])

    # ----- templates -----------------------------------------------------------------------
    def ensure_template(
        self, schema_hash: str, migrate: Callable[[str], None], database_url: Callable[[str], str]
    ) -> tuple[str, bool]:
        """The migrated template for `schema_hash`, built when missing. Returns (name, built).

        The caller holds the template lock, so a half-built template is never cloned: a
        database only becomes a template (`IS_TEMPLATE`) after its migrations succeeded.
        """
        from psycopg import sql

        name = get_template_db_name(schema_hash)
        with self._connect() as connection:
            if self._is_ready_template(connection, name):
                return name, False
            _drop(connection, name)
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            migrate(database_url(name))
        except BaseException:
            with self._connect() as connection:
                _drop(connection, name)
            raise
        with self._connect() as connection:
            _terminate(connection, name)
            connection.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(sql.Identifier(name))
            )
        return name, True

    def drop_stale_templates(self, keep: Iterable[str]) -> list[str]:
        """Drop templates of other migration states that no live run is using."""
        from psycopg import sql

        keep = set(keep)
        dropped = []
        with self._connect() as connection:
            for (name,) in connection.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (TEMPLATE_PREFIX + "%",)
            ).fetchall():
                if name in keep or not _TEMPLATE_NAME.match(name):
                    continue
                connection.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
                _drop(connection, name)
                dropped.append(name)
        return dropped

    # ----- clones --------------------------------------------------------------------------
    def clone(self, template: str, name: str) -> None:
        """Create `name` as a copy of `template` (replacing a leftover of the same name)."""
        import psycopg
        from psycopg import sql

        self._assert_owned(name)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        with self._connect() as connection:
            _drop(connection, name)
            for attempt in range(_CLONE_RETRIES):
                try:
                    connection.execute(statement)
                    return
                except psycopg.errors.ObjectInUse:
                    # Another run's CREATE DATABASE is copying the same template right now.
                    time.sleep(0.1 * (attempt + 1))
            raise ServiceError(f"could not clone {template} into {name}: the template stayed busy")

    def drop(self, name: str) -> None:
        self._assert_owned(name)
        with self._connect() as connection:
            _drop(connection, name)

    def drop_all_own(self) -> list[str]:
        """Drop every database of this namespace: the end of a run, or a crashed run's leftovers."""
        names = self.own_databases()
        with self._connect() as connection:
            for name in names:
                self._assert_owned(name)
                _drop(connection, name)
        return names


def ensure_database(admin_url: str, name: str) -> bool:
    """Create `name` when missing (the dev database); True when it was created now."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    return False


def drop_orphan_test_databases(admin_url: str, live_namespaces: Iterable[str]) -> list[str]:
    """Drop test databases whose namespace holds no live lease (`nox -s down`'s reaping)."""
    import psycopg

    live_prefixes = [get_test_db_name(namespace) for namespace in live_namespaces]
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'finance\\_report\\_test\\_%'"
        ).fetchall()
    names = [row[0] for row in rows]
    orphans = [
        name for name in names if not any(name == prefix or name.startswith(prefix + "_gw") for prefix in live_prefixes)
    ]
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as connection:
        for name in orphans:
            _drop(connection, name)
    return orphans


def _drop(connection: psycopg.Connection, name: str) -> None:
    from psycopg import sql

    connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _terminate(connection: psycopg.Connection, name: str) -> None:
    connection.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
