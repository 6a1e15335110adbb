"""Event invoke configs through boto3, against AWS's recorded answers
(TestLambdaEventInvokeConfig and the entries of TestLambdaFunction)."""

from __future__ import annotations

from typing import Any

import pytest
from lambdafleet.control_plane.api.event_invoke import describe, has_settings, lambda_destination
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

from lambdafleet.api.v1 import lambda_pb2 as api

TEST = "TestLambdaEventInvokeConfig::"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"


def test_decisions() -> None:
    assert not has_settings({"FunctionName", "Qualifier"})
    assert has_settings({"FunctionName", "DestinationConfig"})
    config = api.DestinationConfig()
    config.on_success.destination = "arn:aws:iam:us-east-1:1:function:x"
    assert describe(config) == (
        "DestinationConfig(onSuccess=OnSuccess(destination=arn:aws:iam:us-east-1:1:function:x),"
        " onFailure=null)"
    )
    assert lambda_destination(f"{ARN}:fn:1") == (REGION, ACCOUNT, "fn")
    assert lambda_destination(f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue") is None
    with pytest.raises(ValueError):
        lambda_destination(f"arn:aws:iam::{ACCOUNT}:role/x")


@pytest.fixture
def published(client: Any) -> tuple[str, str]:  # noqa: F811
    name = new_function(client, publish=True)
    client.create_alias(FunctionName=name, Name="eventinvokealias", FunctionVersion="1")
    return name, new_function(client)


def test_eventinvokeconfig_exceptions(client: Any, published: tuple[str, str]) -> None:  # noqa: F811
    name, other = published
    names = {"<function-name:1>": name, "<resource:5>": other}
    test = TEST + "test_lambda_eventinvokeconfig_exceptions"
    put = client.put_function_event_invoke_config
    fake = f"{ARN}:doesnotexist"
    alias_arn = f"{ARN}:{name}:eventinvokealias"

    def fails(step: str, call: Any = put, **kwargs: Any) -> None:
        assert_error(error_of(call, **kwargs), recorded(test, step, **names))

    def works(step: str, call: Any = put, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = call(**kwargs)
        expected = recorded(test, step, **names)
        assert_shape(answer, expected)
        for key in ("DestinationConfig", "FunctionArn", "MaximumRetryAttempts"):
            assert answer.get(key) == expected.get(key), key
        assert answer.get("MaximumEventAgeInSeconds") == expected.get("MaximumEventAgeInSeconds")
        return answer

    fails("put_functionname_name_notfound", FunctionName="doesnotexist", MaximumRetryAttempts=1)
    fails("put_functionname_arn_notfound", FunctionName=fake, MaximumRetryAttempts=1)
    fails("put_functionname_nootherargs", FunctionName="doesnotexist")
    fails(
        "put_destination_lambda_doesntexist",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": fake}},
    )
    fails(
        "put_destination_recursive",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": f"{ARN}:{name}"}},
    )
    works(
        "put_destination_other_lambda",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": f"{ARN}:{other}"}},
    )
    fails(
        "put_destination_invalid_service_arn",
        FunctionName=name,
        DestinationConfig={
            "OnSuccess": {"Destination": f"arn:aws:iam:{REGION}:{ACCOUNT}:function:{name}"}
        },
    )
    works(
        "put_destination_success_no_destination_arn",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {}},
    )
    works(
        "put_destination_failure_no_destination_arn",
        FunctionName=name,
        DestinationConfig={"OnFailure": {}},
    )
    invalid = f"arn:aws:_-/!lambda:{REGION}:{ACCOUNT}:function:{name}"
    response = error_of(
        put, FunctionName=name, DestinationConfig={"OnFailure": {"Destination": invalid}}
    )
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    retry = {"MaximumRetryAttempts": 1}
    works("put_destination_latest", FunctionName=name, **retry)
    works(
        "put_destination_latest_explicit_qualifier", FunctionName=name, Qualifier="$LATEST", **retry
    )
    works("put_destination_version", FunctionName=name, Qualifier="1", **retry)
    works(
        "put_alias_functionname_qualifier", FunctionName=name, Qualifier="eventinvokealias", **retry
    )
    fails(
        "put_alias_doesnotexist",
        FunctionName=name,
        Qualifier="eventinvokealiasdoesnotexist",
        **retry,
    )
    works("put_alias_qualifiedarn", FunctionName=alias_arn, **retry)
    works(
        "put_alias_qualifiedarn_qualifier",
        FunctionName=alias_arn,
        Qualifier="eventinvokealias",
        **retry,
    )
    fails(
        "put_alias_qualifiedarn_qualifierconflict",
        FunctionName=alias_arn,
        Qualifier="nope",
        **retry,
    )
    works("put_alias_shorthand", FunctionName=f"{name}:eventinvokealias", **retry)
    works("put_version_shorthand", FunctionName=f"{name}:1", **retry)
    works(
        "put_shorthand_qualifier_match",
        FunctionName=f"{name}:$LATEST",
        Qualifier="$LATEST",
        **retry,
    )
    fails(
        "put_shorthand_qualifier_mismatch_1", FunctionName=f"{name}:1", Qualifier="$LATEST", **retry
    )
    fails(
        "put_shorthand_qualifier_mismatch_2", FunctionName=f"{name}:$LATEST", Qualifier="1", **retry
    )
    works(
        "put_maxevent_maxvalue_result",
        FunctionName=name,
        MaximumRetryAttempts=2,
        MaximumEventAgeInSeconds=21600,
    )
    # Put replaces, update merges.
    works(
        "put_pre_overwrite", FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
    )
    works("put_post_overwrite", FunctionName=name, MaximumRetryAttempts=0)
    works("get_post_overwrite", client.get_function_event_invoke_config, FunctionName=name)
    works(
        "pre_update_response",
        FunctionName=name,
        MaximumRetryAttempts=2,
        MaximumEventAgeInSeconds=60,
    )
    update = client.update_function_event_invoke_config
    works("update_response", update, FunctionName=name, MaximumRetryAttempts=0)
    works("update_response_existing", update, FunctionName=name, MaximumRetryAttempts=0)

    listed = client.list_function_event_invoke_configs(FunctionName=name)
    expected = recorded(test, "list_configs", **names)
    assert_shape(listed, expected)
    key = lambda c: c["FunctionArn"]  # noqa: E731
    assert sorted(c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]) == sorted(
        map(key, expected["FunctionEventInvokeConfigs"])
    )
    first = client.list_function_event_invoke_configs(FunctionName=name, MaxItems=2)
    assert len(first["FunctionEventInvokeConfigs"]) == 2 and first["NextMarker"]
    pages = list(
        client.get_paginator("list_function_event_invoke_configs").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 1}
        )
    )
    assert len(pages) == 3
    assert sorted(
        c["FunctionArn"] for p in pages for c in p["FunctionEventInvokeConfigs"]
    ) == sorted(map(key, expected["FunctionEventInvokeConfigs"]))

    delete = client.delete_function_event_invoke_config
    for step, qualifier in (
        ("delete_latest", "$LATEST"),
        ("delete_version", "1"),
        ("delete_alias", "eventinvokealias"),
    ):
        works(step, delete, FunctionName=name, Qualifier=qualifier)
    works("list_configs_postdelete", client.list_function_event_invoke_configs, FunctionName=name)
    fails("delete_function_not_found", delete, FunctionName=name)
    fails("delete_function_doesnotexist", delete, FunctionName="doesnotexist")
    fails(
        "list_function_doesnotexist",
        client.list_function_event_invoke_configs,
        FunctionName="doesnotexist",
    )
    get = client.get_function_event_invoke_config
    fails("get_function_doesnotexist", get, FunctionName="doesnotexist")
    fails("get_qualifier_doesnotexist", get, FunctionName=name, Qualifier="doesnotexist")
    fails(
        "update_eventinvokeconfig_function_doesnotexist",
        update,
        FunctionName="doesnotexist",
        MaximumRetryAttempts=0,
    )
    fails("get_eventinvokeconfig_doesnotexist", get, FunctionName=alias_arn)
    fails(
        "update_eventinvokeconfig_config_doesnotexist_with_qualifier",
        update,
        FunctionName=alias_arn,
        MaximumRetryAttempts=0,
    )
    fails(
        "update_eventinvokeconfig_config_doesnotexist_without_qualifier",
        update,
        FunctionName=name,
        MaximumRetryAttempts=0,
    )


