"""Validation and function-name errors against AWS's recorded answers.

Every request goes the way boto3 sends it: serialised by botocore, routed,
parsed, validated, its function name resolved, the error serialised, and the
answer parsed back by botocore; what boto3 would show is compared with what
AWS answered (test_lambda_api.snapshot.json and test_lambda.snapshot.json).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lambdafleet.gateway import arns, protocol, validation
from lambdafleet.gateway.protocol import AwsError, ValidationError
from test_protocol import MODEL, boto_error, gateway_parse

# AWS's recorded answers (see the folder's README); a missing folder fails the
# tests loudly rather than skipping the oracle.
# Real AWS answers recorded by LocalStack (Apache-2.0), shipped with the tests.
RECORDED = Path(__file__).parent / "data" / "aws-recorded"
API = json.loads((RECORDED / "test_lambda_api.snapshot.json").read_text())
BEHAVIOUR = json.loads((RECORDED / "test_lambda.snapshot.json").read_text())
API_PREFIX = "tests/aws/services/lambda_/test_lambda_api.py::"
BEHAVIOUR_PREFIX = "tests/aws/services/lambda_/test_lambda.py::"

REGION = "us-east-1"
ACCOUNT = "111111111111"  # the account the recordings normalise to
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
ZIP = b"PK\x05\x06" + b"\x00" * 18


def expand(recorded: Any, placeholders: dict[str, str] | None = None) -> Any:
    """A recorded value with the recorder's placeholders put back."""
    text = json.dumps(recorded)
    for placeholder, value in {
        "<partition>": "aws",
        "<region>": REGION,
        **(placeholders or {}),
    }.items():
        text = text.replace(placeholder, value)
    text = re.sub(r"<a:len\((\d+)\)>", lambda m: "a" * int(m.group(1)), text)
    return json.loads(text)


def through_gateway(
    op_name: str, params: dict[str, Any], region: str = REGION
) -> dict[str, Any] | None:
    """What boto3 shows for `params`, up to the point where a handler would
    touch stored state (a function that does not exist: not found); None when
    the request gets that far without an error and needs no lookup."""
    op = MODEL.operation_model(op_name)
    try:
        parsed = gateway_parse(op, params)
        validation.validate(op, parsed)
        if "FunctionName" in parsed:
            ref = arns.parse_function_identifier(
                parsed["FunctionName"], parsed.get("Qualifier"), region, ACCOUNT, op_name
            )
            if op_name in ("CreateFunction", "UpdateFunctionConfiguration") and "Runtime" in parsed:
                validation.check_runtime(parsed["Runtime"])
            if op_name != "CreateFunction":
                raise arns.function_not_found(ref, op_name)
        return None
    except AwsError as error:
        return boto_error(op, error)


