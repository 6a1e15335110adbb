"""Resource-based policies of functions: AddPermission, GetPolicy,
RemovePermission (statement by statement; resource_policies.py writes the
same policies whole).

A policy belongs to $LATEST, a version or an alias (kind POLICY, id NAME or
NAME:QUALIFIER, deleted with the function). Adding or removing a statement
gives the policy and the version or alias it is attached to one fresh
RevisionId, so GetPolicy and GetFunction/GetAlias show the same one, as AWS
does (TestLambdaRevisions::test_function_revisions_permissions); later
changes of the function (activation, publishing) leave the policy's alone.

The pure part (statements and documents as AWS writes them) is shared with
layer version policies (layers.py).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, conflict, invalid_parameter, not_found
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle
from ..store import ResourceStore, Scope
from .kinds import POLICY
from .registry import Api, Caller, operation
from .resolve import (
    ALIAS,
    LATEST,
    VERSION,
    alias_id,
    function_arn,
    function_not_found,
    get_alias,
    get_version,
    is_version,
    load,
    partition,
    save,
    version_id,
)

# --- pure: statements and documents ------------------------------------------

POLICY_VERSION = "2012-10-17"
RESOURCE_NOT_FOUND = "The resource you requested does not exist."
NO_POLICY = "No policy is associated with the given resource."

_ACCOUNT = re.compile(r"\d{12}")
_IAM_ARN = re.compile(r"arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:\S+")
# AWS services name themselves by a DNS name of amazonaws.com (or
# amazon.com, e.g. alexa-appkit.amazon.com); anything else is refused.
_SERVICE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.(amazonaws\.com(\.cn)?|amazon\.com)")
# The model's Alias pattern: a qualifier that is not a version number.
_ALIAS = re.compile(r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)")


def principal_of(principal: str, region: str) -> str | dict[str, str]:
    """The statement's Principal for AddPermission's `principal`, or AWS's
    error for one it does not accept."""
    if principal == "*":
        return "*"
    if _ACCOUNT.fullmatch(principal):
        return {"AWS": f"arn:{partition(region)}:iam::{principal}:root"}
    if _IAM_ARN.fullmatch(principal):
        return {"AWS": principal}
    if _SERVICE.fullmatch(principal):
        return {"Service": principal}
    raise invalid_parameter(
        "The provided principal was invalid. Please check the principal and try again."
    )


@dataclass(frozen=True)
class Grant:
    """What an AddPermission request asks for (only the members given)."""

    sid: str
    action: str
    principal: str
    resource: str
    source_arn: str | None = None
    source_account: str | None = None
    event_source_token: str | None = None
    principal_org_id: str | None = None
    function_url_auth_type: str | None = None
    invoked_via_function_url: bool | None = None


def function_statement(grant: Grant, region: str) -> dict[str, Any]:
    """The statement AWS adds for `grant`, keys in AWS's order (recorded:
    test_add_lambda_permission_fields)."""
    statement: dict[str, Any] = {
        "Sid": grant.sid,
        "Effect": "Allow",
        "Principal": principal_of(grant.principal, region),
        "Action": grant.action,
        "Resource": grant.resource,
    }
    equals: dict[str, str] = {}
    if grant.source_account is not None:
        equals["AWS:SourceAccount"] = grant.source_account
    if grant.function_url_auth_type is not None:
        equals["lambda:FunctionUrlAuthType"] = grant.function_url_auth_type
    if grant.principal_org_id is not None:
        equals["aws:PrincipalOrgID"] = grant.principal_org_id
    if grant.event_source_token is not None:
        equals["lambda:EventSourceToken"] = grant.event_source_token
    condition: dict[str, dict[str, str]] = {}
    if equals:
        condition["StringEquals"] = equals
    if grant.source_arn is not None:
        condition["ArnLike"] = {"AWS:SourceArn": grant.source_arn}
    if grant.invoked_via_function_url is not None:
        condition["Bool"] = {
            "lambda:InvokedViaFunctionUrl": str(grant.invoked_via_function_url).lower()
        }
    if condition:
        statement["Condition"] = condition
    return statement


def document(statements: list[str]) -> str:
    """The policy document GetPolicy answers, statements in the order added."""
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Id": "default",
            "Statement": [json.loads(s) for s in statements],
        },
        separators=(",", ":"),
    )


def encode(statement: dict[str, Any]) -> str:
    return json.dumps(statement, separators=(",", ":"))


def statement_ids(policy: state_pb2.Policy) -> list[str]:
    # A policy written whole (PutResourcePolicy) may have statements without one.
    return [json.loads(s).get("Sid", "") for s in policy.statements]


def check_new_sid(policy: state_pb2.Policy | None, sid: str) -> None:
    if policy is not None and sid in statement_ids(policy):
        raise conflict(
            f"The statement id ({sid}) provided already exists. Please provide a new "
            "statement id, or remove the existing statement."
        )


def without(policy: state_pb2.Policy, sid: str) -> list[str]:
    """The statements left once `sid` is removed; AWS's error when absent."""
    kept = [s for s in policy.statements if json.loads(s).get("Sid") != sid]
    if len(kept) == len(policy.statements):
        raise not_found(f"Statement {sid} is not found in resource policy.")
    return kept


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def revision_mismatch(given: str) -> LambdaError:
    """AWS names GetFunction/GetAlias when the RevisionId given is a revision
    id that is stale (test_lambda_permission_revisions), and GetPolicy when it
    is not a revision id at all ("wrong": test_function_revisions_permissions,
    test_lambda_permission_fn_versioning)."""
    where = "GetFunction/GetAlias" if _is_uuid(given) else "GetPolicy"
    return LambdaError(
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. "
        f"Call the {where} API to retrieve the latest Revision Id",
    )


