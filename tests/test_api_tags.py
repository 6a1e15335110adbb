"""Tags (TagResource, UntagResource, ListTags) on functions, event source
mappings, capacity providers and code signing configs, against AWS's recorded
answers (TestLambdaTag, TestLambdaTags)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_recorded import ACCOUNT, assert_matches, body, status, step
from botocore.exceptions import ClientError
from cluster import ECHO_HANDLER, ROLE, create_echo, zip_bytes
from lambdafleet.control_plane.api import tagging

from lambdafleet.errors import LambdaError

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}"


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


@pytest.fixture(scope="module")
def echo_fn(cluster: Any) -> str:
    """A function other resources (mappings) can point at."""
    name = f"tags-target-{uuid.uuid4().hex[:8]}"
    create_echo(cluster.client(), name)
    return name


def new_function(client: Any, **extra: Any) -> str:
    name = f"tags-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": ECHO_HANDLER})},
        **extra,
    )
    return name


def new_mapping(client: Any, fn: str, **extra: Any) -> str:
    mapping = client.create_event_source_mapping(
        FunctionName=fn,
        EventSourceArn=f"arn:aws:sqs:us-east-1:{ACCOUNT}:q-{uuid.uuid4().hex[:8]}",
        **extra,
    )
    arn: str = mapping["EventSourceMappingArn"]
    return arn


def new_capacity_provider(client: Any) -> str:
    created = client.create_capacity_provider(
        CapacityProviderName=f"cp-{uuid.uuid4().hex[:8]}",
        VpcConfig={
            "SubnetIds": ["subnet-0123456789abcdef0"],
            "SecurityGroupIds": ["sg-0123456789abcdef0"],
        },
        PermissionsConfig={"CapacityProviderOperatorRoleArn": ROLE},
    )
    arn: str = created["CapacityProvider"]["CapacityProviderArn"]
    return arn


def new_code_signing_config(client: Any) -> str:
    created = client.create_code_signing_config(
        AllowedPublishers={
            "SigningProfileVersionArns": [
                f"arn:aws:signer:us-east-1:{ACCOUNT}:/signing-profiles/p/abcdefghij"
            ]
        }
    )
    arn: str = created["CodeSigningConfig"]["CodeSigningConfigArn"]
    return arn


# --- pure decisions ---------------------------------------------------------------


def test_merge_and_limits() -> None:
    assert tagging.merged({"a": "1"}, {"a": "2", "b": "3"}) == {"a": "2", "b": "3"}
    full = {f"{i}_key": "v" for i in range(tagging.MAX_TAGS)}
    assert tagging.merged(full, {"0_key": "changed"})["0_key"] == "changed"
    with pytest.raises(LambdaError, match="Number of tags exceeds resource tag limit"):
        tagging.merged(full, {"one_more": "v"})
    with pytest.raises(LambdaError, match="An error occurred and the request cannot be processed"):
        tagging.merged(full, {})
    assert tagging.without({"a": "1", "b": "2"}, ["b", "zzz"]) == {"a": "1"}


def test_parse_resource() -> None:
    parsed = tagging.parse_resource(f"{ARN}:function:f")
    assert (parsed.type, parsed.id, parsed.account) == ("function", "f", ACCOUNT)
    for qualified in (
        f"{ARN}:function:f:1",
        f"{ARN}:function:f:$LATEST",
        f"{ARN}:function:f:alias",
    ):
        with pytest.raises(LambdaError, match="Tags on function aliases and versions"):
            tagging.parse_resource(qualified)
    assert tagging.parse_resource(f"{ARN}:capacity-provider:cp").type == "capacity-provider"


# --- through the API ------------------------------------------------------------


def lifecycle(client: Any, arn: str, recorded_test: str) -> None:
    """TestLambdaTag::test_tag_lifecycle's steps on the resource `arn`."""
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("tag_single_response", lambda: client.tag_resource(Resource=arn, Tags={"A": "tag-a"})),
        (
            "tag_multiple_response",
            lambda: client.tag_resource(Resource=arn, Tags={"B": "tag-b", "C": "tag-c"}),
        ),
        (
            "tag_overlap_response",
            lambda: client.tag_resource(Resource=arn, Tags={"C": "tag-c-newsuffix", "D": "tag-d"}),
        ),
        ("untag_single_response", lambda: client.untag_resource(Resource=arn, TagKeys=["A"])),
        (
            "untag_multiple_response",
            lambda: client.untag_resource(Resource=arn, TagKeys=["B", "C"]),
        ),
        ("untag_nonexisting_response", lambda: client.untag_resource(Resource=arn, TagKeys=["F"])),
        (
            "untag_existing_and_nonexisting_response",
            lambda: client.untag_resource(Resource=arn, TagKeys=["D", "F"]),
        ),
    ]
    for name, call in steps:
        assert_matches(call(), step(recorded_test, name))
        assert_matches(client.list_tags(Resource=arn), step(recorded_test, f"{name}_listtags"))


