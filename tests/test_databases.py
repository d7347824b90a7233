"""DatabaseJanitor against a real PostgreSQL: the guard, clones, and template reuse."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from noxlib import lifecycle
from noxlib.databases import (
    DatabaseJanitor,
    NotOurDatabaseError,
    drop_orphan_test_databases,
    migrations_hash,
)
from noxlib.namespace import get_template_db_name

# Reaping orphans touches every test database on the server: keep these on one worker.
pytestmark = pytest.mark.xdist_group(name="postgres")


def _create(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        return bool(connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone())


@pytest.fixture
def namespace() -> str:
    return f"db_{uuid.uuid4().hex[:8]}"


def test_guard_refuses_foreign_names(admin_url, namespace):
    janitor = DatabaseJanitor(admin_url, namespace)
    for name in (
        "finance_report",
        f"finance_report_test_other_{namespace}",
        "postgres",
        f"finance_report_test_{namespace}x",
        f"finance_report_test_{namespace}_gw1000",
    ):
        assert not janitor.owns(name)
        with pytest.raises(NotOurDatabaseError):
            janitor.drop(name)
    assert janitor.owns(f"finance_report_test_{namespace}")
    assert janitor.owns(f"finance_report_test_{namespace}_gw7")


def test_drop_all_own_leaves_app_and_other_namespaces(admin_url, namespace):
    other = f"finance_report_test_other_{namespace}"
    for name in (
        "finance_report",
        other,
        f"finance_report_test_{namespace}",
        f"finance_report_test_{namespace}_gw0",
    ):
        _create(admin_url, name)
    janitor = DatabaseJanitor(admin_url, namespace)
    dropped = janitor.drop_all_own()
    assert sorted(dropped) == [
        f"finance_report_test_{namespace}",
        f"finance_report_test_{namespace}_gw0",
    ]
    assert _exists(admin_url, "finance_report")
    assert _exists(admin_url, other)
    DatabaseJanitor(admin_url, f"other_{namespace}").drop_all_own()


def test_drop_succeeds_with_a_connection_left_open(admin_url, namespace):
    janitor = DatabaseJanitor(admin_url, namespace)
    name = f"finance_report_test_{namespace}"
    _create(admin_url, name)
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    leftover = psycopg.connect(url)
    try:
        janitor.drop(name)
    finally:
        leftover.close()
    assert not _exists(admin_url, name)


def _migrations(tmp_path, body: str):
    root = tmp_path / "alembic"
    (root / "versions").mkdir(parents=True, exist_ok=True)
    (root / "versions" / "0001.py").write_text(body)
    return root


def test_template_is_reused_until_a_migration_changes(admin_url, namespace, tmp_path):
    janitor = DatabaseJanitor(admin_url, namespace)
    calls: list[str] = []
    base = admin_url.rsplit("/", 1)[0]

    def migrate(url: str) -> None:
        calls.append(url)
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
            c.execute("CREATE TABLE ping (id int)")

    root = _migrations(tmp_path, f"# schema {namespace} v1\n")
    first_hash = migrations_hash(root)
    first, built = janitor.ensure_template(first_hash, migrate, lambda n: f"{base}/{n}")
    assert built
    assert len(calls) == 1
    again, built = janitor.ensure_template(migrations_hash(root), migrate, lambda n: f"{base}/{n}")
    assert (again, built) == (first, False)
    assert len(calls) == 1

    janitor.clone(first, f"finance_report_test_{namespace}_gw0")
    with psycopg.connect(f"{base}/finance_report_test_{namespace}_gw0") as c:
        assert c.execute("SELECT count(*) FROM ping").fetchone() == (0,)

    root = _migrations(tmp_path, f"# schema {namespace} v2\n")
    second, built = janitor.ensure_template(migrations_hash(root), migrate, lambda n: f"{base}/{n}")
    assert built
    assert second != first
    assert len(calls) == 2
    assert first in janitor.drop_stale_templates(keep={second} | _live_templates(admin_url, first, second))
    assert not _exists(admin_url, first)
    assert _exists(admin_url, second)
    janitor.drop_all_own()
    assert get_template_db_name(migrations_hash(root)) == second


def _live_templates(admin_url, *mine):
    """Templates other tests of this run may be using right now must survive this test."""
    with psycopg.connect(admin_url) as c:
        rows = c.execute(
            "SELECT datname FROM pg_database WHERE datistemplate AND datname LIKE 'finance_report_template_%'"
        ).fetchall()
    return {name for (name,) in rows if name not in mine}


def test_failed_migration_leaves_no_template(admin_url, namespace, tmp_path):
    janitor = DatabaseJanitor(admin_url, namespace)
    base = admin_url.rsplit("/", 1)[0]
    root = _migrations(tmp_path, f"# broken {namespace}\n")

    def migrate(url: str) -> None:
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError):
        janitor.ensure_template(migrations_hash(root), migrate, lambda n: f"{base}/{n}")
    assert not _exists(admin_url, get_template_db_name(migrations_hash(root)))


def test_down_reaps_only_orphans(admin_url, namespace):
    live, orphan = f"live_{namespace}", f"orphan_{namespace}"
    for name in (
        f"finance_report_test_{live}",
        f"finance_report_test_{orphan}_gw0",
        "finance_report",
    ):
        _create(admin_url, name)
    # Like `nox -s down`: every namespace that holds a lease is live (the suite's nox runs do).
    leased = [lease.namespace for lease in lifecycle.registry().snapshot().leases]
    dropped = drop_orphan_test_databases(admin_url, [live, *leased])
    assert f"finance_report_test_{orphan}_gw0" in dropped
    assert _exists(admin_url, f"finance_report_test_{live}")
    assert _exists(admin_url, "finance_report")
    DatabaseJanitor(admin_url, live).drop_all_own()
