"""Concurrency limits with real containers, through boto3: reserved
concurrency and the account's limit throttle as AWS does (recorded
TestLambdaConcurrency answers)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import ROLE, Process, free_port, lambda_client, wait_healthy, zip_bytes
from conftest import UpCluster

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda.snapshot.json").read_text()
)
PREFIX = "tests/aws/services/lambda_/test_lambda.py::TestLambdaConcurrency::"

SLEEPER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0)}
"""


def recorded(test: str, step: str) -> dict[str, Any]:
    found: dict[str, Any] = RECORDED[PREFIX + test]["recorded-content"][step]
    return found


def create_sleeper(client: Any, name: str) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": SLEEPER})},
        Timeout=30,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def invoke(client: Any, name: str, sleep: float = 0, **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke(
        FunctionName=name, Payload=json.dumps({"sleep": sleep}), **kwargs
    )
    # Read to the end, so the connection goes back to the client's pool.
    response["Payload"] = json.loads(response["Payload"].read())
    return response


def throttle(call: Callable[[], Any]) -> dict[str, Any]:
    """The error answer of a call that must be throttled, as the recorder
    kept it (without headers)."""
    with pytest.raises(ClientError) as info:
        call()
    answer: dict[str, Any] = dict(info.value.response)
    answer["ResponseMetadata"] = {
        "HTTPHeaders": {},
        "HTTPStatusCode": answer["ResponseMetadata"]["HTTPStatusCode"],
    }
    return answer


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_reserved_concurrency_zero_throttles(cluster: UpCluster) -> None:
    client = cluster.client()
    name = f"rc0-{uuid.uuid4().hex[:8]}"
    create_sleeper(client, name)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    answer = throttle(lambda: invoke(client, name))
    assert answer == recorded("test_reserved_concurrency", "exc_no_cap_requestresponse")
    client.delete_function_concurrency(FunctionName=name)
    assert invoke(client, name)["StatusCode"] == 200


def test_reserved_concurrency_one_runs_one_at_a_time(cluster: UpCluster) -> None:
    client, other = cluster.client(), cluster.client()
    name = f"rc1-{uuid.uuid4().hex[:8]}"
    create_sleeper(client, name)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    thread, results = in_background(lambda: invoke(client, name, sleep=1.5))
    time.sleep(0.5)
    started = time.monotonic()
    answer = throttle(lambda: invoke(other, name))
    # Throttled at once, not after waiting for the first to finish.
    assert time.monotonic() - started < 1.0
    assert answer == recorded("test_reserved_concurrency_async_queue", "too_many_requests_exc")
    thread.join(60)
    assert results[0]["StatusCode"] == 200, results
    # The lease came back when the first invocation ended.
    assert invoke(other, name)["StatusCode"] == 200


def test_provisioned_concurrency_is_carved_out_of_the_reservation(cluster: UpCluster) -> None:
    """Recorded test_lambda_concurrency_block: reserved 1 and version 1
    provisioned 1 leave nothing to $LATEST, while version 1 runs."""
    client = cluster.client()
    name = f"rcp-{uuid.uuid4().hex[:8]}"
    create_sleeper(client, name)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert invoke(client, name)["ExecutedVersion"] == "$LATEST"
    version = client.publish_version(FunctionName=name)["Version"]
    client.get_waiter("function_active_v2").wait(FunctionName=name, Qualifier=version)
    client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    test = "test_lambda_concurrency_block"
    assert throttle(lambda: invoke(client, name)) == recorded(test, "invoke_latest_first_exc")
    assert invoke(client, name, Qualifier=version)["ExecutedVersion"] == version
    assert throttle(lambda: invoke(client, name)) == recorded(test, "invoke_latest_second_exc")


@pytest.fixture(scope="module")
def small_account(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cluster whose accounts may run one invocation at a time."""
    root = tmp_path_factory.mktemp("small-account")
    port = free_port()
    process = Process(
        ["up", "--port", str(port), "--data-dir", str(root / "data")],
        root / "up.log",
        env={"LAMBDA_LIMITS_CONCURRENT_EXECUTIONS": "1"},
    ).start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(endpoint)
        yield endpoint
    finally:
        assert process.stop() == 0


def test_account_limit_throttles(small_account: str) -> None:
    client, other = lambda_client(small_account), lambda_client(small_account)
    first, second = f"acc-{uuid.uuid4().hex[:8]}", f"acc-{uuid.uuid4().hex[:8]}"
    create_sleeper(client, first)
    create_sleeper(client, second)
    thread, results = in_background(lambda: invoke(client, first, sleep=1.5))
    time.sleep(0.5)
    answer = throttle(lambda: invoke(other, second))
    assert answer["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
    assert answer["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 429
    thread.join(60)
    assert results[0]["StatusCode"] == 200, results
    assert invoke(other, second)["StatusCode"] == 200
