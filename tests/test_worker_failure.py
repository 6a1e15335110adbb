"""A worker dying, hanging or draining under a synchronous invocation, with
each part in its own process: what the caller gets, and when."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cluster import (
    CLIENTS,
    ROLE,
    Process,
    containers,
    environments,
    free_port,
    wait_healthy,
    zip_bytes,
)

TTL_MS = 2000

SLEEPER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0)}
"""


class Split:
    """Control plane, gateway and workers as separate processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cp_address = f"127.0.0.1:{free_port()}"
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self.prefix = f"wf-{uuid.uuid4().hex[:6]}"
        self.processes: list[Process] = []
        self.workers: dict[str, Process] = {}
        self.runs = 0

    def start(self) -> None:
        self.processes.append(
            Process(
                [
                    "control-plane",
                    "--listen",
                    self.cp_address,
                    "--data-dir",
                    str(self.root / "cp"),
                    "--heartbeat-ttl-ms",
                    str(TTL_MS),
                ],
                self.root / "cp.log",
            ).start()
        )
        port = self.endpoint.rsplit(":", 1)[1]
        self.processes.append(
            Process(
                ["gateway", "--control-plane", self.cp_address, "--port", port],
                self.root / "gw.log",
            ).start()
        )

    def worker(self, n: int) -> Process:
        self.runs += 1
        worker_id = f"{self.prefix}-{n}"
        process = Process(
            ["worker", "--worker-id", worker_id, "--control-plane", self.cp_address],
            self.root / f"worker-{n}-{self.runs}.log",
            env={"LAMBDAFLEET_CACHE_DIR": str(self.root / f"cache-{n}")},
        ).start()
        self.workers[worker_id] = process
        return process

    def stop(self) -> None:
        # A worker killed by a test left its containers: a new run of the
        # same worker removes them when it starts, as after a crash.
        try:
            for worker_id, process in list(self.workers.items()):
                assert process.proc is not None
                if process.proc.poll() is not None and self.containers(worker_id):
                    process.stop()  # closes its log
                    self.worker(int(worker_id.rsplit("-", 1)[1]))
                    deadline = time.monotonic() + 60
                    while self.containers(worker_id) and time.monotonic() < deadline:
                        time.sleep(0.2)
        finally:
            # Every process stops even when the check above failed.
            for process in [*self.workers.values(), *reversed(self.processes)]:
                process.stop()
        assert self.containers() == []

    def containers(self, worker_id: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in containers(label="lambdafleet.worker")
            if c["labels"]["lambdafleet.worker"].startswith(worker_id or self.prefix)
        ]

    def wait_workers(self, n: int) -> None:
        wait_healthy(self.endpoint, timeout=60, workers=n)

    def client(self) -> Any:
        """A client that never retries: botocore retries a 500, and the
        caller's first answer is what is tested."""
        client = boto3.client(
            "lambda",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
        )
        CLIENTS.append(client)
        return client


@pytest.fixture
def split(docker_daemon: None, tmp_path: Path) -> Iterator[Split]:
    cluster = Split(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def create_sleeper(client: Any) -> str:
    name = f"sleep-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": SLEEPER})},
        Timeout=60,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def invoke(client: Any, name: str, sleep: float = 0) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke(
        FunctionName=name, Payload=json.dumps({"sleep": sleep})
    )
    response["Payload"] = json.loads(response["Payload"].read())
    return response


