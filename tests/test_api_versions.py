"""Versions, aliases, qualifiers and revisions, against AWS's recorded answers.

The decisions (routing-config checks, paging, content fingerprints) are
tested directly; the operations through boto3 against a running cluster,
comparing status codes, error codes and messages, and the members each answer
has, with the recorded steps of test_lambda_api.snapshot.json.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import ROLE, zip_bytes
from test_validation import API, API_PREFIX

from control_plane.api.aliases import routing_error
from control_plane.api.resolve import fingerprint
from control_plane.api.versions import page_after, version_order
from lambdafleet.api.v1 import lambda_pb2 as api

ACCOUNT = "000000000000"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
ENV = {"Variables": {"testenv": "staging"}}

# A handler whose answer tells which code ran.
CODE = """
import os

def handler(event, context):
    return {{"code": "{tag}", "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]}}
"""


def recorded(test: str, step: str) -> dict[str, Any]:
    content: dict[str, Any] = API[API_PREFIX + test]["recorded-content"]
    return dict(content[step])


def fill_in(value: Any, name: str) -> Any:
    """A recorded value with its placeholders replaced by this cluster's."""
    text = json.dumps(value)
    for placeholder, real in {
        "<partition>": "aws",
        "<region>": "us-east-1",
        "111111111111": ACCOUNT,
        "<function-name:1>": name,
        "<fn-name>": name,
    }.items():
        text = text.replace(placeholder, real)
    return json.loads(text)


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


def assert_recorded_error(response: dict[str, Any], test: str, step: str, name: str) -> None:
    want = fill_in(recorded(test, step), name)
    assert (
        response["ResponseMetadata"]["HTTPStatusCode"]
        == (want["ResponseMetadata"]["HTTPStatusCode"])
    )
    assert response["Error"]["Code"] == want["Error"]["Code"]
    assert response["Error"]["Message"] == want["Error"]["Message"]


def assert_shape(
    response: dict[str, Any], test: str, step: str, ours_only: frozenset[str] = frozenset()
) -> None:
    """Same members (recursively, for dicts) and status as the recorded step;
    `ours_only`: top-level members of settings our call gave and AWS's did not."""
    want = recorded(test, step)
    response = {k: v for k, v in response.items() if k not in ours_only}
    assert (
        response["ResponseMetadata"]["HTTPStatusCode"]
        == (want["ResponseMetadata"]["HTTPStatusCode"])
    )
    assert _members(response) == _members(want), step


def _members(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _members(v)
            for k, v in value.items()
            if k != "ResponseMetadata" and not (k == "Variables" or k == "AdditionalVersionWeights")
        }
    if isinstance(value, list):
        return [_members(v) for v in value]
    return None


def new_function(client: Any, tag: str = "one", **extra: Any) -> str:
    name = f"ver-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": CODE.format(tag=tag)})},
        Environment=ENV,
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
    )
    return name


def wait_updated(client: Any, name: str) -> None:
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
    )


# --------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "weights", "message"),
    [
        ("1", {"1": 0.8, "2": 0.2}, "Number of items in AdditionalVersionWeights cannot be"),
        ("1", {"1": 0.5}, "Invalid function version 1. Function version 1 is already"),
        ("$LATEST", {"1": 0.5}, "$LATEST is not supported for an alias pointing to more"),
    ],
)
def test_routing_errors_in_aws_order(version: str, weights: dict[str, float], message: str) -> None:
    error = routing_error(version, weights)
    assert error is not None
    assert error.code == "InvalidParameterValueException"
    assert error.message.startswith(message)


def test_routing_configs_aws_accepts() -> None:
    assert routing_error("1", {}) is None
    assert routing_error("1", {"2": 0.5}) is None
    assert routing_error("$LATEST", {}) is None


def test_paging_walks_every_entry_once() -> None:
    keys = ["$LATEST", "1", "2", "5", "10"]
    seen: list[str] = []
    marker = ""
    while True:
        chosen, marker_or_none = page_after(keys, marker, 2, version_order)
        seen += [keys[i] for i in chosen]
        if marker_or_none is None:
            break
        marker = marker_or_none
    assert seen == keys
    # A marker whose version was deleted meanwhile continues after it.
    chosen, _ = page_after(keys, "3", 10, version_order)
    assert [keys[i] for i in chosen] == ["5", "10"]


def test_fingerprint_is_content_only() -> None:
    a = api.FunctionConfiguration(function_name="f", code_sha256="x", description="d")
    a.state, a.revision_id, a.version = "Pending", "r1", "$LATEST"
    b = api.FunctionConfiguration()
    b.CopyFrom(a)
    b.state, b.revision_id, b.version, b.function_arn = "Active", "r2", "3", "arn:x"
    assert fingerprint(a) == fingerprint(b)
    b.description = "other"
    assert fingerprint(a) != fingerprint(b)


