"""AWS's model-constraint validation of an operation's input.

AWS checks every request against its own copy of the service model before any
business logic and answers `ValidationException` with a message such as::

    2 validation errors detected: Value 'x' at 'functionName' failed to satisfy
    constraint: Member must have length less than or equal to 140; Value ...

botocore's model carries the same constraints, with a few differences to what
AWS's servers enforce; those are overridden below from the recorded answers in
/work/shared/aws-recorded (the oracle), each marked with where it was seen.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import regex
from botocore.model import OperationModel, Shape, StructureShape

from .protocol import AwsError, ValidationError, lower_camel, service_model

__all__ = [
    "SUPPORTED_RUNTIMES",
    "ValidationError",
    "check_runtime",
    "collect_errors",
    "compiled",
    "format_message",
    "java_hash_order",
    "java_pattern",
    "validate",
]

# AWS's servers accept European Sovereign Cloud regions (`eusc-de-east-1`) in
# every region pattern; botocore's copy predates that. Recorded in the patterns
# of functionName, resource, destination and layer ARNs.
_REGION = "[a-z]{2}((-gov)|(-iso([a-z]?)))?"
_SERVER_REGION = "(eusc-)?" + _REGION

_SERVER_LAYER_VERSION_ARN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}"
    r":layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)

# Constraints AWS's servers declare where botocore's model differs, by shape.
_SHAPE_OVERRIDES: dict[str, dict[str, Any]] = {
    # test_invalid_vpc_config_subnet / _security_group: botocore has none.
    "SubnetId": {"max": 1024, "min": 0, "pattern": "subnet-[0-9a-z]*"},
    "SecurityGroupId": {"max": 1024, "min": 0, "pattern": "sg-[0-9a-zA-Z]*"},
    # test_layer_function_exceptions, test_layer_exceptions (get by ARN).
    "LayerVersionArn": {"max": 2048, "min": 1, "pattern": _SERVER_LAYER_VERSION_ARN},
    # test_tag_exceptions: layers are taggable on the server.
    "TaggableResource": {
        "pattern": (
            r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
            r":\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)"
            r"|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-"
            r"[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
            r"|capacity-provider:[a-zA-Z0-9-_]+)"
        )
    },
}

# Lists whose members AWS does not declare non-null: their bracketed member
# constraints lack "Member must not be null" (vpcConfig.subnetIds and
# .securityGroupIds as recorded; layers and architectures carry it).
_NULLABLE_MEMBER_LISTS = frozenset({"SubnetIds", "SecurityGroupIds"})

# Lists whose member enum AWS reports bare instead of wrapped in "Member must
# satisfy constraint: [...]" (test_layer_exceptions, compatibleRuntimes).
_LIST_LEVEL_ENUM = frozenset({"CompatibleRuntimes"})

# Enum orders AWS prints that do not follow `java_hash_order` (recorded:
# test_lambda_url_invalid_invoke_mode, test_create_event_source_validation).
_ENUM_ORDER: dict[str, tuple[str, ...]] = {
    "InvokeMode": ("RESPONSE_STREAM", "BUFFERED"),
    "EventSourcePosition": ("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"),
}

# The runtimes AWS accepts for new functions and layers, in the order it lists
# them (test_create_lambda_exceptions, test_layer_exceptions, 2025-11-25). The
# order is a Java HashSet's (see `java_hash_order`), but a few share a bucket
# and their insertion order is unknown, so the recorded order is kept. The
# model's newer `ruby4.0` was not among them then, so it is left out here too.
SUPPORTED_RUNTIMES = (
    "nodejs20.x", "python3.14", "provided.al2023", "python3.12", "python3.13", "nodejs24.x",
    "nodejs22.x", "java25", "python3.10", "python3.11", "java21", "ruby3.3", "ruby3.4",
    "ruby3.2", "python3.8", "python3.9", "java17", "nodejs16.x", "dotnet10", "dotnet8",
    "java11", "dotnet6", "nodejs18.x", "provided.al2", "java8.al2",
)  # fmt: skip
_UNRELEASED_RUNTIMES = frozenset({"ruby4.0"})

# ListLayers' compatibleRuntime accepts a wider set, printed in this order
# (test_layer_exceptions, list_layers_exc_compatibleruntime_invalid).
_LAYER_FILTER_RUNTIMES = (
    "ruby3.5, ruby2.6, dotnetcore1.0, python3.7, nodejs8.10, nasa, ruby2.7, "
    "python2.7-greengrass, dotnetcore2.0, python3.8, java21, dotnet6, dotnetcore2.1, "
    "python3.9, java11, nodejs6.10, provided, dotnetcore3.1, dotnet8, java25, java17, nodejs, "
    "nodejs4.3, java8.al2, go1.x, dotnet10, nodejs20.x, go1.9, byol, nodejs10.x, "
    "provided.al2023, nodejs22.x, python3.10, java8, nodejs12.x, python3.11, nodejs24.x, "
    "nodejs8.x, python3.12, nodejs14.x, nodejs8.9, nodejs26.x, python3.13, python3.14, "
    "nodejs16.x, python3.15, provided.al2, nodejs4.3-edge, nodejs18.x, ruby3.2, python3.4, "
    "ruby3.3, ruby3.4, ruby2.5, python3.6, python2.7"
).split(", ")
_LAYER_FILTER_OPERATIONS = frozenset({"ListLayers", "ListLayerVersions"})

# Members AWS leaves to business logic instead of its validator: an unknown
# runtime is an InvalidParameterValueException (see `check_runtime`).
_UNVALIDATED = frozenset(
    {("CreateFunction", "runtime"), ("UpdateFunctionConfiguration", "runtime")}
)

_LENGTH_TYPES = frozenset({"string", "blob", "list", "map"})
_NUMBER_TYPES = frozenset({"integer", "long", "double", "float"})


def java_hash_order(values: Sequence[str]) -> list[str]:
    """`values` in the iteration order of a Java `HashSet` built from them.

    AWS prints enum value sets in that order: it reproduces the recorded
    25-runtime list and [Terminate, Allow], [x86_64, arm64], [PublishedVersions,
    None], where botocore's order differs.
    """
    # HashSet(Collection) sizes its table to max(n / .75 + 1, 16), rounded up
    # to a power of two; iteration walks the buckets in order.
    wanted = max(int(len(values) / 0.75) + 1, 16)
    capacity = 1 << (wanted - 1).bit_length()

    def bucket(value: str) -> int:
        h = 0
        for ch in value:  # String.hashCode over UTF-16 units; AWS's are ASCII
            h = (31 * h + ord(ch)) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(values, key=bucket)  # stable: a bucket keeps insertion order


# Java's predefined classes that are ASCII-only where Python's are Unicode.
_ASCII_CLASSES = frozenset("dDsSwWbB")


def java_pattern(pattern: str) -> str:
    """`pattern`, written in Java's regex dialect as AWS's model is, for the
    `regex` package: `\\p{L}` and the other Unicode properties keep their
    meaning (Python's `re` cannot compile them, and `regex`'s ASCII flag would
    narrow them to ASCII), while `\\d`, `\\s`, `\\w` and `\\b`, which are
    ASCII-only in Java, are put in an ASCII-scoped group (a whole character
    class when they appear in one)."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            token = pattern[i : i + 2]
            out.append(f"(?a:{token})" if token[1] in _ASCII_CLASSES else token)
            i += 2
        elif c == "[":
            end = _class_end(pattern, i)
            body = pattern[i : end + 1]
            escapes = re.findall(r"\\(.)", body)
            ascii_scoped = any(e in _ASCII_CLASSES for e in escapes)
            if ascii_scoped and any(e in "pP" for e in escapes):
                raise ValueError(f"cannot keep Java's meaning of {body!r} in one class")
            out.append(f"(?a:{body})" if ascii_scoped else body)
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the character class opened at `start`."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading `]` is literal
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "[":
            raise ValueError(f"nested character classes are not supported: {pattern!r}")
        if pattern[i] == "]":
            return i
        i += 1
    raise ValueError(f"unterminated character class in {pattern!r}")


