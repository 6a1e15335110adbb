"""Property: whatever a client sends to any operation, the answer is success
or an AWS-shaped 4xx error, never a 5xx; and a rejected call changes nothing
already stored.

Inputs come from the model (tests/model_inputs.py): valid values mixed with
wrong types, out-of-range numbers, pattern violations and oversized strings,
serialised as botocore would (without its validation) and sent over raw HTTP,
sometimes with the JSON body cut short or replaced by a huge one.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any
from urllib.parse import urlsplit

import botocore.awsrequest
import botocore.serialize
import pytest
from cluster import create_echo, lambda_client, role_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_inputs import MODEL, input_strategy, valid_input

ACCOUNT = "444444444444"
GUARD = "prop-guard"
ENDPOINT = "http://lambda.invalid"
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={ACCOUNT}/20261126/us-east-1/lambda/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
ALL_OPERATIONS = sorted(MODEL.operation_names)
EXAMPLES = int(os.environ.get("LAMBDAFLEET_PROPERTY_EXAMPLES", "400"))


def serialise(operation: str, params: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    op = MODEL.operation_model(operation)
    request = botocore.serialize.create_serializer(
        "rest-json", include_validation=False
    ).serialize_to_request(params, op)
    botocore.awsrequest.prepare_request_dict(request, endpoint_url=ENDPOINT)
    body = request["body"]
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("botocore leaves a non-blob payload to the HTTP layer, which fails")
    url: str = request["url"]
    headers = {k: str(v) for k, v in request["headers"].items()}
    for value in headers.values():
        # Not HTTP: header values are latin-1 without control characters
        # (RFC 9110 5.5); such a request is refused by any HTTP server.
        value.encode("latin-1")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("control character in a header value")
    return request["method"], url[len(ENDPOINT) :], headers, bytes(body)


def send(endpoint: str, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request(method, target, body=body, headers={**headers, "Authorization": AUTHORIZATION})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def assert_aws_shaped(status: int, headers: dict[str, str], body: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered.get("x-amzn-errortype"), f"{what}: no error type header"
        if body:
            document = json.loads(body)
            assert "message" in document or "Message" in document, f"{what}: {body[:200]!r}"


@pytest.fixture(scope="module")
def guard(cluster: Any) -> Any:
    """A function whose stored state every rejected call must leave alone."""
    client = lambda_client(cluster.endpoint, access_key=ACCOUNT)
    create_echo(client, GUARD, Role=role_of(ACCOUNT), Tags={"keep": "me"})
    return client


def snapshot(client: Any) -> dict[str, Any]:
    got = client.get_function(FunctionName=GUARD)
    return {"configuration": got["Configuration"], "tags": got.get("Tags")}


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    operation = draw(st.sampled_from(ALL_OPERATIONS))
    params = draw(input_strategy(MODEL.operation_model(operation)))
    mangle = draw(st.sampled_from(["none", "none", "none", "truncate", "garbage"]))
    return operation, params, mangle


def test_every_call_answers_success_or_an_aws_4xx(cluster: Any, guard: Any) -> None:
    before = snapshot(guard)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(calls())
    def one_call(call: tuple[str, dict[str, Any], str]) -> None:
        operation, params, mangle = call
        try:
            method, target, headers, body = serialise(operation, params)
        except (TypeError, ValueError, AttributeError, KeyError):
            return  # not a request HTTP can carry (see serialise)
        if mangle == "truncate" and len(body) > 2:
            body = body[: len(body) // 2]
        elif mangle == "garbage":
            body = b'{"\xff' + body
        status, answer_headers, answer = send(cluster.endpoint, method, target, headers, body)
        assert_aws_shaped(status, answer_headers, answer, f"{operation} {method} {target}")
        if status >= 400:
            assert snapshot(guard) == before, f"{operation} changed stored state"

    one_call()
    assert snapshot(guard) == before


@pytest.mark.parametrize(
    "operation",
    [op for op in ALL_OPERATIONS if MODEL.operation_model(op).http["method"] in ("POST", "PUT")],
)
def test_huge_bodies_are_refused_as_aws_does(cluster: Any, guard: Any, operation: str) -> None:
    before = snapshot(guard)
    params = valid_input(MODEL.operation_model(operation))
    if "FunctionName" in params:
        params["FunctionName"] = GUARD
    method, target, headers, _ = serialise(operation, params)
    body = b'{"Description": "' + b"x" * (7 * 1024 * 1024) + b'"}'
    status, answer_headers, answer = send(cluster.endpoint, method, target, headers, body)
    assert_aws_shaped(status, answer_headers, answer, operation)
    if status >= 400:
        assert snapshot(guard) == before
