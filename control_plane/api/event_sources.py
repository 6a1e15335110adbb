"""Event source mappings: stored, validated and answered as AWS does.

lambdafleet keeps the mappings but does not poll their sources (no SQS,
Kinesis, DynamoDB, Kafka, MQ or DocumentDB consumer runs): a mapping is a
record that reaches Enabled or Disabled and stays there.

A mapping is a regional row (kinds.EVENT_SOURCE_MAPPING, id UUID) stored
without `function=`: AWS keeps a mapping when its function is deleted
(test_event_source_mapping_lifecycle_delete_function). The row holds the
settled state (Enabled/Disabled); the answers to Create, Update and Delete
show the transition AWS reports at that moment (Creating, Enabling,
Disabling, Updating, Deleting).

The decisions (source type, defaults per type, validation) are pure
functions at the top; the handlers below do the store I/O.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, conflict, invalid_parameter, not_found

from ..store import Scope
from . import kinds
from .registry import Api, Caller, operation
from .resolve import function_arn, partition, resolve

Mapping = api.EventSourceMappingConfiguration

SQS, KINESIS, DYNAMODB, MSK, SELF_MANAGED_KAFKA, MQ, DOCUMENTDB = (
    "sqs",
    "kinesis",
    "dynamodb",
    "kafka",
    "self-managed-kafka",
    "mq",
    "docdb",
)
STREAMS = frozenset({KINESIS, DYNAMODB})
DEFAULT_PAGE = 100
NOT_FOUND = "The resource you requested does not exist."
UNSUPPORTED_DESTINATION = (
    "Unsupported DestinationConfig parameter for given event source mapping type."
)


# -- decisions (pure) ----------------------------------------------------------


def source_type(event_source_arn: str, self_managed: bool) -> str | None:
    """The kind of source a mapping reads, or None when AWS does not know it."""
    if self_managed:
        return SELF_MANAGED_KAFKA
    parts = event_source_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        return None
    service, resource = parts[2], ":".join(parts[5:])
    if service == "sqs":
        return SQS
    if service == "kinesis" and resource.startswith("stream/"):
        return KINESIS
    if service == "dynamodb" and "/stream/" in resource:
        return DYNAMODB
    if service == "kafka":
        return MSK
    if service == "mq":
        return MQ
    if service == "rds" and resource.startswith("cluster:"):
        return DOCUMENTDB
    return None


def starting_position_null() -> LambdaError:
    # Worded like a validation error, answered as a parameter error (recorded).
    return invalid_parameter(
        "1 validation error detected: Value null at 'startingPosition' failed to satisfy "
        "constraint: Member must not be null."
    )


def check_create(kind: str | None, request: api.CreateEventSourceMappingRequest) -> str:
    """The source type of a valid CreateEventSourceMapping, or AWS's error."""
    if kind is None:
        raise invalid_parameter("Unrecognized event source.")
    position = request.starting_position if request.HasField("starting_position") else None
    if kind in STREAMS or kind == MSK:
        if position is None:
            raise starting_position_null()
        if kind == DYNAMODB and position == "AT_TIMESTAMP":
            raise invalid_parameter(
                f"Unsupported starting position for arn type: {request.event_source_arn}"
            )
    elif kind in (SQS, MQ) and position is not None:
        raise invalid_parameter(
            f"Unsupported starting position for arn type: {request.event_source_arn}"
        )
    if kind == SELF_MANAGED_KAFKA and not request.source_access_configurations:
        raise invalid_parameter("Required 'sourceAccessConfigurations' parameter is missing.")
    if request.HasField("destination_config") and kind not in STREAMS | {
        MSK,
        SELF_MANAGED_KAFKA,
    }:
        raise invalid_parameter(UNSUPPORTED_DESTINATION)
    check_filter_criteria(request.filter_criteria)
    return kind


def check_filter_criteria(criteria: api.FilterCriteria) -> None:
    """Every filter pattern is a JSON object (AWS's wording)."""
    for item in criteria.filters:
        try:
            pattern = json.loads(item.pattern) if item.HasField("pattern") else None
        except ValueError:
            pattern = None
        if not isinstance(pattern, dict):
            raise invalid_parameter("Invalid filter pattern definition.")


