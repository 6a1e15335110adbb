"""Bad input gets AWS's error, and nothing already stored changes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from email.message import Message
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import ECHO_HANDLER, ROLE, create_echo, zip_bytes

GOOD_ZIP = zip_bytes({"app.py": ECHO_HANDLER})


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


@pytest.fixture
def existing(client: Any) -> dict[str, Any]:
    fn = f"keep-{uuid.uuid4().hex[:8]}"
    create_echo(client, fn)
    config: dict[str, Any] = client.get_function_configuration(FunctionName=fn)
    return config


def function_names(client: Any) -> set[str]:
    return {
        f["FunctionName"]
        for page in client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    }


def assert_unchanged(client: Any, existing: dict[str, Any]) -> None:
    now = client.get_function_configuration(FunctionName=existing["FunctionName"])
    for key in ("RevisionId", "CodeSha256", "Handler", "Runtime", "Role", "State"):
        assert now[key] == existing[key], key
    response = client.invoke(FunctionName=existing["FunctionName"], Payload=b'{"still": "works"}')
    assert json.loads(response["Payload"].read())["event"] == {"still": "works"}


def test_unknown_function(client: Any) -> None:
    r = error_of(client.invoke, FunctionName="does-not-exist", Payload=b"{}")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert r["Error"]["Code"] == "ResourceNotFoundException"
    assert r["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:does-not-exist:$LATEST"
    )
    r = error_of(client.delete_function, FunctionName="does-not-exist")
    assert r["Error"]["Code"] == "ResourceNotFoundException"


def test_duplicate_name_conflicts_and_keeps_the_original(
    client: Any, existing: dict[str, Any]
) -> None:
    r = error_of(
        client.create_function,
        FunctionName=existing["FunctionName"],
        Runtime="python3.11",
        Role=ROLE,
        Handler="other.handler",
        Code={"ZipFile": zip_bytes({"other.py": "x = 1"})},
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert r["Error"]["Code"] == "ResourceConflictException"
    assert r["Error"]["Message"] == f"Function already exist: {existing['FunctionName']}"
    assert_unchanged(client, existing)


def test_invalid_role_arn(client: Any, existing: dict[str, Any]) -> None:
    r = error_of(
        client.create_function,
        FunctionName="bad-role",
        Runtime="python3.11",
        Role="r1",
        Handler="app.handler",
        Code={"ZipFile": GOOD_ZIP},
    )
    assert r["Error"]["Code"] == "ValidationException"
    assert r["Error"]["Message"] == (
        "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
    )
    assert "bad-role" not in function_names(client)
    assert_unchanged(client, existing)


def test_invalid_function_name(client: Any) -> None:
    r = error_of(
        client.create_function,
        FunctionName="bad name!",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": GOOD_ZIP},
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"]["Code"] == "ValidationException"
    assert "at 'functionName' failed to satisfy constraint" in r["Error"]["Message"]
    r = error_of(client.get_function, FunctionName="x" * 300)  # the model allows 256
    assert r["Error"]["Code"] == "ValidationException"


def test_unsupported_and_deprecated_runtimes(client: Any) -> None:
    r = error_of(
        client.create_function,
        FunctionName="bad-runtime",
        Runtime="python2.99",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": GOOD_ZIP},
    )
    # Not a model check on AWS: its answer is InvalidParameterValueException.
    assert r["Error"]["Code"] == "InvalidParameterValueException"
    message = r["Error"]["Message"]
    assert message.startswith(
        "Value python2.99 at 'runtime' failed to satisfy constraint: "
        "Member must satisfy enum value set: ["
    )
    assert "python3.11" in message and message.endswith("] or be a valid ARN")
    r = error_of(
        client.create_function,
        FunctionName="old-runtime",
        Runtime="python3.7",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": GOOD_ZIP},
    )
    assert r["Error"]["Code"] == "InvalidParameterValueException"
    assert r["Error"]["Message"] == (
        "The runtime parameter of python3.7 is no longer supported for creating or updating AWS "
        "Lambda functions. We recommend you use a supported runtime while creating or updating "
        "functions."
    )
    assert not {"bad-runtime", "old-runtime"} & function_names(client)


def test_missing_handler(client: Any) -> None:
    r = error_of(
        client.create_function,
        FunctionName="no-handler",
        Runtime="python3.11",
        Role=ROLE,
        Code={"ZipFile": GOOD_ZIP},
    )
    assert r["Error"]["Code"] == "InvalidParameterValueException"
    assert r["Error"]["Message"] == (
        "Runtime and Handler are mandatory parameters for functions created with "
        "deployment packages."
    )
    assert "no-handler" not in function_names(client)


def test_zip_that_is_not_a_zip(client: Any) -> None:
    r = error_of(
        client.create_function,
        FunctionName="not-zip",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": b"this is not a zip file"},
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"]["Code"] == "InvalidParameterValueException"
    assert r["Error"]["Message"] == (
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    )
    assert "not-zip" not in function_names(client)


def raw(endpoint: str, method: str, path: str, body: bytes) -> tuple[int, Message, bytes]:
    """A request boto3 would never send; headers stay case-insensitive."""
    request = urllib.request.Request(
        f"{endpoint}{path}", data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_malformed_json_body(cluster: Any) -> None:
    status, headers, body = raw(
        cluster.endpoint, "POST", "/2015-03-31/functions", b'{"FunctionName": '
    )
    assert status == 400
    assert headers["x-amzn-ErrorType"].split(":")[0] in {
        "InvalidRequestContentException",
        "SerializationException",
    }
    assert json.loads(body)  # an AWS error document, not a traceback


def test_invalid_json_payload_on_invoke(client: Any, existing: dict[str, Any]) -> None:
    r = error_of(client.invoke, FunctionName=existing["FunctionName"], Payload=b"{not json")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"]["Code"] == "InvalidRequestContentException"
    assert r["Error"]["Message"].startswith(
        "Could not parse request body into json: Could not parse payload into json"
    )


def test_oversized_bodies(cluster: Any, client: Any, existing: dict[str, Any]) -> None:
    body = json.dumps(
        {
            "FunctionName": "huge",
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": "A" * 70_200_000},
        }
    ).encode()
    status, headers, payload = raw(cluster.endpoint, "POST", "/2015-03-31/functions", body)
    assert status == 413
    assert headers["x-amzn-ErrorType"].split(":")[0] == "RequestEntityTooLargeException"
    assert json.loads(payload)["message"] == (
        "Request must be smaller than 70167211 bytes for the CreateFunction operation"
    )
    r = error_of(
        client.invoke,
        FunctionName=existing["FunctionName"],
        Payload=json.dumps({"x": "a" * (6 * 1024 * 1024)}).encode(),
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert r["Error"]["Code"] == "RequestEntityTooLargeException"
    assert "huge" not in function_names(client)
    assert_unchanged(client, existing)
