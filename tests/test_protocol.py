"""The REST-JSON protocol against botocore itself: requests built by botocore's
own serializer must route and parse back to their input, and our responses
and errors must parse in botocore to what the handler produced."""

from __future__ import annotations

import base64
import datetime
import io
import json
from collections.abc import Iterator
from typing import Any

import botocore.awsrequest
import botocore.parsers
import botocore.serialize
import pytest
from botocore.awsrequest import HeadersDict
from botocore.model import OperationModel, Shape
from botocore.response import StreamingBody
from lambdafleet.gateway import protocol
from lambdafleet.gateway.protocol import AwsError

ENDPOINT = "https://lambda.us-east-1.amazonaws.com"
MODEL = protocol.service_model()
ALL_OPERATIONS = sorted(MODEL.operation_names)
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
# Reaches every container depth Lambda's shapes use without recursing forever.
MAX_DEPTH = 6


# --------------------------------------------------------------------------
# Helpers shared with test_validation.py
# --------------------------------------------------------------------------


def wire_request(
    op: OperationModel, params: dict[str, Any]
) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path?query, headers, body) exactly as boto3 would send them."""
    request = botocore.serialize.create_serializer(
        "rest-json", include_validation=False
    ).serialize_to_request(params, op)
    botocore.awsrequest.prepare_request_dict(request, endpoint_url=ENDPOINT)
    url: str = request["url"]
    body = request["body"]
    if isinstance(body, str):
        body = body.encode("utf-8")
    return request["method"], url[len(ENDPOINT) :], dict(request["headers"]), body


def gateway_parse(op: OperationModel, params: dict[str, Any]) -> dict[str, Any]:
    """boto3's request through our routing and parsing."""
    method, target, headers, body = wire_request(op, params)
    matched = protocol.match(method, target)
    assert matched is not None, f"{op.name}: {method} {target} does not route"
    routed, labels = matched
    assert routed.name == op.name, f"{method} {target} routes to {routed.name}, not {op.name}"
    query = protocol.parse_query(target.partition("?")[2])
    return protocol.parse_request(routed, labels, query, headers, body)


class _RawStream:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> Iterator[bytes]:
        yield self._data


