"""One PostgreSQL, Redis and S3 shared by several state directories and namespaces (issue 12 items 1, 2, 7, 9).

The faults were found with separate clones, users or CI runners pointing `FR_SERVICES=external`
at one server; here each "clone" is a state directory of its own (its own FR_CACHE_DIR, lease
registry and locks) using the suite's services as external ones, and every step is a real
`nox` run. Nothing is mocked: the databases, buckets and processes are real.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from noxlib.names.namespace import (
    get_dev_bucket,
    get_s3_bucket,
    get_test_db_name,
    get_worker_db_name,
    sanitize_namespace,
)
from noxlib.run import buckets
from noxlib.run.leases import LeaseRegistry
from noxlib.services import ServiceUrls
from tests.runs import (
    GATED_PROBE,
    PROBE,
    REPO,
    leftovers,
    nox_command,
    nox_env,
    output,
    probe_args,
    release_gate,
    run_nox,
    start_run,
    wait_ready,
)

pytestmark = pytest.mark.slow
TRACEBACK = "Traceback (most recent call last)"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class StateDir:
    """A clone's own FR_CACHE_DIR, using the suite's services as `FR_SERVICES=external`."""

    root: Path
    urls: ServiceUrls

    @property
    def env(self) -> dict[str, str]:
        return {
            "FR_CACHE_DIR": str(self.root),
            "FR_SERVICES": "external",
            "DATABASE_URL": self.urls.database_url(),
            "REDIS_URL": self.urls.redis_url,
            "S3_ENDPOINT": self.urls.s3_endpoint,
            "S3_ACCESS_KEY": self.urls.s3_access_key,
            "S3_SECRET_KEY": self.urls.s3_secret_key,
        }

    @property
    def registry(self) -> LeaseRegistry:
        return LeaseRegistry(self.root)

    def nox(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_nox(*args, **self.env)


@pytest.fixture
def state_dirs(services) -> Iterator[list[StateDir]]:
    """Two clones' state directories; /var/tmp and 0755 like every state dir the suite makes."""
    roots = [Path(tempfile.mkdtemp(prefix="finance_report-clone-", dir="/var/tmp")) for _ in range(2)]
    for root in roots:
        root.chmod(0o755)
    yield [StateDir(root, services.urls) for root in roots]
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def databases_of(urls: ServiceUrls, namespace: str) -> list[str]:
    """The test and worker databases of `namespace` on the server (and of no other namespace)."""
    test_db = get_test_db_name(namespace)
    with psycopg.connect(urls.database_url(), autocommit=True) as connection:
        rows = connection.execute("SELECT datname FROM pg_database").fetchall()
    return sorted(name for (name,) in rows if name == test_db or name.startswith(test_db + "__gw"))


def the_line(text: str, fragment: str) -> str:
    lines = [line for line in text.splitlines() if fragment in line]
    assert len(lines) == 1, text
    return lines[0]


@contextlib.contextmanager
def gated_run(branch: str, tmp_path: Path, **env: str) -> Iterator[subprocess.Popen]:
    """A `nox -s test` held open inside its test until the gate opens; never left running."""
    process = start_run(branch, tmp_path, workers=2, probes=[GATED_PROBE], **env)
    try:
        wait_ready(branch, tmp_path, 1, process)
        yield process
    finally:
        if process.poll() is None:
            release_gate(branch, tmp_path)
            try:
                process.wait(timeout=300)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(timeout=120)


# ----- item 1: a `down` elsewhere never drops a live run's databases ---------------------------
def test_down_from_another_state_dir_keeps_a_live_runs_databases(state_dirs, tmp_path):
    running, other = state_dirs
    # The other clone has used the server before, so its registry records the external services
    # and its `down` reaps test databases there — as in the reported run.
    infra = other.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    branch = unique("live")
    namespace = sanitize_namespace(branch)
    with gated_run(branch, tmp_path, **running.env) as run:
        held = databases_of(running.urls, namespace)
        assert held == [get_test_db_name(namespace), *(get_worker_db_name(namespace, f"gw{i}") for i in (0, 1))]
        for args in (["-s", "down"], ["-s", "down", "--", "--prune-foreign"], ["-s", "down", "--", "--force"]):
            result = other.nox(*args)
            assert result.returncode == 0, result.stdout
            assert TRACEBACK not in result.stdout
            assert databases_of(running.urls, namespace) == held, result.stdout
            assert not any(name in result.stdout for name in held), result.stdout
        release_gate(branch, tmp_path)
        assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    assert leftovers(namespace, running.urls, running.registry) == []


