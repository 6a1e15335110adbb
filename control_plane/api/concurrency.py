"""Reserved concurrency of functions and provisioned concurrency configs.

An account (per region) has `concurrent_executions` to share; functions may
reserve part of it, and AWS always keeps `minimum_unreserved` for the rest.
Provisioned concurrency of a function without a reservation is taken from the
unreserved pool too; with one, it must fit inside the reservation.

Provisioned configs are stored answering IN_PROGRESS: AWS moves them to
READY once the environments really run, and starting them is the
provisioner's job (control_plane/provisioning.py). It calls `set_progress`
as they start; nothing here pretends they did.
"""

from __future__ import annotations

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, conflict, invalid_parameter, not_found
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle
from ..store import ResourceStore, Scope
from .kinds import PROVISIONED
from .paging import decode_marker as _after
from .paging import encode_marker as _marker
from .registry import Api, Caller, operation
from .resolve import (
    FUNCTION,
    LATEST,
    function_arn,
    function_not_found,
    get_alias,
    get_version,
    is_version,
    require,
    save,
)

DEFAULT_PAGE = 50

# Provisioned configs' states (the model's ProvisionedConcurrencyStatusEnum).
IN_PROGRESS, READY, FAILED = "IN_PROGRESS", "READY", "FAILED"


# --------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------


def _limit_error(message: str) -> LambdaError:
    # AWS answers the account limit errors without the `Type` member its
    # other InvalidParameterValueExceptions carry (recorded).
    return LambdaError("InvalidParameterValueException", message, omit=("Type",))


def unreserved(limit: int, reserved_total: int) -> int:
    """UnreservedConcurrentExecutions: what no function has reserved."""
    return limit - reserved_total


def check_reserved(limit: int, minimum: int, reserved_by_others: int, requested: int) -> None:
    """PutFunctionConcurrency's limit: the rest of the account keeps at least
    `minimum` (recorded test_function_concurrency_limits)."""
    if unreserved(limit, reserved_by_others + requested) < minimum:
        raise _limit_error(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        )


def check_reserved_covers_provisioned(requested: int, provisioned_total: int) -> None:
    """Provisioned concurrency is carved out of the reservation, so the
    reservation may not drop below it. Message, with its odd spacing, and the
    missing `Type` member as recorded (TestLambdaConcurrency::
    test_reserved_provisioned_overlap, reserved_lower_than_provisioned_exc)."""
    if requested < provisioned_total:
        raise _limit_error(
            f" ReservedConcurrentExecutions  {requested} should not be lower than "
            f"function's total provisioned concurrency [{provisioned_total}]."
        )