# --------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------

LIFECYCLE = "TestLambdaVersions::test_version_lifecycle"


def test_version_lifecycle(client: Any) -> None:
    name = new_function(client)
    listed = client.list_versions_by_function(FunctionName=name)
    assert [v["Version"] for v in listed["Versions"]] == ["$LATEST"]
    assert listed["Versions"][0]["FunctionArn"] == f"{ARN}:{name}:$LATEST"
    recorded_entry = recorded(LIFECYCLE, "list_versions_result")["Versions"][0]
    assert set(listed["Versions"][0]) - {"Environment"} == set(recorded_entry)

    client.update_function_configuration(FunctionName=name, Description="First version :)")
    wait_updated(client, name)
    before = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    first = client.publish_version(FunctionName=name, Description="First version description :)")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (first["Version"], first["Description"]) == ("1", "First version description :)")
    assert first["FunctionArn"] == f"{ARN}:{name}:1"
    assert (first["State"], first["LastUpdateStatus"]) == ("Active", "Successful")
    assert set(first) - {"Environment"} == set(recorded(LIFECYCLE, "first_publish_response"))
    # Publishing changes $LATEST's RevisionId, and the version has its own.
    latest = client.get_function(FunctionName=name)["Configuration"]
    assert latest["RevisionId"] not in (before, first["RevisionId"])
    got = client.get_function_configuration(FunctionName=name, Qualifier="1")
    assert got["RevisionId"] == first["RevisionId"]
    assert got["Description"] == "First version description :)"

    client.update_function_configuration(FunctionName=name, Description="Second version :))")
    wait_updated(client, name)
    assert client.get_function(FunctionName=name, Qualifier="1")["Configuration"][
        "Description"
    ] == ("First version description :)")
    second = client.publish_version(FunctionName=name)
    assert (second["Version"], second["Description"]) == ("2", "Second version :))")
    # Nothing changed since: the same version again, whatever the description.
    third = client.publish_version(FunctionName=name, Description="Third :)))")
    assert third["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (third["Version"], third["RevisionId"]) == ("2", second["RevisionId"])
    assert third["Description"] == "Second version :))"

    listed = client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    want = recorded(LIFECYCLE, "list_versions_result_after_third_publish")["Versions"]
    assert [set(v) - {"Environment"} for v in listed] == [set(v) for v in want]

    client.delete_function(FunctionName=name, Qualifier="1")
    listed = client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "2"]
    # A deleted number is never reused.
    client.update_function_configuration(FunctionName=name, Description="Fourth")
    wait_updated(client, name)
    assert client.publish_version(FunctionName=name)["Version"] == "3"

    pages = client.get_paginator("list_versions_by_function").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 1}
    )
    assert [v["Version"] for page in pages for v in page["Versions"]] == ["$LATEST", "2", "3"]


def test_publish_guards(client: Any) -> None:
    name = new_function(client)
    config = client.get_function(FunctionName=name)["Configuration"]
    r = error_of(client.publish_version, FunctionName=name, RevisionId="wrong")
    assert_recorded_error(
        r,
        "TestLambdaVersions::test_publish_with_wrong_revisionid",
        "publish_wrong_revisionid_exc",
        name,
    )
    r = error_of(client.publish_version, FunctionName=name, CodeSha256="somenonexistentsha256")
    want = recorded(
        "TestLambdaVersions::test_publish_with_wrong_sha256", "publish_wrong_sha256_exc"
    )
    assert r["Error"]["Code"] == want["Error"]["Code"]
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"]["Message"] == want["Error"]["Message"].replace(
        "<code-sha256:1>", config["CodeSha256"]
    )
    # Nothing was published by the refused calls.
    assert client.list_versions_by_function(FunctionName=name)["Versions"][-1]["Version"] == (
        "$LATEST"
    )
    published = client.publish_version(
        FunctionName=name, CodeSha256=config["CodeSha256"], RevisionId=config["RevisionId"]
    )
    assert published["Version"] == "1"
    # The recorded function had no Environment; ours has.
    test = "TestLambdaVersions::test_publish_with_wrong_sha256"
    assert_shape(published, test, "publish_result", frozenset({"Environment"}))


