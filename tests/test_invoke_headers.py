"""The headers of Invoke's answers: JSON for a payload, a function error and
an Event's 202 (a 204 carries no body, so no Content-Type either); for
InvokeWithResponseStream, the model binds Content-Type to
ResponseStreamContentType. The recordings keep no headers (the recorder
dropped them), so the service model and AWS's documentation are the
reference."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from cluster import ROLE, create_echo, zip_bytes

FAILING = "def handler(event, context):\n    raise ValueError('no')\n"


def content_type(response: dict[str, Any]) -> str:
    value: str = response["ResponseMetadata"]["HTTPHeaders"]["content-type"]
    return value


@pytest.fixture(scope="module")
def echo(cluster: Any) -> str:
    name = f"headers-{uuid.uuid4().hex[:8]}"
    create_echo(cluster.client(), name)
    return name


@pytest.mark.parametrize(("invocation_type", "status"), [("RequestResponse", 200), ("Event", 202)])
def test_invoke_answers_json(client: Any, echo: str, invocation_type: str, status: int) -> None:
    response = client.invoke(FunctionName=echo, Payload=b"{}", InvocationType=invocation_type)
    response["Payload"].read()
    assert response["StatusCode"] == status
    assert content_type(response) == "application/json"


def test_dry_run_answers_no_content(client: Any, echo: str) -> None:
    response = client.invoke(FunctionName=echo, Payload=b"{}", InvocationType="DryRun")
    assert response["Payload"].read() == b""
    assert response["StatusCode"] == 204
    assert "content-type" not in response["ResponseMetadata"]["HTTPHeaders"]


def test_function_error_answers_json(client: Any) -> None:
    name = f"headers-fail-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": FAILING})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    response = client.invoke(FunctionName=name, Payload=b"{}")
    response["Payload"].read()
    assert response["FunctionError"] == "Unhandled"
    assert content_type(response) == "application/json"


def test_response_stream_content_type_is_the_streams(client: Any, echo: str) -> None:
    response = client.invoke_with_response_stream(FunctionName=echo, Payload=b"{}")
    assert list(response["EventStream"])[-1] == {"InvokeComplete": {}}
    assert response["ResponseStreamContentType"] == "application/octet-stream"
    assert content_type(response) == "application/octet-stream"


def test_read_answers_carry_no_etag(cluster: Any, client: Any, echo: str) -> None:
    """AWS's API answers have no ETag; Tornado's default would put a SHA-1 of
    every GET answer there and answer a matching If-None-Match with 304."""
    arn = client.get_function(FunctionName=echo)["Configuration"]["FunctionArn"]
    for response in (
        client.get_function(FunctionName=echo),
        client.list_functions(),
        client.list_tags(Resource=arn),
    ):
        assert "etag" not in response["ResponseMetadata"]["HTTPHeaders"]
    request = urllib.request.Request(
        f"{cluster.endpoint}/2015-03-31/functions/{echo}", headers={"If-None-Match": "*"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        assert json.loads(answer.read())["Configuration"]["FunctionName"] == echo
