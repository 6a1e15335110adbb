"""The Lambda side of test_lambda_destinations.snapshot.json: the invocation
record AWS sends to an OnSuccess/OnFailure destination, replayed with a
Lambda function as the destination (AWS's recordings used SQS and
EventBridge, which lambdafleet does not have; what they carry, the record,
is compared: shape, requestContext, requestPayload, responseContext).

Not reproduced: TestLambdaDLQ::test_dead_letter_queue (an SQS dead-letter
queue message, no Lambda record) and the SQS/EventBridge envelopes
(Attributes, MD5OfBody, detail-type, ...) around the record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_async_invocations import Collector
from test_concurrency_limits import recorded
from test_concurrency_recorded import create, new_name, shape

from control_plane import retry

RECORDED = json.loads(
    (
        Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_destinations.snapshot.json"
    ).read_text()
)
PREFIX = "tests/aws/services/lambda_/test_lambda_destinations.py::TestLambdaDestinationSqs::"


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def recorded_record(test: str, step: str) -> dict[str, Any]:
    """The destination record inside a recorded SQS message."""
    found = RECORDED[PREFIX + test]["recorded-content"][step]
    message = found["Messages"][0] if "Messages" in found else found
    body: dict[str, Any] = message["Body"]
    return body


def run(
    client: Any, collector: Collector, payload: dict[str, Any], warm: bool = False, **settings: Any
) -> tuple[str, str, dict[str, Any]]:
    """Invoke a function (Event) whose destinations are a recording
    function; answer (function ARN, request id, the record received).
    `warm`: run it once first, so that no cold start adds to the event's
    age (its retry delays are scaled down, a container start is not)."""
    port = {"COLLECTOR_PORT": str(collector.port)}
    name, target = new_name("dest-src"), new_name("dest-rec")
    arn = create(client, name, variables=port)["FunctionArn"]
    target_arn = create(client, target, variables=port)["FunctionArn"]
    destination = {"Destination": target_arn}
    client.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={"OnSuccess": destination, "OnFailure": destination},
        **settings,
    )
    if warm:
        client.invoke(FunctionName=name, Payload=b'{"warm": true}')["Payload"].read()
    response = client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
    assert response["StatusCode"] == 202
    [report] = collector.wait(target, 1)
    return arn, response["ResponseMetadata"]["RequestId"], report["event"]


def assert_record(
    record: dict[str, Any], expected: dict[str, Any], arn: str, request_id: str
) -> None:
    assert shape(record) == shape(expected)
    context = expected["requestContext"]
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{arn}:$LATEST",
        "condition": context["condition"],
        "approximateInvokeCount": context["approximateInvokeCount"],
    }
    assert record["responseContext"] == expected["responseContext"]
    assert record["timestamp"].endswith("Z")
    assert record["version"] == "1.0"


@pytest.mark.parametrize(
    ("case", "settings"),
    [("Success-payload0", {}), ("payload0", {"MaximumRetryAttempts": 0})],
)
def test_assess_lambda_destination_success(
    client: Any, collector: Collector, case: str, settings: dict[str, Any]
) -> None:
    expected = recorded_record(
        f"test_assess_lambda_destination_invocation[{case}]", "receive_message_result"
    )
    arn, request_id, record = run(client, collector, {}, **settings)
    assert_record(record, expected, arn, request_id)
    assert record["requestPayload"] == expected["requestPayload"] == {}
    assert record["responsePayload"] == {}


def assert_error_payload(record: dict[str, Any], expected: dict[str, Any]) -> None:
    payload, wanted = record["responsePayload"], expected["responsePayload"]
    assert payload["errorType"] == wanted["errorType"] == "Exception"
    assert payload["errorMessage"] == wanted["errorMessage"]
    assert isinstance(payload["stackTrace"], list)


def test_assess_lambda_destination_failure_no_retry(client: Any, collector: Collector) -> None:
    expected = recorded_record(
        "test_assess_lambda_destination_invocation[payload1]", "receive_message_result"
    )
    arn, request_id, record = run(client, collector, {"raise_error": 1}, MaximumRetryAttempts=0)
    assert_record(record, expected, arn, request_id)
    assert record["requestPayload"] == expected["requestPayload"]
    assert_error_payload(record, expected)


def test_lambda_destination_default_retries(client: Any, collector: Collector) -> None:
    """Default retries (2): three attempts, then RetriesExhausted (also
    test_retries' record, whose SQS side redelivers)."""
    expected = recorded_record("test_lambda_destination_default_retries", "receive_message_result")
    arn, request_id, record = run(client, collector, {"raise_error": 1})
    assert_record(record, expected, arn, request_id)
    assert_error_payload(record, expected)
    again = recorded_record("test_retries", "queue_destination_payload")
    assert record["requestContext"]["condition"] == again["requestContext"]["condition"]
    assert (
        record["requestContext"]["approximateInvokeCount"]
        == again["requestContext"]["approximateInvokeCount"]
    )


@pytest.mark.parametrize(
    ("step", "max_age"),
    [("no_retry_failure_message", 60), ("single_retry_failure_message", 90)],
)
def test_maxeventage(client: Any, collector: Collector, step: str, max_age: int) -> None:
    """A retry that would start past MaximumEventAgeInSeconds is not made:
    max age 60 s with the first retry a minute later gives one attempt, 90 s
    gives two (the cluster scales both by LAMBDAFLEET_ASYNC_DELAY_SCALE)."""
    expected = recorded_record("test_maxeventage", step)
    payload = {"raise_error": 1, "message": new_name("msg")}
    arn, request_id, record = run(
        client,
        collector,
        payload,
        warm=True,
        MaximumRetryAttempts=2,
        MaximumEventAgeInSeconds=max_age,
    )
    assert_record(record, expected, arn, request_id)
    assert record["requestPayload"] == payload
    count = expected["requestContext"]["approximateInvokeCount"]
    source = record["requestContext"]["functionArn"].split(":")[6]
    runs = [r for r in collector.of(source) if r["event"] == payload]
    assert len(runs) == count


def test_zero_reserved_record_has_no_response() -> None:
    """Pure: the record of an event that never ran (ZeroReservedConcurrency),
    shaped as recorded in TestLambdaConcurrency::test_reserved_concurrency."""
    record = retry.destination_record(
        request_id="r",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
        condition=retry.ZERO_RESERVED_CONCURRENCY,
        invoke_count=0,
        request_payload=b"",
        response=None,
        now=dt.datetime.now(dt.UTC),
    )
    expected = recorded("test_reserved_concurrency", "msg")["Body"]
    assert shape(record) == shape(expected)
    assert record["requestPayload"] == expected["requestPayload"] == {}