def test_a_dead_runs_databases_are_dropped_only_by_its_own_state_dir_or_when_asked(state_dirs, tmp_path):
    owner, other = state_dirs
    assert other.nox("-s", "infra").returncode == 0
    branch = unique("dead")
    namespace = sanitize_namespace(branch)
    with gated_run(branch, tmp_path, **owner.env) as run:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
    held = databases_of(owner.urls, namespace)
    assert len(held) == 3
    try:
        kept = other.nox("-s", "down")
        assert kept.returncode == 0, kept.stdout
        assert databases_of(owner.urls, namespace) == held
        assert "--prune-foreign" in the_line(kept.stdout, "orphans")

        pruned = other.nox("-s", "down", "--", "--prune-foreign")
        assert pruned.returncode == 0, pruned.stdout
        assert databases_of(owner.urls, namespace) == []
        for name in held:
            line = the_line(pruned.stdout, f"dropped    {name}:")
            assert (
                f"its run has exited, but it belongs to another state directory (--prune-foreign): pid {run.pid}"
                in line
            )
    finally:
        buckets.remove_bucket(owner.urls, get_s3_bucket(namespace))


def test_the_owning_state_dir_drops_its_dead_runs_databases(state_dirs, tmp_path):
    owner, _ = state_dirs
    branch = unique("mine")
    namespace = sanitize_namespace(branch)
    with gated_run(branch, tmp_path, **owner.env) as run:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
    held = databases_of(owner.urls, namespace)
    try:
        result = owner.nox("-s", "down")
        assert result.returncode == 0, result.stdout
        assert databases_of(owner.urls, namespace) == []
        for name in held:
            assert f"its run has exited: pid {run.pid}" in the_line(result.stdout, f"dropped    {name}:")
    finally:
        buckets.remove_bucket(owner.urls, get_s3_bucket(namespace))


def test_the_same_namespace_from_another_state_dir_is_refused_and_takes_nothing(state_dirs, tmp_path):
    """Two clones with one BRANCH_NAME on one server: the second stops with one line, the first is untouched."""
    first, second = state_dirs
    branch = unique("same")
    namespace = sanitize_namespace(branch)
    with gated_run(branch, tmp_path, **first.env) as run:
        held = databases_of(first.urls, namespace)
        result = run_nox("-s", "test", "--", *probe_args(PROBE), BRANCH_NAME=branch, **second.env)
        assert result.returncode != 0
        assert TRACEBACK not in result.stdout
        line = the_line(result.stdout, "is in use on this PostgreSQL")
        assert "its run is alive" in line
        assert "WORKSPACE_ID" in line
        assert databases_of(first.urls, namespace) == held
        assert buckets.bucket_exists(first.urls, get_s3_bucket(namespace)), "the live run's bucket was removed"
        release_gate(branch, tmp_path)
        assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    assert leftovers(namespace, first.urls, first.registry) == []


# ----- item 2: names of different namespaces and kinds never meet -----------------------------
def test_a_namespace_shaped_like_a_worker_runs_beside_it(services, tmp_path):
    """`BRANCH_NAME=X-gw0` used to drop namespace X's first worker database as its "leftover"."""
    branch = unique("wk")
    namespace = sanitize_namespace(branch)
    with gated_run(branch, tmp_path) as run:
        beside = run_nox("-s", "test", "--", *probe_args(PROBE), BRANCH_NAME=f"{branch}-gw0")
        assert beside.returncode == 0, beside.stdout
        assert "leftover" not in beside.stdout
        assert get_worker_db_name(namespace, "gw0") in databases_of(services.urls, namespace)
        release_gate(branch, tmp_path)
        assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    assert leftovers(namespace, services.urls) == []
    assert leftovers(f"{namespace}_gw0", services.urls) == []


