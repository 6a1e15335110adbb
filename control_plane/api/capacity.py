"""Capacity providers (Lambda Managed Instances): stored and answered with
the model's shapes.

lambdafleet has no EC2 fleet behind a capacity provider: functions that name
one run on lambdafleet's workers like any other. A provider is a regional
row (kinds.CAPACITY_PROVIDER, id NAME). Like AWS, Create answers Pending and
Delete answers Deleting; the provisioning they start completes at once, so
the stored provider is Active (or gone).
"""

from __future__ import annotations

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, conflict, not_found
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle, validation
from ..store import Scope
from . import kinds
from .registry import Api, Caller, operation
from .resolve import FUNCTION, VERSION, partition

DEFAULT_PAGE = 50
DEFAULT_ARCHITECTURES = ("x86_64",)
DEFAULT_SCALING_MODE = "Auto"


def provider_arn(scope: Scope, name: str) -> str:
    return (
        f"arn:{partition(scope.region)}:lambda:{scope.region}:{scope.account_id}"
        f":capacity-provider:{name}"
    )


def name_of(name_or_arn: str) -> str:
    """CapacityProviderName may be the provider's ARN (the model's pattern)."""
    return name_or_arn.rsplit(":", 1)[-1]


def provider_not_found(scope: Scope, name: str) -> LambdaError:
    return not_found(f"Capacity provider not found: {provider_arn(scope, name)}")


def require_provider(api_: Api, scope: Scope, name_or_arn: str) -> api.CapacityProvider:
    name = name_of(name_or_arn)
    found = api_.store.get(scope, kinds.CAPACITY_PROVIDER, name, api.CapacityProvider)
    if found is None:
        raise provider_not_found(scope, name)
    return found


def with_state(provider: api.CapacityProvider, state: str) -> api.CapacityProvider:
    out = api.CapacityProvider()
    out.CopyFrom(provider)
    out.state = state
    return out


def new_provider(scope: Scope, request: api.CreateCapacityProviderRequest) -> api.CapacityProvider:
    """The provider a create request describes, with AWS's defaults."""
    name = request.capacity_provider_name
    provider = api.CapacityProvider(
        capacity_provider_arn=provider_arn(scope, name),
        state="Active",
        last_modified=lifecycle.now_aws(),
    )
    provider.vpc_config.CopyFrom(request.vpc_config)
    provider.permissions_config.CopyFrom(request.permissions_config)
    provider.instance_requirements.CopyFrom(request.instance_requirements)
    if not provider.instance_requirements.architectures:
        provider.instance_requirements.architectures.extend(DEFAULT_ARCHITECTURES)
    provider.capacity_provider_scaling_config.CopyFrom(request.capacity_provider_scaling_config)
    if not provider.capacity_provider_scaling_config.HasField("scaling_mode"):
        provider.capacity_provider_scaling_config.scaling_mode = DEFAULT_SCALING_MODE
    if request.HasField("kms_key_arn"):
        provider.kms_key_arn = request.kms_key_arn
    return provider


def versions_using(api_: Api, scope: Scope, arn: str) -> list[api.FunctionConfiguration]:
    """$LATEST and published versions configured to run on the provider."""
    out: list[api.FunctionConfiguration] = []
    for name, record in api_.store.items(scope, FUNCTION, state_pb2.FunctionRecord):
        configs = [record.configuration] + [
            c
            for _, c in api_.store.items(
                scope, VERSION, api.FunctionConfiguration, prefix=f"{name}:", function=name
            )
        ]
        for config in configs:
            managed = (
                config.capacity_provider_config.lambda_managed_instances_capacity_provider_config
            )
            if managed.capacity_provider_arn == arn:
                out.append(config)
    return out


@operation("CreateCapacityProvider")
async def create(
    api_: Api, caller: Caller, request: api.CreateCapacityProviderRequest
) -> api.CreateCapacityProviderResponse:
    scope = caller.scope
    permissions = request.permissions_config
    if permissions.HasField("capacity_provider_operator_role_arn"):
        # The operator role is passed to Lambda as a function's role is.
        validation.check_role_account(
            permissions.capacity_provider_operator_role_arn, scope.account_id
        )
    provider = new_provider(scope, request)
    name = request.capacity_provider_name
    with api_.store.transaction():
        if not api_.store.insert(scope, kinds.CAPACITY_PROVIDER, name, provider):
            raise conflict(f"Capacity provider already exists: {provider.capacity_provider_arn}")
        kinds.set_tags(api_.store, scope, provider.capacity_provider_arn, dict(request.tags))
    return api.CreateCapacityProviderResponse(capacity_provider=with_state(provider, "Pending"))


