"""Hot reloading with real containers: Code.S3Bucket "hot-reload" and S3Key
a folder on the worker's host, mounted at /var/task. An edit reaches the
next invocations without a new container (the runtime process restarts,
/tmp stays), with file events and with the polling fallback."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE
from conftest import UpCluster

HANDLER = """
import os, socket

VERSION = {version!r}

def handler(event, context):
    marker = "/tmp/warm-marker"
    survived = os.path.exists(marker)
    with open(marker, "w") as f:
        f.write("x")
    return {{"version": VERSION, "host": socket.gethostname(), "tmp_survived": survived}}
"""


def write(folder: Path, version: str) -> None:
    # Written aside and renamed in, as editors do: never a half-written file.
    tmp = folder / ".app.py.tmp"
    tmp.write_text(HANDLER.format(version=version))
    tmp.replace(folder / "app.py")


def invoke(client: Any, name: str) -> dict[str, Any]:
    resp = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in resp, resp["Payload"].read()
    result: dict[str, Any] = json.loads(resp["Payload"].read())
    return result


def hot_reload_roundtrip(up: UpCluster, folder: Path) -> None:
    folder.mkdir()
    folder.chmod(0o755)
    write(folder, "one")
    client = up.client()
    name = f"hot-{uuid.uuid4().hex[:8]}"
    created = client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"S3Bucket": "hot-reload", "S3Key": str(folder)},
    )
    assert created["CodeSha256"] == "hot-reloading-hash-not-available"
    assert created["CodeSize"] == 0
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    first = invoke(client, name)
    assert first["version"] == "one"
    assert not first["tmp_survived"]

    write(folder, "two")
    deadline = time.monotonic() + 10
    latest = first
    while latest["version"] != "two":
        assert time.monotonic() < deadline, f"the edit did not arrive within 10 s: {latest}"
        time.sleep(0.1)
        latest = invoke(client, name)
    # The same container, its runtime restarted: warm /tmp survived.
    assert latest["host"] == first["host"]
    assert latest["tmp_survived"]
    assert client.get_function(FunctionName=name)["Code"]["Location"].endswith(str(folder))


@pytest.fixture
def hot_cluster(
    request: pytest.FixtureRequest, docker_daemon: None, tmp_path: Path
) -> Iterator[UpCluster]:
    up = UpCluster(tmp_path / "up", env=request.param)
    up.root.mkdir()
    up.start()
    yield up
    up.stop()


@pytest.mark.parametrize("hot_cluster", [{}], indirect=True, ids=["file-events"])
def test_hot_reload_with_file_events(hot_cluster: UpCluster, tmp_path: Path) -> None:
    hot_reload_roundtrip(hot_cluster, tmp_path / "code")


@pytest.mark.parametrize(
    "hot_cluster", [{"LAMBDAFLEET_HOT_RELOAD_POLL_MS": "200"}], indirect=True, ids=["polling"]
)
def test_hot_reload_by_polling(hot_cluster: UpCluster, tmp_path: Path) -> None:
    hot_reload_roundtrip(hot_cluster, tmp_path / "code")


def test_marker_bucket_needs_an_absolute_path(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.create_function(
            FunctionName=f"hot-{uuid.uuid4().hex[:8]}",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"S3Bucket": "hot-reload", "S3Key": "relative/folder"},
        )
