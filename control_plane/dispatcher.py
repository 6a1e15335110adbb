"""Delivering queued asynchronous invocations (event_queue.py).

One loop per control plane takes events whose time has come, in due order,
and runs each as an ordinary invocation through the scheduler (at most
`max_in_flight` at once). After each attempt the pure policy (retry.py)
decides: retry later (the row is rescheduled), or finish: the row is deleted
and, when the event invoke config names one, a destination record is queued
as an Event invocation of the destination function in the same transaction,
so a crash between the two can neither lose nor duplicate the record.

The rows are the truth; the in-memory heap only says when to look at them.
It is rebuilt from the rows at start, which is how queued events survive a
restart. Before an attempt leaves for a worker, the row records the worker
and the invocation id, and the answer settles the row at once (retry or
finish, destination included). A control plane that starts with such a
record waits for that worker to report the attempt (resumption.py), which
it does when it registers again: the result it kept, or that it still runs
it. Only an attempt its worker cannot account for runs again: at least
once, as AWS, and seldom twice.

Destinations that are other AWS services (SQS, SNS, EventBridge, S3) do not
exist in lambdafleet: their records are logged and dropped. DeadLetterConfig
(SQS or SNS) is not honoured for the same reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import heapq
import itertools
import json
import uuid

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError
from lambdafleet.state.v1 import state_pb2

from . import event_queue, resumption, retry
from .api.event_invoke import lambda_destination, lookup
from .api.functions import pick_version
from .api.resolve import LATEST, function_arn, resolve
from .scheduler import Scheduler
from .store import ResourceStore, Scope

log = structlog.get_logger(__name__)

MAX_IN_FLIGHT = 256
# How long a restarted control plane waits for the worker of an attempt cut
# short to come back and report it, before running the event again.
RESUME_GRACE_MS = 10_000
_Key = tuple[Scope, str]
# Namespace of the request ids of destination records (uuid5 of the event's).
_DESTINATION_IDS = uuid.UUID("1f7c2a4e-3b5d-4c6e-8f90-a1b2c3d4e5f6")


def policy_of(config: api.FunctionEventInvokeConfig | None, scale: float) -> retry.Policy:
    """The retry policy an event invoke config sets (AWS's defaults if none)."""
    if config is None:
        return retry.Policy(scale=scale)
    return retry.Policy(
        max_retries=config.maximum_retry_attempts
        if config.HasField("maximum_retry_attempts")
        else retry.DEFAULT_RETRIES,
        max_age_s=config.maximum_event_age_in_seconds
        if config.HasField("maximum_event_age_in_seconds")
        else retry.DEFAULT_MAX_AGE_S,
        scale=scale,
    )


def classify(error: LambdaError) -> retry.Outcome:
    """Throttles and everything else that kept the function from running."""
    if error.code == "TooManyRequestsException":
        return retry.Outcome.THROTTLED
    return retry.Outcome.SYSTEM_ERROR


def _error_response(error: LambdaError, version: str) -> retry.Response:
    # Not recorded: what a record says after throttles or system errors only.
    # The error as the synchronous caller would have seen it is the most
    # useful thing to hand on.
    status = 429 if error.code == "TooManyRequestsException" else 500
    body = json.dumps({"errorType": error.code, "errorMessage": error.message})
    return retry.Response(status, version, body.encode())


def _run_config(
    store: ResourceStore, scope: Scope, event: state_pb2.QueuedEvent
) -> api.FunctionConfiguration:
    """What the event runs now: its version, or for $LATEST the settings
    serving invocations (the previous ones while an update is applied)."""
    found = resolve(store, scope, event.function_name, event.version)
    if event.version == LATEST and found.record.HasField("serving"):
        return found.record.serving
    return found.configuration


def _zero_reserved(store: ResourceStore, scope: Scope, event: state_pb2.QueuedEvent) -> bool:
    """The function has reserved concurrency 0: its events cannot run and
    go to OnFailure at once (retry.ZERO_RESERVED_CONCURRENCY)."""
    try:
        found = resolve(store, scope, event.function_name, event.version)
    except LambdaError:
        return False  # gone: the attempt drops it
    return found.record.HasField("reserved_concurrency") and found.record.reserved_concurrency == 0


class EventDispatcher:
    def __init__(
        self,
        store: ResourceStore,
        scheduler: Scheduler,
        scale: float = 1.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        resume_grace_ms: int = RESUME_GRACE_MS,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.scale = scale
        self.max_in_flight = max_in_flight
        # Attempts found in flight at start, awaited from their workers.
        self.resumption = resumption.Resumption(resume_grace_ms)
        self._resumed = False
        self._due: list[tuple[int, int, Scope, str]] = []
        self._seq = itertools.count()
        self._running: dict[_Key, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------

    def resume(self) -> None:
        """Take in the queue as stored: before workers can register, so the
        attempts they report find their events awaited."""
        if self._resumed:
            return
        self._resumed = True
        events = event_queue.all_events(self.store)
        now = event_queue.now_ms()
        for scope, _, event in events:
            if event.attempt_invocation_id:
                attempt = resumption.InFlight(
                    scope=scope,
                    request_id=event.request_id,
                    worker_id=event.attempt_worker_id,
                    invocation_id=event.attempt_invocation_id,
                    deadline_unix_ms=event.attempt_deadline_unix_ms,
                )
                self.resumption.add(attempt, now)
            else:
                self._push(scope, event)
        if events:
            log.info("async.resumed", queued=len(events), awaited=len(self.resumption))

    def start(self) -> None:
        self.resume()
        self._loop = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop; events in flight stay queued and run again after a restart."""
        tasks = list(self._running.values())
        if self._loop is not None:
            tasks.append(self._loop)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def enqueue(self, scope: Scope, event: state_pb2.QueuedEvent) -> None:
        """Store an event durably and schedule it."""
        event_queue.put(self.store, scope, event)
        self._push(scope, event)

    def _push(self, scope: Scope, event: state_pb2.QueuedEvent) -> None:
        self._push_at(scope, event.request_id, event.next_attempt_unix_ms)

    def _push_at(self, scope: Scope, rid: str, at_ms: int) -> None:
        heapq.heappush(self._due, (at_ms, next(self._seq), scope, rid))
        self._wake.set()

    # -- attempts reported by workers after a restart ---------------------------

    def worker_ready(self, worker_id: str, running: list[str]) -> None:
        """A worker's session is ready: the results it kept came before
        this; `running` are the attempts of earlier sessions it still runs."""
        released = self.resumption.worker_ready(worker_id, running, event_queue.now_ms())
        self._release(released, "not reported by its worker")

    def unclaimed_result(self, worker_id: str, result: apb.InvokeResult) -> None:
        """A result no caller of this process waits for: an attempt sent
        before a restart, settled now instead of being run again."""
        attempt = self.resumption.take(worker_id, result.invocation_id)
        if attempt is None:
            return
        event = event_queue.get(self.store, attempt.scope, attempt.request_id)
        if event is None or event.attempt_invocation_id != result.invocation_id:
            return
        log.info("async.result_recovered", request_id=attempt.request_id, worker_id=worker_id)
        outcome, response = self._outcome_of(result, event.version or LATEST)
        self._settle(attempt.scope, attempt.request_id, outcome, response)

    def _release(self, released: list[resumption.InFlight], reason: str) -> None:
        now = event_queue.now_ms()
        for attempt in released:
            log.info(
                "async.attempt_unaccounted",
                request_id=attempt.request_id,
                worker_id=attempt.worker_id,
                reason=reason,
            )
            self._push_at(attempt.scope, attempt.request_id, now)

    # -- the loop -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = event_queue.now_ms()
            self._release(self.resumption.expired(now), "its worker did not report it in time")
            while self._due and self._due[0][0] <= now and len(self._running) < self.max_in_flight:
                _, _, scope, rid = heapq.heappop(self._due)
                key = (scope, rid)
                if key in self._running:
                    continue
                task = asyncio.create_task(self._attempt(scope, rid))
                self._running[key] = task
                task.add_done_callback(functools.partial(self._done, key))
            timeout: float | None = None
            if self._due and len(self._running) < self.max_in_flight:
                timeout = max(self._due[0][0] - now, 0) / 1000
            awaited_until = self.resumption.next_deadline()
            if awaited_until is not None:
                until_s = max(awaited_until - now, 0) / 1000
                timeout = until_s if timeout is None else min(timeout, until_s)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def _done(self, key: _Key, _task: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self._wake.set()

    # -- one attempt --------------------------------------------------------

    async def _attempt(self, scope: Scope, rid: str) -> None:
        event = event_queue.get(self.store, scope, rid)
        if event is None:
            return  # its function was deleted
        policy = policy_of(
            lookup(self.store, scope, event.function_name, event.qualifier), self.scale
        )
        age_s = (event_queue.now_ms() - event.enqueued_unix_ms) / 1000
        if retry.expired(age_s, policy):
            # Only after the control plane was down past the event's age:
            # retries are never scheduled beyond it.
            error = LambdaError("ServiceException", "The event expired in the queue.")
            self._finish(
                scope, event, retry.EVENT_AGE_EXCEEDED, _error_response(error, event.version)
            )
            return
        if _zero_reserved(self.store, scope, event):
            self.scheduler.record_throttle(
                scope,
                api.FunctionConfiguration(function_name=event.function_name, version=event.version),
                "" if event.unqualified else event.qualifier,
                event.request_id,
                asynchronous=True,
            )
            self._finish(scope, event, retry.ZERO_RESERVED_CONCURRENCY, None)
            return
        try:
            config = _run_config(self.store, scope, event)
            result = await self.scheduler.invoke(
                scope,
                config,
                event.payload,
                event.client_context,
                event.request_id,
                invoked_arn=function_arn(
                    scope, event.function_name, None if event.unqualified else event.qualifier
                ),
                asynchronous=True,
                on_placed=functools.partial(self._placed, scope, rid),
            )
        except LambdaError as exc:
            if exc.code == "ResourceNotFoundException":
                log.info("async.dropped", request_id=rid, reason=exc.message)
                event_queue.remove(self.store, scope, rid)
                return
            outcome, response = classify(exc), _error_response(exc, event.version)
        except Exception as exc:  # a bug must not strand the event: retry it
            log.exception("async.attempt_failed", request_id=rid)
            error = LambdaError("ServiceException", repr(exc))
            outcome, response = retry.Outcome.SYSTEM_ERROR, _error_response(error, event.version)
        else:
            outcome, response = self._outcome_of(result, config.version or LATEST)
        self._settle(scope, rid, outcome, response, policy)

    def _placed(
        self, scope: Scope, rid: str, worker_id: str, invocation_id: str, deadline_ms: int
    ) -> None:
        """The attempt is about to leave for `worker_id`: recorded first, so
        that a control plane restarted before its answer asks that worker
        for it instead of running the event again."""
        event = event_queue.get(self.store, scope, rid)
        if event is None:
            return  # its function was deleted meanwhile: nothing to record
        event.attempt_worker_id = worker_id
        event.attempt_invocation_id = invocation_id
        event.attempt_deadline_unix_ms = deadline_ms
        event_queue.put(self.store, scope, event)

    @staticmethod
    def _outcome_of(result: apb.InvokeResult, version: str) -> tuple[retry.Outcome, retry.Response]:
        if result.status == apb.INVOKE_STATUS_SERVICE_ERROR:
            # As the scheduler raises it for a caller.
            error = LambdaError(
                "ServiceException", result.error_message or "The function could not be run."
            )
            return retry.Outcome.SYSTEM_ERROR, _error_response(error, version)
        failed = result.status == apb.INVOKE_STATUS_FUNCTION_ERROR
        outcome = retry.Outcome.FUNCTION_ERROR if failed else retry.Outcome.SUCCESS
        response = retry.Response(
            200,
            version,
            result.payload,
            (result.function_error or "Unhandled") if failed else "",
        )
        return outcome, response

    def _settle(
        self,
        scope: Scope,
        rid: str,
        outcome: retry.Outcome,
        response: retry.Response,
        policy: retry.Policy | None = None,
    ) -> None:
        """An attempt's answer, taken in at once (no await until the row is
        written): retry later, or finish."""
        # The row may have gone while the function ran (function deleted).
        current = event_queue.get(self.store, scope, rid)
        if current is None:
            return
        if policy is None:
            policy = policy_of(
                lookup(self.store, scope, current.function_name, current.qualifier), self.scale
            )
        # Answered: nothing is in flight any more.
        current.ClearField("attempt_worker_id")
        current.ClearField("attempt_invocation_id")
        current.ClearField("attempt_deadline_unix_ms")
        if outcome in (retry.Outcome.SUCCESS, retry.Outcome.FUNCTION_ERROR):
            current.invoke_count += 1
            current.backoffs = 0
        if outcome is retry.Outcome.FUNCTION_ERROR:
            current.function_errors += 1
        if outcome in (retry.Outcome.THROTTLED, retry.Outcome.SYSTEM_ERROR):
            current.backoffs += 1
        now = event_queue.now_ms()
        decision = retry.decide(
            outcome,
            function_errors=current.function_errors,
            backoffs=current.backoffs,
            age_s=(now - current.enqueued_unix_ms) / 1000,
            policy=policy,
        )
        log.info("async.attempted", request_id=rid, outcome=outcome.value, decision=repr(decision))
        if isinstance(decision, retry.Retry):
            current.next_attempt_unix_ms = now + int(decision.delay_s * 1000)
            self.enqueue(scope, current)
        else:
            self._finish(scope, current, decision.condition, response)

    def _finish(
        self,
        scope: Scope,
        event: state_pb2.QueuedEvent,
        condition: str,
        response: retry.Response | None,
    ) -> None:
        config = lookup(self.store, scope, event.function_name, event.qualifier)
        holder = None
        if config is not None:
            destinations = config.destination_config
            holder = (
                destinations.on_success if condition == retry.SUCCESS else destinations.on_failure
            )
        target = holder.destination if holder is not None else ""
        record = retry.destination_record(
            request_id=event.request_id,
            function_arn=function_arn(scope, event.function_name, event.qualifier),
            condition=condition,
            invoke_count=event.invoke_count,
            request_payload=event.payload,
            response=response,
            now=dt.datetime.now(dt.UTC),
        )
        # The event's row is the record that its destination is still to
        # be sent: both change in one transaction, and only the finish that
        # removes the row sends it, so it goes once per event.
        with self.store.transaction():
            removed = event_queue.remove(self.store, scope, event.request_id)
            queued = self._queue_destination(target, record) if target and removed else None
        if queued is not None:
            self._push(*queued)
        log.info(
            "async.finished",
            request_id=event.request_id,
            condition=condition,
            destination=target or None,
        )

    def _queue_destination(
        self, arn: str, record: dict[str, object]
    ) -> tuple[Scope, state_pb2.QueuedEvent] | None:
        """Store the record as an Event invocation of a destination function;
        other services' destinations are logged and dropped."""
        try:
            target = lambda_destination(arn)
        except ValueError:
            target = None
        if target is None:
            log.warning("async.destination_unsupported", destination=arn, record=record)
            return None
        region, account, name = target
        parts = arn.split(":")
        qualifier = parts[7] if len(parts) > 7 else ""
        scope = Scope(account, region)
        try:
            found = resolve(self.store, scope, name, qualifier or None)
        except LambdaError:
            log.warning("async.destination_missing", destination=arn)
            return None
        version = pick_version(found.alias) if found.alias is not None else found.version
        config = api.FunctionConfiguration(function_name=name, version=version)
        # Its request id follows from the event's: a record can be queued
        # only once (insert, never replace).
        context = record.get("requestContext")
        source = context.get("requestId", "") if isinstance(context, dict) else ""
        request_id = str(uuid.uuid5(_DESTINATION_IDS, f"{source}:{arn}")) if source else ""
        event = event_queue.new_event(
            config, qualifier, json.dumps(record).encode(), "", request_id
        )
        if not event_queue.insert(self.store, scope, event):
            return None
        return scope, event
