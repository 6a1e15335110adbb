"""Function logs end to end, real: a function in a container prints, the
worker writes AWS's START/END/REPORT around its lines, LogType=Tail answers
them, and the control plane serves them through `GET /_fleet/logs` and
`lambdafleet logs`, wherever the function ran."""

from __future__ import annotations

import base64
import json
import math
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ROLE, lambda_client, role_of, zip_bytes
from conftest import UpCluster

PRINTER = """
def handler(event, context):
    for line in event.get("lines", []):
        print(line)
    return {"ok": True}
"""

REPORT = re.compile(
    r"REPORT RequestId: (?P<id>[0-9a-f-]+)\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: 128 MB\t"
    r"Max Memory Used: (?P<memory>\d+) MB\t(?:Init Duration: (?P<init>\d+\.\d\d) ms\t)?"
)
CLI_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<rest>.*)")


def create_printer(client: Any) -> str:
    name = f"logs-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": PRINTER})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def invoke(client: Any, name: str, lines: list[str], tail: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke(
        FunctionName=name,
        Payload=json.dumps({"lines": lines}),
        LogType="Tail" if tail else "None",
    )
    # Read, so its connection goes back to the pool instead of leaking.
    payload = response["Payload"].read()
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    return response


def tail_of(response: dict[str, Any]) -> list[str]:
    return base64.b64decode(response["LogResult"]).decode().split("\n")


def test_tail_holds_start_the_lines_end_and_report(client: Any) -> None:
    name = create_printer(client)
    cold = invoke(client, name, ["first line", "second line"], tail=True)
    rid = cold["ResponseMetadata"]["RequestId"]
    start, *printed, end, report, last = tail_of(cold)
    assert start == f"START RequestId: {rid} Version: $LATEST"
    assert printed == ["first line", "second line"]
    assert end == f"END RequestId: {rid}"
    assert last == ""  # every line ends in a newline, REPORT included
    match = REPORT.fullmatch(report)
    assert match is not None, report
    assert match["id"] == rid
    assert int(match["billed"]) == math.ceil(float(match["duration"]))
    assert int(match["memory"]) > 0
    assert match["init"] is not None, "a cold start reports its Init Duration"

    warm = invoke(client, name, ["again"], tail=True)
    rid = warm["ResponseMetadata"]["RequestId"]
    start, again, end, report, _ = tail_of(warm)
    assert (start, again, end) == (
        f"START RequestId: {rid} Version: $LATEST",
        "again",
        f"END RequestId: {rid}",
    )
    match = REPORT.fullmatch(report)
    assert match is not None and match["init"] is None, report

    # Without LogType=Tail there is no LogResult.
    assert "LogResult" not in invoke(client, name, ["quiet"])


def test_a_published_version_runs_under_its_version(client: Any) -> None:
    name = create_printer(client)
    version = client.publish_version(FunctionName=name)["Version"]
    client.get_waiter("function_active_v2").wait(FunctionName=name, Qualifier=version)
    response = client.invoke(FunctionName=name, Qualifier=version, LogType="Tail", Payload=b"{}")
    response["Payload"].read()
    assert tail_of(response)[0].endswith(f"Version: {version}")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdafleet.cli", "logs", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_lines(endpoint: str, name: str, until: str) -> list[str]:
    """`lambdafleet logs` output once it holds `until` (END and REPORT are
    written after the answer, and lines reach the control plane in batches)."""
    deadline = time.monotonic() + 30
    while True:
        done = run_cli(name, "--endpoint", endpoint)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        if any(until in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_cli_prints_two_invocations_in_order(cluster: UpCluster, client: Any) -> None:
    name = create_printer(client)
    one = invoke(client, name, ["line of one"])["ResponseMetadata"]["RequestId"]
    # The next invocation once this one's log is complete: a line Docker
    # delivers only after the next invocation began in the same environment
    # is counted as the next one's (README, "Function logs").
    cli_lines(cluster.endpoint, name, f"REPORT RequestId: {one}")
    two = invoke(client, name, ["line of two"])["ResponseMetadata"]["RequestId"]
    lines = cli_lines(cluster.endpoint, name, f"REPORT RequestId: {two}")
    rests = []
    for line in lines:
        match = CLI_LINE.fullmatch(line)
        assert match is not None, line
        rests.append(match["rest"])
    expected = [
        f"{one} START RequestId: {one} Version: $LATEST",
        f"{one} line of one",
        f"{one} END RequestId: {one}",
        f"{one} REPORT RequestId: {one}",
        f"{two} START RequestId: {two} Version: $LATEST",
        f"{two} line of two",
        f"{two} END RequestId: {two}",
        f"{two} REPORT RequestId: {two}",
    ]
    assert all(any(r.startswith(e) for r in rests) for e in expected), rests
    found = [next(i for i, r in enumerate(rests) if r.startswith(e)) for e in expected]
    assert found == sorted(found), rests


def test_cli_follow_shows_a_new_invocation(cluster: UpCluster, client: Any) -> None:
    name = create_printer(client)
    invoke(client, name, ["before following"])
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lambdafleet.cli",
            "logs",
            name,
            "--follow",
            "--since",
            "10m",
            "--endpoint",
            cluster.endpoint,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            seen.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_for_line(seen, "before following")
        rid = invoke(client, name, ["while following"])["ResponseMetadata"]["RequestId"]
        wait_for_line(seen, f"{rid} while following")
        wait_for_line(seen, f"{rid} REPORT RequestId: {rid}")
    finally:
        follower.terminate()
        follower.wait(30)
        assert follower.stdout is not None and follower.stderr is not None
        follower.stdout.close()
        follower.stderr.close()


def wait_for_line(seen: queue.Queue[str], text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = seen.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if text in line:
            return
    raise AssertionError(f"no line with {text!r} within {timeout} s")


def http_logs(endpoint: str, name: str, query: str = "") -> list[dict[str, Any]]:
    url = f"{endpoint}/_fleet/logs/{name}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in resp.read().decode().splitlines()]


def wait_for_message(endpoint: str, name: str, query: str, text: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        events = http_logs(endpoint, name, query)
        if any(text in e["message"] for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_logs_of_other_regions_and_accounts_are_separate(cluster: UpCluster) -> None:
    name = f"logs-{uuid.uuid4().hex[:10]}"
    places = {
        "": lambda_client(cluster.endpoint),
        "region=us-west-2": lambda_client(cluster.endpoint, "us-west-2"),
        "account=111111111111": lambda_client(cluster.endpoint, access_key="111111111111"),
    }
    # Each account passes a role of its own (AWS refuses another's).
    roles = {"account=111111111111": role_of("111111111111")}
    for query, client in places.items():
        client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=roles.get(query, ROLE),
            Handler="app.handler",
            Code={"ZipFile": zip_bytes({"app.py": PRINTER})},
        )
    for query, client in places.items():
        client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
        )
        invoke(client, name, [f"marker of {query or 'default'}"])
    for query in places:
        events = wait_for_message(cluster.endpoint, name, query, f"marker of {query or 'default'}")
        markers = {e["message"] for e in events if e["message"].startswith("marker of")}
        assert markers == {f"marker of {query or 'default'}"}, (query, markers)
        event = next(e for e in events if e["message"].startswith("marker of"))
        assert set(event) == {"timestamp", "request_id", "log_stream", "message"}
        assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", event["log_stream"])


def test_since_and_unknown_functions(cluster: UpCluster, client: Any) -> None:
    name = create_printer(client)
    invoke(client, name, ["old line"])
    wait_for_message(cluster.endpoint, name, "", "old line")
    future = int(time.time() * 1000) + 3_600_000
    assert http_logs(cluster.endpoint, name, f"since={future}") == []
    assert any(e["message"] == "old line" for e in http_logs(cluster.endpoint, name, "since=1h"))
    with pytest.raises(urllib.error.HTTPError) as missing:
        http_logs(cluster.endpoint, f"nope-{uuid.uuid4().hex[:8]}")
    with missing.value as error:
        assert error.code == 404
    with pytest.raises(urllib.error.HTTPError) as bad:
        http_logs(cluster.endpoint, name, "since=yesterday")
    with bad.value as error:
        assert error.code == 400
    done = run_cli(f"nope-{uuid.uuid4().hex[:8]}", "--endpoint", cluster.endpoint)
    assert done.returncode == 1 and "No function" in done.stderr


@pytest.fixture(scope="module")
def truncating_cluster(
    docker_daemon: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpCluster]:
    up = UpCluster(tmp_path_factory.mktemp("truncating"), env={"LAMBDA_TRUNCATE_STDOUT": "50"})
    up.start()
    yield up
    up.stop()


def test_a_line_longer_than_lambda_truncate_stdout_is_cut(truncating_cluster: UpCluster) -> None:
    client = truncating_cluster.client()
    name = create_printer(client)
    response = invoke(client, name, ["y" * 120, "short"], tail=True)
    _, long_line, short, *_ = tail_of(response)
    assert long_line == "y" * 50 + "..."
    assert short == "short"
    events = wait_for_message(truncating_cluster.endpoint, name, "", "short")
    assert "y" * 50 + "..." in [e["message"] for e in events]


def test_concurrent_invocations_report_truly(cluster: UpCluster, client: Any) -> None:
    """Eight callers at once of a function that succeeds: every REPORT line,
    in each caller's Tail and in the function's log, has a real Duration and
    no error status (an environment reused by the next caller before the
    first caller was answered wrote `Duration: 0.00 ms ... Status: error`)."""
    from concurrent.futures import ThreadPoolExecutor

    name = create_printer(client)
    callers, rounds = 8, 6

    def call(n: int) -> list[str]:
        request_ids = []
        for i in range(rounds):
            tail = i % 2 == 0
            response = invoke(client, name, [f"caller {n} round {i}"], tail=tail)
            rid = response["ResponseMetadata"]["RequestId"]
            request_ids.append(rid)
            if tail:
                reports = [x for x in tail_of(response) if x.startswith("REPORT")]
                assert len(reports) == 1, tail_of(response)
                match = REPORT.fullmatch(reports[0])
                assert match is not None and match["id"] == rid, reports
                assert float(match["duration"]) > 0, reports
        return request_ids

    with ThreadPoolExecutor(callers) as pool:
        request_ids = {rid for ids in pool.map(call, range(callers)) for rid in ids}
    assert len(request_ids) == callers * rounds
    deadline = time.monotonic() + 30
    while True:
        reports = [
            e["message"] for e in http_logs(cluster.endpoint, name) if "REPORT" in e["message"]
        ]
        if len(reports) >= len(request_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    matches = [REPORT.fullmatch(r) for r in reports]
    untrue = [r for r, m in zip(reports, matches, strict=True) if m is None]
    assert untrue == [], f"{len(untrue)} of {len(reports)} REPORT lines untrue: {untrue[:3]}"
    assert {m["id"] for m in matches if m is not None} == request_ids
    assert all(float(m["duration"]) > 0 for m in matches if m is not None)


RAISER = """
def handler(event, context):
    return event["name"]
"""


def test_a_python_error_keeps_its_line_breaks(cluster: UpCluster, client: Any) -> None:
    """awslambdaric writes an error and its traceback as one line joined by
    \\r; the log shows it as AWS's does: the error, then the traceback on
    lines of their own, in the Tail and in `lambdafleet logs`."""
    name = f"logs-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": RAISER})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    response = client.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    response["Payload"].read()
    assert response["FunctionError"] == "Unhandled"
    lines = tail_of(response)
    assert "\r" not in "".join(lines)
    error = lines.index("[ERROR] KeyError: 'name'")
    assert lines[error + 1] == "Traceback (most recent call last):"
    assert lines[error + 2].lstrip("\xa0 ").startswith('File "/var/task/app.py"')

    rid = response["ResponseMetadata"]["RequestId"]
    printed = cli_lines(cluster.endpoint, name, f"REPORT RequestId: {rid}")
    error = next(i for i, x in enumerate(printed) if x.endswith("[ERROR] KeyError: 'name'"))
    assert printed[error + 1] == "Traceback (most recent call last):"
