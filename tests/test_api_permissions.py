"""Function resource policies (AddPermission, GetPolicy, RemovePermission)
against AWS's recorded answers (TestLambdaPermissions,
TestLambdaRevisions::test_function_revisions_permissions)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aws_recorded import ACCOUNT, assert_matches, body, status, step
from botocore.exceptions import ClientError
from cluster import create_echo
from lambdafleet.control_plane.api import permissions

from lambdafleet.errors import LambdaError

BUCKET_ARN = "arn:aws:s3:::test-bucket"
S3 = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


def without_revision(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body(response).items() if k != "RevisionId"}


@pytest.fixture
def fn(client: Any) -> str:
    name = f"perm-{uuid.uuid4().hex[:10]}"
    create_echo(client, name)
    return name


# --- pure decisions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("*", "*"),
        ("s3.amazonaws.com", {"Service": "s3.amazonaws.com"}),
        ("alexa-appkit.amazon.com", {"Service": "alexa-appkit.amazon.com"}),
        ("123456789012", {"AWS": "arn:aws:iam::123456789012:root"}),
        ("arn:aws:iam::123456789012:user/me", {"AWS": "arn:aws:iam::123456789012:user/me"}),
        (
            "arn:aws:sts::123456789012:assumed-role/r/s",
            {"AWS": "arn:aws:sts::123456789012:assumed-role/r/s"},
        ),
    ],
)
def test_principal_forms(principal: str, expected: object) -> None:
    assert permissions.principal_of(principal, "us-east-1") == expected


@pytest.mark.parametrize("principal", ["invalid.nonaws.com", "1234", "arn:aws:s3:::bucket"])
def test_principal_invalid(principal: str) -> None:
    with pytest.raises(LambdaError) as err:
        permissions.principal_of(principal, "us-east-1")
    assert err.value.message.startswith("The provided principal was invalid.")


def test_statement_condition_order() -> None:
    grant = permissions.Grant(
        sid="urlPermission",
        action="lambda:InvokeFunctionUrl",
        principal="*",
        resource="arn:aws:lambda:us-east-1:000000000000:function:f",
        source_arn=BUCKET_ARN,
        source_account=ACCOUNT,
        principal_org_id="o-1234567890",
        function_url_auth_type="NONE",
    )
    statement = permissions.function_statement(grant, "us-east-1")
    assert list(statement) == ["Sid", "Effect", "Principal", "Action", "Resource", "Condition"]
    assert list(statement["Condition"]) == ["StringEquals", "ArnLike"]
    assert list(statement["Condition"]["StringEquals"]) == [
        "AWS:SourceAccount",
        "lambda:FunctionUrlAuthType",
        "aws:PrincipalOrgID",
    ]


def test_revision_mismatch_names_the_api_to_ask() -> None:
    assert "GetPolicy API" in permissions.revision_mismatch("wrong").message
    assert "GetFunction/GetAlias API" in permissions.revision_mismatch(str(uuid.uuid4())).message
    assert permissions.revision_mismatch("wrong").code == "PreconditionFailedException"


def test_policy_document_keeps_statement_order() -> None:
    statements = [permissions.encode({"Sid": s}) for s in ("b", "a")]
    doc = json.loads(permissions.document(statements))
    assert doc == {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [{"Sid": "b"}, {"Sid": "a"}],
    }


# --- through the API ------------------------------------------------------------


def test_permission_exceptions(client: Any, fn: str) -> None:
    test = "TestLambdaPermissions::test_permission_exceptions"

    def expect(name: str, call: Any, **kwargs: Any) -> None:
        assert_matches(error_of(call, **kwargs), step(test, name, **{"function-name": fn}))

    add = client.add_permission
    expect(
        "add_permission_invalid_statement_id", add, FunctionName=fn, StatementId="example.com", **S3
    )
    expect(
        "add_permission_fn_qualifier_mismatch",
        add,
        FunctionName=f"{fn}:alias-not-42",
        StatementId="s3",
        SourceArn=BUCKET_ARN,
        Qualifier="42",
        **S3,
    )
    expect(
        "add_permission_fn_qualifier_latest",
        add,
        FunctionName=f"{fn}:$LATEST",
        StatementId="s3",
        Qualifier="$LATEST",
        **S3,
    )
    expect(
        "add_permission_principal_invalid",
        add,
        FunctionName=fn,
        Action="lambda:InvokeFunction",
        StatementId="lambda",
        Principal="invalid.nonaws.com",
        SourceAccount=ACCOUNT,
    )
    expect("get_policy_fn_doesnotexist", client.get_policy, FunctionName="doesnotexist")
    expect("get_policy_fn_version_doesnotexist", client.get_policy, FunctionName=fn, Qualifier="77")
    expect(
        "add_permission_fn_doesnotexist", add, FunctionName="doesnotexist", StatementId="s3", **S3
    )
    expect(
        "remove_permission_policy_doesnotexist",
        client.remove_permission,
        FunctionName=fn,
        StatementId="s3",
    )
    expect(
        "add_permission_fn_alias_doesnotexist",
        add,
        FunctionName=f"{fn}:alias-doesnotexist",
        StatementId="s3",
        **S3,
    )
    expect(
        "add_permission_fn_version_doesnotexist",
        add,
        FunctionName=fn,
        StatementId="s3",
        Qualifier="42",
        **S3,
    )
    expect(
        "add_permission_fn_qualifier_invalid",
        add,
        FunctionName=fn,
        StatementId="s3",
        Qualifier="invalid-qualifier-with-?-char",
        **S3,
    )
    expect(
        "add_permission_fn_qualifier_valid_doesnotexist",
        add,
        FunctionName=fn,
        StatementId="s3",
        Qualifier="valid-with-$-but-doesnotexist",
        **S3,
    )
    add(FunctionName=fn, StatementId="s3", SourceArn=BUCKET_ARN, **S3)
    expect("add_permission_conflicting_statement_id", add, FunctionName=fn, StatementId="s3", **S3)
    expect(
        "remove_permission_fn_doesnotexist",
        client.remove_permission,
        FunctionName="doesnotexist",
        StatementId="s3",
    )
    expect(
        "remove_permission_fn_alias_doesnotexist",
        client.remove_permission,
        FunctionName=fn,
        StatementId="s3",
        Qualifier="alias-doesnotexist",
    )


def test_add_permission_and_policy(client: Any, fn: str) -> None:
    test = "TestLambdaPermissions::test_add_lambda_permission_aws"
    names = {"function-name:1": fn, "resource:3": "test-bucket"}
    added = client.add_permission(FunctionName=fn, StatementId="s3", SourceArn=BUCKET_ARN, **S3)
    assert_matches(added, step(test, "add_permission", **names))
    policy = client.get_policy(FunctionName=fn)
    recorded = step(test, "get_policy", **names)
    assert status(policy) == status(recorded)
    assert without_revision(policy) == without_revision(recorded)


def test_revisions_follow_the_policy(client: Any, fn: str) -> None:
    """AddPermission/RemovePermission give the function and its policy one new
    RevisionId; a stale one is refused."""
    test = "TestLambdaRevisions::test_function_revisions_permissions"
    before = client.get_function(FunctionName=fn)["Configuration"]["RevisionId"]
    wrong = error_of(
        client.add_permission, FunctionName=fn, StatementId="s3", RevisionId="wrong", **S3
    )
    assert_matches(wrong, step(test, "add_permission_revision_exception"))

    client.add_permission(FunctionName=fn, StatementId="s3", RevisionId=before, **S3)
    policy_revision = client.get_policy(FunctionName=fn)["RevisionId"]
    after_add = client.get_function(FunctionName=fn)["Configuration"]["RevisionId"]
    assert policy_revision == after_add != before

    stale = error_of(client.remove_permission, FunctionName=fn, StatementId="s3", RevisionId=before)
    assert_matches(
        stale,
        step(
            "TestLambdaPermissions::test_lambda_permission_revisions",
            "remove_permission_fn_revision_id_doesnotmatch",
        ),
    )
    client.remove_permission(FunctionName=fn, StatementId="s3", RevisionId=after_add)
    assert client.get_function(FunctionName=fn)["Configuration"]["RevisionId"] != after_add


def test_permission_fields(client: Any, fn: str) -> None:
    test = "TestLambdaPermissions::test_add_lambda_permission_fields"
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/someone"
    names = {
        "resource:1": fn,
        "resource:2": "root",
        "resource:3": "test-bucket",
        "user_arn": user_arn,
    }
    invoke = "lambda:InvokeFunction"
    calls = {
        "add_permission_principal_wildcard": dict(
            StatementId="wilcard", Principal="*", SourceAccount=ACCOUNT
        ),
        "add_permission_principal_service": dict(
            StatementId="lambda", Principal="lambda.amazonaws.com", SourceAccount=ACCOUNT
        ),
        "add_permission_principal_account": dict(StatementId="account-id", Principal=ACCOUNT),
        "add_permission_principal_arn": dict(
            StatementId="user-arn", Principal=user_arn, SourceAccount=ACCOUNT
        ),
        "add_permission_optional_fields": dict(
            StatementId="urlPermission",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            SourceArn=BUCKET_ARN,
            SourceAccount=ACCOUNT,
            PrincipalOrgID="o-1234567890",
            FunctionUrlAuthType="NONE",
        ),
        "add_permission_alexa_skill": dict(
            StatementId="alexaSkill",
            Principal="*",
            EventSourceToken="amzn1.ask.skill.xxxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        ),
    }
    for name, kwargs in calls.items():
        response = client.add_permission(FunctionName=fn, **{"Action": invoke, **kwargs})
        recorded = step(test, name, **names)
        assert_matches(response, recorded)
        # The key order is AWS's too.
        assert list(json.loads(response["Statement"])) == list(recorded["Statement"])


def test_remove_multi_permissions(client: Any, fn: str) -> None:
    test = "TestLambdaPermissions::test_remove_multi_permissions"
    names = {"resource:1": fn, "resource:2": "test-bucket"}
    first = client.add_permission(FunctionName=fn, StatementId="s3", **S3)
    assert_matches(first, step(test, "add_permission_1", **names))
    second = client.add_permission(
        FunctionName=fn,
        StatementId="sqs",
        Action="lambda:InvokeFunction",
        Principal="sqs.amazonaws.com",
        SourceArn=BUCKET_ARN,
    )
    assert_matches(second, step(test, "add_permission_2", **names))
    assert without_revision(client.get_policy(FunctionName=fn)) == without_revision(
        step(test, "policy_after_2_add", **names)
    )
    missing = error_of(client.remove_permission, FunctionName=fn, StatementId="non-existent")
    assert_matches(missing, step(test, "remove_permission_exception_nonexisting_sid", **names))
    removed = client.remove_permission(FunctionName=fn, StatementId="sqs")
    assert status(removed) == 204
    policy = client.get_policy(FunctionName=fn)
    assert without_revision(policy) == without_revision(step(test, "policy_after_removal", **names))
    client.remove_permission(FunctionName=fn, StatementId="s3", RevisionId=policy["RevisionId"])
    gone = error_of(client.get_policy, FunctionName=fn)
    assert_matches(gone, step(test, "get_policy_exception_removed_all", **names))


def test_policies_per_version_and_alias(client: Any, fn: str) -> None:
    """$LATEST, a version and an alias each have their own policy, with the
    qualified ARN as Resource (test_lambda_permission_fn_versioning)."""
    test = "TestLambdaPermissions::test_lambda_permission_fn_versioning"
    names = {"function-name:1": fn, "resource:1": "test-bucket"}
    client.add_permission(FunctionName=fn, StatementId="s3", SourceArn=BUCKET_ARN, **S3)
    latest_revision = client.get_policy(FunctionName=fn)["RevisionId"]
    version = client.publish_version(FunctionName=fn)["Version"]
    assert client.get_policy(FunctionName=fn)["RevisionId"] == latest_revision
    no_policy = error_of(client.get_policy, FunctionName=fn, Qualifier=version)
    assert_matches(no_policy, step(test, "get_policy_after_publishing_new_version", **names))

    client.add_permission(
        FunctionName=f"{fn}:{version}",
        StatementId="s3",
        SourceArn=BUCKET_ARN,
        Qualifier=version,
        **S3,
    )
    on_version = client.get_policy(FunctionName=fn, Qualifier=version)
    assert without_revision(on_version) == without_revision(
        step(test, "get_policy_version", **names)
    )
    config = client.get_function_configuration(FunctionName=fn, Qualifier=version)
    assert config["RevisionId"] == on_version["RevisionId"]

    alias = client.create_alias(FunctionName=fn, Name="permission-alias", FunctionVersion=version)
    wrong = error_of(
        client.add_permission,
        FunctionName=fn,
        StatementId="s3",
        Qualifier="permission-alias",
        RevisionId="wrong",
        **S3,
    )
    assert_matches(wrong, step(test, "add_permission_alias_revision_exception", **names))
    client.add_permission(
        FunctionName=f"{fn}:permission-alias",
        StatementId="s3",
        SourceArn=BUCKET_ARN,
        Qualifier="permission-alias",
        RevisionId=alias["RevisionId"],
        **S3,
    )
    on_alias = client.get_policy(FunctionName=fn, Qualifier="permission-alias")
    assert without_revision(on_alias) == without_revision(step(test, "get_policy_alias", **names))
    assert (
        client.get_alias(FunctionName=fn, Name="permission-alias")["RevisionId"]
        == on_alias["RevisionId"]
    )

    unchanged = client.get_policy(FunctionName=fn)
    assert unchanged["RevisionId"] == latest_revision
    client.add_permission(
        FunctionName=fn, StatementId="s3_2", SourceArn=BUCKET_ARN, RevisionId=latest_revision, **S3
    )
    assert without_revision(client.get_policy(FunctionName=fn)) == without_revision(
        step(test, "get_policy_after_adding_2", **names)
    )


def test_policy_goes_with_the_function(client: Any) -> None:
    name = f"perm-{uuid.uuid4().hex[:10]}"
    create_echo(client, name)
    client.add_permission(FunctionName=name, StatementId="s3", **S3)
    client.delete_function(FunctionName=name)
    create_echo(client, name)
    gone = error_of(client.get_policy, FunctionName=name)
    assert gone["Error"]["Code"] == "ResourceNotFoundException"