@cache
def compiled(pattern: str) -> regex.Pattern[str]:
    """A model pattern compiled with Java's semantics (`matches()` is a full
    match: callers use `fullmatch`)."""
    return regex.compile(java_pattern(pattern))


def _constraints(shape: Shape) -> dict[str, Any]:
    found = {k: shape.metadata[k] for k in ("min", "max", "pattern") if k in shape.metadata}
    found.update(_SHAPE_OVERRIDES.get(shape.name, {}))
    if "pattern" in found and "(eusc-)?" not in found["pattern"]:
        found["pattern"] = found["pattern"].replace(_REGION, _SERVER_REGION)
    return found


def _enum_values(operation: str, shape: Shape) -> list[str] | None:
    values: list[str] | None = shape.metadata.get("enum")
    if not values:
        return None
    if shape.name == "Runtime":
        if operation in _LAYER_FILTER_OPERATIONS:
            return list(_LAYER_FILTER_RUNTIMES)
        return list(SUPPORTED_RUNTIMES)
    if shape.name in _ENUM_ORDER:
        return list(_ENUM_ORDER[shape.name])
    return java_hash_order(values)


def _number(shape: Shape, value: float) -> str:
    if shape.type_name in ("double", "float"):
        return repr(float(value))  # Java prints doubles as 1.0, 0.5, -1.0
    return str(int(value))


