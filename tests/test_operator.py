"""What an operator reads off a running cluster: /_fleet/metrics (parsed
with prometheus_client's own parser), the recent invocations, the function
listing, and `lambdafleet status` run as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cluster import CLIENTS, ROLE, create_echo, zip_bytes
from conftest import UpCluster
from prometheus_client.parser import text_string_to_metric_families

FAILING_HANDLER = "def handler(event, context):\n    raise ValueError('no')\n"


def invoke(client: Any, **params: Any) -> dict[str, Any]:
    """Invoke and read the payload, which returns the connection to the
    client's pool (an unread one leaks its socket)."""
    response: dict[str, Any] = client.invoke(**params)
    response["Payload"] = response["Payload"].read()
    return response


def get(cluster: UpCluster, path: str) -> tuple[str, str]:
    with urllib.request.urlopen(f"{cluster.endpoint}{path}", timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def metric_samples(cluster: UpCluster, function: str) -> dict[tuple[str, str, str], float]:
    """(sample name, outcome, type) -> value of one function's samples."""
    content_type, text = get(cluster, "/_fleet/metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("function") == function:
                key = (s.name, s.labels.get("outcome", ""), s.labels.get("type", ""))
                if "le" not in s.labels:
                    out[key] = s.value
    return out


def cluster_samples(cluster: UpCluster) -> dict[str, list[Any]]:
    _, text = get(cluster, "/_fleet/metrics")
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def once(cluster: UpCluster) -> Any:
    """A client that never retries (botocore retries a throttle once even
    with max_attempts=1): each call is one invocation."""
    client = boto3.client(
        "lambda",
        endpoint_url=cluster.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    CLIENTS.append(client)
    return client


def wait_for(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_metrics_count_every_kind_of_invocation(cluster: UpCluster, client: Any) -> None:
    ok, failing = f"ok-{uuid.uuid4().hex[:8]}", f"fail-{uuid.uuid4().hex[:8]}"
    create_echo(client, ok)
    client.create_function(
        FunctionName=failing,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": FAILING_HANDLER})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=failing, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    for _ in range(3):
        assert invoke(client, FunctionName=ok, Payload=b"{}")["StatusCode"] == 200
    invoke(client, FunctionName=ok, Payload=b"{}", InvocationType="Event")
    assert invoke(client, FunctionName=failing, Payload=b"{}")["FunctionError"] == "Unhandled"
    client.put_function_concurrency(FunctionName=failing, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as throttled:
        invoke(once(cluster), FunctionName=failing, Payload=b"{}")
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"

    # The event runs after its 202: wait until it is counted.
    async_key = ("lambdafleet_invocations_total", "success", "async")
    found = wait_for(lambda: (s := metric_samples(cluster, ok)).get(async_key) and s)
    assert found[("lambdafleet_invocations_total", "success", "sync")] == 3
    assert found[("lambdafleet_invocations_total", "success", "async")] == 1
    assert found[("lambdafleet_invocation_duration_seconds_count", "", "")] == 4
    assert found[("lambdafleet_invocation_duration_seconds_sum", "", "")] > 0
    assert found[("lambdafleet_cold_starts_total", "", "")] >= 1

    bad = metric_samples(cluster, failing)
    assert bad[("lambdafleet_invocations_total", "function_error", "sync")] == 1
    assert bad[("lambdafleet_invocations_total", "throttled", "sync")] == 1
    assert bad[("lambdafleet_errors_total", "function_error", "sync")] == 1
    assert bad[("lambdafleet_throttles_total", "", "sync")] == 1
    # The throttled call never ran: only the error has a duration.
    assert bad[("lambdafleet_invocation_duration_seconds_count", "", "")] == 1

    everything = cluster_samples(cluster)
    assert everything["lambdafleet_live_workers"][0].value == 1
    assert everything["lambdafleet_queued_events"][0].value >= 0
    workers = {s.labels["worker"] for s in everything["lambdafleet_worker_heartbeat_age_seconds"]}
    assert all(w.startswith(cluster.worker_prefix) for w in workers) and len(workers) == 1
    ready = sum(
        s.value
        for s in everything["lambdafleet_environments"]
        if s.labels["state"] in ("ready", "invoking")
    )
    assert ready >= 1  # the warm environment of `ok`, at least


def test_recent_invocations_say_how_each_ended(cluster: UpCluster, client: Any) -> None:
    name = f"recent-{uuid.uuid4().hex[:8]}"
    create_echo(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    first = invoke(client, FunctionName=name, Qualifier="live", Payload=b"{}")
    second = invoke(client, FunctionName=name, Payload=b"{}")
    request_ids = [r["ResponseMetadata"]["RequestId"] for r in (first, second)]

    _, body = get(cluster, f"/_fleet/invocations?function={name}")
    listed = json.loads(body)
    assert listed["capacity"] == 500
    newest, oldest = listed["invocations"]
    assert [newest["request_id"], oldest["request_id"]] == request_ids[::-1]
    assert oldest["qualifier"] == "live" and oldest["executed_version"] == "1"
    assert newest["qualifier"] == "" and newest["executed_version"] == "$LATEST"
    for record in (newest, oldest):
        assert record["outcome"] == "INVOCATION_OUTCOME_SUCCESS"
        assert record["worker_id"].startswith(cluster.worker_prefix)
        assert record["duration_ms"] > 0
        assert record["asynchronous"] is False
        assert abs(int(record["start_unix_ms"]) / 1000 - time.time()) < 600

    _, body = get(cluster, "/_fleet/functions")
    mine = [f for f in json.loads(body)["functions"] if f["function_name"] == name]
    assert len(mine) == 1
    assert mine[0]["state"] == "Active"
    assert (mine[0]["versions"], mine[0]["aliases"]) == (1, 1)
    assert "reserved_concurrency" not in mine[0]

    _, body = get(cluster, "/_fleet/stats?window=300")
    stats = json.loads(body)
    assert int(stats["invocations"]) >= 2
    assert 0 < stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert len(stats["seconds"]) == 300


def test_fleet_json_numbers_are_numbers(cluster: UpCluster, client: Any) -> None:
    # protobuf's JSON writes 64-bit integers as strings; /_fleet/ does not.
    name = f"numbers-{uuid.uuid4().hex[:8]}"
    create_echo(client, name)
    invoke(client, FunctionName=name, Payload=b"{}")
    _, body = get(cluster, f"/_fleet/invocations?function={name}&limit=1")
    (record,) = json.loads(body)["invocations"]
    assert isinstance(record["start_unix_ms"], int)
    _, body = get(cluster, "/_fleet/stats?window=60")
    stats = json.loads(body)
    for key in ("invocations", "errors", "throttles", "cold_starts"):
        assert isinstance(stats[key], int), key
    assert stats["invocations"] >= 1
    assert all(isinstance(second["unix_second"], int) for second in stats["seconds"])


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/_fleet/stats?window=99999999999999999999", "window"),
        ("/_fleet/stats?window=0", "window"),
        ("/_fleet/stats?window=100000", "window"),
        ("/_fleet/stats?window=ten", "window"),
        ("/_fleet/invocations?function=%00", "function"),
        ("/_fleet/invocations?limit=99999999999999999999", "limit"),
        ("/_fleet/invocations?limit=-1", "limit"),
        ("/_fleet/invocations?fnction=x", "fnction"),
        ("/_fleet/logs/f?since=99999999999999999999999", "since"),
        ("/_fleet/logs/f?since=" + "9" * 300 + "d", "since"),
        ("/_fleet/logs/f?follow=maybe", "follow"),
        ("/_fleet/logs/f?region=%00", "region"),
        ("/_fleet/logs/f?account=abc", "account"),
        ("/_fleet/status?verbose=1", "verbose"),
        ("/_fleet/health?x=1", "x"),
        ("/_fleet/functions?x=1", "x"),
        ("/_fleet/metrics?x=1", "x"),
        ("/_fleet/events?x=1", "x"),
    ],
)
def test_fleet_query_parameters_are_checked(cluster: UpCluster, path: str, parameter: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{cluster.endpoint}{path}", timeout=10)
    with err.value as response:
        assert response.code == 400
        assert response.headers["Content-Type"] == "application/json"
        body = json.loads(response.read())
    assert body["parameter"] == parameter
    assert body["message"].startswith(f"{parameter}: ")


def run_status(cluster: UpCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdafleet.cli", "status", "--endpoint", cluster.endpoint, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_command_shows_the_cluster(cluster: UpCluster, client: Any) -> None:
    name = f"status-{uuid.uuid4().hex[:8]}"
    create_echo(client, name)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    invoke(client, FunctionName=name, Payload=b"{}")

    shown = run_status(cluster)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"lambdafleet at {cluster.endpoint}: 1 live worker(s)")
    workers = lines[lines.index("WORKERS") + 2].split()
    assert workers[0].startswith(cluster.worker_prefix) and workers[1] == "live"
    environments = lines[lines.index("ENVIRONMENTS") + 1 : lines.index("FUNCTIONS")]
    assert any(line.split()[:2] == [name, "$LATEST"] for line in environments)
    functions = lines[lines.index("FUNCTIONS") :]
    row = next(line.split() for line in functions if line.startswith(name + " "))
    assert row[1:5] == ["000000000000", "us-east-1", "Active", "python3.11"]
    assert row[6] == "7"

    as_json = run_status(cluster, "--json")
    assert as_json.returncode == 0, as_json.stderr
    view = json.loads(as_json.stdout)
    assert view["status"]["live_workers"] == 1
    assert any(f["function_name"] == name for f in view["functions"])


def test_status_into_a_closed_pipe_ends_without_a_traceback(cluster: UpCluster) -> None:
    # `lambdafleet status --json | head -0`: the reader is gone before a byte is written.
    command = [sys.executable, "-m", "lambdafleet.cli", "status", "--json"]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        shown = subprocess.run(
            [*command, "--endpoint", cluster.endpoint],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert shown.stderr == ""
    assert shown.returncode == 1


@pytest.mark.parametrize(
    "command", [["gateway"], ["up", "--backend", "fake", "--data-dir", "{data}"]]
)
def test_a_port_in_use_ends_with_one_line_naming_the_flag(
    command: list[str], tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        args = [arg.format(data=tmp_path / "data") for arg in command]
        ended = subprocess.run(
            [sys.executable, "-m", "lambdafleet.cli", *args, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ended.returncode != 0
    assert "Traceback" not in ended.stderr
    assert ended.stderr.splitlines()[-1] == (
        f"lambdafleet {args[0]}: port {port} on 127.0.0.1 is in use; "
        "stop what holds it or choose another with --port"
    )


def test_status_command_fails_clearly_without_a_gateway() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdafleet.cli", "status", "--endpoint", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9/_fleet/status" in result.stderr


def test_events_stream_one_snapshot_after_another(cluster: UpCluster) -> None:
    request = urllib.request.Request(f"{cluster.endpoint}/_fleet/events")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        snapshots: list[dict[str, Any]] = []
        while len(snapshots) < 2:
            line = response.readline().decode()
            if line.startswith("data: "):
                snapshots.append(json.loads(line.removeprefix("data: ")))
    for snapshot in snapshots:
        assert set(snapshot) == {"time_unix_ms", "status", "functions", "stats", "recent"}
        assert snapshot["status"]["live_workers"] == 1
        assert snapshot["stats"]["window_seconds"] == 60
    assert snapshots[1]["time_unix_ms"] > snapshots[0]["time_unix_ms"]
