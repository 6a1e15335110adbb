"""What the control plane and the workers must agree on about environments."""

from __future__ import annotations

from lambdafleet.agent.v1 import agent_pb2 as apb


def environment_key(spec: apb.FunctionSpec) -> str:
    """Environments with equal keys are interchangeable: the same function
    version in the same configuration revision. The control plane places by
    it, the worker reuses warm environments by it."""
    return f"{spec.function_arn}:{spec.version}#{spec.revision_id}"
