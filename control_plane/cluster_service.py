"""ClusterService and CodeService: the cluster's status, and stored code
packages streamed to workers and the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

from .store import CodeStore
from .workers import WorkerRegistry

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


class ClusterService(functions_pb2_grpc.ClusterServiceServicer):  # type: ignore[misc]
    def __init__(self, registry: WorkerRegistry) -> None:
        self.registry = registry

    async def GetClusterStatus(
        self, request: pb.GetClusterStatusRequest, context: Context
    ) -> pb.GetClusterStatusResponse:
        live = len(self.registry.live())
        return pb.GetClusterStatusResponse(live_workers=live, ready=live > 0)


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