def answer(response: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A recorded or parsed error answer, without its transport details."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return body, response["ResponseMetadata"]["HTTPStatusCode"]


def count_and_errors(code: str, message: str) -> dict[str, Any]:
    """The form test_function_name_and_qualifier_validation records errors in."""
    m = re.fullmatch(r"(\d+) validation errors? detected: (.*)", message, re.DOTALL)
    if m is None:
        return {"Code": code, "Message": message}
    return {"Code": code, "Count": int(m.group(1)), "Errors": m.group(2).split("; ")}


# --------------------------------------------------------------------------
# test_function_name_and_qualifier_validation: every recorded entry
# --------------------------------------------------------------------------

# The scenarios of LocalStack's test, reconstructed from what the recordings
# show of each input. The `...0`/`...1` cases and
# function_name_and_qualifier_too_long come from its 2024 version.
NAME_SCENARIOS: dict[str, tuple[str, str | None]] = {
    "function_name_is_single_invalid": ("*", None),
    "invalid_characters_in_function_name": ("my-function!", None),
    "invalid_characters_in_qualifier": ("my-function", "invalid!"),
    "qualifier_too_long": ("my-function", "a" * 129),
    "qualifier_too_long0": ("my-function", "a" * 129),
    "qualifier_too_long1": ("my-function", "a" * 65),
    # The recordings fit both `my-function` + Qualifier and this shorthand.
    "function_name_and_qualifier_too_long": ("my-function:" + "a" * 65, None),
    "invalid_account_id_in_partial_arn": ("invalid-account:function:my-function", None),
    "invalid_region_in_arn": (
        f"arn:aws:lambda:invalid-region:{ACCOUNT}:function:my-function",
        None,
    ),
    "non_lambda_arn": (f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance:i-1234567890abcdef0", None),
    "function_name_too_long": ("a" * 65, None),
    "function_name_too_long_and_invalid_region": (
        f"arn:aws:lambda:invalid-region:{ACCOUNT}:function:my-function" + "a" * 170,
        None,
    ),
    "full_arn_and_qualifier_too_long_and_invalid_region": (
        f"arn:aws:lambda:invalid-region:{ACCOUNT}:function:my-function-" + "a" * 170,
        "a" * 129,
    ),
    "full_arn_with_multiple_qualifiers": (f"{ARN}:my-function:1:2", None),
    "incomplete_arn": (ARN, None),
    "partial_arn_with_extra_qualifier": ("function:my-function:$LATEST:extra", None),
    "latest_version_with_additional_qualifier": (f"{ARN}:my-function:$LATEST", "1"),
    "lowercase_latest_qualifier": (f"{ARN}:my-function", "$latest"),
    "missing_region_in_arn": (f"arn:aws:lambda::{ACCOUNT}:function:my-function", None),
    "missing_account_id_in_arn": (f"arn:aws:lambda:{REGION}::function:my-function", None),
    "misspelled_latest_in_arn": (f"{ARN}:my-function:$LATES", None),
}
OPERATIONS = {
    "get_function": "GetFunction",
    "delete_function": "DeleteFunction",
    "invoke": "Invoke",
    "create_function": "CreateFunction",
}
NAME_CASES = sorted(
    key[len(API_PREFIX) :] for key in API if "::test_function_name_and_qualifier_validation[" in key
)


def name_case_request(scenario: str, client_method: str) -> tuple[str, dict[str, Any]]:
    function_name, qualifier = NAME_SCENARIOS[scenario]
    op_name = OPERATIONS[client_method]
    if op_name == "CreateFunction":
        # CreateFunction has no Qualifier: the test appends it to the name.
        name = f"{function_name}:{qualifier}" if qualifier is not None else function_name
        return op_name, {
            "FunctionName": name, "Role": ROLE, "Runtime": "python3.12",
            "Handler": "index.handler", "Code": {"ZipFile": ZIP},
        }  # fmt: skip
    params: dict[str, Any] = {"FunctionName": function_name}
    if qualifier is not None:
        params["Qualifier"] = qualifier
    return op_name, params


def test_every_recorded_name_case_is_covered() -> None:
    assert len(NAME_CASES) == 84
    for case in NAME_CASES:
        scenario, client_method = case.split("[")[1].rstrip("]").rsplit("-", 1)
        assert scenario in NAME_SCENARIOS and client_method in OPERATIONS, case


@pytest.mark.parametrize("case", NAME_CASES, ids=lambda c: c.split("[")[1].rstrip("]"))
def test_function_name_and_qualifier_validation(case: str) -> None:
    scenario, client_method = case.split("[")[1].rstrip("]").rsplit("-", 1)
    recorded_steps = API[API_PREFIX + case]["recorded-content"]
    op_name, params = name_case_request(scenario, client_method)
    response = through_gateway(op_name, params)
    if not recorded_steps:
        # AWS accepted this CreateFunction (nothing was recorded); so do we.
        assert op_name == "CreateFunction" and response is None
        return
    (recorded,) = recorded_steps.values()
    assert response is not None, "accepted what AWS refused"
    got = count_and_errors(response["Error"]["Code"], response["Error"]["Message"])
    assert got == expand(recorded)


# --------------------------------------------------------------------------
# Other recorded answers: validation and function names
# --------------------------------------------------------------------------

LONG_ARN = f"{ARN}:" + "a" * (140 - len(f"{ARN}:") + 1)
CREATE = {
    "FunctionName": "invalid-function", "Handler": "index.handler", "Code": {"ZipFile": ZIP},
    "PackageType": "Zip", "Role": ROLE, "Runtime": "python3.9",
}  # fmt: skip
LAYER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:my-layer"
ESM_UUID = "a1b2c3d4-1111-2222-3333-444455556666"
WRONG_REGION = "eu-central-1"


@dataclass(frozen=True)
class Recorded:
    """One recorded AWS answer and the request that produced it."""

    test: str
    step: str
    operation: str
    params: dict[str, Any]
    placeholders: dict[str, str] = field(default_factory=dict)
    snapshot: str = "api"

    @property
    def id(self) -> str:
        return f"{self.test.split('::')[-1]}-{self.step}"

    def answer(self) -> dict[str, Any]:
        snapshot, prefix = (
            (API, API_PREFIX) if self.snapshot == "api" else (BEHAVIOUR, BEHAVIOUR_PREFIX)
        )
        recorded: dict[str, Any] = expand(
            snapshot[prefix + self.test]["recorded-content"][self.step], self.placeholders
        )
        return recorded


FN_ARNS = "TestLambdaFunction::test_function_arns"
LAYERS = "TestLambdaLayer::test_layer_exceptions"
ROUTING = "TestLambdaAlias::test_notfound_and_invalid_routingconfigs"
CONCURRENCY = "TestLambdaReservedConcurrency::test_function_concurrency_exceptions"
PERMISSIONS = "TestLambdaPermissions::test_permission_exceptions"
CREATE_EXC = "TestLambdaFunction::test_create_lambda_exceptions"
UPDATE_EXC = "TestLambdaFunction::test_update_lambda_exceptions"
UPDATE = "UpdateFunctionConfiguration"
LAYER = {"LayerName": "my-layer", "Content": {"ZipFile": ZIP}}
PERMISSION = {
    "FunctionName": "f",
    "Action": "lambda:InvokeFunction",
    "Principal": "s3.amazonaws.com",
}
ALIAS = {"FunctionName": "f", "Name": "custom", "FunctionVersion": "1"}
TAGS = {"Tags": {"a": "b"}}


def weights(w: dict[str, float]) -> dict[str, Any]:
    return {**ALIAS, "RoutingConfig": {"AdditionalVersionWeights": w}}


RECORDED_CASES = [
    Recorded(CREATE_EXC, "invalid_role_arn_exc", "CreateFunction", {**CREATE, "Role": "r1"}),
    Recorded(
        CREATE_EXC,
        "invalid_runtime_exc",
        "CreateFunction",
        {**CREATE, "Runtime": "non-existent-runtime"},
    ),
    Recorded(
        CREATE_EXC, "uppercase_runtime_exc", "CreateFunction", {**CREATE, "Runtime": "PYTHON3.9"}
    ),
    Recorded(
        CREATE_EXC,
        "multiple_architectures",
        "CreateFunction",
        {**CREATE, "Architectures": ["x86_64", "arm64"]},
    ),
    Recorded(
        CREATE_EXC,
        "uppercase_architecture",
        "CreateFunction",
        {**CREATE, "Architectures": ["X86_64"]},
    ),
    Recorded(UPDATE_EXC, "invalid_role_arn_exc", UPDATE, {"FunctionName": "f", "Role": "r1"}),
    Recorded(
        UPDATE_EXC,
        "invalid_runtime_exc",
        UPDATE,
        {"FunctionName": "f", "Runtime": "non-existent-runtime"},
    ),
    Recorded(
        UPDATE_EXC, "uppercase_runtime_exc", UPDATE, {"FunctionName": "f", "Runtime": "PYTHON3.9"}
    ),
    Recorded(
        "TestLambdaFunction::test_list_functions",
        "list_functions_invalid_functionversion",
        "ListFunctions",
        {"FunctionVersion": "invalid"},
    ),
    Recorded(
        FN_ARNS,
        "invalid_function_name_exc",
        "CreateFunction",
        {**CREATE, "FunctionName": "invalid:function:name"},
    ),
    Recorded(
        FN_ARNS, "long_function_name_exc", "CreateFunction", {**CREATE, "FunctionName": "a" * 65}
    ),
    Recorded(
        FN_ARNS,
        "long_function_arn_exc",
        "CreateFunction",
        {**CREATE, "FunctionName": LONG_ARN},
        {"<function-name>": LONG_ARN.rsplit(":", 1)[1]},
    ),
    Recorded(
        FN_ARNS,
        "function_arn_other_region_exc",
        "CreateFunction",
        {**CREATE, "FunctionName": f"arn:aws:lambda:ap-southeast-1:{ACCOUNT}:function:f"},
    ),
    Recorded(
        FN_ARNS,
        "function_arn_other_account_exc",
        "CreateFunction",
        {**CREATE, "FunctionName": f"arn:aws:lambda:{REGION}:123456789012:function:f"},
    ),
    Recorded(
        "TestLambdaFunction::test_invalid_invoke",
        "invoke_function_name_pattern_exc",
        "Invoke",
        {"FunctionName": f"arn:aws:lambda:{REGION}:123400000000@function:myfn"},
    ),
    Recorded(
        CONCURRENCY,
        "put_function_concurrency_with_qualified_arn",
        "PutFunctionConcurrency",
        {"FunctionName": f"{ARN}:fn:1", "ReservedConcurrentExecutions": 1},
    ),
    Recorded(
        CONCURRENCY,
        "put_function_concurrency_with_function_name_doesnotexist",
        "PutFunctionConcurrency",
        {"FunctionName": "doesnotexist", "ReservedConcurrentExecutions": 1},
    ),
    Recorded(
        "TestLambdaFunction::test_delete_on_nonexisting_version",
        "delete_function_response_non_existent_with_qualifier",
        "DeleteFunction",
        {"FunctionName": "i-exist", "Qualifier": "1233"},
        {"<fn-name>": "i-exist"},
    ),
    Recorded(
        LAYERS,
        "list_layers_exc_compatibleruntime_invalid",
        "ListLayers",
        {"CompatibleRuntime": "runtimedoesnotexist"},
    ),
    Recorded(
        LAYERS,
        "list_layers_exc_compatiblearchitecture_invalid",
        "ListLayers",
        {"CompatibleArchitecture": "archdoesnotexist"},
    ),
    Recorded(
        LAYERS,
        "get_layer_version_by_arn_exc_invalidarn",
        "GetLayerVersionByArn",
        {"Arn": LAYER_ARN},
        {"<resource:1>": "my-layer"},
    ),
    Recorded(
        LAYERS,
        "publish_layer_version_exc_invalid_runtime_arch",
        "PublishLayerVersion",
        {
            **LAYER,
            "CompatibleRuntimes": ["invalidruntime"],
            "CompatibleArchitectures": ["invalidarch"],
        },
    ),
    Recorded(
        LAYERS,
        "publish_layer_version_exc_partially_invalid_values",
        "PublishLayerVersion",
        {
            **LAYER,
            "CompatibleRuntimes": ["invalidruntime", "invalidruntime2", "nodejs20.x"],
            "CompatibleArchitectures": ["invalidarch", "x86_64"],
        },
    ),
    Recorded(
        "TestLambdaLayer::test_layer_policy_exceptions",
        "layer_permission_action_invalid",
        "AddLayerVersionPermission",
        {
            "LayerName": "my-layer",
            "VersionNumber": 1,
            "StatementId": "s1",
            "Action": "*",
            "Principal": "*",
        },
    ),
    Recorded(
        "TestLambdaLayer::test_layer_function_exceptions",
        "add_layer_arn_without_version_exc",
        UPDATE,
        {"FunctionName": "f", "Layers": [LAYER_ARN]},
        {"<resource:1>": "my-layer"},
    ),
    Recorded(
        "TestLambdaEventSourceMappings::test_create_event_source_validation",
        "invalid_starting_position",
        "CreateEventSourceMapping",
        {
            "FunctionName": "f",
            "EventSourceArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/stream/s",
            "StartingPosition": "invalid",
        },
    ),
    Recorded(
        "TestLambdaEventSourceMappings::test_create_event_source_validation_kinesis",
        "invalid_starting_position",
        "CreateEventSourceMapping",
        {
            "FunctionName": "f",
            "EventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s",
            "StartingPosition": "invalid",
        },
    ),
    Recorded(
        "TestLambdaSnapStart::test_snapstart_exceptions",
        "create_function_invalid_snapstart_apply",
        "CreateFunction",
        {**CREATE, "Runtime": "java11", "SnapStart": {"ApplyOn": "invalidOption"}},
    ),
    Recorded(
        "TestLambdaAlias::test_alias_naming",
        "create_alias_number_exception",
        "CreateAlias",
        {**ALIAS, "Name": "2024"},
    ),
    Recorded(ROUTING, "routing_config_exc_toohigh", "CreateAlias", weights({"2": 2.0})),
    Recorded(ROUTING, "routing_config_exc_subzero", "CreateAlias", weights({"2": -1.0})),
    Recorded(
        ROUTING, "routing_config_exc_version_latest", "CreateAlias", weights({"$LATEST": 0.5})
    ),
    Recorded(
        "TestLambdaRecursion::test_put_function_recursion_config_invalid_value",
        "put_recursion_invalid_value_error",
        "PutFunctionRecursionConfig",
        {"FunctionName": "f", "RecursiveLoop": "InvalidValue"},
    ),
    Recorded(
        "TestLambdaTags::test_tag_exceptions",
        "tag_lambda_invalidarn",
        "TagResource",
        {"Resource": "arn:aws:something", **TAGS},
    ),
    Recorded(
        "TestLambdaTags::test_tag_exceptions",
        "untag_empty_keys",
        "UntagResource",
        {"Resource": f"{ARN}:f", "TagKeys": []},
    ),
    Recorded(
        "TestLambdaTag::test_tag_exceptions[lambda_function]",
        "invalid_arn_exception",
        "TagResource",
        {"Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:foobar:res", **TAGS},
        {"<resource-name>": "res"},
    ),
    Recorded(
        "TestLambdaTag::test_tag_exceptions[event_source_mapping]",
        "aliased_arn_exception",
        "TagResource",
        {
            "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{ESM_UUID}:alias",
            **TAGS,
        },
        {"<resource-name>": ESM_UUID},
    ),
    Recorded(
        "TestLambdaTag::test_tag_exceptions[capacity_provider]",
        "aliased_arn_exception",
        "TagResource",
        {"Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider:cp:alias", **TAGS},
        {"<resource-name>": "cp"},
    ),
    Recorded(
        "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions",
        "put_provisioned_invalid_param_0",
        "PutProvisionedConcurrencyConfig",
        {"FunctionName": "f", "Qualifier": "1", "ProvisionedConcurrentExecutions": 0},
    ),
    Recorded(
        PERMISSIONS,
        "add_permission_invalid_statement_id",
        "AddPermission",
        {**PERMISSION, "StatementId": "example.com"},
    ),
    Recorded(
        PERMISSIONS,
        "add_permission_fn_qualifier_invalid",
        "AddPermission",
        {**PERMISSION, "StatementId": "s1", "Qualifier": "invalid-qualifier-with-?-char"},
    ),
    Recorded(
        "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_exceptions",
        "put_destination_invalid_arn_pattern",
        "PutFunctionEventInvokeConfig",
        {
            "FunctionName": "fn",
            "DestinationConfig": {
                "OnFailure": {"Destination": f"arn:aws:_-/!lambda:{REGION}:{ACCOUNT}:function:fn"}
            },
        },
        {"<function-name:1>": "fn"},
    ),
    Recorded(
        "TestLambdaFunction::test_invalid_vpc_config_subnet",
        "create-response-invalid-format-subnet-id",
        "CreateFunction",
        {**CREATE, "VpcConfig": {"SubnetIds": ["subnet-INVALID"], "SecurityGroupIds": []}},
        {"<subnet_id_2>": "subnet-INVALID"},
    ),
    Recorded(
        "TestLambdaFunction::test_invalid_vpc_config_security_group",
        "create-response-invalid-format-security-group",
        "CreateFunction",
        {**CREATE, "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": ["sg-!nvalid"]}},
        {"<security_group_id_2>": "sg-!nvalid"},
    ),
    Recorded(
        "TestLambdaURL::test_lambda_url_invalid_invoke_mode",
        "invoke_function_invalid_invoke_type",
        "CreateFunctionUrlConfig",
        {"FunctionName": "f", "AuthType": "NONE", "InvokeMode": "UNKNOWN"},
        snapshot="behaviour",
    ),
    *[
        Recorded(
            "TestLambdaUrl::test_url_config_exceptions",
            f"{method}_function_url_config_{step}",
            f"{method.capitalize()}FunctionUrlConfig",
            {
                "FunctionName": "f",
                "Qualifier": qualifier,
                **({"AuthType": "NONE"} if method == "create" else {}),
            },
        )
        for method in ("create", "get", "delete", "update")
        for step, qualifier in (
            ("qualifier_version", "1"),
            ("qualifier_version_doesnotexist", "2"),
            ("qualifier_latest", "$LATEST"),
        )
    ],
    *[
        Recorded(
            f"TestLambdaFunction::test_get_function_wrong_region[{client_method}]",
            "wrong_region_exception",
            op_name,
            {"FunctionName": f"arn:aws:lambda:{WRONG_REGION}:{ACCOUNT}:function:i-exist"},
            {"<wrong-region>": WRONG_REGION},
        )
        for client_method, op_name in (
            ("get_function", "GetFunction"),
            ("get_function_configuration", "GetFunctionConfiguration"),
            ("get_function_url_config", "GetFunctionUrlConfig"),
            ("get_function_code_signing_config", "GetFunctionCodeSigningConfig"),
            ("get_function_event_invoke_config", "GetFunctionEventInvokeConfig"),
            ("get_function_concurrency", "GetFunctionConcurrency"),
            ("delete_function", "DeleteFunction"),
            ("invoke", "Invoke"),
        )
    ],
    *[
        Recorded(
            f"TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[{client_method}]",
            step,
            op_name,
            {"FunctionName": f"{ARN}:some-function:{arn_qualifier}", "Qualifier": "$LATEST"},
        )
        for client_method, op_name in (
            ("delete_function", "DeleteFunction"),
            ("get_function", "GetFunction"),
            ("get_function_configuration", "GetFunctionConfiguration"),
        )
        for step, arn_qualifier in (("not_match_exception", "1"), ("match_exception", "$LATEST"))
    ],
    *[
        Recorded(
            f"TestLambdaFunction::test_ops_on_nonexisting_fn[{client_method}]",
            "not_found_exception",
            op_name,
            {"FunctionName": "i-dont-exist"},
            {"<nonexisting-fn-name>": "i-dont-exist"},
        )
        for client_method, op_name in (
            ("delete_function", "DeleteFunction"),
            ("get_function", "GetFunction"),
            ("get_function_configuration", "GetFunctionConfiguration"),
            ("get_function_code_signing_config", "GetFunctionCodeSigningConfig"),
            ("get_function_concurrency", "GetFunctionConcurrency"),
        )
    ],
    *[
        Recorded(
            f"TestLambdaFunction::test_ops_on_nonexisting_version[{client_method}]",
            "version_not_found_exception",
            op_name,
            {"FunctionName": "i-exist", "Qualifier": "1221"},
            {"<fn-name>": "i-exist"},
        )
        for client_method, op_name in (
            ("get_function", "GetFunction"),
            ("get_function_configuration", "GetFunctionConfiguration"),
        )
    ],
]


@pytest.mark.parametrize("case", RECORDED_CASES, ids=[c.id for c in RECORDED_CASES])
def test_recorded_answer(case: Recorded) -> None:
    response = through_gateway(case.operation, case.params)
    assert response is not None, "accepted what AWS refused"
    assert answer(response) == answer(case.answer())


# --------------------------------------------------------------------------
# Direct checks of the validator
# --------------------------------------------------------------------------


def errors_of(op_name: str, params: dict[str, Any]) -> list[str]:
    return validation.collect_errors(MODEL.operation_model(op_name), params)


def test_valid_input_passes() -> None:
    validation.validate(MODEL.operation_model("CreateFunction"), CREATE)
    validation.validate(MODEL.operation_model("Invoke"), {"FunctionName": f"{ARN}:f:$LATEST"})


def test_required_members_are_reported_null() -> None:
    assert errors_of("CreateFunction", {"FunctionName": "f"}) == [
        "Value null at 'role' failed to satisfy constraint: Member must not be null",
        "Value null at 'code' failed to satisfy constraint: Member must not be null",
    ]


def test_nested_required_member_has_a_dotted_path() -> None:
    assert errors_of("CreateFunction", {**CREATE, "EphemeralStorage": {}}) == [
        "Value null at 'ephemeralStorage.size' failed to satisfy constraint: "
        "Member must not be null"
    ]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"MemorySize": 64}, "Value '64' at 'memorySize' failed to satisfy constraint: "
         "Member must have value greater than or equal to 128"),
        ({"MemorySize": 99999}, "Value '99999' at 'memorySize' failed to satisfy constraint: "
         "Member must have value less than or equal to 32768"),
        ({"Timeout": 0}, "Value '0' at 'timeout' failed to satisfy constraint: "
         "Member must have value greater than or equal to 1"),
        ({"Description": "d" * 257}, f"Value '{'d' * 257}' at 'description' failed to satisfy "
         "constraint: Member must have length less than or equal to 256"),
        ({"Handler": "has space"}, "Value 'has space' at 'handler' failed to satisfy constraint: "
         r"Member must satisfy regular expression pattern: [^\s]+"),
        ({"PackageType": "Tarball"}, "Value 'Tarball' at 'packageType' failed to satisfy "
         "constraint: Member must satisfy enum value set: [Zip, Image]"),
        ({"TracingConfig": {"Mode": "On"}}, "Value 'On' at 'tracingConfig.mode' failed to satisfy "
         "constraint: Member must satisfy enum value set: [Active, PassThrough]"),
        ({"EphemeralStorage": {"Size": 100}}, "Value '100' at 'ephemeralStorage.size' failed to "
         "satisfy constraint: Member must have value greater than or equal to 512"),
        # Java's toString prints every member, S3FilesConfig (new in 2026) too.
        ({"FileSystemConfigs": [{"Arn": "x", "LocalMountPath": "/mnt/a"}] * 2},
         "Value '[FileSystemConfig(arn=x, localMountPath=/mnt/a, s3FilesConfig=null), "
         "FileSystemConfig(arn=x, localMountPath=/mnt/a, s3FilesConfig=null)]' at "
         "'fileSystemConfigs' failed to satisfy constraint: "
         "Member must have length less than or equal to 1"),
    ],
)  # fmt: skip
def test_single_constraints(params: dict[str, Any], error: str) -> None:
    assert errors_of("CreateFunction", {**CREATE, **params})[:1] == [error]


