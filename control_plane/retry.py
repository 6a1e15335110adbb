"""AWS's retry policy for asynchronous invocations, as pure decisions.

After each attempt the dispatcher asks `decide` what to do with the event:
- the function succeeded: finish with condition "Success" (OnSuccess);
- the function failed (an error or a timeout): retry up to
  MaximumRetryAttempts times, about 1 then 2 minutes later;
- the invocation was throttled or failed in the system (no worker, a worker
  lost): retry with exponential backoff, 1 s doubling up to 5 minutes. These
  retries do not count against MaximumRetryAttempts;
- a retry that would start after MaximumEventAgeInSeconds is not made: the
  event finishes with "EventAgeExceeded" (as recorded: max age 60 s and the
  first retry due a minute later gives EventAgeExceeded with one invocation).
  Retries exhausted finish with "RetriesExhausted" (OnFailure).

Every duration, the maximum event age included, is multiplied by `scale`
(LAMBDAFLEET_ASYNC_DELAY_SCALE) so tests see the whole policy in seconds.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass
from typing import Any

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 21_600
# Function errors: AWS waits about a minute before the first retry and about
# two before the second (MaximumRetryAttempts is at most 2).
FUNCTION_ERROR_DELAYS_S = (60.0, 120.0)
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
# A function whose reserved concurrency is 0 never runs its events: AWS sends
# them to OnFailure at once, without retrying (recorded TestLambdaConcurrency::
# test_reserved_concurrency: this condition, approximateInvokeCount 0, and no
# responseContext or responsePayload).
ZERO_RESERVED_CONCURRENCY = "ZeroReservedConcurrency"


class Outcome(enum.Enum):
    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"
    THROTTLED = "throttled"
    SYSTEM_ERROR = "system_error"


@dataclass(frozen=True)
class Policy:
    """An event invoke config's error handling, with AWS's defaults."""

    max_retries: int = DEFAULT_RETRIES
    max_age_s: float = DEFAULT_MAX_AGE_S
    scale: float = 1.0


@dataclass(frozen=True)
class Retry:
    delay_s: float


@dataclass(frozen=True)
class Finish:
    """The event is done; `condition` names why (the record's condition)."""

    condition: str

    @property
    def succeeded(self) -> bool:
        return self.condition == SUCCESS


Decision = Retry | Finish


def function_error_delay(retry: int, scale: float = 1.0) -> float:
    """Delay before retry number `retry` (1-based) after a function error."""
    index = min(retry, len(FUNCTION_ERROR_DELAYS_S)) - 1
    return FUNCTION_ERROR_DELAYS_S[index] * scale


def backoff_delay(backoffs: int, scale: float = 1.0) -> float:
    """Delay after the `backoffs`-th consecutive throttle or system error."""
    exponent = max(backoffs - 1, 0)
    # Capped before the power so a long outage cannot overflow the float.
    doubled: float = BACKOFF_FIRST_S * 2.0 ** min(exponent, 20)
    return min(doubled, BACKOFF_MAX_S) * scale


def decide(
    outcome: Outcome, *, function_errors: int, backoffs: int, age_s: float, policy: Policy
) -> Decision:
    """What to do after an attempt. `function_errors` and `backoffs` count
    this attempt's outcome already; `age_s` is the event's age now."""
    if outcome is Outcome.SUCCESS:
        return Finish(SUCCESS)
    if outcome is Outcome.FUNCTION_ERROR:
        if function_errors > policy.max_retries:
            return Finish(RETRIES_EXHAUSTED)
        delay = function_error_delay(function_errors, policy.scale)
    else:
        delay = backoff_delay(backoffs, policy.scale)
    if age_s + delay > policy.max_age_s * policy.scale:
        return Finish(EVENT_AGE_EXCEEDED)
    return Retry(delay)


def expired(age_s: float, policy: Policy) -> bool:
    """An event older than its maximum age is not attempted again (e.g. one
    found in the queue after a long control plane outage)."""
    return age_s > policy.max_age_s * policy.scale


# --------------------------------------------------------------------------
# The destination record
# --------------------------------------------------------------------------


def _json_or_text(data: bytes) -> Any:
    """A payload as the record shows it: parsed JSON, else the text."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")


def _timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Response:
    """What the last attempt got back, for responseContext/responsePayload.
    `status_code` is 200 whenever the function ran (a function error is
    still a 200, as recorded)."""

    status_code: int
    executed_version: str
    payload: bytes = b""
    function_error: str = ""


def destination_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    response: Response | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """AWS's invocation record sent to OnSuccess/OnFailure destinations
    (recorded in test_lambda_destinations.snapshot.json). `response` is
    None when the function never ran (ZeroReservedConcurrency): the record
    then has no responseContext nor responsePayload, as recorded."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _timestamp(now),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        # An empty payload is the empty object `{}` the function receives
        # (recorded test_reserved_concurrency: invoked without a Payload,
        # requestPayload {}).
        "requestPayload": _json_or_text(request_payload) if request_payload else {},
    }
    if response is None:
        return record
    context: dict[str, Any] = {
        "statusCode": response.status_code,
        "executedVersion": response.executed_version,
    }
    if response.function_error:
        context["functionError"] = response.function_error
    record["responseContext"] = context
    if response.payload:
        record["responsePayload"] = _json_or_text(response.payload)
    return record