class Call:
    """An invocation running in a thread; `done_at` is when it answered."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.done_at = 0.0
        self.thread = threading.Thread(target=self._run, args=(call,))
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except Exception as exc:
            self.result = exc
        self.done_at = time.monotonic()

    def wait(self, timeout: float = 60) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the caller is still waiting"
        return self.result


def warm(split: Split, client: Any, name: str) -> None:
    """One invocation first, so the one under test starts at once."""
    assert invoke(client, name)["StatusCode"] == 200


def assert_service_error(result: Any) -> None:
    assert isinstance(result, ClientError), result
    assert result.response["Error"]["Code"] == "ServiceException"
    assert result.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_killed_worker_answers_service_error_within_the_ttl(split: Split) -> None:
    worker = split.worker(1)
    split.wait_workers(1)
    client = split.client()
    name = create_sleeper(client)
    warm(split, client, name)
    call = Call(lambda: invoke(client, name, sleep=30))
    time.sleep(1.0)
    killed_at = time.monotonic()
    worker.stop(signal.SIGKILL)
    assert_service_error(call.wait())
    assert call.done_at - killed_at < TTL_MS / 1000 + 1
    # No new work goes to the dead worker: with none left, AWS's service
    # error at once; with another worker, the invocation runs there.
    started = time.monotonic()
    with pytest.raises(ClientError) as info:
        invoke(client, name)
    assert_service_error(info.value)
    assert time.monotonic() - started < 2
    split.worker(2)
    split.wait_workers(1)
    assert invoke(client, name)["Payload"] == {"slept": 0}


def test_hung_worker_answers_service_error_within_the_ttl(split: Split) -> None:
    """A stopped process keeps its connection open: only the missed
    heartbeats tell."""
    split.worker(1)
    split.worker(2)
    split.wait_workers(2)
    client = split.client()
    name = create_sleeper(client)
    # Long enough to outlast the TTL; short, as the resumed worker drains it
    # when the test stops it.
    call = Call(lambda: invoke(client, name, sleep=8))
    time.sleep(3.0)  # past the cold start
    # Which worker runs it: the one with the function's container.
    running = [env["worker_id"] for env in environments(split.endpoint, name)]
    assert len(running) == 1, running
    hung = split.workers[running[0]]
    assert hung.proc is not None
    stopped_at = time.monotonic()
    hung.proc.send_signal(signal.SIGSTOP)
    try:
        assert_service_error(call.wait())
        assert call.done_at - stopped_at < TTL_MS / 1000 + 1
        # The other worker takes the next invocations.
        assert invoke(client, name)["Payload"] == {"slept": 0}
    finally:
        hung.proc.send_signal(signal.SIGCONT)


def test_sigterm_drains_the_worker(split: Split) -> None:
    worker = split.worker(1)
    split.wait_workers(1)
    client = split.client()
    name = create_sleeper(client)
    warm(split, client, name)
    call = Call(lambda: invoke(client, name, sleep=3))
    time.sleep(1.0)
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # Draining: no new work is placed on it.
    with pytest.raises(ClientError) as info:
        invoke(client, name)
    assert_service_error(info.value)
    # The invocation in flight finishes, then the worker leaves cleanly.
    result = call.wait()
    assert not isinstance(result, Exception), result
    assert result["Payload"] == {"slept": 3}
    assert worker.proc.wait(30) == 0
    assert split.containers() == []
    assert '"event": "worker.drained"' in worker.output()


def running(prefix: str) -> list[dict[str, Any]]:
    """The running containers of workers whose id starts with `prefix`."""
    return [
        c
        for c in containers(label="lambdafleet.worker", status="running")
        if c["labels"]["lambdafleet.worker"].startswith(prefix)
    ]


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check` held; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_killed_workers_containers_stop_with_it(split: Split) -> None:
    """Nothing of a dead worker runs on: its busy handler neither, so a
    caller's retry cannot run the function twice at once."""
    worker = split.worker(1)
    split.wait_workers(1)
    client = split.client()
    name = create_sleeper(client)
    warm(split, client, name)
    call = Call(lambda: invoke(client, name, sleep=45))
    time.sleep(1.0)
    worker_id = f"{split.prefix}-1"
    assert running(worker_id)  # the busy one (and perhaps a pre-started pool)
    worker.stop(signal.SIGKILL)
    took = wait_for(lambda: not running(worker_id), TTL_MS / 1000 + 3)
    print(f"the dead worker's container stopped {took:.2f} s after the kill")
    assert_service_error(call.wait())


def test_a_worker_restarted_under_another_id_removes_what_the_previous_run_left(
    split: Split,
) -> None:
    worker = split.worker(1)
    split.wait_workers(1)
    client = split.client()
    name = create_sleeper(client)
    warm(split, client, name)
    first = f"{split.prefix}-1"
    assert split.containers(first)
    worker.stop(signal.SIGKILL)
    split.worker(2)
    split.wait_workers(1)
    # Removed once the new worker claimed its own id, before it takes work.
    wait_for(lambda: not split.containers(first), 30)
    assert invoke(client, name)["Payload"] == {"slept": 0}


def test_a_worker_that_lost_the_control_plane_stops_its_busy_environments(
    split: Split,
) -> None:
    """Past the TTL the control plane has answered the callers and counts
    the worker dead: what still runs for them stops."""
    split.worker(1)
    split.wait_workers(1)
    client = split.client()
    name = create_sleeper(client)
    warm(split, client, name)
    call = Call(lambda: invoke(client, name, sleep=45))
    time.sleep(1.0)
    worker_id = f"{split.prefix}-1"
    (busy,) = [env["container_id"] for env in environments(split.endpoint, name)]
    assert any(c["id"] == busy for c in running(worker_id))
    control_plane = split.processes[0].proc
    assert control_plane is not None
    control_plane.send_signal(signal.SIGSTOP)
    try:
        # (Idle environments and the pre-started pool may stay.)
        took = wait_for(lambda: all(c["id"] != busy for c in running(worker_id)), TTL_MS / 1000 + 3)
        print(f"the busy container stopped {took:.2f} s after the control plane was lost")
    finally:
        control_plane.send_signal(signal.SIGCONT)
    call.wait(130)
    worker_log = split.workers[worker_id].output()
    assert '"event": "worker.fenced"' in worker_log
