"""The store's resource kinds and id layouts, shared by the API modules.

Function-owned rows (stored with `function=<name>`, deleted with it):
- FUNCTION  id NAME                      state_pb2.FunctionRecord
- VERSION   id NAME:0000000007           api.FunctionConfiguration
- ALIAS     id NAME:ALIAS                api.AliasConfiguration
- POLICY    id NAME or NAME:QUALIFIER    state_pb2.Policy
- URL_CONFIG id NAME or NAME:QUALIFIER   api.GetFunctionUrlConfigResponse
- EVENT_INVOKE_CONFIG id NAME:QUALIFIER ($LATEST spelled out)
                                         api.FunctionEventInvokeConfig
- PROVISIONED id NAME:QUALIFIER          api.GetProvisionedConcurrencyConfigResponse
- SCALING   id NAME:QUALIFIER            api.GetFunctionScalingConfigResponse
- async_event id REQUEST_ID              state_pb2.QueuedEvent (the queue of
            Event invocations: control_plane/event_queue.py)
Regional rows:
- LAYER_VERSION id LAYERNAME:0000000003  api.GetLayerVersionResponse
- LAYER     id LAYERNAME                 state_pb2.LayerRecord (last version number)
- LAYER_POLICY id LAYERNAME:0000000003   state_pb2.Policy
- CODE_SIGNING_CONFIG id csc-<17 hex>    api.CodeSigningConfig
- EVENT_SOURCE_MAPPING id UUID           api.EventSourceMappingConfiguration
- CAPACITY_PROVIDER id NAME              api.CapacityProvider
- TAGS      id RESOURCE-ARN              api.ListTagsResponse (tags of every
            taggable resource other than a function; a function's tags live
            in its FunctionRecord)
"""

from __future__ import annotations

from lambdafleet.api.v1 import lambda_pb2 as api

from ..store import ResourceStore, Scope
from .resolve import ALIAS, FUNCTION, VERSION

__all__ = ["ALIAS", "FUNCTION", "VERSION"]

POLICY = "policy"
URL_CONFIG = "url_config"
EVENT_INVOKE_CONFIG = "event_invoke_config"
PROVISIONED = "provisioned_concurrency"
SCALING = "scaling_config"
LAYER = "layer"
LAYER_VERSION = "layer_version"
LAYER_POLICY = "layer_policy"
CODE_SIGNING_CONFIG = "code_signing_config"
EVENT_SOURCE_MAPPING = "event_source_mapping"
CAPACITY_PROVIDER = "capacity_provider"
TAGS = "tags"

# What belongs to one version or alias (id NAME:QUALIFIER): deleted with it.
QUALIFIER_SCOPED = (POLICY, URL_CONFIG, EVENT_INVOKE_CONFIG, PROVISIONED, SCALING)


def numbered(name: str, number: int | str) -> str:
    """NAME:0000000007: ids in numeric order."""
    return f"{name}:{int(number):010d}"


def get_tags(store: ResourceStore, scope: Scope, arn: str) -> dict[str, str]:
    found = store.get(scope, TAGS, arn, api.ListTagsResponse)
    return dict(found.tags) if found is not None else {}


def set_tags(store: ResourceStore, scope: Scope, arn: str, tags: dict[str, str]) -> None:
    if tags:
        store.put(scope, TAGS, arn, api.ListTagsResponse(tags=tags))
    else:
        store.delete(scope, TAGS, arn)


def drop_tags(store: ResourceStore, scope: Scope, arn: str) -> None:
    store.delete(scope, TAGS, arn)