def test_function_tag_lifecycle(client: Any) -> None:
    fn = new_function(client)
    lifecycle(client, f"{ARN}:function:{fn}", "TestLambdaTag::test_tag_lifecycle[lambda_function]")


def test_event_source_mapping_tag_lifecycle(client: Any, echo_fn: str) -> None:
    arn = new_mapping(client, echo_fn)
    lifecycle(client, arn, "TestLambdaTag::test_tag_lifecycle[event_source_mapping]")


def test_capacity_provider_and_code_signing_config_tags(client: Any) -> None:
    for arn in (new_capacity_provider(client), new_code_signing_config(client)):
        client.tag_resource(Resource=arn, Tags={"A": "tag-a", "B": "b"})
        client.untag_resource(Resource=arn, TagKeys=["B"])
        assert client.list_tags(Resource=arn)["Tags"] == {"A": "tag-a"}


def test_tags_given_at_creation(client: Any, echo_fn: str) -> None:
    fn = new_function(client, Tags={"testtag": "custom"})
    listed = client.list_tags(Resource=f"{ARN}:function:{fn}")
    assert_matches(
        listed,
        step(
            "TestLambdaTag::test_create_tag_on_fn_create",
            "list_tags_result",
            **{"custom-tag": "custom"},
        ),
    )
    assert client.get_function(FunctionName=fn)["Tags"] == {"testtag": "custom"}
    mapping = new_mapping(client, echo_fn, Tags={"testtag": "custom"})
    assert_matches(
        client.list_tags(Resource=mapping),
        step(
            "TestLambdaTag::test_create_tag_on_esm_create",
            "list_tags_result",
            **{"custom-tag": "custom"},
        ),
    )


@pytest.mark.parametrize(
    "resource", ["lambda_function", "event_source_mapping", "capacity_provider"]
)
def test_tag_exceptions(client: Any, resource: str) -> None:
    test = f"TestLambdaTag::test_tag_exceptions[{resource}]"
    missing_id = {
        "lambda_function": "function:doesnotexist",
        "event_source_mapping": f"event-source-mapping:{uuid.uuid4()}",
        "capacity_provider": "capacity-provider:doesnotexist",
    }[resource]
    arn = f"{ARN}:{missing_id}"
    names = {"resource-name": missing_id.split(":", 1)[1]}
    assert_matches(
        error_of(client.tag_resource, Resource=arn, Tags={"A": "B"}),
        step(test, "not_found_exception_tag", **names),
    )
    assert_matches(
        error_of(client.untag_resource, Resource=arn, TagKeys=["A"]),
        step(test, "not_found_exception_untag", **names),
    )
    assert_matches(
        error_of(client.list_tags, Resource=arn), step(test, "not_found_exception_list", **names)
    )
    assert_matches(
        error_of(client.tag_resource, Resource=f"{arn}:alias", Tags={"A": "B"}),
        step(test, "aliased_arn_exception", **names),
    )
    invalid = f"{ARN}:foobar:{names['resource-name']}"
    assert_matches(
        error_of(client.tag_resource, Resource=invalid, Tags={"A": "B"}),
        step(test, "invalid_arn_exception", **names),
    )