def defaults(kind: str, mapping: Mapping, mapping_id: str) -> None:
    """Fill what AWS shows for members the caller left out, per source type
    (as recorded for SQS, DynamoDB streams and self-managed Kafka)."""
    if not mapping.HasField("batch_size"):
        mapping.batch_size = 10 if kind == SQS else 100
    if kind == SQS:
        mapping.state_transition_reason = "USER_INITIATED"
        if not mapping.HasField("maximum_batching_window_in_seconds"):
            mapping.maximum_batching_window_in_seconds = 0
        return
    mapping.last_processing_result = "No records processed"
    if kind in STREAMS:
        mapping.state_transition_reason = "User action"
        for field, value in (
            ("maximum_batching_window_in_seconds", 0),
            ("parallelization_factor", 1),
            ("maximum_record_age_in_seconds", -1),
            ("maximum_retry_attempts", -1),
            ("tumbling_window_in_seconds", 0),
            ("bisect_batch_on_function_error", False),
        ):
            if not mapping.HasField(field):
                setattr(mapping, field, value)
        mapping.destination_config.on_failure.SetInParent()
        return
    mapping.state_transition_reason = "USER_INITIATED"
    if kind in (MSK, SELF_MANAGED_KAFKA) and not mapping.HasField("starting_position"):
        mapping.starting_position = "TRIM_HORIZON"
    # Kafka consumers join the group named after the mapping unless told.
    if kind == SELF_MANAGED_KAFKA:
        config = mapping.self_managed_kafka_event_source_config
        if not config.consumer_group_id:
            config.consumer_group_id = mapping_id
    elif kind == MSK:
        config_msk = mapping.amazon_managed_kafka_event_source_config
        if not config_msk.consumer_group_id:
            config_msk.consumer_group_id = mapping_id


def kafka_endpoints(mapping: Any) -> list[str]:
    servers = mapping.self_managed_event_source.endpoints.get("KAFKA_BOOTSTRAP_SERVERS")
    return list(servers.items) if servers is not None else []


def kafka_duplicate(
    request: api.CreateEventSourceMappingRequest, fn_arn: str, existing: list[Mapping]
) -> LambdaError | None:
    """AWS refuses a second mapping of a function to a topic of a cluster it
    already reads (any shared bootstrap server counts)."""
    servers = kafka_endpoints(request)
    for other in existing:
        if (
            other.function_arn == fn_arn
            and set(kafka_endpoints(other)) & set(servers)
            and set(other.topics) & set(request.topics)
        ):
            return conflict(
                f'An event source mapping with event source ("{",".join(servers)}"), '
                f'function ("{fn_arn}"), topics ("{",".join(request.topics)}") already exists. '
                f"Please update or delete the existing mapping with UUID {other.uuid}"
            )
    return None


def split_function(name: str) -> tuple[str, str | None]:
    """FunctionName as the gateway passes it here: NAME or NAME:QUALIFIER."""
    base, _, qualifier = name.partition(":")
    return base, qualifier or None


@dataclass(frozen=True)
class Settled:
    """What a change shows now, and the state the mapping settles in."""

    shown: str
    stored: str


def transition(current: str, enabled: bool | None) -> Settled:
    if enabled is None or (enabled and current == "Enabled"):
        return Settled("Updating", current)
    if not enabled and current == "Disabled":
        return Settled("Updating", current)
    return Settled("Enabling", "Enabled") if enabled else Settled("Disabling", "Disabled")


# -- I/O -----------------------------------------------------------------------


def mapping_arn(scope: Scope, mapping_id: str) -> str:
    return (
        f"arn:{partition(scope.region)}:lambda:{scope.region}:{scope.account_id}"
        f":event-source-mapping:{mapping_id}"
    )


def target_arn(api_: Api, scope: Scope, function_name: str) -> str:
    """The FunctionArn a mapping records: qualified as the caller wrote it."""
    name, qualifier = split_function(function_name)
    try:
        resolve(api_.store, scope, name, qualifier)
    except LambdaError:
        raise invalid_parameter("Function does not exist") from None
    return function_arn(scope, name, qualifier)


def require_mapping(api_: Api, scope: Scope, mapping_id: str) -> Mapping:
    found = api_.store.get(scope, kinds.EVENT_SOURCE_MAPPING, mapping_id, Mapping)
    if found is None:
        raise not_found(NOT_FOUND)
    return found


def now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    # AWS reports whole seconds.
    ts.nanos = 0
    return ts


def shown(mapping: Mapping, state: str) -> Mapping:
    out = Mapping()
    out.CopyFrom(mapping)
    out.state = state
    return out


# Request members copied as they are onto the mapping (create and update).
_COPIED = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "KMSKeyArn",
)
_COPIED_MESSAGES = (
    "DestinationConfig",
    "SelfManagedEventSource",
    "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig",
    "ScalingConfig",
    "DocumentDBEventSourceConfig",
    "MetricsConfig",
    "LoggingConfig",
    "ProvisionedPollerConfig",
)
_COPIED_LISTS = ("Topics", "Queues", "SourceAccessConfigurations", "FunctionResponseTypes")


def apply(mapping: Mapping, request: Any, given: set[str]) -> None:
    fields = {f.json_name: f.name for f in request.DESCRIPTOR.fields}
    for member in _COPIED + _COPIED_MESSAGES:
        if member in given and member in fields:
            field = fields[member]
            if member in _COPIED_MESSAGES:
                getattr(mapping, field).CopyFrom(getattr(request, field))
            else:
                setattr(mapping, field, getattr(request, field))
    for member in _COPIED_LISTS:
        if member in given and member in fields:
            field = fields[member]
            del getattr(mapping, field)[:]
            getattr(mapping, field).extend(getattr(request, field))
    if "FilterCriteria" in given:
        # AWS drops an empty filter list (recorded: response-with-empty-filters).
        if request.filter_criteria.filters:
            mapping.filter_criteria.CopyFrom(request.filter_criteria)
        else:
            mapping.ClearField("filter_criteria")


