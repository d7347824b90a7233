"""Who created each database, recorded on the server itself, and what a run can prove about them.

A lease registry only knows the runs of its own state directory; a `down` from another clone,
user or CI runner sharing the server does not see them. So every database the suite creates
carries its creator in `COMMENT ON DATABASE` (host, state directory, PID and start time), and
only a database whose creator is provably gone is ever dropped (noxlib/run/databases.py).
"""

from __future__ import annotations

import enum
import json
import math
import re
import socket
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from noxlib.core.processes import TrackedProcess, same_start

if TYPE_CHECKING:
    import psycopg

# Written into every database comment we set; a comment without it is somebody else's.
OWNER_MARK = "finance_report nox suite"


@dataclass(frozen=True)
class Owner:
    """Who created a database: the comment travels with it, so any `down` can tell a live run's
    database from a dead one's — and whether it is in a position to judge (same host and state dir)."""

    host: str
    state_dir: str
    pid: int
    create_time: float

    @classmethod
    def current(cls) -> Owner:
        from noxlib.core.processes import current_process_identity
        from noxlib.names.namespace import state_dir_id

        me = current_process_identity()
        return cls(host=socket.gethostname(), state_dir=state_dir_id(), pid=me.pid, create_time=me.create_time)

    def comment(self, kind: str) -> str:
        return json.dumps({"created_by": OWNER_MARK, "kind": kind, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_comment(cls, text: str | None) -> Owner | None:
        """The owner a comment records; None for no comment, someone else's, or a malformed one."""
        try:
            data = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("created_by") != OWNER_MARK:
            return None
        host, state, pid, created = (data.get(key) for key in ("host", "state_dir", "pid", "create_time"))
        if not (isinstance(host, str) and host and isinstance(state, str) and state):
            return None
        if not (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0):
            return None
        if not (isinstance(created, int | float) and not isinstance(created, bool) and math.isfinite(created)):
            return None
        return cls(host=host, state_dir=state, pid=pid, create_time=float(created))

    def is_alive(self) -> bool:
        return TrackedProcess(name="owner", pid=self.pid, create_time=self.create_time).is_running()

    def same_process(self, other: Owner) -> bool:
        return (self.host, self.pid) == (other.host, other.pid) and same_start(self.create_time, other.create_time)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.create_time))
        return f"pid {self.pid} on {self.host} (started {started}, state dir {self.state_dir})"


class Verdict(enum.Enum):
    """What this process can prove about a database's creator."""

    ALIVE = "its run is alive"
    DEAD = "its run has exited"
    DEAD_ELSEWHERE = "its run has exited, but it belongs to another state directory"
    OTHER_HOST = "its run is on another host, whose processes cannot be checked from here"
    UNRECORDED = "no owner is recorded on it"


def judge(owner: Owner | None, here: Owner) -> Verdict:
    """Only a creator on this host can be checked (PID + start time); only our own state
    directory's databases are ours to drop without being asked."""
    if owner is None:
        return Verdict.UNRECORDED
    if owner.host != here.host:
        return Verdict.OTHER_HOST
    if owner.is_alive():
        return Verdict.ALIVE
    return Verdict.DEAD if owner.state_dir == here.state_dir else Verdict.DEAD_ELSEWHERE


def recorded_owners(connection: psycopg.Connection, pattern: re.Pattern[str]) -> dict[str, Owner | None]:
    """Every database whose name matches `pattern`, with the owner its comment records."""
    rows = connection.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database ORDER BY datname"
    ).fetchall()
    return {name: Owner.from_comment(comment) for name, comment in rows if pattern.match(name)}
