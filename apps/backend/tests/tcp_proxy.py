"""A real TCP proxy on loopback, for network faults between the app and a service.

The app connects to the proxy instead of the service; the proxy forwards bytes both ways and can
be told to misbehave the way networks do:

- `drop_reply_after(pattern)`: forward the client's message containing `pattern`, let the service
  process it and answer, throw the answer away and close both sides (a COMMIT applied by
  PostgreSQL whose reply is lost).
- `cut_on(pattern)`: close both sides instead of forwarding the message containing `pattern`
  (a connection killed mid-request).
- `stall()` / `resume()`: swallow everything in both directions without closing, the way a hung
  service or a partitioned network behaves; `resume()` forwards new traffic again.

Each fault fires once (the first matching message) so that a retry goes through, as it would
after a real transient fault.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

BUFFER_BYTES = 65536
# How long the proxy waits for the service's reply it is about to drop.
REPLY_WAIT_SECONDS = 10.0


class LoopbackProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.fault: tuple[str, bytes] | None = None
        self.faults_fired: list[str] = []
        self.stalled = threading.Event()
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()

    def drop_reply_after(self, pattern: bytes) -> None:
        with self.lock:
            self.fault = ("drop_reply", pattern)

    def cut_on(self, pattern: bytes) -> None:
        with self.lock:
            self.fault = ("cut", pattern)

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()

    def close(self) -> None:
        self.closed = True
        with suppress(OSError):
            self.listener.close()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            _close(sock)

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            link = Link(client, server)
            threading.Thread(target=self._client_to_server, args=(link,), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(link,), daemon=True).start()

    def _take_fault(self, data: bytes) -> str | None:
        with self.lock:
            if self.fault is not None and self.fault[1] in data:
                kind = self.fault[0]
                self.fault = None
                self.faults_fired.append(kind)
                return kind
        return None

    def _client_to_server(self, link: Link) -> None:
        while data := _receive(link.client):
            if self.stalled.is_set():
                continue
            fault = self._take_fault(data)
            if fault == "cut":
                break
            if fault == "drop_reply":
                # The service gets the message and answers; the answer goes nowhere.
                link.dropping_replies = True
                with suppress(OSError):
                    link.server.sendall(data)
                link.reply_dropped.wait(REPLY_WAIT_SECONDS)
                break
            try:
                link.server.sendall(data)
            except OSError:
                break
        link.close()

    def _server_to_client(self, link: Link) -> None:
        while data := _receive(link.server):
            if link.dropping_replies:
                link.reply_dropped.set()
                continue
            if self.stalled.is_set():
                continue
            try:
                link.client.sendall(data)
            except OSError:
                break
        link.close()


class Link:
    """One proxied connection: the app's socket and the service's."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.dropping_replies = False
        self.reply_dropped = threading.Event()

    def close(self) -> None:
        _close(self.client)
        _close(self.server)


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(BUFFER_BYTES)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


@contextmanager
def loopback_proxy(target_host: str, target_port: int) -> Iterator[LoopbackProxy]:
    proxy = LoopbackProxy(target_host, target_port)
    try:
        yield proxy
    finally:
        proxy.close()
