"""Function URL configs through boto3, against AWS's recorded answers
(TestLambdaUrl and the URL entries of TestLambdaFunction)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from lambdafleet.control_plane.api.urls import function_url, url_id
from test_api_concurrency import (
    ACCOUNT,
    REGION,
    assert_error,
    assert_shape,
    client,  # noqa: F401  (the module's fixture)
    error_of,
    new_function,
    recorded,
)

URL = "TestLambdaUrl::"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
URL_PATTERN = re.compile(r"https://[a-z0-9]{32}\.lambda-url\.us-east-1\.on\.aws/")


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_url_ids() -> None:
    ids = {url_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[a-z0-9]{32}", i) for i in ids)
    assert function_url("eu-west-1", "a" * 32) == f"https://{'a' * 32}.lambda-url.eu-west-1.on.aws/"


def test_url_config_lifecycle(client: Any) -> None:  # noqa: F811
    test = URL + "test_url_config_lifecycle"
    name = new_function(client)
    names = {"<resource:1>": name}
    created = client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert_shape(created, recorded(test, "url_creation", **names))
    assert URL_PATTERN.fullmatch(created["FunctionUrl"])
    assert created["FunctionArn"] == f"{ARN}:{name}"
    assert_error(
        error_of(client.create_function_url_config, FunctionName=name, AuthType="NONE"),
        recorded(test, "failed_duplication", **names),
    )
    got = client.get_function_url_config(FunctionName=name)
    assert_shape(got, recorded(test, "get_url_config", **names))
    assert got["InvokeMode"] == "BUFFERED" and got["AuthType"] == "NONE"
    assert got["FunctionUrl"] == created["FunctionUrl"]
    assert got["CreationTime"] == created["CreationTime"]
    updated = client.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert_shape(updated, recorded(test, "updated_url_config", **names))
    assert updated["AuthType"] == "AWS_IAM"
    assert updated["FunctionUrl"] == created["FunctionUrl"]
    assert (
        client.delete_function_url_config(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    assert_error(
        error_of(client.get_function_url_config, FunctionName=name),
        recorded(test, "failed_getter", **names),
    )


def test_cors_and_invoke_mode(client: Any) -> None:  # noqa: F811
    name = new_function(client)
    cors = {
        "AllowCredentials": True,
        "AllowHeaders": ["x-custom"],
        "AllowMethods": ["GET", "POST"],
        "AllowOrigins": ["https://example.com"],
        "ExposeHeaders": ["x-out"],
        "MaxAge": 60,
    }
    created = client.create_function_url_config(
        FunctionName=name, AuthType="AWS_IAM", Cors=cors, InvokeMode="RESPONSE_STREAM"
    )
    assert created["Cors"] == cors and created["InvokeMode"] == "RESPONSE_STREAM"
    updated = client.update_function_url_config(FunctionName=name, Cors={"MaxAge": 10})
    assert updated["Cors"] == {"MaxAge": 10}
    assert updated["AuthType"] == "AWS_IAM"
    got = client.get_function_url_config(FunctionName=name)
    assert got["Cors"] == {"MaxAge": 10} and got["InvokeMode"] == "RESPONSE_STREAM"
    assert got["LastModifiedTime"] >= got["CreationTime"]


def test_url_config_list_paging(client: Any) -> None:  # noqa: F811
    test = URL + "test_url_config_list_paging"
    name = new_function(client, publish=True)
    names = {"<function-name:1>": name}
    client.create_alias(FunctionName=name, Name="urlalias", FunctionVersion="1")
    assert_error(
        error_of(client.list_function_url_configs, FunctionName="doesnotexist"),
        recorded(test, "list_function_notfound", **names),
    )
    empty = client.list_function_url_configs(FunctionName=name)
    assert_shape(empty, recorded(test, "list_all_empty", **names))
    assert empty["FunctionUrlConfigs"] == []
    fn_config = client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert_shape(fn_config, recorded(test, "url_config_fn", **names))
    alias_config = client.create_function_url_config(
        FunctionName=name, Qualifier="urlalias", AuthType="NONE"
    )
    assert_shape(alias_config, recorded(test, "url_config_alias", **names))
    assert alias_config["FunctionArn"] == f"{ARN}:{name}:urlalias"
    assert alias_config["FunctionUrl"] != fn_config["FunctionUrl"]
    listed = client.list_function_url_configs(FunctionName=name)
    expected = recorded(test, "list_all", **names)
    assert_shape(listed, expected)
    assert [set(c) for c in listed["FunctionUrlConfigs"]] == [
        set(c) for c in expected["FunctionUrlConfigs"]
    ]
    assert [c["FunctionArn"] for c in listed["FunctionUrlConfigs"]] == [
        c["FunctionArn"] for c in expected["FunctionUrlConfigs"]
    ]
    # A page at a time, every page walked.
    first = client.list_function_url_configs(FunctionName=name, MaxItems=1)
    assert len(first["FunctionUrlConfigs"]) == 1 and "NextMarker" in first
    pages = list(
        client.get_paginator("list_function_url_configs").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 1}
        )
    )
    assert len(pages) == 2
    assert [c["FunctionArn"] for p in pages for c in p["FunctionUrlConfigs"]] == [
        f"{ARN}:{name}",
        f"{ARN}:{name}:urlalias",
    ]


def test_url_config_deletion_without_qualifier(client: Any) -> None:  # noqa: F811
    test = URL + "test_url_config_deletion_without_qualifier"
    name = new_function(client, publish=True)
    names = {"<resource:1>": name}
    client.create_alias(FunctionName=name, Name="test-alias", FunctionVersion="1")
    steps = [
        (
            "url_creation",
            lambda: client.create_function_url_config(FunctionName=name, AuthType="NONE"),
        ),
        (
            "url_with_alias_creation",
            lambda: client.create_function_url_config(
                FunctionName=name, Qualifier="test-alias", AuthType="NONE"
            ),
        ),
        ("get_url_config", lambda: client.get_function_url_config(FunctionName=name)),
        (
            "get_url_config_with_alias",
            lambda: client.get_function_url_config(FunctionName=name, Qualifier="test-alias"),
        ),
        (
            "delete_function_url_config",
            lambda: client.delete_function_url_config(FunctionName=name),
        ),
    ]
    for step, call in steps:
        expected = recorded(test, step, **names)
        answer = call()
        assert_shape(answer, expected)
        if "FunctionArn" in expected:
            assert answer["FunctionArn"] == expected["FunctionArn"]
    assert_error(
        error_of(client.get_function_url_config, FunctionName=name),
        recorded(test, "get_url_config_after_deletion", **names),
    )
    kept = client.get_function_url_config(FunctionName=name, Qualifier="test-alias")
    assert_shape(kept, recorded(test, "get_url_config_with_alias_after_deletion", **names))


@pytest.mark.parametrize("operation", ["create", "get", "delete", "update"])
def test_url_config_exceptions(client: Any, operation: str) -> None:  # noqa: F811
    test = URL + "test_url_config_exceptions"
    name = new_function(client, publish=True)
    names = {"<function-name:1>": name}
    client.create_alias(FunctionName=name, Name="urlalias", FunctionVersion="1")
    call = getattr(client, f"{operation}_function_url_config")
    extra = {"AuthType": "NONE"} if operation in ("create", "update") else {}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("name_doesnotexist", {"FunctionName": "doesnotexist"}),
        ("arn_doesnotexist", {"FunctionName": f"{ARN}:doesnotexist"}),
        ("name_doesnotexist_qualifier", {"FunctionName": "doesnotexist", "Qualifier": "1"}),
        ("qualifier_version", {"FunctionName": name, "Qualifier": "1"}),
        ("qualifier_version_doesnotexist", {"FunctionName": name, "Qualifier": "2"}),
        (
            "qualifier_alias_doesnotexist",
            {"FunctionName": name, "Qualifier": "urlaliasdoesnotexist"},
        ),
        ("qualifier_latest", {"FunctionName": name, "Qualifier": "$LATEST"}),
    ]
    if operation != "delete":  # AWS failed internally on this one (recorded)
        cases.append(
            (
                "qualifier_alias_doesnotmatch_arn",
                {"FunctionName": f"{ARN}:{name}:urlalias", "Qualifier": "urlaliasdoesnotmatch"},
            )
        )
    if operation != "create":
        cases.append(("config_doesnotexist", {"FunctionName": name}))
    for case, params in cases:
        expected = recorded(test, f"{operation}_function_url_config_{case}", **names)
        assert_error(error_of(call, **params, **extra), expected)


@pytest.mark.parametrize(
    ("test", "make"),
    [
        (
            "TestLambdaFunction::test_ops_on_nonexisting_fn[get_function_url_config]",
            lambda name: {"FunctionName": f"i-dont-exist-{name}"},
        ),
        (
            "TestLambdaFunction::test_get_function_wrong_region[get_function_url_config]",
            lambda name: {"FunctionName": f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:{name}"},
        ),
    ],
)
def test_get_url_config_missing_or_wrong_region(client: Any, test: str, make: Any) -> None:  # noqa: F811
    name = new_function(client) if "wrong_region" in test else uuid.uuid4().hex[:6]
    response = error_of(client.get_function_url_config, **make(name))
    step = "wrong_region_exception" if "wrong_region" in test else "not_found_exception"
    assert_error(response, recorded(test, step, **{"<wrong-region>": "eu-central-1"}))