def _length(shape: Shape, value: Any) -> int:
    if shape.type_name == "string":
        return len(value.encode("utf-16-le")) // 2  # Java counts UTF-16 units
    return len(value)


_Check = tuple[str, Callable[[Any], bool]]


@cache
def _checks(operation: str, shape: Shape) -> tuple[_Check, ...]:
    """Each constraint of `shape`: as AWS phrases it, and a test that a value
    breaks it; in the order AWS lists them."""
    checks: list[_Check] = []
    limits = _constraints(shape)
    kind = shape.type_name
    if kind in _LENGTH_TYPES:
        if "max" in limits:
            most = limits["max"]
            checks.append(
                (f"Member must have length less than or equal to {most}",
                 lambda v: _length(shape, v) > most)
            )  # fmt: skip
        if "min" in limits:
            least = limits["min"]
            checks.append(
                (f"Member must have length greater than or equal to {least}",
                 lambda v: _length(shape, v) < least)
            )  # fmt: skip
    if kind == "string" and "pattern" in limits:
        matcher = compiled(limits["pattern"])
        checks.append(
            (f"Member must satisfy regular expression pattern: {limits['pattern']}",
             lambda v: matcher.fullmatch(v) is None)
        )  # fmt: skip
    enum = _enum_values(operation, shape)
    if enum is not None:
        allowed = frozenset(enum)
        if operation == "PublishLayerVersion" and shape.name == "Runtime":
            # Layers may still name deprecated runtimes (python3.7, go1.x,
            # provided: test_layer_compatibilities); the message lists only
            # the current ones.
            allowed |= frozenset(shape.metadata.get("enum", ()))
        checks.append(
            (f"Member must satisfy enum value set: [{', '.join(enum)}]", lambda v: v not in allowed)
        )
    if kind in _NUMBER_TYPES:
        if "max" in limits:
            high = limits["max"]
            checks.append(
                (f"Member must have value less than or equal to {_number(shape, high)}",
                 lambda v: v > high)
            )  # fmt: skip
        if "min" in limits:
            low = limits["min"]
            checks.append(
                (f"Member must have value greater than or equal to {_number(shape, low)}",
                 lambda v: v < low)
            )  # fmt: skip
    return tuple(checks)


def _descriptions(operation: str, shape: Shape) -> list[str]:
    return [description for description, _ in _checks(operation, shape)]


def _violations(operation: str, shape: Shape, value: Any) -> list[str]:
    return [description for description, broken in _checks(operation, shape) if broken(value)]


def _render(shape: Shape, value: Any) -> str:
    """`value` as Java's toString shows it in AWS's messages."""
    if value is None:
        return "null"
    kind = shape.type_name
    if kind == "list":
        return "[" + ", ".join(_render(shape.member, v) for v in value) + "]"
    if kind == "map":
        return "{" + ", ".join(f"{k}={_render(shape.value, v)}" for k, v in value.items()) + "}"
    if kind == "structure":
        fields = ", ".join(
            f"{lower_camel(n)}={_render(m, value.get(n))}" for n, m in shape.members.items()
        )
        return f"{shape.name}({fields})"
    if kind == "blob":
        n = len(value)
        return f"java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind in ("double", "float"):
        return repr(float(value))
    if isinstance(value, datetime.datetime):
        return value.strftime("%a %b %d %H:%M:%S %Z %Y")
    return str(value)


def _value_at(shape: Shape, value: Any, path: str) -> str:
    # AWS omits sensitive values from its messages ("Value at 'password'").
    if shape.metadata.get("sensitive"):
        return f"Value at '{path}'"
    if value is None:
        return f"Value null at '{path}'"
    return f"Value '{_render(shape, value)}' at '{path}'"


