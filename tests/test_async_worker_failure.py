"""An Event invocation whose worker is SIGKILLed mid-run goes back to the
queue and runs again on another worker: at least once, nothing lost.

The oracle is the collector on the host (test_async_invocations.py): the
function reports when it starts and when it finishes, with the container it
ran in.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, environments, zip_bytes
from test_async_invocations import Collector
from test_worker_failure import Split

# Reports "start", sleeps, reports "finish".
SLOW_REPORTER = """
import json, os, socket, time, urllib.request

def report(phase, context):
    host = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[0]
    body = json.dumps({
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "request_id": context.aws_request_id,
        "phase": phase,
        "sandbox": socket.gethostname(),
    }).encode()
    url = "http://%s:%s/" % (host, os.environ["COLLECTOR_PORT"])
    urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10).read()

def handler(event, context):
    report("start", context)
    time.sleep(event.get("sleep", 0))
    report("finish", context)
    return {"ok": True}
"""


@pytest.fixture
def split(docker_daemon: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Split]:
    # Retries of a system error after milliseconds, not seconds.
    monkeypatch.setenv("LAMBDAFLEET_ASYNC_DELAY_SCALE", "0.01")
    cluster = Split(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def create_slow_reporter(client: Any, collector: Collector) -> str:
    name = f"slow-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": SLOW_REPORTER})},
        Environment={"Variables": {"COLLECTOR_PORT": str(collector.port)}},
        Timeout=60,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def phases(reports: list[dict[str, Any]]) -> list[str]:
    return [r["phase"] for r in reports]


def test_an_event_on_a_killed_worker_runs_again_elsewhere(
    split: Split, collector: Collector
) -> None:
    split.worker(1)
    split.worker(2)
    split.wait_workers(2)
    client = split.client()
    name = create_slow_reporter(client, collector)
    response = client.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"sleep": 2})
    )
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    (first,) = collector.wait(name, 1, timeout=60)
    assert first["phase"] == "start" and first["request_id"] == request_id
    # Which worker runs it: the one holding the function's container.
    running = [env["worker_id"] for env in environments(split.endpoint, name)]
    assert len(running) == 1, running
    split.workers[running[0]].stop(signal.SIGKILL)
    killed_at = time.monotonic()
    # The event is retried on the surviving worker and runs to the end.
    deadline = time.monotonic() + 60
    while not [r for r in collector.of(name) if r["sandbox"] != first["sandbox"]][1:]:
        assert time.monotonic() < deadline, collector.of(name)
        time.sleep(0.2)
    # Nothing runs a third time.
    time.sleep(1.0)
    reports = collector.of(name)
    assert {r["request_id"] for r in reports} == {request_id}
    retried = [r for r in reports if r["sandbox"] != first["sandbox"]]
    assert phases(retried) == ["start", "finish"], reports
    # The killed worker's container outlives it (an orphan, removed when the
    # worker comes back), so the first run may report its finish too.
    killed = [r for r in reports if r["sandbox"] == first["sandbox"]]
    assert phases(killed) in (["start"], ["start", "finish"]), reports
    assert time.monotonic() - killed_at < 60
