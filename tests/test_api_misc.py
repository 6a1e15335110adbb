"""Recursion, runtime management and scaling settings, capacity providers,
durable executions, InvokeAsync and InvokeWithResponseStream through boto3;
compared with AWS's recorded answers where they exist (TestLambdaRecursion),
with the model's shapes elsewhere."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import ROLE, create_echo
from lambdafleet.control_plane.api import function_settings

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_api.snapshot.json").read_text()
)
RECURSION = "tests/aws/services/lambda_/test_lambda_api.py::TestLambdaRecursion::"
ACCOUNT = "000000000000"
REGION = "us-east-1"
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def status(response: dict[str, Any]) -> int:
    code: int = response["ResponseMetadata"]["HTTPStatusCode"]
    return code


def recursion(test: str, step: str) -> dict[str, Any]:
    found: dict[str, Any] = RECORDED[RECURSION + test]["recorded-content"][step]
    return found


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    response: dict[str, Any] = e.value.response
    return response


@pytest.fixture(scope="module")
def function(cluster: Any) -> str:
    name = f"misc-{uuid.uuid4().hex[:10]}"
    create_echo(cluster.client(), name)
    return name


def missing() -> str:
    return f"missing-{uuid.uuid4().hex[:8]}"


# -- recursion -------------------------------------------------------------------


def test_recursion_config(client: Any, function: str) -> None:
    default = client.get_function_recursion_config(FunctionName=function)
    expected = recursion(
        "test_put_function_recursion_config_default_terminate",
        "get_recursion_default_terminate_response",
    )
    assert (status(default), body(default)) == (status(expected), body(expected))

    put = client.put_function_recursion_config(FunctionName=function, RecursiveLoop="Allow")
    expected = recursion(
        "test_put_function_recursion_config_allow", "put_recursion_config_response"
    )
    assert (status(put), body(put)) == (status(expected), body(expected))
    got = client.get_function_recursion_config(FunctionName=function)
    expected = recursion(
        "test_put_function_recursion_config_allow", "get_recursion_config_response"
    )
    assert (status(got), body(got)) == (status(expected), body(expected))

    invalid = error_of(
        client.put_function_recursion_config, FunctionName=function, RecursiveLoop="InvalidValue"
    )
    expected = recursion(
        "test_put_function_recursion_config_invalid_value", "put_recursion_invalid_value_error"
    )
    assert status(invalid) == status(expected)
    assert invalid["Error"] == expected["Error"]

    name = missing()
    not_found = error_of(client.get_function_recursion_config, FunctionName=name)
    assert not_found["Error"]["Code"] == "ResourceNotFoundException"
    assert not_found["Error"]["Message"] == f"Function not found: {FN_ARN}:{name}"


# -- runtime management ------------------------------------------------------------


def test_runtime_management_config(client: Any, function: str) -> None:
    got = client.get_runtime_management_config(FunctionName=function)
    assert body(got) == {"UpdateRuntimeOn": "Auto", "FunctionArn": f"{FN_ARN}:{function}"}

    runtime = f"arn:aws:lambda:{REGION}::runtime:{'a' * 64}"
    put = client.put_runtime_management_config(
        FunctionName=function, UpdateRuntimeOn="Manual", RuntimeVersionArn=runtime
    )
    assert body(put) == {
        "UpdateRuntimeOn": "Manual",
        "FunctionArn": f"{FN_ARN}:{function}",
        "RuntimeVersionArn": runtime,
    }
    assert body(client.get_runtime_management_config(FunctionName=function)) == body(put)

    put = client.put_runtime_management_config(
        FunctionName=function, UpdateRuntimeOn="FunctionUpdate"
    )
    assert body(put) == {"UpdateRuntimeOn": "FunctionUpdate", "FunctionArn": f"{FN_ARN}:{function}"}
    assert body(client.get_runtime_management_config(FunctionName=function)) == body(put)

    for kwargs in (
        {"UpdateRuntimeOn": "Manual"},
        {"UpdateRuntimeOn": "Auto", "RuntimeVersionArn": runtime},
    ):
        refused = error_of(client.put_runtime_management_config, FunctionName=function, **kwargs)
        assert refused["Error"]["Code"] == "InvalidParameterValueException"
    refused = error_of(client.get_runtime_management_config, FunctionName=function, Qualifier="99")
    assert refused["Error"]["Code"] == "ResourceNotFoundException"
    client.put_runtime_management_config(FunctionName=function, UpdateRuntimeOn="Auto")


def test_runtime_management_rules() -> None:
    function_settings.check_runtime_management("Manual", "arn:x")
    function_settings.check_runtime_management("Auto", None)
    for mode, arn in (("Manual", None), ("FunctionUpdate", "arn:x")):
        with pytest.raises(LambdaError):
            function_settings.check_runtime_management(mode, arn)


# -- function scaling ------------------------------------------------------------


def test_function_scaling_config(client: Any, function: str) -> None:
    version = client.publish_version(FunctionName=function)["Version"]
    arn = f"{FN_ARN}:{function}:{version}"
    empty = client.get_function_scaling_config(FunctionName=function, Qualifier=version)
    assert body(empty) == {"FunctionArn": arn}
    scaling = {"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 4}
    put = client.put_function_scaling_config(
        FunctionName=function, Qualifier=version, FunctionScalingConfig=scaling
    )
    assert status(put) == 202 and body(put) == {"FunctionState": "Active"}
    got = client.get_function_scaling_config(FunctionName=function, Qualifier=version)
    assert body(got) == {
        "FunctionArn": arn,
        "AppliedFunctionScalingConfig": scaling,
        "RequestedFunctionScalingConfig": scaling,
    }
    # $LATEST.PUBLISHED names the highest published version.
    latest = client.get_function_scaling_config(
        FunctionName=function, Qualifier="$LATEST.PUBLISHED"
    )
    assert body(latest) == {"FunctionArn": f"{FN_ARN}:{function}:$LATEST.PUBLISHED"}
    refused = error_of(
        client.put_function_scaling_config,
        FunctionName=function,
        Qualifier=version,
        FunctionScalingConfig={"MinExecutionEnvironments": 5, "MaxExecutionEnvironments": 1},
    )
    assert refused["Error"]["Code"] == "InvalidParameterValueException"
    gone = error_of(client.get_function_scaling_config, FunctionName=function, Qualifier="999")
    assert gone["Error"]["Message"] == f"Function not found: {arn.rsplit(':', 1)[0]}:999"
    gone = error_of(client.get_function_scaling_config, FunctionName=missing(), Qualifier="1")
    assert gone["Error"]["Code"] == "ResourceNotFoundException"


def test_scaling_bounds() -> None:
    function_settings.check_scaling(api.FunctionScalingConfig(min_execution_environments=2))
    with pytest.raises(LambdaError):
        function_settings.check_scaling(
            api.FunctionScalingConfig(min_execution_environments=3, max_execution_environments=2)
        )


# -- capacity providers ----------------------------------------------------------

CAPACITY_KEYS = {
    "CapacityProviderArn",
    "State",
    "VpcConfig",
    "PermissionsConfig",
    "InstanceRequirements",
    "CapacityProviderScalingConfig",
    "LastModified",
}


def create_provider(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = client.create_capacity_provider(
        CapacityProviderName=name,
        VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123"]},
        PermissionsConfig={"CapacityProviderOperatorRoleArn": ROLE},
        **extra,
    )
    return response


def test_capacity_provider_lifecycle(client: Any) -> None:
    name = f"cp-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider:{name}"
    created = create_provider(client, name, Tags={"team": "a"})
    assert status(created) == 202
    provider = created["CapacityProvider"]
    assert provider.keys() == CAPACITY_KEYS
    assert provider["CapacityProviderArn"] == arn and provider["State"] == "Pending"
    assert provider["InstanceRequirements"] == {"Architectures": ["x86_64"]}
    assert provider["CapacityProviderScalingConfig"] == {"ScalingMode": "Auto"}
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "a"}

    conflict = error_of(create_provider, client=client, name=name)
    assert conflict["Error"]["Code"] == "ResourceConflictException"

    got = client.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]
    assert got["State"] == "Active"
    assert client.get_capacity_provider(CapacityProviderName=arn)["CapacityProvider"] == got

    scaling = {"MaxVCpuCount": 64, "ScalingMode": "Manual"}
    updated = client.update_capacity_provider(
        CapacityProviderName=name, CapacityProviderScalingConfig=scaling
    )
    assert status(updated) == 202
    assert updated["CapacityProvider"]["CapacityProviderScalingConfig"] == scaling

    versions = client.list_function_versions_by_capacity_provider(CapacityProviderName=name)
    assert body(versions) == {"CapacityProviderArn": arn, "FunctionVersions": []}

    deleted = client.delete_capacity_provider(CapacityProviderName=name)
    assert status(deleted) == 202 and deleted["CapacityProvider"]["State"] == "Deleting"
    for call in (
        client.get_capacity_provider,
        client.delete_capacity_provider,
        client.list_function_versions_by_capacity_provider,
    ):
        gone = error_of(call, CapacityProviderName=name)
        assert gone["Error"]["Code"] == "ResourceNotFoundException"
        assert gone["Error"]["Message"] == f"Capacity provider not found: {arn}"
    gone = error_of(client.list_tags, Resource=arn)
    assert gone["Error"]["Message"] == f"Capacity provider not found: {arn}"


def test_capacity_providers_paging(client: Any) -> None:
    names = sorted(f"cpp-{uuid.uuid4().hex[:8]}" for _ in range(3))
    for name in names:
        create_provider(client, name)
    pages = list(
        client.get_paginator("list_capacity_providers").paginate(PaginationConfig={"PageSize": 1})
    )
    seen = [
        p["CapacityProviderArn"].rsplit(":", 1)[1]
        for page in pages
        for p in page["CapacityProviders"]
    ]
    assert len(seen) == len(set(seen)) and set(names) <= set(seen)
    active = client.list_capacity_providers(State="Active")["CapacityProviders"]
    assert set(names) <= {p["CapacityProviderArn"].rsplit(":", 1)[1] for p in active}
    assert client.list_capacity_providers(State="Failed")["CapacityProviders"] == []
    for name in names:
        client.delete_capacity_provider(CapacityProviderName=name)


# -- durable executions ----------------------------------------------------------


def test_durable_executions_where_none_exist(client: Any, function: str) -> None:
    execution = f"{FN_ARN}:{function}:$LATEST/durable-execution/run-1/0123abcd"
    for call, kwargs in (
        (client.get_durable_execution, {}),
        (client.get_durable_execution_history, {}),
        (client.stop_durable_execution, {}),
    ):
        gone = error_of(call, DurableExecutionArn=execution, **kwargs)
        assert gone["Error"]["Code"] == "ResourceNotFoundException"
        assert execution in gone["Error"]["Message"]
    for call, kwargs in (
        (client.get_durable_execution_state, {"CheckpointToken": "t"}),
        (client.checkpoint_durable_execution, {"CheckpointToken": "t"}),
    ):
        refused = error_of(call, DurableExecutionArn=execution, **kwargs)
        assert refused["Error"]["Code"] == "InvalidParameterValueException"
    for call, kwargs in (
        (client.send_durable_execution_callback_success, {"Result": b"{}"}),
        (client.send_durable_execution_callback_failure, {}),
        (client.send_durable_execution_callback_heartbeat, {}),
    ):
        refused = error_of(call, CallbackId="Y2FsbGJhY2s=", **kwargs)
        assert refused["Error"]["Code"] == "InvalidParameterValueException"
    listed = client.list_durable_executions_by_function(FunctionName=function)
    assert status(listed) == 200 and body(listed) == {"DurableExecutions": []}
    name = missing()
    gone = error_of(client.list_durable_executions_by_function, FunctionName=name)
    assert gone["Error"]["Message"] == f"Function not found: {FN_ARN}:{name}"


# -- InvokeAsync and InvokeWithResponseStream --------------------------------------


def test_invoke_async_runs_the_function(client: Any, function: str) -> None:
    response = client.invoke_async(FunctionName=function, InvokeArgs=b'{"async": true}')
    assert status(response) == 202 and body(response) == {"Status": 202}
    gone = error_of(client.invoke_async, FunctionName=missing(), InvokeArgs=b"{}")
    assert gone["Error"]["Code"] == "ResourceNotFoundException"
    bad = error_of(client.invoke_async, FunctionName=function, InvokeArgs=b"not json")
    assert bad["Error"]["Code"] == "InvalidRequestContentException"


def test_invoke_with_response_stream(client: Any, function: str) -> None:
    response = client.invoke_with_response_stream(
        FunctionName=function, Payload=json.dumps({"stream": 1})
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/octet-stream"
    events = list(response["EventStream"])
    assert [next(iter(e)) for e in events] == ["PayloadChunk", "InvokeComplete"]
    payload = b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)
    answer = json.loads(payload)
    assert answer["event"] == {"stream": 1} and answer["function"] == function
    assert events[-1]["InvokeComplete"] == {}

    name = missing()
    gone = error_of(client.invoke_with_response_stream, FunctionName=name, Payload=b"{}")
    assert gone["Error"]["Message"] == f"Function not found: {FN_ARN}:{name}:$LATEST"
    bad = error_of(client.invoke_with_response_stream, FunctionName=function, Payload=b"{")
    assert bad["Error"]["Code"] == "InvalidRequestContentException"


def test_invoke_with_response_stream_function_error(client: Any) -> None:
    name = f"misc-err-{uuid.uuid4().hex[:8]}"
    from cluster import zip_bytes

    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={
            "ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    raise ValueError('boom')\n"})
        },
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    started = time.monotonic()
    response = client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    events = list(response["EventStream"])
    complete = events[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == "Unhandled"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "boom"
    assert time.monotonic() - started < 60
