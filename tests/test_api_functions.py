"""Functions beyond create/get/invoke: updates, images, layers, VPC, limits,
listing and S3 code, compared with AWS's recorded answers
(test_lambda_api.snapshot.json): the keys of every shape, status codes,
error codes and messages."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aws_recorded import step as recorded_step
from botocore.exceptions import ClientError
from cluster import ECHO_HANDLER, ROLE, create_echo, zip_bytes
from google.protobuf import message_factory
from lambdafleet.control_plane import lifecycle
from lambdafleet.control_plane.api import Api, Caller, Settings
from lambdafleet.control_plane.api.function_code import fetch_s3
from lambdafleet.control_plane.api.registry import HANDLERS
from lambdafleet.control_plane.api.resolve import load, save
from lambdafleet.control_plane.store import CodeStore, ResourceStore, Scope
from lambdafleet.control_plane.validation import check_role_account
from lambdafleet.gateway import messages
from lambdafleet.gateway.operations import SERVICE

from lambdafleet.errors import LambdaError

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_api.snapshot.json").read_text()
)
PREFIX = "tests/aws/services/lambda_/test_lambda_api.py::"
REGION = "us-east-1"
ACCOUNT = "000000000000"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}"
SECOND_ZIP = zip_bytes({"app.py": ECHO_HANDLER + "\n# second\n"})
ZIP_3 = zip_bytes({"app.py": ECHO_HANDLER + "\n# third\n"})


def recorded(test: str, step: str) -> dict[str, Any]:
    value: dict[str, Any] = RECORDED[PREFIX + test]["recorded-content"][step]
    return value


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def status(response: dict[str, Any]) -> int:
    code: int = response["ResponseMetadata"]["HTTPStatusCode"]
    return code


def same_keys(ours: dict[str, Any], aws: dict[str, Any]) -> None:
    """The same members, recursively through nested structures."""
    assert set(body(ours)) == set(body(aws))
    for key, value in body(aws).items():
        if isinstance(value, dict) and value and key != "Variables":
            same_keys(ours[key], value)


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response: dict[str, Any] = err.value.response
    return response


def same_error(ours: dict[str, Any], aws: dict[str, Any], **placeholders: str) -> None:
    message = aws["Error"]["Message"]
    for placeholder, value in {
        "<partition>": "aws",
        "<region>": REGION,
        "111111111111": ACCOUNT,
        **placeholders,
    }.items():
        message = message.replace(placeholder, value)
    assert ours["Error"]["Code"] == aws["Error"]["Code"]
    assert ours["Error"]["Message"] == message
    assert status(ours) == status(aws)


def fn_name() -> str:
    return f"fx-{uuid.uuid4().hex[:10]}"


def wait_updated(client: Any, name: str) -> dict[str, Any]:
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    config: dict[str, Any] = client.get_function_configuration(FunctionName=name)
    return config


def invoke_event(client: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=b'{"x": 1}', **kwargs)
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


# -- updates -------------------------------------------------------------------


def test_update_lifecycle_matches_recorded_shapes(client: Any) -> None:
    test = "TestLambdaFunction::test_function_lifecycle"
    fn = fn_name()
    create_echo(client, fn, MemorySize=256, Timeout=5)
    updated = client.update_function_configuration(
        FunctionName=fn,
        Runtime="python3.11",
        Description="Changed-Description",
        MemorySize=512,
        Timeout=10,
        Environment={"Variables": {"ENV_A": "a"}},
    )
    aws = recorded(test, "update_func_conf_response")
    same_keys(updated, aws)
    assert status(updated) == 200
    for key in ("LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode"):
        assert updated[key] == aws[key]
    assert updated["Environment"] == {"Variables": {"ENV_A": "a"}}
    # AWS's get_function_response is of the finished update (Successful, no
    # reason members): wait for it, or a loaded machine races the update.
    wait_updated(client, fn)
    after = client.get_function(FunctionName=fn)
    same_keys(after, recorded(test, "get_function_response"))
    settled = client.get_function(FunctionName=fn)
    same_keys(settled, recorded(test, "get_function_response_postupdate"))
    assert settled["Configuration"]["LastUpdateStatus"] == "Successful"
    assert settled["Configuration"]["MemorySize"] == 512

    code = client.update_function_code(FunctionName=fn, ZipFile=SECOND_ZIP)
    same_keys(code, recorded(test, "update_code_response"))
    assert code["LastUpdateStatus"] == "InProgress"
    assert code["CodeSha256"] != updated["CodeSha256"]
    final = wait_updated(client, fn)
    assert final["CodeSha256"] == code["CodeSha256"]
    assert final["RevisionId"] != code["RevisionId"]


class HeldScheduler:
    """A scheduler whose activations wait until the test lets them run, so an
    update stays in progress for as long as the test needs."""

    def __init__(self) -> None:
        self.held: list[tuple[Any, str]] = []

    def activate(self, scope: Any, name: str) -> None:
        self.held.append((scope, name))


def run_handler(api_: Any, operation: str, params: dict[str, Any]) -> Any:
    """Call one control plane handler as the gateway would (same request
    message, same presence mask), without the network."""
    method = SERVICE.methods_by_name[operation]
    request = messages.to_request(message_factory.GetMessageClass(method.input_type), params)
    return asyncio.run(HANDLERS[operation](api_, Caller(ACCOUNT, REGION), request))


def test_second_update_while_one_is_in_progress_is_refused(tmp_path: Path) -> None:
    scheduler = HeldScheduler()
    api_ = Api(
        ResourceStore(tmp_path / "state.db"), CodeStore(tmp_path / "code"), scheduler, Settings()
    )  # type: ignore[arg-type]
    fn = fn_name()
    run_handler(
        api_,
        "CreateFunction",
        {
            "FunctionName": fn,
            "Runtime": "python3.12",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": SECOND_ZIP},
        },
    )
    # Still Pending: neither update is accepted yet (AWS's state error).
    with pytest.raises(LambdaError) as err:
        run_handler(api_, "UpdateFunctionConfiguration", {"FunctionName": fn, "Timeout": 7})
    assert err.value.message.endswith("in the following state: Pending")
    record = load(api_.store, Scope(ACCOUNT, REGION), fn)
    assert record is not None
    record.configuration.CopyFrom(lifecycle.activated(record.configuration))
    save(api_.store, Scope(ACCOUNT, REGION), record)

    code = run_handler(api_, "UpdateFunctionCode", {"FunctionName": fn, "ZipFile": ZIP_3})
    assert code.last_update_status == "InProgress"
    assert scheduler.held[-1] == (Scope(ACCOUNT, REGION), fn)
    for operation, params, test in (
        ("UpdateFunctionConfiguration", {"Timeout": 7}, "test_lambda_concurrent_config_updates"),
        ("UpdateFunctionCode", {"ZipFile": SECOND_ZIP}, "test_lambda_concurrent_code_updates"),
    ):
        with pytest.raises(LambdaError) as err:
            run_handler(api_, operation, {"FunctionName": fn, **params})
        aws = recorded(f"TestLambdaFunction::{test}", "update-during-in-progress-update-exc")
        assert err.value.code == aws["Error"]["Code"]
        assert err.value.message == aws["Error"]["Message"].replace(
            "arn:<partition>:lambda:<region>:111111111111:function:<function-name:1>",
            f"{ARN}:function:{fn}",
        )
    # The refused updates changed nothing: $LATEST has the first update's code.
    current = load(api_.store, Scope(ACCOUNT, REGION), fn)
    assert current is not None
    assert current.configuration.code_sha256 == code.code_sha256
    assert current.configuration.timeout == 3
    api_.store.close()


def test_create_with_publish_answers_the_unqualified_arn(tmp_path: Path) -> None:
    """AWS answers $LATEST as created, numbered with the new version, under
    the unqualified ARN (test_publish_version_on_create's create_response)."""
    api_ = Api(
        ResourceStore(tmp_path / "state.db"),
        CodeStore(tmp_path / "code"),
        HeldScheduler(),  # type: ignore[arg-type]
        Settings(),
    )
    fn = fn_name()
    created = run_handler(
        api_,
        "CreateFunction",
        {
            "FunctionName": fn,
            "Runtime": "python3.12",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": SECOND_ZIP},
            "Publish": True,
        },
    )
    assert (created.function_arn, created.version) == (f"{ARN}:function:{fn}", "1")
    assert (created.state, created.state_reason_code) == ("Pending", "Creating")
    assert not created.HasField("last_update_status")
    record = load(api_.store, Scope(ACCOUNT, REGION), fn)
    assert record is not None
    # The RevisionId is $LATEST's; the version has one of its own.
    assert created.revision_id == record.configuration.revision_id
    version = run_handler(api_, "GetFunctionConfiguration", {"FunctionName": fn, "Qualifier": "1"})
    assert version.function_arn == f"{ARN}:function:{fn}:1"
    assert version.revision_id != created.revision_id
    api_.store.close()


# The recorded scenarios created their functions with LocalStack's test
# helper, which sends an empty Environment (AWS then shows one).
AS_RECORDED: dict[str, Any] = {"Environment": {"Variables": {}}}


def test_redundant_update_still_goes_through_an_update(client: Any) -> None:
    test = "TestLambdaFunction::test_redundant_updates"
    fn = fn_name()
    create_echo(client, fn, **AS_RECORDED)
    first = client.update_function_configuration(FunctionName=fn, Description="same")
    same_keys(first, recorded(test, "first_update_result"))
    settled = wait_updated(client, fn)
    again = client.update_function_configuration(FunctionName=fn, Description="same")
    same_keys(again, recorded(test, "redundant_update_result"))
    assert again["LastUpdateStatus"] == "InProgress"
    assert again["RevisionId"] != settled["RevisionId"]
    assert wait_updated(client, fn)["LastUpdateStatus"] == "Successful"


def test_wrong_revision_id_is_refused_and_changes_nothing(client: Any) -> None:
    fn = fn_name()
    create_echo(client, fn)
    before = client.get_function_configuration(FunctionName=fn)
    aws = recorded(
        "TestLambdaVersions::test_publish_with_wrong_revisionid", "publish_wrong_revisionid_exc"
    )
    for call, kwargs in (
        (client.update_function_configuration, {"Timeout": 9}),
        (client.update_function_code, {"ZipFile": SECOND_ZIP}),
    ):
        r = error_of(call, FunctionName=fn, RevisionId=str(uuid.uuid4()), **kwargs)
        same_error(r, aws)
    assert client.get_function_configuration(FunctionName=fn)["RevisionId"] == before["RevisionId"]
    ok = client.update_function_configuration(
        FunctionName=fn, Timeout=9, RevisionId=before["RevisionId"]
    )
    assert ok["Timeout"] == 9


def test_previous_code_serves_until_the_update_completes(client: Any) -> None:
    fn = fn_name()
    create_echo(client, fn)
    client.update_function_code(
        FunctionName=fn,
        ZipFile=zip_bytes({"app.py": "def handler(event, context):\n    return 'new'\n"}),
    )
    during = client.invoke(FunctionName=fn, Payload=b"{}")
    result = json.loads(during["Payload"].read())
    # Either the old code (update still applying) or the new (already done),
    # never a refusal or a mixture.
    assert result == "new" or result["function"] == fn
    wait_updated(client, fn)
    assert json.loads(client.invoke(FunctionName=fn)["Payload"].read()) == "new"


def test_update_code_publish_dry_run_and_architectures(client: Any) -> None:
    fn = fn_name()
    create_echo(client, fn)
    before = client.get_function_configuration(FunctionName=fn)
    dry = client.update_function_code(FunctionName=fn, ZipFile=SECOND_ZIP, DryRun=True)
    assert status(dry) == 200
    unchanged = client.get_function_configuration(FunctionName=fn)
    assert unchanged["RevisionId"] == before["RevisionId"]
    assert unchanged["CodeSha256"] == before["CodeSha256"]

    published = client.update_function_code(
        FunctionName=fn, ZipFile=SECOND_ZIP, Publish=True, Architectures=["arm64"]
    )
    assert published["Version"] == "1"
    # Published from code still being updated: Pending until the update
    # completes, as recorded (TestLambdaVersions::test_publish_with_update).
    assert (published["State"], published["StateReasonCode"]) == ("Pending", "Creating")
    assert "LastUpdateStatus" not in published
    assert published["FunctionArn"] == f"{ARN}:function:{fn}:1"
    assert published["Architectures"] == ["arm64"]
    latest = wait_updated(client, fn)
    assert latest["Architectures"] == ["arm64"]
    version = client.get_function_configuration(FunctionName=fn, Qualifier="1")
    assert version["CodeSha256"] == latest["CodeSha256"] != before["CodeSha256"]
    assert version["State"] == "Active"
    assert version["LastUpdateStatus"] == "Successful"


def test_update_exceptions_as_recorded(client: Any) -> None:
    test = "TestLambdaFunction::test_update_lambda_exceptions"
    fn = fn_name()
    create_echo(client, fn)
    for step, kwargs in (
        ("invalid_runtime_exc", {"Runtime": "non-existent-runtime"}),
        ("uppercase_runtime_exc", {"Runtime": "PYTHON3.9"}),
    ):
        r = error_of(client.update_function_configuration, FunctionName=fn, **kwargs)
        same_error(r, recorded(test, step))
    r = error_of(client.update_function_configuration, FunctionName=fn, Role="r1")
    same_error(r, recorded(test, "invalid_role_arn_exc"))
    r = error_of(client.update_function_code, FunctionName=fn, ZipFile=b"not a zip")
    same_error(r, recorded("TestLambdaFunction::test_create_lambda_exceptions", "invalid_zip_exc"))


def test_logging_snapstart_and_vpc_configuration(client: Any) -> None:
    fn = fn_name()
    create_echo(client, fn, **AS_RECORDED)
    json_logs = client.update_function_configuration(
        FunctionName=fn, LoggingConfig={"LogFormat": "JSON"}
    )
    assert json_logs["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{fn}",
    }
    wait_updated(client, fn)
    text = client.update_function_configuration(
        FunctionName=fn, LoggingConfig={"LogFormat": "Text"}
    )
    assert text["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn}"}
    wait_updated(client, fn)

    snap = client.update_function_configuration(
        FunctionName=fn, SnapStart={"ApplyOn": "PublishedVersions"}
    )
    aws = recorded(
        "TestLambdaSnapStart::test_snapstart_update_function_configuration[python3.12]",
        "update_function_response",
    )
    assert snap["SnapStart"] == aws["SnapStart"]
    wait_updated(client, fn)

    test = "TestLambdaFunction::test_vpc_config"
    vpc = client.update_function_configuration(
        FunctionName=fn, VpcConfig={"SubnetIds": ["subnet-0a1b"], "SecurityGroupIds": ["sg-0c2d"]}
    )
    same_keys(vpc, recorded(test, "update_vpcconfig_update_response"))
    assert vpc["VpcConfig"]["SubnetIds"] == ["subnet-0a1b"]
    assert vpc["VpcConfig"]["VpcId"].startswith("vpc-")
    wait_updated(client, fn)
    detached = client.update_function_configuration(
        FunctionName=fn, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    aws_detached = recorded(test, "delete_vpcconfig_update_response")
    same_keys(detached, aws_detached)
    assert detached["VpcConfig"] == aws_detached["VpcConfig"]
    wait_updated(client, fn)


# -- layers ----------------------------------------------------------------------


def test_layer_errors_as_recorded(client: Any) -> None:
    test = "TestLambdaLayer::test_layer_function_exceptions"
    fn = fn_name()
    create_echo(client, fn)
    missing = f"{ARN}:layer:doesnotexist:1"
    r = error_of(client.update_function_configuration, FunctionName=fn, Layers=[missing])
    same_error(r, recorded(test, "add_nonexistent_layer_exc"))
    other_region = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:somelayer:1"
    r = error_of(client.update_function_configuration, FunctionName=fn, Layers=[other_region])
    same_error(r, recorded(test, "create_function_with_layer_in_different_region"))
    r = error_of(
        client.update_function_configuration,
        FunctionName=fn,
        Layers=[f"{ARN}:layer:l{i}:1" for i in range(6)],
    )
    same_error(
        r,
        recorded(
            "TestLambdaLayer::test_layer_function_quota_exception",
            "create_function_with_six_layers",
        ),
    )
    r = error_of(
        client.create_function,
        FunctionName=fn_name(),
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": SECOND_ZIP},
        Layers=[missing],
    )
    same_error(r, recorded(test, "add_nonexistent_layer_exc"))


# -- limits ----------------------------------------------------------------------


def test_environment_size_limit(client: Any) -> None:
    aws = recorded(
        "TestLambdaSizeLimits::test_large_environment_fails_multiple_keys",
        "failured_create_fn_result_multi_key",
    )
    variables = {"SMALL_VAR": "ok", "LARGE_VAR": "x" * 4064}
    r = error_of(
        client.create_function,
        FunctionName=fn_name(),
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": SECOND_ZIP},
        Environment={"Variables": variables},
    )
    assert r["Error"]["Code"] == aws["Error"]["Code"]
    assert r["Error"]["Message"] == aws["Error"]["Message"]
    assert status(r) == 400
    # Exactly 4 KB measured ({"AB":"..."} is 9 bytes of framing) is accepted.
    fn = fn_name()
    create_echo(client, fn, Environment={"Variables": {"AB": "y" * (4096 - 9)}})
    r = error_of(
        client.update_function_configuration,
        FunctionName=fn,
        Environment={"Variables": {"AB": "y" * (4096 - 8)}},
    )
    assert r["Error"]["Code"] == "InvalidParameterValueException"


def test_unzipped_size_limit(client: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * (250 * 1024 * 1024 + 1))
    r = error_of(
        client.create_function,
        FunctionName=fn_name(),
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    same_error(
        r, recorded("TestLambdaSizeLimits::test_oversized_unzipped_lambda", "invalid_param_exc")
    )


# -- images ----------------------------------------------------------------------


IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/repo"


def test_image_function_crud(client: Any) -> None:
    test = "TestLambdaImages::test_lambda_image_and_image_config_crud"
    fn = fn_name()
    created = client.create_function(
        FunctionName=fn,
        Role=ROLE,
        PackageType="Image",
        Code={"ImageUri": f"{IMAGE}:latest"},
        Environment={"Variables": {"CUSTOM_ENV": "test"}},
        ImageConfig={
            "EntryPoint": ["sh"],
            "Command": ["-c", "echo test"],
            "WorkingDirectory": "/app1",
        },
    )
    same_keys(created, recorded(test, "create-image-with-config-response"))
    client.get_waiter("function_active_v2").wait(FunctionName=fn, WaiterConfig={"Delay": 1})
    got = client.get_function(FunctionName=fn)
    same_keys(got, recorded(test, "get-function-code-with-config-response"))
    digest = got["Configuration"]["CodeSha256"]
    assert got["Code"]["ImageUri"] == f"{IMAGE}:latest"
    assert got["Code"]["ResolvedImageUri"] == f"{IMAGE}@sha256:{digest}"

    changed = client.update_function_configuration(
        FunctionName=fn, ImageConfig={"Command": ["-c", "echo test1"], "WorkingDirectory": "/app1"}
    )
    same_keys(changed, recorded(test, "update-function-code-response"))
    wait_updated(client, fn)
    removed = client.update_function_configuration(FunctionName=fn, ImageConfig={})
    same_keys(removed, recorded(test, "update-function-code-delete-imageconfig-response"))
    wait_updated(client, fn)

    crud = "TestLambdaImages::test_lambda_image_crud"
    r = error_of(client.update_function_code, FunctionName=fn, ZipFile=SECOND_ZIP)
    same_error(r, recorded(crud, "image-to-zipfile-error"))
    new = client.update_function_code(FunctionName=fn, ImageUri=f"{IMAGE}2:latest")
    same_keys(new, recorded(crud, "update-function-code-response"))
    assert new["CodeSha256"] != digest
    wait_updated(client, fn)
    assert client.get_function(FunctionName=fn)["Code"]["ImageUri"] == f"{IMAGE}2:latest"


def test_zip_function_refuses_an_image(client: Any) -> None:
    fn = fn_name()
    create_echo(client, fn)
    r = error_of(client.update_function_code, FunctionName=fn, ImageUri=f"{IMAGE}:latest")
    same_error(
        r, recorded("TestLambdaImages::test_lambda_zip_file_to_image", "zipfile-to-image-error")
    )


# -- listing ---------------------------------------------------------------------


def test_list_functions_all_versions_and_pages(client: Any) -> None:
    test = "TestLambdaFunction::test_list_functions"
    first, second = fn_name(), fn_name()
    create_echo(client, first, Publish=True, **AS_RECORDED)
    create_echo(client, second, **AS_RECORDED)
    every = [
        f
        for page in client.get_paginator("list_functions").paginate(
            FunctionVersion="ALL", PaginationConfig={"PageSize": 1}
        )
        for f in page["Functions"]
        if f["FunctionName"] in (first, second)
    ]
    aws_all = recorded(test, "list_all")["Functions"]
    # In name order, each function's $LATEST before its versions.
    expected = sorted([(first, "$LATEST"), (first, "1"), (second, "$LATEST")])
    assert [(f["FunctionName"], f["Version"]) for f in every] == expected
    # Compared with AWS's entries in its order (first's two, then second's).
    logical = [(first, "$LATEST"), (first, "1"), (second, "$LATEST")]
    every = [every[expected.index(key)] for key in logical]
    for ours, aws in zip(every, aws_all, strict=True):
        assert set(ours) == set(aws)
    assert every[0]["FunctionArn"] == f"{ARN}:function:{first}:$LATEST"
    assert every[1]["FunctionArn"] == f"{ARN}:function:{first}:1"

    default = [
        f
        for page in client.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 1}
        )
        for f in page["Functions"]
        if f["FunctionName"] in (first, second)
    ]
    aws_default = recorded(test, "list_default")["Functions"]
    assert [f["FunctionArn"] for f in default] == sorted(
        [f"{ARN}:function:{first}", f"{ARN}:function:{second}"]
    )
    for ours, aws in zip(default, aws_default, strict=True):
        assert set(ours) == set(aws)
    assert client.list_functions(MasterRegion="us-west-2", FunctionVersion="ALL")["Functions"] == []
    r = error_of(client.list_functions, FunctionVersion="invalid")
    same_error(r, recorded(test, "list_functions_invalid_functionversion"))


def test_get_function_from_another_region(client: Any) -> None:
    fn = fn_name()
    create_echo(client, fn)
    r = error_of(
        client.get_function, FunctionName=f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{fn}"
    )
    same_error(
        r,
        recorded(
            "TestLambdaFunction::test_get_function_wrong_region[get_function]",
            "wrong_region_exception",
        ),
        **{"<wrong-region>": "us-west-2"},
    )


# -- roles ------------------------------------------------------------------------

# AWS's answer (Lambda, 403 AccessDeniedException) when a function is given a
# role of another account; not recorded, quoted in public reports of it.
CROSS_ACCOUNT_ROLE = "Cross-account pass role is not allowed."


def assert_cross_account_refused(r: dict[str, Any]) -> None:
    assert status(r) == 403
    assert r["Error"]["Code"] == "AccessDeniedException"
    assert r["Error"]["Message"] == CROSS_ACCOUNT_ROLE


def test_check_role_account() -> None:
    check_role_account(ROLE, ACCOUNT)
    check_role_account(f"arn:aws-us-gov:iam::{ACCOUNT}:role/path/r", ACCOUNT)
    with pytest.raises(LambdaError) as err:
        check_role_account("arn:aws:iam::123456789012:role/lambda-role", ACCOUNT)
    assert (err.value.code, err.value.message) == ("AccessDeniedException", CROSS_ACCOUNT_ROLE)


def test_a_role_of_another_account_is_refused(client: Any) -> None:
    other = "arn:aws:iam::123456789012:role/lambda-role"
    fn = fn_name()
    r = error_of(
        client.create_function,
        FunctionName=fn,
        Runtime="python3.12",
        Role=other,
        Handler="app.handler",
        Code={"ZipFile": SECOND_ZIP},
    )
    assert_cross_account_refused(r)
    r = error_of(client.get_function, FunctionName=fn)
    assert r["Error"]["Code"] == "ResourceNotFoundException"

    create_echo(client, fn)
    r = error_of(client.update_function_configuration, FunctionName=fn, Role=other)
    assert_cross_account_refused(r)
    config = client.get_function_configuration(FunctionName=fn)
    assert (config["Role"], config["LastUpdateStatus"]) == (ROLE, "Successful")

    # A capacity provider's operator role is passed to Lambda alike.
    r = error_of(
        client.create_capacity_provider,
        CapacityProviderName=f"cp-{uuid.uuid4().hex[:8]}",
        VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123"]},
        PermissionsConfig={"CapacityProviderOperatorRoleArn": other},
    )
    assert_cross_account_refused(r)


# -- S3 ---------------------------------------------------------------------------


def test_s3_code_without_an_endpoint_is_a_missing_bucket(client: Any) -> None:
    test = "TestLambdaFunction::test_lambda_code_location_s3_errors"
    r = error_of(
        client.create_function,
        FunctionName=fn_name(),
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"S3Bucket": "no-such-bucket", "S3Key": "code.zip"},
    )
    same_error(r, recorded(test, "create-error-wrong-bucket"))
    fn = fn_name()
    create_echo(client, fn)
    r = error_of(client.update_function_code, FunctionName=fn, S3Bucket="no-such-bucket", S3Key="k")
    same_error(r, recorded(test, "update-error-wrong-bucket"))


