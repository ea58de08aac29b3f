"""A TCP proxy the tests can cut and restore, to lose and regain a server (Redis) on demand.

It runs its own event loop in a background thread, so it keeps forwarding while the test's loop is
busy, and ``cut``/``restore`` take effect before they return.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

_COMMAND_TIMEOUT_SECONDS = 5.0
_CHUNK = 65536


class TcpProxy:
    """Forward 127.0.0.1:``port`` to ``target_host:target_port``.

    ``cut()`` drops every open connection (with a reset) and refuses new ones (accepted, then reset
    at once); ``restore()`` forwards again. Use as ``with TcpProxy(host, port) as proxy: ...``.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cut = False

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_COMMAND_TIMEOUT_SECONDS)
        self._loop.close()

    def cut(self) -> None:
        self._call(self._set_cut(True))

    def restore(self) -> None:
        self._call(self._set_cut(False))

    # --- on the proxy's loop ---

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine on the proxy's loop and wait until it is done."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        future.result(_COMMAND_TIMEOUT_SECONDS)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set_cut(self, cut: bool) -> None:
        self._cut = cut
        if cut:
            self._drop_all()

    async def _shutdown(self) -> None:
        self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _drop_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._cut:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer, upstream_writer}
        self._open.update(pair)
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
            )
        finally:
            self._open.difference_update(pair)
            for writer in pair:
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until it ends; then end the other direction too."""
        with contextlib.suppress(OSError):
            while chunk := await reader.read(_CHUNK):
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
