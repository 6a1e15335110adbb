"""`GET /_fleet/logs/<function name>`: a function's logs as the control plane
keeps them, whichever worker ran it, as newline-delimited JSON (one object a
line: timestamp in ms, request_id, log_stream, message), streamed as they come
with `follow=1`.

Query: `since` (Unix ms, an ISO-8601 time, or a duration back from now such
as `10m`, `90s`, `2h`, `1d`), `follow`, `region` (default us-east-1, or the
request's signature), `account` (default the gateway's account).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import tornado.http1connection
import tornado.iostream
import tornado.web

from lambdafleet.functions.v1 import functions_pb2 as pb

from . import fleet_query
from .http_input import UriLimit

if TYPE_CHECKING:
    from .app import Settings

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
# AWS's shapes of a region and an account id.
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"
_ACCOUNT = r"\d{12}"
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_since(raw: str, now_ms: int) -> int:
    """Unix ms from `since`: digits are Unix ms; `10m`, `1h30m`, `500ms` go
    back from `now_ms`; anything else must be ISO-8601 (a time without a
    zone is UTC). Raises ValueError."""
    text = raw.strip()
    if not text:
        return 0
    if text.isdigit():
        if len(text.lstrip("0")) > 19:  # beyond int64 (and Python's digit limit)
            raise ValueError(f"{text} is out of range")
        return _in_range(int(text))
    if re.fullmatch(rf"(?:{_RELATIVE.pattern}\s*)+", text):
        back = sum(float(n) * _UNIT_MS[unit] for n, unit in _RELATIVE.findall(text))
        # Further back than the epoch (an infinite float too) is all of it.
        return int(now_ms - back) if back < now_ms else 0
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return _in_range(int(stamp.timestamp() * 1000))


def _in_range(ms: int) -> int:
    # since_ms is an int64 field.
    if not 0 <= ms < 2**63:
        raise ValueError(f"{ms} is out of range")
    return ms


def event_json(event: pb.LogEvent) -> str:
    return json.dumps(
        {
            "timestamp": event.timestamp_ms,
            "request_id": event.request_id,
            "log_stream": event.log_stream,
            "message": event.message,
        }
    )


class FleetLogsHandler(UriLimit):
    def initialize(self, settings: Settings) -> None:
        self.fleet = settings
        self._call: grpc.aio.UnaryStreamCall | None = None

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    async def get(self, function_name: str) -> None:
        # The region of a signed request, as the Lambda API takes it.
        from .app import identity

        region, account = identity(
            self.request.headers.get("Authorization", ""), self.fleet.account_id
        )
        arguments = self.request.query_arguments
        try:
            fleet_query.only(arguments, ("since", "follow", "region", "account"))
            since_text = fleet_query.text(arguments, "since")
            try:
                since = parse_since(since_text, int(time.time() * 1000))
            except (ValueError, OverflowError):
                raise fleet_query.QueryError(
                    "since", "expected Unix ms, an ISO-8601 time or a duration like 10m"
                ) from None
            follow = fleet_query.flag(arguments, "follow")
            region = fleet_query.text(arguments, "region", pattern=_REGION) or region
            account = fleet_query.text(arguments, "account", pattern=_ACCOUNT) or account
        except fleet_query.QueryError as exc:
            self.set_status(400)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.body()))
            return
        request = pb.TailFunctionLogsRequest(
            account_id=account,
            region=region,
            function_name=function_name,
            since_ms=since,
            follow=follow,
        )
        self._call = self.fleet.cluster.TailFunctionLogs(request)
        self.set_header("Content-Type", "application/x-ndjson")
        try:
            async for response in self._call:
                if response.events:
                    self.write("".join(event_json(e) + "\n" for e in response.events))
                    await self.flush()
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return  # the client went away
            if not self._headers_written:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    self._error(404, exc.details() or "no such function")
                else:
                    self._error(503, f"control plane unavailable: {exc.code().name}")
                return
            # Mid-stream (the control plane went away): end the connection
            # without the final chunk, so the client sees a broken stream,
            # not a complete one (`lambdafleet logs --follow` reconnects).
            connection = self.request.connection
            if isinstance(connection, tornado.http1connection.HTTP1Connection):
                connection.close()
            return
        except tornado.iostream.StreamClosedError:
            self._call.cancel()
            return
        self.finish()

    def on_connection_close(self) -> None:
        # A follower hung up: end its stream on the control plane.
        if self._call is not None:
            self._call.cancel()