def boto_parse(
    op: OperationModel, status: int, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    """What boto3 makes of an answer: as botocore.endpoint does, streaming
    bodies are handed over unread and a modeled error's fields are added."""
    parser = botocore.parsers.create_parser("rest-json")
    response: dict[str, Any] = {
        "status_code": status,
        "headers": HeadersDict(headers),
        "body": body,
        "context": {"operation_name": op.name},
    }
    if status < 300 and op.has_event_stream_output:
        response["body"] = _RawStream(body)
    elif status < 300 and op.has_streaming_output:
        response["body"] = StreamingBody(io.BytesIO(body), len(body))
    parsed: dict[str, Any] = parser.parse(response, op.output_shape)
    if status >= 300:
        error_shape = MODEL.shape_for_error_code(parsed["Error"]["Code"])
        if error_shape is not None:
            parsed.update(parser.parse(response, error_shape))
    return parsed


def boto_error(op: OperationModel, error: AwsError) -> dict[str, Any]:
    status, headers, body = protocol.serialize_exception(error)
    return boto_parse(op, status, headers, body)


# --------------------------------------------------------------------------
# Sample values for any shape
# --------------------------------------------------------------------------


def sample(shape: Shape, depth: int = 0, json_payload: bool = False) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if depth >= MAX_DEPTH:
            return {}
        return {
            name: sample(member, depth + 1)
            for name, member in shape.members.items()
            if not member.serialization.get("eventstream")
        }
    if kind == "list":
        return [sample(shape.member, depth + 1)] if depth < MAX_DEPTH else []
    if kind == "map":
        return {"key-1": sample(shape.value, depth + 1)} if depth < MAX_DEPTH else {}
    if kind == "string":
        enum = shape.metadata.get("enum")
        # Characters that need percent-encoding in labels and queries.
        return enum[0] if enum else "v a:l$u/e~1"
    if kind in ("integer", "long"):
        return int(shape.metadata.get("min", 7)) + 1
    if kind in ("double", "float"):
        return 0.5
    if kind == "boolean":
        return True
    if kind == "blob":
        return b'{"hello": "world"}' if json_payload else b"\x00\xffbinary"
    if kind == "timestamp":
        return WHEN
    raise AssertionError(f"no sample for {kind}")


def sample_input(op: OperationModel, required_only: bool) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    payload = shape.serialization.get("payload")
    out = {}
    for name, member in shape.members.items():
        if required_only and name not in shape.required_members:
            continue
        out[name] = sample(member, 1, json_payload=name == payload)
    return out


# --------------------------------------------------------------------------
# Routing and request parsing, all operations
# --------------------------------------------------------------------------


def test_the_model_has_91_operations() -> None:
    # The shipped model (botocore 1.44.x); an update changes this on purpose.
    assert len(ALL_OPERATIONS) == 91


def test_the_model_uses_only_the_bindings_parse_request_knows() -> None:
    bindings = set()
    for name in ALL_OPERATIONS:
        for shape in (
            MODEL.operation_model(name).input_shape,
            MODEL.operation_model(name).output_shape,
        ):
            for member in shape.members.values() if shape is not None else ():
                location = member.serialization.get("location")
                if location is not None:
                    kind = member.type_name
                    bindings.add((location, kind, bool(member.serialization.get("jsonvalue"))))
    assert bindings <= {
        ("uri", "string", False), ("uri", "long", False), ("querystring", "string", False),
        ("querystring", "integer", False), ("querystring", "boolean", False),
        ("querystring", "list", False), ("querystring", "timestamp", False),
        ("header", "string", False), ("statusCode", "integer", False),
    }  # fmt: skip


@pytest.mark.parametrize("name", ALL_OPERATIONS)
@pytest.mark.parametrize("required_only", [True, False], ids=["minimal", "every-member"])
def test_botocore_request_round_trips(name: str, required_only: bool) -> None:
    op = MODEL.operation_model(name)
    params = sample_input(op, required_only)
    assert gateway_parse(op, params) == params


def test_invoke_by_percent_encoded_arn() -> None:
    target = (
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn"
        "/invocations?Qualifier=%24LATEST"
    )
    matched = protocol.match("POST", target)
    assert matched is not None
    op, labels = matched
    assert op.name == "Invoke"
    assert labels == {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:fn"}


@pytest.mark.parametrize("path", ["/2015-03-31/functions", "/2015-03-31/functions/"])
def test_list_functions_with_and_without_trailing_slash(path: str) -> None:
    matched = protocol.match("GET", path)
    assert matched is not None and matched[0].name == "ListFunctions"
    created = protocol.match("POST", path)
    assert created is not None and created[0].name == "CreateFunction"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/2018-10-31/layers?find=LayerVersion&Arn=x", "GetLayerVersionByArn"),
        ("/2018-10-31/layers", "ListLayers"),
        ("/2018-10-31/layers?find=Other", "ListLayers"),
        (
            "/2019-09-30/functions/f/provisioned-concurrency?List=ALL",
            "ListProvisionedConcurrencyConfigs",
        ),
        (
            "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1",
            "GetProvisionedConcurrencyConfig",
        ),
        ("/2015-03-31/functions/f/configuration", "GetFunctionConfiguration"),
        ("/2015-03-31/functions/f", "GetFunction"),
        ("/2019-09-25/functions/f/event-invoke-config/list", "ListFunctionEventInvokeConfigs"),
        ("/2019-09-25/functions/f/event-invoke-config", "GetFunctionEventInvokeConfig"),
    ],
)
def test_most_specific_route_wins(target: str, expected: str) -> None:
    matched = protocol.match("GET", target)
    assert matched is not None and matched[0].name == expected


def test_query_may_be_given_apart_from_the_path() -> None:
    matched = protocol.match("GET", "/2018-10-31/layers", {"find": ["LayerVersion"], "Arn": ["a"]})
    assert matched is not None and matched[0].name == "GetLayerVersionByArn"


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/"), ("GET", "/2015-03-31/nothing"), ("PATCH", "/2015-03-31/functions/f"),
     ("GET", "/2015-03-31/functions/f/g/h")],
)  # fmt: skip
def test_unknown_requests_do_not_route(method: str, target: str) -> None:
    assert protocol.match(method, target) is None


# --------------------------------------------------------------------------
# Invoke
# --------------------------------------------------------------------------


def test_invoke_payload_and_headers() -> None:
    op = MODEL.operation_model("Invoke")
    params = {
        "FunctionName": "fn",
        "Qualifier": "live",
        "InvocationType": "Event",
        "LogType": "Tail",
        "ClientContext": base64.b64encode(b'{"custom": {}}').decode(),
        "Payload": b'{"a": [1, 2, {"b": null}]}',
    }
    assert gateway_parse(op, params) == params