@operation("CreateEventSourceMapping")
async def create(
    api_: Api, caller: Caller, request: api.CreateEventSourceMappingRequest
) -> Mapping:
    scope = caller.scope
    given = set(request.present_members.paths)
    kind = check_create(
        source_type(request.event_source_arn, "SelfManagedEventSource" in given), request
    )
    fn_arn = target_arn(api_, scope, request.function_name)
    if kind == SELF_MANAGED_KAFKA:
        existing = [m for _, m in api_.store.items(scope, kinds.EVENT_SOURCE_MAPPING, Mapping)]
        duplicate = kafka_duplicate(request, fn_arn, existing)
        if duplicate is not None:
            raise duplicate
    mapping_id = str(uuid.uuid4())
    mapping = Mapping(uuid=mapping_id, function_arn=fn_arn, last_modified=now())
    if kind != SELF_MANAGED_KAFKA:
        # Recorded: self-managed Kafka mappings show no ARN of their own.
        mapping.event_source_mapping_arn = mapping_arn(scope, mapping_id)
        mapping.event_source_arn = request.event_source_arn
    if request.HasField("starting_position"):
        mapping.starting_position = request.starting_position
    if request.HasField("starting_position_timestamp"):
        mapping.starting_position_timestamp.CopyFrom(request.starting_position_timestamp)
    apply(mapping, request, given)
    defaults(kind, mapping, mapping_id)
    enabled = request.enabled if request.HasField("enabled") else True
    mapping.state = "Enabled" if enabled else "Disabled"
    with api_.store.transaction():
        api_.store.put(scope, kinds.EVENT_SOURCE_MAPPING, mapping_id, mapping)
        kinds.set_tags(api_.store, scope, mapping_arn(scope, mapping_id), dict(request.tags))
    return shown(mapping, "Creating")


@operation("GetEventSourceMapping")
async def get(api_: Api, caller: Caller, request: api.GetEventSourceMappingRequest) -> Mapping:
    return require_mapping(api_, caller.scope, request.uuid)


@operation("UpdateEventSourceMapping")
async def update(
    api_: Api, caller: Caller, request: api.UpdateEventSourceMappingRequest
) -> Mapping:
    scope = caller.scope
    mapping = require_mapping(api_, scope, request.uuid)
    given = set(request.present_members.paths)
    kind = source_type(mapping.event_source_arn, mapping.HasField("self_managed_event_source"))
    if "DestinationConfig" in given and kind not in STREAMS | {MSK, SELF_MANAGED_KAFKA}:
        raise invalid_parameter(UNSUPPORTED_DESTINATION)
    check_filter_criteria(request.filter_criteria)
    if "FunctionName" in given:
        mapping.function_arn = target_arn(api_, scope, request.function_name)
    apply(mapping, request, given)
    change = transition(mapping.state, request.enabled if "Enabled" in given else None)
    mapping.state = change.stored
    mapping.last_modified.CopyFrom(now())
    api_.store.put(scope, kinds.EVENT_SOURCE_MAPPING, mapping.uuid, mapping)
    return shown(mapping, change.shown)


@operation("DeleteEventSourceMapping")
async def delete(
    api_: Api, caller: Caller, request: api.DeleteEventSourceMappingRequest
) -> Mapping:
    scope = caller.scope
    mapping = require_mapping(api_, scope, request.uuid)
    with api_.store.transaction():
        api_.store.delete(scope, kinds.EVENT_SOURCE_MAPPING, mapping.uuid)
        kinds.drop_tags(api_.store, scope, mapping_arn(scope, mapping.uuid))
    return shown(mapping, "Deleting")


def matches_function(mapping: Mapping, scope: Scope, function_name: str) -> bool:
    """An unqualified name lists the mappings of every version and alias of
    the function; a qualified one those of that version or alias."""
    name, qualifier = split_function(function_name)
    if qualifier is not None:
        return mapping.function_arn == function_arn(scope, name, qualifier)
    base = function_arn(scope, name)
    return mapping.function_arn == base or mapping.function_arn.startswith(base + ":")


@operation("ListEventSourceMappings")
async def list_mappings(
    api_: Api, caller: Caller, request: api.ListEventSourceMappingsRequest
) -> api.ListEventSourceMappingsResponse:
    scope = caller.scope
    limit = request.max_items or DEFAULT_PAGE
    # Filters naming nothing answer an empty list, never an error (recorded).
    rows = [
        (rid, m)
        for rid, m in api_.store.items(
            scope, kinds.EVENT_SOURCE_MAPPING, Mapping, after=request.marker
        )
        if (not request.event_source_arn or m.event_source_arn == request.event_source_arn)
        and (not request.function_name or matches_function(m, scope, request.function_name))
    ]
    out = api.ListEventSourceMappingsResponse(event_source_mappings=[m for _, m in rows[:limit]])
    if len(rows) > limit:
        out.next_marker = rows[limit - 1][0]
    return out
