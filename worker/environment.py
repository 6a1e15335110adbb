"""One execution environment: a container running a runtime client, and the
Runtime API conversation with it. No Docker calls here: the pool creates and
removes containers; this class only tracks what the runtime has said.

Status: STARTING (container up, runtime not yet polling) -> READY (waiting in
`next`) -> INVOKING (an event handed out) -> READY ... -> STOPPED, with
SHUTTING_DOWN before STOPPED while extensions handle SHUTDOWN. External
extensions (worker/extensions.py) take part: init and each invocation end
only when they are done too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lambdafleet.agent.v1 import agent_pb2 as apb

from . import invocation_log
from .environment_log import EnvironmentLog, Outcome
from .extensions import (
    INVOKE,
    SHUTDOWN,
    Deliver,
    ExtensionsState,
    InitComplete,
    Instruction,
    InvocationComplete,
    ShutdownComplete,
)
from .runtime_auth import RuntimeCredential


class Status(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    INVOKING = "invoking"
    SHUTTING_DOWN = "shutting_down"
    STOPPED = "stopped"


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_unix_ms: int
    # The ARN the caller invoked, qualified as it was (alias, version,
    # $LATEST or none): an environment serves its version whichever
    # qualifier reached it, so this comes with each invocation.
    invoked_function_arn: str
    client_context: str
    # Set when the caller streams the answer (InvokeWithResponseStream): a
    # runtime's streamed response goes there chunk by chunk as it arrives.
    on_chunk: Callable[[bytes], None] | None = None
    answer: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # When it was handed to the environment (monotonic): REPORT's Duration
    # runs from here to the runtime's answer.
    handed_at: float = 0.0
    # Done when the invocation has ended: the runtime answered and every
    # extension subscribed to INVOKE is done with it (or the environment stopped).
    finished: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True)
class Answer:
    """How the runtime answered one invocation."""

    payload: bytes
    # Empty for success; "Unhandled" (AWS's X-Amz-Function-Error) for errors.
    function_error: str = ""
    # The environment cannot serve again (its runtime was refused an answer
    # and exits, as awslambdaric does on a 413): the pool replaces it.
    reset: bool = False


class EnvironmentStopped(Exception):
    """The environment ended (container exit or init error) mid-way."""

    def __init__(self, message: str, answer: Answer | None = None) -> None:
        super().__init__(message)
        self.answer = answer


class Environment:
    def __init__(
        self,
        spec: apb.FunctionSpec,
        key: str,
        env_id: str = "",
        credential: RuntimeCredential | None = None,
    ) -> None:
        # Public (status, log stream names): it grants nothing.
        self.id = env_id or secrets.token_hex(16)
        # A pre-started container brings its credential: its host name is
        # fixed at creation (worker/runtime_auth.py).
        self.credential = credential or RuntimeCredential()
        # The runtime reaches the Runtime API through this name, mapped to the
        # worker in the container's /etc/hosts: the Host header it sends then
        # proves to the worker's one server which environment is speaking.
        self.hostname = self.credential.hostname
        # What the pool files it under (a digest: the pool holds no secret).
        self.route = self.credential.route
        self.spec = spec
        self.key = key
        self.status = Status.STARTING
        self.container_id = ""
        self.cold = True
        # Started ahead of time for provisioned concurrency (worker/provisioned.py).
        self.provisioned = False
        # Began as a pre-started container (worker/prestart.py).
        self.prestarted = bool(env_id)
        # No invocation will come for it again (its function was deleted or
        # updated): it takes no work and stops once idle.
        self.retired = False
        self.invocations = 0
        self.last_used = time.monotonic()
        self.started = asyncio.get_running_loop().create_future()
        self._waiter: asyncio.Future[Invocation] | None = None
        self._queued: Invocation | None = None
        self.current: Invocation | None = None
        # From its container's creation (or a pre-started one's bind) to the
        # runtime's first request for work: REPORT's Init Duration.
        self.init_ms: float | None = None
        self.extensions = ExtensionsState()
        # Extensions waiting in event/next, by extension id.
        self._ext_waiters: dict[str, asyncio.Future[dict[str, object]]] = {}
        self._shutdown_done: asyncio.Future[None] | None = None
        # The runtime is being restarted in place (hot reloading): the
        # environment serves again once the new runtime asks for work.
        self.reloading = False
        # Its log stream; the pool connects it to the worker's log shipper.
        self.log = EnvironmentLog(
            function_arn=spec.function_arn,
            version=spec.version,
            log_stream=log_stream_name(spec.version, self.id),
            memory_size_mb=spec.memory_size,
            truncate_at=invocation_log.DEFAULT_TRUNCATE,
            emit=lambda line: None,
            # A function printing its variables must not publish its key.
            hidden=self.credential.secret,
        )

    # -- called by the pool -------------------------------------------------

    def invoke(self, invocation: Invocation) -> None:
        invocation.handed_at = time.monotonic()
        self.status = Status.INVOKING
        self.invocations += 1
        self.current = invocation
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(invocation)
            self._waiter = None
        else:
            self._queued = invocation
        if self.extensions.subscribed(INVOKE):
            event = {
                "eventType": INVOKE,
                "deadlineMs": invocation.deadline_unix_ms,
                "requestId": invocation.request_id,
                "invokedFunctionArn": invocation.invoked_function_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id(invocation.request_id)},
            }
            self._apply(self.extensions.invoke(invocation.request_id, event))

    def abandon(self, invocation: Invocation) -> None:
        """Give up on `invocation` (timed out): its runtime is to be
        restarted, and any answer it still sends is refused."""
        if self.current is invocation:
            self.current = None
            if not invocation.finished.done():
                invocation.finished.set_result(None)
            if self.status is Status.INVOKING:
                self.status = Status.READY

    def restart_runtime(self) -> bool:
        """Mark an idle environment as restarting its runtime (the pool then
        signals the container); False when it is not idle."""
        if self.status is not Status.READY or self.current is not None:
            return False
        self.status = Status.STARTING
        self.reloading = True
        return True

    async def shut_down(self, reason: str, grace_s: float) -> None:
        """Send SHUTDOWN to the extensions subscribed to it and wait until
        they are done, at most grace_s (then the container goes anyway)."""
        if self.status is Status.STOPPED or not self.extensions.subscribed(SHUTDOWN):
            return
        self.status = Status.SHUTTING_DOWN
        self._shutdown_done = asyncio.get_running_loop().create_future()
        event = {
            "eventType": SHUTDOWN,
            "shutdownReason": reason,
            "deadlineMs": int((time.time() + grace_s) * 1000),
        }
        self._apply(self.extensions.shutdown(event))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._shutdown_done), grace_s)

    def stop(self, reason: str, answer: Answer | None = None) -> None:
        if self.status is Status.STOPPED:
            return
        self.status = Status.STOPPED
        error = EnvironmentStopped(reason, answer)
        if not self.started.done():
            self.started.set_exception(error)
            self.started.exception()  # mark retrieved: nobody may be waiting
        if self.current is not None and not self.current.answer.done():
            self.current.answer.set_exception(error)
        if self.current is not None and not self.current.finished.done():
            self.current.finished.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        for waiter in self._ext_waiters.values():
            waiter.cancel()
        self._ext_waiters.clear()

    # -- called by the Runtime API server --------------------------------------

    def next(self) -> asyncio.Future[Invocation]:
        """The runtime asks for its next event."""
        loop = asyncio.get_running_loop()
        if self._waiter is not None and not self._waiter.done():
            # Only one runtime polls: one still waiting is the previous
            # process of a restarted runtime, gone.
            self._waiter.cancel()
            self._waiter = None
        if self.reloading and self.status is Status.STARTING:
            self.reloading = False
            self.status = Status.READY
        self._apply(self.extensions.runtime_next())
        # Started on demand, the environment is its starter's: the pool hands
        # it that invocation once `started` is done, a few loop steps later.
        # Were it READY in between, another invocation of the function could
        # take it as idle and be sent to the runtime, and the starter's
        # invocation would then replace it as `current`: the runtime's answer
        # to the first is refused (_finish) and that caller never answered
        # (found by tests/test_fleet_faults.py). So only a provisioned one,
        # started ahead of any invocation, is idle once its init completes (_apply).
        waiter: asyncio.Future[Invocation] = loop.create_future()
        if self._queued is not None:
            waiter.set_result(self._queued)
            self._queued = None
        elif self.status is Status.STOPPED:
            waiter.cancel()
        else:
            self._waiter = waiter
        return waiter

    def running(self, request_id: str) -> Invocation | None:
        """The invocation `request_id` if it is the one running now."""
        current = self.current
        if current is None or current.request_id != request_id or current.answer.done():
            return None
        return current

    def respond(self, request_id: str, payload: bytes) -> bool:
        return self._finish(request_id, Answer(payload))

    def fail(self, request_id: str, payload: bytes, error_type: str, reset: bool = False) -> bool:
        return self._finish(
            request_id, Answer(error_document(payload, error_type), "Unhandled", reset)
        )

    def init_error(self, payload: bytes, error_type: str) -> None:
        answer = Answer(error_document(payload, error_type), "Unhandled")
        self.stop("init error", answer)

    # -- called by the Extensions API server -------------------------------------

    def announce_extensions(self, count: int) -> None:
        self._apply(self.extensions.announce(count))

    def register_extension(self, name: str, events: list[str]) -> str:
        """Register an extension (ExtensionError when refused); its id."""
        return self.extensions.register(secrets.token_hex(16), name, events).id

    def extension_next(self, extension_id: str) -> asyncio.Future[dict[str, object]]:
        """The extension is done with its last event and asks for the next."""
        waiter: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        previous = self._ext_waiters.pop(extension_id, None)
        if previous is not None and not previous.done():
            previous.cancel()
        self._ext_waiters[extension_id] = waiter
        self._apply(self.extensions.extension_next(extension_id))
        if self.status is Status.STOPPED and not waiter.done():
            waiter.cancel()
        return waiter

    def extension_failed(self, extension_id: str, error_type: str, during_init: bool) -> None:
        self._apply(self.extensions.failed(extension_id, error_type))
        if during_init and not self.extensions.init_done:
            # As Lambda: an extension's init error fails the environment's init.
            doc = json.dumps(
                {"errorMessage": f"Extension init failed: {error_type}", "errorType": error_type}
            ).encode()
            self.stop("extension init error", Answer(doc, "Unhandled"))

    # -- internals ----------------------------------------------------------------

    def _apply(self, instructions: list[Instruction]) -> None:
        for instruction in instructions:
            if isinstance(instruction, InitComplete):
                if not self.started.done():
                    self.started.set_result(None)
                # See next(): only a provisioned one is idle once started.
                if self.status is Status.STARTING and self.provisioned:
                    self.status = Status.READY
            elif isinstance(instruction, InvocationComplete):
                self._complete(instruction.request_id)
            elif isinstance(instruction, ShutdownComplete):
                if self._shutdown_done is not None and not self._shutdown_done.done():
                    self._shutdown_done.set_result(None)
            elif isinstance(instruction, Deliver):
                waiter = self._ext_waiters.get(instruction.extension_id)
                if waiter is not None and not waiter.done():
                    event = self.extensions.take(instruction.extension_id)
                    if event is not None:
                        del self._ext_waiters[instruction.extension_id]
                        waiter.set_result(event)

    def _finish(self, request_id: str, answer: Answer) -> bool:
        current = self.current
        if current is None or current.request_id != request_id or current.answer.done():
            return False
        current.answer.set_result(answer)
        # The outcome is the log's now, in the step that may free the
        # environment: the next invocation's START closes this one's log,
        # possibly before the pool's waiter for this answer has run.
        self.log.answered(request_id, Outcome((time.monotonic() - current.handed_at) * 1000))
        if self.extensions.subscribed(INVOKE):
            # The caller has the answer; the environment is free only once
            # the extensions are done with the invocation too.
            self._apply(self.extensions.answered(request_id))
        else:
            self._complete(request_id)
        return True

    def _complete(self, request_id: str) -> None:
        current = self.current
        if current is None or current.request_id != request_id:
            return
        self.current = None
        if self.status is Status.INVOKING:
            self.status = Status.READY
        self.last_used = time.monotonic()
        if not current.finished.done():
            current.finished.set_result(None)


def trace_id(request_id: str) -> str:
    """The X-Ray trace header an invocation carries (not sampled)."""
    return f"Root=1-00000000-{request_id.replace('-', '')[:24]};Sampled=0"


def log_stream_name(version: str, env_id: str, now: datetime | None = None) -> str:
    """AWS's log stream name: the environment's start date, version and id
    (AWS_LAMBDA_LOG_STREAM_NAME)."""
    day = (now or datetime.now(UTC)).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{env_id}"


_STATES = {
    Status.STARTING: apb.ENVIRONMENT_STATE_STARTING,
    Status.READY: apb.ENVIRONMENT_STATE_READY,
    Status.INVOKING: apb.ENVIRONMENT_STATE_INVOKING,
}


def describe(env: Environment) -> apb.EnvironmentStatus:
    """What a heartbeat says of an environment."""
    return apb.EnvironmentStatus(
        environment_id=env.id,
        function_arn=env.spec.function_arn,
        version=env.spec.version,
        container_id=env.container_id,
        state=_STATES.get(env.status, apb.ENVIRONMENT_STATE_UNSPECIFIED),
        provisioned=env.provisioned,
        prestarted=env.prestarted,
        memory_mb=env.spec.memory_size,
        runtime=env.spec.runtime,
        invocations=env.invocations,
    )


def error_document(payload: bytes, error_type: str) -> bytes:
    """The error payload AWS returns: the runtime's JSON document, or one built
    from the error type when the runtime sent none."""
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return payload
    return json.dumps(
        {
            "errorMessage": payload.decode(errors="replace"),
            "errorType": error_type or "Runtime.Unknown",
        }
    ).encode()