def test_invoke_headers_are_case_insensitive() -> None:
    op = MODEL.operation_model("Invoke")
    params = protocol.parse_request(
        op, {"FunctionName": "fn"}, {}, {"x-amz-invocation-type": "DryRun"}, b""
    )
    assert params == {"FunctionName": "fn", "InvocationType": "DryRun"}


def test_invoke_without_payload_has_none() -> None:
    op = MODEL.operation_model("Invoke")
    assert protocol.parse_request(op, {"FunctionName": "fn"}, {}, {}, b"") == {"FunctionName": "fn"}


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"STRING_VALUE", "Unrecognized token 'STRING_VALUE': was expecting (JSON String, Number, "
         "Array, Object or token 'null', 'true' or 'false')"),
        (b'{"a": 1} x', "Unexpected character ('x' (code 120)): Expected space separating "
         "root-level values"),
        (b"\x97abc", "Invalid UTF-8 start byte 0x97"),
        (b'{"a": ', "Unexpected end-of-input"),
    ],
)  # fmt: skip
def test_invoke_payload_that_is_not_json(payload: bytes, detail: str) -> None:
    op = MODEL.operation_model("Invoke")
    with pytest.raises(AwsError) as err:
        protocol.parse_request(op, {"FunctionName": "fn"}, {}, {}, payload)
    assert err.value.code == "InvalidRequestContentException"
    assert err.value.message is not None
    assert err.value.message.startswith(
        "Could not parse request body into json: Could not parse payload into json: " + detail
    )
    parsed = boto_error(op, err.value)
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert parsed["Error"]["Code"] == "InvalidRequestContentException"
    assert parsed["Error"]["Message"] == err.value.message


def test_invoke_response() -> None:
    op = MODEL.operation_model("Invoke")
    output = {
        "StatusCode": 200,
        "FunctionError": "Unhandled",
        "LogResult": base64.b64encode(b"START RequestId: x").decode(),
        "ExecutedVersion": "$LATEST",
        "Payload": b'{"errorMessage": "boom"}',
    }
    status, headers, body = protocol.serialize_response(op, output)
    assert status == 200
    assert body == output["Payload"]
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    parsed = boto_parse(op, status, headers, body)
    del parsed["ResponseMetadata"]
    parsed["Payload"] = parsed["Payload"].read()
    assert parsed == output


@pytest.mark.parametrize(("invocation_type", "status"), [("Event", 202), ("DryRun", 204)])
def test_invoke_status_comes_from_the_output(invocation_type: str, status: int) -> None:
    op = MODEL.operation_model("Invoke")
    got, headers, body = protocol.serialize_response(op, {"StatusCode": status})
    assert (got, body) == (status, b"")
    assert boto_parse(op, got, headers, body)["StatusCode"] == status


def test_response_stream_events() -> None:
    op = MODEL.operation_model("InvokeWithResponseStream")
    output = {
        "StatusCode": 200,
        "ExecutedVersion": "1",
        "EventStream": [
            {"PayloadChunk": {"Payload": b"hello "}},
            {"PayloadChunk": {"Payload": b"world"}},
            {"InvokeComplete": {"LogResult": "bG9n"}},
        ],
    }
    status, headers, body = protocol.serialize_response(op, output)
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    parsed = boto_parse(op, status, headers, body)
    assert parsed["StatusCode"] == 200 and parsed["ExecutedVersion"] == "1"
    assert list(parsed["EventStream"]) == output["EventStream"]


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


def test_zip_file_is_decoded_from_base64() -> None:
    op = MODEL.operation_model("CreateFunction")
    body = json.dumps(
        {"FunctionName": "f", "Code": {"ZipFile": base64.b64encode(b"PK\x03\x04").decode()}}
    )
    params = protocol.parse_request(op, {}, {}, {}, body.encode())
    assert params["Code"] == {"ZipFile": b"PK\x03\x04"}


def test_empty_body_is_an_empty_input() -> None:
    op = MODEL.operation_model("CreateFunction")
    assert protocol.parse_request(op, {}, {}, {}, b"") == {}


