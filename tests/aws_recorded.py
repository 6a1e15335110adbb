"""AWS's recorded answers (test_lambda_api.snapshot.json) as this cluster
would give them: the recorder's account and placeholders replaced by ours,
so a response can be compared with a recorded step directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_api.snapshot.json"
API = json.loads(RECORDED.read_text())
PREFIX = "tests/aws/services/lambda_/test_lambda_api.py::"
ACCOUNT = "000000000000"
REGION = "us-east-1"


def step(test: str, name: str, **placeholders: str) -> dict[str, Any]:
    """Recorded step `name` of `test` with `<placeholder>` values filled in."""
    text = json.dumps(API[PREFIX + test]["recorded-content"][name])
    text = text.replace("111111111111", ACCOUNT)
    for key, value in {"partition": "aws", "region": REGION, **placeholders}.items():
        text = text.replace(f"<{key}>", value)
    found: dict[str, Any] = json.loads(text)
    return found


def body(response: dict[str, Any]) -> dict[str, Any]:
    """A response without transport details, JSON members parsed as the
    recorder parsed them."""
    out = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    for key in ("Statement", "Policy"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def status(response: dict[str, Any]) -> int:
    code: int = response["ResponseMetadata"]["HTTPStatusCode"]
    return code


def assert_matches(response: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Same status and same body (an error: code, message, every member)."""
    assert status(response) == status(recorded)
    assert body(response) == body(recorded)
