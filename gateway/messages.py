"""AWS's JSON-shaped values to and from the Lambda API's protobuf messages.

The messages are generated from the same botocore model the gateway parses
with (scripts/gen_lambda_proto.py), and every field's json_name is the AWS
member name, so the conversion is mechanical. What protobuf cannot say by
itself is whether an empty list or map was there at all: on the way in the
request's `present_members` mask carries that; on the way out an empty one is
left out, except where AWS writes it (the list operations' results and the
members below, as recorded).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from functools import cache
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

PRESENT = "present_members"
# protobuf's descriptor classes differ between its Python and upb backends;
# the stubs name one, the runtime hands out the other.
Descriptor = Any
Field = Any
TIMESTAMP = "google.protobuf.Timestamp"

# Empty lists and maps AWS writes out: "<message>.<field>" (recorded).
KEEP_EMPTY = frozenset(
    {
        "lambdafleet.api.v1.EnvironmentResponse.variables",
        "lambdafleet.api.v1.VpcConfigResponse.subnet_ids",
        "lambdafleet.api.v1.VpcConfigResponse.security_group_ids",
        "lambdafleet.api.v1.ListTagsResponse.tags",
    }
)


@cache
def _by_json_name(descriptor: Descriptor) -> dict[str, Field]:
    return {f.json_name: f for f in descriptor.fields if f.name != PRESENT}


def _is_map(field: Field) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
    )


def _is_wrapper(descriptor: Descriptor) -> bool:
    # A map whose values are lists holds `<Shape>Value { repeated items }`.
    return [f.name for f in descriptor.fields] == ["items"] and descriptor.name.endswith("Value")


def _scalar_in(field: Field, value: Any) -> Any:
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return float(value)
    if field.type == FieldDescriptor.TYPE_BYTES and isinstance(value, str):
        return value.encode("utf-8")
    return value


def _timestamp_in(value: Any) -> Timestamp:
    ts = Timestamp()
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        ts.FromDatetime(value)
    else:
        ts.FromNanoseconds(int(float(value) * 1e9))
    return ts


def fill(message: Message, data: Mapping[str, Any]) -> None:
    """Set `message`'s fields from an AWS-shaped dict (unknown keys ignored)."""
    fields = _by_json_name(message.DESCRIPTOR)
    for key, value in data.items():
        field = fields.get(key)
        if field is None or value is None:
            continue
        target = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if v is None:
                    continue
                if value_field.type != FieldDescriptor.TYPE_MESSAGE:
                    target[k] = _scalar_in(value_field, v)
                elif _is_wrapper(value_field.message_type):
                    target[k].items.extend(v)
                else:
                    fill(target[k], v)
        elif field.is_repeated:
            items = [v for v in value if v is not None]
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                target.extend(_scalar_in(field, v) for v in items)
            else:
                for item in items:
                    fill(target.add(), item)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.full_name == TIMESTAMP:
                target.CopyFrom(_timestamp_in(value))
            else:
                target.SetInParent()
                fill(target, value)
        else:
            setattr(message, field.name, _scalar_in(field, value))


def to_request(message_type: type[Message], params: Mapping[str, Any]) -> Message:
    """A request message from parsed AWS input, with its presence mask."""
    message = message_type()
    fill(message, params)
    mask = getattr(message, PRESENT, None)
    if mask is not None:
        mask.paths.extend(k for k, v in params.items() if v is not None)
    return message


def _value_out(field: Field, value: Any) -> Any:
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return value
    if field.message_type.full_name == TIMESTAMP:
        return value.ToDatetime(tzinfo=datetime.UTC)
    if _is_wrapper(field.message_type):
        return list(value.items)
    return to_dict(value)


def to_dict(message: Message, *, keep_empty: bool = False) -> dict[str, Any]:
    """An AWS-shaped dict of `message`: set fields only, empty lists and maps
    left out unless `keep_empty` or AWS writes them (KEEP_EMPTY)."""
    out: dict[str, Any] = {}
    descriptor: Descriptor = message.DESCRIPTOR
    for field in descriptor.fields:
        if field.name == PRESENT:
            continue
        value = getattr(message, field.name)
        keep = keep_empty or f"{descriptor.full_name}.{field.name}" in KEEP_EMPTY
        if _is_map(field):
            if value or keep:
                value_field = field.message_type.fields_by_name["value"]
                out[field.json_name] = {k: _value_out(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            if value or keep:
                out[field.json_name] = [_value_out(field, v) for v in value]
        elif message.HasField(field.name):
            out[field.json_name] = _value_out(field, value)
    return out
