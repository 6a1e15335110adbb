"""How AWS operations become gRPC methods of LambdaService.

Each operation is an `async def handler(api, caller, request) -> response`
registered with `@operation("Name")`. One generic gRPC handler serves them
all: it builds the caller from the request's metadata, runs the handler, and
turns a LambdaError into AWS's error in trailing metadata. A method with no
handler answers ServiceException, and the coverage test fails on it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import structlog
from google.protobuf import message_factory
from google.protobuf.message import Message

from lambdafleet import server_timing
from lambdafleet.api.v1 import lambda_pb2
from lambdafleet.errors import LambdaError, abort, service_error

from ..store import CodeStore, ResourceStore, Scope

if TYPE_CHECKING:
    from ..dispatcher import EventDispatcher
    from ..scheduler import Scheduler

log = structlog.get_logger(__name__)

SERVICE = "lambdafleet.api.v1.LambdaService"
DEFAULT_ACCOUNT = "000000000000"

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


@dataclass(frozen=True)
class Caller:
    """Who calls, from the metadata the gateway attaches to every call."""

    account_id: str
    region: str
    request_id: str = ""
    # The gateway's URL as the client reached it (for GetFunction's Code.Location).
    base_url: str = ""
    # What a handler measured of the parts below it, in ms by part ("worker",
    # "runtime", "init"): sent back, with the control plane's own time, as
    # trailing metadata the gateway turns into a Server-Timing header.
    timing: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def scope(self) -> Scope:
        return Scope(self.account_id, self.region)

    @classmethod
    def from_metadata(cls, metadata: Any) -> Caller:
        values = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
        return cls(
            account_id=values.get("lf-account", DEFAULT_ACCOUNT),
            region=values.get("lf-region", "us-east-1"),
            request_id=values.get("lf-request-id", ""),
            base_url=values.get("lf-base-url", ""),
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("lf-account", self.account_id),
            ("lf-region", self.region),
            ("lf-request-id", self.request_id),
            ("lf-base-url", self.base_url),
        )


@dataclass
class Settings:
    """Operator settings the API's behaviour depends on."""

    # LAMBDA_LIMITS_CONCURRENT_EXECUTIONS: the account's concurrency limit.
    concurrent_executions: int = 1000
    # Concurrency AWS keeps unreserved in every account.
    minimum_unreserved: int = 100
    # S3 endpoint for Code.S3Bucket/S3Key (e.g. a MinIO or moto server).
    s3_endpoint: str = ""
    # BUCKET_MARKER_LOCAL: a Code.S3Bucket of this name is no bucket; its
    # S3Key is a folder on the worker's host, mounted for hot reloading.
    bucket_marker_local: str = "hot-reload"
    # Total code storage per region (AWS's default quota, 75 GB).
    code_storage_bytes: int = 75 * 1024**3
    # LAMBDAFLEET_ASYNC_DELAY_SCALE: multiplies every delay of asynchronous
    # invocations (retries, backoff, maximum event age) so tests run fast.
    async_delay_scale: float = 1.0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Api:
    """What handlers work with."""

    store: ResourceStore
    code: CodeStore
    scheduler: Scheduler
    settings: Settings
    # Schedules queued Event invocations; None where no dispatcher runs
    # (handler tests): events are then stored but not delivered.
    events: EventDispatcher | None = None


Handler = Callable[[Api, Caller, Any], Awaitable[Message]]
StreamHandler = Callable[[Api, Caller, Any], AsyncIterator[Message]]
HANDLERS: dict[str, Handler | StreamHandler] = {}


def operation(name: str) -> Callable[[Any], Any]:
    if name not in lambda_pb2.DESCRIPTOR.services_by_name["LambdaService"].methods_by_name:
        raise KeyError(f"{name} is not an operation of the Lambda API")

    def register(fn: Any) -> Any:
        if name in HANDLERS:
            raise ValueError(f"{name} registered twice")
        HANDLERS[name] = fn
        return fn

    return register


def _bind(caller: Caller, name: str) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=caller.request_id, operation=name)


async def run_operation(api: Api, name: str, caller: Caller, request: Message) -> Message:
    """Run one operation's handler for `caller`. A handler that measured the
    parts below it (caller.timing) gets the control plane's whole time added
    as "control-plane". Raises LambdaError."""
    started = time.perf_counter()
    _bind(caller, name)
    handler = HANDLERS.get(name)
    if handler is None:
        raise service_error(f"lambdafleet does not implement the {name} operation yet.")
    response: Message = await handler(api, caller, request)  # type: ignore[misc]
    if caller.timing:
        caller.timing["control-plane"] = (time.perf_counter() - started) * 1000
    return response


def _unexpected(name: str, exc: Exception) -> LambdaError:
    """A handler's bug answered as AWS answers its own: ServiceException, the
    traceback in our log (with the operation and request id), not the answer."""
    log.error("api.unhandled", operation=name, error=repr(exc), exc_info=exc)
    return service_error("An internal error occurred. The error was logged by lambdafleet.")


def _unary(api: Api, name: str) -> Callable[[Message, Context], Awaitable[Message]]:
    async def handle(request: Message, context: Context) -> Message:
        caller = Caller.from_metadata(context.invocation_metadata())
        try:
            response = await run_operation(api, name, caller, request)
        except LambdaError as exc:
            await abort(context, exc)
        except Exception as exc:
            await abort(context, _unexpected(name, exc))
        if caller.timing:
            context.set_trailing_metadata(
                ((server_timing.METADATA_KEY, server_timing.format_entries(caller.timing)),)
            )
        return response

    return handle


def _stream(api: Api, name: str) -> Callable[[Message, Context], AsyncIterator[Message]]:
    async def handle(request: Message, context: Context) -> AsyncIterator[Message]:
        caller = Caller.from_metadata(context.invocation_metadata())
        _bind(caller, name)
        handler = HANDLERS.get(name)
        try:
            if handler is None:
                raise service_error(f"lambdafleet does not implement the {name} operation yet.")
            async for item in handler(api, caller, request):  # type: ignore[union-attr]
                yield item
        except LambdaError as exc:
            await abort(context, exc)
        except Exception as exc:
            await abort(context, _unexpected(name, exc))

    return handle


def service_handler(api: Api) -> grpc.GenericRpcHandler:
    """The gRPC handler serving every method of LambdaService."""
    methods: dict[str, grpc.RpcMethodHandler] = {}
    for method in lambda_pb2.DESCRIPTOR.services_by_name["LambdaService"].methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        if method.server_streaming:
            methods[method.name] = grpc.unary_stream_rpc_method_handler(
                _stream(api, method.name),
                request_deserializer=request_type.FromString,
                response_serializer=response_type.SerializeToString,
            )
        else:
            methods[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(api, method.name),
                request_deserializer=request_type.FromString,
                response_serializer=response_type.SerializeToString,
            )
    return grpc.method_handlers_generic_handler(SERVICE, methods)
