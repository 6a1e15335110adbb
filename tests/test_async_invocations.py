"""Asynchronous (Event) invocations with real containers: delivery, AWS's
retries, OnSuccess/OnFailure destination records, and the queue surviving a
control plane restart.

The oracle is outside lambdafleet: every function here POSTs what it got to
an HTTP collector the test runs on the host, reached from the container at
the host address of its Runtime API (the worker's host). So each run of a
function is observed once it happened, whatever environment ran it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, Process, free_port, lambda_client, wait_healthy, zip_bytes

# Reports the event and, for a destination, nothing else; raises when the
# event asks to fail.
REPORTER = """
import json, os, urllib.request

def handler(event, context):
    host = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[0]
    body = json.dumps({
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "request_id": context.aws_request_id,
        "event": event,
    }).encode()
    url = "http://%s:%s/" % (host, os.environ["COLLECTOR_PORT"])
    urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10).read()
    if isinstance(event, dict) and event.get("fail"):
        raise Exception("intentional failure")
    return {"ok": True, "got": event}
"""


class Collector:
    """An HTTP server on the host that records what functions POST."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with collector._changed:
                    collector.reports.append(json.loads(body))
                    collector._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, function: str) -> list[dict[str, Any]]:
        with self._changed:
            return [r for r in self.reports if r["function"] == function]

    def wait(self, function: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.of(function)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{function}: {len(self.of(function))} of {count} reports: {self.reports}"
                    )
                self._changed.wait(remaining)
        return self.of(function)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def create_reporter(client: Any, name: str, collector: Collector) -> str:
    arn: str = client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": REPORTER})},
        Environment={"Variables": {"COLLECTOR_PORT": str(collector.port)}},
    )["FunctionArn"]
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return arn


def fn(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def invoke_event(client: Any, name: str, payload: dict[str, Any]) -> str:
    response = client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
    assert response["StatusCode"] == 202
    request_id: str = response["ResponseMetadata"]["RequestId"]
    return request_id


def test_event_runs_once_and_success_goes_to_on_success(client: Any, collector: Collector) -> None:
    source, target = fn("async-ok"), fn("async-dest")
    source_arn = create_reporter(client, source, collector)
    target_arn = create_reporter(client, target, collector)
    client.put_function_event_invoke_config(
        FunctionName=source, DestinationConfig={"OnSuccess": {"Destination": target_arn}}
    )
    request_id = invoke_event(client, source, {"hello": "world"})

    [record] = [r["event"] for r in collector.wait(target, 1)]
    [run] = collector.of(source)
    assert run["event"] == {"hello": "world"}
    # The function ran under the request id the caller got back, as on AWS.
    assert run["request_id"] == request_id
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{source_arn}:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"hello": "world"}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True, "got": {"hello": "world"}}
    time.sleep(1)  # well past any retry at this scale: it ran once
    assert len(collector.of(source)) == 1
    assert len(collector.of(target)) == 1


@pytest.mark.parametrize("retries", [None, 1])
def test_function_error_is_retried_then_goes_to_on_failure(
    client: Any, collector: Collector, retries: int | None
) -> None:
    source, target = fn("async-fail"), fn("async-dest")
    create_reporter(client, source, collector)
    target_arn = create_reporter(client, target, collector)
    settings: dict[str, Any] = {"DestinationConfig": {"OnFailure": {"Destination": target_arn}}}
    if retries is not None:
        settings["MaximumRetryAttempts"] = retries
    client.put_function_event_invoke_config(FunctionName=source, **settings)
    request_id = invoke_event(client, source, {"fail": True})

    [record] = [r["event"] for r in collector.wait(target, 1)]
    attempts = 1 + (2 if retries is None else retries)
    runs = collector.of(source)
    assert len(runs) == attempts
    # Every retry runs under the one request id of the event, as on AWS.
    assert {r["request_id"] for r in runs} == {request_id}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == attempts
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == {"fail": True}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    assert record["responsePayload"]["errorType"] == "Exception"


def test_queued_events_survive_a_control_plane_restart(
    docker_daemon: None, tmp_path: Path, collector: Collector
) -> None:
    cp_port, gw_port = free_port(), free_port()
    cp_address = f"127.0.0.1:{cp_port}"
    endpoint = f"http://127.0.0.1:{gw_port}"
    env = {"LAMBDAFLEET_CONTROL_PLANE": cp_address, "LAMBDAFLEET_ASYNC_DELAY_SCALE": "0.01"}

    def control_plane(run: int) -> Process:
        args = ["control-plane", "--listen", cp_address, "--data-dir", str(tmp_path / "cp")]
        return Process(args, tmp_path / f"cp-{run}.log", env=env).start()

    def worker(run: int) -> Process:
        args = ["worker", "--worker-id", f"async-{uuid.uuid4().hex[:6]}"]
        args += ["--cache-dir", str(tmp_path / "cache")]
        return Process(args, tmp_path / f"worker-{run}.log", env=env).start()

    cp = control_plane(1)
    gateway = Process(["gateway", "--port", str(gw_port)], tmp_path / "gw.log", env=env).start()
    processes = [gateway]
    try:
        w = worker(1)
        wait_healthy(endpoint)
        client = lambda_client(endpoint)
        name = fn("async-restart")
        create_reporter(client, name, collector)
        assert w.stop() == 0
        # No worker: accepted and queued, nothing can run them.
        sent = {invoke_event(client, name, {"n": n}) for n in range(3)}
        time.sleep(0.5)
        assert collector.of(name) == []
        assert cp.stop(signal.SIGTERM) == 0

        cp = control_plane(2)
        processes.append(worker(2))
        wait_healthy(endpoint, timeout=60)
        runs = collector.wait(name, 3)
        assert len(sent) == 3
        assert sorted(r["event"]["n"] for r in runs) == [0, 1, 2]
    finally:
        for p in processes:
            p.stop()
        cp.stop()
