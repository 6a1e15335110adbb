"""The 2026-07-09 resource policy API (PutResourcePolicy, GetResourcePolicy,
DeleteResourcePolicy) and the durable-execution operations new in the same
model, called through a client that speaks the shipped model whatever boto3
runs the tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import create_echo, lambda_client
from lambdafleet.control_plane.api import resource_policies

from lambdafleet.errors import LambdaError

REGION = "us-east-1"
ACCOUNT = "000000000000"


def _arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _policy(*sids: str, resource: str = "*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "lambda:InvokeFunction",
                    "Resource": resource,
                }
                for sid in sids
            ],
        }
    )


def _error(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response = err.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


@pytest.fixture
def shipped(cluster: Any) -> Any:
    return lambda_client(cluster.endpoint, shipped_model=True)


@pytest.fixture
def fn(shipped: Any) -> str:
    name = f"rp-{uuid.uuid4().hex[:10]}"
    create_echo(shipped, name)
    return name


# --- pure ---------------------------------------------------------------------------


def test_a_document_is_read_into_statements() -> None:
    statements = resource_policies.statements_of(_policy("a", "b"))
    assert [json.loads(s)["Sid"] for s in statements] == ["a", "b"]
    single = json.dumps({"Statement": {"Effect": "Allow", "Action": "*", "Principal": "*"}})
    assert len(resource_policies.statements_of(single)) == 1


@pytest.mark.parametrize(
    "policy",
    ["not json", "[]", '{"Version": "2012-10-17"}', '{"Statement": []}', '{"Statement": [1]}',
     _policy("same", "same")],
)  # fmt: skip
def test_a_bad_document_is_refused(policy: str) -> None:
    with pytest.raises(LambdaError) as err:
        resource_policies.statements_of(policy)
    assert err.value.code == "InvalidParameterValueException"


# --- against a cluster ------------------------------------------------------------


def test_put_get_delete(shipped: Any, fn: str) -> None:
    put = shipped.put_resource_policy(ResourceArn=_arn(fn), Policy=_policy("s3-1"))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    document = json.loads(put["Policy"])
    assert document["Version"] == "2012-10-17"
    assert [s["Sid"] for s in document["Statement"]] == ["s3-1"]

    got = shipped.get_resource_policy(ResourceArn=_arn(fn))
    assert json.loads(got["Policy"]) == document
    assert got["RevisionId"] == put["RevisionId"]
    # The same policy AddPermission and GetPolicy work on.
    assert json.loads(shipped.get_policy(FunctionName=fn)["Policy"]) == document
    shipped.add_permission(
        FunctionName=fn,
        StatementId="s3-2",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    )
    got = shipped.get_resource_policy(ResourceArn=_arn(fn))
    assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == ["s3-1", "s3-2"]

    # Put replaces every statement.
    replaced = shipped.put_resource_policy(
        ResourceArn=_arn(fn), Policy=_policy("only"), RevisionId=got["RevisionId"]
    )
    assert [s["Sid"] for s in json.loads(replaced["Policy"])["Statement"]] == ["only"]
    assert replaced["RevisionId"] != got["RevisionId"]

    deleted = shipped.delete_resource_policy(ResourceArn=_arn(fn))
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(shipped.get_resource_policy, ResourceArn=_arn(fn))[0] == (
        "ResourceNotFoundException"
    )
    assert _error(shipped.get_policy, FunctionName=fn)[0] == "ResourceNotFoundException"
    assert _error(shipped.delete_resource_policy, ResourceArn=_arn(fn))[:2] == (
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
    )


def test_a_stale_revision_is_refused(shipped: Any, fn: str) -> None:
    shipped.put_resource_policy(ResourceArn=_arn(fn), Policy=_policy("a"))
    stale = str(uuid.uuid4())
    code, _, status = _error(
        shipped.put_resource_policy, ResourceArn=_arn(fn), Policy=_policy("b"), RevisionId=stale
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    code, _, status = _error(shipped.delete_resource_policy, ResourceArn=_arn(fn), RevisionId=stale)
    assert (code, status) == ("PreconditionFailedException", 412)
    got = shipped.get_resource_policy(ResourceArn=_arn(fn))
    assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == ["a"]


def test_versions_and_aliases_have_their_own(shipped: Any, fn: str) -> None:
    version = shipped.publish_version(FunctionName=fn)["Version"]
    shipped.create_alias(FunctionName=fn, Name="live", FunctionVersion=version)
    shipped.put_resource_policy(ResourceArn=_arn(fn, "live"), Policy=_policy("alias"))
    shipped.put_resource_policy(ResourceArn=_arn(fn, version), Policy=_policy("version"))
    for qualifier, sid in (("live", "alias"), (version, "version")):
        got = shipped.get_resource_policy(ResourceArn=_arn(fn, qualifier))
        assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == [sid]
        assert json.loads(shipped.get_policy(FunctionName=fn, Qualifier=qualifier)["Policy"]) == (
            json.loads(got["Policy"])
        )
    assert _error(shipped.get_resource_policy, ResourceArn=_arn(fn))[0] == (
        "ResourceNotFoundException"
    )


def test_missing_and_bad_input(shipped: Any, fn: str) -> None:
    missing = f"nope-{uuid.uuid4().hex[:8]}"
    code, _, status = _error(
        shipped.put_resource_policy, ResourceArn=_arn(missing), Policy=_policy("a")
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = _error(
        shipped.put_resource_policy, ResourceArn=_arn(fn, "nosuchalias"), Policy=_policy("a")
    )
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = _error(shipped.put_resource_policy, ResourceArn=_arn(fn), Policy="{")
    assert (code, status) == ("InvalidParameterValueException", 400)
    code, message, status = _error(
        shipped.get_resource_policy, ResourceArn="arn:aws:s3:::not-lambda"
    )
    assert (code, status) == ("ValidationException", 400)
    assert "resourceArn" in message


@pytest.mark.parametrize(
    "operation", ["pause_durable_execution", "resume_durable_execution", "delete_durable_execution"]
)
def test_durable_operations_answer_not_found(shipped: Any, fn: str, operation: str) -> None:
    arn = f"{_arn(fn, '$LATEST')}/durable-execution/run-1/{uuid.uuid4()}"
    code, message, status = _error(getattr(shipped, operation), DurableExecutionArn=arn)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert arn in message
