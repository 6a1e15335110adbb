"""One execution environment: a container running a runtime client, and the
Runtime API conversation with it. No Docker calls here: the pool creates and
removes containers; this class only tracks what the runtime has said.

Status: STARTING (container up, runtime not yet polling) -> READY (waiting in
`next`) -> INVOKING (an event handed out) -> READY ... -> STOPPED.
"""

from __future__ import annotations

import asyncio
import enum
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lambdafleet.agent.v1 import agent_pb2 as apb

from . import invocation_log
from .environment_log import EnvironmentLog


class Status(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    INVOKING = "invoking"
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
    def __init__(self, spec: apb.FunctionSpec, key: str, env_id: str = "") -> None:
        # A pre-started container brings its id: its hostname is fixed at creation.
        self.id = env_id or secrets.token_hex(16)
        # The runtime reaches the Runtime API through this name, mapped to the
        # worker in the container's /etc/hosts: the Host header it sends then
        # tells the worker's one server which environment is speaking.
        self.hostname = f"lf-{self.id}"
        self.spec = spec
        self.key = key
        self.status = Status.STARTING
        self.container_id = ""
        self.cold = True
        # Started ahead of time for provisioned concurrency (worker/provisioned.py).
        self.provisioned = False
        # Began as a pre-started container (worker/prestart.py).
        self.prestarted = bool(env_id)
        self.invocations = 0
        self.last_used = time.monotonic()
        self.started = asyncio.get_running_loop().create_future()
        self._waiter: asyncio.Future[Invocation] | None = None
        self._queued: Invocation | None = None
        self.current: Invocation | None = None
        # From its container's creation (or a pre-started one's bind) to the
        # runtime's first request for work: REPORT's Init Duration.
        self.init_ms: float | None = None
        # Its log stream; the pool connects it to the worker's log shipper.
        self.log = EnvironmentLog(
            function_arn=spec.function_arn,
            version=spec.version,
            log_stream=log_stream_name(spec.version, self.id),
            memory_size_mb=spec.memory_size,
            truncate_at=invocation_log.DEFAULT_TRUNCATE,
            emit=lambda line: None,
        )

    # -- called by the pool -------------------------------------------------

    def invoke(self, invocation: Invocation) -> None:
        self.status = Status.INVOKING
        self.invocations += 1
        self.current = invocation
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(invocation)
            self._waiter = None
        else:
            self._queued = invocation

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
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()

    # -- called by the Runtime API server --------------------------------------

    def next(self) -> asyncio.Future[Invocation]:
        """The runtime asks for its next event."""
        loop = asyncio.get_running_loop()
        if not self.started.done():
            self.started.set_result(None)
        # Started on demand, the environment is its starter's: the pool hands
        # it that invocation once `started` is done, a few loop steps later.
        # Were it READY in between, another invocation of the function could
        # take it as idle and be sent to the runtime, and the starter's
        # invocation would then replace it as `current`: the runtime's answer
        # to the first is refused (_finish) and that caller never answered
        # (found by tests/test_fleet_faults.py). So only a provisioned one,
        # started ahead of any invocation, is idle on its first /next.
        if self.status is Status.STARTING and self.provisioned:
            self.status = Status.READY
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

    def _finish(self, request_id: str, answer: Answer) -> bool:
        current = self.current
        if current is None or current.request_id != request_id or current.answer.done():
            return False
        current.answer.set_result(answer)
        self.current = None
        self.status = Status.READY
        self.last_used = time.monotonic()
        return True


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
