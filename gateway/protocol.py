"""The AWS Lambda REST-JSON wire protocol, driven by the shipped service model.

Everything here is pure and synchronous: it turns an HTTP request into an
operation's input dict and an output dict (or an error) back into an HTTP
response, for every operation of the model, so that boto3 cannot tell the
gateway from AWS. The model is loaded once, on first use.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from lambdafleet import service_model as shipped

__all__ = [
    "AwsError",
    "OperationModel",
    "ProtocolError",
    "Route",
    "Router",
    "ValidationError",
    "encode_event",
    "error_status",
    "lower_camel",
    "match",
    "operation",
    "parse_query",
    "parse_request",
    "serialize_error",
    "serialize_exception",
    "serialize_response",
    "service_model",
    "with_request_id",
]

JSON_CONTENT_TYPE = "application/json"
EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"


class AwsError(Exception):
    """An error AWS would answer with: its code, message and extra members.

    `extra` holds the error shape's other members (e.g. `Reason` of
    TooManyRequestsException); a member bound to a header in the model goes
    into that header. A `None` value in `extra` removes that key from the body.
    """

    def __init__(self, code: str, message: str | None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra: dict[str, Any] = dict(extra or {})


class ValidationError(AwsError):
    """A model-constraint failure, phrased exactly as AWS's validator does."""

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


class ProtocolError(AwsError):
    """A request the protocol layer cannot turn into an operation's input."""


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


def service_model() -> ServiceModel:
    """The Lambda model lambdafleet ships (lambdafleet/model/), whatever
    botocore is installed; loaded once because it is immutable."""
    return shipped.service_model()


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


# --------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------

_LABEL = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Route:
    """One operation's `http.method` + `http.requestUri`, compiled."""

    operation: OperationModel
    method: str
    regex: re.Pattern[str]
    labels: tuple[tuple[str, str], ...]  # (regex group, label name)
    # Literal query parameters of the template (`?find=LayerVersion`,
    # `?List=ALL`): they tell apart operations sharing a method and path.
    query: tuple[tuple[str, str | None], ...]
    literal_chars: int

    def specificity(self) -> tuple[int, int, int]:
        return (len(self.query), self.literal_chars, -len(self.labels))


def _compile_route(op: OperationModel) -> Route:
    template: str = op.http["requestUri"]
    path, _, query_part = template.partition("?")
    query: list[tuple[str, str | None]] = []
    for item in filter(None, query_part.split("&")):
        key, sep, value = item.partition("=")
        query.append((key, value if sep else None))
    pattern = []
    labels = []
    literal_chars = 0
    pos = 0
    for i, m in enumerate(_LABEL.finditer(path)):
        literal = path[pos : m.start()]
        pattern.append(re.escape(literal))
        literal_chars += len(literal)
        name = m.group(1)
        group = f"g{i}"
        if name.endswith("+"):
            # Greedy labels (`{Key+}`) may span segments.
            labels.append((group, name[:-1]))
            pattern.append(f"(?P<{group}>.+)")
        else:
            labels.append((group, name))
            pattern.append(f"(?P<{group}>[^/]+)")
        pos = m.end()
    pattern.append(re.escape(path[pos:]))
    literal_chars += len(path) - pos
    return Route(
        operation=op,
        method=op.http["method"].upper(),
        regex=re.compile("".join(pattern)),
        labels=tuple(labels),
        query=tuple(query),
        literal_chars=literal_chars,
    )


