"""Reserved concurrency and provisioned concurrency configs, through boto3,
against AWS's recorded answers (TestLambdaReservedConcurrency,
TestLambdaProvisionedConcurrency)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cluster import CLIENTS, ECHO_HANDLER, zip_bytes
from lambdafleet.control_plane.api.concurrency import (
    IN_PROGRESS,
    check_provisioned,
    check_reserved,
)

from lambdafleet.errors import LambdaError

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_api.snapshot.json").read_text()
)
PREFIX = "tests/aws/services/lambda_/test_lambda_api.py::"
# The recordings' account: using it as ours makes ARNs compare verbatim.
ACCOUNT = "111111111111"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"


def recorded(test: str, step: str, **names: str) -> Any:
    text = json.dumps(RECORDED[PREFIX + test]["recorded-content"][step])
    for placeholder, value in {"<partition>": "aws", "<region>": REGION, **names}.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def error_of(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


def assert_error(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Same code, message, status and body members as AWS's answer."""
    assert actual["Error"] == expected["Error"]
    status = actual["ResponseMetadata"]["HTTPStatusCode"]
    assert status == expected["ResponseMetadata"]["HTTPStatusCode"]
    keys = set(actual) - {"ResponseMetadata"}
    wanted = set(expected) - {"ResponseMetadata"}
    assert keys == wanted


def assert_shape(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(actual) == set(expected)
    assert (
        actual["ResponseMetadata"]["HTTPStatusCode"]
        == expected["ResponseMetadata"]["HTTPStatusCode"]
    )


@pytest.fixture(scope="module")
def client(cluster: Any) -> Any:
    made = boto3.client(
        "lambda",
        endpoint_url=cluster.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    CLIENTS.append(made)
    return made


def new_function(client: Any, publish: bool = False) -> str:
    name = f"conc-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": ECHO_HANDLER})},
        Publish=publish,
    )
    return name


def unreserved_now(client: Any) -> int:
    return int(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"])


# --------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------


def test_reserved_keeps_the_minimum_unreserved() -> None:
    check_reserved(1000, 100, 0, 900)
    check_reserved(1000, 100, 400, 500)
    with pytest.raises(LambdaError) as err:
        check_reserved(1000, 100, 400, 501)
    assert err.value.code == "InvalidParameterValueException"
    assert err.value.message.endswith("below its minimum value of [100].")


def test_provisioned_limits() -> None:
    common = {"limit": 1000, "minimum": 100, "reserved_total": 100, "provisioned_elsewhere": 50}
    # 850 left: 750 may be provisioned.
    check_provisioned(
        **common, function_reserved=None, function_provisioned_elsewhere=0, requested=750
    )
    with pytest.raises(LambdaError) as err:
        check_provisioned(
            **common, function_reserved=None, function_provisioned_elsewhere=0, requested=851
        )
    assert "greater than account's unreserved concurrency [850]" in err.value.message
    with pytest.raises(LambdaError) as err:
        check_provisioned(
            **common, function_reserved=None, function_provisioned_elsewhere=10, requested=741
        )
    assert "below its minimum value of [100]" in err.value.message
    # With a reservation, provisioned concurrency lives inside it.
    check_provisioned(**common, function_reserved=5, function_provisioned_elsewhere=2, requested=3)
    with pytest.raises(LambdaError):
        check_provisioned(
            **common, function_reserved=5, function_provisioned_elsewhere=2, requested=4
        )


# --------------------------------------------------------------------------
# Reserved concurrency
# --------------------------------------------------------------------------

RESERVED = "TestLambdaReservedConcurrency::"


def test_function_concurrency(client: Any) -> None:
    name = new_function(client)
    test = RESERVED + "test_function_concurrency"
    before = unreserved_now(client)
    for value in (0, 1):
        put = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=value)
        expected = recorded(test, f"put_function_concurrency_with_reserved_{value}")
        assert_shape(put, expected)
        assert put["ReservedConcurrentExecutions"] == value
    got = client.get_function_concurrency(FunctionName=name)
    assert_shape(got, recorded(test, "get_function_concurrency"))
    assert got["ReservedConcurrentExecutions"] == 1
    assert client.get_function(FunctionName=name)["Concurrency"] == {
        "ReservedConcurrentExecutions": 1
    }
    assert unreserved_now(client) == before - 1
    assert_shape(
        client.delete_function_concurrency(FunctionName=name), recorded(test, "delete_response")
    )
    after = client.get_function_concurrency(FunctionName=name)
    assert_shape(after, recorded(test, "get_function_concurrency_after_delete"))
    assert "Concurrency" not in client.get_function(FunctionName=name)
    assert unreserved_now(client) == before


