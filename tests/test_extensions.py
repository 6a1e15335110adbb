"""External extensions with real containers: an extension in /opt/extensions
of a test image (FROM lambdafleet/runtime:python3.11, mapped to the runtime
with LAMBDA_RUNTIME_IMAGE_MAPPING in a cluster of its own) registers for
INVOKE and SHUTDOWN and reports everything it gets to a collector on the
host. It holds each invocation for a while: an environment must not run its
next invocation before the extension is done with the previous one, which
the test checks from the timestamps the extension and the function record,
never from how long anything took.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from cluster import ROLE, zip_bytes
from conftest import UpCluster
from test_async_invocations import Collector

IMAGE = "lambdafleet-test/extensions:python3.11"

EXTENSION = r"""#!/usr/bin/python3
import json, os, socket, time, urllib.request

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
base = "http://%s/2020-01-01/extension" % api
collector = "http://%s:%s/" % (api.rsplit(":", 1)[0], os.environ["COLLECTOR_PORT"])

def report(kind, **fields):
    body = {"function": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "kind": kind,
            "host": socket.gethostname(), "at": time.time(), **fields}
    urllib.request.urlopen(urllib.request.Request(collector, data=json.dumps(body).encode()),
                           timeout=10).read()

request = urllib.request.Request(
    base + "/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
    headers={"Lambda-Extension-Name": "recorder"}, method="POST")
with urllib.request.urlopen(request) as resp:
    ext_id = resp.headers["Lambda-Extension-Identifier"]
    report("registered", info=json.loads(resp.read()), status=resp.status)
while True:
    request = urllib.request.Request(
        base + "/event/next", headers={"Lambda-Extension-Identifier": ext_id})
    with urllib.request.urlopen(request) as resp:
        event = json.loads(resp.read())
    report("event", event=event)
    if event["eventType"] == "SHUTDOWN":
        break
    # Work after the function answered: the invocation ends only after this.
    time.sleep(1.5)
    report("done", request_id=event["requestId"])
"""

HANDLER = """
import socket, time

def handler(event, context):
    return {"started": time.time(), "host": socket.gethostname(),
            "request_id": context.aws_request_id}
"""


def build_image() -> None:
    dockerfile = "FROM lambdafleet/runtime:python3.11\nCOPY recorder /opt/extensions/recorder\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("recorder", EXTENSION)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client = docker.from_env()
    try:
        client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True)
    finally:
        client.close()


@pytest.fixture(scope="module")
def ext_cluster(
    docker_daemon: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpCluster]:
    build_image()
    up = UpCluster(
        tmp_path_factory.mktemp("ext"),
        env={
            "LAMBDA_RUNTIME_IMAGE_MAPPING": json.dumps({"python3.11": IMAGE}),
            "LAMBDA_KEEPALIVE_MS": "4000",
        },
    )
    up.start()
    yield up
    if up.process is not None and up.process.proc is not None and up.process.proc.poll() is None:
        up.stop()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def create(client: Any, name: str, collector: Collector) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": HANDLER})},
        Environment={"Variables": {"COLLECTOR_PORT": str(collector.port)}},
        Timeout=30,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def invoke(client: Any, name: str) -> dict[str, Any]:
    resp = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in resp, resp
    result: dict[str, Any] = json.loads(resp["Payload"].read())
    return result


def wait_for(collector: Collector, name: str, test: Any, timeout: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in collector.of(name) if test(r)]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no matching report of {name}: {collector.of(name)}")


def test_extension_lifecycle(ext_cluster: UpCluster, collector: Collector, tmp_path: Path) -> None:
    client = ext_cluster.client()
    name = f"ext-{uuid.uuid4().hex[:8]}"
    create(client, name, collector)

    first = invoke(client, name)
    # Right away, while the extension still holds the first invocation.
    second = invoke(client, name)
    for run in (first, second):
        wait_for(collector, name, lambda r, run=run: r.get("request_id") == run["request_id"])
    # Both environments are free again: this one runs warm in one of them.
    third = invoke(client, name)
    wait_for(collector, name, lambda r: r.get("request_id") == third["request_id"])

    reports = collector.of(name)
    registered = [r for r in reports if r["kind"] == "registered"]
    assert registered and all(r["status"] == 200 for r in registered)
    assert registered[0]["info"] == {
        "functionName": name,
        "functionVersion": "$LATEST",
        "handler": "app.handler",
    }
    events = {r["event"]["requestId"]: r for r in reports if r["kind"] == "event"}
    for run in (first, second, third):
        event = events[run["request_id"]]["event"]
        assert event["eventType"] == "INVOKE"
        assert event["invokedFunctionArn"].endswith(f":function:{name}")
        assert isinstance(event["deadlineMs"], int) and event["deadlineMs"] > 0
        assert event["tracing"]["type"] == "X-Amzn-Trace-Id"
        assert event["tracing"]["value"].startswith("Root=")
        # The extension got it in the environment that ran the function.
        assert events[run["request_id"]]["host"] == run["host"]

    # No environment ran an invocation before its extension was done with
    # the one before it.
    done = {r["request_id"]: r for r in reports if r["kind"] == "done"}
    runs = sorted((first, second, third), key=lambda r: r["started"])
    for later in runs:
        for earlier in runs:
            if earlier is later or earlier["host"] != later["host"]:
                continue
            if earlier["started"] < later["started"]:
                assert done[earlier["request_id"]]["at"] <= later["started"], (earlier, later)
    assert len({r["host"] for r in runs}) < len(runs), "no environment served twice"

    # The keep-alive stops both environments: each extension hears SHUTDOWN.
    hosts = {r["host"] for r in runs}
    shutdowns = wait_for(
        collector,
        name,
        lambda r: r["kind"] == "event" and r["event"]["eventType"] == "SHUTDOWN",
    )
    deadline = time.monotonic() + 90
    while {r["host"] for r in shutdowns} != hosts and time.monotonic() < deadline:
        time.sleep(0.2)
        shutdowns = [
            r
            for r in collector.of(name)
            if r["kind"] == "event" and r["event"]["eventType"] == "SHUTDOWN"
        ]
    assert {r["host"] for r in shutdowns} == hosts
    for r in shutdowns:
        assert r["event"]["shutdownReason"] == "spindown"
        assert r["event"]["deadlineMs"] > 0


def test_shutdown_on_worker_stop(ext_cluster: UpCluster, collector: Collector) -> None:
    client = ext_cluster.client()
    name = f"ext-stop-{uuid.uuid4().hex[:8]}"
    create(client, name, collector)
    run = invoke(client, name)
    wait_for(collector, name, lambda r: r.get("request_id") == run["request_id"])
    assert ext_cluster.stop() == 0
    shutdowns = wait_for(
        collector,
        name,
        lambda r: r["kind"] == "event" and r["event"]["eventType"] == "SHUTDOWN",
        timeout=5,
    )
    assert shutdowns[0]["host"] == run["host"]
    assert shutdowns[0]["event"]["shutdownReason"] == "spindown"
