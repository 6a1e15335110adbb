"""Inputs for any Lambda operation, derived from the shipped service model.

`valid_input` builds a request the model accepts (every required member, each
value meeting its pattern, length, range and enum), choosing string values
from a pool of realistic candidates so that names, ARNs and ids look like
what clients send. `strategies` gives hypothesis strategies that mix valid
values with wrong types, out-of-range numbers and pattern violations.
"""

from __future__ import annotations

import datetime
from functools import cache
from typing import Any

from botocore.model import OperationModel, Shape
from hypothesis import strategies as st
from lambdafleet.gateway import validation

from lambdafleet.service_model import service_model

MODEL = service_model()
ACCOUNT = "000000000000"
REGION = "us-east-1"

# Realistic values, tried in order; the first one the member's constraints
# accept is used.
CANDIDATES = [
    "fn-coverage",
    "1",
    "$LATEST",
    "Active",
    "x86_64",
    "python3.12",
    "app.handler",
    "5",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn-coverage",
    f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:coverage-layer:1",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:coverage-layer",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider:coverage-cp",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:3f0e6d2a-4a7e-4c2b-9d1e-0f1a2b3c4d5e",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn-coverage:$LATEST/durable-execution/"
    "exec-1/3f0e6d2a-4a7e-4c2b-9d1e-0f1a2b3c4d5e",
    f"arn:aws:sqs:{REGION}:{ACCOUNT}:coverage-queue",
    f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/p/abcdefghij",
    "arn:aws:ec2:us-east-1:000000000000:subnet/subnet-0123456789",
    "3f0e6d2a-4a7e-4c2b-9d1e-0f1a2b3c4d5e",
    "csc-0123456789abcdef0",
    "sid-1",
    "lambda:InvokeFunction",
    "lambda:GetLayerVersion",
    "*",
    "subnet-0123456789",
    "sg-0123456789",
    "s3.amazonaws.com",
    "coverage",
    "abc",
    "a",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "{}",
    "0",
]


def _java_pattern(pattern: str) -> Any:
    # The gateway's own reading of a model pattern (Java's semantics).
    return validation.compiled(pattern)


def string_ok(shape: Shape, value: str) -> bool:
    # The gateway's constraints: the model's, plus AWS's server-side patterns
    # where they are narrower.
    meta = {**shape.metadata, **validation._constraints(shape)}
    if "enum" in meta and value not in meta["enum"]:
        return False
    if not meta.get("min", 0) <= len(value) <= meta.get("max", 1 << 30):
        return False
    pattern = meta.get("pattern")
    if pattern:
        compiled = _java_pattern(pattern)
        if compiled is not None and compiled.fullmatch(value) is None:
            return False
    return True


@cache
def valid_string(shape: Shape) -> str:
    enum = shape.metadata.get("enum")
    if enum:
        return str(enum[0])
    for candidate in CANDIDATES:
        if string_ok(shape, candidate):
            return candidate
    minimum = shape.metadata.get("min", 1)
    return "a" * max(minimum, 1)


def valid_value(shape: Shape, depth: int = 0, *, required_only: bool = True) -> Any:
    kind = shape.type_name
    if kind == "structure":
        members = shape.members.items()
        return {
            name: valid_value(member, depth + 1, required_only=required_only)
            for name, member in members
            if (name in shape.required_members or not required_only)
            and not member.serialization.get("eventstream")
            and depth < 4
        }
    if kind == "list":
        minimum = shape.metadata.get("min", 0)
        return [valid_value(shape.member, depth + 1) for _ in range(max(minimum, 1))]
    if kind == "map":
        return {"key1": valid_value(shape.value, depth + 1)}
    if kind == "string":
        return valid_string(shape)
    if kind in ("integer", "long"):
        minimum = int(shape.metadata.get("min", 1))
        maximum = int(shape.metadata.get("max", minimum + 10))
        return min(max(minimum, 1), maximum)
    if kind in ("double", "float"):
        return float(shape.metadata.get("min", 0.5))
    if kind == "boolean":
        return False
    if kind == "blob":
        return b"{}"
    if kind == "timestamp":
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    raise AssertionError(f"no value for {kind}")


def valid_input(op: OperationModel) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    return {name: valid_value(shape.members[name], 1) for name in shape.required_members}


# -- hypothesis ---------------------------------------------------------------

_TEXT = st.text(min_size=0, max_size=80)


def value_strategy(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """A valid value, or one of the ways clients get it wrong."""
    kind = shape.type_name
    wrong = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        _TEXT,
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    )
    if kind == "structure":
        if depth > 3:
            return st.just({})
        members = {
            name: value_strategy(member, depth + 1)
            for name, member in shape.members.items()
            if not member.serialization.get("eventstream")
        }
        right: st.SearchStrategy[Any] = st.fixed_dictionaries({}, optional=members)
    elif kind == "list":
        right = st.lists(value_strategy(shape.member, depth + 1), max_size=3)
    elif kind == "map":
        right = st.dictionaries(_TEXT, value_strategy(shape.value, depth + 1), max_size=3)
    elif kind == "string":
        enum = shape.metadata.get("enum")
        options = [st.just(valid_string(shape)), _TEXT]
        if enum:
            options.append(st.sampled_from(enum))
        if "max" in shape.metadata:
            options.append(st.just("x" * (int(shape.metadata["max"]) + 1)))
        right = st.one_of(*options)
    elif kind in ("integer", "long"):
        right = st.integers(-(2**33), 2**33)
    elif kind in ("double", "float"):
        right = st.floats(allow_nan=False)
    elif kind == "boolean":
        right = st.booleans()
    elif kind == "blob":
        right = st.binary(max_size=64)
    else:
        right = st.just(valid_value(shape))
    return st.one_of(right, right, right, wrong)


def input_strategy(op: OperationModel) -> st.SearchStrategy[dict[str, Any]]:
    shape = op.input_shape
    if shape is None:
        return st.just({})
    base = valid_input(op)
    members = {
        name: value_strategy(member, 1)
        for name, member in shape.members.items()
        if not member.serialization.get("eventstream")
    }
    return st.fixed_dictionaries({}, optional=members).map(lambda extra: {**base, **extra})
