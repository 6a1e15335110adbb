"""The parts as a user runs them: shutdown, restart, crash, and separate
processes reconnecting after a control plane restart."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from cluster import (
    Process,
    containers,
    create_echo,
    environments,
    free_port,
    lambda_client,
    wait_healthy,
)


def containers_of(worker_prefix: str) -> list[dict[str, Any]]:
    return [
        c
        for c in containers(label="lambdafleet.worker")
        if c["labels"]["lambdafleet.worker"].startswith(worker_prefix)
    ]


def up(tmp: Path, port: int, run: int) -> Process:
    process = Process(
        ["up", "--port", str(port), "--data-dir", str(tmp / "data")], tmp / f"up-{run}.log"
    ).start()
    wait_healthy(f"http://127.0.0.1:{port}")
    return process


def invoke(client: Any, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload))
    assert "FunctionError" not in response
    body: dict[str, Any] = json.loads(response["Payload"].read())
    return body


def test_sigterm_cleans_up_and_restart_keeps_functions(docker_daemon: None, tmp_path: Path) -> None:
    port = free_port()
    client = lambda_client(f"http://127.0.0.1:{port}")
    name = f"persist-{uuid.uuid4().hex[:8]}"

    first = up(tmp_path, port, 1)
    create_echo(client, name)
    assert invoke(client, name, {"run": 1})["event"] == {"run": 1}
    (running,) = environments(f"http://127.0.0.1:{port}", name)
    worker_id = running["worker_id"]
    assert running["container_id"] in [c["id"] for c in containers_of(worker_id)]

    assert first.stop(signal.SIGTERM) == 0
    assert containers_of(worker_id) == [], "SIGTERM must remove every container it started"

    second = up(tmp_path, port, 2)
    try:
        config = client.get_function_configuration(FunctionName=name)
        assert config["State"] == "Active"
        assert invoke(client, name, {"run": 2})["event"] == {"run": 2}
    finally:
        assert second.stop(signal.SIGINT) == 0
    assert containers_of(worker_id) == []


def test_restart_after_a_crash_removes_orphans(docker_daemon: None, tmp_path: Path) -> None:
    port = free_port()
    client = lambda_client(f"http://127.0.0.1:{port}")
    name = f"crash-{uuid.uuid4().hex[:8]}"
    first = up(tmp_path, port, 1)
    create_echo(client, name)
    invoke(client, name, {})
    (env,) = environments(f"http://127.0.0.1:{port}", name)
    worker_id = env["worker_id"]

    first.stop(signal.SIGKILL)  # no chance to clean up
    # The function's container and any of the pre-started pool are left.
    orphans = {c["id"] for c in containers_of(worker_id)}
    assert env["container_id"] in orphans

    second = up(tmp_path, port, 2)
    try:
        assert not orphans & {c["id"] for c in containers_of(worker_id)}
        assert invoke(client, name, {"after": "crash"})["event"] == {"after": "crash"}
    finally:
        second.stop()


def test_separate_processes_and_control_plane_restart(docker_daemon: None, tmp_path: Path) -> None:
    cp_port, gw_port = free_port(), free_port()
    cp_address = f"127.0.0.1:{cp_port}"
    endpoint = f"http://127.0.0.1:{gw_port}"
    worker_id = f"proc-{uuid.uuid4().hex[:6]}"

    def control_plane(run: int) -> Process:
        return Process(
            [
                "control-plane",
                "--listen",
                cp_address,
                "--data-dir",
                str(tmp_path / "cp"),
                "--heartbeat-ttl-ms",
                "3000",
            ],
            tmp_path / f"cp-{run}.log",
        ).start()

    cp = control_plane(1)
    gateway = Process(
        ["gateway", "--control-plane", cp_address, "--port", str(gw_port)], tmp_path / "gw.log"
    ).start()
    # The worker's address flags also come from the environment.
    worker = Process(
        ["worker", "--worker-id", worker_id, "--cache-dir", str(tmp_path / "cache")],
        tmp_path / "worker.log",
        env={"LAMBDAFLEET_CONTROL_PLANE": cp_address},
    ).start()
    try:
        assert wait_healthy(endpoint) == {"status": "ok", "workers": 1}
        client = lambda_client(endpoint)
        name = f"split-{uuid.uuid4().hex[:8]}"
        create_echo(client, name)
        assert invoke(client, name, {"n": 1})["event"] == {"n": 1}

        assert cp.stop() == 0
        # Without a control plane the gateway answers, but not healthy.
        time.sleep(0.5)
        cp = control_plane(2)
        # The worker registers again by itself; state came back from disk.
        wait_healthy(endpoint, timeout=60)
        assert invoke(client, name, {"n": 2})["event"] == {"n": 2}
        assert '"event": "worker.registered"' in worker.output()
    finally:
        for process in (gateway, worker, cp):
            process.stop()
    assert containers_of(worker_id) == []
