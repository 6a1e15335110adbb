"""Live worker sessions: what the control plane knows of each worker.

A session exists while the worker's Connect stream is open and its heartbeats
arrive within the TTL the control plane hands out. Work sent to a session that
ends is failed at once, so no caller waits on a dead worker.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb

from .placement import WorkerSnapshot

log = structlog.get_logger(__name__)


class WorkerGone(Exception):
    """The worker's session ended before it answered."""


class WorkerSession:
    def __init__(self, register: apb.Register, ttl_ms: int, ready: bool = True) -> None:
        self.worker_id = register.worker_id
        # Random per worker process (empty from an older worker).
        self.instance_id = register.instance_id
        # Counted and placed on only once ready: a session the AgentService
        # accepted becomes ready with its first heartbeat, which the worker
        # sends once it removed what a previous run of it left behind.
        self.ready = ready
        self.capacity = max(1, register.capacity)
        self.memory_mb = register.memory_mb
        self.version = register.version
        self.architectures = frozenset(register.architectures or ["x86_64"])
        # Runtimes whose image is ready on its daemon, as it last said.
        self.ready_runtimes = frozenset(register.ready_runtimes)
        # Event attempts of its earlier sessions it still runs (their
        # results come on this session).
        self.running_invocations = list(register.running_invocations)
        self.ttl_ms = ttl_ms
        self.last_seen = time.monotonic()
        self.deadline = self.last_seen + ttl_ms / 1000
        # What the worker's last heartbeat said it runs (status and the
        # dashboard read it; placement keeps its own counts, exact at once).
        self.environments: list[apb.EnvironmentStatus] = []
        self.prestarted = 0
        # Memory its pre-started pool holds now: not free for placement.
        self.prestarted_memory_mb = 0
        self.outbox: asyncio.Queue[apb.ConnectResponse | None] = asyncio.Queue()
        # Invocation id -> (answer, environment key, memory, provisioned).
        self._invocations: dict[str, tuple[asyncio.Future[apb.InvokeResult], str, int, bool]] = {}
        self._prepares: dict[str, asyncio.Future[apb.PrepareResult]] = {}
        # Prepare id -> who hears of its image being pulled or built.
        self._prepare_listeners: dict[str, Callable[[str, str], None]] = {}
        # Invocation id -> where its streamed response's chunks go.
        self._chunk_sinks: dict[str, Callable[[bytes], None]] = {}
        self._ids = itertools.count()
        self.in_flight = 0
        self.busy_memory_mb = 0
        # Believed idle warm environments per key; refreshed by results.
        self.idle: Counter[str] = Counter()
        # Provisioned environments per key as the worker last reported them,
        # and how many of them run an invocation now.
        self.provisioned: dict[str, apb.ProvisionedEnvironments] = {}
        self.provisioned_busy: Counter[str] = Counter()
        self.closed = False
        # A draining worker finishes its invocations but is given no more.
        self.draining = False
        self._snapshot: WorkerSnapshot | None = None

    def snapshot(self) -> WorkerSnapshot:
        """What placement sees of this worker. Kept until the session's state
        changes (every change goes through a method below, which drops it),
        so placing an invocation among many workers rebuilds only the
        snapshot of the one that last changed."""
        if self._snapshot is None:
            self._snapshot = self._take_snapshot()
        return self._snapshot

    def _changed(self) -> None:
        self._snapshot = None

    def _take_snapshot(self) -> WorkerSnapshot:
        return WorkerSnapshot(
            worker_id=self.worker_id,
            capacity=self.capacity,
            memory_mb=max(0, self.memory_mb - self.prestarted_memory_mb),
            in_flight=self.in_flight,
            busy_memory_mb=self.busy_memory_mb,
            architectures=self.architectures,
            idle=dict(self.idle),
            ready_runtimes=self.ready_runtimes,
            provisioned_idle={
                key: report.ready - self.provisioned_busy[key]
                for key, report in self.provisioned.items()
                if report.ready > self.provisioned_busy[key]
            },
        )

    def heartbeat_ttl_ms(self) -> int:
        # Jitter spreads the heartbeats of many workers over time.
        return int(self.ttl_ms * random.uniform(0.9, 1.0))

    def touch(self) -> None:
        self.last_seen = time.monotonic()
        self.deadline = self.last_seen + self.ttl_ms / 1000

    def on_heartbeat(self, heartbeat: apb.Heartbeat) -> bool:
        """Take in a heartbeat; True when it changed the ready runtimes."""
        self.touch()
        self._changed()
        self.environments = list(heartbeat.environments)
        self.prestarted = heartbeat.prestarted
        self.prestarted_memory_mb = heartbeat.prestarted_memory_mb
        ready = frozenset(heartbeat.ready_runtimes)
        if ready == self.ready_runtimes:
            return False
        self.ready_runtimes = ready
        return True

    async def invoke(
        self,
        assignment: apb.InvokeAssignment,
        env_key: str,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> apb.InvokeResult:
        if self.closed:
            raise WorkerGone(self.worker_id)
        memory = assignment.function.memory_size
        future: asyncio.Future[apb.InvokeResult] = asyncio.get_running_loop().create_future()
        self._invocations[assignment.invocation_id] = (
            future,
            env_key,
            memory,
            assignment.provisioned,
        )
        self._changed()
        self.in_flight += 1
        self.busy_memory_mb += memory
        if assignment.provisioned:
            self.provisioned_busy[env_key] += 1
        elif self.idle[env_key] > 0:
            self.idle[env_key] -= 1
        if on_chunk is not None:
            self._chunk_sinks[assignment.invocation_id] = on_chunk
        self.outbox.put_nowait(apb.ConnectResponse(invoke=assignment))
        try:
            return await future
        finally:
            self._invocations.pop(assignment.invocation_id, None)
            self._chunk_sinks.pop(assignment.invocation_id, None)

    def on_invoke_chunk(self, chunk: apb.InvokeChunk) -> None:
        sink = self._chunk_sinks.get(chunk.invocation_id)
        if sink is not None:
            sink(chunk.payload)

    def on_invoke_result(self, result: apb.InvokeResult) -> bool:
        """Hand a result to the invocation waiting for it; False when none
        of this session does (an attempt of an earlier session, or of the
        control plane before a restart)."""
        entry = self._invocations.get(result.invocation_id)
        if entry is None:
            return False
        future, env_key, memory, provisioned = entry
        self._changed()
        self.in_flight -= 1
        self.busy_memory_mb -= memory
        if provisioned:
            self.provisioned_busy[env_key] -= 1
        elif result.status != apb.INVOKE_STATUS_SERVICE_ERROR:
            self.idle[env_key] += 1
        if not future.done():
            future.set_result(result)
        return True

    async def prepare(
        self,
        runtime: str,
        image_uri: str = "",
        on_progress: Callable[[str, str], None] | None = None,
    ) -> apb.PrepareResult:
        """Have the worker make `runtime` ready; `on_progress(worker_id,
        step)` hears of it when that means pulling or building an image."""
        if self.closed:
            raise WorkerGone(self.worker_id)
        prepare_id = f"{self.worker_id}-{next(self._ids)}"
        future: asyncio.Future[apb.PrepareResult] = asyncio.get_running_loop().create_future()
        self._prepares[prepare_id] = future
        if on_progress is not None:
            self._prepare_listeners[prepare_id] = on_progress
        self.outbox.put_nowait(
            apb.ConnectResponse(
                prepare=apb.PrepareAssignment(
                    prepare_id=prepare_id, runtime=runtime, image_uri=image_uri
                )
            )
        )
        try:
            return await future
        finally:
            self._prepares.pop(prepare_id, None)
            self._prepare_listeners.pop(prepare_id, None)

    def provision(self, targets: list[apb.ProvisionTarget]) -> None:
        """Set the provisioned environments the worker keeps (all of them)."""
        if not self.closed:
            self.outbox.put_nowait(
                apb.ConnectResponse(provision=apb.ProvisionAssignment(targets=targets))
            )

    def on_provision_report(self, report: apb.ProvisionReport) -> None:
        self._changed()
        self.provisioned = {e.environment_key: e for e in report.environments}

    def retire(self, retirement: apb.RetireEnvironments) -> None:
        """Tell the worker that environments will never be used again."""
        if not self.closed:
            self.outbox.put_nowait(apb.ConnectResponse(retire=retirement))

    def drain(self) -> None:
        """The worker is shutting down: place nothing more on it, and tell
        it so; work already sent is still answered."""
        self.draining = True
        self.outbox.put_nowait(apb.ConnectResponse(drain_ack=apb.DrainAck()))

    def on_prepare_progress(self, progress: apb.PrepareProgress) -> None:
        listener = self._prepare_listeners.get(progress.prepare_id)
        if listener is not None:
            listener(self.worker_id, progress.step)

    def on_prepare_result(self, result: apb.PrepareResult) -> None:
        future = self._prepares.get(result.prepare_id)
        if future is not None and not future.done():
            future.set_result(result)

    def close(self) -> None:
        """End the session: fail everything in flight, stop the writer."""
        if self.closed:
            return
        self.closed = True
        for future, _, _, _ in self._invocations.values():
            if not future.done():
                future.set_exception(WorkerGone(self.worker_id))
        for pfuture in self._prepares.values():
            if not pfuture.done():
                pfuture.set_exception(WorkerGone(self.worker_id))
        self.outbox.put_nowait(None)


class Claim(enum.Enum):
    """What becomes of a registration under a worker id."""

    # No live session holds the id, or its holder is this same process
    # reconnecting, or a previous process that stopped heartbeating.
    TAKE = "take"
    # Another live process holds it: it heartbeated since this one came.
    REFUSE = "refuse"
    # Not known yet: the holder has neither heartbeated since nor expired.
    WAIT = "wait"


def claim(holder: WorkerSession | None, instance_id: str, arrived: float, now: float) -> Claim:
    """Whether a registration that `arrived` (monotonic) with `instance_id`
    may take its worker id from `holder`, the session holding it. A worker
    restarted after its process died must get its id back (its containers
    are labelled with it), while a second process given the id of a live
    one must not take it over: the two would replace each other forever.
    The old session's stream may outlive its process for a while (no FIN
    from a dead host), so only a sign of life after the newcomer came, a
    heartbeat or a result, tells a live holder; its heartbeat TTL running
    out tells a dead one."""
    if holder is None or holder.closed:
        return Claim.TAKE
    if instance_id and holder.instance_id == instance_id:
        return Claim.TAKE
    if holder.last_seen > arrived:
        return Claim.REFUSE
    if now > holder.deadline:
        return Claim.TAKE
    return Claim.WAIT


class WorkerRegistry:
    def __init__(self, ttl_ms: int) -> None:
        self.ttl_ms = ttl_ms
        self.sessions: dict[str, WorkerSession] = {}
        self._listeners: list[Callable[[], None]] = []
        self._join_listeners: list[Callable[[WorkerSession], None]] = []
        self._ready_listeners: list[Callable[[WorkerSession], None]] = []
        self._result_listeners: list[Callable[[WorkerSession, apb.InvokeResult], None]] = []
        self.changed = asyncio.Event()

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def on_join(self, listener: Callable[[WorkerSession], None]) -> None:
        """Call `listener` with every session that registers."""
        self._join_listeners.append(listener)

    def on_ready(self, listener: Callable[[WorkerSession], None]) -> None:
        """Call `listener` with every session once it is ready (its first
        heartbeat, which follows the results the worker kept)."""
        self._ready_listeners.append(listener)

    def on_unclaimed_result(
        self, listener: Callable[[WorkerSession, apb.InvokeResult], None]
    ) -> None:
        """Call `listener` with every result no invocation of its session
        waits for."""
        self._result_listeners.append(listener)

    def unclaimed_result(self, session: WorkerSession, result: apb.InvokeResult) -> None:
        for listener in self._result_listeners:
            listener(session, result)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def add(self, session: WorkerSession) -> None:
        previous = self.sessions.get(session.worker_id)
        if previous is not None:
            # The same worker reconnected (restart or broken stream): its old
            # session's work is lost with the old process.
            log.info("worker.replaced", worker_id=session.worker_id)
            previous.close()
        self.sessions[session.worker_id] = session
        log.info(
            "worker.registered",
            worker_id=session.worker_id,
            capacity=session.capacity,
            ready_runtimes=sorted(session.ready_runtimes),
        )
        for listener in self._join_listeners:
            listener(session)
        self._notify()

    def runtimes_changed(self, session: WorkerSession) -> None:
        """A worker's ready runtimes changed: work waiting for room may now
        be placed on it."""
        log.info(
            "worker.runtimes_ready",
            worker_id=session.worker_id,
            ready_runtimes=sorted(session.ready_runtimes),
        )
        self._notify()

    async def admit(self, session: WorkerSession, poll_s: float = 0.05) -> bool:
        """Register `session` once its worker id is its to take (see
        `claim`); False, and nothing registered, when another live process
        holds the id. Waits at most the holder's heartbeat TTL."""
        arrived = time.monotonic()
        while True:
            holder = self.sessions.get(session.worker_id)
            verdict = claim(holder, session.instance_id, arrived, time.monotonic())
            if verdict is Claim.TAKE:
                session.touch()  # its TTL runs from now, not from its arrival
                self.add(session)
                return True
            if verdict is Claim.REFUSE:
                log.warning("worker.id_in_use", worker_id=session.worker_id)
                return False
            await asyncio.sleep(poll_s)

    def ready(self, session: WorkerSession) -> None:
        """The session's first heartbeat came: work may be placed on it."""
        if not session.ready and not session.closed:
            session.ready = True
            for listener in self._ready_listeners:
                listener(session)
            self._notify()

    def remove(self, session: WorkerSession, reason: str) -> None:
        session.close()
        if self.sessions.get(session.worker_id) is session:
            del self.sessions[session.worker_id]
            log.info("worker.gone", worker_id=session.worker_id, reason=reason)
            self._notify()

    def registered(self) -> list[WorkerSession]:
        """Every open session, ready or not."""
        return [s for s in self.sessions.values() if not s.closed]

    def live(self) -> list[WorkerSession]:
        """The open sessions that are ready (counted, placed on)."""
        return [s for s in self.registered() if s.ready]

    def accepting(self) -> list[WorkerSession]:
        """The live workers new work may be placed on (not draining)."""
        return [s for s in self.live() if not s.draining]

    def drain(self, session: WorkerSession) -> None:
        session.drain()
        log.info("worker.draining", worker_id=session.worker_id)
        self._notify()

    def get(self, worker_id: str) -> WorkerSession | None:
        return self.sessions.get(worker_id)

    def expire(self, now: float | None = None) -> list[WorkerSession]:
        """Remove the sessions whose heartbeat TTL has passed."""
        now = time.monotonic() if now is None else now
        expired = [s for s in self.registered() if s.deadline < now]
        for session in expired:
            self.remove(session, "heartbeat TTL expired")
        return expired
