"""PackageType=Image functions: the user's image, built here from
lambdafleet's runtime image and tagged as if from a registry, runs on the
worker's daemon with the Runtime API; ImageConfig overrides its CMD; an image
neither on the daemon nor pullable fails the invocation, saying so."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE

APP = """
import os

def handler(event, context):
    return {"handler": "handler", "event": event, "api": os.environ["AWS_LAMBDA_RUNTIME_API"] != ""}

def other(event, context):
    return {"handler": "other", "cwd": os.getcwd()}
"""


@pytest.fixture(scope="module")
def image(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("image")
    (folder / "app.py").write_text(APP)
    (folder / "Dockerfile").write_text(
        'FROM lambdafleet/runtime:python3.11\nCOPY app.py /var/task/\nCMD ["app.handler"]\n'
    )
    tag = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/lambdafleet-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], check=True, timeout=300)
    yield tag
    subprocess.run(["docker", "rmi", tag], capture_output=True, timeout=60)


def _create(client: Any, name: str, uri: str, **extra: Any) -> None:
    client.create_function(
        FunctionName=name, PackageType="Image", Role=ROLE, Code={"ImageUri": uri}, **extra
    )


def _wait_active(client: Any, name: str) -> None:
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def test_image_function_runs_its_image(client: Any, image: str) -> None:
    name = f"image-{uuid.uuid4().hex[:8]}"
    _create(client, name, image)
    _wait_active(client, name)
    response = client.invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    assert "FunctionError" not in response
    assert json.load(response["Payload"]) == {"handler": "handler", "event": {"n": 1}, "api": True}
    client.delete_function(FunctionName=name)


def test_image_config_overrides_the_command(client: Any, image: str) -> None:
    name = f"image-cfg-{uuid.uuid4().hex[:8]}"
    _create(
        client,
        name,
        image,
        ImageConfig={"Command": ["app.other"], "WorkingDirectory": "/tmp"},
    )
    _wait_active(client, name)
    response = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    assert json.load(response["Payload"]) == {"handler": "other", "cwd": "/tmp"}
    client.delete_function(FunctionName=name)


def test_missing_image_fails_the_invocation_saying_so(client: Any) -> None:
    name = f"image-missing-{uuid.uuid4().hex[:8]}"
    # Nothing listens on this registry: the pull fails at once.
    uri = f"127.0.0.1:9/lambdafleet-test/missing:{uuid.uuid4().hex[:8]}"
    _create(client, name, uri)
    _wait_active(client, name)
    with pytest.raises(client.exceptions.ServiceException) as info:
        client.invoke(FunctionName=name, Payload=b"{}")
    assert f"Source image {uri} does not exist" in str(info.value)
    client.delete_function(FunctionName=name)
