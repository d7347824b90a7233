"""Trust nothing half-made: what the native backend finds on disk is checked before root acts on it.

Each test plants what an adversarial run planted — as the `postgres` account, through a real
`runuser`, or by hand in the state files — then runs nox as a user would and shows that root
followed no link, kept the cluster, and said in one line what was wrong.
"""

# The private-state fixtures are shared with test_faults.py by import; pytest injects them by name.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import redis

from noxlib.core import processes
from noxlib.services.native_postgres import find_postgres_bindir
from noxlib.services.native_redis import find_redis_server
from tests.runs import nox_command, output, run_nox, start_in_terminal
from tests.test_faults import (  # noqa: F401
    PRIVATE,
    TRACEBACK,
    PrivateState,
    assert_stopped,
    private,
    private_state,
    runs,
    the_line,
    unique,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SERVICE_ACCOUNT = "postgres"


def account() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("planting files as another account needs root")
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        pytest.skip(f"no {SERVICE_ACCOUNT!r} account")


def as_postgres(script: str) -> subprocess.CompletedProcess[str]:
    """`script` run by the service account in a process of its own, as an attacker's shell would."""
    return subprocess.run(
        ["runuser", "-u", SERVICE_ACCOUNT, "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def root_dir() -> Iterator[Path]:
    """A root-owned directory under /var/tmp for victims and squats: 0755, reachable by everyone."""
    path = Path(tempfile.mkdtemp(prefix="finance_report-trust-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def system_identifier(private: PrivateState) -> int:
    """The running cluster's identity: initdb makes a new one, so a re-created cluster shows here."""
    with psycopg.connect(private.native.urls().database_url()) as connection:
        row = connection.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    return int(row[0])


def victim(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("root's precious file\n")
    path.chmod(0o644)
    return path


def assert_untouched(path: Path) -> None:
    info = path.lstat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o644), path
    assert path.read_text() == "root's precious file\n"


# ----- item 1: links planted by the postgres account ------------------------------------------
@PRIVATE
def test_links_planted_by_the_postgres_account_are_never_followed(private, root_dir):
    """After infra/down, postgres replaced .pwfile and postgres.log with links to root's files and
    touched initdb.unfinished; the next infra chowned both, wrote the password into one, appended
    the log to the other and re-created the cluster."""
    postgres = account()
    assert private.nox("-s", "infra").returncode == 0
    cluster = system_identifier(private)
    assert private.nox("-s", "down").returncode == 0
    pg_root = private.native.root / "postgres"
    data = pg_root / "data"

    # Now: root's directory, so the account cannot plant anything beside its cluster.
    assert (pg_root.stat().st_uid, data.stat().st_uid) == (0, postgres.pw_uid)
    refused = as_postgres(f"ln -s /etc/passwd '{pg_root}/postgres.log.new' || touch '{pg_root}/initdb.unfinished'")
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr

    # As earlier versions left it: the whole directory the account's, its files planted.
    os.chown(pg_root, postgres.pw_uid, postgres.pw_gid)
    password_target, log_target = victim(root_dir, "pw-target"), victim(root_dir, "log-target")
    planted = as_postgres(
        f"cd '{pg_root}' && rm -f postgres.log && ln -s '{log_target}' postgres.log"
        f" && ln -s '{password_target}' .pwfile && touch initdb.unfinished"
    )
    assert planted.returncode == 0, planted.stderr

    infra = private.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    running = private.processes()
    assert_untouched(password_target)
    assert_untouched(log_target)
    assert system_identifier(private) == cluster, "the cluster was wiped and re-created"
    assert pg_root.stat().st_uid == 0
    log = (pg_root / "postgres.log").lstat()
    assert stat.S_ISREG(log.st_mode)
    assert log.st_uid == 0
    assert not (pg_root / ".pwfile").exists()
    assert not (pg_root / "initdb.unfinished").exists()
    assert TRACEBACK not in infra.stdout
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)


WRAPPED_INITDB = """#!/bin/sh
# Records how the password file looks to initdb, then is initdb.
for argument in "$@"; do
  case "$argument" in --pwfile=*) stat -c '%a %U' "${{argument#--pwfile=}}" > '{record}' ;; esac
done
exec '{real}' "$@"
"""


@PRIVATE
def test_a_new_cluster_gets_its_password_in_a_0600_file(private, root_dir):
    """The password file was created through whatever link lay there, and left 0644."""
    account()
    real = find_postgres_bindir()
    bindir = root_dir / "bin"
    bindir.mkdir()
    for binary in real.iterdir():
        (bindir / binary.name).symlink_to(binary)
    record = root_dir / "record"
    record.touch()
    record.chmod(0o666)
    (bindir / "initdb").unlink()
    (bindir / "initdb").write_text(WRAPPED_INITDB.format(record=record, real=real / "initdb"))
    (bindir / "initdb").chmod(0o755)
    shutil.rmtree(private.native.root / "postgres", ignore_errors=True)

    infra = run_nox("-s", "infra", FR_PG_BINDIR=str(bindir), **private.env)
    assert infra.returncode == 0, infra.stdout
    running = private.processes()
    assert record.read_text().split() == ["600", SERVICE_ACCOUNT]
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)


@pytest.mark.parametrize("squat", ["owned by postgres", "world-writable", "link by postgres"])
def test_a_squatted_state_dir_is_refused_in_one_line(root_dir, squat):
    """A state directory pre-created in /var/tmp by another account (or open to it) was used as it was."""
    account()
    state = Path(f"/var/tmp/finance_report-squat-{uuid.uuid4().hex[:8]}")
    try:
        if squat == "owned by postgres":
            assert as_postgres(f"mkdir -m 0755 '{state}'").returncode == 0
            expected = "is owned by 'postgres', not by you"
        elif squat == "world-writable":
            state.mkdir()
            state.chmod(0o777)
            expected = "is writable by other accounts (mode 0777)"
        else:
            # A link to a directory of root's: root would keep its state wherever postgres points.
            assert as_postgres(f"ln -s '{root_dir}' '{state}'").returncode == 0
            expected = "is a symbolic link owned by 'postgres'"
        result = run_nox("-s", "down", FR_CACHE_DIR=str(state))
        assert result.returncode != 0
        assert TRACEBACK not in result.stdout
        line = the_line(result.stdout, "FR_CACHE_DIR")
        assert line.startswith(f"nox > Session down aborted: FR_CACHE_DIR {state} {expected}"), line
        assert list(root_dir.iterdir()) == []
    finally:
        if state.is_symlink():
            state.unlink()
        shutil.rmtree(state, ignore_errors=True)


# ----- item 3: a corrupt credentials.json -------------------------------------------------------
CORRUPTIONS = {
    "torn": lambda path: path.write_text('{"postgres_password": "abc'),
    "empty object": lambda path: path.write_text("{}"),
    "a directory": lambda path: (path.unlink(), path.mkdir()),
    "not UTF-8": lambda path: path.write_bytes(b'{"postgres_password": "\xff\xfe"}'),
    "missing": lambda path: path.unlink(),
}


@PRIVATE
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_lost_credentials_keep_the_cluster_and_reset_its_password(private, runs, tmp_path, corruption):
    """infra generated new passwords for the existing cluster; the next test died on
    "password authentication failed" ({} gave a KeyError, a directory an IsADirectoryError)."""
    assert private.nox("-s", "infra").returncode == 0
    cluster = system_identifier(private)
    CORRUPTIONS[corruption](private.native.credentials_file)

    infra = private.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    assert TRACEBACK not in infra.stdout
    assert the_line(infra.stdout, "password was reset").endswith(f"the new one is in {private.native.credentials_file}")
    if corruption != "missing":
        assert len(list(private.native.root.glob("credentials.json.corrupt-*"))) == 1
    assert stat.S_IMODE(private.native.credentials_file.stat().st_mode) == 0o600
    assert system_identifier(private) == cluster, "the cluster was re-created"

    branch = unique("creds")
    run = runs(branch, workers=0, **private.env)
    assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    running = private.processes()
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)
    for backup in private.native.root.glob("credentials.json.corrupt-*"):
        shutil.rmtree(backup) if backup.is_dir() else backup.unlink()


@PRIVATE
def test_down_stops_services_whose_credentials_are_lost(private):
    assert private.nox("-s", "infra").returncode == 0
    running = private.processes()
    private.native.credentials_file.write_text("{}")
    down = private.nox("-s", "down")
    assert down.returncode == 0, down.stdout
    assert TRACEBACK not in down.stdout
    assert the_line(down.stdout, "credentials.json").endswith("Test databases were not checked.")
    assert "services   stopped (native)" in down.stdout
    assert_stopped(private, running)
    # The cluster keeps its password until the next infra resets it.
    infra = private.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    assert private.native.healthy()
    running = private.processes()
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)


# ----- item 4: a lost, emptied or corrupt services.json -----------------------------------------
LOST_RECORDS = {
    "lost": lambda path: path.unlink(),
    "emptied": lambda path: path.write_text(""),
    "a bad port": lambda path: path.write_text(json.dumps({"postgres": {"port": "x"}})),
}


def marked_services(private: PrivateState) -> list[int]:
    """Every live Redis and S3 of the private state, recorded or not: they work in its directories."""
    directories = {private.native.root / "redis", private.native.root / "s3"}
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if Path(process.cwd()) in directories and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return sorted(found)


@PRIVATE
@pytest.mark.parametrize("loss", list(LOST_RECORDS))
def test_services_outlive_their_record_and_are_still_found_and_stopped(private, loss):
    """With services.json lost or emptied, infra started a second Redis and S3 and `down` said
    "services stopped" while the first pair ran on; `"port": "x"` was a ValueError traceback
    that left PostgreSQL running."""
    assert private.nox("-s", "infra").returncode == 0
    running = private.processes()
    pair = marked_services(private)
    assert len(pair) == 2
    LOST_RECORDS[loss](private.native.state_file)

    again = private.nox("-s", "infra")
    assert again.returncode == 0, again.stdout
    assert TRACEBACK not in again.stdout
    assert marked_services(private) == pair, "a second Redis and S3 were started"
    assert private.processes() == running
    if loss == "a bad port":
        assert the_line(again.stdout, "services record was unreadable").endswith(
            str(next(private.native.root.glob("services.json.corrupt-*")))
        )
        LOST_RECORDS[loss](private.native.state_file)

    down = private.nox("-s", "down")
    assert down.returncode == 0, down.stdout
    assert TRACEBACK not in down.stdout
    assert "services   stopped (native)" in down.stdout
    assert_stopped(private, running)
    assert marked_services(private) == []
    for backup in private.native.root.glob("services.json.corrupt-*"):
        backup.unlink()


# ----- item 5: signals during infra and docs ----------------------------------------------------
def start_nox(log: Path, *args: str, **env: str) -> subprocess.Popen:
    """`nox ARGS` as a shell starts a foreground job: its own process group, SIGINT and SIGHUP acting."""
    return start_in_terminal(nox_command(*args), log, **env)


def wait_for(condition: Callable[[], bool], run: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)


def postgres_recorded(private: PrivateState) -> bool:
    """PostgreSQL spawned and recorded; Redis and S3 not yet started."""
    try:
        record = json.loads(private.native.state_file.read_text())
    except (OSError, ValueError):
        return False
    return bool((record.get("postgres") or {}).get("process")) and not (record.get("redis") or {}).get("process")


@PRIVATE
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_infra_leaves_nothing_half_started(private, tmp_path, sig, code):
    """SIGTERM and SIGHUP ended infra at once (143/129) with PostgreSQL up and recorded as kept,
    Redis and S3 never started."""
    private.native.state_file.unlink(missing_ok=True)
    log = tmp_path / "infra.log"
    run = start_nox(log, "-s", "infra", **private.env)
    try:
        wait_for(lambda: postgres_recorded(private), run, log)
        if sig == signal.SIGINT:
            os.killpg(run.pid, sig)  # the terminal's Ctrl+C reaches the whole group
        else:
            os.kill(run.pid, sig)  # `kill PID`
        assert run.wait(timeout=120) == code, log.read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert TRACEBACK not in log.read_text()
    assert not private.native.running(), log.read_text()
    assert private.recorded()["services"] is None
    assert processes.group_members(run.pid) == []


# One worker serves them in turn: two `mkdocs serve` started together may both find the same
# port free, and the second then exits before it serves (not what this test is about).
@pytest.mark.xdist_group(name="docs_serve")
@pytest.mark.docs  # mkdocs serves (reads) the docs: an input of docs_check, not of noxlib_test
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_on_docs_serve_is_not_a_success(tmp_path, sig, code):
    """Ctrl+C on `nox -s docs` (serve) exited 0 with "Session docs was successful"; SIGTERM and
    SIGHUP killed nox on the spot."""
    log = tmp_path / "docs.log"
    # Not -R: the docs venv is made on first use (the suite's nested envdir keeps it).
    command = nox_command("-s", "docs", "--", "serve")
    command.remove("-R")
    run = start_in_terminal(command, log)
    try:
        wait_for(lambda: "Serving on http://" in log.read_text(errors="replace"), run, log, timeout=300)
        if sig == signal.SIGTERM:
            os.kill(run.pid, sig)  # `kill PID`
        else:
            os.killpg(run.pid, sig)  # Ctrl+C, or the terminal closed: the whole foreground group
        assert run.wait(timeout=60) == code, log.read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    text = log.read_text()
    assert "Session docs was successful" not in text
    assert TRACEBACK not in text
    deadline = time.monotonic() + 10  # mkdocs, told by nox to stop, may outlive nox by a moment
    while processes.group_members(run.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes.group_members(run.pid) == []


# ----- item 2: Redis answers only with its password ---------------------------------------------
@PRIVATE
def test_redis_refuses_a_client_without_its_password_and_runs_still_work(private, runs, tmp_path):
    """The native Redis answered PING to anyone on the machine."""
    infra = private.nox("-s", "infra")
    assert infra.returncode == 0, infra.stdout
    urls = private.native.urls()
    address = urlsplit(urls.redis_url)
    assert address.password
    stranger = redis.Redis(host=address.hostname, port=address.port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        stranger.ping()
    stranger.close()
    assert the_line(infra.stdout, "redis://").endswith(f"redis      redis://:***@{address.hostname}:{address.port}/0")
    assert address.password not in infra.stdout
    # Neither on the command line every account's `ps` shows, nor in a file others can read.
    server = psutil.Process(private.processes()["redis"].pid)
    assert address.password not in " ".join(server.cmdline())
    assert stat.S_IMODE((private.native.root / "redis" / "redis.conf").stat().st_mode) == 0o600

    # A run's app and harness get the password in REDIS_URL (the probe writes a key with it).
    branch = unique("redisauth")
    run = runs(branch, workers=0, **private.env)
    assert run.wait(timeout=300) == 0, output(branch, tmp_path)
    running = private.processes()
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)


@PRIVATE
def test_a_redis_started_without_a_password_is_restarted_with_it(private):
    """Services an earlier version started (no password; credentials without redis_password)."""
    assert private.nox("-s", "infra").returncode == 0
    assert private.nox("-s", "down").returncode == 0
    credentials = json.loads(private.native.credentials_file.read_text())
    del credentials["redis_password"]
    private.native.credentials_file.write_text(json.dumps(credentials))
    directory = private.native.root / "redis"
    port = processes.free_port()
    argv = [str(find_redis_server()), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
    old, _ = processes.start("redis", argv, log_path=directory / "redis.log")
    record = json.loads(private.native.state_file.read_text())
    record["redis"] = {"port": port, "process": old.to_dict()}
    private.native.state_file.write_text(json.dumps(record))
    assert redis.Redis(port=port).ping()
    try:
        infra = private.nox("-s", "infra")
        assert infra.returncode == 0, infra.stdout
        assert not old.is_running(), infra.stdout
        assert (
            json.loads(private.native.credentials_file.read_text())["postgres_password"]
            == (credentials["postgres_password"])
        )
        assert private.native.healthy()
    finally:
        processes.stop(old)
    running = private.processes()
    assert private.nox("-s", "down").returncode == 0
    assert_stopped(private, running)


# ----- a default port taken by another state directory between the check and the bind ---------
def test_state_directories_starting_at_once_on_the_same_ports_each_get_services_of_their_own(tmp_path):
    """Found by a pre-push bench: a run's S3 lost port 9000 to another state directory's, which
    answered its readiness probe (moto took any credentials) until that one was stopped."""
    from noxlib.services.native import NativeServices
    from noxlib.services.tools import tools_env, tools_root

    tools_env()
    ports = {}
    for name in ("postgres", "redis", "s3"):
        with contextlib.closing(socket.socket()) as holder:
            holder.bind(("127.0.0.1", 0))
            ports[name] = holder.getsockname()[1]
    roots = []
    try:
        for _ in range(3):
            root = Path(tempfile.mkdtemp(prefix="finance_report-ports-", dir="/var/tmp"))
            root.chmod(0o755)
            (root / "tools").symlink_to(tools_root(), target_is_directory=True)
            (root / "native").mkdir(mode=0o755)
            # The same ports recorded for all three, as two checkouts' first starts both pick 9000.
            (root / "native" / "services.json").write_text(json.dumps({n: {"port": p} for n, p in ports.items()}))
            roots.append(root)
        starts = [
            start_in_terminal(nox_command("-s", "infra"), tmp_path / f"infra-{i}.log", FR_CACHE_DIR=str(root))
            for i, root in enumerate(roots)
        ]
        for i, run in enumerate(starts):
            assert run.wait(timeout=300) == 0, (tmp_path / f"infra-{i}.log").read_text()
        listening: list[int] = []
        for root in roots:
            for name, component in NativeServices(root / "native")._load().items():
                assert component.process is not None, name
                assert component.running(), name
                # The recorded server is the one that answers on the recorded port.
                assert component.port in processes.listening_ports(component.process), (root, name)
                listening.append(component.port)
        assert len(set(listening)) == len(listening)  # nobody shares a port
    finally:
        for root in roots:
            run_nox("-s", "down", "--", "--force", FR_CACHE_DIR=str(root))
            native = NativeServices(root / "native")
            if native.running():
                native.stop()
            shutil.rmtree(root, ignore_errors=True)
