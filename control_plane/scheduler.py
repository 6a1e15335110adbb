"""Making functions runnable and running their invocations on workers.

Activation: a Pending function becomes Active once a live worker has prepared
its runtime (image present or built), or Failed when none can. Dispatch: each
invocation is placed by the pure `place` function on a snapshot of the live
workers and sent over that worker's session; when all workers are full it waits
for one to free up, fairly, in arrival order.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.environments import environment_key
from lambdafleet.errors import LambdaError, service_error
from lambdafleet.functions.v1 import functions_pb2 as pb

from . import lifecycle
from .placement import place
from .store import FunctionKey, FunctionStore, StoredFunction
from .workers import WorkerGone, WorkerRegistry

log = structlog.get_logger(__name__)

# How long an invocation may wait for a free worker before it is throttled.
QUEUE_WAIT_S = 30.0
# Extra time beyond the function's timeout before the control plane gives up
# on a worker's answer; the worker enforces the timeout itself, and covers a
# cold start that has to build a runtime image.
ANSWER_MARGIN_S = 600.0

ARCH_NAMES: dict[int, str] = {pb.ARCHITECTURE_ARM64: "arm64"}


def function_arn(key: FunctionKey, qualifier: str = "") -> str:
    arn = f"arn:aws:lambda:{key.region}:{key.account_id}:function:{key.name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def function_spec(fn: StoredFunction) -> apb.FunctionSpec:
    c = fn.configuration
    return apb.FunctionSpec(
        function_arn=c.function_arn,
        function_name=c.function_name,
        version=c.version or "$LATEST",
        revision_id=c.revision_id,
        runtime=c.runtime,
        handler=c.handler,
        memory_size=c.memory_size,
        timeout=c.timeout,
        environment=dict(c.environment),
        code_sha256=c.code_sha256,
        region=fn.key.region,
        account_id=fn.key.account_id,
        log_group=c.log_group,
        ephemeral_storage_mb=c.ephemeral_storage_mb,
    )


class Scheduler:
    def __init__(self, store: FunctionStore, registry: WorkerRegistry) -> None:
        self.store = store
        self.registry = registry
        self._activations: dict[FunctionKey, asyncio.Task[None]] = {}
        self._capacity = asyncio.Condition()
        registry.on_change(self._workers_changed)

    # -- activation ---------------------------------------------------------

    def activate(self, key: FunctionKey) -> None:
        task = self._activations.get(key)
        if task is None or task.done():
            self._activations[key] = asyncio.create_task(self._activate(key))

    def resume_pending(self) -> None:
        for fn in self.store.all():
            if lifecycle.is_pending(fn.configuration):
                self.activate(fn.key)

    async def _activate(self, key: FunctionKey) -> None:
        while True:
            fn = self.store.get(key)
            if fn is None or not lifecycle.is_pending(fn.configuration):
                return
            workers = self.registry.live()
            if not workers:
                self.registry.changed.clear()
                await self.registry.changed.wait()
                continue
            revision = fn.configuration.revision_id
            results = await asyncio.gather(
                *(w.prepare(fn.configuration.runtime) for w in workers), return_exceptions=True
            )
            errors = [r.error_message for r in results if isinstance(r, apb.PrepareResult)]
            ok = any(isinstance(r, apb.PrepareResult) and r.ok for r in results)
            if not ok and len(errors) < len(workers):
                continue  # a worker vanished mid-way; try again with the rest
            current = self.store.get(key)
            if current is None or current.configuration.revision_id != revision:
                return  # deleted or changed meanwhile
            if ok:
                current.configuration.CopyFrom(lifecycle.activated(current.configuration))
                log.info("function.active", function=key.name)
            else:
                reason = next((e for e in errors if e), "No worker could prepare the runtime.")
                current.configuration.CopyFrom(
                    lifecycle.failed(current.configuration, reason, "InternalError")
                )
                log.warning("function.failed", function=key.name, reason=reason)
            self.store.update(current)
            return

    def _workers_changed(self) -> None:
        self.registry.changed.set()
        asyncio.get_running_loop().create_task(self._notify_capacity())

    async def _notify_capacity(self) -> None:
        async with self._capacity:
            self._capacity.notify_all()

    async def close(self) -> None:
        for task in self._activations.values():
            task.cancel()
        await asyncio.gather(*self._activations.values(), return_exceptions=True)

    # -- dispatch -----------------------------------------------------------

    async def invoke(self, fn: StoredFunction, request: pb.InvokeRequest) -> apb.InvokeResult:
        spec = function_spec(fn)
        key = environment_key(spec)
        architectures = fn.configuration.architectures
        arch = ARCH_NAMES.get(architectures[0], "x86_64") if architectures else "x86_64"
        invocation_id = str(uuid.uuid4())
        assignment = apb.InvokeAssignment(
            invocation_id=invocation_id,
            function=spec,
            payload=request.payload,
            client_context=request.client_context,
            request_id=request.context.request_id,
            deadline_unix_ms=int((time.time() + spec.timeout) * 1000),
        )
        deadline = time.monotonic() + QUEUE_WAIT_S
        while True:
            if not self.registry.live():
                raise service_error("No worker is available to run the function.")
            snapshots = [w.snapshot() for w in self.registry.live()]
            worker_id = place(snapshots, key, spec.memory_size, arch)
            session = self.registry.get(worker_id) if worker_id else None
            if session is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LambdaError(
                    "TooManyRequestsException",
                    "Rate Exceeded.",
                    {"Reason": "ConcurrentInvocationLimitExceeded", "retryAfterSeconds": "1"},
                )
            async with self._capacity:
                try:
                    await asyncio.wait_for(self._capacity.wait(), timeout=remaining)
                except TimeoutError:
                    pass
        log.info("invoke.placed", worker_id=session.worker_id, invocation_id=invocation_id)
        try:
            result = await asyncio.wait_for(
                session.invoke(assignment, key), timeout=spec.timeout + ANSWER_MARGIN_S
            )
        except (WorkerGone, TimeoutError) as exc:
            log.warning("invoke.worker_lost", worker_id=session.worker_id, error=repr(exc))
            raise service_error(
                "The worker running the function stopped answering. Try again."
            ) from exc
        finally:
            await self._notify_capacity()
        if result.status == apb.INVOKE_STATUS_SERVICE_ERROR:
            raise service_error(result.error_message or "The function could not be run.")
        return result