class Router:
    """Maps method + path (+ query) to the most specific matching operation."""

    def __init__(self, model: ServiceModel) -> None:
        routes = [_compile_route(model.operation_model(n)) for n in model.operation_names]
        self.by_name = {r.operation.name: r for r in routes}
        # Per method, most specific first, so the first hit wins.
        self._by_method: dict[str, list[Route]] = {}
        for route in sorted(routes, key=Route.specificity, reverse=True):
            self._by_method.setdefault(route.method, []).append(route)

    def match(
        self, method: str, path: str, query: Mapping[str, Sequence[str]] | None = None
    ) -> tuple[OperationModel, dict[str, str]] | None:
        if "?" in path:
            path, _, raw_query = path.partition("?")
            if query is None:
                query = parse_query(raw_query)
        query = query or {}
        method = method.upper()
        found = self._match(method, path, query)
        # Older botocore models (and so older boto3 clients) write ListFunctions
        # as `/2015-03-31/functions/`; the current one has no trailing slash.
        if found is None and len(path) > 1 and path.endswith("/"):
            found = self._match(method, path.rstrip("/"), query)
        return found

    def _match(
        self, method: str, path: str, query: Mapping[str, Sequence[str]]
    ) -> tuple[OperationModel, dict[str, str]] | None:
        for route in self._by_method.get(method, ()):
            m = route.regex.fullmatch(path)
            if m is None:
                continue
            if not all(_query_has(query, k, v) for k, v in route.query):
                continue
            return route.operation, {name: unquote(m.group(g)) for g, name in route.labels}
        return None


def _query_has(query: Mapping[str, Sequence[str]], key: str, value: str | None) -> bool:
    values = query.get(key)
    if not values:
        return False
    return value is None or value in values


@cache
def _router() -> Router:
    return Router(service_model())


def match(
    method: str, path: str, query: Mapping[str, Sequence[str]] | None = None
) -> tuple[OperationModel, dict[str, str]] | None:
    """The operation for an HTTP request and its percent-decoded URI labels.

    `path` is the raw (percent-encoded) request path; it may carry the query
    string after `?`, in which case `query` may be omitted. The query matters
    only for operations whose URI template holds a literal query parameter.
    """
    return _router().match(method, path, query)


def parse_query(raw: str) -> dict[str, list[str]]:
    return parse_qs(raw, keep_blank_values=True)


# --------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------

# Operations whose blob payload is an invocation event: AWS rejects one that is
# not JSON, with the nested message below.
_JSON_EVENT_PAYLOAD_OPERATIONS = frozenset({"Invoke", "InvokeWithResponseStream"})

# What AWS answers for a body it cannot parse as JSON. Lambda's frontend
# deserialises bodies with Jackson and reports failures as
# InvalidRequestContentException (400), "Could not parse request body into
# json: <Jackson's message>"; for Invoke the Jackson message is itself
# prefixed with "Could not parse payload into json: ". Determined from AWS
# answers quoted in public issue threads (aws/aws-cli#6433,
# aws/aws-sdk-js#1876, awsdocs/aws-lambda-developer-guide#382, #351), e.g.
# "Could not parse request body into json: Could not parse payload into json:
# Unrecognized token 'z': was expecting (JSON String, Number, Array, Object or
# token 'null', 'true' or 'false')\n at [Source: (byte[])"z{..."; line: 1,
# column: 3]". Not a SerializationException: Lambda's model declares
# InvalidRequestContentException for exactly this. The Jackson detail is
# imitated for the common cases; other cases keep Python's description.
_BODY_PREFIX = "Could not parse request body into json: "
_PAYLOAD_PREFIX = "Could not parse payload into json: "
_JACKSON_EXPECTED_VALUE = (
    "expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
)


def _invalid_content(detail: str) -> ProtocolError:
    return ProtocolError("InvalidRequestContentException", _BODY_PREFIX + detail)


def _jackson_char(c: str) -> str:
    if ord(c) < 32:
        return f"(CTRL-CHAR, code {ord(c)})"
    return f"'{c}' (code {ord(c)})"


