"""DatabaseJanitor against a real PostgreSQL: the guard, clones, and template reuse."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from dataclasses import replace

import psutil
import psycopg
import pytest
from psycopg import sql

from noxlib.core.errors import UserError
from noxlib.core.processes import current_process_identity
from noxlib.names.namespace import get_template_db_name
from noxlib.run.database_owners import Owner, Verdict
from noxlib.run.database_roles import template_key
from noxlib.run.databases import DatabaseJanitor, NotOurDatabaseError, drop_orphan_test_databases, migrations_hash

# Reaping orphans touches every test database on the server: the server is this worker's own
# (tests/conftest.py), so no other worker's runs are there to be reaped.


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
        f"finance_report_test_{namespace}__gw1000",
        # Namespace `{namespace}_gw7`'s own test database, not our worker's (issue 12 item 2).
        f"finance_report_test_{namespace}_gw7",
    ):
        assert not janitor.owns(name)
        with pytest.raises(NotOurDatabaseError):
            janitor.drop(name)
    assert janitor.owns(f"finance_report_test_{namespace}")
    assert janitor.owns(f"finance_report_test_{namespace}__gw7")


def test_drop_all_own_drops_what_the_run_created_and_nothing_else(admin_url, namespace):
    other = f"finance_report_test_other_{namespace}"
    unrecorded = f"finance_report_test_{namespace}__gw5"
    for name in ("finance_report", other, unrecorded):
        _create(admin_url, name)
    lines: list[str] = []
    janitor = DatabaseJanitor(admin_url, namespace, log=lines.append)
    janitor.clone("template0", f"finance_report_test_{namespace}")
    janitor.clone("template0", f"finance_report_test_{namespace}__gw0")
    dropped = janitor.drop_all_own()
    assert sorted(dropped) == [
        f"finance_report_test_{namespace}",
        f"finance_report_test_{namespace}__gw0",
    ]
    assert lines == [f"dropped    {name}: created by this run" for name in dropped]
    for name in ("finance_report", other, unrecorded):
        assert _exists(admin_url, name)
        _drop(admin_url, name)


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

    janitor.clone(first, f"finance_report_test_{namespace}__gw0")
    with psycopg.connect(f"{base}/finance_report_test_{namespace}__gw0") as c:
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
    assert get_template_db_name(template_key(migrations_hash(root), janitor.role)) == second


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


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _comment(admin_url: str, name: str, text: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text)))


def _dead_process() -> tuple[int, float]:
    """The PID and start time of a process that has exited: its owner is provably gone."""
    process = subprocess.Popen(["sleep", "30"])
    create_time = psutil.Process(process.pid).create_time()
    process.kill()
    process.wait()
    return process.pid, create_time


@pytest.fixture
def here() -> Owner:
    """This process, as the owner a run in this test's own state directory records."""
    me = current_process_identity()
    return Owner(
        host=socket.gethostname(), state_dir=f"sd{uuid.uuid4().hex[:8]}", pid=me.pid, create_time=me.create_time
    )


def _owned(admin_url: str, name: str, owner: Owner | None) -> str:
    _create(admin_url, name)
    if owner is not None:
        _comment(admin_url, name, owner.comment("test"))
    return name


def test_down_drops_only_what_is_provably_dead(admin_url, namespace, here):
    """Issue 12 item 1: a `down` may not drop a database whose run it cannot prove dead."""
    pid, created = _dead_process()
    dead_mine = replace(here, pid=pid, create_time=created)
    dead_elsewhere = replace(dead_mine, state_dir="another-state-dir")
    parent = psutil.Process(os.getppid())
    alive_elsewhere = replace(here, state_dir="another-state-dir", pid=parent.pid, create_time=parent.create_time())
    other_host = replace(dead_mine, host="ci-runner-7.example")
    names = {
        "dead_mine": _owned(admin_url, f"finance_report_test_dm_{namespace}__gw0", dead_mine),
        "dead_elsewhere": _owned(admin_url, f"finance_report_test_de_{namespace}", dead_elsewhere),
        "alive_elsewhere": _owned(admin_url, f"finance_report_test_ae_{namespace}", alive_elsewhere),
        "alive_mine": _owned(admin_url, f"finance_report_test_am_{namespace}", here),
        "other_host": _owned(admin_url, f"finance_report_test_oh_{namespace}", other_host),
        "foreign_comment": _owned(admin_url, f"finance_report_test_fc_{namespace}", None),
    }
    _comment(admin_url, names["foreign_comment"], "someone's notes")
    lines: list[str] = []
    try:
        reaping = drop_orphan_test_databases(admin_url, [], here=here, log=lines.append)
        assert names["dead_mine"] in reaping.dropped
        assert the_line(lines, names["dead_mine"]).endswith(f"its run has exited: {dead_mine.describe()}")
        for kept in ("dead_elsewhere", "alive_elsewhere", "alive_mine", "other_host", "foreign_comment"):
            assert _exists(admin_url, names[kept]), kept
        assert reaping.kept[names["alive_mine"]] is Verdict.ALIVE
        assert reaping.kept[names["other_host"]] is Verdict.OTHER_HOST

        reaping = drop_orphan_test_databases(admin_url, [], here=here, prune_foreign=True, log=lines.append)
        assert {names["dead_elsewhere"], names["foreign_comment"]} <= set(reaping.dropped)
        for kept in ("alive_elsewhere", "alive_mine", "other_host"):
            assert _exists(admin_url, names[kept]), kept
    finally:
        for name in names.values():
            _drop(admin_url, name)


