"""Making functions runnable and running their invocations on workers.

Activation: a Pending function becomes Active once a live worker has prepared
its runtime (image present or built), or Failed when none can. A worker that
joins is asked to prepare every runtime the functions use, so that it can take
their work soon (placement gives it none until then). Dispatch: each
invocation is placed by the pure `place` function on a snapshot of the live
workers and sent over that worker's session; when all workers are full it waits
for one to free up, fairly, in arrival order.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.environments import environment_key
from lambdafleet.errors import LambdaError, service_error
from lambdafleet.state.v1 import state_pb2

from . import function_runtime, lifecycle
from .api.concurrency import provisioned_configs, reservations
from .api.function_code import HOT_RELOAD_SHA256
from .api.kinds import ALIAS, FUNCTION, PROVISIONED, VERSION
from .api.resolve import function_arn, get_alias, is_version
from .leases import Leases, Limits, Throttled
from .metrics import FleetMetrics
from .placement import place
from .recent import Finished, Outcome, qualifier_of
from .store import ResourceStore, Scope
from .workers import WorkerGone, WorkerRegistry, WorkerSession

log = structlog.get_logger(__name__)

# How long an invocation may wait for a free worker before it is throttled.
QUEUE_WAIT_S = 30.0
# Extra time beyond the function's timeout before the control plane gives up
# on a worker's answer; the worker enforces the timeout itself, and covers a
# cold start that has to build a runtime image.
ANSWER_MARGIN_S = 600.0


def function_spec(
    scope: Scope, c: api.FunctionConfiguration, store: ResourceStore | None = None
) -> apb.FunctionSpec:
    """What a worker needs to run the version `c`. Nothing in it depends on
    the qualifier the version was reached through (`c.function_arn` may be
    an alias's ARN): the same version gives the same spec, so its
    environments serve it whichever way it was invoked. `store` resolves
    its layers' packages, an image function's ImageUri (function_runtime.py)
    and a hot-reloading function's folder."""
    spec = apb.FunctionSpec(
        function_arn=function_arn(scope, c.function_name),
        function_name=c.function_name,
        version=c.version or "$LATEST",
        revision_id=c.revision_id,
        runtime=c.runtime,
        handler=c.handler,
        memory_size=c.memory_size,
        timeout=c.timeout,
        environment=dict(c.environment.variables),
        code_sha256=c.code_sha256,
        region=scope.region,
        account_id=scope.account_id,
        log_group=c.logging_config.log_group,
        ephemeral_storage_mb=c.ephemeral_storage.size,
    )
    if store is not None:
        function_runtime.complete(store, scope, c, spec)
        spec.hot_reload_path = hot_reload_folder(store, scope, c)
    return spec


def hot_reload_folder(store: ResourceStore, scope: Scope, c: api.FunctionConfiguration) -> str:
    """The mounted folder of a hot-reloading function (its versions share
    it, as in LocalStack), or "" for every other function (no store read)."""
    if c.code_sha256 != HOT_RELOAD_SHA256:
        return ""
    record = store.get(scope, "function", c.function_name, state_pb2.FunctionRecord)
    return record.hot_reload_path if record is not None else ""


@dataclass
class _Placed:
    """Where an invocation ran, for its record (set once it is placed)."""

    worker_id: str = ""


def error_type(result: apb.InvokeResult) -> str:
    """A function error's errorType, from the error document it answered."""
    try:
        document = json.loads(result.payload)
    except ValueError:
        document = None
    found = document.get("errorType") if isinstance(document, dict) else None
    if isinstance(found, str) and found:
        return found
    return result.function_error or "Unhandled"


class Scheduler:
    def __init__(
        self,
        store: ResourceStore,
        registry: WorkerRegistry,
        account_limit: int = 1000,
        metrics: FleetMetrics | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        # Every invocation that finishes here is counted (metrics.py).
        self.metrics = metrics or FleetMetrics()
        # LAMBDA_LIMITS_CONCURRENT_EXECUTIONS: every account's concurrency.
        self.account_limit = account_limit
        self.leases = Leases()
        # Limits by scope, with the store generation they were read at.
        self._limits: dict[Scope, tuple[tuple[int, ...], Limits]] = {}
        self._activations: dict[tuple[Scope, str], asyncio.Task[None]] = {}
        # Joined workers preparing the runtimes in use.
        self._joins: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Condition()
        registry.on_change(self._workers_changed)
        registry.on_join(self._worker_joined)

    # -- activation ---------------------------------------------------------

    def activate(self, scope: Scope, name: str) -> None:
        """Bring a Pending function to Active, or an update in progress to
        Successful, once a worker has its runtime ready."""
        key = (scope, name)
        task = self._activations.get(key)
        if task is None or task.done():
            self._activations[key] = asyncio.create_task(self._activate(scope, name))

    def resume_pending(self) -> None:
        for scope, name, record in self.store.everywhere("function", state_pb2.FunctionRecord):
            config = record.configuration
            if lifecycle.is_pending(config) or lifecycle.is_updating(config):
                self.activate(scope, name)

    def _load(self, scope: Scope, name: str) -> state_pb2.FunctionRecord | None:
        return self.store.get(scope, "function", name, state_pb2.FunctionRecord)

    async def _activate(self, scope: Scope, name: str) -> None:
        while True:
            record = self._load(scope, name)
            if record is None:
                return
            config = record.configuration
            if not (lifecycle.is_pending(config) or lifecycle.is_updating(config)):
                return
            workers = self.registry.accepting()
            if not workers:
                self.registry.changed.clear()
                await self.registry.changed.wait()
                continue
            revision = config.revision_id
            ok, errors = True, []
            # An image function goes Active without a worker's check, as on
            # AWS for an image that is in its registry: an image the worker's
            # daemon lacks and cannot pull fails its invocations, saying so
            # (a check here would fail functions whose registry a worker
            # reaches only later).
            if config.package_type != "Image":
                on_progress = functools.partial(self._image_progress, scope, name, revision)
                results = await asyncio.gather(
                    *(w.prepare(config.runtime, on_progress=on_progress) for w in workers),
                    return_exceptions=True,
                )
                errors = [r.error_message for r in results if isinstance(r, apb.PrepareResult)]
                ok = any(isinstance(r, apb.PrepareResult) and r.ok for r in results)
                if not ok and len(errors) < len(workers):
                    continue  # a worker vanished mid-way; try again with the rest
            current = self._load(scope, name)
            if current is None:
                return
            if current.configuration.revision_id != revision:
                # Changed while the runtime was prepared (an update, or only a
                # new RevisionId from a permission): look again.
                continue
            if ok:
                # An update (a configuration served before): what served it
                # until now will not be used again.
                replaced = current.HasField("serving")
                current.configuration.CopyFrom(lifecycle.activated(current.configuration))
                current.serving.CopyFrom(current.configuration)
                log.info("function.active", function=name)
            else:
                reason = next((e for e in errors if e), "No worker could prepare the runtime.")
                current.configuration.CopyFrom(
                    lifecycle.failed(current.configuration, reason, "InternalError")
                )
                log.warning("function.failed", function=name, reason=reason)
            self.store.put(scope, "function", name, current, function=name)
            self._settle_versions(scope, name, ok, errors)
            if ok and replaced:
                serving = function_spec(scope, current.serving, self.store)
                self.retire(scope, name, serving.version, environment_key(serving))
            return

    def _image_progress(
        self, scope: Scope, name: str, revision: str, worker_id: str, step: str
    ) -> None:
        """A worker builds the runtime's image for a Pending function: its
        StateReason says so (until it goes Active or Failed)."""
        record = self._load(scope, name)
        if record is None or record.configuration.revision_id != revision:
            return
        reason = lifecycle.image_in_preparation(record.configuration, worker_id, step)
        if reason is None or reason.state_reason == record.configuration.state_reason:
            return
        record.configuration.CopyFrom(reason)
        self.store.put(scope, "function", name, record, function=name)

    def _settle_versions(self, scope: Scope, name: str, ok: bool, errors: list[str]) -> None:
        """Versions published while $LATEST was being created or updated
        share its fate."""
        for rid, config in self.store.items(
            scope, "version", api.FunctionConfiguration, prefix=f"{name}:", function=name
        ):
            if not lifecycle.is_pending(config):
                continue
            if ok:
                settled = lifecycle.activated(config)
            else:
                reason = next((e for e in errors if e), "No worker could prepare the runtime.")
                settled = lifecycle.failed(config, reason, "InternalError")
            self.store.put(scope, "version", rid, settled, function=name)

    def runtimes_in_use(self) -> set[str]:
        """The runtimes of every function and published version (an image
        function has none)."""
        used = {
            record.configuration.runtime
            for _, _, record in self.store.everywhere(FUNCTION, state_pb2.FunctionRecord)
        }
        used |= {c.runtime for _, _, c in self.store.everywhere(VERSION, api.FunctionConfiguration)}
        used.discard("")
        return used

    def _worker_joined(self, session: WorkerSession) -> None:
        missing = self.runtimes_in_use() - session.ready_runtimes
        if missing:
            task = asyncio.get_running_loop().create_task(
                self._prepare_joined(session, sorted(missing))
            )
            self._joins.add(task)
            task.add_done_callback(self._joins.discard)

    async def _prepare_joined(self, session: WorkerSession, runtimes: list[str]) -> None:
        """Ask a joined worker to make `runtimes` ready. It reports each one
        ready in a heartbeat (placement reads that); a failure only means it
        gets no work of that runtime while another worker has it ready."""
        log.info("worker.preparing", worker_id=session.worker_id, runtimes=runtimes)
        results = await asyncio.gather(
            *(session.prepare(runtime) for runtime in runtimes), return_exceptions=True
        )
        for runtime, result in zip(runtimes, results, strict=True):
            if isinstance(result, apb.PrepareResult) and not result.ok:
                log.warning(
                    "worker.prepare_failed",
                    worker_id=session.worker_id,
                    runtime=runtime,
                    error=result.error_message,
                )

    def retire(self, scope: Scope, name: str, version: str = "", keep_key: str = "") -> None:
        """Tell every worker that the environments of function `name` (of
        `version` only, when given) other than those of `keep_key` will
        never be placed on again: deleted, or updated. They stop once idle,
        instead of holding their memory until the keep-alive."""
        retirement = apb.RetireEnvironments(
            function_arn=function_arn(scope, name), version=version, keep_key=keep_key
        )
        for session in self.registry.registered():
            session.retire(retirement)

    def _workers_changed(self) -> None:
        self.registry.changed.set()
        asyncio.get_running_loop().create_task(self._notify_capacity())

    async def _notify_capacity(self) -> None:
        async with self._capacity:
            self._capacity.notify_all()

    async def close(self) -> None:
        tasks = [*self._activations.values(), *self._joins]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- dispatch -----------------------------------------------------------

    def limits(self, scope: Scope) -> Limits:
        """The account's concurrency settings as stored now, so a change
        applies to the next invocation: derived from the rows again only
        when a function, version, alias or provisioned config was written
        since (reading every function record of the account at each
        invocation cost time in proportion to the functions)."""
        generation = self.store.generation(FUNCTION, VERSION, ALIAS, PROVISIONED)
        cached = self._limits.get(scope)
        if cached is not None and cached[0] == generation:
            return cached[1]
        limits = self._read_limits(scope)
        self._limits[scope] = (generation, limits)
        return limits

    def _read_limits(self, scope: Scope) -> Limits:
        provisioned: dict[str, dict[str, int]] = {}
        versions: dict[str, dict[str, str]] = {}
        for function, qualifier, config in provisioned_configs(self.store, scope):
            # The version each config's environments run: an alias's serve
            # that version invoked directly too (leases.choose).
            if is_version(qualifier):
                versions.setdefault(function, {})[qualifier] = qualifier
            else:
                alias = get_alias(self.store, scope, function, qualifier)
                if alias is not None:
                    versions.setdefault(function, {})[qualifier] = alias.function_version
            # The requested count, not the allocated one: the concurrency is
            # the function's from the moment the config exists (AWS carves it
            # out of the reservation at once, recorded
            # test_lambda_concurrency_block). Until its environments are
            # ready, such invocations run in on-demand environments.
            count = config.requested_provisioned_concurrent_executions
            provisioned.setdefault(function, {})[qualifier] = count
        return Limits(self.account_limit, reservations(self.store, scope), provisioned, versions)

    async def invoke(
        self,
        scope: Scope,
        config: api.FunctionConfiguration,
        payload: bytes,
        client_context: str,
        request_id: str,
        qualifier: str | None = None,
        invoked_arn: str | None = None,
        asynchronous: bool = False,
        log_tail: bool = False,
        on_chunk: Callable[[bytes], None] | None = None,
        on_placed: Callable[[str, str, int], None] | None = None,
    ) -> apb.InvokeResult:
        """Run one invocation and answer the worker's result. `on_chunk`:
        the caller streams the answer, and gets a streamed response's chunks
        as the runtime writes them. `qualifier`
        is the alias invoked, if any (for its provisioned concurrency);
        otherwise the version's, or that of an alias pointing at it, is
        used. `invoked_arn` is the ARN the caller invoked, qualified as it
        was (the function sees it as context.invoked_function_arn); by
        default the configuration's. `log_tail`: the caller asked
        LogType=Tail, so the result must carry the log's end (only then
        does the worker wait for the runtime's output). Throttles at once
        when no concurrency is left (see leases.py). Every invocation is
        counted when it finishes, `asynchronous` telling an event's attempt
        (metrics.py; the worker keeps such results to report them again
        after a reconnect). `on_placed(worker_id, invocation_id,
        deadline_unix_ms)` is called once the worker is chosen, before the
        assignment leaves."""
        name = config.function_name
        invoked = invoked_arn or config.function_arn
        started, started_unix_ms = time.monotonic(), int(time.time() * 1000)
        placed = _Placed()

        def finish(outcome: Outcome, error: str = "", cold_start: bool = False) -> None:
            self.metrics.record(
                Finished(
                    request_id=request_id,
                    account_id=scope.account_id,
                    region=scope.region,
                    function_name=name,
                    qualifier=qualifier_of(invoked),
                    executed_version=config.version or "$LATEST",
                    worker_id=placed.worker_id,
                    start_unix_ms=started_unix_ms,
                    duration_s=time.monotonic() - started,
                    outcome=outcome,
                    error_type=error,
                    cold_start=cold_start,
                    asynchronous=asynchronous,
                )
            )

        try:
            lease = self.leases.acquire(
                self.limits(scope), scope, name, qualifier or config.version or "$LATEST"
            )
        except Throttled as exc:
            log.info("invoke.throttled", function=name, reason=exc.reason)
            finish(Outcome.THROTTLED, "TooManyRequestsException")
            raise LambdaError(
                "TooManyRequestsException", "Rate Exceeded.", {"Reason": exc.reason}
            ) from None
        try:
            provisioned = lease.pool[0] == "provisioned"
            result = await self._run(
                scope,
                config,
                payload,
                client_context,
                request_id,
                provisioned,
                invoked,
                placed,
                log_tail,
                on_chunk,
                asynchronous,
                on_placed,
            )
        except LambdaError as exc:
            throttled = exc.code == "TooManyRequestsException"
            finish(Outcome.THROTTLED if throttled else Outcome.SERVICE_ERROR, exc.code)
            raise
        except Exception as exc:
            finish(Outcome.SERVICE_ERROR, type(exc).__name__)
            raise
        finally:
            self.leases.release(lease)
        if result.status == apb.INVOKE_STATUS_FUNCTION_ERROR:
            finish(Outcome.FUNCTION_ERROR, error_type(result), result.cold_start)
        else:
            finish(Outcome.SUCCESS, cold_start=result.cold_start)
        return result

    def record_throttle(
        self,
        scope: Scope,
        config: api.FunctionConfiguration,
        qualifier: str,
        request_id: str,
        asynchronous: bool,
    ) -> None:
        """Count an invocation refused before it reached `invoke` (an event
        of a function whose reserved concurrency is 0)."""
        self.metrics.record(
            Finished(
                request_id=request_id,
                account_id=scope.account_id,
                region=scope.region,
                function_name=config.function_name,
                qualifier=qualifier,
                executed_version=config.version or "$LATEST",
                worker_id="",
                start_unix_ms=int(time.time() * 1000),
                duration_s=0.0,
                outcome=Outcome.THROTTLED,
                error_type="TooManyRequestsException",
                asynchronous=asynchronous,
            )
        )

    async def _run(
        self,
        scope: Scope,
        config: api.FunctionConfiguration,
        payload: bytes,
        client_context: str,
        request_id: str,
        provisioned: bool = False,
        invoked_arn: str = "",
        placed: _Placed | None = None,
        log_tail: bool = False,
        on_chunk: Callable[[bytes], None] | None = None,
        asynchronous: bool = False,
        on_placed: Callable[[str, str, int], None] | None = None,
    ) -> apb.InvokeResult:
        spec = function_spec(scope, config, self.store)
        key = environment_key(spec)
        arch = config.architectures[0] if config.architectures else "x86_64"
        # An image function brings its own image: no runtime to have ready.
        runtime = "" if spec.package_type == "Image" else spec.runtime
        invocation_id = str(uuid.uuid4())
        assignment = apb.InvokeAssignment(
            invocation_id=invocation_id,
            function=spec,
            payload=payload or b"{}",
            client_context=client_context,
            request_id=request_id,
            deadline_unix_ms=int((time.time() + spec.timeout) * 1000),
            provisioned=provisioned,
            invoked_function_arn=invoked_arn or config.function_arn,
            log_tail=log_tail,
            stream_response=on_chunk is not None,
            asynchronous=asynchronous,
        )
        deadline = time.monotonic() + QUEUE_WAIT_S
        while True:
            workers = self.registry.accepting()
            if not workers:
                raise service_error("No worker is available to run the function.")
            snapshots = [w.snapshot() for w in workers]
            worker_id = place(snapshots, key, spec.memory_size, arch, provisioned, runtime)
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
        # Debug: one line per invocation would cost more than placing it.
        log.debug("invoke.placed", worker_id=session.worker_id, invocation_id=invocation_id)
        if placed is not None:
            placed.worker_id = session.worker_id
        if on_placed is not None:
            # No await between this and the send below: what it records is
            # what leaves.
            on_placed(session.worker_id, invocation_id, assignment.deadline_unix_ms)
        try:
            # Awaited inline, not as a task (wait_for): the assignment is
            # queued in the same step as the placement, so it always precedes
            # a DrainAck the worker then relies on (see worker.agent.drain).
            async with asyncio.timeout(spec.timeout + ANSWER_MARGIN_S):
                result = await session.invoke(assignment, key, on_chunk)
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
