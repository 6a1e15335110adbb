"""The operator's side of the gateway: Prometheus metrics, JSON views of the
fleet, and the dashboard at `/_fleet/` with its server-sent events.

Every number comes from the control plane (ClusterService); these handlers
only fetch and reshape. The dashboard's assets are plain files in
`dashboard/` beside this module, installed as package data: no CDN, no build.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import tornado.web
from tornado.iostream import StreamClosedError

from lambdafleet.functions.v1 import functions_pb2 as pb

from . import fleet_query
from .fleet_json import as_dict
from .http_input import UriLimit

if TYPE_CHECKING:
    from .app import Settings

ASSETS = Path(__file__).resolve().parent / "dashboard"
# Snapshots the events stream sends: one a second.
EVENT_INTERVAL_S = 1.0
# Recent invocations in a snapshot (the control plane keeps more).
SNAPSHOT_RECENT = 50
RPC_TIMEOUT_S = 2.0


async def snapshot(fleet: Settings) -> dict[str, Any]:
    """Everything the dashboard shows, from one round of calls."""
    cluster = fleet.cluster
    status, functions, stats, recent = await asyncio.gather(
        cluster.GetClusterStatus(pb.GetClusterStatusRequest(), timeout=RPC_TIMEOUT_S),
        cluster.ListFleetFunctions(pb.ListFleetFunctionsRequest(), timeout=RPC_TIMEOUT_S),
        cluster.GetInvocationStats(
            pb.GetInvocationStatsRequest(window_seconds=60), timeout=RPC_TIMEOUT_S
        ),
        cluster.ListRecentInvocations(
            pb.ListRecentInvocationsRequest(limit=SNAPSHOT_RECENT), timeout=RPC_TIMEOUT_S
        ),
    )
    return {
        "time_unix_ms": int(time.time() * 1000),
        "status": as_dict(status),
        "functions": as_dict(functions)["functions"],
        "stats": as_dict(stats),
        "recent": as_dict(recent)["invocations"],
    }


class _Fleet(UriLimit):
    def initialize(self, settings: Settings) -> None:
        self.fleet = settings

    def json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def bad_query(self, error: fleet_query.QueryError) -> None:
        self.json(400, error.body())

    def no_query(self) -> bool:
        """True when the request has no query parameters; else answered 400."""
        try:
            fleet_query.only(self.request.query_arguments, ())
        except fleet_query.QueryError as exc:
            self.bad_query(exc)
            return False
        return True

    def unavailable(self, exc: grpc.aio.AioRpcError) -> None:
        self.json(503, {"message": f"control plane unavailable: {exc.code().name}"})


class MetricsHandler(_Fleet):
    """GET /_fleet/metrics: the control plane's metrics for Prometheus."""

    async def get(self) -> None:
        if not self.no_query():
            return
        try:
            response = await self.fleet.cluster.GetMetrics(
                pb.GetMetricsRequest(), timeout=RPC_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            self.unavailable(exc)
            return
        self.set_header("Content-Type", response.content_type)
        self.finish(response.text)


class FunctionsHandler(_Fleet):
    """GET /_fleet/functions: every function of every account and region."""

    async def get(self) -> None:
        if not self.no_query():
            return
        try:
            response = await self.fleet.cluster.ListFleetFunctions(
                pb.ListFleetFunctionsRequest(), timeout=RPC_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            self.unavailable(exc)
            return
        self.json(200, as_dict(response))


class InvocationsHandler(_Fleet):
    """GET /_fleet/invocations?limit=&function=: recent invocations, newest first."""

    async def get(self) -> None:
        arguments = self.request.query_arguments
        try:
            fleet_query.only(arguments, ("limit", "function"))
            limit = fleet_query.integer(arguments, "limit", 0, 0, fleet_query.INT32_MAX)
            function = fleet_query.text(arguments, "function")
        except fleet_query.QueryError as exc:
            self.bad_query(exc)
            return
        request = pb.ListRecentInvocationsRequest(limit=limit, function_name=function)
        try:
            response = await self.fleet.cluster.ListRecentInvocations(
                request, timeout=RPC_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            self.unavailable(exc)
            return
        self.json(200, as_dict(response))


class StatsHandler(_Fleet):
    """GET /_fleet/stats?window=60: rate, latency percentiles and errors."""

    async def get(self) -> None:
        arguments = self.request.query_arguments
        try:
            fleet_query.only(arguments, ("window",))
            window = fleet_query.integer(arguments, "window", 60, 1, fleet_query.INT32_MAX)
        except fleet_query.QueryError as exc:
            self.bad_query(exc)
            return
        try:
            response = await self.fleet.cluster.GetInvocationStats(
                pb.GetInvocationStatsRequest(window_seconds=window), timeout=RPC_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                # The control plane's bound on the window (it keeps so many seconds).
                self.bad_query(fleet_query.QueryError("window", exc.details() or "out of range"))
            else:
                self.unavailable(exc)
            return
        self.json(200, as_dict(response))


class EventsHandler(_Fleet):
    """GET /_fleet/events: server-sent events, one JSON snapshot a second,
    until the client goes away. A snapshot the control plane cannot answer
    is sent as {"error": ...}, so the page says so and keeps listening."""

    def initialize(self, settings: Settings) -> None:
        super().initialize(settings)
        self._gone = asyncio.Event()

    def on_connection_close(self) -> None:
        self._gone.set()

    async def get(self) -> None:
        if not self.no_query():
            return
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        # A client that lost the stream reconnects after a second.
        self.write("retry: 1000\n\n")
        while not self._gone.is_set():
            try:
                body: dict[str, Any] = await snapshot(self.fleet)
            except grpc.aio.AioRpcError as exc:
                body = {"error": f"control plane unavailable: {exc.code().name}"}
            self.write(f"data: {json.dumps(body)}\n\n")
            try:
                await self.flush()
            except StreamClosedError:
                return
            try:
                await asyncio.wait_for(self._gone.wait(), EVENT_INTERVAL_S)
            except TimeoutError:
                pass


class PageHandler(UriLimit):
    """GET /_fleet/: the dashboard's page."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish((ASSETS / "index.html").read_bytes())


def routes(args: dict[str, Any]) -> list[Any]:
    """The operator endpoints, for make_app (before its catch-all route)."""
    return [
        (r"/_fleet/metrics", MetricsHandler, args),
        (r"/_fleet/functions", FunctionsHandler, args),
        (r"/_fleet/invocations", InvocationsHandler, args),
        (r"/_fleet/stats", StatsHandler, args),
        (r"/_fleet/events", EventsHandler, args),
        (r"/_fleet/?", PageHandler),
        (r"/_fleet/assets/(.*)", tornado.web.StaticFileHandler, {"path": str(ASSETS)}),
    ]
