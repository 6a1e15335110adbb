"""The worker agent: registers with the control plane, keeps its session
alive, runs what it is assigned, and owns every container on its daemon.

The agent dials the control plane and holds one stream; when the stream
breaks (control plane restart, network), it reconnects with backoff and
registers again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

import docker
import grpc
import structlog

from lambdafleet import __version__, batching
from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.agent.v1 import agent_pb2_grpc
from lambdafleet.functions.v1 import functions_pb2_grpc
from lambdafleet.security import Transport, session_error

from . import fencing, runtime_api
from .backends import FakeBackend, FakeImages, Images, Sandboxes
from .code_cache import CodeCache
from .containers import LABEL_OWNER, LABEL_WORKER, Containers
from .docker_flags import FLAGS_ENV, REMOVE_ENV, parse_flags, parse_remove
from .environment import describe
from .images import ImageResolver
from .invocation_log import truncate_limit
from .kept_results import KeptResults
from .log_shipper import LogShipper
from .pool import Pool
from .prestart import ENV_VAR as PRESTART_ENV
from .prestart import Prestart, parse_config
from .provisioned import Provisioned
from .worker_id import default_worker_id

log = structlog.get_logger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 80 * 1024 * 1024),
    ("grpc.max_send_message_length", 80 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# How often the control plane hears how an image pull or build goes (it
# writes the Pending function's StateReason each time).
PREPARE_PROGRESS_INTERVAL_S = 2.0


def prepare_progress_reporter(
    prepare_id: str, outbox: asyncio.Queue[apb.ConnectRequest]
) -> Callable[[str], None]:
    """The steps of a runtime image's pull or build, passed on to the control
    plane: the first at once, then at most one per interval. (The image
    resolver logs every step itself.)"""
    last_sent: float | None = None

    def report(step: str) -> None:
        nonlocal last_sent
        now = time.monotonic()
        if last_sent is not None and now - last_sent < PREPARE_PROGRESS_INTERVAL_S:
            return
        last_sent = now
        outbox.put_nowait(
            apb.ConnectRequest(
                prepare_progress=apb.PrepareProgress(prepare_id=prepare_id, step=step[-300:])
            )
        )

    return report


class Worker:
    def __init__(
        self,
        *,
        control_plane: str,
        worker_id: str = "",
        docker_host: str | None = None,
        advertise_address: str | None = None,
        runtime_api_port: int = 0,
        capacity: int = 64,
        cache_dir: Path | None = None,
        backend: FakeBackend | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.control_plane = control_plane
        # None: plaintext, for in-process use on loopback.
        self.transport = transport or Transport.plaintext()
        # Empty: the default, known once the daemon is (worker_id.py).
        self.worker_id = worker_id
        # Tells this process's reconnects from another process that
        # registers with the same worker id (which the control plane refuses).
        self.instance_id = secrets.token_hex(8)
        # Set when the control plane refused the worker id as another live
        # process's: the worker cannot run (the CLI then exits).
        self.refused = asyncio.Event()
        self.refusal = ""
        # Whether the control plane has accepted this process's id once:
        # only then are the containers labelled with the id this process's
        # to remove (one refused the id of a live worker must not touch them).
        self._claimed = False
        self.docker_host = docker_host
        self.advertise_address = advertise_address
        self.runtime_api_port = runtime_api_port
        self.capacity = capacity
        self.cache_dir = cache_dir or Path.home() / ".cache" / "lambdafleet" / "code"
        self.keepalive_s = _env_float("LAMBDA_KEEPALIVE_MS", 600_000) / 1000
        self.startup_timeout_s = _env_float("LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT", 20)
        self.max_concurrent_starts = int(_env_float("LAMBDAFLEET_MAX_CONCURRENT_STARTS", 4))
        # None: sandboxes are containers on the Docker daemon (the default).
        self.fake = backend
        # Set once the control plane took this session's first heartbeat
        # (it places work here from then on); cleared when the session ends.
        self.registered = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # The current session's outbox and its assignments being worked on.
        self._outbox: asyncio.Queue[apb.ConnectRequest] | None = None
        self._work: set[asyncio.Task[None]] = set()
        self._draining = False
        self._drain_acked = asyncio.Event()
        # Set by hang() (tests): the session neither reads nor writes more.
        self._hung = False
        # When the control plane was last heard from (monotonic), and the
        # heartbeat TTL it set: past it, it has declared this worker dead.
        self._heard_at: float | None = None
        self._ttl_s: float | None = None
        # The synchronous invocations in hand (a part of _work), by their AWS
        # request id (as the environment's current invocation has it):
        # cancelled when fenced. An Event's attempt is not: its
        # caller is the control plane's queue, which waits for its result.
        self._invocations: dict[asyncio.Task[None], str] = {}
        # This process, as the owner labels of its containers name it.
        self._process = fencing.current_process()
        # Event attempts running, and the results of those that finished,
        # reported again at every registration (kept_results.py).
        self._events_running: set[str] = set()
        self._kept = KeptResults()

    async def start(self) -> None:
        self.containers: Sandboxes
        self.images: Images
        fencing.LIVE_INSTANCES.add(self.instance_id)
        if self.fake is not None:
            # Fake sandboxes find their environment as the Runtime API does.
            self.worker_id = self.worker_id or socket.gethostname()
            self.containers = self.fake.sandboxes(self.worker_id, lambda h: self.pool.lookup(h))
            self.images = FakeImages(self.fake.config)
            host_ip = "127.0.0.1"
        else:
            host_ip = await self._start_docker()
        self.channel = self.transport.channel(self.control_plane, CHANNEL_OPTIONS)
        self.pool = Pool(
            containers=self.containers,
            images=self.images,
            code=CodeCache(self.cache_dir, functions_pb2_grpc.CodeServiceStub(self.channel)),
            runtime_api_host=host_ip,
            runtime_api_port=0,
            capacity=self.capacity,
            keepalive_s=self.keepalive_s,
            startup_timeout_s=self.startup_timeout_s,
            max_concurrent_starts=self.max_concurrent_starts,
        )
        self.provisioned = Provisioned(self.pool, self._send_report)
        # Function logs: every container's output, shipped over the session.
        self.logs = LogShipper(lambda: self._outbox)
        self.pool.emit_log = self.logs.add
        self.pool.truncate_at = truncate_limit()
        self.pool.log_quiet_s = _env_float("LAMBDAFLEET_LOG_QUIET_MS", 50) / 1000
        self.pool.log_settle_max_s = max(self.pool.log_settle_max_s, 10 * self.pool.log_quiet_s)
        self.containers.watch_output(self.pool.on_container_output)
        self.prestart: Prestart | None = None
        self.http, port = runtime_api.serve(
            self.pool.lookup, "0.0.0.0", self.runtime_api_port, lambda: self.prestart
        )
        self.pool.runtime_api_port = port
        # Fake sandboxes run no runtime to pre-start: no pool with them.
        config = parse_config(os.environ.get(PRESTART_ENV)) if self.fake is None else None
        if config is not None and config.enabled:
            self.prestart = Prestart(
                config=config,
                containers=self.containers,
                images=self.images,
                start_slots=self.pool.start_slots,
                runtime_api_host=host_ip,
                runtime_api_port=lambda: self.pool.runtime_api_port,
                room=self.pool.room,
            )
            self.pool.prestart = self.prestart
            self.prestart.on_change = self._send_heartbeat
        self.containers.watch_exits(self.pool.on_container_exit)
        if self.fake is not None:
            self.memory_mb = self.fake.config.memory_mb
        else:
            self.memory_mb = await asyncio.to_thread(
                lambda: int(self.client.info().get("MemTotal", 0)) // (1024 * 1024)
            )
        self.pool.on_change = self._environments_changed
        # A runtime's image became ready (prepared, or made for a cold
        # start): say so at once, ahead of the PrepareResult.
        self.images.on_ready = lambda runtime: self._send_heartbeat()
        self.logs.start()
        self._tasks = [
            asyncio.create_task(self._session_loop(), name="session"),
            asyncio.create_task(self._reap_loop(), name="keepalive"),
            asyncio.create_task(self._fence_loop(), name="fence"),
        ]
        log.info(
            "worker.started",
            worker_id=self.worker_id,
            control_plane=self.control_plane,
            runtime_api=f"{host_ip}:{port}",
            docker_host=self.docker_host or os.environ.get("DOCKER_HOST", "local"),
        )

    async def _start_docker(self) -> str:
        """Connect to the daemon, remove this worker's orphans, and answer
        the address at which its containers reach the Runtime API."""
        # Refused before anything starts: a flag that cannot be honoured
        # must not be dropped silently (docker_flags.py).
        flags = parse_flags(os.environ.get(FLAGS_ENV))
        remove_stopped = parse_remove(os.environ.get(REMOVE_ENV))
        self.client = await asyncio.to_thread(self._docker_client)
        if not self.worker_id:
            info = await asyncio.to_thread(self.client.info)
            self.worker_id = default_worker_id(socket.gethostname(), str(info.get("ID") or ""))
        # Containers' output streams stay open, idle, for hours: their
        # client has no read timeout.
        stream_client = await asyncio.to_thread(self._docker_client, None)
        self.containers = containers = Containers(
            self.client,
            self.worker_id,
            os.environ.get("LAMBDA_DOCKER_NETWORK") or None,
            stream_client=stream_client,
            flags=flags,
            remove_stopped=remove_stopped,
            owner=self._owner_marker(),
        )
        self.images = ImageResolver(os.environ.get("LAMBDA_RUNTIME_IMAGE_MAPPING"), self.client)
        # Before the gateway below: it is the function network's (isolation.py).
        await asyncio.to_thread(containers.use_function_network)
        host = self.advertise_address
        if not host:
            host = await asyncio.to_thread(containers.bridge_gateway)
        # /etc/hosts needs an address, not a name.
        return await asyncio.to_thread(socket.gethostbyname, host)

    def _owner_marker(self) -> str:
        if self._process is None:
            return ""  # no /proc: the owner cannot be judged anyway
        return fencing.owner_marker(fencing.Owner(self._process, self.instance_id))

    def _leftover(self, labels: dict[str, str]) -> bool:
        return fencing.is_leftover(
            labels,
            worker_label=LABEL_WORKER,
            owner_label=LABEL_OWNER,
            worker_id=self.worker_id,
            here=self._process,
            start_time_of=fencing.process_start_time,
            live_instances=fencing.LIVE_INSTANCES,
        )

    def _docker_client(self, timeout: int | None = 120) -> docker.DockerClient:
        if self.docker_host:
            return docker.DockerClient(base_url=self.docker_host, timeout=timeout)
        return docker.from_env(timeout=timeout)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(0.1, self.keepalive_s / 4)))
            await self.pool.reap_idle()

    async def _fence_loop(self) -> None:
        """Past the TTL without a word from the control plane, this worker
        is dead to it and its callers were answered: what still runs for
        them stops, once per loss."""
        fenced_for: float | None = None
        while True:
            await asyncio.sleep(0.2)
            await self._frozen_if_hung()
            heard_at = self._heard_at
            if heard_at == fenced_for or not fencing.lost_control_plane(
                heard_at, self._ttl_s, time.monotonic()
            ):
                continue
            fenced_for = heard_at
            await self._fence()

    async def _fence(self) -> None:
        # Only what synchronous callers waited for: an Event's attempt runs
        # on, its result kept and reported when the control plane is back
        # (kept_results.py), which then neither loses nor re-runs it.
        waited_for = set(self._invocations.values())
        busy = [
            env
            for env in self.pool.environments
            if env.current is not None and env.current.request_id in waited_for
        ]
        log.warning(
            "worker.fenced",
            reason="control plane lost for longer than the heartbeat TTL",
            ttl_s=self._ttl_s,
            environments_stopped=len(busy),
            invocations_cancelled=len(self._invocations),
        )
        invocations = list(self._invocations)
        for task in invocations:
            task.cancel()
        await asyncio.gather(
            *(self.pool.discard(env, "control plane lost") for env in busy),
            return_exceptions=True,
        )
        await asyncio.gather(*invocations, return_exceptions=True)

    def _heard(self, ttl_ms: int) -> None:
        self._heard_at = time.monotonic()
        self._ttl_s = ttl_ms / 1000 if ttl_ms > 0 else None

    async def _session_loop(self) -> None:
        backoff = 0.2
        last_error = ""
        while not self._stopping:
            cap = 2.0
            try:
                await self._session()
                backoff = 0.2
                last_error = ""
            except (grpc.aio.AioRpcError, ConnectionError) as exc:
                if isinstance(exc, grpc.aio.AioRpcError):
                    code, details = exc.code(), exc.details() or ""
                else:
                    code, details = None, str(exc)
                if code == grpc.StatusCode.ALREADY_EXISTS:
                    self._refuse(details)
                    return
                refused = session_error(
                    code.name if code is not None else None,
                    details,
                    tls=self.transport.plan.tls,
                    registered=self.registered.is_set(),
                )
                if refused is not None:
                    # Credentials do not fix themselves: retry, but slowly.
                    cap = 10.0
                    event, hint = refused
                    log.error(
                        event, error=str(code), details=details, hint=hint, retry_in_s=backoff
                    )
                elif str(code or exc) != last_error:
                    log.warning("worker.session_lost", error=str(code or exc), details=details)
                else:
                    # The same loss again (control plane still down): once is news.
                    log.debug("worker.session_lost", error=str(code or exc))
                last_error = str(code or exc)
            self.registered.clear()
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, cap)

    async def _session(self) -> None:
        stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        # Not wait_for_ready: a refused TLS handshake must fail the call (and
        # be logged) instead of waiting for a channel that never gets ready.
        call = stub.Connect(wait_for_ready=False)
        outbox: asyncio.Queue[apb.ConnectRequest] = asyncio.Queue()
        await call.write(
            apb.ConnectRequest(
                register=apb.Register(
                    worker_id=self.worker_id,
                    capacity=self.capacity,
                    memory_mb=self.memory_mb,
                    architectures=["x86_64"],
                    version=__version__,
                    ready_runtimes=sorted(self.images.ready_runtimes()),
                    instance_id=self.instance_id,
                    running_invocations=sorted(self._events_running),
                )
            )
        )
        first = await call.read()
        if first is grpc.aio.EOF or not first.HasField("registered"):
            raise ConnectionError("control plane did not accept the registration")
        ttl_ms = first.registered.heartbeat_ttl_ms
        self._heard(ttl_ms)
        log.info("worker.registered", worker_id=self.worker_id, heartbeat_ttl_ms=ttl_ms)

        async def write_loop() -> None:
            while True:
                message = await outbox.get()
                batch, _ = batching.take_batch(outbox, message, apb.ConnectRequest.ByteSize)
                await self._frozen_if_hung()
                if len(batch) == 1:
                    await call.write(message)
                else:
                    await call.write(
                        apb.ConnectRequest(batch=apb.ConnectRequestBatch(messages=batch))
                    )
                for _ in batch:
                    outbox.task_done()  # drain() waits for results to be written

        async def heartbeat_loop() -> None:
            while True:
                await asyncio.sleep(ttl_ms / 3000)
                outbox.put_nowait(apb.ConnectRequest(heartbeat=self._heartbeat()))

        tasks = [asyncio.create_task(write_loop())]
        try:
            if not self._claimed:
                # Before the first heartbeat: the control plane places work
                # on a session once its first heartbeat came.
                await self._claim()
            # Event results a restarted control plane may lack, ahead of the
            # first heartbeat (which tells it they are all in); in the same
            # step as the outbox becomes current, so none falls between.
            for result in self._kept.all(time.monotonic()):
                outbox.put_nowait(apb.ConnectRequest(invoke_result=result))
            # The first heartbeat of a session lists everything at once.
            outbox.put_nowait(apb.ConnectRequest(heartbeat=self._heartbeat()))
            tasks.append(asyncio.create_task(heartbeat_loop()))
            self._outbox = outbox
            if self._draining:
                # Reconnected while draining: the new session must not get work.
                outbox.put_nowait(apb.ConnectRequest(drain=apb.Drain()))
            while True:
                message = await call.read()
                await self._frozen_if_hung()
                if message is grpc.aio.EOF:
                    raise ConnectionError("control plane closed the session")
                self._heard(ttl_ms)
                if message.WhichOneof("message") == "batch":
                    for item in message.batch.messages:
                        ttl_ms = self._on_message(item, outbox, ttl_ms)
                else:
                    ttl_ms = self._on_message(message, outbox, ttl_ms)
        finally:
            self._outbox = None
            for t in tasks:
                t.cancel()
            call.cancel()

    async def _claim(self) -> None:
        """The id is this process's now: what its daemon holds under that
        id is a previous run's (killed), and goes, and so does what any
        worker process provably gone left there, whatever its id
        (fencing.py); then the pre-started pool fills. Not before the
        control plane accepted the id: a second process started with the
        id of a live worker would remove that worker's containers."""
        self._claimed = True
        try:
            removed = await self.containers.remove_leftovers(self._leftover)
        except Exception as exc:
            # The worker runs anyway; what is left goes at its next start.
            log.warning("worker.orphans_left", error=repr(exc))
            removed = 0
        if removed:
            log.info("worker.orphans_removed", count=removed)
        if self.prestart is not None:
            self.prestart.start()

    def _refuse(self, details: str) -> None:
        self.refusal = (
            f"worker id {self.worker_id!r} is in use by another live worker registered with "
            f"the control plane at {self.control_plane}; give this worker an id of its own "
            "with --worker-id (or LAMBDAFLEET_WORKER_ID)"
        )
        log.error("worker.id_in_use", worker_id=self.worker_id, details=details, hint=self.refusal)
        self.refused.set()

    def _on_message(
        self, message: apb.ConnectResponse, outbox: asyncio.Queue[apb.ConnectRequest], ttl_ms: int
    ) -> int:
        """Act on one message of the control plane; the heartbeat TTL after it."""
        kind = message.WhichOneof("message")
        if kind == "invoke":
            task = asyncio.create_task(self._invoke(message.invoke, outbox))
            if not message.invoke.asynchronous:
                self._invocations[task] = message.invoke.request_id or message.invoke.invocation_id
                task.add_done_callback(lambda done: self._invocations.pop(done, None))
        elif kind == "prepare":
            task = asyncio.create_task(self._prepare(message.prepare, outbox))
        elif kind == "retire":
            task = asyncio.create_task(self._retire(message.retire))
        else:
            if kind == "provision":
                self.provisioned.apply(message.provision)
            elif kind == "heartbeat_ack":
                ttl_ms = message.heartbeat_ack.heartbeat_ttl_ms or ttl_ms
                # The control plane has taken a heartbeat of this session:
                # it places work here from now on.
                self.registered.set()
            elif kind == "drain_ack":
                self._drain_acked.set()
            return ttl_ms
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return ttl_ms

    def _environments_changed(self) -> None:
        self._send_heartbeat()
        if self.prestart is not None:
            self.prestart.wake()  # room for the pool may have changed

    def _send_heartbeat(self) -> None:
        """An environment started or stopped: say so now, ahead of the
        result of the invocation that started it (the stream keeps order),
        so the control plane's view is current when its caller is answered."""
        if self._outbox is not None:
            self._outbox.put_nowait(apb.ConnectRequest(heartbeat=self._heartbeat()))

    def _heartbeat(self) -> apb.Heartbeat:
        environments = [describe(env) for env in self.pool.environments]
        pre = self.prestart
        return apb.Heartbeat(
            running_environments=len(environments),
            environments=environments,
            prestarted=len(pre.idle) if pre is not None else 0,
            prestarted_memory_mb=pre.held_mb if pre is not None else 0,
            ready_runtimes=sorted(self.images.ready_runtimes()),
        )

    async def _invoke(
        self, assignment: apb.InvokeAssignment, outbox: asyncio.Queue[apb.ConnectRequest]
    ) -> None:
        structlog.contextvars.bind_contextvars(
            request_id=assignment.request_id, invocation_id=assignment.invocation_id
        )
        arrived = time.perf_counter()
        on_chunk = None
        if assignment.stream_response:
            invocation_id = assignment.invocation_id

            def on_chunk(chunk: bytes) -> None:
                # The outbox keeps order: chunks precede the result.
                outbox.put_nowait(
                    apb.ConnectRequest(
                        invoke_chunk=apb.InvokeChunk(invocation_id=invocation_id, payload=chunk)
                    )
                )

        if assignment.asynchronous:
            self._events_running.add(assignment.invocation_id)
        try:
            result = await self.pool.invoke(assignment, on_chunk)
        except Exception as exc:
            log.exception("invoke.failed")
            result = apb.InvokeResult(
                invocation_id=assignment.invocation_id,
                status=apb.INVOKE_STATUS_SERVICE_ERROR,
                error_message=str(exc),
            )
        finally:
            self._events_running.discard(assignment.invocation_id)
        result.worker_us = int((time.perf_counter() - arrived) * 1e6)
        log.debug(
            "invoke.done",
            status=apb.InvokeStatus.Name(result.status),
            cold_start=result.cold_start,
        )
        if assignment.asynchronous:
            self._kept.add(result, time.monotonic())
            # To the session open now (the one it came on may be gone);
            # with none, the next one gets it from what is kept.
            current = self._outbox
            if current is None:
                return
            outbox = current
        outbox.put_nowait(apb.ConnectRequest(invoke_result=result))

    async def _prepare(
        self, assignment: apb.PrepareAssignment, outbox: asyncio.Queue[apb.ConnectRequest]
    ) -> None:
        result = apb.PrepareResult(prepare_id=assignment.prepare_id)
        try:
            if assignment.image_uri:
                image = await self.images.ensure_image(assignment.image_uri)
                result.ok = True
                log.info("image.ready", image=image)
                outbox.put_nowait(apb.ConnectRequest(prepare_result=result))
                return
            image = await self.images.ensure(
                assignment.runtime,
                progress=prepare_progress_reporter(assignment.prepare_id, outbox),
            )
            result.ok = True
            log.info("runtime.ready", runtime=assignment.runtime, image=image)
        except Exception as exc:
            result.error_message = str(exc)
            log.warning("runtime.unavailable", runtime=assignment.runtime, error=str(exc))
        outbox.put_nowait(apb.ConnectRequest(prepare_result=result))

    async def _retire(self, retirement: apb.RetireEnvironments) -> None:
        try:
            await self.pool.retire(retirement)
        except Exception:
            log.exception("environments.retire_failed", function=retirement.function_arn)

    def _send_report(self, report: apb.ProvisionReport) -> None:
        # Without a session the report is dropped: the next session gets its
        # assignment again, and answers it with a fresh report.
        if self._outbox is not None:
            self._outbox.put_nowait(apb.ConnectRequest(provision_report=report))

    async def drain(self, ack_timeout_s: float = 5.0) -> None:
        """Stop taking work and let what runs finish (SIGTERM): the control
        plane is told to place nothing more here; once it acknowledged,
        no assignment can still be on its way, so when the invocations in
        hand are done, so is the worker."""
        self._draining = True
        log.info("worker.draining", in_flight=len(self._work))
        if self._outbox is not None:
            self._outbox.put_nowait(apb.ConnectRequest(drain=apb.Drain()))
            with contextlib.suppress(TimeoutError):
                # Without an answer (control plane gone), nothing more comes.
                await asyncio.wait_for(self._drain_acked.wait(), ack_timeout_s)
        while self._work:
            await asyncio.wait(set(self._work))
        # The last invocations' END/REPORT, and every line still buffered.
        await self.pool.flush_logs()
        self.logs.flush()
        if self._outbox is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), ack_timeout_s)
        log.info("worker.drained")

    async def abort(self) -> None:
        """Die as a crash would (a test hook): no drain, no goodbye; the
        session, its assignments and the connection end at once. Fake
        sandboxes live in this process and die with it; containers on a
        daemon lose their stdin as at a real death, and end (the stdin
        fence, worker/launcher.py); what is left of them goes at the next
        start of any worker on the daemon. stop() still releases the rest."""
        self._stopping = True
        fencing.LIVE_INSTANCES.discard(self.instance_id)
        tasks = [*self._tasks, *self._work]
        for task in tasks:
            task.cancel()
        self.containers.sever()
        await self.channel.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.warning("worker.aborted", worker_id=self.worker_id)

    def hang(self) -> None:
        """Freeze as a stopped process would (a test hook): the session
        reads and writes nothing more, heartbeats included, but its stream
        stays open (cancelling a task blocked in a read would cancel the
        call), so only the control plane's heartbeat TTL can tell.
        Sandboxes run on; their results are never sent."""
        self._hung = True
        log.warning("worker.hung", worker_id=self.worker_id)

    async def _frozen_if_hung(self) -> None:
        if self._hung:
            await asyncio.get_running_loop().create_future()  # never done

    async def stop(self) -> None:
        """Shut down: close the session, end what is in hand (drain() let it
        finish first, if it was called), then remove every container, those
        whose creation was in flight included."""
        self._stopping = True
        tasks = [*self._tasks, *self._work]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.provisioned.close()
        if self.prestart is not None:
            await self.prestart.close()
        await self.pool.close()
        await self.logs.close()
        # A process refused its id never owned the containers under it (and
        # created none: neither work nor a pool comes before the claim).
        removed = await self.containers.shutdown() if self._claimed else 0
        self.containers.close()
        fencing.LIVE_INSTANCES.discard(self.instance_id)
        self.http.stop()
        await self.channel.close()
        log.info("worker.stopped", worker_id=self.worker_id, containers_removed=removed)
