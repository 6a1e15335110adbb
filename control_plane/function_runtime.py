"""What a worker needs beyond the configuration to run a function: its
layers' packages (by CodeSha256, in the CodeStore like function code) and,
for a PackageType=Image function, its image and ImageConfig."""

from __future__ import annotations

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.state.v1 import state_pb2

from .api.kinds import FUNCTION, LAYER_VERSION, numbered
from .store import ResourceStore, Scope

log = structlog.get_logger(__name__)

# Layer versions never change, so their package hash is remembered once read:
# invocations then cost no extra read. It also keeps a deleted layer version
# usable by the functions that already reference it, as AWS does.
_LAYER_SHAS: dict[str, str] = {}


def layer_version_parts(arn: str) -> tuple[Scope, str, int] | None:
    """(scope, layer name, version) of a layer version ARN."""
    parts = arn.split(":")
    if len(parts) != 8 or parts[5] != "layer" or not parts[7].isdigit():
        return None
    return Scope(parts[4], parts[3]), parts[6], int(parts[7])


def layer_sha(store: ResourceStore, arn: str) -> str | None:
    cached = _LAYER_SHAS.get(arn)
    if cached is not None:
        return cached
    parts = layer_version_parts(arn)
    if parts is None:
        return None
    scope, name, number = parts
    found = store.get(scope, LAYER_VERSION, numbered(name, number), api.GetLayerVersionResponse)
    if found is None:
        return None
    _LAYER_SHAS[arn] = found.content.code_sha256
    return found.content.code_sha256


def complete(
    store: ResourceStore, scope: Scope, c: api.FunctionConfiguration, spec: apb.FunctionSpec
) -> None:
    """Fill in `spec`'s layers and image from the store."""
    for layer in c.layers:
        sha = layer_sha(store, layer.arn)
        if sha is None:
            # Validated when the function was configured; gone since only if
            # its rows were removed by hand.
            log.warning("layer.unresolved", function=c.function_name, layer=layer.arn)
            continue
        spec.layers.append(apb.LayerSpec(layer_version_arn=layer.arn, code_sha256=sha))
    if c.package_type == "Image":
        spec.package_type = "Image"
        record = store.get(scope, FUNCTION, c.function_name, state_pb2.FunctionRecord)
        if record is not None:
            # The function's current ImageUri: a published version runs it
            # too (versions keep no ImageUri of their own here).
            spec.image_uri = record.image_uri
        image_config = c.image_config_response.image_config
        spec.image_config.entry_point.extend(image_config.entry_point)
        spec.image_config.command.extend(image_config.command)
        spec.image_config.working_directory = image_config.working_directory