@operation("GetCapacityProvider")
async def get(
    api_: Api, caller: Caller, request: api.GetCapacityProviderRequest
) -> api.GetCapacityProviderResponse:
    provider = require_provider(api_, caller.scope, request.capacity_provider_name)
    return api.GetCapacityProviderResponse(capacity_provider=provider)


@operation("UpdateCapacityProvider")
async def update(
    api_: Api, caller: Caller, request: api.UpdateCapacityProviderRequest
) -> api.UpdateCapacityProviderResponse:
    scope = caller.scope
    provider = require_provider(api_, scope, request.capacity_provider_name)
    if "CapacityProviderScalingConfig" in request.present_members.paths:
        scaling = provider.capacity_provider_scaling_config
        scaling.CopyFrom(request.capacity_provider_scaling_config)
        if not scaling.HasField("scaling_mode"):
            scaling.scaling_mode = DEFAULT_SCALING_MODE
        provider.last_modified = lifecycle.now_aws()
        api_.store.put(
            scope, kinds.CAPACITY_PROVIDER, name_of(provider.capacity_provider_arn), provider
        )
    return api.UpdateCapacityProviderResponse(capacity_provider=provider)


@operation("DeleteCapacityProvider")
async def delete(
    api_: Api, caller: Caller, request: api.DeleteCapacityProviderRequest
) -> api.DeleteCapacityProviderResponse:
    scope = caller.scope
    provider = require_provider(api_, scope, request.capacity_provider_name)
    arn = provider.capacity_provider_arn
    if versions_using(api_, scope, arn):
        raise conflict(f"Capacity provider {arn} cannot be deleted while function versions use it.")
    with api_.store.transaction():
        api_.store.delete(scope, kinds.CAPACITY_PROVIDER, name_of(arn))
        kinds.drop_tags(api_.store, scope, arn)
    return api.DeleteCapacityProviderResponse(capacity_provider=with_state(provider, "Deleting"))


@operation("ListCapacityProviders")
async def list_providers(
    api_: Api, caller: Caller, request: api.ListCapacityProvidersRequest
) -> api.ListCapacityProvidersResponse:
    limit = request.max_items or DEFAULT_PAGE
    rows = [
        (rid, p)
        for rid, p in api_.store.items(
            caller.scope, kinds.CAPACITY_PROVIDER, api.CapacityProvider, after=request.marker
        )
        if not request.state or p.state == request.state
    ]
    out = api.ListCapacityProvidersResponse(capacity_providers=[p for _, p in rows[:limit]])
    if len(rows) > limit:
        out.next_marker = rows[limit - 1][0]
    return out


@operation("ListFunctionVersionsByCapacityProvider")
async def list_function_versions(
    api_: Api, caller: Caller, request: api.ListFunctionVersionsByCapacityProviderRequest
) -> api.ListFunctionVersionsByCapacityProviderResponse:
    scope = caller.scope
    provider = require_provider(api_, scope, request.capacity_provider_name)
    arn = provider.capacity_provider_arn
    limit = request.max_items or DEFAULT_PAGE
    items = sorted(
        (
            api.FunctionVersionsByCapacityProviderListItem(
                function_arn=c.function_arn
                if c.version != "$LATEST"
                else f"{c.function_arn}:$LATEST",
                state=c.state,
            )
            for c in versions_using(api_, scope, arn)
        ),
        key=lambda item: item.function_arn,
    )
    page = [i for i in items if i.function_arn > request.marker][: limit + 1]
    out = api.ListFunctionVersionsByCapacityProviderResponse(
        capacity_provider_arn=arn, function_versions=page[:limit]
    )
    if len(page) > limit:
        out.next_marker = page[limit - 1].function_arn
    return out
