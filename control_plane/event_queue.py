"""The durable queue of asynchronous invocations.

An Event invocation is one row of kind ASYNC_EVENT (id: its request id) in
the control plane's SQLite store, owned by the function so that deleting the
function drops its queued events. The row is written before the caller gets
its 202 and removed only when the event is finished; the dispatcher
(dispatcher.py) works from these rows, so a restart loses nothing and an
event whose attempt was cut short by a crash runs again (at least once).
"""

from __future__ import annotations

import time
import uuid

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.state.v1 import state_pb2

from .store import ResourceStore, Scope

ASYNC_EVENT = "async_event"
LATEST = "$LATEST"


def now_ms() -> int:
    return int(time.time() * 1000)


def new_event(
    config: api.FunctionConfiguration,
    qualifier: str,
    payload: bytes,
    client_context: str,
    request_id: str,
    at_ms: int | None = None,
) -> state_pb2.QueuedEvent:
    """An event of `config` (the version it runs, already picked) invoked
    through `qualifier` ("" for an unqualified invocation: $LATEST)."""
    at = now_ms() if at_ms is None else at_ms
    return state_pb2.QueuedEvent(
        request_id=request_id or str(uuid.uuid4()),
        function_name=config.function_name,
        qualifier=qualifier or LATEST,
        unqualified=not qualifier,
        version=config.version or LATEST,
        payload=payload or b"{}",
        client_context=client_context,
        enqueued_unix_ms=at,
        next_attempt_unix_ms=at,
    )


def put(store: ResourceStore, scope: Scope, event: state_pb2.QueuedEvent) -> None:
    """Store (or reschedule) an event. Outside a transaction SQLite commits
    before this returns, so the caller may answer 202: the event survives a
    crash of the process (WAL with synchronous=NORMAL, not a power loss)."""
    store.put(scope, ASYNC_EVENT, event.request_id, event, function=event.function_name)


def insert(store: ResourceStore, scope: Scope, event: state_pb2.QueuedEvent) -> bool:
    """Store a new event; False (nothing written) when its id is queued."""
    return store.insert(scope, ASYNC_EVENT, event.request_id, event, function=event.function_name)


def get(store: ResourceStore, scope: Scope, request_id: str) -> state_pb2.QueuedEvent | None:
    return store.get(scope, ASYNC_EVENT, request_id, state_pb2.QueuedEvent)


def remove(store: ResourceStore, scope: Scope, request_id: str) -> bool:
    return store.delete(scope, ASYNC_EVENT, request_id)


def all_events(store: ResourceStore) -> list[tuple[Scope, str, state_pb2.QueuedEvent]]:
    return store.everywhere(ASYNC_EVENT, state_pb2.QueuedEvent)
