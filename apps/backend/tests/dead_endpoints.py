"""Real endpoints that fail, for testing how the app behaves when a dependency is down.

`closed_port()` is a loopback port nothing listens on (connections are refused at once);
`silent_server()` accepts connections and never answers, the way a hung service behaves, so the
only way out is a timeout.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def closed_port() -> int:
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
