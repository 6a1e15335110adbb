"""Invoke answers as AWS's recorded ones (test_lambda.snapshot.json): status,
headers, error types and messages of TestLambdaErrors, TestLambdaBehavior,
TestLambdaFeatures, TestRequestIdHandling and TestLambdaBaseFeatures, plus
payload limits, client context and response streaming, through boto3
against a real cluster and real containers."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError
from cluster import environments
from conftest import UpCluster
from lambdafleet.gateway.app import check_request_size
from lambdafleet.gateway.protocol import AwsError
from lambdafleet.worker.pool import exit_error, exit_reason
from lambdafleet.worker.runtime_api import (
    MAX_RESPONSE_BYTES,
    response_too_large,
    runtime_client_context,
)
from test_runtimes import Functions

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda.snapshot.json").read_text()
)
PREFIX = "tests/aws/services/lambda_/test_lambda.py::"
PYTHON = "python3.13"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def recorded(test: str, step: str) -> dict[str, Any]:
    content: dict[str, Any] = RECORDED[PREFIX + test]["recorded-content"][step]
    return content


@pytest.fixture
def functions(client: Any) -> Iterator[Functions]:
    made = Functions(client)
    yield made
    for name in made.names:
        client.delete_function(FunctionName=name)


def python(functions: Functions, handler: str, **extra: Any) -> str:
    config = functions.create(PYTHON, f"{handler}", "invoke", **extra)
    name: str = config["FunctionName"]
    return name


def shape(response: dict[str, Any]) -> dict[str, Any]:
    """The members the recorder kept: status, executed version, function error."""
    return {
        k: response[k] for k in ("StatusCode", "ExecutedVersion", "FunctionError") if k in response
    }


def assert_error_like(response: dict[str, Any], payload: Any, step: dict[str, Any]) -> None:
    """Same status and headers as recorded; the same error document, its
    `<uuid>` placeholder standing for the invocation's request id."""
    assert shape(response) == shape(step)
    request_id = response["ResponseMetadata"]["RequestId"]
    expected = json.loads(json.dumps(step["Payload"]).replace("<uuid>", request_id))
    assert payload == expected


# -- TestLambdaErrors ---------------------------------------------------------


def test_handler_error(functions: Functions) -> None:
    name = python(functions, "handlers.handler_error")
    response, payload = functions.invoke(name, {})
    step = recorded("TestLambdaErrors::test_lambda_handler_error", "invocation_error")
    assert shape(response) == shape(step)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert payload["errorMessage"] == step["Payload"]["errorMessage"]
    assert payload["errorType"] == step["Payload"]["errorType"]
    assert payload["requestId"] == request_id
    (frame,) = payload["stackTrace"]
    assert frame.startswith('  File "/var/task/handlers.py", line ')
    assert frame.endswith(', in handler_error\n    raise Exception("Handler fails")\n')


def test_init_error_at_import(functions: Functions) -> None:
    name = python(functions, "init_error.handler")
    response, payload = functions.invoke(name, {})
    step = recorded("TestLambdaErrors::test_lambda_runtime_error", "invocation_error")
    assert shape(response) == shape(step)
    for key in ("errorMessage", "errorType", "requestId"):
        assert payload[key] == step["Payload"][key], key
    assert payload["stackTrace"][-1] == step["Payload"]["stackTrace"][-1].replace(
        "lambda_runtime_error.py", "init_error.py"
    )
    # A failed init is not kept: the next invocation initialises again.
    again, payload = functions.invoke(name, {})
    assert shape(again) == shape(step) and payload["errorMessage"] == "Runtime startup fails"


def test_runtime_exit_at_init(functions: Functions) -> None:
    name = python(functions, "runtime_exit.handler")
    response, payload = functions.invoke(name, {})
    assert_error_like(
        response,
        payload,
        recorded("TestLambdaErrors::test_lambda_runtime_exit", "invocation_error"),
    )


