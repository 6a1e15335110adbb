"""Event invoke configs: retries, maximum event age and destinations of
asynchronous invocations, per function version or alias.

Stored as FunctionEventInvokeConfig under NAME:QUALIFIER ($LATEST spelled
out); `lookup` is what asynchronous invocation reads. The errors are those
recorded in TestLambdaEventInvokeConfig: get and delete never say whether the
function exists, only that it "doesn't have an EventInvokeConfig"; put,
update and list say "The function doesn't exist."
"""

from __future__ import annotations

import re

from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import invalid_parameter, not_found

from ..store import ResourceStore, Scope
from .kinds import EVENT_INVOKE_CONFIG
from .paging import decode_marker as _after
from .paging import encode_marker as _marker
from .registry import Api, Caller, operation
from .resolve import LATEST, function_arn, get_alias, get_version, is_version, load

DEFAULT_PAGE = 50
_NO_FUNCTION = "The function doesn't exist."
# Services an asynchronous invocation can deliver its record to.
DESTINATION_SERVICES = frozenset({"lambda", "sqs", "sns", "events", "s3"})
_ARN = re.compile(
    r"arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<resource>.*)"
)
_FUNCTION_RESOURCE = re.compile(r"function:(?P<name>[^:]+)(?::(?P<qualifier>.+))?")


# --------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------


