"""`lambdafleet bench`'s numbers: percentiles, summaries, schedules and the
lines it prints, without a cluster."""

from __future__ import annotations

import math

import pytest

from lambdafleet.loadplot import per_second
from lambdafleet.loadstats import (
    Sample,
    function_error,
    parse_duration,
    percentile,
    progress_line,
    render,
    send_times,
    summarise,
)


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1 and percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile(list(reversed(values)), 90) == pytest.approx(90.1)
    assert math.isnan(percentile([], 50))


def test_a_summary_counts_throughput_errors_by_type_and_cold_starts() -> None:
    samples = [Sample(i * 0.01, 2.0) for i in range(96)]
    samples += [
        Sample(0.5, 300.0, cold_start=True),
        Sample(0.6, 5.0, error="TooManyRequestsException"),
        Sample(0.7, 4.0, error="Unhandled:ValueError"),
        Sample(0.8, 4.0, error="Unhandled:ValueError"),
    ]
    summary = summarise(samples, duration_s=2.0)
    assert summary.count == 100 and summary.throughput_per_s == 50.0
    assert summary.errors == {"Unhandled:ValueError": 2, "TooManyRequestsException": 1}
    assert summary.error_count == 3
    assert summary.cold_starts == 1 and summary.cold_start_p50_ms == 300.0
    assert summary.latency_ms["p50"] == 2.0 and summary.latency_ms["max"] == 300.0
    doc = summary.as_json()
    assert doc["count"] == 100 and doc["errors"]["TooManyRequestsException"] == 1
    table = render(summary, "title")
    assert table.splitlines()[0] == "title"
    assert "throughput" in table and "50.0 /s" in table
    assert "  Unhandled:ValueError" in table


def test_no_samples_summarise_without_failing() -> None:
    summary = summarise([], duration_s=0.0)
    assert summary.count == 0 and summary.throughput_per_s == 0.0
    assert summary.cold_start_p50_ms is None
    assert "invocations" in render(summary)


def test_the_progress_line_shows_the_recent_rate_and_latency() -> None:
    samples = [Sample(t / 10, 3.0) for t in range(100)]  # 10 s at 10/s
    line = progress_line(samples, elapsed_s=10.0)
    assert "100 done" in line and "10.0/s" in line and "p50 3.0 ms" in line
    assert "p50 -" in progress_line([], elapsed_s=0.0)


def test_durations_and_open_loop_schedules() -> None:
    assert parse_duration("30") == 30 and parse_duration("30s") == 30
    assert parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("1h") == 3600
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    assert send_times(4, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_function_error_is_named_by_its_error_type() -> None:
    assert function_error(b'{"errorType": "KeyError", "errorMessage": "x"}') == "Unhandled:KeyError"
    assert function_error(b"not json") == "Unhandled"


def test_the_plot_buckets_per_second() -> None:
    samples = [Sample(0.1, 1.0), Sample(0.9, 3.0), Sample(2.5, 10.0)]
    assert per_second(samples) == [(0, 2, 2.0, pytest.approx(2.98)), (2, 1, 10.0, 10.0)]


def test_server_timing_entries_read_back() -> None:
    from lambdafleet.server_timing import format_entries, parse

    entries = format_entries({"control-plane": 0.9, "worker": 1.2345})
    assert entries == "control-plane;dur=0.900, worker;dur=1.234"
    assert parse(f"gateway;dur=2.5, {entries}, init;dur=300") == {
        "gateway": 2.5,
        "control-plane": 0.9,
        "worker": 1.234,
        "init": 300.0,
    }
    assert parse("") == {}


def test_the_load_generator_reuses_a_signature_within_its_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime

    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from lambdafleet import loadgen

    monkeypatch.setattr(loadgen, "_credentials", lambda: Credentials("AKID", "secret"))
    frozen = datetime.datetime(2026, 12, 2, 1, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: frozen)
    clock = [100.0]
    monkeypatch.setattr(loadgen.time, "monotonic", lambda: clock[0])
    target = loadgen.Target("http://127.0.0.1:4566", "us-east-1", "fn", "", b'{"a": 1}', False)
    invoker = loadgen.Invoker(target, session=None)
    first = invoker._signed_headers()
    assert first["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    clock[0] += 0.5
    assert invoker._signed_headers() is first
    clock[0] += 0.5
    again = invoker._signed_headers()
    assert again is not first
    assert again["X-Amz-Date"] == "20261202T010000Z"
    # What is reused is exactly what botocore signs for that request.
    request = AWSRequest("POST", invoker.url, data=target.payload, headers=invoker.headers)
    SigV4Auth(Credentials("AKID", "secret"), "lambda", "us-east-1").add_auth(request)
    assert request.headers["Authorization"] == again["Authorization"]
