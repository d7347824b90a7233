"""Who is using the shared services right now — the registry every run reads and writes under a lock.

The shell version of this repo kept a JSON list of active namespaces and read-modified-wrote it
without a lock, so one run un-tracked another and a later cleanup dropped its databases. Here
every change happens inside `LeaseRegistry.locked()`, a lease names its holder by PID *and*
process start time (a reused PID is not mistaken for a live run), and the services are stopped
only by the last lease out — and only when a test run, not `infra`/`dev`, started them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from noxlib.core.errors import UserError
from noxlib.core.json_store import move_aside, write_atomically
from noxlib.core.processes import TrackedProcess, same_start


@dataclass
class Lease:
    """One run's claim on the services."""

    pid: int
    create_time: float
    namespace: str
    backend: str
    kind: str
    ports: dict[str, int] = field(default_factory=dict)
    template: str | None = None
    acquired_at: float = field(default_factory=time.time)

    @property
    def holder(self) -> TrackedProcess:
        return TrackedProcess(name=self.kind, pid=self.pid, create_time=self.create_time)

    def is_alive(self) -> bool:
        return self.holder.is_running()

    def same_holder(self, other: Lease) -> bool:
        return self.pid == other.pid and same_start(self.create_time, other.create_time)


@dataclass
class RegistryState:
    """The registry file's content: live leases and who started the services."""

    leases: list[Lease] = field(default_factory=list)
    # None when no services are recorded; else {"backend": ..., "kept": bool, "started_by": ...}
    services: dict[str, Any] | None = None
    pruned: list[Lease] = field(default_factory=list)

    def prune_dead(self) -> list[Lease]:
        dead = [lease for lease in self.leases if not lease.is_alive()]
        self.leases = [lease for lease in self.leases if lease.is_alive()]
        self.pruned.extend(dead)
        return dead

    def others(self, mine: Lease) -> list[Lease]:
        return [lease for lease in self.leases if not lease.same_holder(mine)]

    def to_json(self) -> str:
        return json.dumps(
            {"leases": [asdict(lease) for lease in self.leases], "services": self.services},
            indent=2,
        )


class CorruptRegistry(ValueError):
    """The registry file is not what this module writes; the message says where it is wrong."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _is_port_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and _is_int(port) and 0 < port < 65536 for key, port in value.items()
    )


# Every field a lease file may hold and what makes its value valid. A value of another type
# (a `create_time` string, pid -1) would otherwise crash every run far from here, in psutil.
_LEASE_FIELDS: dict[str, Callable[[object], bool]] = {
    "pid": lambda value: _is_int(value) and 0 < value < 2**31,  # type: ignore[operator]
    "create_time": _is_time,
    "namespace": lambda value: isinstance(value, str) and bool(value),
    "backend": lambda value: isinstance(value, str) and bool(value),
    "kind": lambda value: isinstance(value, str) and bool(value),
    "ports": _is_port_map,
    "template": lambda value: value is None or isinstance(value, str),
    "acquired_at": _is_time,
}
_SERVICES_FIELDS: dict[str, Callable[[object], bool]] = {
    "backend": lambda value: isinstance(value, str) and bool(value),
    "kept": lambda value: isinstance(value, bool),
    "started_by": lambda value: isinstance(value, str),
}


def _check_fields(entry: object, rules: dict[str, Callable[[object], bool]], what: str) -> None:
    if not isinstance(entry, dict):
        raise CorruptRegistry(f"{what} is {type(entry).__name__}, not an object")
    for key, value in entry.items():
        rule = rules.get(key)
        if rule is not None and not rule(value):
            raise CorruptRegistry(f"{what} field {key!r} has an invalid value")


def parse_registry(raw: bytes) -> RegistryState:
    """The registry file's bytes as a `RegistryState`, or `CorruptRegistry` saying what is wrong.

    Strict on everything this module reads: a file that is not UTF-8 JSON of this shape is not
    trusted in part, because half a registry would drop or stop things from under a run. Fields
    this version does not know are ignored rather than fatal: worktrees at different commits
    share one state directory, and moving a newer suite's registry aside would unlist its live
    runs.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptRegistry(f"not UTF-8 JSON ({type(error).__name__})") from None
    if not isinstance(data, dict) or set(data) - {"leases", "services"}:
        raise CorruptRegistry('not an object with "leases" and "services"')
    entries = data.get("leases", [])
    if not isinstance(entries, list):
        raise CorruptRegistry('"leases" is not a list')
    required = {item.name for item in fields(Lease) if item.default is MISSING and item.default_factory is MISSING}
    leases = []
    known = {item.name for item in fields(Lease)}
    for index, entry in enumerate(entries):
        _check_fields(entry, _LEASE_FIELDS, f"lease {index}")
        missing = required - set(entry)
        if missing:
            raise CorruptRegistry(f"lease {index} lacks {', '.join(sorted(missing))}")
        leases.append(Lease(**{key: value for key, value in entry.items() if key in known}))
    services = data.get("services")
    if services is not None:
        _check_fields(services, _SERVICES_FIELDS, '"services"')
        if "backend" not in services:
            raise CorruptRegistry('"services" names no backend')
    return RegistryState(leases=leases, services=services)


class LeaseRegistry:
    """The lease file under the user's state directory and its lock."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "leases.json"
        # filelock is imported where it is used: `nox -l` imports this module and must stay cheap.
        from filelock import FileLock

        self.lock = FileLock(str(directory / "leases.lock"))

    def _move_aside(self, path: Path, what: str, reason: str) -> None:
        """Keep a corrupt state file for a post-mortem and start afresh: live runs re-register."""
        move_aside(path, what, reason)

    def _read(self) -> RegistryState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return RegistryState()
        except IsADirectoryError:
            self._move_aside(self.path, "lease file", "a directory, not a file")
            return RegistryState()
        except OSError as error:
            raise UserError(
                f"cannot read the lease file {self.path} ({error.strerror}); fix its permissions or remove it."
            ) from None
        try:
            return parse_registry(raw)
        except CorruptRegistry as error:
            self._move_aside(self.path, "lease file", str(error))
            return RegistryState()

    def _write(self, state: RegistryState) -> None:
        try:
            write_atomically(self.path, state.to_json())
        except OSError as error:
            raise UserError(
                f"cannot write the lease file {self.path} ({error.strerror}); "
                "make the state directory writable or set FR_CACHE_DIR to one you own."
            ) from None

    def _acquire(self, timeout: float) -> contextlib.AbstractContextManager[object]:
        lock_path = Path(self.lock.lock_file)
        if lock_path.is_dir():
            # Nobody can hold a lock that is a directory, so moving it aside takes nothing from anyone.
            self._move_aside(lock_path, "lease lock file", "a directory, not a file")
        try:
            return self.lock.acquire(timeout=timeout)
        except OSError as error:
            raise UserError(
                f"cannot lock {lock_path} ({error.strerror or error}); "
                "make the state directory writable or set FR_CACHE_DIR to one you own."
            ) from None

    @contextlib.contextmanager
    def locked(self, timeout: float = 600) -> Iterator[RegistryState]:
        """Read, let the caller change, and write back — all while holding the file lock."""
        with self._acquire(timeout):
            state = self._read()
            state.prune_dead()
            yield state
            self._write(state)

    def snapshot(self) -> RegistryState:
        with self.locked() as state:
            return state
