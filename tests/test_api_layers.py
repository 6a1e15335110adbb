"""Layers: publish, get, list (with paginators), delete, and layer version
policies, against AWS's recorded answers (TestLambdaLayer)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from aws_recorded import ACCOUNT, assert_matches, body, status, step
from botocore.exceptions import ClientError
from cluster import zip_bytes
from lambdafleet.control_plane.api import layers

from lambdafleet.api.v1 import lambda_pb2 as api

LAYER_ZIP = zip_bytes({"python/helper.py": "VALUE = 42\n"})
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer"


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


def new_name() -> str:
    return f"layer-{uuid.uuid4().hex[:10]}"


def publish(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "CompatibleRuntimes": ["python3.12"],
        "CompatibleArchitectures": ["x86_64"],
        **extra,
    }
    response: dict[str, Any] = client.publish_layer_version(
        LayerName=name, Content={"ZipFile": LAYER_ZIP}, **args
    )
    return response


def same_shape(response: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Status, key sets, and every value that is not normalised by the
    recorder (dates, sizes, hashes, locations)."""
    assert status(response) == status(recorded)
    got, want = body(response), body(recorded)
    assert set(got) == set(want)
    for key, value in want.items():
        if key == "Content":
            assert set(got[key]) == set(value)
        elif key != "CreatedDate" and not (isinstance(value, str) and value.startswith("<")):
            assert got[key] == value, key


# --- pure decisions ---------------------------------------------------------------


def test_filters_and_names() -> None:
    version = api.GetLayerVersionResponse(
        compatible_runtimes=["python3.12"], compatible_architectures=["arm64"]
    )
    assert layers.matches(version, "", "")
    assert layers.matches(version, "python3.12", "arm64")
    assert not layers.matches(version, "nodejs20.x", "")
    assert not layers.matches(version, "", "x86_64")
    assert layers.layer_name(f"{ARN}:my-layer") == "my-layer"
    assert layers.layer_name("my-layer") == "my-layer"
    assert layers.unmarker(layers.marker("x:1")) == "x:1"


