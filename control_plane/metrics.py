"""The control plane's numbers, for Prometheus (`/_fleet/metrics`) and the
dashboard.

The control plane sees every invocation, synchronous or an event's attempt,
so it counts them where they finish (Scheduler.invoke). Counting must not
slow the warm path: `record` adds to plain dicts keyed by label tuples (one
event loop, so no locks), and the Prometheus families are built from them
only when scraped. What describes the cluster now (environments, workers,
queue depth) is read at scrape time from the worker registry and the store.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from lambdafleet.agent.v1 import agent_pb2 as apb

from .recent import Finished, Outcome, RecentInvocations
from .window import SlidingWindow

# Seconds, from a warm call of a few milliseconds to a function's 15 minutes.
DURATION_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
# Text format 0.0.4, which every Prometheus scrapes; with only classic
# metric names, the body is the same in the newer 1.0.0.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FUNCTION = ("account", "region", "function")
_ENV_STATES = {
    apb.ENVIRONMENT_STATE_STARTING: "starting",
    apb.ENVIRONMENT_STATE_READY: "ready",
    apb.ENVIRONMENT_STATE_INVOKING: "invoking",
}

_FunctionKey = tuple[str, str, str]
# account, region, function, outcome, type ("sync" or "async").
_InvocationKey = tuple[str, str, str, str, str]


@dataclass
class _Histogram:
    # counts[i] holds the observations of bucket i (the last one: +Inf),
    # not cumulative: cumulated at scrape.
    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_S) + 1))
    total: float = 0.0


@dataclass(frozen=True)
class ClusterReading:
    """What describes the cluster at scrape time."""

    # worker id -> (heartbeat age in seconds, its environments)
    workers: dict[str, tuple[float, list[apb.EnvironmentStatus]]]
    queued_events: int


class FleetMetrics:
    """Counts of finished invocations, the ring of recent ones and the
    sliding window, plus a Prometheus registry of its own."""

    def __init__(self, recent: int = 500) -> None:
        self.recent = RecentInvocations(recent)
        self.window = SlidingWindow()
        self._invocations: dict[_InvocationKey, int] = {}
        self._cold_starts: dict[_FunctionKey, int] = {}
        self._durations: dict[_FunctionKey, _Histogram] = {}
        self._cluster: Callable[[], ClusterReading] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Exporter(self))

    def watch(self, read: Callable[[], ClusterReading]) -> None:
        """Where scrapes read the cluster's current state from."""
        self._cluster = read

    def record(self, finished: Finished, now_s: float | None = None) -> None:
        """Count one finished invocation. Cheap: dict updates and a deque
        append, no lock and no I/O."""
        function = (finished.account_id, finished.region, finished.function_name)
        key = (*function, finished.outcome.value, "async" if finished.asynchronous else "sync")
        self._invocations[key] = self._invocations.get(key, 0) + 1
        ran = finished.outcome.ran
        if ran:
            histogram = self._durations.get(function)
            if histogram is None:
                histogram = self._durations[function] = _Histogram()
            histogram.counts[bisect.bisect_left(DURATION_BUCKETS_S, finished.duration_s)] += 1
            histogram.total += finished.duration_s
        if finished.cold_start:
            self._cold_starts[function] = self._cold_starts.get(function, 0) + 1
        self.recent.add(finished)
        self.window.add(
            time.time() if now_s is None else now_s,
            finished.duration_s * 1000 if ran else None,
            error=finished.outcome.error,
            throttled=finished.outcome is Outcome.THROTTLED,
            cold_start=finished.cold_start,
        )

    def exposition(self) -> tuple[str, str]:
        """(text, content type) of one scrape."""
        return generate_latest(self.registry).decode(), CONTENT_TYPE

    # -- families -----------------------------------------------------------

    def _families(self) -> Iterator[Metric]:
        invocations = CounterMetricFamily(
            "lambdafleet_invocations",
            "Finished invocations (each attempt of an event counts) by outcome: "
            "success, function_error, throttled, service_error; type is sync or async.",
            labels=[*_FUNCTION, "outcome", "type"],
        )
        errors = CounterMetricFamily(
            "lambdafleet_errors",
            "Invocations that ended in a function error or a service error.",
            labels=[*_FUNCTION, "outcome", "type"],
        )
        throttles = CounterMetricFamily(
            "lambdafleet_throttles",
            "Invocations refused with TooManyRequestsException.",
            labels=[*_FUNCTION, "type"],
        )
        for key, count in sorted(self._invocations.items()):
            account, region, function, outcome, kind = key
            invocations.add_metric(list(key), count)
            if outcome in (Outcome.FUNCTION_ERROR, Outcome.SERVICE_ERROR):
                errors.add_metric(list(key), count)
            elif outcome == Outcome.THROTTLED:
                throttles.add_metric([account, region, function, kind], count)
        yield invocations
        yield errors
        yield throttles

        durations = HistogramMetricFamily(
            "lambdafleet_invocation_duration_seconds",
            "Time the control plane spent on invocations that ran (success or "
            "function error): waiting for a worker, any cold start, and the run.",
            labels=list(_FUNCTION),
        )
        bounds = [*(repr(b) for b in DURATION_BUCKETS_S), "+Inf"]
        for labels, histogram in sorted(self._durations.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, histogram.counts, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            durations.add_metric(list(labels), cumulative, sum_value=histogram.total)
        yield durations

        cold = CounterMetricFamily(
            "lambdafleet_cold_starts",
            "Invocations for which a new environment was started.",
            labels=list(_FUNCTION),
        )
        for labels, cold_count in sorted(self._cold_starts.items()):
            cold.add_metric(list(labels), cold_count)
        yield cold

        if self._cluster is not None:
            yield from _cluster_families(self._cluster())


def _cluster_families(reading: ClusterReading) -> Iterator[Metric]:
    environments = GaugeMetricFamily(
        "lambdafleet_environments",
        "Execution environments by worker and state, as of each worker's last heartbeat.",
        labels=["worker", "state"],
    )
    age = GaugeMetricFamily(
        "lambdafleet_worker_heartbeat_age_seconds",
        "Time since each live worker's last heartbeat.",
        labels=["worker"],
    )
    for worker, (heartbeat_age_s, envs) in sorted(reading.workers.items()):
        age.add_metric([worker], heartbeat_age_s)
        counts = dict.fromkeys(_ENV_STATES.values(), 0)
        for env in envs:
            state = _ENV_STATES.get(env.state)
            if state is not None:
                counts[state] += 1
        for state, count in counts.items():
            environments.add_metric([worker, state], count)
    yield environments
    yield age
    yield GaugeMetricFamily(
        "lambdafleet_live_workers",
        "Workers with a current heartbeat.",
        value=len(reading.workers),
    )
    yield GaugeMetricFamily(
        "lambdafleet_queued_events",
        "Asynchronous events queued and not yet finished.",
        value=reading.queued_events,
    )


class _Exporter(Collector):
    def __init__(self, metrics: FleetMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics._families()