def test_function_concurrency_exceptions(client: Any) -> None:
    test = RESERVED + "test_function_concurrency_exceptions"
    assert_error(
        error_of(
            client.put_function_concurrency,
            FunctionName="doesnotexist",
            ReservedConcurrentExecutions=1,
        ),
        recorded(test, "put_function_concurrency_with_function_name_doesnotexist"),
    )
    assert_error(
        error_of(
            client.put_function_concurrency,
            FunctionName="doesnotexist",
            ReservedConcurrentExecutions=10000000,
        ),
        recorded(
            test, "put_function_concurrency_with_function_name_doesnotexist_and_invalid_concurrency"
        ),
    )
    name = new_function(client)
    assert_error(
        error_of(
            client.put_function_concurrency,
            FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:$LATEST",
            ReservedConcurrentExecutions=1,
        ),
        recorded(test, "put_function_concurrency_with_qualified_arn"),
    )


def test_function_concurrency_limits(client: Any, cluster: Any) -> None:
    test = RESERVED + "test_function_concurrency_limits"
    name = new_function(client)
    settings = client.get_account_settings()["AccountLimit"]
    limit = settings["ConcurrentExecutions"]
    minimum = 100
    placeholders = {"<min_unreserved_concurrency>": str(minimum)}
    # More than the whole account has.
    assert_error(
        error_of(
            client.put_function_concurrency,
            FunctionName=name,
            ReservedConcurrentExecutions=limit + 1,
        ),
        recorded(test, "put_function_concurrency_account_limit_exceeded", **placeholders),
    )
    # One more than leaves the minimum unreserved.
    unreserved = settings["UnreservedConcurrentExecutions"]
    assert_error(
        error_of(
            client.put_function_concurrency,
            FunctionName=name,
            ReservedConcurrentExecutions=unreserved - minimum + 1,
        ),
        recorded(test, "put_function_concurrency_below_unreserved_min_value", **placeholders),
    )
    # Exactly the minimum left is allowed.
    client.put_function_concurrency(
        FunctionName=name, ReservedConcurrentExecutions=unreserved - minimum
    )
    assert unreserved_now(client) == minimum
    client.delete_function_concurrency(FunctionName=name)
    assert unreserved_now(client) == unreserved


def test_ops_on_missing_or_other_region_function(client: Any) -> None:
    fn = f"i-dont-exist-{uuid.uuid4().hex[:6]}"
    step = "TestLambdaFunction::test_ops_on_nonexisting_fn[get_function_concurrency]"
    assert_error(
        error_of(client.get_function_concurrency, FunctionName=fn),
        recorded(step, "not_found_exception", **{"<nonexisting-fn-name>": fn}),
    )
    name = new_function(client)
    step = "TestLambdaFunction::test_get_function_wrong_region[get_function_concurrency]"
    assert_error(
        error_of(
            client.get_function_concurrency,
            FunctionName=f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:{name}",
        ),
        recorded(step, "wrong_region_exception", **{"<wrong-region>": "eu-central-1"}),
    )


# --------------------------------------------------------------------------
# Provisioned concurrency
# --------------------------------------------------------------------------

PROVISIONED = "TestLambdaProvisionedConcurrency::"


def test_provisioned_concurrency_exceptions(client: Any) -> None:
    test = PROVISIONED + "test_provisioned_concurrency_exceptions"
    name = new_function(client, publish=True)
    names = {"<function-name:1>": name}

    def check(step: str, call: Callable[..., Any], **kwargs: Any) -> None:
        assert_error(error_of(call, **kwargs), recorded(test, step, **names))

    get = client.get_provisioned_concurrency_config
    delete = client.delete_provisioned_concurrency_config
    put = client.put_provisioned_concurrency_config
    check("get_provisioned_config_doesnotexist", get, FunctionName=name, Qualifier="1")
    check(
        "get_provisioned_functionname_doesnotexist",
        get,
        FunctionName="doesnotexist",
        Qualifier="noalias",
    )
    check("get_provisioned_qualifier_doesnotexist", get, FunctionName=name, Qualifier="noalias")
    check("get_provisioned_version_doesnotexist", get, FunctionName=name, Qualifier="10")
    check("get_provisioned_latest", get, FunctionName=name, Qualifier="$LATEST")
    listed = client.list_provisioned_concurrency_configs(FunctionName=name)
    assert listed["ProvisionedConcurrencyConfigs"] == []
    assert_shape(listed, recorded(test, "list_provisioned_noconfigs"))
    check(
        "list_provisioned_functionname_doesnotexist",
        client.list_provisioned_concurrency_configs,
        FunctionName="doesnotexist",
    )
    check(
        "delete_provisioned_functionname_doesnotexist",
        delete,
        FunctionName="doesnotexist",
        Qualifier="1",
    )
    check(
        "delete_provisioned_qualifier_doesnotexist", delete, FunctionName=name, Qualifier="noalias"
    )
    check("delete_provisioned_version_doesnotexist", delete, FunctionName=name, Qualifier="10")
    check("delete_provisioned_latest", delete, FunctionName=name, Qualifier="$LATEST")
    assert_shape(
        delete(FunctionName=name, Qualifier="1"),
        recorded(test, "delete_provisioned_config_doesnotexist"),
    )
    check(
        "put_provisioned_invalid_param_0",
        put,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=0,
    )
    for step, fn, qualifier in (
        ("put_provisioned_functionname_doesnotexist_alias", "doesnotexist", "noalias"),
        ("put_provisioned_functionname_doesnotexist_version", "doesnotexist", "1"),
        ("put_provisioned_qualifier_doesnotexist", name, "doesnotexist"),
        ("put_provisioned_version_doesnotexist", name, "10"),
        ("put_provisioned_latest", name, "$LATEST"),
    ):
        check(step, put, FunctionName=fn, Qualifier=qualifier, ProvisionedConcurrentExecutions=1)


