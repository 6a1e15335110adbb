"""The Extensions API (2020-01-01) on the worker's Runtime API server.

Authenticated like the Runtime API: the Host header (`lf-<secret>`, see
worker/runtime_auth.py) names the one environment a request may act on.
The lifecycle decisions are in worker/extensions.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import structlog
import tornado.web

from .environment import Environment, Status
from .extensions import ExtensionError

log = structlog.get_logger(__name__)

PREFIX = "/2020-01-01/extension"
ID_HEADER = "Lambda-Extension-Identifier"

Lookup = Callable[[str], Environment | None]


class _Base(tornado.web.RequestHandler):
    def initialize(self, lookup: Lookup) -> None:
        self.lookup = lookup

    def env(self) -> Environment:
        env = self.lookup(self.request.headers.get("Host", ""))
        if env is None:
            raise tornado.web.HTTPError(403, reason="unknown environment")
        return env

    def write_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def refuse(self, exc: ExtensionError) -> None:
        self.write_json(exc.status, {"errorMessage": str(exc), "errorType": exc.error_type})


class AnnounceHandler(_Base):
    """lambdafleet's own: the launcher says how many extensions it starts."""

    def post(self) -> None:
        try:
            count = int(self.get_argument("expected", "0"))
        except ValueError:
            count = 0
        self.env().announce_extensions(max(0, count))
        self.write_json(202, {"status": "OK"})


class RegisterHandler(_Base):
    def post(self) -> None:
        env = self.env()
        name = self.request.headers.get("Lambda-Extension-Name", "")
        try:
            body = json.loads(self.request.body or b"{}")
            events = list(body.get("events") or []) if isinstance(body, dict) else []
        except ValueError:
            self.write_json(400, {"errorMessage": "invalid JSON", "errorType": "InvalidRequest"})
            return
        try:
            extension_id = env.register_extension(name, [str(e) for e in events])
        except ExtensionError as exc:
            self.refuse(exc)
            return
        log.info("extension.registered", environment=env.id, extension=name, events=events)
        spec = env.spec
        info: dict[str, Any] = {
            "functionName": spec.function_name,
            "functionVersion": spec.version,
            "handler": spec.handler,
        }
        features = self.request.headers.get("Lambda-Extension-Accept-Feature", "")
        if "accountId" in [f.strip() for f in features.split(",")]:
            info["accountId"] = spec.account_id
        self.set_header(ID_HEADER, extension_id)
        self.write_json(200, info)


class EventNextHandler(_Base):
    async def get(self) -> None:
        env = self.env()
        extension_id = self.request.headers.get(ID_HEADER, "")
        try:
            waiter = env.extension_next(extension_id)
        except ExtensionError as exc:
            self.refuse(exc)
            return
        try:
            event = await waiter
        except asyncio.CancelledError:
            self.write_json(410, {"errorMessage": "environment stopped", "errorType": "Gone"})
            return
        self.set_header("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))
        self.write_json(200, event)


class ErrorHandler(_Base):
    """init/error and exit/error: the extension reports why it stops."""

    def initialize(self, lookup: Lookup, during_init: bool = False) -> None:  # type: ignore[override]
        super().initialize(lookup)
        self.during_init = during_init

    def post(self) -> None:
        env = self.env()
        extension_id = self.request.headers.get(ID_HEADER, "")
        error_type = self.request.headers.get("Lambda-Extension-Function-Error-Type", "")
        if not error_type:
            self.write_json(
                400, {"errorMessage": "missing error type", "errorType": "InvalidRequest"}
            )
            return
        try:
            during_init = self.during_init and env.status is Status.STARTING
            env.extension_failed(extension_id, error_type, during_init)
        except ExtensionError as exc:
            self.refuse(exc)
            return
        log.info("extension.error", environment=env.id, error_type=error_type)
        self.write_json(202, {"status": "OK"})


def routes(args: dict[str, Any]) -> list[Any]:
    return [
        (rf"{PREFIX}/register", RegisterHandler, args),
        (rf"{PREFIX}/event/next", EventNextHandler, args),
        (rf"{PREFIX}/init/error", ErrorHandler, {**args, "during_init": True}),
        (rf"{PREFIX}/exit/error", ErrorHandler, {**args, "during_init": False}),
    ]