def test_tag_exceptions_on_functions(client: Any) -> None:
    test = "TestLambdaTags::test_tag_exceptions"
    fn = new_function(client)
    arn = f"{ARN}:function:{fn}"
    invalid = error_of(client.tag_resource, Resource="arn:aws:something", Tags={"key_a": "value_a"})
    assert_matches(invalid, step(test, "tag_lambda_invalidarn"))
    missing = error_of(
        client.tag_resource, Resource=f"{ARN}:function:doesnotexist", Tags={"key_a": "value_a"}
    )
    assert_matches(missing, step(test, "tag_lambda_doesnotexist"))
    qualified = error_of(client.tag_resource, Resource=f"{arn}:v1", Tags={"key_a": "value_a"})
    assert_matches(qualified, step(test, "tag_lambda_qualifier_doesnotexist"))
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tag_lambda_empty"))
    assert_matches(
        client.untag_resource(Resource=arn, TagKeys=["nomatch"]), step(test, "untag_nomatch")
    )
    assert_matches(
        error_of(client.untag_resource, Resource=arn, TagKeys=[]), step(test, "untag_empty_keys")
    )
    assert_matches(
        error_of(client.tag_resource, Resource=arn, Tags={}), step(test, "tag_empty_tags")
    )


def test_tag_limits(client: Any) -> None:
    test = "TestLambdaTags::test_tag_limits"
    fn = new_function(client)
    arn = f"{ARN}:function:{fn}"
    too_many = {f"{i}_key": f"{i}_value" for i in range(51)}
    assert_matches(
        error_of(client.tag_resource, Resource=arn, Tags=too_many),
        step(test, "tag_lambda_too_many_tags"),
    )
    fifty = {f"{i}_key": f"{i}_value" for i in range(50)}
    assert_matches(client.tag_resource(Resource=arn, Tags=fifty), step(test, "tag_response"))
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tags_response"))
    assert client.get_function(FunctionName=fn)["Tags"] == fifty
    one_more = error_of(client.tag_resource, Resource=arn, Tags={"a_key": "a_value"})
    assert_matches(one_more, step(test, "tag_lambda_too_many_tags_additional"))


def test_tag_lifecycle_and_get_function(client: Any) -> None:
    test = "TestLambdaTags::test_tag_lifecycle"
    fn = new_function(client, Tags={"key_a": "value_a"})
    arn = f"{ARN}:function:{fn}"
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tags_response_postfncreate"))
    added = client.tag_resource(
        Resource=arn,
        Tags={"key_b": "value_b", "key_c": "value_c", "key_d": "value_d", "key_e": "value_e"},
    )
    assert_matches(added, step(test, "tag_resource_response"))
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tags_response_postaddtags"))
    client.tag_resource(Resource=arn, Tags={"key_c": "value_x"})
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tags_response_overwrite"))
    assert client.get_function(FunctionName=fn)["Tags"]["key_c"] == "value_x"
    client.untag_resource(Resource=arn, TagKeys=["key_c", "key_d"])
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tags_response_postuntag"))
    client.untag_resource(Resource=arn, TagKeys=["key_a", "key_b", "key_e"])
    assert_matches(client.list_tags(Resource=arn), step(test, "list_tags_response_postuntagall"))
    # GetFunction leaves Tags out once there are none (recorded key set).
    got = client.get_function(FunctionName=fn)
    assert set(got) == set(step(test, "get_fn_response_postuntagall"))
    client.delete_function(FunctionName=fn)
    gone = error_of(client.list_tags, Resource=arn)
    assert_matches(gone, step(test, "list_tags_postdelete", **{"function-name:1": fn}))


def test_tag_versions(client: Any) -> None:
    test = "TestLambdaTags::test_tag_versions"
    fn = new_function(client, Publish=True)
    for qualifier, name in (
        ("1", "tag_resource_exception"),
        ("$LATEST", "tag_resource_latest_exception"),
    ):
        response = error_of(
            client.tag_resource, Resource=f"{ARN}:function:{fn}:{qualifier}", Tags={"a": "b"}
        )
        assert_matches(response, step(test, name))
        assert body(response)["Type"] == "User" and status(response) == 400