def test_eventinvokeconfig_lifecycle(client: Any) -> None:  # noqa: F811
    name = new_function(client)
    names = {"<function-name:1>": name}
    test = TEST + "test_lambda_eventinvokeconfig_lifecycle"
    put = client.put_function_event_invoke_config
    update = client.update_function_event_invoke_config
    get = client.get_function_event_invoke_config
    for step, call, kwargs in (
        ("put_invokeconfig_retries_0", put, {"MaximumRetryAttempts": 0}),
        ("put_invokeconfig_eventage_60", put, {"MaximumEventAgeInSeconds": 60}),
        ("update_invokeconfig_eventage_nochange", update, {"MaximumEventAgeInSeconds": 60}),
        ("update_invokeconfig_retries", update, {"MaximumRetryAttempts": 1}),
        ("get_invokeconfig", get, {}),
        ("get_invokeconfig_latest", get, {"Qualifier": "$LATEST"}),
        ("list_single_invokeconfig", client.list_function_event_invoke_configs, {}),
    ):
        answer = call(FunctionName=name, **kwargs)
        expected = recorded(test, step, **names)
        assert_shape(answer, expected)
        if "FunctionArn" in expected:
            assert answer["FunctionArn"] == expected["FunctionArn"]
            assert answer["DestinationConfig"] == {"OnFailure": {}, "OnSuccess": {}}
            assert answer.get("MaximumRetryAttempts") == expected.get("MaximumRetryAttempts")
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    client.publish_version(FunctionName=name)
    assert_error(
        error_of(get, FunctionName=name, Qualifier="1"),
        recorded(test, "get_invokeconfig_postpublish", **names),
    )
    put(FunctionName=name, Qualifier="1", MaximumEventAgeInSeconds=120)
    got = get(FunctionName=name, Qualifier="1")
    assert_shape(got, recorded(test, "get_published_invokeconfig", **names))
    assert got["MaximumEventAgeInSeconds"] == 120
    client.delete_function_event_invoke_config(FunctionName=name)
    listed = client.list_function_event_invoke_configs(FunctionName=name)
    expected = recorded(test, "list_paging_nolimit_postdelete", **names)
    assert [c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]] == [
        c["FunctionArn"] for c in expected["FunctionEventInvokeConfigs"]
    ]


def test_nonexisting_version_function_and_region(client: Any) -> None:  # noqa: F811
    name = new_function(client)
    get = client.get_function_event_invoke_config
    prefix = "TestLambdaFunction::"
    assert_error(
        error_of(get, FunctionName=name, Qualifier="1221"),
        recorded(
            prefix + "test_ops_on_nonexisting_version[get_function_event_invoke_config]",
            "version_not_found_exception",
            **{"<fn-name>": name},
        ),
    )
    assert_error(
        error_of(get, FunctionName=f"i-dont-exist-{name}"),
        recorded(
            prefix + "test_ops_on_nonexisting_fn[get_function_event_invoke_config]",
            "not_found_exception",
            **{"<nonexisting-fn-name>": f"i-dont-exist-{name}"},
        ),
    )
    assert_error(
        error_of(get, FunctionName=f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:{name}"),
        recorded(
            prefix + "test_get_function_wrong_region[get_function_event_invoke_config]",
            "wrong_region_exception",
            **{"<wrong-region>": "eu-central-1"},
        ),
    )
