"""ClusterService and CodeService: the cluster's status, functions' logs,
and stored code packages streamed to workers and the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc
from lambdafleet.state.v1 import state_pb2

from .event_queue import ASYNC_EVENT
from .function_logs import FunctionLogs, LogKey, StoredLine
from .store import CodeStore, ResourceStore, Scope
from .workers import WorkerRegistry, WorkerSession

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


class ClusterService(functions_pb2_grpc.ClusterServiceServicer):  # type: ignore[misc]
    def __init__(
        self, registry: WorkerRegistry, store: ResourceStore, logs: FunctionLogs | None = None
    ) -> None:
        self.registry = registry
        self.store = store
        self.logs = logs if logs is not None else FunctionLogs()

    async def GetClusterStatus(
        self, request: pb.GetClusterStatusRequest, context: Context
    ) -> pb.GetClusterStatusResponse:
        live = sorted(self.registry.live(), key=lambda s: s.worker_id)
        return pb.GetClusterStatusResponse(
            live_workers=len(live),
            ready=bool(live),
            workers=[worker_status(s) for s in live],
            queued_events=self.store.count_everywhere(ASYNC_EVENT),
        )

    async def TailFunctionLogs(
        self, request: pb.TailFunctionLogsRequest, context: Context
    ) -> AsyncIterator[pb.TailFunctionLogsResponse]:
        key = LogKey(request.account_id, request.region, request.function_name)
        exists = self.store.get(
            Scope(key.account_id, key.region),
            "function",
            key.function_name,
            state_pb2.FunctionRecord,
        )
        if exists is None and not self.logs.has(key):
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"No function {key.function_name} in {key.region} of {key.account_id}, "
                "and no logs of one",
            )
        arrived = asyncio.Event()
        # Subscribed before the first read, so no line falls between the two.
        unsubscribe = self.logs.subscribe(key, arrived.set) if request.follow else None
        try:
            after = 0
            while True:
                arrived.clear()
                lines = self.logs.read(key, request.since_ms, after)
                # In messages of a bounded size: the client sees lines early
                # and no message nears gRPC's limit.
                for start in range(0, len(lines), CHUNK):
                    yield pb.TailFunctionLogsResponse(
                        events=[log_event(line) for line in lines[start : start + CHUNK]]
                    )
                if lines:
                    after = lines[-1].seq
                if not request.follow:
                    return
                await arrived.wait()
        finally:
            if unsubscribe is not None:
                unsubscribe()


# Log events per TailFunctionLogsResponse.
CHUNK = 500


def log_event(line: StoredLine) -> pb.LogEvent:
    return pb.LogEvent(
        timestamp_ms=line.timestamp_ms,
        request_id=line.request_id,
        log_stream=line.log_stream,
        message=line.message,
        version=line.version,
    )


def worker_status(session: WorkerSession) -> pb.WorkerStatus:
    return pb.WorkerStatus(
        worker_id=session.worker_id,
        capacity=session.capacity,
        memory_mb=session.memory_mb,
        in_flight=session.in_flight,
        draining=session.draining,
        heartbeat_age_ms=int((time.monotonic() - session.last_seen) * 1000),
        environments=session.environments,
        prestarted=session.prestarted,
        version=session.version,
    )


class CodeService(functions_pb2_grpc.CodeServiceServicer):  # type: ignore[misc]
    def __init__(self, code: CodeStore) -> None:
        self.code = code

    async def DownloadCode(
        self, request: pb.DownloadCodeRequest, context: Context
    ) -> AsyncIterator[pb.DownloadCodeResponse]:
        if not self.code.exists(request.code_sha256):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no code {request.code_sha256}")
        size = self.code.size(request.code_sha256)
        first = True
        for chunk in self.code.iter_chunks(request.code_sha256):
            yield pb.DownloadCodeResponse(chunk=chunk, total_size=size if first else 0)
            first = False
