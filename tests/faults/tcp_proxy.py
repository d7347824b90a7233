"""A real loopback TCP proxy for network faults: forwards bytes, can hold each request back, records methods.

It sits between a client and a server on 127.0.0.1 and changes nothing in what passes through, except
that every chunk from the client waits `delay` seconds before it is forwarded: an endpoint made slow
without touching the app or its build. What the clients sent is kept per connection, so a test can
read which HTTP methods reached the server (`methods()`), e.g. that a read-only load sent no write.
asyncio on a thread of its own, so a test drives it from plain synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator

# An HTTP/1.x request line at the start of a line of the client's stream.
REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r$", re.MULTILINE)
CHUNK = 64 * 1024


class TcpProxy:
    """127.0.0.1:<port> → 127.0.0.1:`upstream_port`; `delay` may be changed between (or during) runs."""

    def __init__(self, upstream_port: int, *, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self._sent: list[bytearray] = []  # what each connection's client sent
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connect, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def requests(self) -> list[tuple[str, str]]:
        """(method, target) of every request line the clients sent, in order per connection."""
        with self._lock:
            streams = [bytes(stream) for stream in self._sent]
        return [
            (method.decode(), target.decode()) for stream in streams for method, target in REQUEST_LINE.findall(stream)
        ]

    def methods(self) -> set[str]:
        return {method for method, _ in self.requests()}

    def forget(self) -> None:
        """Start a new record (connections still open keep adding to theirs, which is dropped)."""
        with self._lock:
            self._sent = []

    async def _connect(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        sent = bytearray()
        with self._lock:
            self._sent.append(sent)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        to_server = asyncio.ensure_future(self._pump(client_reader, server_writer, record=sent))
        to_client = asyncio.ensure_future(self._pump(server_reader, client_writer))
        try:
            await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_server, to_client):
                task.cancel()
            for writer in (server_writer, client_writer):
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, record: bytearray | None = None
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                if record is not None:
                    with self._lock:
                        record.extend(data)
                    if self.delay:
                        await asyncio.sleep(self.delay)  # the request reaches the server late
                writer.write(data)
                await writer.drain()


@contextlib.contextmanager
def proxy_to(upstream_port: int, *, delay: float = 0.0) -> Iterator[TcpProxy]:
    """A started proxy, stopped however the block ends."""
    proxy = TcpProxy(upstream_port, delay=delay).start()
    try:
        yield proxy
    finally:
        proxy.stop()