def test_handler_exit_and_environment_replaced(functions: Functions) -> None:
    name = python(functions, "handlers.handler_exit")
    response, payload = functions.invoke(name, {})
    assert_error_like(
        response,
        payload,
        recorded("TestLambdaErrors::test_lambda_handler_exit", "invocation_error"),
    )
    # The crashed environment is replaced: the next one fails the same way,
    # as a fresh runtime (not a refused or hung call).
    again, payload = functions.invoke(name, {})
    assert again["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"


def test_handler_exit_with_status(functions: Functions, client: Any) -> None:
    name = python(functions, "handlers.handler_crash")
    response, payload = functions.invoke(name, {"code": 3})
    request_id = response["ResponseMetadata"]["RequestId"]
    assert shape(response) == {
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "FunctionError": "Unhandled",
    }
    # AWS's wording for a non-zero exit (recorded for one before the first
    # poll: test_lambda_runtime_wrapper_not_found).
    assert payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 3",
    }


def test_runtime_wrapper_not_found(functions: Functions) -> None:
    name = python(
        functions,
        "handlers.no_return",
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/idontexist.sh"}},
    )
    response, payload = functions.invoke(name, {})
    assert_error_like(
        response,
        payload,
        recorded("TestLambdaErrors::test_lambda_runtime_wrapper_not_found", "invocation_error"),
    )


# -- TestLambdaBehavior: timeouts and environment reuse --------------------------


def test_invoke_with_timeout(functions: Functions) -> None:
    name = python(functions, "handlers.sleep", Timeout=1)
    response, payload = functions.invoke(name, {"seconds": 3})
    step = recorded("TestLambdaBehavior::test_lambda_invoke_with_timeout", "invoke-result")
    assert shape(response) == shape(step)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }


def test_invoke_no_timeout(functions: Functions) -> None:
    name = python(functions, "handlers.sleep", Timeout=2)
    response, payload = functions.invoke(name, {"seconds": 0.5})
    step = recorded("TestLambdaBehavior::test_lambda_invoke_no_timeout", "invoke-result")
    assert shape(response) == shape(step)
    assert payload is None and step["Payload"] == "null"


def test_timed_out_environment_runs_init_again(functions: Functions) -> None:
    test = "TestLambdaBehavior::test_lambda_invoke_timed_out_environment_reuse"
    name = python(functions, "handlers.state", Timeout=1)
    response, _ = functions.invoke(name, {"action": "write-file", "content": "some-content"})
    assert shape(response) == shape(recorded(test, "invoke-result-file-write"))
    response, payload = functions.invoke(name, {"action": "set-number", "number": 42})
    assert shape(response) == shape(recorded(test, "invoke-result-set-number"))
    response, payload = functions.invoke(name, {"action": "read-number"})
    assert payload == recorded(test, "invoke-result-read-number")["Payload"]
    response, payload = functions.invoke(name, {"action": "sleep", "seconds": 3})
    assert shape(response) == shape(recorded(test, "invoke-result-timed-out"))
    # The same environment, its runtime started again: /tmp is kept, and
    # init ran again, so the module's state is gone (both recorded).
    response, payload = functions.invoke(name, {"action": "read-file"})
    assert payload == recorded(test, "invoke-result-file-read-after-timeout")["Payload"]
    response, payload = functions.invoke(name, {"action": "read-number"})
    assert payload == recorded(test, "invoke-result-read-number-after-timeout")["Payload"]


def test_warm_environment_keeps_state(functions: Functions) -> None:
    test = "TestLambdaBehavior::test_lambda_invoke_timed_out_environment_reuse"
    name = python(functions, "handlers.state", Timeout=5)
    response, _ = functions.invoke(name, {"action": "write-file", "content": "some-content"})
    assert shape(response) == shape(recorded(test, "invoke-result-file-write"))
    response, payload = functions.invoke(name, {"action": "read-file"})
    assert payload == recorded(test, "invoke-result-file-read")["Payload"]


# -- TestLambdaBaseFeatures: sizes -------------------------------------------------


def test_too_large_response(functions: Functions) -> None:
    name = python(functions, "handlers.too_large")
    step = recorded("TestLambdaBaseFeatures::test_lambda_too_large_response", "invoke_result")
    for _ in range(2):  # invoke_result, invoke_result_2: the environment survives
        response, payload = functions.invoke(name, {})
        assert shape(response) == shape(step)
        assert payload == step["Payload"]