class FakeS3(BaseHTTPRequestHandler):
    """Path-style GetObject of one bucket, with S3's XML errors."""

    objects: dict[str, bytes] = {}

    def do_GET(self) -> None:
        bucket, _, key = self.path.lstrip("/").partition("/")
        key = key.split("?", 1)[0]
        if bucket != "code":
            self._error(404, "NoSuchBucket", "The specified bucket does not exist")
        elif key not in self.objects:
            self._error(404, "NoSuchKey", "The specified key does not exist.")
        else:
            data = self.objects[key]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _error(self, code: int, name: str, message: str) -> None:
        payload = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{name}</Code>"
            f"<Message>{message}</Message></Error>"
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_s3() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A process with no AWS credentials anywhere botocore looks, as a control
    plane beside an S3 emulator usually is (and no instance metadata lookup,
    which would leave the machine)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_s3_fetch_through_botocore(fake_s3: str, no_aws_credentials: None) -> None:
    FakeS3.objects = {"app.zip": SECOND_ZIP}
    settings = Settings(s3_endpoint=fake_s3)
    assert asyncio.run(fetch_s3(settings, "code", "app.zip", None)) == SECOND_ZIP
    test = "TestLambdaFunction::test_lambda_code_location_s3_errors"
    for bucket, key, step in (
        ("other", "app.zip", "create-error-wrong-bucket"),
        ("code", "missing.zip", "create-error-wrong-key"),
    ):
        with pytest.raises(LambdaError) as err:
            asyncio.run(fetch_s3(settings, bucket, key, None))
        aws = recorded(test, step)["Error"]
        assert (err.value.code, err.value.message) == (aws["Code"], aws["Message"])


