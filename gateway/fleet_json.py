"""The `/_fleet/` endpoints' answers as JSON.

protobuf's JSON mapping writes 64-bit integers as strings (`"4"`), for
JavaScript's sake; the operator endpoints write them as numbers, as any
other JSON API does (a dashboard's numbers stay far below 2^53).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})


def as_dict(message: Message) -> dict[str, Any]:
    """A response as JSON: proto field names, fields at their defaults too,
    every integer a number."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _int64_as_numbers(message.DESCRIPTOR, data)
    return data


def _int64_as_numbers(descriptor: Any, data: dict[str, Any]) -> None:
    """Turn `data`'s 64-bit integer strings (as MessageToDict wrote them for
    `descriptor`) into numbers, in place, nested messages and maps included."""
    for field in descriptor.fields:
        value = data.get(field.name)
        if value is None:
            continue
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            for key, item in value.items():
                value[key] = _converted(value_field, item)
        elif field.is_repeated:
            data[field.name] = [_converted(field, item) for item in value]
        else:
            data[field.name] = _converted(field, value)


def _converted(field: Any, value: Any) -> Any:
    if field.cpp_type in _INT64 and isinstance(value, str):
        return int(value)
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and isinstance(value, dict):
        # Well-known types (Timestamp, ...) are strings here, not dicts.
        _int64_as_numbers(field.message_type, value)
    return value