def test_a_test_run_never_touches_a_dev_bucket_or_a_foreign_template(services):
    """Namespace `dev_<ns>`'s test bucket was `<ns>`'s dev bucket; any template-shaped database was dropped."""
    base = sanitize_namespace(unique("owner"))
    dev_bucket = get_dev_bucket(base)
    buckets.ensure_bucket(services.urls, dev_bucket)
    s3 = buckets.s3_client(services.urls)
    s3.put_object(Bucket=dev_bucket, Key="uploads/statement.csv", Body=b"date,amount\n")
    # Someone's database that merely looks like one of our templates (not built by this suite).
    lookalike = f"finance_report_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.urls.database_url(), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(lookalike)))
        connection.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(lookalike)))
    try:
        result = run_nox("-s", "test", "--", *probe_args(PROBE), BRANCH_NAME=f"dev-{base}")
        assert result.returncode == 0, result.stdout
        body = s3.get_object(Bucket=dev_bucket, Key="uploads/statement.csv")["Body"].read()
        assert body == b"date,amount\n"
        with psycopg.connect(services.urls.database_url(), autocommit=True) as connection:
            assert connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (lookalike,)).fetchone()
        assert lookalike not in result.stdout
    finally:
        buckets.remove_bucket(services.urls, dev_bucket)
        with psycopg.connect(services.urls.database_url(), autocommit=True) as connection:
            connection.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(lookalike)))
            connection.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(lookalike)))


# ----- item 7: corrupt state files: one line, moved aside, the run goes on ---------------------
CORRUPT_LEASE_FILES = {
    "random-bytes": lambda path: path.write_bytes(os.urandom(200_000)),
    "a-directory": lambda path: path.mkdir(),
    "create-time-string": lambda path: path.write_text(
        '{"leases": [{"pid": 1, "create_time": "now", "namespace": "x", "backend": "external", "kind": "test"}]}'
    ),
    "pid-minus-one": lambda path: path.write_text(
        '{"leases": [{"pid": -1, "create_time": 1.0, "namespace": "x", "backend": "external", "kind": "test"}]}'
    ),
    "services-garbage": lambda path: path.write_text('{"leases": [], "services": "garbage"}'),
}


@pytest.mark.parametrize("corrupt", CORRUPT_LEASE_FILES.values(), ids=CORRUPT_LEASE_FILES.keys())
def test_a_corrupt_lease_file_is_one_line_and_down_goes_on(state_dirs, corrupt):
    state = state_dirs[0]
    corrupt(state.root / "leases.json")
    result = state.nox("-s", "down")
    assert result.returncode == 0, result.stdout
    assert TRACEBACK not in result.stdout
    line = the_line(result.stdout, "lease file was unreadable")
    assert len(line) < 400
    (moved,) = state.root.glob("leases.json.corrupt-*")
    assert line.endswith(str(moved))
    assert state.registry.snapshot().leases == []


