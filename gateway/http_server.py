"""The gateway's HTTP server: Tornado's, with the bounds of HttpLimits
applied, so that no slow, stalled or idle client holds it.

Tornado times a request's head (and an idle keep-alive connection) and its
body itself; this adds a body deadline that grows with the announced
length, and a bound on connections served at once.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.netutil
from tornado.http1connection import HTTP1Connection

from .http_limits import HttpLimits, content_length


class _BodyDeadline(tornado.httputil.HTTPMessageDelegate):
    """Passes a request on, setting its body's deadline from its headers
    before Tornado starts reading the body."""

    def __init__(
        self,
        inner: tornado.httputil.HTTPMessageDelegate,
        connection: tornado.httputil.HTTPConnection,
        limits: HttpLimits,
        largest: int,
    ) -> None:
        self.inner = inner
        self.connection = connection
        self.limits = limits
        self.largest = largest

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        if isinstance(self.connection, HTTP1Connection):
            length = content_length(headers.get("Content-Length"))
            self.connection.set_body_timeout(self.limits.body_timeout(length, self.largest))
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


class BoundedHTTPServer(tornado.httpserver.HTTPServer):
    """An HTTPServer that serves at most `limits.max_connections` connections
    at once (`max_body_size` must be given). At the bound it stops
    accepting: further clients wait in the listen queue (the kernel's,
    costing the process nothing) and are accepted, in order, as connections
    close."""

    def initialize(self, *args: Any, limits: HttpLimits | None = None, **kwargs: Any) -> None:
        self.limits = limits or HttpLimits()
        # A chunked body's deadline is that of the largest body read at all
        # (Tornado refuses a longer one as it comes).
        self._largest_body: int = kwargs["max_body_size"]
        kwargs.setdefault("idle_connection_timeout", self.limits.idle_timeout_s)
        super().initialize(*args, **kwargs)
        if self.ssl_options is not None:
            # _accepted makes plain streams; the gateway serves no TLS itself.
            raise ValueError("BoundedHTTPServer serves plain HTTP only")
        self._listening: list[socket.socket] = []
        self._stop_accepting: list[Callable[[], None]] = []
        self._open = 0
        self._closing = False

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        added = list(sockets)
        self._listening.extend(added)
        if self._accepting():
            self._accept(added)

    def _accepting(self) -> bool:
        return not self._closing and self._open < self.limits.max_connections

    def _accept(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._stop_accepting.append(tornado.netutil.add_accept_handler(sock, self._accepted))

    def _pause(self) -> None:
        for stop in self._stop_accepting:
            stop()
        self._stop_accepting.clear()

    def _accepted(self, connection: socket.socket, address: Any) -> None:
        # What TCPServer does for a plain socket.
        stream = tornado.iostream.IOStream(
            connection, max_buffer_size=self.max_buffer_size, read_chunk_size=self.read_chunk_size
        )
        self.handle_stream(stream, address)

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        self._open += 1
        if not self._accepting():
            self._pause()
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self._open -= 1
        if not self._stop_accepting and self._accepting():
            self._accept(self._listening)

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        inner = super().start_request(server_conn, request_conn)
        return _BodyDeadline(inner, request_conn, self.limits, self._largest_body)

    def stop(self) -> None:
        self._closing = True
        self._pause()
        for sock in self._listening:
            sock.close()
        self._listening.clear()
        super().stop()