def test_a_private_server_reaps_unrecorded_leftovers_unless_leased(admin_url, namespace, here):
    leased, orphan = f"live_{namespace}", f"orphan_{namespace}"
    names = [
        _owned(admin_url, f"finance_report_test_{leased}", None),
        _owned(admin_url, f"finance_report_test_{orphan}__gw0", None),
    ]
    try:
        shared = drop_orphan_test_databases(admin_url, [leased], here=here, log=lambda line: None)
        assert not set(names) & set(shared.dropped)
        private = drop_orphan_test_databases(admin_url, [leased], here=here, private=True, log=lambda line: None)
        assert names[1] in private.dropped
        assert _exists(admin_url, names[0])
    finally:
        for name in names:
            _drop(admin_url, name)


def test_leftovers_of_a_dead_run_are_dropped_and_a_live_one_is_refused(admin_url, namespace, here):
    pid, created = _dead_process()
    lines: list[str] = []
    janitor = DatabaseJanitor(admin_url, namespace, owner=here, log=lines.append)
    name = _owned(admin_url, f"finance_report_test_{namespace}__gw1", replace(here, pid=pid, create_time=created))
    assert janitor.drop_leftovers() == [name]
    assert "leftover: its run has exited" in the_line(lines, name)

    parent = psutil.Process(os.getppid())
    alive = replace(here, state_dir="another-clone", pid=parent.pid, create_time=parent.create_time())
    _owned(admin_url, name, alive)
    try:
        with pytest.raises(UserError) as error:
            janitor.drop_leftovers()
        assert "its run is alive" in str(error.value)
        assert "WORKSPACE_ID" in str(error.value)
        assert "\n" not in str(error.value)
        assert _exists(admin_url, name)
    finally:
        _drop(admin_url, name)


def test_a_template_shaped_database_that_is_not_ours_is_never_dropped(admin_url, namespace, here):
    """Issue 12 item 2: any `finance_report_template_<12 hex>` used to be dropped by a test run."""
    lines: list[str] = []
    janitor = DatabaseJanitor(admin_url, namespace, owner=here, log=lines.append)
    foreign = get_template_db_name(uuid.uuid4().hex + uuid.uuid4().hex)
    other_dir = get_template_db_name(uuid.uuid4().hex + uuid.uuid4().hex)
    mine = get_template_db_name(uuid.uuid4().hex + uuid.uuid4().hex)
    for name, owner in ((foreign, None), (other_dir, replace(here, state_dir="another-clone")), (mine, here)):
        _create(admin_url, name)
        if owner:
            _comment(admin_url, name, owner.comment("template"))
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name)))
    try:
        dropped = janitor.drop_stale_templates(keep=_live_templates(admin_url, foreign, other_dir, mine))
        assert dropped == [mine]
        assert the_line(lines, mine).endswith("a template this state directory built that no live run uses")
        assert _exists(admin_url, foreign)
        assert _exists(admin_url, other_dir)
    finally:
        for name in (foreign, other_dir, mine):
            with psycopg.connect(admin_url, autocommit=True) as connection:
                if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    connection.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
            _drop(admin_url, name)


@pytest.mark.parametrize(
    "comment",
    [
        None,
        "",
        "not json",
        '["finance_report nox suite"]',
        '{"created_by": "someone else", "host": "h", "state_dir": "s", "pid": 1, "create_time": 1}',
        '{"created_by": "finance_report nox suite", "host": "h", "state_dir": "s", "pid": -1, "create_time": 1}',
        '{"created_by": "finance_report nox suite", "host": "h", "state_dir": "s", "pid": 1, "create_time": "x"}',
    ],
)
def test_an_owner_record_that_is_not_ours_reads_as_unrecorded(comment):
    assert Owner.from_comment(comment) is None


def the_line(lines: list[str], fragment: str) -> str:
    matching = [line for line in lines if fragment in line]
    assert len(matching) == 1, lines
    return matching[0]
