"""The gateway process: a Tornado HTTP server and a channel to the control plane."""

from __future__ import annotations

import dataclasses
import errno

import structlog
import tornado.netutil

from lambdafleet.security import Transport

from .app import MAX_BODY_BYTES, Settings, make_app
from .http_limits import HttpLimits
from .http_server import BoundedHTTPServer

log = structlog.get_logger(__name__)

# Tornado reads a request's head (request line and headers) up to a limit
# and drops the connection without an answer beyond it. The limit is well
# above what the gateway answers as a request (app.MAX_URI_BYTES), so that
# a long path or query is read whole and answered 414 instead of reset.
MAX_HEADER_BYTES = 4 * 1024 * 1024

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_BODY_BYTES),
    ("grpc.max_send_message_length", MAX_BODY_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class PortInUseError(Exception):
    """The gateway's address is taken (another lambdafleet, LocalStack, ...)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is in use; stop what holds it or choose another with --port"
        )


class Gateway:
    def __init__(
        self,
        control_plane: str,
        host: str,
        port: int,
        account_id: str,
        transport: Transport | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.host = host
        self.port = port
        self.account_id = account_id
        self.transport = transport or Transport.plaintext()
        self.limits = limits or HttpLimits()

    async def start(self) -> None:
        self.channel = self.transport.channel(self.control_plane, CHANNEL_OPTIONS)
        settings = self.settings = Settings(self.channel, self.account_id)
        self.http = BoundedHTTPServer(
            make_app(settings),
            limits=self.limits,
            max_body_size=MAX_BODY_BYTES,
            max_header_size=MAX_HEADER_BYTES,
        )
        try:
            sockets = tornado.netutil.bind_sockets(self.port, self.host)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(self.host, self.port) from None
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info(
            "gateway.started",
            host=self.host,
            port=self.port,
            control_plane=self.control_plane,
            transport=self.transport.plan.mode,
            limits=dataclasses.asdict(self.limits),
        )

    async def stop(self) -> None:
        self.http.stop()
        await self.http.close_all_connections()
        await self.settings.invocations.close()
        await self.channel.close()
        log.info("gateway.stopped")
