"""A separate process that adds and removes leases, for tests/test_leases.py's concurrency test.

Usage: python lease_writer.py STATE_DIR PREFIX COUNT HOLDER_PID HOLDER_CREATE_TIME

Adds COUNT leases named PREFIX-0 .. PREFIX-(COUNT-1), one `locked()` block each, then removes
the even-numbered ones again. The leases name the test process as their holder, so none of them
is pruned as dead while the writers race.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from noxlib.run.leases import Lease, LeaseRegistry


def write(registry: LeaseRegistry, prefix: str, count: int, pid: int, create_time: float) -> None:
    """Add then remove leases one change at a time; a lost update would show in the final file."""
    for index in range(count):
        with registry.locked() as state:
            # Widen the read-modify-write window: without the lock, writers would overwrite each other.
            time.sleep(0.001)
            state.leases.append(
                Lease(pid=pid, create_time=create_time, namespace=f"{prefix}-{index}", backend="native", kind="test")
            )
    for index in range(0, count, 2):
        with registry.locked() as state:
            time.sleep(0.001)
            state.leases = [lease for lease in state.leases if lease.namespace != f"{prefix}-{index}"]


if __name__ == "__main__":
    directory, prefix, count, pid, create_time = sys.argv[1:6]
    write(LeaseRegistry(Path(directory)), prefix, int(count), int(pid), float(create_time))
