"""FunctionService and CodeService: the control plane's API for the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.errors import LambdaError, abort, conflict, not_found
from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

from . import lifecycle, validation
from .scheduler import Scheduler, function_arn
from .store import CodeStore, FunctionKey, FunctionStore, StoredFunction

log = structlog.get_logger(__name__)

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any

DEFAULT_PAGE = 50


def _key(ctx: pb.RequestContext, name: str) -> FunctionKey:
    return FunctionKey(ctx.account_id, ctx.region, name)


def _bind(ctx: pb.RequestContext) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=ctx.request_id)


class FunctionService(functions_pb2_grpc.FunctionServiceServicer):  # type: ignore[misc]
    def __init__(self, store: FunctionStore, code: CodeStore, scheduler: Scheduler) -> None:
        self.store = store
        self.code = code
        self.scheduler = scheduler
        # Background event invocations, referenced so they are not collected.
        self._events: set[asyncio.Task[None]] = set()

    def _get(self, ctx: pb.RequestContext, name: str, qualifier: str = "") -> StoredFunction:
        key = _key(ctx, name)
        fn = self.store.get(key)
        # Versions and aliases arrive with the management API issue; until
        # then only $LATEST exists, and any other qualifier is not found.
        if fn is None or qualifier not in ("", "$LATEST"):
            raise not_found(f"Function not found: {function_arn(key, qualifier)}")
        return fn

    async def CreateFunction(
        self, request: pb.CreateFunctionRequest, context: Context
    ) -> pb.CreateFunctionResponse:
        _bind(request.context)
        try:
            config = pb.FunctionConfiguration()
            config.CopyFrom(request.configuration)
            validation.check_create(config, request.zip_file)
            key = _key(request.context, config.function_name)
            if self.store.get(key) is not None:
                raise conflict(f"Function already exist: {config.function_name}")
            # Code first: a function row never points at a missing package.
            sha = await asyncio.to_thread(self.code.put, request.zip_file)
            config.code_sha256 = sha
            config.code_size = len(request.zip_file)
            config.function_arn = function_arn(key)
            config.version = "$LATEST"
            config.package_type = pb.PACKAGE_TYPE_ZIP
            if not config.architectures:
                config.architectures.append(pb.ARCHITECTURE_X86_64)
            if not config.log_group:
                config.log_group = f"/aws/lambda/{config.function_name}"
            config = lifecycle.created(config)
            if not self.store.insert(StoredFunction(key, config, dict(request.tags))):
                raise conflict(f"Function already exist: {config.function_name}")
        except LambdaError as exc:
            await abort(context, exc)
        log.info("function.created", function=key.name, runtime=config.runtime)
        self.scheduler.activate(key)
        return pb.CreateFunctionResponse(configuration=config)

    async def GetFunction(
        self, request: pb.GetFunctionRequest, context: Context
    ) -> pb.GetFunctionResponse:
        _bind(request.context)
        try:
            fn = self._get(request.context, request.function_name, request.qualifier)
        except LambdaError as exc:
            await abort(context, exc)
        return pb.GetFunctionResponse(configuration=fn.configuration, tags=fn.tags)

    async def ListFunctions(
        self, request: pb.ListFunctionsRequest, context: Context
    ) -> pb.ListFunctionsResponse:
        _bind(request.context)
        limit = request.max_items or DEFAULT_PAGE
        ctx = request.context
        # One extra row tells whether another page follows.
        rows = self.store.page(ctx.account_id, ctx.region, after=request.marker, limit=limit + 1)
        page = rows[:limit]
        response = pb.ListFunctionsResponse(functions=[fn.configuration for fn in page])
        if len(rows) > limit:
            response.next_marker = page[-1].key.name
        return response

    async def DeleteFunction(
        self, request: pb.DeleteFunctionRequest, context: Context
    ) -> pb.DeleteFunctionResponse:
        _bind(request.context)
        key = _key(request.context, request.function_name)
        try:
            if request.qualifier not in ("", "$LATEST"):
                # No published versions exist yet; AWS names the unqualified ARN.
                if self.store.get(key) is None:
                    raise not_found(f"Function not found: {function_arn(key)}")
                raise not_found(f"Function not found: {function_arn(key, request.qualifier)}")
            if not self.store.delete(key):
                raise not_found(f"Function not found: {function_arn(key)}")
        except LambdaError as exc:
            await abort(context, exc)
        log.info("function.deleted", function=key.name)
        return pb.DeleteFunctionResponse()

    async def Invoke(self, request: pb.InvokeRequest, context: Context) -> pb.InvokeResponse:
        _bind(request.context)
        try:
            key = _key(request.context, request.function_name)
            fn = self.store.get(key)
            if fn is None or request.qualifier not in ("", "$LATEST"):
                raise not_found(
                    f"Function not found: {function_arn(key, request.qualifier or '$LATEST')}"
                )
            lifecycle.check_invocable(fn.configuration)
            if request.invocation_type == pb.INVOCATION_TYPE_DRY_RUN:
                return pb.InvokeResponse(status_code=204, executed_version="$LATEST")
            if request.invocation_type == pb.INVOCATION_TYPE_EVENT:
                # Not yet durable: the scheduling issue queues events in the
                # store with AWS's retry policy. Until then the event runs in
                # the background, once.
                task = asyncio.create_task(self._run_event(fn, request))
                self._events.add(task)
                task.add_done_callback(self._events.discard)
                return pb.InvokeResponse(status_code=202)
            result = await self.scheduler.invoke(fn, request)
        except LambdaError as exc:
            await abort(context, exc)
        return pb.InvokeResponse(
            status_code=200,
            payload=result.payload,
            function_error=result.function_error
            if result.status == apb.INVOKE_STATUS_FUNCTION_ERROR
            else "",
            executed_version="$LATEST",
        )

    async def _run_event(self, fn: StoredFunction, request: pb.InvokeRequest) -> None:
        try:
            await self.scheduler.invoke(fn, request)
        except LambdaError as exc:
            log.warning("invoke.event_failed", error=exc.message)

    async def GetClusterStatus(
        self, request: pb.GetClusterStatusRequest, context: Context
    ) -> pb.GetClusterStatusResponse:
        live = len(self.scheduler.registry.live())
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
