"""Every operation of botocore's Lambda model is served.

Statically: LambdaService has a handler for each method. Live: each operation,
called through boto3 with a model-valid request against a running cluster,
answers success or an AWS-shaped 4xx error, never "not implemented" and never
a 5xx.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from cluster import create_echo, lambda_client, role_of
from lambdafleet.control_plane.api.registry import HANDLERS
from model_inputs import MODEL, valid_input

from lambdafleet.api.v1 import lambda_pb2

ALL_OPERATIONS = sorted(MODEL.operation_names)
# The coverage calls act in an account of their own.
ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "333333333333"
FUNCTION = "fn-coverage"


def test_the_service_has_a_method_per_operation() -> None:
    methods = {m.name for m in lambda_pb2.DESCRIPTOR.services_by_name["LambdaService"].methods}
    assert methods == set(ALL_OPERATIONS)


def test_the_committed_contract_matches_the_pinned_model() -> None:
    """lambda.proto is generated from the model; it must not drift from it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_lambda_proto.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_operation_has_a_handler() -> None:
    missing = sorted(set(ALL_OPERATIONS) - set(HANDLERS))
    assert missing == []


@pytest.fixture(scope="module")
def coverage_client(cluster: Any) -> Any:
    return lambda_client(cluster.endpoint, access_key=ACCOUNT, shipped_model=True)


def _ensure_function(client: Any) -> None:
    try:
        client.get_function(FunctionName=FUNCTION)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        create_echo(client, FUNCTION, Role=role_of(ACCOUNT))


@pytest.mark.parametrize("operation", ALL_OPERATIONS)
def test_operation_is_served(coverage_client: Any, operation: str) -> None:
    _ensure_function(coverage_client)
    op = MODEL.operation_model(operation)
    params = valid_input(op)
    method = getattr(coverage_client, _python_name(operation))
    try:
        response = method(**params)
    except ClientError as exc:
        error = exc.response["Error"]
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert "does not implement" not in error.get("Message", ""), error
        assert status < 500, (operation, status, error)
        assert error["Code"] != "ServiceException", error
        return
    assert 200 <= response["ResponseMetadata"]["HTTPStatusCode"] < 300
    if "EventStream" in response:
        events = list(response["EventStream"])
        assert events, "a response stream ends with at least InvokeComplete"


def _python_name(operation: str) -> str:
    return str(xform_name(operation))