def _jackson_source(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    shown = text if len(text) <= 500 else text[:500] + f"[truncated {len(text) - 500} chars]"
    return f'\n at [Source: (byte[])"{shown}"; line: {line}, column: {column}]'


def _json_syntax_detail(body: bytes) -> str:
    """A Jackson-like account of why `body` is not JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = body[e.start]
        shown = body.decode("utf-8", "replace")
        if e.reason == "invalid start byte":
            return f"Invalid UTF-8 start byte 0x{bad:02x}" + _jackson_source(shown, e.start)
        nxt = body[e.start + 1] if e.start + 1 < len(body) else bad
        return f"Invalid UTF-8 middle byte 0x{nxt:02x}" + _jackson_source(shown, e.start)
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        pos = e.pos
        if e.msg == "Extra data":
            reason = (
                f"Unexpected character ({_jackson_char(text[pos])}): "
                "Expected space separating root-level values"
            )
        elif pos >= len(text):
            reason = "Unexpected end-of-input: " + _JACKSON_EXPECTED_VALUE
        elif e.msg == "Expecting value" and text[pos].isalpha():
            token = re.match(r"[A-Za-z0-9_$]+", text[pos:])
            word = token.group(0) if token else text[pos]
            reason = (
                f"Unrecognized token '{word}': was expecting (JSON String, Number, Array, "
                "Object or token 'null', 'true' or 'false')"
            )
        elif e.msg == "Expecting value":
            reason = (
                f"Unexpected character ({_jackson_char(text[pos])}): " + _JACKSON_EXPECTED_VALUE
            )
        else:
            reason = f"Unexpected character ({_jackson_char(text[pos])}): {e.msg}"
        return reason + _jackson_source(text, pos)
    return "Invalid JSON encoding" + _jackson_source(text, 0)


def _load_json(body: bytes, prefix: str = "") -> Any:
    """`body` parsed as JSON, or AWS's error for it; parsed once, explained
    only when it fails."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid_content(prefix + _json_syntax_detail(body)) from None
    except ValueError:
        # Well-formed, but a number of more digits than Python converts
        # (4300); Jackson refuses long numbers too, in these words.
        raise _invalid_content(prefix + _number_too_long_detail(body)) from None


def _number_too_long_detail(body: bytes) -> str:
    longest = max((len(m) for m in re.findall(rb"\d+", body)), default=0)
    return (
        f"Number value length ({longest}) exceeds the maximum allowed "
        "(1000, from `StreamReadConstraints.getMaxNumberLength()`)"
    )


_JAVA_TYPES = {
    "integer": "java.lang.Integer",
    "long": "java.lang.Long",
    "double": "java.lang.Double",
    "float": "java.lang.Float",
    "boolean": "java.lang.Boolean",
    "string": "java.lang.String",
    "blob": "java.nio.ByteBuffer",
    "timestamp": "java.util.Date",
    "list": "java.util.List",
    "map": "java.util.Map",
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object"


def _type_mismatch(shape: Shape, value: Any, path: str) -> ProtocolError:
    java = shape.name if shape.type_name == "structure" else _JAVA_TYPES[shape.type_name]
    return _invalid_content(
        f"Cannot deserialize value of type `{java}` from {_json_kind(value)} value"
        f" (through reference chain: {path})"
    )


# Java's ranges for the model's integer (int) and long members: Jackson
# refuses a number outside them, and the messages (and protobuf's int32 and
# int64 fields behind the gateway) never see one.
_JAVA_RANGES = {
    "integer": ("int", -(2**31), 2**31 - 1),
    "long": ("long", -(2**63), 2**63 - 1),
}


def _out_of_java_range(kind: str, number: int) -> str | None:
    """Jackson's words for `number` outside the range of a Java `kind`, or None."""
    java, low, high = _JAVA_RANGES[kind]
    if low <= number <= high:
        return None
    return f"Numeric value ({number}) out of range of {java} ({low} - {high})"


def _text_integer(text: str) -> int | None:
    """The integer `text` spells, or None (Python refuses to convert more
    than 4300 digits: ValueError, which no such number reaches)."""
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _json_integer(shape: Shape, value: Any, path: str) -> int:
    """A JSON value of an integer or long member, coerced as Jackson does."""
    if isinstance(value, bool):
        raise _type_mismatch(shape, value, path)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and (parsed := _text_integer(value)) is not None:
        number = parsed
    else:
        raise _type_mismatch(shape, value, path)
    overflow = _out_of_java_range(shape.type_name, number)
    if overflow is not None:
        raise _invalid_content(f"{overflow} (through reference chain: {path})")
    return number


def _parse_timestamp(text: str) -> datetime.datetime:
    # botocore sends ISO 8601 in query strings; `Z` needs 3.11's fromisoformat.
    return datetime.datetime.fromisoformat(text)


def _from_json(shape: Shape, value: Any, path: str) -> Any:
    """A JSON value as the Python value of `shape`, coercing as Jackson does."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            raise _type_mismatch(shape, value, path)
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if value.get(key) is not None:
                out[name] = _from_json(member, value[key], f'{path}["{key}"]')
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise _type_mismatch(shape, value, path)
        member_shape: Shape = shape.member
        return [
            None if v is None else _from_json(member_shape, v, f"{path}[{i}]")
            for i, v in enumerate(value)
        ]
    if kind == "map":
        if not isinstance(value, dict):
            raise _type_mismatch(shape, value, path)
        key_shape: Shape = shape.key
        value_shape: Shape = shape.value
        return {
            _from_json(key_shape, k, path): None
            if v is None
            else _from_json(value_shape, v, f'{path}["{k}"]')
            for k, v in value.items()
        }
    if kind == "string":
        # Jackson coerces scalars to strings; containers it refuses.
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return value if isinstance(value, str) else json.dumps(value)
        raise _type_mismatch(shape, value, path)
    if kind in ("integer", "long"):
        return _json_integer(shape, value, path)
    if kind in ("double", "float"):
        if isinstance(value, bool):
            raise _type_mismatch(shape, value, path)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _type_mismatch(shape, value, path)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _type_mismatch(shape, value, path)
    if kind == "blob":
        if not isinstance(value, str):
            raise _type_mismatch(shape, value, path)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid_content(
                f"Cannot access base64-encoded bytes at {path}: illegal base64 data"
            ) from None
    if kind == "timestamp":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
        if isinstance(value, str):
            try:
                return _parse_timestamp(value)
            except ValueError:
                pass
        raise _type_mismatch(shape, value, path)
    return value


def lower_camel(name: str) -> str:
    """A member's name as AWS's messages spell it (`FunctionName` → `functionName`)."""
    return name[:1].lower() + name[1:]


def _conversion_error(shape: Shape, member: str, text: str) -> ProtocolError:
    # Not observed from Lambda (boto3 validates these client-side, so only raw
    # HTTP callers get here); this is the phrasing of AWS's Coral frontends for
    # a query/header/label value that is not of the member's type.
    java = _JAVA_TYPES.get(shape.type_name, shape.type_name).rsplit(".", 1)[-1]
    article = "an" if java[0] in "AEIOU" else "a"
    return ProtocolError(
        "SerializationException",
        f"{text} can not be converted to {article} {java} (at '{lower_camel(member)}')",
    )


def _from_text(shape: Shape, member: str, text: str) -> Any:
    """A URI label, query or header string as the value of `shape`."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        # A number beyond the member's Java type does not convert either.
        number = _text_integer(text)
        if number is None or _out_of_java_range(kind, number):
            raise _conversion_error(shape, member, text)
        return number
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise _conversion_error(shape, member, text)
        return text.lower() == "true"
    if kind == "timestamp":
        try:
            return _parse_timestamp(text)
        except ValueError:
            raise _conversion_error(shape, member, text) from None
    return text


def _parse_body_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    document = _load_json(body)
    return {} if document is None else document  # a `null` body: nothing given


def parse_request(
    op: OperationModel,
    labels: Mapping[str, str],
    query: Mapping[str, Sequence[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's input dict, keyed by the model's member names.

    Raises ProtocolError (InvalidRequestContentException) for a body that is
    not JSON or does not fit the input shape; constraint checks are left to
    `validation.validate`.
    """
    shape = op.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    # Lambda's model binds members to URI labels, query parameters (scalars and
    # lists) and single headers only; test_protocol checks it stays so.
    lower_headers = {k.lower(): v for k, v in headers.items()}
    body_members: dict[str, Shape] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                params[name] = _from_text(member, name, labels[wire])
        elif location == "querystring":
            values = query.get(wire)
            if values:
                if member.type_name == "list":
                    params[name] = [_from_text(member.member, name, v) for v in values]
                else:
                    params[name] = _from_text(member, name, values[0])
        elif location == "header":
            if wire.lower() in lower_headers:
                params[name] = _from_text(member, name, lower_headers[wire.lower()])
        elif location is None:
            body_members[name] = member

    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            if body:
                if op.name in _JSON_EVENT_PAYLOAD_OPERATIONS:
                    _load_json(body, _PAYLOAD_PREFIX)
                params[payload] = body if member.type_name == "blob" else body.decode("utf-8")
        else:
            document = _parse_body_json(body)
            if document:
                params[payload] = _from_json(member, document, payload)
        return params

    if body_members:
        document = _parse_body_json(body)
        if not isinstance(document, dict):
            raise _type_mismatch(shape, document, shape.name)
        for name, member in body_members.items():
            key = member.serialization.get("name", name)
            if document.get(key) is not None:
                params[name] = _from_json(member, document[key], f'{shape.name}["{key}"]')
    return params


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------


def _dumps(document: Any) -> bytes:
    # AWS writes compact JSON (a recorded error's Content-Length proves it).
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _timestamp_to_json(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        seconds = value.timestamp()
        return int(seconds) if seconds.is_integer() else seconds
    return value  # Lambda models most dates as ISO-8601 strings: pass through.


def _to_json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            if value.get(name) is not None:
                out[member.serialization.get("name", name)] = _to_json(member, value[name])
        return out
    if kind == "list":
        element: Shape = shape.member
        return [_to_json(element, v) for v in value]
    if kind == "map":
        value_shape: Shape = shape.value
        return {k: _to_json(value_shape, v) for k, v in value.items()}
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode("utf-8")
        return base64.b64encode(value).decode("ascii")
    if kind == "timestamp":
        return _timestamp_to_json(value)
    return value


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def serialize_response(
    op: OperationModel, output: Mapping[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for an operation's output dict.

    None members are omitted and members the model does not know are dropped,
    so nothing reaches a client that AWS would not send. A blob payload (the
    Invoke result) is the raw body; an event-stream payload takes a sequence of
    `{EventName: fields}` dicts and is encoded with `encode_event`.
    """
    status = int(op.http.get("responseCode", 200))
    headers: dict[str, str] = {}
    shape = op.output_shape
    if shape is None:
        return status, headers, b""
    body_document: dict[str, Any] = {}
    has_body_members = False
    payload = shape.serialization.get("payload")
    body = b""
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        value = output.get(name)
        if location == "statusCode":
            if value is not None:
                status = int(value)
            continue
        if location == "header":
            if value is not None:
                headers[member.serialization.get("name", name)] = _header_text(value)
            continue
        if name == payload:
            if value is None:
                continue
            if member.type_name == "blob":
                body = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            elif member.serialization.get("eventstream"):
                body = b"".join(encode_event(member, event) for event in value)
                headers["Content-Type"] = EVENT_STREAM_CONTENT_TYPE
            elif member.type_name == "string":
                body = value.encode("utf-8")
            else:
                body = _dumps(_to_json(member, value))
                headers["Content-Type"] = JSON_CONTENT_TYPE
            continue
        if location is None and payload is None:
            has_body_members = True
            if value is not None:
                body_document[member.serialization.get("name", name)] = _to_json(member, value)
    if has_body_members:
        body = _dumps(body_document)
        headers["Content-Type"] = JSON_CONTENT_TYPE
    return status, headers, body


def _event_header(name: str, value: str) -> bytes:
    # Header value type 7: a string with a 2-byte length.
    raw_name = name.encode("utf-8")
    raw_value = value.encode("utf-8")
    return (
        struct.pack("!B", len(raw_name))
        + raw_name
        + struct.pack("!BH", 7, len(raw_value))
        + raw_value
    )


def encode_event(stream_shape: Shape, event: Mapping[str, Any]) -> bytes:
    """One message of an `application/vnd.amazon.eventstream` body.

    `event` is `{EventName: fields}` for a member of the event-stream union
    (e.g. `{"PayloadChunk": {"Payload": b"..."}}` for InvokeWithResponseStream).
    The HTTP layer can stream these one by one with chunked encoding.
    """
    assert isinstance(stream_shape, StructureShape)
    ((event_name, fields),) = event.items()
    event_shape = stream_shape.members[event_name]
    assert isinstance(event_shape, StructureShape)
    payload_member = next(
        (n for n, m in event_shape.members.items() if m.serialization.get("eventpayload")), None
    )
    if payload_member is not None:
        member = event_shape.members[payload_member]
        value = fields.get(payload_member)
        if member.type_name == "blob":
            payload = b"" if value is None else bytes(value)
            content_type = "application/octet-stream"
        elif member.type_name == "string":
            payload = (value or "").encode("utf-8")
            content_type = "text/plain"
        else:
            payload = _dumps(_to_json(member, value or {}))
            content_type = JSON_CONTENT_TYPE
    else:
        payload = _dumps(_to_json(event_shape, fields))
        content_type = JSON_CONTENT_TYPE
    headers = (
        _event_header(":event-type", event_name)
        + _event_header(":content-type", content_type)
        + _event_header(":message-type", "event")
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

# Codes AWS answers with that Lambda's model does not declare; their status as
# recorded (AccessDeniedException 403, RequestEntityTooLargeException 413) or
# as AWS's common errors define it.
_UNMODELED_STATUS = {
    "ValidationException": 400,
    "SerializationException": 400,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "RequestEntityTooLargeException": 413,
    "UnknownOperationException": 404,
    "ThrottlingException": 429,
    "InternalFailure": 500,
    "ServiceUnavailableException": 503,
}


@cache
def _error_shapes() -> dict[str, StructureShape]:
    model = service_model()
    shapes: dict[str, StructureShape] = {}
    for name in model.shape_names:
        shape = model.shape_for(name)
        if isinstance(shape, StructureShape) and shape.metadata.get("exception"):
            shapes[name] = shape
    return shapes


def error_status(code: str) -> int:
    shape = _error_shapes().get(code)
    if shape is not None:
        return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
    return _UNMODELED_STATUS.get(code, 400)


def serialize_error(
    code: str, message: str | None, extra: Mapping[str, Any] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of an AWS error, as boto3 expects to parse it.

    botocore reads the code from `x-amzn-ErrorType` and the message from the
    body's `message` or `Message`; a modeled error's other members (`Type`,
    `Reason`, ...) are parsed from the body by their shape, so the body uses the
    shape's own spelling of each member (ResourceNotFoundException has
    `Message`, InvalidParameterValueException `message`, as recorded).
    """
    status = error_status(code)
    headers = {"x-amzn-ErrorType": code, "Content-Type": JSON_CONTENT_TYPE}
    shape = _error_shapes().get(code)
    members: Mapping[str, Shape] = shape.members if shape is not None else {}
    document: dict[str, Any] = {}
    if "Type" in members:
        document["Type"] = "Server" if status >= 500 else "User"
    document["Message" if "Message" in members else "message"] = message
    for key, value in (extra or {}).items():
        member = members.get(key)
        if member is not None and member.serialization.get("location") == "header":
            if value is not None:
                headers[member.serialization.get("name", key)] = _header_text(value)
        elif value is None:
            document.pop(key, None)
        else:
            document[key] = value if member is None else _to_json(member, value)
    return status, headers, _dumps(document)


def serialize_exception(error: AwsError) -> tuple[int, dict[str, str], bytes]:
    return serialize_error(error.code, error.message, error.extra)


def with_request_id(headers: Mapping[str, str], request_id: str) -> dict[str, str]:
    """`headers` plus the request id AWS puts on every answer."""
    out = dict(headers)
    out["x-amzn-RequestId"] = request_id
    out.setdefault("Content-Type", JSON_CONTENT_TYPE)
    return out
