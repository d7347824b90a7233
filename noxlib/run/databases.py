"""Every CREATE and DROP DATABASE of the suite, and the guard that keeps them to our own names.

Like pytest-postgresql's DatabaseJanitor: one class owns template, clone and drop. A test
database is a clone of a template that was migrated once (cloning is a file copy; migrating
is minutes of DDL), templates are keyed by a hash of the migration files so an unchanged schema
is never migrated twice, and drops use `WITH (FORCE)` because a leftover connection must not
keep a crashed run's database alive. The guard refuses any name outside this run's namespace,
every database records who created it (host, state directory, PID and start time) on the
server itself, and only a database whose creator is provably gone is ever dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.core.errors import ServiceError, UserError, first_line
from noxlib.names.namespace import DB_PREFIX, TEMPLATE_PREFIX, get_template_db_name, get_test_db_name
from noxlib.run.database_owners import Owner, Verdict, judge, recorded_owners
from noxlib.run.database_roles import privileges_named, role_of, template_key

# psycopg is imported inside the functions that talk to PostgreSQL: importing noxlib (every
# `nox -l`) must not pay for the client.
if TYPE_CHECKING:
    import psycopg

_TEMPLATE_NAME = re.compile(rf"^{TEMPLATE_PREFIX}[0-9a-f]{{12}}$")
_TEST_OR_WORKER_NAME = re.compile(rf"^{DB_PREFIX}[a-z0-9_]+$")
_CLONE_RETRIES = 20
# How long to wait for another state directory's run to finish migrating a shared template.
_FOREIGN_BUILD_WAIT = 600
Log = Callable[[str], None]


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


def _connect(admin_url: str) -> psycopg.Connection:
    import psycopg

    try:
        return psycopg.connect(admin_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise ServiceError(f"cannot connect to PostgreSQL: {first_line(error)}") from error


class DatabaseJanitor:
    """Create, clone and drop the databases of one namespace on one server.

    `private` says the server belongs to this state directory alone (the native backend keeps
    it there): only then may a database without an owner record be taken for a leftover.
    """

    def __init__(
        self,
        admin_url: str,
        namespace: str,
        *,
        owner: Owner | None = None,
        private: bool = False,
        log: Log = print,
    ) -> None:
        self.admin_url = admin_url
        self.namespace = namespace
        self.test_db = get_test_db_name(namespace)
        self.owner = owner or Owner.current()
        self.private = private
        self.log = log
        self.created: set[str] = set()
        self.role = role_of(admin_url)
        self._own = re.compile(rf"^{re.escape(self.test_db)}(__gw[0-9]{{1,3}})?$")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[psycopg.Connection]:
        with _connect(self.admin_url) as connection, privileges_named(self.role):
            yield connection

    # ----- guard ---------------------------------------------------------------------------
    def owns(self, name: str) -> bool:
        """True only for this namespace's test database and its `__gwN` worker clones."""
        return bool(self._own.match(name))

    def _assert_owned(self, name: str) -> None:
        if not self.owns(name):
            raise NotOurDatabaseError(
                f"refusing to drop {name!r}: it is not a test database of namespace {self.namespace!r}"
            )

    # ----- queries -------------------------------------------------------------------------
    def _is_ready_template(self, connection: psycopg.Connection, name: str) -> bool:
        row = connection.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return bool(row and row[0])

    def _record_owner(self, connection: psycopg.Connection, name: str, kind: str) -> None:
        from psycopg import sql

        connection.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(self.owner.comment(kind)))
        )

    # ----- templates -----------------------------------------------------------------------
    def ensure_template(
        self, schema_hash: str, migrate: Callable[[str], None], database_url: Callable[[str], str]
    ) -> tuple[str, bool]:
        """The migrated template for `schema_hash`, built when missing. Returns (name, built).

        The caller holds the template lock, so a half-built template is never cloned: a
        database only becomes a template (`IS_TEMPLATE`) after its migrations succeeded.
        """
        from psycopg import sql

        name = get_template_db_name(template_key(schema_hash, self.role))
        deadline = time.monotonic() + _FOREIGN_BUILD_WAIT
        with self._connect() as connection:
            while not self._is_ready_template(connection, name):
                existing = recorded_owners(connection, re.compile(rf"^{re.escape(name)}$"))
                if name not in existing:
                    break
                owner = existing[name]
                verdict = judge(owner, self.owner)
                if self._is_our_template(owner) or verdict in (Verdict.DEAD, Verdict.DEAD_ELSEWHERE):
                    # Under our template lock nobody of ours is building it: a dead build's remains.
                    self._drop_logged(connection, name, f"a half-built template whose build {verdict.value}")
                    break
                if verdict is Verdict.UNRECORDED:
                    raise UserError(
                        f"a database named {name} exists but was not built by this suite; "
                        "rename or drop it, or point the run at another PostgreSQL."
                    )
                if time.monotonic() > deadline:
                    raise ServiceError(f"another state directory's build of template {name} did not finish")
                # Another clone sharing this server is migrating it right now: wait, then reuse it.
                time.sleep(1)
            else:
                return name, False
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            self._record_owner(connection, name, "template")
        try:
            migrate(database_url(name))
        except BaseException:
            with self._connect() as connection:
                self._drop_logged(connection, name, "its migrations failed")
            raise
        with self._connect() as connection:
            _terminate(connection, name)
            connection.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(sql.Identifier(name))
            )
        return name, True

    def _is_our_template(self, owner: Owner | None) -> bool:
        return owner is not None and (owner.host, owner.state_dir) == (self.owner.host, self.owner.state_dir)

    def drop_stale_templates(self, keep: Iterable[str]) -> list[str]:
        """Drop templates of other migration states that this state directory built and no live run needs.

        A database merely shaped like a template, or a template another state directory built
        (another clone on a shared server may be cloning it right now), is never touched.
        """
        from psycopg import sql

        keep = set(keep)
        dropped = []
        with self._connect() as connection:
            templates = recorded_owners(connection, _TEMPLATE_NAME)
            rows = connection.execute("SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = current_user")
            mine = {name for (name,) in rows}  # another role's template is not this role's to drop
            for name, owner in templates.items():
                if name in keep or name not in mine or not self._is_our_template(owner):
                    continue
                connection.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
                self._drop_logged(connection, name, "a template this state directory built that no live run uses")
                dropped.append(name)
        return dropped

    # ----- clones --------------------------------------------------------------------------
    def clone(self, template: str, name: str) -> None:
        """Create `name` as a copy of `template`, recording this run as its owner."""
        import psycopg
        from psycopg import sql

        self._assert_owned(name)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        with self._connect() as connection:
            for attempt in range(_CLONE_RETRIES):
                try:
                    connection.execute(statement)
                    break
                except psycopg.errors.ObjectInUse:
                    # Another run's CREATE DATABASE is copying the same template right now.
                    time.sleep(0.1 * (attempt + 1))
            else:
                raise ServiceError(f"could not clone {template} into {name}: the template stayed busy")
            self.created.add(name)
            self._record_owner(connection, name, "test")

    def drop(self, name: str) -> None:
        self._assert_owned(name)
        with self._connect() as connection:
            self._drop_logged(connection, name, "asked for by name")
        self.created.discard(name)

    def drop_leftovers(self) -> list[str]:
        """Before a run: drop this namespace's databases that a dead run left, or say whose they are.

        Two runs of one namespace in one state directory are already refused by the lease
        registry; this covers the runs it cannot see (another clone or CI runner sharing the
        server with the same BRANCH_NAME): their databases are never dropped from under them.
        """
        dropped = []
        with self._connect() as connection:
            for name, owner in recorded_owners(connection, self._own).items():
                verdict = judge(owner, self.owner)
                if verdict is Verdict.DEAD or (verdict is Verdict.UNRECORDED and self.private):
                    why = f"{verdict.value} ({owner.describe()})" if owner else "no owner recorded on a private server"
                    self._drop_logged(connection, name, f"leftover: {why}")
                    dropped.append(name)
                    continue
                whose = f" ({owner.describe()})" if owner else ""
                raise UserError(
                    f"namespace {self.namespace} is in use on this PostgreSQL: {name} is kept because {verdict.value}"
                    f"{whose}; set WORKSPACE_ID (or BRANCH_NAME) to run beside it"
                    + (", or `nox -s down -- --prune-foreign` if you know it is dead." if verdict is not Verdict.ALIVE
                       else ".")
                )  # fmt: skip
        return dropped

    def drop_all_own(self) -> list[str]:
        """After a run: drop what this run created — the names it made, and any of the namespace's
        databases that record this very process as their owner."""
        dropped = []
        with self._connect() as connection:
            for name, owner in recorded_owners(connection, self._own).items():
                if name in self.created or (owner is not None and owner.same_process(self.owner)):
                    self._assert_owned(name)
                    self._drop_logged(connection, name, "created by this run")
                    dropped.append(name)
        self.created.clear()
        return dropped

    def _drop_logged(self, connection: psycopg.Connection, name: str, why: str) -> None:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            _drop(connection, name)
            self.log(f"dropped    {name}: {why}")


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