def test_layer_statement() -> None:
    arn = f"{ARN}:l:1"
    assert layers.layer_statement("s1", "*", arn, None, "us-east-1") == {
        "Sid": "s1",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetLayerVersion",
        "Resource": arn,
    }
    shared = layers.layer_statement("s2", "123456789012", arn, "o-1234567890", "us-east-1")
    assert shared["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert shared["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-1234567890"}}


# --- through the API ------------------------------------------------------------


def test_layer_lifecycle(client: Any) -> None:
    test = "TestLambdaLayer::test_layer_lifecycle"
    name = new_name()
    extra = {"Description": "<description>", "LicenseInfo": "<license-info>"}
    names = {"resource:3": name}
    first = publish(client, name, **extra)
    same_shape(first, step(test, "publish_result", **names))
    assert first["Content"]["CodeSize"] == len(LAYER_ZIP)
    # Content.Location serves the package itself.
    with urllib.request.urlopen(first["Content"]["Location"], timeout=10) as package:
        assert package.read() == LAYER_ZIP
    same_shape(publish(client, name, **extra), step(test, "publish_result_2", **names))

    got = client.get_layer_version(LayerName=name, VersionNumber=1)
    same_shape(got, step(test, "get_layer_ver_result", **names))
    by_arn = client.get_layer_version_by_arn(Arn=f"{ARN}:{name}:1")
    same_shape(by_arn, step(test, "get_layer_by_arn_version", **names))
    assert body(by_arn) == body(got)

    listed = client.list_layer_versions(LayerName=name)
    recorded = step(test, "list_layer_versions_predelete", **names)
    assert [v["Version"] for v in listed["LayerVersions"]] == [2, 1]
    for item, want in zip(listed["LayerVersions"], recorded["LayerVersions"], strict=True):
        assert set(item) == set(want)
        assert item["LayerVersionArn"] == want["LayerVersionArn"]

    assert status(client.delete_layer_version(LayerName=name, VersionNumber=1)) == 204
    assert status(client.delete_layer_version(LayerName=name, VersionNumber=2)) == 204
    assert_matches(
        client.list_layer_versions(LayerName=name), step(test, "list_layer_versions_postdelete")
    )
    # Numbers are never reused.
    same_shape(publish(client, name, **extra), step(test, "publish_result_3", **names))


def test_layer_exceptions(client: Any) -> None:
    test = "TestLambdaLayer::test_layer_exceptions"
    name = new_name()
    names = {"resource:1": name}
    same_shape(publish(client, name), step(test, "publish_result", **names))

    def expect(recorded: str, call: Any, **kwargs: Any) -> None:
        assert_matches(error_of(call, **kwargs), step(test, recorded, **names))

    expect(
        "list_layers_exc_compatibleruntime_invalid",
        client.list_layers,
        CompatibleRuntime="runtimedoesnotexist",
    )
    expect(
        "list_layers_exc_compatiblearchitecture_invalid",
        client.list_layers,
        CompatibleArchitecture="archdoesnotexist",
    )
    assert_matches(
        client.list_layer_versions(LayerName=f"{name}-nope"), step(test, "list_nonexistent_layer")
    )
    get = client.get_layer_version
    expect(
        "get_layer_version_exc_layer_doesnotexist", get, LayerName=f"{name}-nope", VersionNumber=1
    )
    expect(
        "get_layer_version_exc_layer_version_doesnotexist_negative",
        get,
        LayerName=name,
        VersionNumber=-1,
    )
    expect(
        "get_layer_version_exc_layer_version_doesnotexist_zero",
        get,
        LayerName=name,
        VersionNumber=0,
    )
    expect(
        "get_layer_version_exc_layer_version_doesnotexist_2", get, LayerName=name, VersionNumber=2
    )
    expect(
        "get_layer_version_by_arn_exc_invalidarn",
        client.get_layer_version_by_arn,
        Arn=f"{ARN}:{name}",
    )
    expect(
        "get_layer_version_by_arn_exc_nonexistentversion",
        client.get_layer_version_by_arn,
        Arn=f"{ARN}:{name}:2",
    )
    delete = client.delete_layer_version
    assert_matches(
        delete(LayerName=f"{name}-nope", VersionNumber=1), step(test, "delete_nonexistent_response")
    )
    assert_matches(
        delete(LayerName=name, VersionNumber=2), step(test, "delete_nonexistent_version_response")
    )
    assert_matches(delete(LayerName=name, VersionNumber=1), step(test, "delete_layer_response"))
    assert_matches(
        delete(LayerName=name, VersionNumber=1), step(test, "delete_layer_again_response")
    )
    expect(
        "delete_layer_version_exc_layerversion_invalid_version",
        delete,
        LayerName=name,
        VersionNumber=0,
    )

    empty = client.publish_layer_version(
        LayerName=f"{name}-empty",
        Content={"ZipFile": LAYER_ZIP},
        CompatibleRuntimes=[],
        CompatibleArchitectures=[],
    )
    same_shape(empty, step(test, "publish_empty_result", **{"resource:2": f"{name}-empty"}))
    expect(
        "publish_layer_version_exc_invalid_runtime_arch",
        client.publish_layer_version,
        LayerName=name,
        Content={"ZipFile": LAYER_ZIP},
        CompatibleRuntimes=["invalidruntime"],
        CompatibleArchitectures=["invalidarch"],
    )


def test_unlisted_compatibilities_are_left_out(client: Any) -> None:
    """Without CompatibleRuntimes/Architectures AWS shows neither (test_layer_s3_content)."""
    name = new_name()
    published = client.publish_layer_version(LayerName=name, Content={"ZipFile": LAYER_ZIP})
    same_shape(
        published,
        step(
            "TestLambdaLayer::test_layer_s3_content", "publish_layer_result", **{"resource:1": name}
        ),
    )


def test_a_layer_that_is_not_a_zip_is_refused_at_publish(client: Any) -> None:
    """Nothing is recorded for layers; AWS answers a function's package that
    will not unzip so (test_create_lambda_exceptions), and its layers alike."""
    name = new_name()
    r = error_of(client.publish_layer_version, LayerName=name, Content={"ZipFile": b"not a zip"})
    assert status(r) == 400
    assert r["Error"]["Code"] == "InvalidParameterValueException"
    assert r["Error"]["Message"] == (
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    )
    assert client.list_layer_versions(LayerName=name)["LayerVersions"] == []


# AWS published layers for runtimes it no longer accepts for functions
# (python3.7, java8, go1.x, provided...), yet printed only the 25 supported
# ones when one was unknown (test_layer_exceptions); gateway/validation.py
# accepts the model's whole enum for PublishLayerVersion and prints the 25.
@pytest.mark.parametrize("case", ["runtimes0", "runtimes1", "runtimes2"])
def test_layer_compatibilities(client: Any, case: str) -> None:
    recorded = step(f"TestLambdaLayer::test_layer_compatibilities[{case}]", "publish_result")
    name = new_name()
    published = publish(
        client,
        name,
        CompatibleRuntimes=recorded["CompatibleRuntimes"],
        CompatibleArchitectures=recorded["CompatibleArchitectures"],
    )
    same_shape(
        published,
        step(
            f"TestLambdaLayer::test_layer_compatibilities[{case}]",
            "publish_result",
            **{"resource:1": name},
        ),
    )


def test_list_filters_and_paginators(client: Any) -> None:
    prefix = new_name()
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        publish(client, name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["arm64"])
        publish(client, name, CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["x86_64"])
    pages = list(client.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) > 1
    found = {layer["LayerName"]: layer for page in pages for layer in page["Layers"]}
    for name in names:
        assert found[name]["LayerArn"] == f"{ARN}:{name}"
        assert found[name]["LatestMatchingVersion"]["Version"] == 2
    python = {
        layer["LayerName"]: layer
        for page in client.get_paginator("list_layers").paginate(CompatibleRuntime="python3.12")
        for layer in page["Layers"]
    }
    assert all(python[name]["LatestMatchingVersion"]["Version"] == 1 for name in names)
    arm = {
        layer["LayerName"]: layer
        for page in client.get_paginator("list_layers").paginate(CompatibleArchitecture="arm64")
        for layer in page["Layers"]
    }
    # Other tests' layers share the cluster: every listed one must match the
    # filter, and this test's layers list their arm64 version.
    assert all(
        "arm64" in layer["LatestMatchingVersion"]["CompatibleArchitectures"]
        for layer in arm.values()
    )
    for name in names:
        assert arm[name]["LatestMatchingVersion"]["Version"] == 1
        assert arm[name]["LatestMatchingVersion"]["CompatibleArchitectures"] == ["arm64"]

    name = names[0]
    for _ in range(3):
        publish(client, name)
    versions = [
        v["Version"]
        for page in client.get_paginator("list_layer_versions").paginate(
            LayerName=name, PaginationConfig={"PageSize": 2}
        )
        for v in page["LayerVersions"]
    ]
    assert versions == [5, 4, 3, 2, 1]
    python_versions = client.list_layer_versions(LayerName=name, CompatibleRuntime="python3.12")[
        "LayerVersions"
    ]
    assert [v["Version"] for v in python_versions] == [5, 4, 3, 1]
    x86 = client.list_layer_versions(LayerName=name, CompatibleArchitecture="x86_64")[
        "LayerVersions"
    ]
    assert [v["Version"] for v in x86] == [5, 4, 3, 2]


def test_layer_policy_lifecycle(client: Any) -> None:
    test = "TestLambdaLayer::test_layer_policy_lifecycle"
    name = new_name()
    names = {"resource:1": name}
    publish(client, name)
    add = client.add_layer_version_permission
    s1 = add(
        LayerName=name,
        VersionNumber=1,
        StatementId="s1",
        Action="lambda:GetLayerVersion",
        Principal="*",
    )
    recorded = step(test, "add_policy_s1", **names)
    assert status(s1) == 201
    assert json.loads(s1["Statement"]) == recorded["Statement"]
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert json.loads(policy["Policy"]) == step(test, "get_layer_version_policy", **names)["Policy"]
    assert policy["RevisionId"] == s1["RevisionId"]
    s2 = add(
        LayerName=name,
        VersionNumber=1,
        StatementId="s2",
        Action="lambda:GetLayerVersion",
        Principal="*",
        RevisionId=s1["RevisionId"],
    )
    assert s2["RevisionId"] != s1["RevisionId"]
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert (
        json.loads(policy["Policy"])
        == step(test, "get_layer_version_policy_postadd2", **names)["Policy"]
    )
    removed = client.remove_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="s2", RevisionId=s2["RevisionId"]
    )
    assert_matches(removed, step(test, "remove_s2"))
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert (
        json.loads(policy["Policy"])
        == step(test, "get_layer_version_policy_postdeletes2", **names)["Policy"]
    )
    assert policy["RevisionId"] not in (s1["RevisionId"], s2["RevisionId"])