def has_settings(given: set[str]) -> bool:
    """Put and update need at least one of the settings."""
    return bool(given & {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"})


def describe(destinations: api.DestinationConfig) -> str:
    """The destination config as AWS's message prints it (Java's toString)."""

    def one(kind: str, holder: api.OnSuccess | api.OnFailure, present: bool) -> str:
        if not present:
            return "null"
        value = holder.destination if holder.HasField("destination") else "null"
        return f"{kind}(destination={value})"

    success = one("OnSuccess", destinations.on_success, destinations.HasField("on_success"))
    failure = one("OnFailure", destinations.on_failure, destinations.HasField("on_failure"))
    return f"DestinationConfig(onSuccess={success}, onFailure={failure})"


def lambda_destination(arn: str) -> tuple[str, str, str] | None:
    """(region, account, function name) of a function ARN destination; None
    for any other service. Raises when the service takes no destinations."""
    m = _ARN.fullmatch(arn)
    if m is None or m["service"] not in DESTINATION_SERVICES:
        raise ValueError(arn)
    if m["service"] != "lambda":
        return None
    f = _FUNCTION_RESOURCE.fullmatch(m["resource"])
    if f is None:
        raise ValueError(arn)
    return m["region"], m["account"], f["name"]


def check_destinations(
    store: ResourceStore, scope: Scope, name: str, destinations: api.DestinationConfig
) -> None:
    """AWS's checks of OnSuccess/OnFailure destinations: a service that takes
    them, not the function itself, a function that exists."""
    for holder_field in ("on_success", "on_failure"):
        if not destinations.HasField(holder_field):
            continue
        arn = getattr(destinations, holder_field).destination
        if not arn:
            continue
        try:
            target = lambda_destination(arn)
        except ValueError:
            raise invalid_parameter(
                f"The provided destination config {describe(destinations)} is invalid."
            ) from None
        if target is None:
            continue
        region, account, target_name = target
        if (region, account, target_name) == (scope.region, scope.account_id, name):
            raise invalid_parameter("You can't specify the function as a destination for itself.")
        if load(store, Scope(account, region), target_name) is None:
            raise invalid_parameter(f"The destination ARN {arn} is invalid.")


# --------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------


def _row_id(name: str, qualifier: str) -> str:
    return f"{name}:{qualifier or LATEST}"


def _target_exists(store: ResourceStore, scope: Scope, name: str, qualifier: str) -> bool:
    if load(store, scope, name) is None:
        return False
    if not qualifier or qualifier == LATEST:
        return True
    if is_version(qualifier):
        return get_version(store, scope, name, qualifier) is not None
    return get_alias(store, scope, name, qualifier) is not None


def lookup(
    store: ResourceStore, scope: Scope, name: str, qualifier: str | None
) -> api.FunctionEventInvokeConfig | None:
    """The config asynchronous invocations of `name` (`qualifier`, $LATEST
    by default) follow; None means AWS's defaults (2 retries, 6 hours)."""
    return store.get(
        scope, EVENT_INVOKE_CONFIG, _row_id(name, qualifier or ""), api.FunctionEventInvokeConfig
    )


def _missing_config(scope: Scope, name: str, qualifier: str) -> Exception:
    arn = function_arn(scope, name, qualifier or LATEST)
    return not_found(f"The function {arn} doesn't have an EventInvokeConfig")


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def _apply(
    config: api.FunctionEventInvokeConfig,
    request: api.PutFunctionEventInvokeConfigRequest | api.UpdateFunctionEventInvokeConfigRequest,
) -> None:
    if request.HasField("maximum_retry_attempts"):
        config.maximum_retry_attempts = request.maximum_retry_attempts
    if request.HasField("maximum_event_age_in_seconds"):
        config.maximum_event_age_in_seconds = request.maximum_event_age_in_seconds
    if request.HasField("destination_config"):
        given = request.destination_config
        if given.HasField("on_success"):
            config.destination_config.on_success.CopyFrom(given.on_success)
        if given.HasField("on_failure"):
            config.destination_config.on_failure.CopyFrom(given.on_failure)
    # AWS always writes both destinations, empty when unset (recorded).
    config.destination_config.on_success.SetInParent()
    config.destination_config.on_failure.SetInParent()
    config.last_modified.CopyFrom(_now())


def _present(request: object) -> set[str]:
    return set(request.present_members.paths)  # type: ignore[attr-defined]


def _check_request(
    api_: Api,
    scope: Scope,
    request: api.PutFunctionEventInvokeConfigRequest | api.UpdateFunctionEventInvokeConfigRequest,
) -> None:
    if not has_settings(_present(request)):
        raise invalid_parameter(
            "You must specify at least one of error handling or destination setting."
        )
    if not _target_exists(api_.store, scope, request.function_name, request.qualifier):
        raise not_found(_NO_FUNCTION)
    check_destinations(api_.store, scope, request.function_name, request.destination_config)


@operation("PutFunctionEventInvokeConfig")
async def put_function_event_invoke_config(
    api_: Api, caller: Caller, request: api.PutFunctionEventInvokeConfigRequest
) -> api.FunctionEventInvokeConfig:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    _check_request(api_, scope, request)
    # Put replaces the whole config: what is not given is unset.
    arn = function_arn(scope, name, qualifier or LATEST)
    config = api.FunctionEventInvokeConfig(function_arn=arn)
    _apply(config, request)
    api_.store.put(scope, EVENT_INVOKE_CONFIG, _row_id(name, qualifier), config, function=name)
    return config


@operation("UpdateFunctionEventInvokeConfig")
async def update_function_event_invoke_config(
    api_: Api, caller: Caller, request: api.UpdateFunctionEventInvokeConfigRequest
) -> api.FunctionEventInvokeConfig:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    _check_request(api_, scope, request)
    config = lookup(api_.store, scope, name, qualifier)
    if config is None:
        raise _missing_config(scope, name, qualifier)
    # Update changes only what is given.
    _apply(config, request)
    api_.store.put(scope, EVENT_INVOKE_CONFIG, _row_id(name, qualifier), config, function=name)
    return config


@operation("GetFunctionEventInvokeConfig")
async def get_function_event_invoke_config(
    api_: Api, caller: Caller, request: api.GetFunctionEventInvokeConfigRequest
) -> api.FunctionEventInvokeConfig:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    config = lookup(api_.store, scope, name, qualifier)
    if config is None or not _target_exists(api_.store, scope, name, qualifier):
        raise _missing_config(scope, name, qualifier)
    return config


@operation("DeleteFunctionEventInvokeConfig")
async def delete_function_event_invoke_config(
    api_: Api, caller: Caller, request: api.DeleteFunctionEventInvokeConfigRequest
) -> empty_pb2.Empty:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    exists = _target_exists(api_.store, scope, name, qualifier)
    if not api_.store.delete(scope, EVENT_INVOKE_CONFIG, _row_id(name, qualifier)) or not exists:
        raise _missing_config(scope, name, qualifier)
    return empty_pb2.Empty()


@operation("ListFunctionEventInvokeConfigs")
async def list_function_event_invoke_configs(
    api_: Api, caller: Caller, request: api.ListFunctionEventInvokeConfigsRequest
) -> api.ListFunctionEventInvokeConfigsResponse:
    scope = caller.scope
    name = request.function_name
    if load(api_.store, scope, name) is None:
        raise not_found(_NO_FUNCTION)
    limit = request.max_items or DEFAULT_PAGE
    after = _after(request.marker)
    # Configs of deleted versions and aliases are left out.
    rows = [
        (rid, config)
        for rid, config in api_.store.items(
            scope,
            EVENT_INVOKE_CONFIG,
            api.FunctionEventInvokeConfig,
            prefix=f"{name}:",
            function=name,
        )
        if rid > after and _target_exists(api_.store, scope, name, rid[len(name) + 1 :])
    ][: limit + 1]
    out = api.ListFunctionEventInvokeConfigsResponse(
        function_event_invoke_configs=[c for _, c in rows[:limit]]
    )
    if len(rows) > limit:
        out.next_marker = _marker(rows[limit - 1][0])
    return out
