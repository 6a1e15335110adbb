"""The whole path, real: boto3 -> gateway -> control plane -> worker -> a
container running awslambdaric, on the local Docker daemon."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import ROLE, containers, create_echo, environments, zip_bytes
from conftest import UpCluster


def name() -> str:
    return f"fn-{uuid.uuid4().hex[:10]}"


def test_create_wait_invoke_returns_handler_value(client: Any) -> None:
    fn = name()
    created = create_echo(client, fn)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["State"] == "Pending"
    assert created["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in created

    config = client.get_function_configuration(FunctionName=fn)
    assert config["State"] == "Active"
    assert config["LastUpdateStatus"] == "Successful"
    assert config["RevisionId"] != created["RevisionId"]

    response = client.invoke(FunctionName=fn, Payload=json.dumps({"hello": "world"}))
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    body = json.loads(response["Payload"].read())
    assert body["event"] == {"hello": "world"}
    assert body["function"] == fn
    # The function's context.aws_request_id is the request id of the
    # caller's answer, as on AWS.
    assert body["request_id"] == response["ResponseMetadata"]["RequestId"]
    # Functions run as AWS's sandbox user, not root.
    assert body["user"] == 993


def test_warm_container_is_reused_and_labelled(cluster: UpCluster, client: Any) -> None:
    fn = name()
    create_echo(client, fn)
    for _ in range(3):
        assert client.invoke(FunctionName=fn, Payload=b"{}")["StatusCode"] == 200
    arn = client.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    found = environments(cluster.endpoint, fn)
    assert len(found) == 1, "three sequential invocations share one warm environment"
    (env,) = found
    assert env["function_arn"] == arn and env["version"] == "$LATEST"
    # Its counts are as of the worker's last heartbeat (one a third of the TTL).
    deadline = time.monotonic() + 15
    while (env["invocations"], env["state"]) != (3, "ENVIRONMENT_STATE_READY"):
        assert time.monotonic() < deadline, env
        time.sleep(0.2)
        (env,) = environments(cluster.endpoint, fn)
    # On the daemon: the worker's label, and a name that says whose it is,
    # whether it was created for the function or bound from the pre-started
    # pool (whose containers cannot be given the function's label later).
    (container,) = [
        c for c in containers(label="lambdafleet.worker") if c["id"] == env["container_id"]
    ]
    assert container["labels"]["lambdafleet.worker"] == env["worker_id"]
    assert env["worker_id"].startswith("up-")
    assert container["name"] == f"lambdafleet-{env['worker_id']}-{fn}-{env['environment_id'][:8]}"
    if not env["prestarted"]:
        assert container["labels"]["lambdafleet.function"] == arn


def test_get_list_delete_shapes(client: Any) -> None:
    fn = name()
    create_echo(client, fn, Environment={"Variables": {"MY_VAR": "1"}}, MemorySize=256, Timeout=5)
    got = client.get_function(FunctionName=fn)
    config = got["Configuration"]
    assert config["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fn}"
    assert config["Environment"] == {"Variables": {"MY_VAR": "1"}}
    assert config["MemorySize"] == 256 and config["Timeout"] == 5
    assert config["PackageType"] == "Zip" and config["Architectures"] == ["x86_64"]
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn}"}
    assert got["Code"]["RepositoryType"] == "S3"

    names = [
        f["FunctionName"]
        for page in client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    assert fn in names

    # The function can be addressed by its ARN as well as its name.
    assert (
        client.get_function(FunctionName=config["FunctionArn"])["Configuration"]["FunctionName"]
        == fn
    )

    delete = client.delete_function(FunctionName=fn)
    assert delete["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        client.get_function(FunctionName=fn)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.value.response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{fn}"
    )


def test_list_functions_pages(client: Any) -> None:
    prefix = name()
    for i in range(3):
        client.create_function(
            FunctionName=f"{prefix}-{i}",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c): return 1"})},
        )
    first = client.list_functions(MaxItems=1)
    assert len(first["Functions"]) == 1 and "NextMarker" in first
    pages = list(client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}))
    names = [f["FunctionName"] for p in pages for f in p["Functions"]]
    assert len(names) == len(set(names))
    assert {f"{prefix}-{i}" for i in range(3)} <= set(names)


def test_region_comes_from_the_signature(cluster: Any) -> None:
    fn = name()
    west = cluster.client("eu-west-1")
    east = cluster.client("us-east-1")
    create_echo(west, fn)
    arn = west.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    assert arn.startswith("arn:aws:lambda:eu-west-1:000000000000:function:")
    with pytest.raises(ClientError) as err:
        east.get_function(FunctionName=fn)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_function_error_is_reported_as_aws_does(client: Any) -> None:
    fn = name()
    client.create_function(
        FunctionName=fn,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={
            "ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    raise ValueError('boom')\n"})
        },
    )
    client.get_waiter("function_active_v2").wait(FunctionName=fn)
    response = client.invoke(FunctionName=fn, Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom"
    assert isinstance(body["stackTrace"], list)
    # The environment survives a handled-by-runtime error and serves again.
    assert client.invoke(FunctionName=fn, Payload=b"{}")["FunctionError"] == "Unhandled"


def test_aws_cli_invoke(cluster: Any, tmp_path: Path) -> None:
    """The README's AWS CLI command, as written there."""
    fn = name()
    create_echo(cluster.client(), fn)
    event = tmp_path / "event.json"
    event.write_text('{"from": "cli"}')
    out = tmp_path / "out.json"
    result = subprocess.run(
        [
            "aws",
            "lambda",
            "invoke",
            "--endpoint-url",
            cluster.endpoint,
            "--region",
            "us-east-1",
            "--function-name",
            fn,
            "--payload",
            f"fileb://{event}",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text())["event"] == {"from": "cli"}


def test_each_invocation_says_where_its_time_went(client: Any) -> None:
    """Server-Timing: each part's whole time, the parts it called included,
    and the environment's start on a cold start only."""
    fn = name()
    create_echo(client, fn)

    def timing() -> dict[str, float]:
        response = client.invoke(FunctionName=fn, Payload=b"{}")
        response["Payload"].read()
        header = response["ResponseMetadata"]["HTTPHeaders"]["server-timing"]
        parts = {}
        for entry in header.split(","):
            part, _, duration = entry.strip().partition(";dur=")
            parts[part] = float(duration)
        return parts

    cold, warm = timing(), timing()
    for parts in (cold, warm):
        assert parts["gateway"] >= parts["control-plane"] >= parts["worker"] >= parts["runtime"] > 0
    assert cold["worker"] >= cold["init"] > 0
    assert "init" not in warm
