"""ClusterService and CodeService: the cluster's status, metrics, recent
invocations and functions for operators, functions' logs, and stored code
packages streamed to workers and the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc
from lambdafleet.state.v1 import state_pb2

from .api.kinds import ALIAS, FUNCTION, PROVISIONED, VERSION
from .event_queue import ASYNC_EVENT
from .function_logs import FunctionLogs, LogKey, StoredLine
from .metrics import ClusterReading, FleetMetrics
from .recent import Finished, Outcome
from .store import CodeStore, ResourceStore, Scope
from .window import MAX_WINDOW_S, WindowStats
from .workers import WorkerRegistry, WorkerSession

_OUTCOMES = {
    Outcome.SUCCESS: pb.INVOCATION_OUTCOME_SUCCESS,
    Outcome.FUNCTION_ERROR: pb.INVOCATION_OUTCOME_FUNCTION_ERROR,
    Outcome.THROTTLED: pb.INVOCATION_OUTCOME_THROTTLED,
    Outcome.SERVICE_ERROR: pb.INVOCATION_OUTCOME_SERVICE_ERROR,
}

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


class ClusterService(functions_pb2_grpc.ClusterServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        registry: WorkerRegistry,
        store: ResourceStore,
        metrics: FleetMetrics | None = None,
        logs: FunctionLogs | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.metrics = metrics or FleetMetrics()
        self.metrics.watch(self.reading)
        self.logs = logs if logs is not None else FunctionLogs()

    def reading(self) -> ClusterReading:
        """The cluster now, for a metrics scrape."""
        now = time.monotonic()
        return ClusterReading(
            workers={
                s.worker_id: (now - s.last_seen, list(s.environments)) for s in self.registry.live()
            },
            queued_events=self.store.count_everywhere(ASYNC_EVENT),
        )

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

    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: Context
    ) -> pb.GetMetricsResponse:
        text, content_type = self.metrics.exposition()
        return pb.GetMetricsResponse(text=text, content_type=content_type)

    async def ListRecentInvocations(
        self, request: pb.ListRecentInvocationsRequest, context: Context
    ) -> pb.ListRecentInvocationsResponse:
        found = self.metrics.recent.latest(max(0, request.limit), request.function_name)
        return pb.ListRecentInvocationsResponse(
            invocations=[invocation_record(f) for f in found],
            capacity=self.metrics.recent.capacity,
        )

    async def GetInvocationStats(
        self, request: pb.GetInvocationStatsRequest, context: Context
    ) -> pb.GetInvocationStatsResponse:
        window = request.window_seconds or 60
        if not 1 <= window <= MAX_WINDOW_S:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"window_seconds must be between 1 and {MAX_WINDOW_S}",
            )
        return invocation_stats(self.metrics.window.stats(time.time(), window))

    async def ListFleetFunctions(
        self, request: pb.ListFleetFunctionsRequest, context: Context
    ) -> pb.ListFleetFunctionsResponse:
        return pb.ListFleetFunctionsResponse(functions=fleet_functions(self.store))

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


def invocation_record(f: Finished) -> pb.InvocationRecord:
    return pb.InvocationRecord(
        request_id=f.request_id,
        account_id=f.account_id,
        region=f.region,
        function_name=f.function_name,
        qualifier=f.qualifier,
        executed_version=f.executed_version,
        worker_id=f.worker_id,
        start_unix_ms=f.start_unix_ms,
        duration_ms=round(f.duration_s * 1000, 3),
        outcome=_OUTCOMES[f.outcome],
        error_type=f.error_type,
        cold_start=f.cold_start,
        asynchronous=f.asynchronous,
    )


def invocation_stats(stats: WindowStats) -> pb.GetInvocationStatsResponse:
    return pb.GetInvocationStatsResponse(
        window_seconds=stats.window_s,
        invocations=stats.invocations,
        errors=stats.errors,
        throttles=stats.throttles,
        cold_starts=stats.cold_starts,
        rate_per_second=stats.rate_per_s,
        p50_ms=stats.p50_ms,
        p90_ms=stats.p90_ms,
        p99_ms=stats.p99_ms,
        seconds=[
            pb.InvocationSecond(
                unix_second=s.unix_second,
                invocations=s.invocations,
                errors=s.errors,
                throttles=s.throttles,
                p50_ms=s.p50_ms,
                p99_ms=s.p99_ms,
            )
            for s in stats.seconds
        ],
    )


def fleet_functions(store: ResourceStore) -> list[pb.FleetFunction]:
    """Every function of every account and region, with counts read in one
    query per kind (the dashboard asks every second)."""
    versions = store.count_by_function(VERSION)
    aliases = store.count_by_function(ALIAS)
    provisioned: dict[tuple[object, str], tuple[int, int]] = {}
    for scope, rid, config in store.everywhere(
        PROVISIONED, api.GetProvisionedConcurrencyConfigResponse
    ):
        key = (scope, rid.rsplit(":", 1)[0])
        requested, ready = provisioned.get(key, (0, 0))
        provisioned[key] = (
            requested + config.requested_provisioned_concurrent_executions,
            ready + config.allocated_provisioned_concurrent_executions,
        )
    out = []
    for scope, name, record in store.everywhere(FUNCTION, state_pb2.FunctionRecord):
        c = record.configuration
        requested, ready = provisioned.get((scope, name), (0, 0))
        function = pb.FleetFunction(
            account_id=scope.account_id,
            region=scope.region,
            function_name=name,
            runtime=c.runtime,
            state=c.state,
            last_update_status=c.last_update_status,
            memory_size=c.memory_size,
            versions=versions.get((scope, name), 0),
            aliases=aliases.get((scope, name), 0),
            provisioned_concurrency=requested,
            provisioned_ready=ready,
            last_modified=c.last_modified,
        )
        if record.HasField("reserved_concurrency"):
            function.reserved_concurrency = record.reserved_concurrency
        out.append(function)
    out.sort(key=lambda f: (f.account_id, f.region, f.function_name))
    return out


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
        ready_runtimes=sorted(session.ready_runtimes),
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