# --- I/O: the version or alias a policy is attached to ------------------------


@dataclass
class Target:
    """A function's $LATEST, version or alias, as a policy sees it."""

    name: str
    qualifier: str | None  # None for $LATEST
    record: state_pb2.FunctionRecord
    version: api.FunctionConfiguration | None = None
    alias: api.AliasConfiguration | None = None

    @property
    def policy_id(self) -> str:
        return f"{self.name}:{self.qualifier}" if self.qualifier else self.name

    @property
    def revision_id(self) -> str:
        if self.alias is not None:
            return self.alias.revision_id
        if self.version is not None:
            return self.version.revision_id
        return self.record.configuration.revision_id

    def set_revision(self, store: ResourceStore, scope: Scope, revision: str) -> None:
        if self.alias is not None:
            self.alias.revision_id = revision
            store.put(scope, ALIAS, alias_id(self.name, self.alias.name), self.alias, self.name)
        elif self.version is not None:
            self.version.revision_id = revision
            store.put(
                scope, VERSION, version_id(self.name, self.version.version), self.version, self.name
            )
        else:
            self.record.configuration.revision_id = revision
            save(store, scope, self.record)


def find_target(
    store: ResourceStore, scope: Scope, name: str, qualifier: str | None, missing: LambdaError
) -> Target:
    """The version or alias `qualifier` names, with AWS's errors: `missing`
    when the function does not exist, "Cannot find alias" for an alias name,
    "Function not found" for anything else."""
    record = load(store, scope, name)
    if record is None:
        raise missing
    if not qualifier or qualifier == LATEST:
        return Target(name, None, record)
    if is_version(qualifier):
        version = get_version(store, scope, name, qualifier)
        if version is None:
            raise function_not_found(scope, name, qualifier)
        return Target(name, qualifier, record, version=version)
    alias = get_alias(store, scope, name, qualifier) if _ALIAS.fullmatch(qualifier) else None
    if alias is None:
        if _ALIAS.fullmatch(qualifier):
            raise not_found(f"Cannot find alias arn: {function_arn(scope, name, qualifier)}")
        raise function_not_found(scope, name, qualifier)
    return Target(name, qualifier, record, alias=alias)