def test_provisioned_on_version_stays_in_progress(client: Any) -> None:
    test = PROVISIONED + "test_lambda_provisioned_lifecycle"
    name = new_function(client, publish=True)
    put = client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert_shape(put, recorded(test, "put_provisioned_on_version"))
    # Nothing runs them yet: AWS's READY waits for real environments.
    assert put["Status"] == IN_PROGRESS
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    assert put["AllocatedProvisionedConcurrentExecutions"] == 0
    assert put["AvailableProvisionedConcurrentExecutions"] == 0
    got = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == {
        k: v for k, v in put.items() if k != "ResponseMetadata"
    }
    listed = client.list_provisioned_concurrency_configs(FunctionName=name)
    (item,) = listed["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:1"
    assert item["Status"] == IN_PROGRESS
    assert_shape(
        client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1"),
        recorded(test, "delete_provisioned_version"),
    )
    assert_error(
        error_of(client.get_provisioned_concurrency_config, FunctionName=name, Qualifier="1"),
        recorded(test, "get_provisioned_version_postdelete"),
    )
    assert (
        client.list_provisioned_concurrency_configs(FunctionName=name)[
            "ProvisionedConcurrencyConfigs"
        ]
        == []
    )


def test_provisioned_lifecycle_with_alias(client: Any) -> None:
    test = PROVISIONED + "test_lambda_provisioned_lifecycle"
    name = new_function(client, publish=True)
    alias = "live"
    names = {"<function-name:1>": name, "<alias-name>": alias}
    client.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")
    put = client.put_provisioned_concurrency_config
    put(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    assert_error(
        error_of(put, FunctionName=name, Qualifier=alias, ProvisionedConcurrentExecutions=1),
        recorded(test, "put_provisioned_on_alias_versionconflict", **names),
    )
    client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    on_alias = put(FunctionName=name, Qualifier=alias, ProvisionedConcurrentExecutions=1)
    assert_shape(on_alias, recorded(test, "put_provisioned_on_alias", **names))
    assert on_alias["Status"] == IN_PROGRESS
    assert_error(
        error_of(put, FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1),
        recorded(test, "put_provisioned_on_version_conflict", **names),
    )
    client.delete_alias(FunctionName=name, Name=alias)
    assert_error(
        error_of(client.get_provisioned_concurrency_config, FunctionName=name, Qualifier=alias),
        recorded(test, "get_provisioned_alias_postaliasdelete", **names),
    )
    assert (
        client.list_provisioned_concurrency_configs(FunctionName=name)[
            "ProvisionedConcurrencyConfigs"
        ]
        == []
    )


def test_provisioned_concurrency_limits(client: Any) -> None:
    test = PROVISIONED + "test_provisioned_concurrency_limits"
    name = new_function(client, publish=True)
    unreserved = unreserved_now(client)
    put = client.put_provisioned_concurrency_config
    assert_error(
        error_of(
            put, FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=unreserved + 1
        ),
        recorded(
            test,
            "put_provisioned_concurrency_account_limit_exceeded",
            **{"<unreserved_concurrency>": str(unreserved)},
        ),
    )
    assert_error(
        error_of(
            put, FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=unreserved - 99
        ),
        recorded(
            test,
            "put_provisioned_concurrency_below_unreserved_min_value",
            **{"<min_unreserved_concurrency>": "100"},
        ),
    )
    # Within its reservation, a function may provision; beyond it, not.
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    try:
        put(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2)
        r = error_of(put, FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=3)
        assert r["Error"]["Code"] == "InvalidParameterValueException"
    finally:
        client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
        client.delete_function_concurrency(FunctionName=name)
