"""The operator's numbers without a cluster: the sliding window's
percentiles, the ring of recent invocations, the metrics text (parsed by
prometheus_client's own parser), `lambdafleet status` layout and the
progress of long CLI work."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
from lambdafleet.control_plane.metrics import ClusterReading, FleetMetrics
from lambdafleet.control_plane.recent import Finished, Outcome, RecentInvocations, qualifier_of
from lambdafleet.control_plane.window import SlidingWindow, bucket_of, percentile
from prometheus_client.parser import text_string_to_metric_families

from lambdafleet import status
from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.progress import steps


def finished(
    outcome: Outcome = Outcome.SUCCESS,
    *,
    function: str = "f",
    duration_s: float = 0.02,
    request_id: str = "r",
    **kw: Any,
) -> Finished:
    return Finished(
        request_id=request_id,
        account_id="000000000000",
        region="us-east-1",
        function_name=function,
        qualifier=kw.pop("qualifier", ""),
        executed_version=kw.pop("executed_version", "$LATEST"),
        worker_id=kw.pop("worker_id", "w1"),
        start_unix_ms=kw.pop("start_unix_ms", 1_000),
        duration_s=duration_s,
        outcome=outcome,
        **kw,
    )


# -- sliding window -----------------------------------------------------------


def test_percentiles_are_within_a_bucket_of_the_exact_value() -> None:
    histogram: Counter[int] = Counter()
    values = [float(v) for v in range(1, 1001)]  # 1 ms .. 1000 ms
    for v in values:
        histogram[bucket_of(v)] += 1
    for q, exact in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)]:
        assert percentile(histogram, q) == pytest.approx(exact, rel=0.1)


def test_a_percentile_of_nothing_is_zero() -> None:
    assert percentile(Counter(), 0.5) == 0.0


def test_window_counts_only_its_own_seconds() -> None:
    window = SlidingWindow(size_s=300)
    window.add(100.2, 10.0)
    window.add(100.9, 20.0, error=True)
    window.add(130.0, None, throttled=True)
    window.add(159.5, 30.0, cold_start=True)

    stats = window.stats(now_s=159.9, window_s=60)
    assert (stats.invocations, stats.errors, stats.throttles, stats.cold_starts) == (4, 1, 1, 1)
    assert stats.rate_per_s == pytest.approx(4 / 60)
    assert [s.unix_second for s in stats.seconds] == list(range(100, 160))
    assert stats.seconds[0].invocations == 2
    assert stats.seconds[30].throttles == 1
    assert stats.seconds[30].p50_ms == 0.0  # a throttle has no duration

    later = window.stats(now_s=161.0, window_s=60)  # second 100 has left the window
    assert later.invocations == 2
    assert later.p50_ms == pytest.approx(30.0, rel=0.1)


def test_a_slot_reused_after_a_full_turn_starts_empty() -> None:
    window = SlidingWindow(size_s=10)
    window.add(5.0, 10.0)
    window.add(15.0, 1000.0)  # the same slot, ten seconds on
    stats = window.stats(now_s=15.0, window_s=10)
    assert stats.invocations == 1
    assert stats.p99_ms == pytest.approx(1000.0, rel=0.1)


def test_window_length_is_capped_by_what_is_kept() -> None:
    assert SlidingWindow(size_s=30).stats(now_s=0, window_s=600).window_s == 30


# -- recent invocations ---------------------------------------------------------


def test_ring_keeps_the_newest_and_answers_newest_first() -> None:
    ring = RecentInvocations(capacity=3)
    for i in range(5):
        ring.add(finished(request_id=f"r{i}", function="a" if i % 2 else "b"))
    assert len(ring) == 3
    assert [f.request_id for f in ring.latest()] == ["r4", "r3", "r2"]
    assert [f.request_id for f in ring.latest(limit=2)] == ["r4", "r3"]
    assert [f.request_id for f in ring.latest(function_name="a")] == ["r3"]


def test_qualifier_comes_from_the_invoked_arn() -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert qualifier_of(arn) == ""
    assert qualifier_of(arn + ":live") == "live"
    assert qualifier_of(arn + ":3") == "3"


# -- metrics text -----------------------------------------------------------------


def families(metrics: FleetMetrics) -> dict[str, Any]:
    text, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family: Any, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in family.samples
        if name is None or s.name == name
    }


def test_metrics_count_every_outcome_by_function_and_type() -> None:
    metrics = FleetMetrics()
    metrics.record(finished(Outcome.SUCCESS, duration_s=0.003, cold_start=True), now_s=10)
    metrics.record(finished(Outcome.SUCCESS, duration_s=0.2), now_s=10)
    metrics.record(finished(Outcome.FUNCTION_ERROR, duration_s=0.04, asynchronous=True), now_s=10)
    metrics.record(finished(Outcome.THROTTLED, duration_s=0.0, worker_id=""), now_s=10)
    metrics.record(finished(Outcome.SERVICE_ERROR, function="g"), now_s=10)
    found = families(metrics)
    base = (("account", "000000000000"), ("region", "us-east-1"))

    def key(function: str, **labels: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*base, ("function", function), *labels.items())))

    assert samples(found["lambdafleet_invocations"], "lambdafleet_invocations_total") == {
        key("f", outcome="success", type="sync"): 2,
        key("f", outcome="function_error", type="async"): 1,
        key("f", outcome="throttled", type="sync"): 1,
        key("g", outcome="service_error", type="sync"): 1,
    }
    assert samples(found["lambdafleet_errors"], "lambdafleet_errors_total") == {
        key("f", outcome="function_error", type="async"): 1,
        key("g", outcome="service_error", type="sync"): 1,
    }
    assert samples(found["lambdafleet_throttles"], "lambdafleet_throttles_total") == {
        key("f", type="sync"): 1
    }
    assert samples(found["lambdafleet_cold_starts"], "lambdafleet_cold_starts_total") == {
        key("f"): 1
    }
    duration = found["lambdafleet_invocation_duration_seconds"]
    assert duration.type == "histogram"
    # Only invocations that ran have a duration: two successes, one error.
    assert samples(duration, "lambdafleet_invocation_duration_seconds_count") == {key("f"): 3}
    assert samples(duration, "lambdafleet_invocation_duration_seconds_sum")[
        key("f")
    ] == pytest.approx(0.243)
    buckets = samples(duration, "lambdafleet_invocation_duration_seconds_bucket")
    assert buckets[key("f", le="0.005")] == 1
    assert buckets[key("f", le="0.05")] == 2
    assert buckets[key("f", le="0.25")] == 3
    assert buckets[key("f", le="+Inf")] == 3
    # The same invocations feed the ring and the window.
    assert len(metrics.recent) == 5
    assert metrics.window.stats(now_s=10, window_s=60).errors == 2


def test_metrics_describe_the_cluster_as_read_at_scrape() -> None:
    metrics = FleetMetrics()
    envs = [
        apb.EnvironmentStatus(state=apb.ENVIRONMENT_STATE_READY),
        apb.EnvironmentStatus(state=apb.ENVIRONMENT_STATE_READY),
        apb.EnvironmentStatus(state=apb.ENVIRONMENT_STATE_INVOKING),
    ]
    metrics.watch(
        lambda: ClusterReading(workers={"w1": (0.5, envs), "w2": (2.0, [])}, queued_events=7)
    )
    found = families(metrics)
    assert samples(found["lambdafleet_environments"]) == {
        (("state", "starting"), ("worker", "w1")): 0,
        (("state", "ready"), ("worker", "w1")): 2,
        (("state", "invoking"), ("worker", "w1")): 1,
        (("state", "starting"), ("worker", "w2")): 0,
        (("state", "ready"), ("worker", "w2")): 0,
        (("state", "invoking"), ("worker", "w2")): 0,
    }
    assert samples(found["lambdafleet_worker_heartbeat_age_seconds"]) == {
        (("worker", "w1"),): 0.5,
        (("worker", "w2"),): 2.0,
    }
    assert samples(found["lambdafleet_live_workers"]) == {(): 2}
    assert samples(found["lambdafleet_queued_events"]) == {(): 7}


# -- lambdafleet status -------------------------------------------------------------


def test_status_shows_workers_environments_and_functions() -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:hello"
    view = {
        "endpoint": "http://gw:4566",
        "status": {
            "live_workers": 1,
            "queued_events": 3,
            "workers": [
                {
                    "worker_id": "w1",
                    "capacity": 64,
                    "memory_mb": 8192,
                    "in_flight": 2,
                    "draining": False,
                    "heartbeat_age_ms": 1500,
                    "prestarted": 1,
                    "environments": [
                        {
                            "function_arn": arn,
                            "version": "$LATEST",
                            "state": "ENVIRONMENT_STATE_READY",
                        },
                        {
                            "function_arn": arn,
                            "version": "$LATEST",
                            "state": "ENVIRONMENT_STATE_INVOKING",
                            "provisioned": True,
                        },
                    ],
                }
            ],
        },
        "functions": [
            {
                "function_name": "hello",
                "account_id": "000000000000",
                "region": "us-east-1",
                "state": "Active",
                "runtime": "python3.11",
                "versions": 2,
                "reserved_concurrency": 10,
                "provisioned_concurrency": 1,
                "provisioned_ready": 1,
            }
        ],
    }
    lines = status.render(view).splitlines()
    assert lines[0] == (
        "lambdafleet at http://gw:4566: 1 live worker(s), 1 function(s), 3 queued event(s)"
    )
    assert lines[lines.index("WORKERS") + 2].split() == [
        "w1", "live", "2/64", "8192", "MB", "2", "1", "1.5", "s"
    ]  # fmt: skip
    assert lines[lines.index("ENVIRONMENTS") + 2].split() == [
        "hello", "$LATEST", "w1", "0", "1", "1", "1"
    ]  # fmt: skip
    assert lines[lines.index("FUNCTIONS") + 2].split() == [
        "hello", "000000000000", "us-east-1", "Active", "python3.11", "2", "10", "1/1"
    ]  # fmt: skip


def test_status_of_an_empty_cluster_says_so() -> None:
    view = {"endpoint": "e", "status": {"live_workers": 0, "workers": []}, "functions": []}
    text = status.render(view)
    assert "(no live worker)" in text
    assert text.count("(none)") == 2


# -- progress ---------------------------------------------------------------------


def test_progress_off_a_terminal_is_plain_lines() -> None:
    out = io.StringIO()
    with steps("building python3.11", out, terminal=False) as report:
        report("fetching packages")
        report("building layer")
    assert out.getvalue() == "fetching packages\nbuilding layer\n"


def test_progress_on_a_terminal_ends_with_one_done_line() -> None:
    out = io.StringIO()
    with steps("building python3.11", out, terminal=True) as report:
        report("fetching packages")
    text = out.getvalue()
    assert "\x1b[" in text  # drawn with terminal control sequences
    assert "✓" in text
    assert "building python3.11" in text


def test_progress_of_a_failed_task_does_not_claim_it_done() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), steps("building x", out, terminal=True) as report:
        report("step")
        raise RuntimeError("boom")
    assert "✓" not in out.getvalue()