def test_publish_version_on_create(client: Any) -> None:
    test = "TestLambdaVersions::test_publish_version_on_create"
    name = f"ver-{uuid.uuid4().hex[:10]}"
    created = client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": CODE.format(tag="one")})},
        Environment=ENV,
        Publish=True,
    )
    # AWS answers $LATEST being created under the unqualified ARN, numbered
    # with the new version: a client reusing that ARN acts on the function.
    assert (created["FunctionArn"], created["Version"]) == (f"{ARN}:{name}", "1")
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert created["StateReason"] == "The function is being created."
    # The recorded function had no Environment; ours has.
    assert_shape(created, test, "create_response", frozenset({"Environment"}))
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
    )
    function = client.get_function(FunctionName=name)["Configuration"]
    assert (function["FunctionArn"], function["Version"]) == (f"{ARN}:{name}", "$LATEST")
    # Every step moved on from the answer's RevisionId (recorded uuid:1, 2, 3).
    assert function["RevisionId"] != created["RevisionId"]
    version = client.get_function(FunctionName=name, Qualifier="1")
    assert version["Configuration"]["State"] == "Active"
    assert version["Configuration"]["FunctionArn"] == f"{ARN}:{name}:1"
    assert version["Configuration"]["RevisionId"] not in (
        created["RevisionId"],
        function["RevisionId"],
    )
    latest = client.get_function(FunctionName=name, Qualifier="$LATEST")
    assert latest["Configuration"]["FunctionArn"] == f"{ARN}:{name}:$LATEST"
    listed_first = client.list_versions_by_function(FunctionName=name)
    assert [v["FunctionArn"] for v in listed_first["Versions"]] == [
        f"{ARN}:{name}:$LATEST",
        f"{ARN}:{name}:1",
    ]
    aws_versions = recorded(test, "list_versions_result")["Versions"]
    assert len(listed_first["Versions"]) == len(aws_versions)
    for ours, aws in zip(listed_first["Versions"], aws_versions, strict=True):
        assert _members({k: v for k, v in ours.items() if k != "Environment"}) == _members(aws)
    again = client.publish_version(FunctionName=name, Description="Repeated")
    assert (again["Version"], again["RevisionId"]) == (
        "1",
        version["Configuration"]["RevisionId"],
    )
    listed = client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1"]


def test_missing_versions(client: Any) -> None:
    name = new_function(client)
    for op in ("get_function", "get_function_configuration"):
        r = error_of(getattr(client, op), FunctionName=name, Qualifier="1221")
        assert_recorded_error(
            r,
            f"TestLambdaFunction::test_ops_on_nonexisting_version[{op}]",
            "version_not_found_exception",
            name,
        )
    r = error_of(client.delete_function, FunctionName=name, Qualifier="1221")
    assert_recorded_error(
        r,
        "TestLambdaFunction::test_delete_on_nonexisting_version",
        "delete_function_response_non_existent_with_qualifier",
        name,
    )
    r = error_of(client.publish_version, FunctionName=f"{name}-nope")
    assert r["Error"]["Message"] == f"Function not found: {ARN}:{name}-nope"
    r = error_of(client.list_versions_by_function, FunctionName=f"{name}-nope")
    assert r["Error"]["Code"] == "ResourceNotFoundException"


# --------------------------------------------------------------------------
# Aliases
# --------------------------------------------------------------------------

ALIASES = "TestLambdaAlias::test_alias_lifecycle"
ROUTING = "TestLambdaAlias::test_notfound_and_invalid_routingconfigs"


def two_versions(client: Any) -> str:
    name = new_function(client)
    client.publish_version(FunctionName=name)
    client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"testenv": "prod"}}
    )
    wait_updated(client, name)
    client.publish_version(FunctionName=name)
    return name


