"""What the control plane and the workers must agree on about environments."""

from __future__ import annotations

from lambdafleet.agent.v1 import agent_pb2 as apb


def environment_key(spec: apb.FunctionSpec) -> str:
    """Environments with equal keys are interchangeable: the same function
    version (account, region, function, version) in the same configuration
    revision and code. The control plane places by it, the worker reuses
    warm environments by it.

    The qualifier an invocation came through is not part of it: as on AWS,
    an environment is a version's, and serves that version whether it was
    invoked by number, through an alias or (for $LATEST) unqualified. The
    ARN as invoked travels with each invocation instead
    (InvokeAssignment.invoked_function_arn)."""
    key = (
        f"{spec.account_id}:{spec.region}:{spec.function_name}:{spec.version}"
        f"#{spec.revision_id}:{spec.code_sha256}"
    )
    # What /opt holds and which image runs are the environment's too: a
    # change of either (UpdateFunctionConfiguration's Layers, the ImageUri)
    # must not reuse an environment, even were the revision kept.
    if spec.layers:
        key += "+" + ",".join(layer.code_sha256 for layer in spec.layers)
    if spec.image_uri:
        key += "@" + spec.image_uri
    return key
