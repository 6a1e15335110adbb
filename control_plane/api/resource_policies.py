"""Resource-based policies written whole: PutResourcePolicy, GetResourcePolicy,
DeleteResourcePolicy (the 2026-07-09 API).

They act on the very policy AddPermission and RemovePermission edit
statement by statement (permissions.py): one policy per $LATEST, version or
alias, named by its ARN. PutResourcePolicy replaces every statement, as AWS
warns it does. Each change gives the policy, and the version or alias it is
attached to, one fresh RevisionId.

Decided where AWS's documentation is silent: a document that is not a JSON
object with a `Statement` (an object or a list of objects) is an
InvalidParameterValueException; `runtime/...` resources, which lambdafleet
does not model, are not found; PublicPolicyException, which AWS raises only
under an account's BlockPublicAccess setting, is never raised (no such
setting exists here).
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, invalid_parameter, not_found
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle
from ..store import Scope
from .kinds import POLICY
from .permissions import (
    NO_POLICY,
    RESOURCE_NOT_FOUND,
    Target,
    attached_policy,
    check_revision,
    document,
    encode,
    find_target,
)
from .registry import Api, Caller, operation
from .resolve import LATEST, function_not_found

# The model's PolicyResourceArn, split: validation has checked the whole.
_FUNCTION_ARN = re.compile(
    r"arn:[^:]*:lambda:(?P<region>[^:]+):(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9-_]+)"
    r"(:(?P<qualifier>[^:]+))?"
)


# --- pure: the ARN and the document ------------------------------------------


def parse_resource(arn: str, region: str) -> tuple[Scope, str, str | None]:
    """(scope, function name, qualifier) of a function ARN, for a caller in
    `region`; not found for any other resource, or one of another region."""
    m = _FUNCTION_ARN.fullmatch(arn)
    if m is None or m["region"] != region:
        raise not_found(RESOURCE_NOT_FOUND)
    return Scope(m["account"], region), m["name"], m["qualifier"]


def statements_of(policy: str) -> list[str]:
    """The statements of a policy document, each as the policy stores it."""
    try:
        parsed: Any = json.loads(policy)
    except ValueError:
        raise invalid_parameter("The policy is not a valid JSON document.") from None
    if not isinstance(parsed, dict) or "Statement" not in parsed:
        raise invalid_parameter("The policy document must be a JSON object with a Statement.")
    statements = parsed["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if (
        not isinstance(statements, list)
        or not statements
        or not all(isinstance(s, dict) for s in statements)
    ):
        raise invalid_parameter("The policy's Statement must be an object or a list of objects.")
    sids = [s["Sid"] for s in statements if "Sid" in s]
    if len(sids) != len(set(sids)):
        raise invalid_parameter("The policy's statement ids must be unique.")
    return [encode(s) for s in statements]


# --- I/O -----------------------------------------------------------------------


def _target(api_: Api, caller: Caller, missing: LambdaError, arn: str) -> tuple[Scope, Target]:
    scope, name, qualifier = parse_resource(arn, caller.region)
    if qualifier == LATEST:
        raise invalid_parameter("We currently do not support adding policies for $LATEST.")
    return scope, find_target(api_.store, scope, name, qualifier, missing)


@operation("PutResourcePolicy")
async def put_resource_policy(
    api_: Api, caller: Caller, request: api.PutResourcePolicyRequest
) -> api.PutResourcePolicyResponse:
    statements = statements_of(request.policy)
    with api_.store.transaction():
        scope, target = _target(api_, caller, not_found(RESOURCE_NOT_FOUND), request.resource_arn)
        policy = api_.store.get(scope, POLICY, target.policy_id, state_pb2.Policy)
        check_revision(request.revision_id, policy, target)
        policy = state_pb2.Policy(statements=statements, revision_id=lifecycle.new_revision())
        api_.store.put(scope, POLICY, target.policy_id, policy, function=target.name)
        target.set_revision(api_.store, scope, policy.revision_id)
    return api.PutResourcePolicyResponse(
        policy=document(statements), revision_id=policy.revision_id
    )


@operation("GetResourcePolicy")
async def get_resource_policy(
    api_: Api, caller: Caller, request: api.GetResourcePolicyRequest
) -> api.GetResourcePolicyResponse:
    scope, name, qualifier = parse_resource(request.resource_arn, caller.region)
    policy = attached_policy(api_.store, scope, name, qualifier)
    return api.GetResourcePolicyResponse(
        policy=document(list(policy.statements)), revision_id=policy.revision_id
    )


@operation("DeleteResourcePolicy")
async def delete_resource_policy(
    api_: Api, caller: Caller, request: api.DeleteResourcePolicyRequest
) -> empty_pb2.Empty:
    scope, name, qualifier = parse_resource(request.resource_arn, caller.region)
    with api_.store.transaction():
        _, target = _target(
            api_, caller, function_not_found(scope, name, qualifier), request.resource_arn
        )
        policy = api_.store.get(scope, POLICY, target.policy_id, state_pb2.Policy)
        check_revision(request.revision_id, policy, target)
        if policy is None:
            raise not_found(NO_POLICY)
        api_.store.delete(scope, POLICY, target.policy_id)
        target.set_revision(api_.store, scope, lifecycle.new_revision())
    return empty_pb2.Empty()
