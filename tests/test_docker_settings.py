"""LocalStack's container settings and /tmp, in real containers:
LAMBDA_DOCKER_FLAGS reaches the function (and an unsupported flag stops the
worker at start), LAMBDA_REMOVE_CONTAINERS=0 keeps stopped containers until
the worker stops, and /tmp is EphemeralStorage's size, the sandbox user's,
kept across warm invocations, and full (ENOSPC) beyond its size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import docker
from cluster import ROLE, environments, zip_bytes
from conftest import UpCluster

SETTINGS_HANDLER = """
import os

def handler(event, context):
    with open("/etc/hosts") as f:
        hosts = f.read()
    return {"flag": os.environ.get("FROM_FLAGS"), "host": "flagged.example" in hosts}
"""

TMP_HANDLER = """
import errno, os

def handler(event, context):
    op = event["op"]
    if op == "write":
        with open("/tmp/marker", "w") as f:
            f.write(event["value"])
        st = os.statvfs("/tmp")
        return {"size_mb": st.f_blocks * st.f_frsize // (1024 * 1024),
                "owner": os.stat("/tmp").st_uid, "uid": os.getuid()}
    if op == "read":
        with open("/tmp/marker") as f:
            return {"value": f.read()}
    written = 0
    chunk = b"x" * (16 * 1024 * 1024)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < 2048 * 1024 * 1024:
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as exc:
        os.unlink("/tmp/fill")
        return {"errno": errno.errorcode.get(exc.errno), "written_mb": written // (1024 * 1024)}
    return {"errno": None, "written_mb": written // (1024 * 1024)}
"""


def _invoke(client: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event))
    assert "FunctionError" not in response, response["Payload"].read()
    body: dict[str, Any] = json.load(response["Payload"])
    return body


def _create(client: Any, name: str, code: str, **extra: Any) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": code})},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def _container(container_id: str) -> dict[str, Any] | None:
    client = docker.from_env()
    try:
        attrs: dict[str, Any] = client.api.inspect_container(container_id)
        return attrs
    except docker.errors.NotFound:
        return None
    finally:
        client.close()


def test_docker_flags_and_kept_containers(docker_daemon: None, tmp_path: Path) -> None:
    up = UpCluster(
        tmp_path,
        env={
            "LAMBDA_DOCKER_FLAGS": "-e FROM_FLAGS=yes --add-host flagged.example:10.1.2.3",
            "LAMBDA_REMOVE_CONTAINERS": "0",
            # Idle environments stop soon: their containers are then kept.
            "LAMBDA_KEEPALIVE_MS": "1000",
        },
    )
    up.start()
    try:
        client = up.client()
        name = f"flags-{uuid.uuid4().hex[:8]}"
        _create(client, name, SETTINGS_HANDLER)
        assert _invoke(client, name, {}) == {"flag": "yes", "host": True}
        (env,) = environments(up.endpoint, name)
        container_id = env["container_id"]
        # The keep-alive stops the environment; its container stays, stopped.
        deadline = time.monotonic() + 60
        while environments(up.endpoint, name) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert environments(up.endpoint, name) == []
        kept = _container(container_id)
        while kept is not None and kept["State"]["Running"] and time.monotonic() < deadline:
            time.sleep(0.2)
            kept = _container(container_id)
        assert kept is not None, "the stopped environment's container was removed"
        assert not kept["State"]["Running"]
    finally:
        assert up.stop() == 0
    # Stopping the worker removes what it kept.
    assert _container(container_id) is None


def test_unsupported_docker_flag_stops_the_worker_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdafleet.cli", "worker", "--control-plane", "127.0.0.1:9"],
        env={**os.environ, "LAMBDA_DOCKER_FLAGS": "-e A=1 --privileged"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LAMBDA_DOCKER_FLAGS: --privileged is not allowed" in result.stderr


def test_tmp_is_ephemeral_storage_sized_kept_warm_and_full_beyond(client: Any) -> None:
    name = f"tmp-{uuid.uuid4().hex[:8]}"
    # /tmp is memory (a tmpfs): the function's memory must hold it.
    _create(client, name, TMP_HANDLER, MemorySize=1024, EphemeralStorage={"Size": 600})
    written = _invoke(client, name, {"op": "write", "value": "kept"})
    assert written == {"size_mb": 600, "owner": 993, "uid": 993}
    assert _invoke(client, name, {"op": "read"}) == {"value": "kept"}
    full = _invoke(client, name, {"op": "fill"})
    assert full["errno"] == "ENOSPC"
    assert full["written_mb"] < 600
    # Still the same environment, its /tmp intact.
    assert _invoke(client, name, {"op": "read"}) == {"value": "kept"}
    assert len(environments(client.meta.endpoint_url, name)) == 1
    client.delete_function(FunctionName=name)