def test_a_run_goes_on_after_a_lease_file_of_random_bytes(state_dirs):
    state = state_dirs[0]
    (state.root / "leases.json").write_bytes(os.urandom(200_000))
    result = run_nox("-s", "test", "--", *probe_args(PROBE), BRANCH_NAME=unique("bytes"), **state.env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(the_line(result.stdout, "lease file was unreadable")) < 400
    assert len(list(state.root.glob("leases.json.corrupt-*"))) == 1


@pytest.mark.parametrize("session", ["test", "down", "infra"])
def test_a_read_only_state_dir_is_one_line(state_dirs, session):
    """A read-only FR_CACHE_DIR (a read-only mount: root writes through mere permissions)."""
    state = state_dirs[0]
    mount = f"mount --bind {state.root} {state.root} && mount -o remount,ro,bind {state.root} {state.root}"
    if subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs `unshare -m` and mount (root) to make a read-only mount")
    args = ["-s", session] + (["--", *probe_args(PROBE)] if session == "test" else [])
    command = " ".join(f"'{part}'" for part in nox_command(*args))
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{mount} && exec {command}"],
        cwd=REPO,
        env=nox_env(BRANCH_NAME=unique("ro"), **state.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert TRACEBACK not in result.stdout
    line = the_line(result.stdout, "is not writable")
    assert line.startswith(f"nox > Session {session} aborted: FR_CACHE_DIR {state.root} is not writable"), line


# ----- item 9: passwords masked where they stand -----------------------------------------------
def test_infra_masks_every_password_in_place(state_dirs):
    """`nox -s infra` printed `redis://:PASS@…` in clear (issue 12 item 9)."""
    state = state_dirs[0]
    redis_url = urlsplit(state.urls.redis_url)
    # The suite's native Redis has a password (requirepass): the URL names the `default` user
    # and that password, which must not be printed.
    password = redis_url.password
    assert password
    host = f"{redis_url.hostname}:{redis_url.port}"
    env = state.env | {"REDIS_URL": redis_url._replace(netloc=f"default:{password}@{host}").geturl()}
    result = run_nox("-s", "infra", **env)
    assert result.returncode == 0, result.stdout
    assert password not in result.stdout
    assert state.urls.postgres_password not in result.stdout
    assert the_line(result.stdout, "redis://").endswith(f"redis      redis://default:***@{host}/0")
    assert the_line(result.stdout, "postgres   postgresql://").endswith(
        f"postgres   postgresql://{state.urls.postgres_user}:***@{state.urls.postgres_host}:"
        f"{state.urls.postgres_port}/postgres"
    )


# ----- issue 19 item 12: limited roles on an external server ------------------------------------
@contextlib.contextmanager
def limited_roles(urls: ServiceUrls, *grants: str) -> Iterator[list[ServiceUrls]]:
    """Login roles made by the server's superuser, one per grant ("" or "CREATEDB"); dropped after
    with every database they own."""
    names = [f"fr_role_{uuid.uuid4().hex[:8]}" for _ in grants]
    password = uuid.uuid4().hex
    with psycopg.connect(urls.database_url(), autocommit=True) as admin:
        for name, grant in zip(names, grants, strict=True):
            create = sql.SQL(f"CREATE ROLE {{}} LOGIN PASSWORD {{}} {grant}")
            admin.execute(create.format(sql.Identifier(name), sql.Literal(password)))
    try:
        yield [replace(urls, postgres_user=name, postgres_password=password) for name in names]
    finally:
        with psycopg.connect(urls.database_url(), autocommit=True) as admin:
            owned = admin.execute(
                "SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = ANY(%s)", (names,)
            ).fetchall()
            for (database,) in owned:
                admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(database)))
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            for name in names:
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def templates_by_owner(urls: ServiceUrls) -> dict[str, list[str]]:
    with psycopg.connect(urls.database_url(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_get_userbyid(datdba), datname FROM pg_database WHERE datistemplate AND datname LIKE %s",
            ("finance_report_template_%",),
        ).fetchall()
    found: dict[str, list[str]] = {}
    for owner, name in rows:
        found.setdefault(owner, []).append(name)
    return found


def test_a_role_without_createdb_is_one_line_naming_the_privilege(state_dirs, tmp_path):
    """It ended in an `InsufficientPrivilege` traceback."""
    clone = state_dirs[0]
    with limited_roles(clone.urls, "") as [role]:
        branch = unique("nocreatedb")
        run = start_run(branch, tmp_path, workers=0, **dict(clone.env, DATABASE_URL=role.database_url()))
        assert run.wait(timeout=300) != 0
        text = output(branch, tmp_path)
        assert TRACEBACK not in text
        line = the_line(text, "may not create databases")
        assert f"the PostgreSQL role {role.postgres_user} may not create databases (it lacks CREATEDB)" in line
        assert role.postgres_password not in text


def test_a_second_role_never_clones_a_template_another_role_built(state_dirs, tmp_path):
    """Templates were keyed by the migrations alone: a second role with CREATEDB cloned the first
    role's template and its tests failed on `permission denied for table alembic_version`."""
    clone = state_dirs[0]
    with limited_roles(clone.urls, "CREATEDB", "CREATEDB") as roles:
        for role in roles:
            branch = unique("role")
            run = start_run(branch, tmp_path, workers=0, **dict(clone.env, DATABASE_URL=role.database_url()))
            assert run.wait(timeout=600) == 0, output(branch, tmp_path)
        templates = templates_by_owner(clone.urls)
        # Each role cloned a template of its own, whose tables it owns.
        assert [len(templates.get(role.postgres_user, [])) for role in roles] == [1, 1], templates