def test_layer_and_function_code_from_s3_without_credentials(
    fake_s3: str, no_aws_credentials: None, tmp_path: Path
) -> None:
    layer_zip = zip_bytes({"python/helper.py": "VALUE = 42\n"})
    FakeS3.objects = {"app.zip": SECOND_ZIP, "layer.zip": layer_zip, "text.zip": b"not a zip"}
    api_ = Api(
        ResourceStore(tmp_path / "state.db"),
        CodeStore(tmp_path / "code"),
        HeldScheduler(),  # type: ignore[arg-type]
        Settings(s3_endpoint=fake_s3),
    )
    try:
        function = run_handler(
            api_,
            "CreateFunction",
            {
                "FunctionName": fn_name(),
                "Runtime": "python3.12",
                "Role": ROLE,
                "Handler": "app.handler",
                "Code": {"S3Bucket": "code", "S3Key": "app.zip"},
            },
        )
        assert function.code_size == len(SECOND_ZIP)
        # The layer's package comes through the same fetch.
        layer = run_handler(
            api_,
            "PublishLayerVersion",
            {"LayerName": "from-s3", "Content": {"S3Bucket": "code", "S3Key": "layer.zip"}},
        )
        assert layer.version == 1
        assert layer.content.code_size == len(layer_zip)
        assert api_.code.path(layer.content.code_sha256).read_bytes() == layer_zip
        # ... with the same errors as a function's code.
        for bucket, key, step in (
            ("other", "layer.zip", "create-error-wrong-bucket"),
            ("code", "missing.zip", "create-error-wrong-key"),
        ):
            with pytest.raises(LambdaError) as err:
                run_handler(
                    api_,
                    "PublishLayerVersion",
                    {"LayerName": "from-s3", "Content": {"S3Bucket": bucket, "S3Key": key}},
                )
            aws = recorded("TestLambdaFunction::test_lambda_code_location_s3_errors", step)
            assert (err.value.code, err.value.message) == (
                aws["Error"]["Code"],
                aws["Error"]["Message"],
            )
        # A package that is not a zip is refused at publish, as for a function.
        with pytest.raises(LambdaError) as err:
            run_handler(
                api_,
                "PublishLayerVersion",
                {"LayerName": "from-s3", "Content": {"S3Bucket": "code", "S3Key": "text.zip"}},
            )
        aws = recorded("TestLambdaFunction::test_create_lambda_exceptions", "invalid_zip_exc")
        assert (err.value.code, err.value.message) == (
            aws["Error"]["Code"],
            aws["Error"]["Message"],
        )
        listed = run_handler(api_, "ListLayerVersions", {"LayerName": "from-s3"})
        assert [v.version for v in listed.layer_versions] == [1]
    finally:
        api_.store.close()


def test_no_environment_unless_one_is_given(client: Any) -> None:
    """AWS answers no Environment for a function created without one
    (recorded: test_lambda_code_location_zipfile), and the empty map for one
    created with an empty one."""
    test = "TestLambdaFunction::test_lambda_code_location_zipfile"
    recorded_keys = set(body(recorded_step(test, "create-response-zip-file")))
    bare = f"env-none-{uuid.uuid4().hex[:8]}"
    created = create_echo(client, bare)
    assert "Environment" not in created
    assert set(body(created)) == recorded_keys
    assert "Environment" not in client.get_function_configuration(FunctionName=bare)
    assert "Environment" not in client.get_function(FunctionName=bare)["Configuration"]
    empty = f"env-empty-{uuid.uuid4().hex[:8]}"
    created = create_echo(client, empty, Environment={"Variables": {}})
    assert created["Environment"] == {"Variables": {}}
    assert client.get_function_configuration(FunctionName=empty)["Environment"] == {"Variables": {}}