def test_list_of_structures_names_the_element() -> None:
    errors = errors_of("CreateFunction", {**CREATE, "FileSystemConfigs": [{"Arn": "x"}]})
    assert "Value null at 'fileSystemConfigs.1.member.localMountPath' failed to satisfy " \
        "constraint: Member must not be null" in errors  # fmt: skip


def test_sensitive_values_are_not_shown() -> None:
    errors = errors_of("CreateFunction", {**CREATE, "Environment": {"Variables": {"1x": "secret"}}})
    assert errors == [
        "Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy "
        "constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
    ]


def test_several_errors_are_counted_and_joined() -> None:
    op = MODEL.operation_model("CreateFunction")
    with pytest.raises(ValidationError) as err:
        validation.validate(op, {**CREATE, "Role": "r1", "Timeout": 0, "MemorySize": 1})
    assert err.value.code == "ValidationException"
    assert err.value.message is not None
    assert err.value.message.startswith("3 validation errors detected: Value 'r1' at 'role'")
    assert err.value.message.count("; Value ") == 2


def test_query_errors_come_before_uri_errors() -> None:
    # As recorded for full_arn_and_qualifier_too_long_and_invalid_region-get_function.
    errors = errors_of("GetFunction", {"FunctionName": "bad!", "Qualifier": "bad!"})
    assert [e.split("' at '")[1].split("'")[0] for e in errors] == ["qualifier", "functionName"]


