"""The service model lambdafleet ships, and how it is read.

The model is ours (lambdafleet/model/): the gateway's answers must not depend
on the botocore installed next to it, every pattern in it must be enforced
with Java's meaning, and regenerating the gRPC contract must never renumber a
field the control plane has stored.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import botocore
import pytest
from lambdafleet.gateway import protocol, validation

from lambdafleet.service_model import DATA_PATH, model_source, service_json, service_model

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto" / "lambdafleet" / "api" / "v1" / "lambda.proto"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_gateway_reads_the_shipped_model_not_botocores() -> None:
    assert protocol.service_model() is service_model()
    assert len(service_model().operation_names) == model_source()["operations"] == 91
    assert (DATA_PATH / "lambda" / "2015-03-31" / "service-2.json").is_file()
    # The six operations of 2026 are there whatever botocore is installed.
    for name in (
        "PutResourcePolicy",
        "GetResourcePolicy",
        "DeleteResourcePolicy",
        "PauseDurableExecution",
        "ResumeDurableExecution",
        "DeleteDurableExecution",
    ):
        assert protocol.operation(name).http["requestUri"].startswith("/202")


def test_the_installed_botocore_does_not_matter() -> None:
    """Tags have the \\p{...} pattern in the shipped model, whatever the
    installed botocore's own model says (1.43.11 has no pattern at all)."""
    assert service_json()["shapes"]["TagKey"]["pattern"] == r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
    op = protocol.operation("TagResource")
    arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert validation.collect_errors(op, {"Resource": arn, "Tags": {"Größe": "groß 大"}}) == []
    errors = validation.collect_errors(op, {"Resource": arn, "Tags": {"bad!": "v"}})
    assert len(errors) == 1 and "Map keys must satisfy constraint" in errors[0], errors
    assert botocore.__version__  # any release: nothing above read its model


@pytest.mark.parametrize(
    "shape", sorted(n for n, s in service_json()["shapes"].items() if "pattern" in s)
)
def test_every_pattern_compiles(shape: str) -> None:
    pattern = service_json()["shapes"][shape]["pattern"]
    compiled = validation.compiled(pattern)
    assert compiled.pattern == validation.java_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        # Java's \p{...} classes are Unicode.
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "héllo wörld 日本 ٣", True),
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "a\u00a0b", True),  # no-break space: \p{Z}
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "a!", False),
        # Java's \d, \s and \w are ASCII.
        (r"\d{12}", "١٢٣٤٥٦٧٨٩٠١٢", False),
        (r"\d{12}", "123456789012", True),
        (r"[^\s]+", "app.handler", True),
        (r"[^\s]+", "a\u00a0b", True),  # not whitespace to Java
        (r"[^\s]+", "a b", False),
        (r"[\s\S]*", "any\u00a0thing\nat all", True),
        (r"[a-zA-Z0-9-_]+", "fn_1-a", True),
    ],
)
def test_patterns_keep_javas_meaning(pattern: str, value: str, matches: bool) -> None:
    assert (validation.compiled(pattern).fullmatch(value) is not None) is matches


def test_the_committed_contract_keeps_every_field_number() -> None:
    """Numbers are the stored data's identity: regenerating from the
    committed file keeps each one, even against the model's member order."""
    gen = _script("gen_lambda_proto")
    committed = PROTO.read_text()
    numbering = gen.committed_numbering(committed)
    text = gen.Generator(committed).render()
    assert text == committed
    assert numbering["FunctionConfiguration"].numbers["FunctionName"] == 1
    # 1.44 lists PublishTo after Publish; it kept the number 1.43 gave it.
    assert numbering["CreateFunctionRequest"].numbers["PublishTo"] == 26


def test_a_model_update_never_renumbers() -> None:
    gen = _script("gen_lambda_proto")
    committed = PROTO.read_text()
    # As if FunctionName had had number 77, and a dropped member had had 78.
    moved = committed.replace(
        '  optional string function_name = 1 [json_name = "FunctionName"];\n'
        '  optional string function_arn = 2 [json_name = "FunctionArn"];',
        '  optional string function_name = 77 [json_name = "FunctionName"];\n'
        '  optional string function_arn = 2 [json_name = "FunctionArn"];\n'
        '  optional string gone = 78 [json_name = "Gone"];',
        1,
    )
    assert moved != committed
    text = gen.Generator(moved).render()
    block = re.search(r"message FunctionConfiguration \{\n(.*?)\n\}", text, re.S)
    assert block is not None
    body = block.group(1)
    assert 'optional string function_name = 77 [json_name = "FunctionName"];' in body
    assert "reserved 78;" in body
    assert "Gone" not in body


def test_an_incompatible_type_change_stops_the_generator() -> None:
    gen = _script("gen_lambda_proto")
    committed = PROTO.read_text().replace(
        'optional int32 timeout = 8 [json_name = "Timeout"];',
        'optional string timeout = 8 [json_name = "Timeout"];',
    )
    with pytest.raises(ValueError, match="Timeout"):
        gen.Generator(committed).render()


def test_member_order_follows_the_shipped_model() -> None:
    """AWS lists PublishLayerVersion's errors runtimes first (recorded), as
    the older model orders the members; 1.44 moved architectures first."""
    update = _script("update_model")
    new = {
        "shapes": {
            "R": {"type": "structure", "members": {"B": {}, "N": {}, "A": {}}},
            "S": {"type": "string"},
        }
    }
    shipped = {"shapes": {"R": {"type": "structure", "members": {"A": {}, "B": {}}}}}
    update._keep_member_order(new, shipped)
    assert list(new["shapes"]["R"]["members"]) == ["A", "B", "N"]
    members = list(service_json()["shapes"]["PublishLayerVersionRequest"]["members"])
    assert members.index("CompatibleRuntimes") < members.index("CompatibleArchitectures")


def test_the_shipped_model_is_documentation_free_json() -> None:
    text = (DATA_PATH / "lambda" / "2015-03-31" / "service-2.json").read_text()
    assert '"documentation"' not in text
    assert json.loads(text)["metadata"]["apiVersion"] == "2015-03-31"
