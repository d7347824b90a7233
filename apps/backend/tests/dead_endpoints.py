"""Real endpoints that fail, for testing how the app behaves when a dependency is down.

`closed_port()` is a loopback port that refuses connections at once, for as long as the test
process lives; `free_port()` is one for a server the test starts to bind; `silent_server()`
accepts connections and never answers, the way a hung service behaves, so the only way out is a
timeout.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

# Bound, never listening, never closed: see closed_port().
_refusing_sockets: list[socket.socket] = []


def closed_port() -> int:
    """A port this process keeps bound without listening on it: the kernel answers every connection
    with a reset, and no other process can take the port meanwhile (a port merely closed again may
    become another worker's server or an outgoing connection's port, and then the "dead"
    dependency hangs instead of refusing)."""
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    _refusing_sockets.append(refusing)
    return refusing.getsockname()[1]


def free_port() -> int:
    """A loopback port free a moment ago, for a server the test is about to start on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def silent_server() -> Iterator[int]:
    """A listening socket that is never accepted from: the kernel completes the handshake, then
    nothing is ever sent back."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]
