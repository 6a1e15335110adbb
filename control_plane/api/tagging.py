"""Tags: TagResource, UntagResource, ListTags.

A function's tags live in its FunctionRecord; every other taggable resource
(event source mapping, code signing config, capacity provider) keeps them in
kind TAGS under its ARN, and must exist in its own kind (ids per kinds.py).
The gateway has already checked the ARN against the model's pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, invalid_parameter, not_found

from ..store import ResourceStore, Scope
from .kinds import (
    CAPACITY_PROVIDER,
    CODE_SIGNING_CONFIG,
    EVENT_SOURCE_MAPPING,
    get_tags,
    set_tags,
)
from .registry import Api, Caller, operation
from .resolve import load, save

# AWS's limit on tags per resource.
MAX_TAGS = 50

_ARN = re.compile(
    r"arn:(?P<partition>[^:]+):lambda:(?P<region>[^:]+):(?P<account>\d{12}):"
    r"(?P<type>[a-z-]+):(?P<id>[^:]+)(?::(?P<qualifier>.+))?"
)

# Non-function resource types: their store kind and how AWS names a miss.
_KINDS = {
    "event-source-mapping": (EVENT_SOURCE_MAPPING, "Event source mapping not found: {arn}"),
    "capacity-provider": (CAPACITY_PROVIDER, "Capacity provider not found: {arn}"),
    "code-signing-config": (
        CODE_SIGNING_CONFIG,
        "The Lambda code signing configuration {arn} can not be found.",
    ),
}

QUALIFIED_FUNCTION = (
    "Tags on function aliases and versions are not supported. Please specify a function ARN."
)


# --- pure ---------------------------------------------------------------------


@dataclass(frozen=True)
class TaggedArn:
    """A taggable resource named by ARN."""

    arn: str
    region: str
    account: str
    type: str
    id: str


def parse_resource(arn: str) -> TaggedArn:
    """The resource `arn` names; AWS's error for a function version or alias."""
    m = _ARN.fullmatch(arn)
    if m is None:  # the gateway's pattern check makes this unreachable from AWS clients
        raise not_found(RESOURCE_NOT_FOUND)
    if m["type"] == "function" and m["qualifier"] is not None:
        raise invalid_parameter(QUALIFIED_FUNCTION)
    return TaggedArn(arn, m["region"], m["account"], m["type"], m["id"])


RESOURCE_NOT_FOUND = "The resource you requested does not exist."


def merged(current: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """TagResource's result: `new` over `current`, within AWS's limits."""
    if not new:
        # AWS's (unhelpful) answer to TagResource without tags (recorded).
        raise invalid_parameter("An error occurred and the request cannot be processed.")
    out = {**current, **new}
    check_count(out)
    return out


def check_count(tags: dict[str, str]) -> None:
    """AWS's tag limit (also CreateFunction's and CreateEventSourceMapping's)."""
    if len(tags) > MAX_TAGS:
        raise invalid_parameter("Number of tags exceeds resource tag limit.")


def without(current: dict[str, str], keys: list[str]) -> dict[str, str]:
    """UntagResource's result: keys that are not there are ignored (recorded)."""
    gone = set(keys)
    return {k: v for k, v in current.items() if k not in gone}


# --- I/O ----------------------------------------------------------------------


def _scope(caller: Caller, resource: TaggedArn) -> Scope:
    # Tagging is open to other accounts (a resource policy decides); a
    # resource of another region is not reachable here: not found.
    return Scope(resource.account, caller.region)


def _missing(resource: TaggedArn) -> LambdaError:
    if resource.type == "function":
        return not_found(f"Function not found: {resource.arn}")
    found = _KINDS.get(resource.type)
    if found is None:
        return not_found(RESOURCE_NOT_FOUND)
    return not_found(found[1].format(arn=resource.arn))


def read_tags(
    store: ResourceStore, scope: Scope, resource: TaggedArn, region: str
) -> dict[str, str]:
    if resource.region != region:
        raise _missing(resource)
    if resource.type == "function":
        record = load(store, scope, resource.id)
        if record is None:
            raise _missing(resource)
        return dict(record.tags)
    found = _KINDS.get(resource.type)
    if found is None or not store.exists(scope, found[0], resource.id):
        raise _missing(resource)
    return get_tags(store, scope, resource.arn)


def write_tags(
    store: ResourceStore, scope: Scope, resource: TaggedArn, tags: dict[str, str]
) -> None:
    if resource.type == "function":
        record = load(store, scope, resource.id)
        assert record is not None  # read_tags checked, in the same transaction
        record.tags.clear()
        record.tags.update(tags)
        save(store, scope, record)
    else:
        set_tags(store, scope, resource.arn, tags)


@operation("TagResource")
async def tag_resource(
    api_: Api, caller: Caller, request: api.TagResourceRequest
) -> empty_pb2.Empty:
    resource = parse_resource(request.resource)
    scope = _scope(caller, resource)
    with api_.store.transaction():
        current = read_tags(api_.store, scope, resource, caller.region)
        write_tags(api_.store, scope, resource, merged(current, dict(request.tags)))
    return empty_pb2.Empty()


@operation("UntagResource")
async def untag_resource(
    api_: Api, caller: Caller, request: api.UntagResourceRequest
) -> empty_pb2.Empty:
    resource = parse_resource(request.resource)
    scope = _scope(caller, resource)
    with api_.store.transaction():
        current = read_tags(api_.store, scope, resource, caller.region)
        write_tags(api_.store, scope, resource, without(current, list(request.tag_keys)))
    return empty_pb2.Empty()


@operation("ListTags")
async def list_tags(
    api_: Api, caller: Caller, request: api.ListTagsRequest
) -> api.ListTagsResponse:
    resource = parse_resource(request.resource)
    tags = read_tags(api_.store, _scope(caller, resource), resource, caller.region)
    return api.ListTagsResponse(tags=tags)
