"""GetAccountSettings with real usage, against AWS's recorded answers
(TestLambdaAccountSettings). Figures are read before and after each change,
in an account of their own, so other modules' functions do not count."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from cluster import CLIENTS, ECHO_HANDLER, zip_bytes
from lambdafleet.control_plane.api.account import Usage, settings_response
from lambdafleet.control_plane.api.registry import Settings
from test_api_concurrency import PREFIX, RECORDED

from lambdafleet.api.v1 import lambda_pb2 as api

ACCOUNT = "222222222222"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
TEST = PREFIX + "TestLambdaAccountSettings::"
CODE = zip_bytes({"app.py": ECHO_HANDLER})


@pytest.fixture(scope="module")
def client(cluster: Any) -> Any:
    made = boto3.client(
        "lambda",
        endpoint_url=cluster.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )
    CLIENTS.append(made)
    return made


def usage(client: Any) -> dict[str, int]:
    answer = client.get_account_settings()
    return {**answer["AccountUsage"], **{f"Limit{k}": v for k, v in answer["AccountLimit"].items()}}


def create(client: Any, **extra: Any) -> str:
    name = f"acct-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    return name


def test_settings_response() -> None:
    out = settings_response(
        Settings(concurrent_executions=500),
        Usage(function_count=3, total_code_size=42, reserved_total=20),
    )
    assert out.account_limit.unreserved_concurrent_executions == 480
    assert out.account_limit.concurrent_executions == 500
    assert out.account_usage == api.AccountUsage(total_code_size=42, function_count=3)


def test_account_settings(client: Any) -> None:
    expected = RECORDED[TEST + "test_account_settings"]["recorded-content"]["acc_settings_modded"]
    answer = client.get_account_settings()
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(answer["AccountLimit"]) == expected["AccountLimit"]
    assert sorted(answer["AccountUsage"]) == expected["AccountUsage"]
    limit = answer["AccountLimit"]
    assert limit["CodeSizeUnzipped"] == 262144000 and limit["CodeSizeZipped"] == 52428800
    assert limit["TotalCodeSize"] == 80530636800 and limit["ConcurrentExecutions"] == 1000

    before = usage(client)
    name = create(client)
    after = usage(client)
    assert after["FunctionCount"] == before["FunctionCount"] + 1
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    assert (
        usage(client)["LimitUnreservedConcurrentExecutions"]
        == before["LimitUnreservedConcurrentExecutions"] - 7
    )
    client.delete_function(FunctionName=name)
    assert usage(client) == before


def test_account_settings_total_code_size(client: Any) -> None:
    before = usage(client)["TotalCodeSize"]
    name = create(client)
    created = usage(client)["TotalCodeSize"]
    assert created - before == len(CODE)
    # New code published as a version: $LATEST and version 1 both count.
    client.update_function_code(FunctionName=name, ZipFile=CODE, Publish=True)
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    assert usage(client)["TotalCodeSize"] - created == len(CODE)
    client.delete_function(FunctionName=name)
    assert usage(client)["TotalCodeSize"] == before
    # Layer versions count too, each version its own size.
    layer = f"layer-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        at = usage(client)["TotalCodeSize"]
        client.publish_layer_version(LayerName=layer, Content={"ZipFile": CODE})
        assert usage(client)["TotalCodeSize"] - at == len(CODE)


def test_account_settings_total_code_size_config_update(client: Any) -> None:
    recorded = RECORDED[TEST + "test_account_settings_total_code_size_config_update"][
        "recorded-content"
    ]
    before = usage(client)["TotalCodeSize"]
    name = create(client)
    created = usage(client)["TotalCodeSize"]
    assert (created - before > 200) is recorded[
        "is_total_code_size_diff_create_function_more_than_200"
    ]
    client.update_function_configuration(FunctionName=name, Description="changed")
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    updated = usage(client)["TotalCodeSize"]
    assert updated - created == recorded["total_code_size_diff_update_function_configuration"]
    client.publish_version(FunctionName=name)
    published = usage(client)["TotalCodeSize"]
    assert (published - updated > 200) is recorded[
        "is_total_code_size_diff_publish_version_after_config_update_more_than_200"
    ]
    client.delete_function(FunctionName=name)
