"""The Lambda Runtime API (2018-06-01) that a worker serves to its containers.

One Tornado server per worker. Each container reaches it under its own host
name, `lf-<its secret>` (worker/runtime_auth.py), so the Host header
authenticates a request to exactly one environment; that works through NAT,
Docker-in-Docker and remote daemons, where source addresses do not identify
a container. A request presenting no known secret is refused (403) before it
touches any environment.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shlex
from collections.abc import Callable

import structlog
import tornado.httpserver
import tornado.netutil
import tornado.web

from . import extensions_api
from .environment import Environment, trace_id
from .launcher import ANNOUNCE_PATH
from .prestart import BIND_PATH, Prestart

log = structlog.get_logger(__name__)

PREFIX = "/2018-06-01/runtime"
# AWS's limit on a buffered response: 6 MB and 100 bytes, as its message
# says (recorded: test_lambda_too_large_response).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# A streamed response's limit (AWS: 20 MB).
MAX_STREAMED_BYTES = 20 * 1024 * 1024
# The server's body limit: up to it the response handler reads what is over
# AWS's limits and refuses it itself (the runtime then gets an answer, not a
# reset connection); beyond it a request is cut off.
READ_AT_MOST_BYTES = 64 * 1024 * 1024
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"

Lookup = Callable[[str], Environment | None]


class _Untagged(tornado.web.RequestHandler):
    def compute_etag(self) -> None:
        # Tornado hashes every GET answer for an ETag by default: an event
        # (up to 6 MB) handed to /next, or a function's code handed to a
        # pre-started container, is never cached.
        return None


class _Base(_Untagged):
    def initialize(self, lookup: Lookup) -> None:
        self.lookup = lookup

    def env(self) -> Environment:
        env = self.lookup(self.request.headers.get("Host", ""))
        if env is None:
            raise tornado.web.HTTPError(403, reason="unknown environment")
        return env

    def write_json(self, status: int, body: dict[str, str]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class NextHandler(_Base):
    async def get(self) -> None:
        env = self.env()
        waiter = env.next()
        try:
            invocation = await waiter
        except asyncio.CancelledError:
            # The environment stopped while its runtime waited.
            self.write_json(410, {"errorMessage": "environment stopped", "errorType": "Gone"})
            return
        self.set_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.set_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_unix_ms))
        self.set_header("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_function_arn)
        self.set_header("Lambda-Runtime-Trace-Id", trace_id(invocation.request_id))
        if invocation.client_context:
            self.set_header(
                "Lambda-Runtime-Client-Context", runtime_client_context(invocation.client_context)
            )
        self.set_header("Content-Type", "application/json")
        self.finish(invocation.payload)

    def on_connection_close(self) -> None:
        # A runtime that hangs up while polling is gone; nothing to clean up
        # here, the container exit is reported by the pool.
        pass


def runtime_client_context(encoded: str) -> str:
    """X-Amz-Client-Context (base64 of JSON) as the Runtime API hands it to
    the runtime: the JSON itself (awslambdaric and the Node client parse it
    as JSON). One that does not decode is passed as it came."""
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return encoded


def response_too_large(limit: int) -> bytes:
    """The error document AWS answers for a response over `limit` (recorded:
    test_lambda_too_large_response)."""
    return json.dumps(
        {
            "errorMessage": "Response payload size exceeded maximum allowed payload "
            f"size ({limit} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    ).encode()


@tornado.web.stream_request_body
class ResponseHandler(_Base):
    """A runtime's answer, read as it arrives: a buffered one whole, a
    streamed one (`Lambda-Runtime-Function-Response-Mode: streaming`,
    chunked) forwarded chunk by chunk when its caller streams too."""

    def prepare(self) -> None:
        self.environment = self.env()
        request_id = self.path_args[0]
        invocation = self.environment.running(request_id)
        streaming = self.request.headers.get(RESPONSE_MODE_HEADER, "").lower() == "streaming"
        self.limit = MAX_STREAMED_BYTES if streaming else MAX_RESPONSE_BYTES
        self.forward = invocation.on_chunk if streaming and invocation is not None else None
        self.parts: list[bytes] = []
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.parts.clear()
        elif self.forward is not None:
            self.forward(chunk)
        else:
            self.parts.append(chunk)

    def post(self, request_id: str) -> None:
        env = self.environment
        if self.size > self.limit:
            env.fail(
                request_id,
                response_too_large(self.limit),
                "Function.ResponseSizeTooLarge",
                reset=True,
            )
            self.write_json(
                413, {"errorMessage": "payload too large", "errorType": "RequestEntityTooLarge"}
            )
            return
        if not env.respond(request_id, b"".join(self.parts)):
            self.write_json(
                400, {"errorMessage": "unknown request id", "errorType": "InvalidRequestID"}
            )
            return
        self.write_json(202, {"status": "OK"})


class ErrorHandler(_Base):
    def post(self, request_id: str) -> None:
        env = self.env()
        error_type = self.request.headers.get("Lambda-Runtime-Function-Error-Type", "")
        if not env.fail(request_id, self.request.body, error_type):
            self.write_json(
                400, {"errorMessage": "unknown request id", "errorType": "InvalidRequestID"}
            )
            return
        self.write_json(202, {"status": "OK"})


class InitErrorHandler(_Base):
    def post(self) -> None:
        env = self.env()
        error_type = self.request.headers.get("Lambda-Runtime-Function-Error-Type", "")
        env.init_error(self.request.body, error_type)
        self.write_json(202, {"status": "OK"})


class BindHandler(_Untagged):
    """lambdafleet's own endpoint, not AWS's: a pre-started container waits
    here until the pool binds it to a function, and gets the function's
    handler and variables (container variables are fixed at creation), and
    in Python images its code and layers."""

    def initialize(self, prestart: Callable[[], Prestart | None]) -> None:
        self.prestart = prestart

    async def get(self) -> None:
        pool = self.prestart()
        pre = pool.lookup(self.request.headers.get("Host", "")) if pool is not None else None
        if pool is None or pre is None:
            # Unknown (left over from a previous run, or a stranger: the
            # binding holds a function's code and variables): the waiting
            # process exits on anything but 200.
            self.set_status(403)
            self.finish()
            return
        pre.ready = True
        try:
            document = await pre.binding
        except asyncio.CancelledError:
            self.set_status(410)
            self.finish()
            return
        pool.answered(pre)
        archives: list[tuple[str, bytes]] = document.get("archives") or []  # type: ignore[assignment]
        binding = {k: v for k, v in document.items() if k != "archives"}
        if self.get_argument("format", "") == "sh":
            # For images without Python: a shell evals this (prestart.py);
            # the pool copied the code in before.
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(shell_assignments(binding))
            return
        # For WAIT_FOR_BIND (`?format=archives`): a JSON line, then the tars
        # it lists, which it unpacks.
        head = {**binding, "archives": [[path, len(tar)] for path, tar in archives]}
        self.set_header("Content-Type", "application/octet-stream")
        self.write(json.dumps(head).encode() + b"\n")
        for _, tar in archives:
            self.write(tar)
        self.finish()


def shell_assignments(document: dict[str, object]) -> str:
    """A binding as `export NAME='value'` lines, the handler as _HANDLER.

    Names that are not shell identifiers cannot be exported by a shell;
    AWS accepts only such names for environment variables anyway.
    """
    variables = dict(document.get("environment") or {})  # type: ignore[call-overload]
    variables["_HANDLER"] = document.get("handler", "")
    return "".join(
        f"export {name}={shlex.quote(str(value))}\n"
        for name, value in variables.items()
        if _SHELL_NAME.fullmatch(str(name))
    )


_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def make_app(
    lookup: Lookup, prestart: Callable[[], Prestart | None] = lambda: None
) -> tornado.web.Application:
    args = {"lookup": lookup}
    return tornado.web.Application(
        [
            (BIND_PATH, BindHandler, {"prestart": prestart}),
            (rf"{PREFIX}/invocation/next", NextHandler, args),
            (rf"{PREFIX}/invocation/([^/]+)/response", ResponseHandler, args),
            (rf"{PREFIX}/invocation/([^/]+)/error", ErrorHandler, args),
            (rf"{PREFIX}/init/error", InitErrorHandler, args),
            (ANNOUNCE_PATH, extensions_api.AnnounceHandler, args),
            *extensions_api.routes(args),
        ],
        log_function=lambda handler: None,
    )


def serve(
    lookup: Lookup,
    host: str,
    port: int,
    prestart: Callable[[], Prestart | None] = lambda: None,
) -> tuple[tornado.httpserver.HTTPServer, int]:
    server = tornado.httpserver.HTTPServer(
        make_app(lookup, prestart),
        max_body_size=READ_AT_MOST_BYTES,
        idle_connection_timeout=3600,
    )
    sockets = tornado.netutil.bind_sockets(port, host)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]