def test_request_size_limits(functions: Functions, client: Any) -> None:
    name = python(functions, "handlers.no_return")
    big = json.dumps({"x": "a" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(ClientError) as err:
        client.invoke(FunctionName=name, Payload=big)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert err.value.response["Error"] == {
        "Code": "RequestEntityTooLargeException",
        "Message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    }
    # Asynchronous: 1 MB.
    event = json.dumps({"x": "a" * (1024 * 1024)}).encode()
    with pytest.raises(ClientError) as err:
        client.invoke(FunctionName=name, Payload=event, InvocationType="Event")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert err.value.response["Error"] == {
        "Code": "RequestEntityTooLargeException",
        "Message": f"{len(event)} byte payload is too large for the Event invocation type "
        "(limit 1048576 bytes)",
    }
    just_under = json.dumps({"x": "a" * (1024 * 1024 - 20)}).encode()
    assert (
        client.invoke(FunctionName=name, Payload=just_under, InvocationType="Event")["StatusCode"]
        == 202
    )


# -- TestLambdaFeatures: invocation types, qualifiers, logs, client context ---------


NO_PAYLOAD = "TestLambdaFeatures::test_invocation_type_no_return_payload"


@pytest.mark.parametrize(
    ("invocation_type", "test"),
    [
        ("RequestResponse", f"{NO_PAYLOAD}[python-RequestResponse]"),
        ("Event", f"{NO_PAYLOAD}[python-Event]"),
        ("DryRun", "TestLambdaFeatures::test_invocation_type_dry_run[python3.10]"),
    ],
)
def test_invocation_types(functions: Functions, invocation_type: str, test: str) -> None:
    name = python(functions, "handlers.no_return")
    response, payload = functions.invoke(name, {}, InvocationType=invocation_type)
    step = recorded(test, "invoke-result")
    assert shape(response) == shape(step)
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == step["ResponseMetadata"]["HTTPStatusCode"]
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    assert raw == step["Payload"]
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert ("x-amz-executed-version" in headers) == ("ExecutedVersion" in step)


def test_request_id_and_tail_log(functions: Functions) -> None:
    name = python(functions, "handlers.request_id")
    response, payload = functions.invoke(name, {}, LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    step = recorded("TestRequestIdHandling::test_request_id_invoke", "invoke_result")
    assert shape(response) == shape(step)
    assert payload == request_id
    lines = base64.b64decode(response["LogResult"]).decode().splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "RequestId log message" in lines
    assert f"END RequestId: {request_id}" in lines
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")


def test_invocation_with_qualifier(functions: Functions, client: Any) -> None:
    config = functions.create(PYTHON, "handlers.no_return", "invoke", Publish=True)
    version = client.list_versions_by_function(FunctionName=config["FunctionName"])["Versions"][-1]
    client.get_waiter("function_active_v2").wait(
        FunctionName=config["FunctionName"], Qualifier=version["Version"]
    )
    response, _ = functions.invoke(
        config["FunctionName"], {}, Qualifier=version["Version"], LogType="Tail"
    )
    step = recorded("TestLambdaFeatures::test_invocation_with_qualifier", "invocation-response")
    assert shape(response) == shape(step)
    first = base64.b64decode(response["LogResult"]).decode().splitlines()[0]
    assert re.fullmatch(rf"START RequestId: {UUID} Version: 1", first)


def test_client_context(functions: Functions) -> None:
    name = python(functions, "handlers.client_context")
    # The recorded test's context (test_lambda_with_context).
    document = {
        "custom": {"foo": "bar"},
        "client": {"snap": ["crackle", "pop"]},
        "env": {"fizz": "buzz"},
    }
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    response, payload = functions.invoke(name, {}, ClientContext=encoded)
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    assert payload["custom"] == {"foo": "bar"}
    assert payload["env"] == {"fizz": "buzz"}
    response, payload = functions.invoke(name, {})
    assert payload == {"client_context": None}


def test_unknown_function(client: Any) -> None:
    with pytest.raises(ClientError) as err:
        client.invoke(FunctionName="doesnotexist", Payload=b"{}")
    step = recorded("TestLambdaFeatures::test_invoke_exceptions", "invoke_function_doesnotexist")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.value.response["Error"]["Code"] == step["Error"]["Code"]
    assert err.value.response["Error"]["Message"] == step["Error"]["Message"].replace(
        "<partition>", "aws"
    ).replace("<region>", "us-east-1").replace("111111111111", "000000000000")


# -- InvokeWithResponseStream ----------------------------------------------------------


def test_response_stream_chunks_arrive_as_written(
    functions: Functions, client: Any, cluster: UpCluster
) -> None:
    config = functions.create("provided.al2023", "function.handler", "streaming", Timeout=60)
    name = config["FunctionName"]
    response = client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/octet-stream"
    events = iter(response["EventStream"])
    first = next(events)
    assert first == {"PayloadChunk": {"Payload": b"first chunk;"}}
    # The function is still running: it writes its second chunk only once
    # this flag exists. Had the first chunk waited for the function's end,
    # it could not have been read before the flag.
    deadline = time.monotonic() + 30
    while True:
        found = [e for e in environments(cluster.endpoint, name) if e["container_id"]]
        if found:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    docker_client = docker.from_env()
    try:
        container = docker_client.containers.get(found[0]["container_id"])
        assert container.exec_run(["touch", "/tmp/go"], user="993").exit_code == 0
    finally:
        docker_client.close()
    rest = list(events)
    chunks = [e["PayloadChunk"]["Payload"] for e in rest if "PayloadChunk" in e]
    assert b"".join(chunks) == b"second chunk"
    assert "InvokeComplete" in rest[-1]
    assert "ErrorCode" not in rest[-1]["InvokeComplete"]


def test_response_stream_of_a_buffered_function(functions: Functions, client: Any) -> None:
    name = python(functions, "handlers.request_id")
    response = client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    events = list(response["EventStream"])
    request_id = response["ResponseMetadata"]["RequestId"]
    assert events[0] == {"PayloadChunk": {"Payload": json.dumps(request_id).encode()}}
    assert events[-1] == {"InvokeComplete": {}}


def test_response_stream_dry_run(functions: Functions, client: Any) -> None:
    name = python(functions, "handlers.no_return")
    response = client.invoke_with_response_stream(
        FunctionName=name, Payload=b"{}", InvocationType="DryRun"
    )
    assert response["StatusCode"] == 204
    response["EventStream"].close()


# -- the pure decisions behind them -----------------------------------------------------


def test_exit_wording() -> None:
    assert exit_reason(0) == "Runtime exited without providing a reason"
    assert exit_reason(127) == "Runtime exited with error: exit status 127"
    assert json.loads(exit_error("r-1", exit_reason(2))) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r-1 Error: Runtime exited with error: exit status 2",
    }
    # Any other end of an environment under an invocation reads as an exit.
    assert json.loads(exit_error("r-1", "worker stopping"))["errorMessage"] == (
        "RequestId: r-1 Error: Runtime exited with error: worker stopping"
    )


def test_request_size_decisions() -> None:
    check_request_size("Invoke", {}, 6_291_456)
    check_request_size("Invoke", {"X-Amz-Invocation-Type": "Event"}, 1_048_576)
    check_request_size("ListFunctions", {}, 10**9)
    with pytest.raises(AwsError) as err:
        check_request_size("InvokeWithResponseStream", {}, 6_291_457)
    assert (err.value.code, err.value.message) == (
        "RequestEntityTooLargeException",
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )
    with pytest.raises(AwsError) as err:
        check_request_size("Invoke", {"X-Amz-Invocation-Type": "Event"}, 1_048_577)
    assert err.value.message == (
        "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )


def test_client_context_reaches_the_runtime_as_json() -> None:
    assert runtime_client_context(base64.b64encode(b'{"custom": {"a": 1}}').decode()) == (
        '{"custom": {"a": 1}}'
    )
    assert runtime_client_context("not base64!") == "not base64!"


def test_response_too_large_document() -> None:
    step = recorded("TestLambdaBaseFeatures::test_lambda_too_large_response", "invoke_result")
    assert json.loads(response_too_large(MAX_RESPONSE_BYTES)) == step["Payload"]
