"""Code signing configurations through boto3, compared with AWS's recorded
answers (TestCodeSigningConfig in test_lambda_api.snapshot.json): shapes
(key sets), status codes, error codes and messages."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import create_echo

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_api.snapshot.json").read_text()
)
TEST = "tests/aws/services/lambda_/test_lambda_api.py::TestCodeSigningConfig::"
ACCOUNT = "000000000000"
REGION = "us-east-1"
PUBLISHER = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/test"


def recorded(test: str, step: str, **placeholders: str) -> dict[str, Any]:
    text = json.dumps(RECORDED[TEST + test]["recorded-content"][step])
    text = text.replace("111111111111", ACCOUNT)
    for key, value in {"partition": "aws", "region": REGION, **placeholders}.items():
        text = text.replace(f"<{key}>", value)
    found: dict[str, Any] = json.loads(text)
    return found


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def status(response: dict[str, Any]) -> int:
    code: int = response["ResponseMetadata"]["HTTPStatusCode"]
    return code


def same_error(error: ClientError, expected: dict[str, Any]) -> None:
    got = error.response
    assert status(got) == status(expected)
    assert got["Error"]["Code"] == expected["Error"]["Code"]
    assert got["Error"]["Message"] == expected["Error"]["Message"]
    # The same body members: AWS leaves `Type` out of some of these.
    assert set(body(got)) - {"Error"} == set(body(expected)) - {"Error"}


def same_config(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """A CodeSigningConfig as recorded, but for its generated id and date."""
    assert got.keys() == expected.keys()
    for key in ("AllowedPublishers", "CodeSigningPolicies", "Description"):
        assert got[key] == expected[key]
    assert got["CodeSigningConfigId"].startswith("csc-")
    assert len(got["CodeSigningConfigId"]) == 21
    assert got["CodeSigningConfigArn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:{got['CodeSigningConfigId']}"
    )


def create_csc(client: Any, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = client.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [PUBLISHER]},
        **extra,
    )
    return response


@pytest.fixture(scope="module")
def function(cluster: Any) -> str:
    name = f"csc-{uuid.uuid4().hex[:10]}"
    create_echo(cluster.client(), name)
    return name


def test_function_code_signing_config_lifecycle(client: Any, function: str) -> None:
    test = "test_function_code_signing_config"
    created = create_csc(client, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})
    assert status(created) == 201
    same_config(
        created["CodeSigningConfig"],
        recorded(test, "create_code_signing_config")["CodeSigningConfig"],
    )
    arn = created["CodeSigningConfig"]["CodeSigningConfigArn"]
    csc_id = created["CodeSigningConfig"]["CodeSigningConfigId"]
    fill = {"resource:1": csc_id, "function-name:1": function}

    updated = client.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"}
    )
    assert status(updated) == 200
    same_config(
        updated["CodeSigningConfig"],
        recorded(test, "update_code_signing_config")["CodeSigningConfig"],
    )

    got = client.get_code_signing_config(CodeSigningConfigArn=arn)
    same_config(
        got["CodeSigningConfig"], recorded(test, "get_code_signing_config")["CodeSigningConfig"]
    )

    put = client.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName=function)
    assert body(put) == body(recorded(test, "put_function_code_signing_config", **fill))
    got_fn = client.get_function_code_signing_config(FunctionName=function)
    assert body(got_fn) == body(recorded(test, "get_function_code_signing_config", **fill))

    listed = [
        c
        for page in client.get_paginator("list_code_signing_configs").paginate()
        for c in page["CodeSigningConfigs"]
    ]
    mine = [c for c in listed if c["CodeSigningConfigArn"] == arn]
    assert len(mine) == 1
    same_config(mine[0], recorded(test, "list_code_signing_configs"))

    by_csc = client.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)
    assert body(by_csc) == body(recorded(test, "list_functions_by_code_signing_config", **fill))

    # A configuration in use cannot be deleted.
    with pytest.raises(ClientError) as e:
        client.delete_code_signing_config(CodeSigningConfigArn=arn)
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"

    deleted_fn = client.delete_function_code_signing_config(FunctionName=function)
    assert status(deleted_fn) == status(recorded(test, "delete_function_code_signing_config"))
    assert body(client.get_function_code_signing_config(FunctionName=function)) == {}
    deleted = client.delete_code_signing_config(CodeSigningConfigArn=arn)
    assert status(deleted) == status(recorded(test, "delete_code_signing_config"))
    with pytest.raises(ClientError) as e:
        client.get_code_signing_config(CodeSigningConfigArn=arn)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_code_signing_not_found_errors(client: Any, function: str) -> None:
    test = "test_code_signing_not_found_excs"
    created = create_csc(client, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})
    arn = created["CodeSigningConfig"]["CodeSigningConfigArn"]
    invalid = arn[:-1] + ("x" if arn[-1] != "x" else "y")
    fill = {"csc_arn_invalid": invalid}
    missing_fn = "csc-test-doesnotexist"

    def error(step: str, call: Any, **kwargs: Any) -> None:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        same_error(e.value, recorded(test, step, **fill))

    error("delete_csc_notfound", client.delete_code_signing_config, CodeSigningConfigArn=invalid)
    nothing = client.delete_function_code_signing_config(FunctionName=function)
    assert status(nothing) == status(recorded(test, "nothing_to_delete_response"))
    error(
        "delete_function_csc_fnnotfound",
        client.delete_function_code_signing_config,
        FunctionName=missing_fn,
    )
    error(
        "put_function_csc_invalid_fnname",
        client.put_function_code_signing_config,
        FunctionName=missing_fn,
        CodeSigningConfigArn=arn,
    )
    error(
        "put_function_csc_invalid_csc_arn",
        client.put_function_code_signing_config,
        FunctionName=function,
        CodeSigningConfigArn=invalid,
    )
    error(
        "put_function_csc_invalid_both",
        client.put_function_code_signing_config,
        FunctionName=missing_fn,
        CodeSigningConfigArn=invalid,
    )
    error(
        "update_csc_invalid_csc_arn",
        client.update_code_signing_config,
        CodeSigningConfigArn=invalid,
        Description="new-description",
    )
    error("update_csc_noupdates", client.update_code_signing_config, CodeSigningConfigArn=invalid)
    unchanged = client.update_code_signing_config(CodeSigningConfigArn=arn)
    assert status(unchanged) == 200
    same_config(
        unchanged["CodeSigningConfig"],
        recorded(test, "update_csc_noupdate_response")["CodeSigningConfig"],
    )
    assert (
        unchanged["CodeSigningConfig"]["LastModified"]
        == created["CodeSigningConfig"]["LastModified"]
    )
    error("get_csc_invalid", client.get_code_signing_config, CodeSigningConfigArn=invalid)
    without = client.get_function_code_signing_config(FunctionName=function)
    assert status(without) == 200 and body(without) == {}
    error(
        "get_function_csc_nonexistingfn",
        client.get_function_code_signing_config,
        FunctionName=missing_fn,
    )
    empty = client.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)
    assert body(empty) == body(recorded(test, "list_functions_by_csc_fnwithoutcsc"))
    error(
        "list_functions_by_csc_invalid_cscarn",
        client.list_functions_by_code_signing_config,
        CodeSigningConfigArn=invalid,
    )
    client.delete_code_signing_config(CodeSigningConfigArn=arn)


def test_get_function_code_signing_config_of_missing_function(client: Any) -> None:
    name = f"i-dont-exist-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as e:
        client.get_function_code_signing_config(FunctionName=name)
    expected = json.loads(
        json.dumps(
            RECORDED[
                "tests/aws/services/lambda_/test_lambda_api.py::TestLambdaFunction::"
                "test_ops_on_nonexisting_fn[get_function_code_signing_config]"
            ]["recorded-content"]["not_found_exception"]
        )
        .replace("111111111111", ACCOUNT)
        .replace("<partition>", "aws")
        .replace("<region>", REGION)
        .replace("<nonexisting-fn-name>", name)
    )
    same_error(e.value, expected)


def test_defaults_tags_and_paging(client: Any) -> None:
    created = [create_csc(client, Tags={"team": "a"})["CodeSigningConfig"] for _ in range(3)]
    # AWS's default policy is Warn.
    assert created[0]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    arns = {c["CodeSigningConfigArn"] for c in created}
    assert client.list_tags(Resource=created[0]["CodeSigningConfigArn"])["Tags"] == {"team": "a"}
    pages = list(
        client.get_paginator("list_code_signing_configs").paginate(PaginationConfig={"PageSize": 1})
    )
    seen = [c["CodeSigningConfigArn"] for p in pages for c in p["CodeSigningConfigs"]]
    assert len(seen) == len(set(seen)), "no configuration listed twice"
    assert arns <= set(seen)
    assert len(pages) >= 3
    for c in created:
        client.delete_code_signing_config(CodeSigningConfigArn=c["CodeSigningConfigArn"])
    with pytest.raises(ClientError) as e:
        client.list_tags(Resource=created[0]["CodeSigningConfigArn"])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