def check_provisioned(
    *,
    limit: int,
    minimum: int,
    reserved_total: int,
    provisioned_elsewhere: int,
    function_reserved: int | None,
    function_provisioned_elsewhere: int,
    requested: int,
) -> None:
    """PutProvisionedConcurrencyConfig's limits (recorded
    test_provisioned_concurrency_limits).

    `provisioned_elsewhere` is the provisioned concurrency other functions
    without a reservation take from the unreserved pool;
    `function_provisioned_elsewhere` what this function's other versions and
    aliases already provision."""
    if function_reserved is not None:
        if function_provisioned_elsewhere + requested > function_reserved:
            raise invalid_parameter(
                "Requested Provisioned Concurrency should not be greater than the "
                "reservedConcurrentExecution for function"
            )
        return
    available = unreserved(limit, reserved_total) - provisioned_elsewhere
    wanted = function_provisioned_elsewhere + requested
    if wanted > available:
        raise _limit_error(
            "Specified ConcurrentExecutions for function is greater than account's "
            f"unreserved concurrency [{available}]."
        )
    if available - wanted < minimum:
        raise _limit_error(
            "Specified ConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        )


# --------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------


def reservations(store: ResourceStore, scope: Scope) -> dict[str, int]:
    """Reserved concurrency of every function that has one, by name."""
    return {
        name: record.reserved_concurrency
        for name, record in store.items(scope, FUNCTION, state_pb2.FunctionRecord)
        if record.HasField("reserved_concurrency")
    }


def provisioned_configs(
    store: ResourceStore, scope: Scope, name: str | None = None
) -> list[tuple[str, str, api.GetProvisionedConcurrencyConfigResponse]]:
    """(function, qualifier, config) of stored provisioned configs, of one
    function or all, leaving out those whose version or alias is gone."""
    prefix = f"{name}:" if name is not None else ""
    out = []
    for rid, config in store.items(
        scope,
        PROVISIONED,
        api.GetProvisionedConcurrencyConfigResponse,
        prefix=prefix,
        function=name,
    ):
        function, qualifier = rid.rsplit(":", 1)
        if _target_exists(store, scope, function, qualifier):
            out.append((function, qualifier, config))
    return out


def _target_exists(store: ResourceStore, scope: Scope, name: str, qualifier: str) -> bool:
    if is_version(qualifier):
        return get_version(store, scope, name, qualifier) is not None
    return get_alias(store, scope, name, qualifier) is not None


def _provisioned_id(name: str, qualifier: str) -> str:
    return f"{name}:{qualifier}"


def set_progress(
    store: ResourceStore,
    scope: Scope,
    name: str,
    qualifier: str,
    status: str,
    available: int,
    reason: str = "",
) -> bool:
    """Record how far the config's environments are: `status` with
    `available` of them running (AWS's allocated and available counts are
    the same here), and the StatusReason of a FAILED one. False when the
    config is gone (deleted meanwhile)."""
    rid = _provisioned_id(name, qualifier)
    config = store.get(scope, PROVISIONED, rid, api.GetProvisionedConcurrencyConfigResponse)
    if config is None:
        return False
    config.status = status
    config.available_provisioned_concurrent_executions = available
    config.allocated_provisioned_concurrent_executions = available
    if reason:
        config.status_reason = reason
    else:
        config.ClearField("status_reason")
    config.last_modified = lifecycle.now_aws()
    store.put(scope, PROVISIONED, rid, config, function=name)
    return True


# --------------------------------------------------------------------------
# Reserved concurrency
# --------------------------------------------------------------------------


@operation("PutFunctionConcurrency")
async def put_function_concurrency(
    api_: Api, caller: Caller, request: api.PutFunctionConcurrencyRequest
) -> api.Concurrency:
    scope = caller.scope
    name = request.function_name
    # Recorded: the not-found names $LATEST, and comes before the limit check.
    record = require(api_.store, scope, name, LATEST)
    requested = request.reserved_concurrent_executions
    others = sum(n for fn, n in reservations(api_.store, scope).items() if fn != name)
    check_reserved(
        api_.settings.concurrent_executions, api_.settings.minimum_unreserved, others, requested
    )
    check_reserved_covers_provisioned(
        requested,
        sum(
            c.requested_provisioned_concurrent_executions
            for _, _, c in provisioned_configs(api_.store, scope, name)
        ),
    )
    record.reserved_concurrency = requested
    save(api_.store, scope, record)
    return api.Concurrency(reserved_concurrent_executions=requested)


@operation("GetFunctionConcurrency")
async def get_function_concurrency(
    api_: Api, caller: Caller, request: api.GetFunctionConcurrencyRequest
) -> api.GetFunctionConcurrencyResponse:
    record = require(api_.store, caller.scope, request.function_name)
    out = api.GetFunctionConcurrencyResponse()
    if record.HasField("reserved_concurrency"):
        out.reserved_concurrent_executions = record.reserved_concurrency
    return out


@operation("DeleteFunctionConcurrency")
async def delete_function_concurrency(
    api_: Api, caller: Caller, request: api.DeleteFunctionConcurrencyRequest
) -> empty_pb2.Empty:
    record = require(api_.store, caller.scope, request.function_name)
    record.ClearField("reserved_concurrency")
    save(api_.store, caller.scope, record)
    return empty_pb2.Empty()


# --------------------------------------------------------------------------
# Provisioned concurrency
# --------------------------------------------------------------------------


def _check_target(api_: Api, scope: Scope, name: str, qualifier: str) -> str | None:
    """The version `qualifier` names (None for an alias: see the alias), or
    AWS's not-found: aliases are 'Cannot find alias arn', versions 'Function
    not found', whether or not the function exists (recorded)."""
    if is_version(qualifier):
        if get_version(api_.store, scope, name, qualifier) is None:
            raise function_not_found(scope, name, qualifier)
        return qualifier
    if get_alias(api_.store, scope, name, qualifier) is None:
        raise not_found(f"Cannot find alias arn: {function_arn(scope, name, qualifier)}")
    return None


def _not_on_latest(qualifier: str, message: str) -> None:
    if qualifier == LATEST:
        raise invalid_parameter(message)


_UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
_MUST_BE_PUBLISHED = "The function resource provided must be an alias or a published version."


@operation("PutProvisionedConcurrencyConfig")
async def put_provisioned_concurrency_config(
    api_: Api, caller: Caller, request: api.PutProvisionedConcurrencyConfigRequest
) -> api.PutProvisionedConcurrencyConfigResponse:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    _not_on_latest(qualifier, _UNPUBLISHED)
    _check_target(api_, scope, name, qualifier)
    record = require(api_.store, scope, name, qualifier)
    mine = {q: c for _, q, c in provisioned_configs(api_.store, scope, name)}
    # One version is provisioned once: directly or through one alias.
    if is_version(qualifier):
        for other, _ in mine.items():
            alias = None if is_version(other) else get_alias(api_.store, scope, name, other)
            if alias is not None and alias.function_version == qualifier:
                raise conflict("Version is pointed by a Provisioned Concurrency alias")
    else:
        alias = get_alias(api_.store, scope, name, qualifier)
        if alias is not None and alias.function_version in mine:
            raise conflict(
                "Alias can't be used for Provisioned Concurrency configuration on an already "
                "Provisioned version"
            )
    reserved = reservations(api_.store, scope)
    elsewhere = sum(
        c.requested_provisioned_concurrent_executions
        for fn, _, c in provisioned_configs(api_.store, scope)
        if fn != name and fn not in reserved
    )
    check_provisioned(
        limit=api_.settings.concurrent_executions,
        minimum=api_.settings.minimum_unreserved,
        reserved_total=sum(reserved.values()),
        provisioned_elsewhere=elsewhere,
        function_reserved=record.reserved_concurrency
        if record.HasField("reserved_concurrency")
        else None,
        function_provisioned_elsewhere=sum(
            c.requested_provisioned_concurrent_executions for q, c in mine.items() if q != qualifier
        ),
        requested=request.provisioned_concurrent_executions,
    )
    config = api.GetProvisionedConcurrencyConfigResponse(
        requested_provisioned_concurrent_executions=request.provisioned_concurrent_executions,
        available_provisioned_concurrent_executions=0,
        allocated_provisioned_concurrent_executions=0,
        status=IN_PROGRESS,
        last_modified=lifecycle.now_aws(),
    )
    api_.store.put(scope, PROVISIONED, _provisioned_id(name, qualifier), config, function=name)
    out = api.PutProvisionedConcurrencyConfigResponse()
    out.ParseFromString(config.SerializeToString())  # same fields, same numbers
    return out


@operation("GetProvisionedConcurrencyConfig")
async def get_provisioned_concurrency_config(
    api_: Api, caller: Caller, request: api.GetProvisionedConcurrencyConfigRequest
) -> api.GetProvisionedConcurrencyConfigResponse:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    _not_on_latest(qualifier, _MUST_BE_PUBLISHED)
    _check_target(api_, scope, name, qualifier)
    config = api_.store.get(
        scope,
        PROVISIONED,
        _provisioned_id(name, qualifier),
        api.GetProvisionedConcurrencyConfigResponse,
    )
    if config is None:
        raise LambdaError(
            "ProvisionedConcurrencyConfigNotFoundException",
            "No Provisioned Concurrency Config found for this function",
        )
    return config


@operation("DeleteProvisionedConcurrencyConfig")
async def delete_provisioned_concurrency_config(
    api_: Api, caller: Caller, request: api.DeleteProvisionedConcurrencyConfigRequest
) -> empty_pb2.Empty:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    _not_on_latest(qualifier, _MUST_BE_PUBLISHED)
    _check_target(api_, scope, name, qualifier)
    # Deleting a config that is not there succeeds (recorded).
    api_.store.delete(scope, PROVISIONED, _provisioned_id(name, qualifier))
    return empty_pb2.Empty()


@operation("ListProvisionedConcurrencyConfigs")
async def list_provisioned_concurrency_configs(
    api_: Api, caller: Caller, request: api.ListProvisionedConcurrencyConfigsRequest
) -> api.ListProvisionedConcurrencyConfigsResponse:
    scope = caller.scope
    name = request.function_name
    require(api_.store, scope, name)
    limit = request.max_items or DEFAULT_PAGE
    after = _after(request.marker)
    page = [(q, c) for _, q, c in provisioned_configs(api_.store, scope, name) if q > after][
        : limit + 1
    ]
    out = api.ListProvisionedConcurrencyConfigsResponse()
    for qualifier, config in page[:limit]:
        item = out.provisioned_concurrency_configs.add()
        item.function_arn = function_arn(scope, name, qualifier)
        for field, value in config.ListFields():
            setattr(item, field.name, value)
    if len(page) > limit:
        out.next_marker = _marker(page[limit - 1][0])
    return out
