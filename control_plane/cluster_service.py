"""ClusterService and CodeService: the cluster's status, and stored code
packages streamed to workers and the gateway."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

from .event_queue import ASYNC_EVENT
from .store import CodeStore, ResourceStore
from .workers import WorkerRegistry, WorkerSession

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


class ClusterService(functions_pb2_grpc.ClusterServiceServicer):  # type: ignore[misc]
    def __init__(self, registry: WorkerRegistry, store: ResourceStore) -> None:
        self.registry = registry
        self.store = store

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
