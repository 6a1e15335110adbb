"""Aliases: named pointers to a function version, optionally sending a share
of invocations to one additional version (RoutingConfig).

Rows: kind ALIAS, id NAME:ALIAS, an AliasConfiguration (see resolve.py).
Which version an invocation of an alias runs is functions.pick_version.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from google.protobuf.empty_pb2 import Empty

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, conflict, invalid_parameter, not_found

from .. import lifecycle
from ..store import ResourceStore, Scope
from .concurrency import IN_PROGRESS, READY, set_progress
from .kinds import PROVISIONED, QUALIFIER_SCOPED
from .registry import Api, Caller, operation
from .resolve import (
    ALIAS,
    LATEST,
    alias_id,
    alias_not_found,
    check_revision,
    function_arn,
    function_not_found,
    get_alias,
    get_version,
    require,
)
from .versions import page_after

log = structlog.get_logger(__name__)

DEFAULT_PAGE = 50
# Rows that belong to a qualifier (id NAME:QUALIFIER) and go with the alias.
_ALIAS_SCOPED = QUALIFIER_SCOPED


def routing_error(function_version: str, weights: Mapping[str, float]) -> LambdaError | None:
    """AWS's error for a routing config that cannot go with `function_version`,
    in the order AWS checks (test_notfound_and_invalid_routingconfigs); the
    model already bounds weights to [0, 1] and keys to version numbers."""
    if len(weights) > 1:
        return invalid_parameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        )
    if function_version in weights:
        return invalid_parameter(
            f"Invalid function version {function_version}. Function version "
            f"{function_version} is already included in routing configuration."
        )
    if weights and function_version == LATEST:
        return invalid_parameter(
            "$LATEST is not supported for an alias pointing to more than 1 version"
        )
    return None


def check_targets(
    store: ResourceStore,
    scope: Scope,
    name: str,
    function_version: str,
    weights: Mapping[str, float],
) -> None:
    """The versions an alias points to must exist ($LATEST always does)."""
    for version in (function_version, *sorted(weights)):
        if version != LATEST and get_version(store, scope, name, version) is None:
            raise function_not_found(scope, name, version)


def _alias(
    scope: Scope,
    name: str,
    alias: str,
    version: str,
    description: str,
    weights: Mapping[str, float],
) -> api.AliasConfiguration:
    out = api.AliasConfiguration(
        alias_arn=function_arn(scope, name, alias),
        name=alias,
        function_version=version,
        description=description,
        revision_id=lifecycle.new_revision(),
    )
    if weights:
        # An empty routing config is no routing config (recorded).
        out.routing_config.additional_version_weights.update(weights)
    return out


@operation("CreateAlias")
async def create_alias(
    api_: Api, caller: Caller, request: api.CreateAliasRequest
) -> api.AliasConfiguration:
    scope = caller.scope
    name, alias, version = request.function_name, request.name, request.function_version
    # A missing function is reported under the version asked for (recorded).
    require(api_.store, scope, name, version)
    weights = dict(request.routing_config.additional_version_weights)
    error = routing_error(version, weights)
    if error is not None:
        raise error
    check_targets(api_.store, scope, name, version, weights)
    config = _alias(scope, name, alias, version, request.description, weights)
    if not api_.store.insert(scope, ALIAS, alias_id(name, alias), config, function=name):
        raise conflict(f"Alias already exists: {config.alias_arn}")
    log.info("alias.created", function=name, alias=alias, version=version)
    return config


@operation("GetAlias")
async def get_alias_op(
    api_: Api, caller: Caller, request: api.GetAliasRequest
) -> api.AliasConfiguration:
    scope = caller.scope
    found = get_alias(api_.store, scope, request.function_name, request.name)
    if found is None:
        raise alias_not_found(scope, request.function_name, request.name)
    return found


@operation("UpdateAlias")
async def update_alias(
    api_: Api, caller: Caller, request: api.UpdateAliasRequest
) -> api.AliasConfiguration:
    scope = caller.scope
    name, alias = request.function_name, request.name
    current = get_alias(api_.store, scope, name, alias)
    if current is None:
        raise not_found(f"Alias not found: {function_arn(scope, name, alias)}")
    check_revision(request.revision_id, current.revision_id)
    given = set(request.present_members.paths)
    version = request.function_version if "FunctionVersion" in given else current.function_version
    description = request.description if "Description" in given else current.description
    if "RoutingConfig" in given:
        weights = dict(request.routing_config.additional_version_weights)
    else:
        weights = dict(current.routing_config.additional_version_weights)
    error = routing_error(version, weights)
    if error is not None:
        raise error
    check_targets(api_.store, scope, name, version, weights)
    # Every update is a new revision, even one that changes nothing (recorded).
    config = _alias(scope, name, alias, version, description, weights)
    with api_.store.transaction():
        api_.store.put(scope, ALIAS, alias_id(name, alias), config, function=name)
        if version != current.function_version:
            _provisioned_moves(api_.store, scope, name, alias)
    log.info("alias.updated", function=name, alias=alias, version=version)
    return config


def _provisioned_moves(store: ResourceStore, scope: Scope, name: str, alias: str) -> None:
    """The alias's provisioned concurrency follows it to the new version:
    IN_PROGRESS from the moment of the move, the old environments still
    counted (recorded TestLambdaConcurrency::
    test_lambda_provisioned_concurrency_moves_with_alias,
    get_provisioned_config_after_alias_move). The reconciler would say so
    only at its next pass; a caller reading at once must see it too."""
    config = store.get(
        scope, PROVISIONED, alias_id(name, alias), api.GetProvisionedConcurrencyConfigResponse
    )
    if config is not None and config.status == READY:
        set_progress(
            store,
            scope,
            name,
            alias,
            IN_PROGRESS,
            config.available_provisioned_concurrent_executions,
        )


@operation("DeleteAlias")
async def delete_alias(api_: Api, caller: Caller, request: api.DeleteAliasRequest) -> Empty:
    scope = caller.scope
    name, alias = request.function_name, request.name
    # Deleting an alias that is not there succeeds (recorded: 204).
    with api_.store.transaction():
        if api_.store.delete(scope, ALIAS, alias_id(name, alias)):
            for kind in _ALIAS_SCOPED:
                api_.store.delete(scope, kind, alias_id(name, alias))
            log.info("alias.deleted", function=name, alias=alias)
    return Empty()


@operation("ListAliases")
async def list_aliases(
    api_: Api, caller: Caller, request: api.ListAliasesRequest
) -> api.ListAliasesResponse:
    scope = caller.scope
    name = request.function_name
    require(api_.store, scope, name)
    aliases = [
        config
        for _, config in api_.store.items(
            scope, ALIAS, api.AliasConfiguration, prefix=f"{name}:", function=name
        )
        if not request.function_version or config.function_version == request.function_version
    ]
    chosen, next_marker = page_after(
        [a.name for a in aliases], request.marker, request.max_items or DEFAULT_PAGE
    )
    out = api.ListAliasesResponse(aliases=[aliases[i] for i in chosen])
    if next_marker is not None:
        out.next_marker = next_marker
    return out
