"""Layers in real containers: unpacked into /opt in the function's order
(a later layer's file wins), /opt/python importable, and a change of Layers
taking effect at the next invocation."""

from __future__ import annotations

import json
import uuid
from typing import Any

from cluster import ROLE, zip_bytes

HANDLER = """
import importlib, os

def handler(event, context):
    found = {}
    for module in ("layer_one", "layer_two"):
        try:
            found[module] = importlib.import_module(module).VALUE
        except ImportError:
            found[module] = None
    with open("/opt/shared.txt") as f:
        shared = f.read()
    return {"modules": found, "shared": shared, "opt": sorted(os.listdir("/opt"))}
"""


def _publish(client: Any, name: str, files: dict[str, str]) -> str:
    arn: str = client.publish_layer_version(
        LayerName=name, Content={"ZipFile": zip_bytes(files)}, CompatibleRuntimes=["python3.11"]
    )["LayerVersionArn"]
    return arn


def _invoke(client: Any, name: str) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response, response["Payload"].read()
    body: dict[str, Any] = json.load(response["Payload"])
    return body


def test_layers_are_merged_into_opt_in_order_and_follow_updates(client: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    first = _publish(
        client,
        f"first-{tag}",
        {"python/layer_one.py": "VALUE = 'one'\n", "shared.txt": "from the first layer"},
    )
    second = _publish(
        client,
        f"second-{tag}",
        {"python/layer_two.py": "VALUE = 'two'\n", "shared.txt": "from the second layer"},
    )
    name = f"layers-{tag}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": HANDLER})},
        Layers=[first, second],
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    body = _invoke(client, name)
    assert body["modules"] == {"layer_one": "one", "layer_two": "two"}
    assert body["shared"] == "from the second layer"  # the later layer wins
    assert body["opt"] == ["python", "shared.txt"]

    # The other order: the first layer's file wins now.
    client.update_function_configuration(FunctionName=name, Layers=[second, first])
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    assert _invoke(client, name)["shared"] == "from the first layer"

    # One layer only: the other's module is gone from /opt.
    client.update_function_configuration(FunctionName=name, Layers=[first])
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    body = _invoke(client, name)
    assert body["modules"] == {"layer_one": "one", "layer_two": None}
    assert body["shared"] == "from the first layer"
    client.delete_function(FunctionName=name)
