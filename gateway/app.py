"""The gateway's HTTP side: AWS's Lambda REST API on Tornado, plus the
`/_fleet/` endpoints of lambdafleet itself."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import grpc
import structlog
import tornado.iostream
import tornado.web

from lambdafleet.errors import LambdaError, from_rpc_error
from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

from . import dashboard, fleet_query, operations, protocol, validation
from .fleet_json import as_dict
from .fleet_logs import FleetLogsHandler
from .http_input import UriLimit, query_values, request_path
from .invocations import Invocations

log = structlog.get_logger(__name__)

DEFAULT_REGION = "us-east-1"
# Largest body the gateway reads at all; per-operation limits are below it.
MAX_BODY_BYTES = 80 * 1024 * 1024
# AWS's request size limits, with its messages' figures. An oversized Invoke
# answers RequestEntityTooLargeException too, not the model's
# RequestTooLargeException (AWS's answers as quoted publicly: "Request must be
# smaller than 6291456 bytes for the InvokeFunction operation").
REQUEST_LIMITS = {
    "CreateFunction": (70_167_211, "RequestEntityTooLargeException"),
    "UpdateFunctionCode": (70_167_211, "RequestEntityTooLargeException"),
    "Invoke": (6_291_456, "RequestEntityTooLargeException"),
    "InvokeWithResponseStream": (6_291_456, "RequestEntityTooLargeException"),
}
# An Event invocation's payload limit (1 MB since 2025, 256 KB before).
EVENT_PAYLOAD_LIMIT = 1_048_576
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/")


def check_request_size(operation: str, headers: Any, size: int) -> None:
    """AWS's error for a request body over its operation's limit."""
    limit = REQUEST_LIMITS.get(operation)
    if limit is None:
        return
    if (
        operation == "Invoke"
        and headers.get("X-Amz-Invocation-Type") == "Event"
        and size > EVENT_PAYLOAD_LIMIT
    ):
        raise protocol.AwsError(
            "RequestEntityTooLargeException",
            f"{size} byte payload is too large for the Event invocation type "
            f"(limit {EVENT_PAYLOAD_LIMIT} bytes)",
        )
    if size > limit[0]:
        name = "InvokeFunction" if operation.startswith("Invoke") else operation
        raise protocol.AwsError(
            limit[1], f"Request must be smaller than {limit[0]} bytes for the {name} operation"
        )


class Settings:
    def __init__(self, channel: grpc.aio.Channel, account_id: str) -> None:
        self.channel = channel
        self.cluster = functions_pb2_grpc.ClusterServiceStub(channel)
        self.code = functions_pb2_grpc.CodeServiceStub(channel)
        # Synchronous invocations: one stream, not a call each.
        self.invocations = Invocations(channel)
        self.account_id = account_id


def identity(authorization: str, default_account: str) -> tuple[str, str]:
    """Region and account of a SigV4-signed request. Any credentials are
    accepted; an access key of twelve digits selects that account."""
    match = _CREDENTIAL.search(authorization)
    if not match:
        return DEFAULT_REGION, default_account
    access_key, region = match.groups()
    account = access_key if re.fullmatch(r"\d{12}", access_key) else default_account
    return region, account


class _Base(UriLimit):
    def initialize(self, settings: Settings) -> None:
        self.fleet = settings

    def compute_etag(self) -> None:
        # AWS's API sends no ETag, and Tornado's default (a SHA-1 of every
        # GET answer) would also answer a matching If-None-Match with a 304.
        return None

    def send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        # A 204 carries no body; Tornado refuses even an empty write for one.
        if body and status not in (204, 304):
            self.write(body)
        self.finish()


_HOT = frozenset({"Invoke", "InvokeWithResponseStream", "InvokeAsync"})


class LambdaApiHandler(_Base):
    """Every Lambda API call: route by the service model, validate, call the
    control plane, answer in AWS's shape."""

    def set_default_headers(self) -> None:
        # Every answer of the Lambda API is JSON unless it says otherwise
        # (InvokeWithResponseStream's event stream), Invoke's payload and
        # the empty bodies of 202 and 204 included, as AWS labels them;
        # Tornado's default would be text/html.
        self.set_header("Content-Type", protocol.JSON_CONTENT_TYPE)

    async def _handle(self) -> None:
        request_id = str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        self.set_header("x-amzn-RequestId", request_id)
        operation = "unknown"
        try:
            query = query_values(self.request.query_arguments)
            path = request_path(self.request.path)
            matched = protocol.match(self.request.method or "GET", path, query)
            if matched is None:
                raise protocol.AwsError("UnknownOperationException", "Unknown operation")
            op, labels = matched
            operation = op.name
            check_request_size(operation, self.request.headers, len(self.request.body))
            params = protocol.parse_request(
                op,
                labels,
                query,
                self.request.headers,
                self.request.body,
            )
            validation.validate(op, params)
            region, account = identity(
                self.request.headers.get("Authorization", ""), self.fleet.account_id
            )
            caller = operations.Caller(
                account_id=account,
                region=region,
                request_id=request_id,
                base_url=f"{self.request.protocol}://{self.request.host}",
            )
            if op.has_event_stream_output:
                status = await self._stream(op, params, caller)
                self._log_call(operation, status, started)
                return
            output = await operations.call(
                self.fleet.channel, operation, params, caller, self.fleet.invocations
            )
            status, headers, body = protocol.serialize_response(op, output)
            if caller.timing:
                # Where the time went, part by part (each part's whole time,
                # the parts it called included): browsers and `bench/run.py`
                # read it; SDKs ignore it.
                gateway_ms = (time.perf_counter() - started) * 1000
                headers["Server-Timing"] = ", ".join(
                    [f"gateway;dur={gateway_ms:.3f}", *caller.timing]
                )
        except protocol.AwsError as exc:
            status, headers, body = protocol.serialize_error(exc.code, exc.message, exc.extra)
        except LambdaError as exc:  # answered over the invocation stream
            status, headers, body = protocol.serialize_error(
                exc.code, exc.message, exc.body_members()
            )
        except grpc.aio.AioRpcError as exc:
            error = from_rpc_error(exc)
            if error is None:
                log.error(
                    "gateway.control_plane_error", code=str(exc.code()), details=exc.details()
                )
                status, headers, body = protocol.serialize_error(
                    "ServiceException", "The control plane is unavailable. Try again."
                )
            else:
                status, headers, body = protocol.serialize_error(
                    error.code, error.message, error.body_members()
                )
        except Exception:
            log.exception("gateway.unhandled", operation=operation)
            status, headers, body = protocol.serialize_error(
                "ServiceException", "An internal error occurred."
            )
        self._log_call(operation, status, started)
        self.send(status, headers, body)

    def _log_call(self, operation: str, status: int, started: float) -> None:
        # Invocations at debug: a line for each would cost more than the
        # gateway's own share of a warm one; the dashboard and metrics count them.
        (log.debug if operation in _HOT else log.info)(
            "api.call",
            operation=operation,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _stream(
        self, op: protocol.OperationModel, params: dict[str, Any], caller: operations.Caller
    ) -> int:
        """An event-stream answer (InvokeWithResponseStream), written event by
        event as the control plane sends them: a streamed response's chunks
        reach the caller as the function writes them. An error before the
        first reply is raised (and answered as usual); after it, the status
        is sent and the stream just ends."""
        parts = operations.stream(self.fleet.channel, op.name, params, caller)
        first = await anext(aiter(parts))
        status, headers, body = protocol.serialize_response(op, first)
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        if status in (204, 304):
            self.finish()
            return status
        self.write(body)
        await self.flush()
        try:
            async for part in parts:
                self.write(protocol.serialize_response(op, part)[2])
                await self.flush()
        except (grpc.aio.AioRpcError, tornado.iostream.StreamClosedError) as exc:
            log.warning("gateway.stream_broken", operation=op.name, error=repr(exc))
        self.finish()
        return status

    async def get(self, *_: str) -> None:
        await self._handle()

    async def post(self, *_: str) -> None:
        await self._handle()

    async def put(self, *_: str) -> None:
        await self._handle()

    async def delete(self, *_: str) -> None:
        await self._handle()

    async def patch(self, *_: str) -> None:
        await self._handle()


class _FleetBase(_Base):
    def no_query(self) -> bool:
        """True when the request has no query parameters; else answered 400."""
        try:
            fleet_query.only(self.request.query_arguments, ())
        except fleet_query.QueryError as exc:
            self.send(400, {"Content-Type": "application/json"}, json.dumps(exc.body()).encode())
            return False
        return True


class HealthHandler(_FleetBase):
    async def get(self) -> None:
        if not self.no_query():
            return
        try:
            status = await self.fleet.cluster.GetClusterStatus(
                pb.GetClusterStatusRequest(), timeout=2
            )
        except grpc.aio.AioRpcError:
            self.send(
                503,
                {"Content-Type": "application/json"},
                json.dumps({"status": "control plane unavailable", "workers": 0}).encode(),
            )
            return
        ok = status.ready
        body: dict[str, Any] = {
            "status": "ok" if ok else "no live worker",
            "workers": status.live_workers,
        }
        self.send(
            200 if ok else 503, {"Content-Type": "application/json"}, json.dumps(body).encode()
        )


class StatusHandler(_FleetBase):
    """The cluster as the control plane sees it: workers, their environments
    and the queue depth, as JSON (`lambdafleet status` and the dashboard)."""

    async def get(self) -> None:
        if not self.no_query():
            return
        try:
            status = await self.fleet.cluster.GetClusterStatus(
                pb.GetClusterStatusRequest(), timeout=2
            )
        except grpc.aio.AioRpcError as exc:
            body = {"message": f"control plane unavailable: {exc.code().name}"}
            self.send(503, {"Content-Type": "application/json"}, json.dumps(body).encode())
            return
        body = as_dict(status)
        self.send(200, {"Content-Type": "application/json"}, json.dumps(body).encode())


class CodeHandler(_Base):
    """GetFunction's Code.Location: the package, streamed from the control plane."""

    async def get(self, hex_digest: str) -> None:
        sha = base64.b64encode(bytes.fromhex(hex_digest)).decode()
        self.set_header("Content-Type", "application/zip")
        try:
            async for part in self.fleet.code.DownloadCode(pb.DownloadCodeRequest(code_sha256=sha)):
                self.write(part.chunk)
                await self.flush()
        except grpc.aio.AioRpcError:
            if not self._headers_written:
                self.send(404, {}, b"")
                return
        self.finish()


def make_app(settings: Settings) -> tornado.web.Application:
    args = {"settings": settings}
    return tornado.web.Application(
        [
            (r"/_fleet/health", HealthHandler, args),
            (r"/_fleet/status", StatusHandler, args),
            (r"/_fleet/code/([0-9a-f]{64})", CodeHandler, args),
            *dashboard.routes(args),
            (r"/_fleet/logs/([^/]+)", FleetLogsHandler, args),
            (r"/(.*)", LambdaApiHandler, args),
        ],
        log_function=lambda handler: None,
    )
