"""AWS's retry policy for asynchronous invocations and its destination
record, as pure decisions (control_plane/retry.py): no servers, no Docker."""

from __future__ import annotations

import datetime as dt

import pytest
from lambdafleet.control_plane import retry
from lambdafleet.control_plane.dispatcher import classify, policy_of
from lambdafleet.control_plane.retry import Finish, Outcome, Policy, Retry, decide

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError

DEFAULT = Policy()


def test_success_finishes_with_success() -> None:
    decision = decide(Outcome.SUCCESS, function_errors=0, backoffs=0, age_s=1, policy=DEFAULT)
    assert decision == Finish("Success")
    assert decision.succeeded


def test_function_errors_retry_twice_after_one_then_two_minutes() -> None:
    first = decide(Outcome.FUNCTION_ERROR, function_errors=1, backoffs=0, age_s=0, policy=DEFAULT)
    second = decide(Outcome.FUNCTION_ERROR, function_errors=2, backoffs=0, age_s=60, policy=DEFAULT)
    third = decide(Outcome.FUNCTION_ERROR, function_errors=3, backoffs=0, age_s=180, policy=DEFAULT)
    assert first == Retry(60.0)
    assert second == Retry(120.0)
    assert third == Finish("RetriesExhausted")


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_maximum_retry_attempts_bounds_function_error_retries(retries: int) -> None:
    policy = Policy(max_retries=retries)
    outcomes = [
        decide(Outcome.FUNCTION_ERROR, function_errors=n, backoffs=0, age_s=0, policy=policy)
        for n in range(1, retries + 2)
    ]
    assert all(isinstance(d, Retry) for d in outcomes[:-1])
    assert outcomes[-1] == Finish("RetriesExhausted")


def test_a_retry_due_after_the_maximum_age_is_not_made() -> None:
    # Recorded (test_maxeventage): max age 60 s, a function error, the first
    # retry due a minute later: EventAgeExceeded after one invocation.
    policy = Policy(max_age_s=60)
    decision = decide(
        Outcome.FUNCTION_ERROR, function_errors=1, backoffs=0, age_s=0.5, policy=policy
    )
    assert decision == Finish("EventAgeExceeded")


@pytest.mark.parametrize("outcome", [Outcome.THROTTLED, Outcome.SYSTEM_ERROR])
def test_throttles_and_system_errors_back_off_exponentially_to_five_minutes(
    outcome: Outcome,
) -> None:
    delays = [
        decide(outcome, function_errors=0, backoffs=n, age_s=0, policy=DEFAULT)
        for n in range(1, 12)
    ]
    assert delays[:5] == [Retry(1.0), Retry(2.0), Retry(4.0), Retry(8.0), Retry(16.0)]
    assert delays[-1] == Retry(300.0)
    assert retry.backoff_delay(10_000) == 300.0


@pytest.mark.parametrize("outcome", [Outcome.THROTTLED, Outcome.SYSTEM_ERROR])
def test_throttles_do_not_count_against_retries_but_end_at_the_maximum_age(
    outcome: Outcome,
) -> None:
    policy = Policy(max_retries=0, max_age_s=60)
    assert decide(outcome, function_errors=0, backoffs=3, age_s=50, policy=policy) == Retry(4.0)
    assert decide(outcome, function_errors=0, backoffs=5, age_s=50, policy=policy) == Finish(
        "EventAgeExceeded"
    )


def test_the_scale_shrinks_every_duration_alike() -> None:
    policy = Policy(max_age_s=21_600, scale=0.01)
    assert decide(
        Outcome.FUNCTION_ERROR, function_errors=2, backoffs=0, age_s=0, policy=policy
    ) == Retry(pytest.approx(1.2))
    assert decide(
        Outcome.THROTTLED, function_errors=0, backoffs=1, age_s=0, policy=policy
    ) == Retry(pytest.approx(0.01))
    assert retry.expired(216.1, policy)
    assert not retry.expired(215.0, policy)


def test_policy_of_an_event_invoke_config() -> None:
    assert policy_of(None, 1.0) == Policy()
    config = api.FunctionEventInvokeConfig(maximum_retry_attempts=0)
    assert policy_of(config, 0.5) == Policy(max_retries=0, max_age_s=21_600, scale=0.5)
    config = api.FunctionEventInvokeConfig(maximum_event_age_in_seconds=60)
    assert policy_of(config, 1.0) == Policy(max_retries=2, max_age_s=60)


def test_errors_are_classified_as_throttles_or_system_errors() -> None:
    throttle = LambdaError("TooManyRequestsException", "Rate Exceeded.")
    assert classify(throttle) is Outcome.THROTTLED
    assert classify(LambdaError("ServiceException", "no worker")) is Outcome.SYSTEM_ERROR


def test_destination_record_of_a_failure_has_the_recorded_shape() -> None:
    error = b'{"errorMessage": "intentional failure", "errorType": "Exception"}'
    record = retry.destination_record(
        request_id="r-1",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
        condition="RetriesExhausted",
        invoke_count=3,
        request_payload=b'{"message": "m"}',
        response=retry.Response(200, "$LATEST", error, "Unhandled"),
        now=dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC),
    )
    assert record == {
        "version": "1.0",
        "timestamp": "2026-01-02T03:04:05.678Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"message": "m"},
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": "intentional failure", "errorType": "Exception"},
    }


def test_destination_record_of_a_success_has_no_function_error() -> None:
    record = retry.destination_record(
        request_id="r-2",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:live",
        condition="Success",
        invoke_count=1,
        request_payload=b"not json",
        response=retry.Response(200, "3", b'"ok"'),
        now=dt.datetime.now(dt.UTC),
    )
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "3"}
    assert record["requestPayload"] == "not json"
    assert record["responsePayload"] == "ok"