def test_nulls_and_unknown_keys_are_dropped() -> None:
    op = MODEL.operation_model("CreateFunction")
    body = b'{"FunctionName": "f", "Description": null, "NotAMember": 1}'
    assert protocol.parse_request(op, {}, {}, {}, body) == {"FunctionName": "f"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"FunctionName": "f",', "Unexpected end-of-input"),
        (b"{'FunctionName': 'f'}", "Unexpected character (''' (code 39))"),
        (b"nope", "Unrecognized token 'nope'"),
        (b'{"FunctionName": "f"}}', "Unexpected character ('}' (code 125)): Expected space"),
    ],
)
def test_malformed_json_body(body: bytes, detail: str) -> None:
    op = MODEL.operation_model("CreateFunction")
    with pytest.raises(AwsError) as err:
        protocol.parse_request(op, {}, {}, {}, body)
    assert err.value.code == "InvalidRequestContentException"
    assert err.value.message is not None
    assert err.value.message.startswith("Could not parse request body into json: " + detail)
    assert "\n at [Source: (byte[])" in err.value.message
    parsed = boto_error(op, err.value)
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert parsed["Error"] == {
        "Code": "InvalidRequestContentException",
        "Message": err.value.message,
    }
    assert parsed["Type"] == "User"


@pytest.mark.parametrize(
    "body",
    [
        b'{"MemorySize": "lots"}',
        b'{"Publish": "maybe"}',
        b'{"Code": {"ZipFile": "not base64!"}}',
        b'{"Code": []}',
        b'{"Architectures": "x86_64"}',
        b'{"FunctionName": {"a": 1}}',
        b"[1, 2]",
    ],
)
def test_body_that_does_not_fit_the_shape(body: bytes) -> None:
    op = MODEL.operation_model("CreateFunction")
    with pytest.raises(AwsError) as err:
        protocol.parse_request(op, {}, {}, {}, body)
    assert err.value.code == "InvalidRequestContentException"
    assert err.value.message is not None
    assert err.value.message.startswith("Could not parse request body into json: ")


def test_jackson_coercions_are_accepted() -> None:
    op = MODEL.operation_model("CreateFunction")
    body = b'{"MemorySize": "256", "Timeout": 3.0, "Publish": "true", "Description": 12}'
    params = protocol.parse_request(op, {}, {}, {}, body)
    assert params == {"MemorySize": 256, "Timeout": 3, "Publish": True, "Description": "12"}


@pytest.mark.parametrize(
    ("op_name", "labels", "query"),
    [
        ("ListFunctions", {}, {"MaxItems": ["ten"]}),
        ("GetLayerVersion", {"LayerName": "l", "VersionNumber": "one"}, {}),
    ],
)
def test_query_or_label_that_is_not_a_number(
    op_name: str, labels: dict[str, str], query: dict[str, list[str]]
) -> None:
    op = MODEL.operation_model(op_name)
    with pytest.raises(AwsError) as err:
        protocol.parse_request(op, labels, query, {}, b"")
    assert err.value.code == "SerializationException"
    assert protocol.serialize_exception(err.value)[0] == 400


def test_query_numbers_and_lists() -> None:
    op = MODEL.operation_model("ListFunctions")
    params = protocol.parse_request(
        op, {}, {"MaxItems": ["10"], "FunctionVersion": ["ALL"]}, {}, b""
    )
    assert params == {"MaxItems": 10, "FunctionVersion": "ALL"}
    op = MODEL.operation_model("UntagResource")
    params = protocol.parse_request(op, {"Resource": "arn"}, {"tagKeys": ["a", "b"]}, {}, b"")
    assert params == {"Resource": "arn", "TagKeys": ["a", "b"]}


# --------------------------------------------------------------------------
# Responses, all operations
# --------------------------------------------------------------------------


def sample_output(op: OperationModel) -> dict[str, Any]:
    shape = op.output_shape
    assert shape is not None
    out: dict[str, Any] = sample(shape)
    for name, member in shape.members.items():
        if member.serialization.get("location") == "statusCode":
            out[name] = int(op.http.get("responseCode", 200))
    return out


STREAMING_OUTPUT = {"InvokeWithResponseStream"}


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in ALL_OPERATIONS
        if MODEL.operation_model(n).output_shape and n not in STREAMING_OUTPUT
    ],
)
def test_response_round_trips_through_botocore(name: str) -> None:
    op = MODEL.operation_model(name)
    output = sample_output(op)
    status, headers, body = protocol.serialize_response(op, output)
    assert status == int(op.http.get("responseCode", 200))
    parsed = boto_parse(op, status, headers, body)
    del parsed["ResponseMetadata"]
    for name, value in parsed.items():
        if isinstance(value, StreamingBody):
            parsed[name] = value.read()
    assert parsed == output


