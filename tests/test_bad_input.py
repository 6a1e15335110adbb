"""Bad input gets AWS's error, and nothing already stored changes."""

from __future__ import annotations

import base64
import json
import socket
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


# -- numbers beyond Java's int and long, long and non-ASCII request lines ----------------

BEYOND_INT64 = "99999999999999999999"
INT_RANGE = "out of range of int (-2147483648 - 2147483647)"
CREATE_OVERFLOW = {
    "FunctionName": "overflow",
    "Runtime": "python3.11",
    "Role": ROLE,
    "Handler": "app.handler",
    "Code": {"ZipFile": base64.b64encode(GOOD_ZIP).decode()},
}


@pytest.mark.parametrize(
    ("method", "path", "document", "member"),
    [
        ("POST", "/2015-03-31/functions", CREATE_OVERFLOW, "Timeout"),
        ("PUT", "/2015-03-31/functions/{fn}/configuration", {}, "Timeout"),
        ("PUT", "/2017-10-31/functions/{fn}/concurrency", {}, "ReservedConcurrentExecutions"),
        (
            "PUT",
            "/2019-09-30/functions/{fn}/provisioned-concurrency?Qualifier=1",
            {},
            "ProvisionedConcurrentExecutions",
        ),
    ],
)
def test_numbers_beyond_int_in_json_bodies(
    cluster: Any,
    client: Any,
    existing: dict[str, Any],
    method: str,
    path: str,
    document: dict[str, Any],
    member: str,
) -> None:
    # The exact digits on the wire: json.dumps of a Python int would do,
    # but says less about what is sent.
    body = json.dumps({**document, member: 0}).replace(
        f'"{member}": 0', f'"{member}": {BEYOND_INT64}'
    )
    target = path.format(fn=existing["FunctionName"])
    status, headers, payload = raw(cluster.endpoint, method, target, body.encode())
    assert status == 400, payload
    assert headers["x-amzn-ErrorType"].split(":")[0] == "InvalidRequestContentException"
    message = json.loads(payload)["message"]
    assert message.startswith(
        f"Could not parse request body into json: Numeric value ({BEYOND_INT64}) {INT_RANGE}"
    )
    assert f'["{member}"]' in message
    assert "overflow" not in function_names(client)
    assert_unchanged(client, existing)


def test_numbers_beyond_int_in_query_strings(cluster: Any) -> None:
    for query in (f"MaxItems={BEYOND_INT64}", "MaxItems=2147483648", "MaxItems=" + "9" * 5000):
        status, headers, payload = raw(
            cluster.endpoint, "GET", f"/2015-03-31/functions/?{query}", b""
        )
        assert status == 400, payload
        assert headers["x-amzn-ErrorType"].split(":")[0] == "SerializationException"
        assert (
            "can not be converted to an Integer (at 'maxItems')" in json.loads(payload)["message"]
        )


def test_the_largest_int_is_not_refused_as_a_number(
    cluster: Any, client: Any, existing: dict[str, Any]
) -> None:
    # In range for the wire: what answers is the account's limit.
    r = error_of(
        client.put_function_concurrency,
        FunctionName=existing["FunctionName"],
        ReservedConcurrentExecutions=2**31 - 1,
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"]["Code"] == "InvalidParameterValueException"
    assert_unchanged(client, existing)


def request_line(endpoint: str, target: bytes) -> bytes:
    """A GET of `target` exactly as given (raw bytes, any length), and the
    whole answer; a connection reset raises."""
    host, port = endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "target",
    [
        b"/2015-03-31/functions/" + b"a" * 1_000_000 + b"/configuration",
        b"/2015-03-31/functions/f/configuration?Qualifier=" + b"a" * 1_000_000,
        b"/2015-03-31/functions/?Marker=" + b"a" * 1_000_000,
        b"/_fleet/stats?window=" + b"1" * 1_000_000,
    ],
)
def test_a_megabyte_long_request_line_is_answered_414(cluster: Any, target: bytes) -> None:
    answer = request_line(cluster.endpoint, target)
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]


def test_raw_utf8_in_a_path_is_echoed_intact(cluster: Any) -> None:
    name = "fénctïon-中"
    answer = request_line(cluster.endpoint, f"/2015-03-31/functions/{name}/configuration".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"x-amzn-errortype: validationexception" in head.lower()
    message = json.loads(body.decode("utf-8"))["message"]
    assert message.startswith(
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
    )
    # A query value that is not UTF-8 at all fails validation too, not the request.
    answer = request_line(cluster.endpoint, b"/2015-03-31/functions/f/configuration?Qualifier=%ff")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"at 'qualifier' failed to satisfy constraint" in answer