def test_alias_lifecycle(client: Any) -> None:
    name = two_versions(client)
    created = client.create_alias(
        FunctionName=name,
        Name="aliasname1_1",
        FunctionVersion="1",
        Description="custom-alias",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    assert_shape(created, ALIASES, "create_alias_1_1")
    assert created["AliasArn"] == f"{ARN}:{name}:aliasname1_1"
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.2}}
    got = client.get_alias(FunctionName=name, Name="aliasname1_1")
    assert_shape(got, ALIASES, "get_alias_1_1")
    assert got["RevisionId"] == created["RevisionId"]

    # GetFunction through the alias: the version's configuration under the alias ARN.
    version1 = client.get_function_configuration(FunctionName=name, Qualifier="1")
    for form in (
        {"FunctionName": name, "Qualifier": "aliasname1_1"},
        {"FunctionName": created["AliasArn"]},
        {"FunctionName": f"{name}:aliasname1_1"},
        {"FunctionName": f"{ACCOUNT}:function:{name}:aliasname1_1"},
    ):
        through = client.get_function(**form)
        assert_shape(through, ALIASES, "get_function_alias_1_1")
        config = through["Configuration"]
        assert config["FunctionArn"] == created["AliasArn"]
        assert (config["Version"], config["RevisionId"]) == ("1", version1["RevisionId"])
    for form in (
        {"FunctionName": name, "Qualifier": "aliasdoesnotexist"},
        {"FunctionName": f"{ARN}:{name}:aliasdoesnotexist"},
    ):
        r = error_of(client.get_function, **form)
        assert_recorded_error(r, ALIASES, "get_function_alias_notfound_exc", name)

    client.create_alias(
        FunctionName=name, Name="aliasname1_2", FunctionVersion="1", Description="custom-alias"
    )
    plain = client.create_alias(FunctionName=name, Name="aliasname1_3", FunctionVersion="1")
    assert_shape(plain, ALIASES, "create_alias_1_3")
    assert plain["Description"] == ""
    client.create_alias(FunctionName=name, Name="aliasname2", FunctionVersion="2")

    pages = client.get_paginator("list_aliases").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 1}
    )
    every = [a for page in pages for a in page["Aliases"]]
    assert [a["Name"] for a in every] == [
        "aliasname1_1",
        "aliasname1_2",
        "aliasname1_3",
        "aliasname2",
    ]

    updated = client.update_alias(
        FunctionName=name, Name="aliasname1_1", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert_shape(updated, ALIASES, "update_alias_1_1")
    assert updated["RevisionId"] != created["RevisionId"]
    assert updated["Description"] == "custom-alias"
    # An update that changes nothing is a new revision all the same.
    before = client.get_alias(FunctionName=name, Name="aliasname1_2")["RevisionId"]
    after = client.update_alias(FunctionName=name, Name="aliasname1_2")
    assert after["RevisionId"] != before

    for_v1 = client.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in for_v1] == ["aliasname1_1", "aliasname1_2", "aliasname1_3"]

    # A version an alias uses cannot be deleted.
    r = error_of(client.delete_function, FunctionName=name, Qualifier="2")
    assert r["Error"]["Code"] == "ResourceConflictException"

    deleted = client.delete_alias(FunctionName=name, Name="aliasname1_1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    left = client.list_aliases(FunctionName=name)["Aliases"]
    assert [a["Name"] for a in left] == ["aliasname1_2", "aliasname1_3", "aliasname2"]
    assert_shape(
        client.list_aliases(FunctionName=name), ALIASES, "list_aliases_for_fnname_afterdelete"
    )


def test_alias_errors(client: Any) -> None:
    name = two_versions(client)
    cases = {
        "routing_config_exc_toomany": {
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.8, "2": 0.2}},
        },
        "routing_config_exc_sameversion": {
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}},
        },
        "target_version_doesnotexist": {
            "FunctionVersion": "10",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
        },
        "routing_config_exc_version_doesnotexist": {
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"10": 0.5}},
        },
        "target_version_exc_version_latest": {
            "FunctionVersion": "$LATEST",
            "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}},
        },
        "routing_config_exc_toohigh": {
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 2}},
        },
    }
    for step, params in cases.items():
        r = error_of(client.create_alias, FunctionName=name, Name="custom", **params)
        assert_recorded_error(r, ROUTING, step, name)
    r = error_of(
        client.create_alias,
        FunctionName=f"{name}-unknown",
        Name="custom",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert_recorded_error(r, ROUTING, "routing_config_exc_fn_doesnotexist", name)

    latest = client.create_alias(FunctionName=name, Name="custom-latest", FunctionVersion="$LATEST")
    assert_shape(latest, ROUTING, "create-alias-latest")
    empty = client.create_alias(
        FunctionName=name,
        Name="custom-empty-routingconfig",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    assert "RoutingConfig" not in empty
    params = {
        "FunctionName": name,
        "Name": "custom",
        "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
    }
    assert_shape(client.create_alias(**params), ROUTING, "create_alias_response")
    assert_recorded_error(
        error_of(client.create_alias, **params), ROUTING, "routing_config_exc_already_exist", name
    )
    r = error_of(client.get_alias, FunctionName=name, Name="non-existent")
    assert_recorded_error(r, ROUTING, "alias_does_not_exist_esc", name)
    r = error_of(client.update_alias, FunctionName=name, Name="non-existent")
    assert_recorded_error(
        r, "TestLambdaAlias::test_non_existent_alias_update", "update_alias_response", name
    )
    gone = client.delete_alias(FunctionName=name, Name="non-existent")
    assert gone["ResponseMetadata"]["HTTPStatusCode"] == 204

    dated = client.create_alias(FunctionName=name, Name="2024-01-02", FunctionVersion="1")
    assert dated["AliasArn"] == f"{ARN}:{name}:2024-01-02"
    r = error_of(client.create_alias, FunctionName=name, Name="2024", FunctionVersion="1")
    assert_recorded_error(
        r, "TestLambdaAlias::test_alias_naming", "create_alias_number_exception", name
    )


def test_revisions_of_versions_and_aliases(client: Any) -> None:
    test = "TestLambdaRevisions::test_function_revisions_version_and_alias"
    name = new_function(client)
    rev = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    r = error_of(client.publish_version, FunctionName=name, RevisionId="wrong")
    assert_recorded_error(r, test, "publish_version_revision_exception", name)
    version = client.publish_version(FunctionName=name, RevisionId=rev)
    latest = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert latest != rev
    alias = client.create_alias(FunctionName=name, Name="revision_alias", FunctionVersion="1")
    # Creating an alias changes neither $LATEST's revision nor the version's.
    assert client.get_function(FunctionName=name)["Configuration"]["RevisionId"] == latest
    assert (
        client.get_function(FunctionName=name, Qualifier="1")["Configuration"]["RevisionId"]
        == (version["RevisionId"])
    )
    r = error_of(client.update_alias, FunctionName=name, Name="revision_alias", RevisionId="wrong")
    assert_recorded_error(r, test, "update_alias_revision_exception", name)
    updated = client.update_alias(
        FunctionName=name,
        Name="revision_alias",
        Description="something changed",
        RevisionId=alias["RevisionId"],
    )
    assert_shape(updated, test, "update_alias_response_rev_a2")
    assert updated["RevisionId"] != alias["RevisionId"]


def test_qualifier_mismatch(client: Any) -> None:
    name = new_function(client)
    for op in ("get_function", "get_function_configuration", "delete_function"):
        test = f"TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[{op}]"
        r = error_of(getattr(client, op), FunctionName=f"{ARN}:{name}:1", Qualifier="$LATEST")
        assert_recorded_error(r, test, "not_match_exception", name)
    # The function is untouched.
    assert client.get_function(FunctionName=name)["Configuration"]["State"] == "Active"


# --------------------------------------------------------------------------
# Invoking versions and aliases runs their code
# --------------------------------------------------------------------------


def invoke(client: Any, name: str, **extra: Any) -> tuple[dict[str, Any], str]:
    response = client.invoke(FunctionName=name, Payload=b"{}", **extra)
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read()), response["ExecutedVersion"]


def test_invoke_versions_and_aliases(client: Any) -> None:
    name = new_function(client, tag="one")
    client.publish_version(FunctionName=name)
    client.update_function_code(
        FunctionName=name, ZipFile=zip_bytes({"app.py": CODE.format(tag="two")})
    )
    wait_updated(client, name)
    assert client.publish_version(FunctionName=name)["Version"] == "2"
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    # All of the alias's traffic to version 1: the routing decides the version.
    client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"1": 1.0}},
    )
    expected = {
        (("Qualifier", "1"),): ({"code": "one", "version": "1"}, "1"),
        (("Qualifier", "2"),): ({"code": "two", "version": "2"}, "2"),
        (("Qualifier", "live"),): ({"code": "two", "version": "2"}, "2"),
        (("Qualifier", "canary"),): ({"code": "one", "version": "1"}, "1"),
        (): ({"code": "two", "version": "$LATEST"}, "$LATEST"),
    }
    for extra, answer in expected.items():
        assert invoke(client, name, **dict(extra)) == answer, extra
    assert invoke(client, f"{name}:1") == ({"code": "one", "version": "1"}, "1")
    assert invoke(client, f"{ARN}:{name}:live") == ({"code": "two", "version": "2"}, "2")
    r = error_of(client.invoke, FunctionName=name, Qualifier="nope", Payload=b"{}")
    assert r["Error"]["Message"] == f"Function not found: {ARN}:{name}:nope"


def test_revisions_of_permissions(client: Any) -> None:
    test = "TestLambdaRevisions::test_function_revisions_permissions"
    name = new_function(client)
    rev = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    permission = {
        "FunctionName": name,
        "StatementId": "s3",
        "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com",
    }
    r = error_of(client.add_permission, RevisionId="wrong", **permission)
    assert_recorded_error(r, test, "add_permission_revision_exception", name)
    client.add_permission(RevisionId=rev, **permission)
    policy_rev = client.get_policy(FunctionName=name)["RevisionId"]
    assert policy_rev != rev
    # The function's revision is the policy's.
    assert client.get_function(FunctionName=name)["Configuration"]["RevisionId"] == policy_rev