def test_response_omits_none_and_unknown_members() -> None:
    op = MODEL.operation_model("GetFunctionConfiguration")
    status, headers, body = protocol.serialize_response(
        op, {"FunctionName": "f", "Description": None, "Internal": "secret"}
    )
    assert (status, json.loads(body)) == (200, {"FunctionName": "f"})
    assert headers["Content-Type"] == "application/json"


def test_create_function_answers_201_with_compact_json() -> None:
    op = MODEL.operation_model("CreateFunction")
    output = {
        "FunctionName": "f",
        "LastModified": "2026-11-26T22:41:00.000+0000",
        "MemorySize": 128,
    }
    status, _, body = protocol.serialize_response(op, output)
    assert status == 201
    assert (
        body
        == b'{"FunctionName":"f","MemorySize":128,"LastModified":"2026-11-26T22:41:00.000+0000"}'
    )


def test_empty_output_has_empty_body() -> None:
    op = MODEL.operation_model("DeleteFunctionConcurrency")
    assert protocol.serialize_response(op, {}) == (204, {}, b"")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

GET_FUNCTION = MODEL.operation_model("GetFunction")


@pytest.mark.parametrize(
    ("code", "status", "body_key"),
    [
        ("ResourceNotFoundException", 404, "Message"),
        ("ResourceConflictException", 409, "message"),
        ("InvalidParameterValueException", 400, "message"),
        ("PreconditionFailedException", 412, "message"),
        ("RequestTooLargeException", 413, "message"),
        ("ServiceException", 500, "Message"),
        ("CodeSigningConfigNotFoundException", 404, "Message"),
        ("EC2UnexpectedException", 502, "Message"),
    ],
)
def test_modeled_errors(code: str, status: int, body_key: str) -> None:
    got, headers, body = protocol.serialize_error(code, "what went wrong")
    assert got == status
    assert headers["x-amzn-ErrorType"] == code
    document = json.loads(body)
    assert document == {"Type": "Server" if status >= 500 else "User", body_key: "what went wrong"}
    parsed = boto_parse(GET_FUNCTION, got, headers, body)
    assert parsed["Error"] == {"Code": code, "Message": "what went wrong"}
    assert parsed[body_key] == "what went wrong"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def test_too_many_requests_carries_reason_and_retry_after() -> None:
    error = AwsError(
        "TooManyRequestsException",
        "Rate Exceeded.",
        {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "retryAfterSeconds": "2"},
    )
    status, headers, body = protocol.serialize_exception(error)
    assert status == 429
    assert headers["Retry-After"] == "2"
    parsed = boto_parse(GET_FUNCTION, status, headers, body)
    assert parsed["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
    assert parsed["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert parsed["retryAfterSeconds"] == "2"
    assert parsed["Type"] == "User"


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("ValidationException", "1 validation error detected: ...", 400),
        ("AccessDeniedException", None, 403),
        ("RequestEntityTooLargeException", "Request must be smaller than 6291456 bytes", 413),
        ("SomethingNobodyKnows", "?", 400),
    ],
)
def test_unmodeled_errors(code: str, message: str | None, status: int) -> None:
    got, headers, body = protocol.serialize_error(code, message)
    assert got == status
    assert json.loads(body) == {"message": message}
    parsed = boto_parse(GET_FUNCTION, got, headers, body)
    # AWS sends a null message for AccessDeniedException: boto3 shows None.
    assert parsed["Error"] == {"Code": code, "Message": message}


def test_extra_none_drops_a_member() -> None:
    _, _, body = protocol.serialize_error("ResourceNotFoundException", "gone", {"Type": None})
    assert json.loads(body) == {"Message": "gone"}


def test_error_body_is_compact_as_aws_sends_it() -> None:
    # Recorded: Content-Length 149 for this PreconditionFailedException.
    message = (
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetPolicy API to retrieve the latest Revision Id"
    )
    assert len(protocol.serialize_error("PreconditionFailedException", message)[2]) == 149


def test_request_id_helper() -> None:
    headers = protocol.with_request_id({"x-amzn-ErrorType": "X"}, "rid")
    assert headers == {
        "x-amzn-ErrorType": "X",
        "x-amzn-RequestId": "rid",
        "Content-Type": "application/json",
    }