def test_runtime_is_left_to_check_runtime() -> None:
    assert errors_of("CreateFunction", {**CREATE, "Runtime": "cobol85"}) == []
    validation.check_runtime("python3.12")
    with pytest.raises(AwsError) as err:
        validation.check_runtime("python3.7")
    assert err.value.code == "InvalidParameterValueException"
    assert err.value.message == (
        "The runtime parameter of python3.7 is no longer supported for creating or updating AWS "
        "Lambda functions. We recommend you use a supported runtime while creating or updating "
        "functions."
    )
    deprecated = "test_create_deprecated_function_runtime_with_validation_enabled[python3.7]"
    recorded = API[f"{API_PREFIX}TestRuntimeValidation::{deprecated}"]["recorded-content"]
    assert err.value.message == recorded["deprecation_error"]["Error"]["Message"]


def test_java_hash_order_reproduces_aws_enum_orders() -> None:
    assert validation.java_hash_order(["Allow", "Terminate"]) == ["Terminate", "Allow"]
    assert validation.java_hash_order(["x86_64", "arm64"]) == ["x86_64", "arm64"]
    runtimes = list(validation.SUPPORTED_RUNTIMES)
    assert validation.java_hash_order(sorted(runtimes, key=runtimes.index)) == runtimes


# --------------------------------------------------------------------------
# Direct checks of function identifiers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "qualifier", "name", "resolved"),
    [
        ("my-function", None, "my-function", None),
        ("my-function:v1", None, "my-function", "v1"),
        ("my-function", "7", "my-function", "7"),
        (f"{ACCOUNT}:function:my-function", None, "my-function", None),
        (f"{ACCOUNT}:function:my-function:$LATEST", "$LATEST", "my-function", "$LATEST"),
        (f"{ARN}:my-function", None, "my-function", None),
        (f"{ARN}:my-function:live", None, "my-function", "live"),
        ("function:my.function", None, "my.function", None),
    ],
)
def test_accepted_identifiers(
    value: str, qualifier: str | None, name: str, resolved: str | None
) -> None:
    ref = arns.parse_function_identifier(value, qualifier, REGION, ACCOUNT, "GetFunction")
    assert ref == arns.FunctionRef(name=name, qualifier=resolved, region=REGION, account=ACCOUNT)
    assert ref.arn == f"{ARN}:{name}"


