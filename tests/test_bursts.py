"""Real containers: a burst of parallel cold invocations, and the keep-alive
stopping an idle environment."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, Process, environments, lambda_client, wait_healthy, zip_bytes
from conftest import UpCluster

SLEEPER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"request_id": context.aws_request_id}
"""

BURST = 8
KEEPALIVE_MS = 2000


def create_sleeper(client: Any) -> tuple[str, str]:
    name = f"burst-{uuid.uuid4().hex[:8]}"
    arn: str = client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": SLEEPER})},
        Timeout=60,
    )["FunctionArn"]
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name, arn


def invoke(client: Any, name: str, sleep: float = 0) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke(
        FunctionName=name, Payload=json.dumps({"sleep": sleep})
    )
    response["Payload"] = json.loads(response["Payload"].read())
    return response


def function_containers(up: UpCluster, name: str) -> list[str]:
    """The containers of the function's environments, as the cluster reports
    them (one bound from the pre-started pool carries no function label)."""
    return [env["container_id"] for env in environments(up.endpoint, name)]


def test_a_burst_of_cold_invocations_starts_one_environment_each(cluster: UpCluster) -> None:
    """More parallel cold starts than the worker creates at once (4): the
    rest queue for a start slot, none hangs, each gets its own environment."""
    client = cluster.client()
    name, _ = create_sleeper(client)
    started = time.monotonic()
    with ThreadPoolExecutor(BURST) as pool:
        # Each sleeps long enough that no environment frees up for another.
        results = list(pool.map(lambda _: invoke(client, name, sleep=3), range(BURST)))
    elapsed = time.monotonic() - started
    assert [r["StatusCode"] for r in results] == [200] * BURST
    assert not any("FunctionError" in r for r in results), results
    assert len({r["Payload"]["request_id"] for r in results}) == BURST
    assert len(set(function_containers(cluster, name))) == BURST
    assert elapsed < 60, elapsed
    # Warm now: the same burst again starts nothing new.
    with ThreadPoolExecutor(BURST) as pool:
        again = list(pool.map(lambda _: invoke(client, name, sleep=1), range(BURST)))
    assert [r["StatusCode"] for r in again] == [200] * BURST
    assert len(function_containers(cluster, name)) == BURST


@pytest.fixture
def short_keepalive(docker_daemon: None, tmp_path: Path) -> Iterator[UpCluster]:
    """A cluster of its own whose idle environments stop after 2 s."""
    up = UpCluster(tmp_path)
    up.process = Process(
        ["up", "--port", str(up.port), "--data-dir", str(up.data_dir)],
        tmp_path / "up.log",
        env={"LAMBDA_KEEPALIVE_MS": str(KEEPALIVE_MS)},
    ).start()
    try:
        wait_healthy(up.endpoint)
        yield up
    finally:
        assert up.stop() == 0


def test_an_idle_environment_stops_after_the_keepalive(short_keepalive: UpCluster) -> None:
    client = lambda_client(short_keepalive.endpoint)
    name, _ = create_sleeper(client)
    assert invoke(client, name)["StatusCode"] == 200
    (first,) = function_containers(short_keepalive, name)
    # Warm within the keep-alive: the same container answers.
    time.sleep(KEEPALIVE_MS / 4000)
    assert invoke(client, name)["StatusCode"] == 200
    assert function_containers(short_keepalive, name) == [first]
    idle_since = time.monotonic()
    while function_containers(short_keepalive, name):
        assert time.monotonic() - idle_since < KEEPALIVE_MS / 1000 + 10, "never stopped"
        time.sleep(0.2)
    assert time.monotonic() - idle_since >= KEEPALIVE_MS / 1000 - 0.5
    # The next invocation starts a new environment and succeeds.
    response = invoke(client, name)
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    (second,) = function_containers(short_keepalive, name)
    assert second != first