@dataclass
class Reaping:
    """What `down` did with each test database on the server, and why."""

    dropped: list[str]
    kept: dict[str, Verdict]


def drop_orphan_test_databases(
    admin_url: str,
    live_namespaces: Iterable[str],
    *,
    here: Owner | None = None,
    private: bool = False,
    prune_foreign: bool = False,
    log: Log = print,
) -> Reaping:
    """`nox -s down`'s reaping: drop test databases whose run is provably dead, and nothing else.

    Provably dead: the owner recorded on the database ran on this host, in this state
    directory, and that process (PID + start time) is gone. `prune_foreign` extends that to
    dead runs of other state directories on this host and to databases with no owner record;
    a run on another host can never be proven dead from here and is never dropped. On a
    `private` server (the native backend's, inside this state directory) a database without an
    owner record is a leftover of an older suite unless a live lease holds its namespace.
    """
    here = here or Owner.current()
    live_prefixes = [get_test_db_name(namespace) for namespace in live_namespaces]

    def leased(name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + "__gw") for prefix in live_prefixes)

    reaping = Reaping(dropped=[], kept={})
    with _connect(admin_url) as connection:
        for name, owner in recorded_owners(connection, _TEST_OR_WORKER_NAME).items():
            verdict = judge(owner, here)
            if verdict is Verdict.DEAD:
                why = f"{verdict.value}: {owner.describe()}" if owner else verdict.value
            elif verdict is Verdict.DEAD_ELSEWHERE and prune_foreign:
                why = f"{verdict.value} (--prune-foreign): {owner.describe()}" if owner else verdict.value
            elif verdict is Verdict.UNRECORDED and not leased(name) and (private or prune_foreign):
                why = f"{verdict.value} and no live run of this state directory holds its namespace"
            else:
                reaping.kept[name] = verdict
                continue
            _drop(connection, name)
            reaping.dropped.append(name)
            log(f"dropped    {name}: {why}")
    return reaping


def _drop(connection: psycopg.Connection, name: str) -> None:
    from psycopg import sql

    connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _terminate(connection: psycopg.Connection, name: str) -> None:
    connection.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