def test_function_arn_partitions() -> None:
    assert (
        arns.function_arn("us-east-1", ACCOUNT, "f")
        == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
    )
    assert arns.function_arn("cn-north-1", ACCOUNT, "f", "1").startswith("arn:aws-cn:lambda:")
    assert arns.function_arn("us-gov-west-1", ACCOUNT, "f").startswith("arn:aws-us-gov:lambda:")
    ref = arns.FunctionRef("f", "live", REGION, ACCOUNT)
    assert ref.qualified_arn == f"{ARN}:f:live"


def test_other_account_is_left_to_policies_where_they_apply() -> None:
    other = f"arn:aws:lambda:{REGION}:123456789012:function:f"
    ref = arns.parse_function_identifier(other, None, REGION, ACCOUNT, "Invoke")
    assert ref.account == "123456789012"
    with pytest.raises(AwsError) as err:
        arns.parse_function_identifier(other, None, REGION, ACCOUNT, "UpdateFunctionConfiguration")
    assert (err.value.code, err.value.message) == ("AccessDeniedException", None)


@pytest.mark.parametrize(
    ("qualifier", "message"),
    [
        ("$LATEST", "$LATEST version cannot be deleted without deleting the function."),
        ("live", "Deletion of aliases is not currently supported."),
    ],
)
def test_delete_function_refuses_latest_and_aliases(qualifier: str, message: str) -> None:
    with pytest.raises(AwsError) as err:
        arns.parse_function_identifier("f", qualifier, REGION, ACCOUNT, "DeleteFunction")
    assert (err.value.code, err.value.message) == ("InvalidParameterValueException", message)
    assert (
        arns.parse_function_identifier("f", "3", REGION, ACCOUNT, "DeleteFunction").qualifier == "3"
    )


def test_unparseable_identifier_without_prior_validation() -> None:
    with pytest.raises(ValidationError) as err:
        arns.parse_function_identifier("bad name", None, REGION, ACCOUNT, "GetFunction")
    assert err.value.message is not None
    assert err.value.message.startswith("1 validation error detected: Value 'bad name' at")


def test_not_found_names_what_each_operation_names() -> None:
    ref = arns.FunctionRef("f", None, REGION, ACCOUNT)
    assert arns.function_not_found(ref, "Invoke").message == f"Function not found: {ARN}:f:$LATEST"
    assert arns.function_not_found(ref, "GetFunction").message == f"Function not found: {ARN}:f"
    ref = arns.FunctionRef("f", "2", REGION, ACCOUNT)
    assert arns.function_not_found(ref, "GetFunction").message == f"Function not found: {ARN}:f:2"
    assert arns.function_not_found(ref, "DeleteFunction").message == f"Function not found: {ARN}:f"
    assert protocol.serialize_exception(arns.function_not_found(ref, "Invoke"))[0] == 404
