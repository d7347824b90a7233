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
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from noxlib.processes import TrackedProcess


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
        return self.pid == other.pid and abs(self.create_time - other.create_time) < 0.05


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


class LeaseRegistry:
    """The lease file under the user's state directory and its lock."""

    def __init__(self, directory: Path) -> None:
        # filelock is imported where it is used: `nox -l` imports this module and must stay cheap.
        from filelock import FileLock

        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "leases.json"
        self.lock = FileLock(str(directory / "leases.lock"))

    def _read(self) -> RegistryState:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return RegistryState()
        try:
            data = json.loads(raw)
            return RegistryState(
                leases=[Lease(**entry) for entry in data.get("leases", [])],
                services=data.get("services"),
            )
        except (ValueError, TypeError, AttributeError):
            # A torn or hand-edited file must not wedge every later run: keep it for a
            # post-mortem and start from an empty registry (live runs re-register on release).
            backup = self.path.with_name(f"leases.corrupt-{int(time.time())}.json")
            self.path.replace(backup)
            print(f"warning: lease file was unreadable; moved it to {backup}", file=sys.stderr)
            return RegistryState()

    def _write(self, state: RegistryState) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(state.to_json())
        temporary.replace(self.path)

    @contextlib.contextmanager
    def locked(self, timeout: float = 600) -> Iterator[RegistryState]:
        """Read, let the caller change, and write back — all while holding the file lock."""
        with self.lock.acquire(timeout=timeout):
            state = self._read()
            state.prune_dead()
            yield state
            self._write(state)

    def snapshot(self) -> RegistryState:
        with self.locked() as state:
            return state