def test_layer_policy_exceptions(client: Any) -> None:
    test = "TestLambdaLayer::test_layer_policy_exceptions"
    name = new_name()
    names = {"resource:1": name}
    publish(client, name)

    def expect(recorded: str, call: Any, **kwargs: Any) -> None:
        assert_matches(error_of(call, **kwargs), step(test, recorded, **names))

    grant = {"StatementId": "s1", "Action": "lambda:GetLayerVersion", "Principal": "*"}
    add, get = client.add_layer_version_permission, client.get_layer_version_policy
    remove = client.remove_layer_version_permission
    expect("layer_permission_nopolicy_get", get, LayerName=name, VersionNumber=1)
    added = add(LayerName=name, VersionNumber=1, **grant)
    assert (
        json.loads(added["Statement"])
        == step(test, "add_layer_permission_result", **names)["Statement"]
    )
    expect(
        "layer_permission_action_invalid",
        add,
        LayerName=name,
        VersionNumber=1,
        **{**grant, "Action": "*"},
    )
    expect("layer_permission_duplicate_statement", add, LayerName=name, VersionNumber=1, **grant)
    expect(
        "layer_permission_wrong_revision",
        add,
        LayerName=name,
        VersionNumber=1,
        **{**grant, "StatementId": "s2", "RevisionId": "wrong"},
    )
    missing = f"{name}-doesnotexist"
    expect(
        "layer_permission_layername_doesnotexist_add",
        add,
        LayerName=missing,
        VersionNumber=1,
        **grant,
    )
    expect("layer_permission_layername_doesnotexist_get", get, LayerName=missing, VersionNumber=1)
    expect(
        "layer_permission_layername_doesnotexist_remove",
        remove,
        LayerName=missing,
        VersionNumber=1,
        StatementId="s1",
    )
    expect(
        "layer_permission_layerversion_doesnotexist_add",
        add,
        LayerName=name,
        VersionNumber=2,
        **grant,
    )
    expect("layer_permission_layerversion_doesnotexist_get", get, LayerName=name, VersionNumber=2)
    expect(
        "layer_permission_layerversion_doesnotexist_remove",
        remove,
        LayerName=name,
        VersionNumber=2,
        StatementId="s1",
    )
    expect(
        "layer_permission_statementid_doesnotexist_remove",
        remove,
        LayerName=name,
        VersionNumber=1,
        StatementId="doesnotexist",
    )
    expect(
        "layer_permission_wrong_revision_remove",
        remove,
        LayerName=name,
        VersionNumber=1,
        StatementId="s1",
        RevisionId="wrong",
    )
