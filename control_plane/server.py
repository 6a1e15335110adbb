"""The control plane process: stores, scheduler and gRPC server, with one
lifecycle (start cleans up when it fails; stop cancels every loop)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from pathlib import Path

import grpc
import structlog

from lambdafleet.agent.v1 import agent_pb2_grpc
from lambdafleet.functions.v1 import functions_pb2_grpc
from lambdafleet.security import Transport

from .agent_service import AgentService
from .api import Api, Settings, service_handler
from .cluster_service import ClusterService, CodeService
from .data_dir_lock import DataDirLock
from .dispatcher import EventDispatcher
from .function_logs import FunctionLogs
from .invocation_service import InvocationService
from .metrics import FleetMetrics
from .provisioning import Provisioner
from .scheduler import Scheduler
from .store import CodeStore, ResourceStore
from .workers import WorkerRegistry

log = structlog.get_logger(__name__)

# Big enough for a 50 MB zip in a CreateFunction plus protobuf overhead.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC sets SO_REUSEPORT by default, so a second control plane on the
    # same address would start without error and take part of the calls.
    ("grpc.so_reuseport", 0),
]


class ListenError(Exception):
    """The control plane cannot listen on its --listen address; `reason` is
    what a plain bind there met (None: that bind worked)."""

    def __init__(self, address: str, reason: OSError | None) -> None:
        if reason is not None and reason.errno == errno.EADDRINUSE:
            text = (
                f"address {address} is in use; stop what holds it or choose another with --listen"
            )
        else:
            why = f" ({reason.strerror})" if reason is not None and reason.strerror else ""
            text = f"cannot listen on {address}{why}; choose another address with --listen"
        super().__init__(text)


def bind_failure(address: str) -> OSError | None:
    """Why a socket cannot bind `address` (HOST:PORT); None when it can.
    gRPC only says that it failed: this asks the kernel why."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return OSError(errno.EINVAL, "not HOST:PORT")
    try:
        infos = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        return exc
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            # As gRPC binds: a port in TIME_WAIT only is not in use.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                return exc
    return None


class ControlPlane:
    def __init__(
        self,
        data_dir: Path,
        listen: str,
        heartbeat_ttl_ms: int = 10_000,
        settings: Settings | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings or Settings()
        self.listen = listen
        # None: plaintext, for in-process use on loopback.
        self.transport = transport or Transport.plaintext()
        self.heartbeat_ttl_ms = heartbeat_ttl_ms
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._lock = DataDirLock(data_dir)
        self._started = False

    async def start(self) -> None:
        # Before the store opens: a second control plane must not touch it.
        self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            # _start closes what it opened until the server listens; past
            # that, stop() undoes the rest.
            await self.stop(grace=0)
            self._lock.release()
            raise
        log.info(
            "control_plane.started",
            listen=self.listen,
            port=self.port,
            data_dir=str(self.data_dir),
            transport=self.transport.plan.mode,
        )

    async def _start(self) -> None:
        self.store = ResourceStore(self.data_dir / "state.db")
        self.code = CodeStore(self.data_dir / "code")
        self.registry = WorkerRegistry(self.heartbeat_ttl_ms)
        self.metrics = FleetMetrics()
        # Functions' log lines, shipped by workers, read by TailFunctionLogs.
        self.logs = FunctionLogs()
        self.scheduler = Scheduler(
            self.store,
            self.registry,
            account_limit=self.settings.concurrent_executions,
            metrics=self.metrics,
        )
        self.provisioner = Provisioner(self.store, self.registry)
        self.events = EventDispatcher(
            self.store,
            self.scheduler,
            scale=self.settings.async_delay_scale,
            # Workers reconnect within seconds; one that lost the control
            # plane for its TTL may have stopped what it ran.
            resume_grace_ms=max(5_000, self.heartbeat_ttl_ms),
        )
        # Attempts cut short by a restart are awaited from their workers:
        # known before any worker can register.
        self.events.resume()
        self.registry.on_ready(
            lambda s: self.events.worker_ready(s.worker_id, s.running_invocations)
        )
        self.registry.on_unclaimed_result(
            lambda s, result: self.events.unclaimed_result(s.worker_id, result)
        )
        server = grpc.aio.server(
            options=GRPC_OPTIONS, interceptors=self.transport.server_interceptors()
        )
        api_ = Api(self.store, self.code, self.scheduler, self.settings, self.events)
        server.add_generic_rpc_handlers((service_handler(api_),))
        functions_pb2_grpc.add_ClusterServiceServicer_to_server(
            ClusterService(self.registry, self.store, self.metrics, self.logs), server
        )
        functions_pb2_grpc.add_CodeServiceServicer_to_server(CodeService(self.code), server)
        functions_pb2_grpc.add_InvocationServiceServicer_to_server(InvocationService(api_), server)
        agent_pb2_grpc.add_AgentServiceServicer_to_server(
            AgentService(self.registry, self.logs), server
        )
        try:
            credentials = self.transport.server_credentials()
            try:
                if credentials is None:
                    self.port = server.add_insecure_port(self.listen)
                else:
                    self.port = server.add_secure_port(self.listen, credentials)
            except RuntimeError:
                # grpc.aio raises RuntimeError("Failed to bind to address ...").
                raise ListenError(self.listen, bind_failure(self.listen)) from None
            await server.start()
        except BaseException:
            await server.stop(None)
            self.store.close()
            raise
        self._server = server
        self._started = True
        self._reaper = asyncio.create_task(self._reap_loop())
        self.scheduler.resume_pending()
        # Events queued before a restart resume here.
        self.events.start()
        self.provisioner.start()

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.registry.expire()

    async def stop(self, grace: float = 2.0) -> None:
        # Nothing to stop before the server listens (see start).
        if not self._started:
            return
        self._started = False
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.provisioner.close()
        await self.events.close()
        await self.scheduler.close()
        for session in self.registry.registered():
            self.registry.remove(session, "control plane stopping")
        if self._server is not None:
            await self._server.stop(grace)
        self.store.close()
        self._lock.release()
        log.info("control_plane.stopped")