def check_revision(given: str, policy: state_pb2.Policy | None, target: Target) -> None:
    """The RevisionId guard: the policy's revision once there is a policy
    (publishing changes $LATEST's RevisionId but AWS still accepts the
    policy's: test_lambda_permission_fn_versioning), else the version's or
    alias's (test_function_revisions_permissions)."""
    current = policy.revision_id if policy is not None else target.revision_id
    if given and given != current:
        raise revision_mismatch(given)


def attached_policy(
    store: ResourceStore, scope: Scope, name: str, qualifier: str | None
) -> state_pb2.Policy:
    """The policy of $LATEST, a version or an alias, as GetPolicy reads it:
    it names nothing, so every miss is the same answer (recorded)."""
    missing = not_found(RESOURCE_NOT_FOUND)
    try:
        target = find_target(store, scope, name, qualifier, missing)
    except LambdaError as exc:
        raise missing from exc
    policy = store.get(scope, POLICY, target.policy_id, state_pb2.Policy)
    if policy is None:
        raise missing
    return policy


def _grant(request: api.AddPermissionRequest, resource: str) -> Grant:
    def opt(field: str) -> Any:
        return getattr(request, field) if request.HasField(field) else None

    return Grant(
        sid=request.statement_id,
        action=request.action,
        principal=request.principal,
        resource=resource,
        source_arn=opt("source_arn"),
        source_account=opt("source_account"),
        event_source_token=opt("event_source_token"),
        principal_org_id=opt("principal_org_id"),
        function_url_auth_type=opt("function_url_auth_type"),
        invoked_via_function_url=opt("invoked_via_function_url"),
    )


@operation("AddPermission")
async def add_permission(
    api_: Api, caller: Caller, request: api.AddPermissionRequest
) -> api.AddPermissionResponse:
    scope = caller.scope
    name = request.function_name
    qualifier = request.qualifier or None
    if qualifier == LATEST:
        raise invalid_parameter("We currently do not support adding policies for $LATEST.")
    statement = function_statement(
        _grant(request, function_arn(scope, name, qualifier)), caller.region
    )
    with api_.store.transaction():
        target = find_target(
            api_.store, scope, name, qualifier, function_not_found(scope, name, qualifier)
        )
        policy = api_.store.get(scope, POLICY, target.policy_id, state_pb2.Policy)
        check_revision(request.revision_id, policy, target)
        check_new_sid(policy, request.statement_id)
        policy = policy or state_pb2.Policy()
        policy.statements.append(encode(statement))
        policy.revision_id = lifecycle.new_revision()
        api_.store.put(scope, POLICY, target.policy_id, policy, function=name)
        target.set_revision(api_.store, scope, policy.revision_id)
    return api.AddPermissionResponse(statement=encode(statement))


@operation("GetPolicy")
async def get_policy(
    api_: Api, caller: Caller, request: api.GetPolicyRequest
) -> api.GetPolicyResponse:
    policy = attached_policy(
        api_.store, caller.scope, request.function_name, request.qualifier or None
    )
    return api.GetPolicyResponse(
        policy=document(list(policy.statements)), revision_id=policy.revision_id
    )


@operation("RemovePermission")
async def remove_permission(
    api_: Api, caller: Caller, request: api.RemovePermissionRequest
) -> empty_pb2.Empty:
    scope = caller.scope
    name = request.function_name
    qualifier = request.qualifier or None
    with api_.store.transaction():
        target = find_target(
            api_.store,
            scope,
            name,
            qualifier,
            not_found(f"No policy found for: {function_arn(scope, name, qualifier)}"),
        )
        policy = api_.store.get(scope, POLICY, target.policy_id, state_pb2.Policy)
        check_revision(request.revision_id, policy, target)
        if policy is None:
            raise not_found(NO_POLICY)
        kept = without(policy, request.statement_id)
        revision = lifecycle.new_revision()
        if kept:
            del policy.statements[:]
            policy.statements.extend(kept)
            policy.revision_id = revision
            api_.store.put(scope, POLICY, target.policy_id, policy, function=name)
        else:
            # The last statement gone, the policy is gone (GetPolicy: not found).
            api_.store.delete(scope, POLICY, target.policy_id)
        target.set_revision(api_.store, scope, revision)
    return empty_pb2.Empty()