class _Validator:
    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.errors: list[str] = []

    def fail(self, shape: Shape, value: Any, path: str, constraint: str) -> None:
        self.errors.append(
            f"{_value_at(shape, value, path)} failed to satisfy constraint: {constraint}"
        )

    def member(self, shape: Shape, value: Any, path: str, required: bool) -> None:
        if value is None:
            if required:
                self.fail(shape, None, path, "Member must not be null")
            return
        if (self.operation, path) in _UNVALIDATED:
            return
        for constraint in _violations(self.operation, shape, value):
            self.fail(shape, value, path, constraint)
        kind = shape.type_name
        if kind == "structure":
            self.structure(shape, value, path)
        elif kind == "list":
            self.elements(shape, value, path)
        elif kind == "map":
            self.entries(shape, value, path)

    def structure(self, shape: StructureShape, value: Mapping[str, Any], path: str) -> None:
        required = set(shape.required_members)
        for name, member in shape.members.items():
            self.member(member, value.get(name), f"{path}.{lower_camel(name)}", name in required)

    def _bracketed(self, shape: Shape, nullable: bool) -> str:
        described = _descriptions(self.operation, shape)
        if not nullable:
            described.append("Member must not be null")
        return "[" + ", ".join(described) + "]"

    def elements(self, shape: Shape, value: Sequence[Any], path: str) -> None:
        element: Shape = shape.member
        nullable = shape.name in _NULLABLE_MEMBER_LISTS
        if element.type_name in ("structure", "list", "map"):
            # AWS names an element by its 1-based index: 'tags.1.member.key'.
            for i, v in enumerate(value, start=1):
                self.member(element, v, f"{path}.{i}.member", not nullable)
            return
        broken = [
            v
            for v in value
            if (v is None and not nullable)
            or (v is not None and _violations(self.operation, element, v))
        ]
        if not broken:
            return
        first = next((v for v in broken if v is not None), None)
        if shape.name in _LIST_LEVEL_ENUM and first is not None:
            for constraint in _violations(self.operation, element, first):
                self.fail(shape, value, path, constraint)
            return
        self.fail(
            shape,
            value,
            path,
            f"Member must satisfy constraint: {self._bracketed(element, nullable)}",
        )

    def entries(self, shape: Shape, value: Mapping[Any, Any], path: str) -> None:
        key_shape: Shape = shape.key
        value_shape: Shape = shape.value
        if any(_violations(self.operation, key_shape, k) for k in value):
            bracket = self._bracketed(key_shape, nullable=True)
            self.fail(shape, value, path, f"Map keys must satisfy constraint: {bracket}")
        if value_shape.type_name in ("structure", "list", "map"):
            for k, v in value.items():
                self.member(value_shape, v, f"{path}.{k}", True)
            return
        if any(v is None or _violations(self.operation, value_shape, v) for v in value.values()):
            bracket = self._bracketed(value_shape, nullable=False)
            self.fail(shape, value, path, f"Map value must satisfy constraint: {bracket}")


# The recorded GetFunction case lists the qualifier's (query) error before the
# function name's (URI) one, though the model declares FunctionName first: AWS
# checks query and header members, then URI labels, then the body.
_LOCATION_ORDER = {"querystring": 0, "header": 0, "headers": 0, "uri": 1}


def collect_errors(op: OperationModel, params: Mapping[str, Any]) -> list[str]:
    """Every constraint failure of `params`, as AWS phrases each."""
    shape = op.input_shape
    if shape is None:
        return []
    validator = _Validator(op.name)
    required = set(shape.required_members)
    members = sorted(
        shape.members.items(),
        key=lambda item: _LOCATION_ORDER.get(item[1].serialization.get("location"), 2),
    )
    for name, member in members:
        validator.member(member, params.get(name), lower_camel(name), name in required)
    return validator.errors


def format_message(errors: Sequence[str]) -> str:
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} validation {noun} detected: " + "; ".join(errors)


def validate(op: OperationModel, params: Mapping[str, Any]) -> None:
    """Raise ValidationError, worded as AWS does, if `params` break the model."""
    errors = collect_errors(op, params)
    if errors:
        raise ValidationError(format_message(errors))


_RUNTIME_ARN = re.compile(r"arn:(aws[a-zA-Z-]*):lambda:[a-z0-9-]+::runtime:.+", re.ASCII)


@cache
def _model_runtimes() -> frozenset[str]:
    return frozenset(service_model().shape_for("Runtime").enum)


def check_runtime(runtime: str) -> None:
    """AWS's checks of CreateFunction's and UpdateFunctionConfiguration's Runtime.

    Not model validation: AWS answers InvalidParameterValueException, without
    the "N validation errors detected" prefix and without quotes around the
    value (test_create_lambda_exceptions), or, for a runtime it retired, the
    deprecation message (test_create_deprecated_function_runtime_*).
    """
    if runtime in SUPPORTED_RUNTIMES or _RUNTIME_ARN.fullmatch(runtime):
        return
    if runtime in _model_runtimes() and runtime not in _UNRELEASED_RUNTIMES:
        raise AwsError(
            "InvalidParameterValueException",
            f"The runtime parameter of {runtime} is no longer supported for creating or updating "
            "AWS Lambda functions. We recommend you use a supported runtime while creating or "
            "updating functions.",
        )
    listed = ", ".join(SUPPORTED_RUNTIMES)
    raise AwsError(
        "InvalidParameterValueException",
        f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum "
        f"value set: [{listed}] or be a valid ARN",
    )
