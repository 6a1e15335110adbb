"""`lambdafleet bench` as a user runs it, against a real cluster: its table,
its JSON, its plot, and errors and throttles counted by type."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cluster import ROLE, zip_bytes
from conftest import UpCluster

from lambdafleet.loadgen import fatal_error

FUNCTION = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return event
"""


def create(client: Any, **extra: Any) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": FUNCTION})},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def bench(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdafleet.cli", "bench", "--endpoint", endpoint, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_count_of_invocations_gives_a_table_json_and_a_plot(
    cluster: UpCluster, tmp_path: Path
) -> None:
    name = create(cluster.client())
    table = bench(cluster.endpoint, name, "--count", "50", "--concurrency", "4")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"{name}, concurrency 4, closed loop, 50 invocations")
    assert any(line.split() == ["invocations", "50"] for line in lines)
    assert any(line.split() == ["errors", "0"] for line in lines)
    assert any(line.startswith("latency p99") for line in lines)
    # Not a terminal: no progress line on stderr.
    assert "done" not in table.stderr

    picture = tmp_path / "latency.png"
    result = bench(
        cluster.endpoint,
        name,
        "--count",
        "120",
        "--concurrency",
        "8",
        "--payload",
        '{"n": 1}',
        "--json",
        "--plot",
        str(picture),
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["count"] == 120 and doc["error_count"] == 0 and doc["errors"] == {}
    assert doc["function"] == name and doc["concurrency"] == 8
    assert doc["throughput_per_s"] > 0
    latency = doc["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p99"] <= latency["max"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_function_errors_and_throttles_are_counted_by_type(cluster: UpCluster) -> None:
    client = cluster.client()
    failing = create(client)
    result = bench(
        cluster.endpoint, failing, "--count", "10", "--payload", '{"fail": true}', "--json"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["errors"] == {"Unhandled:ValueError": 10}

    # Reserved concurrency 0: every invocation is throttled, as on AWS.
    throttled = create(client)
    client.put_function_concurrency(FunctionName=throttled, ReservedConcurrentExecutions=0)
    result = bench(cluster.endpoint, throttled, "--count", "6", "--concurrency", "2", "--json")
    doc = json.loads(result.stdout)
    assert doc["errors"] == {"TooManyRequestsException": 6}


def test_an_open_loop_rate_for_a_duration(cluster: UpCluster) -> None:
    name = create(cluster.client())
    result = bench(
        cluster.endpoint,
        name,
        "--rate",
        "40",
        "--duration",
        "1s",
        "--concurrency",
        "4",
        "--warmup",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    # Due at 40 per second for one second: 40 invocations, none lost.
    assert doc["count"] == 40 and doc["error_count"] == 0 and doc["rate"] == 40


def test_a_bad_duration_is_refused(cluster: UpCluster) -> None:
    result = bench(cluster.endpoint, "any", "--duration", "soon")
    assert result.returncode == 2 and "not a duration" in result.stderr


def test_a_missing_function_stops_the_run_at_once(cluster: UpCluster) -> None:
    started = time.monotonic()
    result = bench(cluster.endpoint, "no-such-function", "--duration", "60s", "--rate", "50")
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "lambdafleet bench: ResourceNotFoundException: Function not found: "
        "arn:aws:lambda:us-east-1:000000000000:function:no-such-function:$LATEST"
    )
    result = bench(cluster.endpoint, "no-such-function", "--count", "1000", "--warmup", "5")
    assert result.returncode == 1
    assert "ResourceNotFoundException" in result.stderr


def test_which_answers_end_a_run() -> None:
    missing = b'{"Type":"User","Message":"Function not found: f"}'
    assert fatal_error(404, missing, "ResourceNotFoundException") == (
        "ResourceNotFoundException: Function not found: f"
    )
    assert fatal_error(400, b'{"message":"bad"}', "ValidationException") == (
        "ValidationException: bad"
    )
    assert fatal_error(403, b"<html>", "") == "HTTP 403"
    # Counted, not fatal: throttles, a Pending function, service errors.
    assert fatal_error(429, b"{}", "TooManyRequestsException") is None
    assert fatal_error(409, b"{}", "ResourceConflictException") is None
    assert fatal_error(500, b"{}", "ServiceException") is None
    assert fatal_error(200, b"{}", "") is None
