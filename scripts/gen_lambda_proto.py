"""Write proto/lambdafleet/api/v1/lambda.proto from botocore's Lambda model.

The gateway and the control plane speak the Lambda API to each other as typed
gRPC: one RPC per AWS operation, one message per AWS structure. Writing those
~300 messages by hand would copy the model with mistakes, so they are derived
from the very model the gateway routes and validates with, and committed so the
contract is reviewable. `tests/test_api_contract.py` fails when the committed
file and the pinned model drift apart.

Mapping:
- structure -> message (same name); member -> snake_case field whose
  json_name is the AWS member name, numbered in model order;
- string/enum -> string (values pass through verbatim; the gateway validates
  enums against the model), integer -> int32, long -> int64, double -> double,
  boolean -> bool, blob -> bytes, timestamp -> google.protobuf.Timestamp;
- every scalar is `optional`, so "not given" differs from "zero";
- list -> repeated; map -> map<string, V>; a map whose values are lists gets a
  wrapper message `<Shape>Value { repeated ... items = 1; }`;
- every request message gets `google.protobuf.FieldMask present_members`,
  naming the top-level members the caller sent: only that tells an empty list
  (`Layers: []` removes every layer) from an absent one;
- an operation without an output returns google.protobuf.Empty; an output with
  an event stream makes the RPC server-streaming, one event per message.

Usage: python scripts/gen_lambda_proto.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import botocore.session
from botocore.model import Shape

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "proto" / "lambdafleet" / "api" / "v1" / "lambda.proto"
# Field number of the presence mask; far above any structure's member count.
PRESENT_FIELD_NUMBER = 1000

SCALARS = {
    "string": "string",
    "integer": "int32",
    "long": "int64",
    "double": "double",
    "float": "float",
    "boolean": "bool",
    "blob": "bytes",
    "timestamp": "google.protobuf.Timestamp",
}


def snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


class Generator:
    def __init__(self) -> None:
        self.model = botocore.session.get_session().get_service_model("lambda")
        self.messages: dict[str, list[str]] = {}
        self.order: list[str] = []
        self.requests = {
            self.model.operation_model(op).input_shape.name
            for op in self.model.operation_names
            if self.model.operation_model(op).input_shape is not None
        }

    def type_of(self, shape: Shape, owner: str) -> tuple[str, str]:
        """(label, type) of a field holding `shape`."""
        kind = shape.type_name
        if kind in SCALARS:
            return "optional ", SCALARS[kind]
        if kind == "structure":
            self.message(shape)
            return "", shape.name
        if kind == "list":
            member = shape.member
            _, inner = self.type_of(member, owner)
            return "repeated ", inner
        if kind == "map":
            value = shape.value
            if value.type_name == "list":
                wrapper = f"{value.name}Value"
                _, inner = self.type_of(value.member, owner)
                if wrapper not in self.messages:
                    self.order.append(wrapper)
                    self.messages[wrapper] = [
                        f'  repeated {inner} items = 1 [json_name = "items"];'
                    ]
                return "", f"map<string, {wrapper}>"
            _, inner = self.type_of(value, owner)
            return "", f"map<string, {inner}>"
        raise ValueError(f"unmapped shape type {kind} in {owner}")

    def message(self, shape: Shape) -> None:
        if shape.name in self.messages:
            return
        self.messages[shape.name] = []  # placeholder: guards recursion
        self.order.append(shape.name)
        fields: list[str] = []
        seen: set[str] = set()
        for number, (name, member) in enumerate(shape.members.items(), start=1):
            field = snake(name)
            if field in seen:
                raise ValueError(f"{shape.name}: two members map to {field}")
            seen.add(field)
            label, kind = self.type_of(member, shape.name)
            if kind.startswith("map<"):
                label = ""
            fields.append(f'  {label}{kind} {field} = {number} [json_name = "{name}"];')
        if shape.name in self.requests:
            fields.append(
                f"  // Top-level members the caller sent (json names).\n"
                f"  google.protobuf.FieldMask present_members = {PRESENT_FIELD_NUMBER};"
            )
        self.messages[shape.name] = fields

    def render(self) -> str:
        rpcs: list[str] = []
        for op_name in self.model.operation_names:
            op = self.model.operation_model(op_name)
            assert op.input_shape is not None, op_name
            self.message(op.input_shape)
            request = op.input_shape.name
            stream = ""
            if op.output_shape is None:
                response = "google.protobuf.Empty"
            else:
                self.message(op.output_shape)
                response = op.output_shape.name
                if any(
                    m.serialization.get("eventstream") for m in op.output_shape.members.values()
                ):
                    stream = "stream "
            rpcs.append(f"  rpc {op_name}({request}) returns ({stream}{response});")
        out = [
            "// GENERATED by scripts/gen_lambda_proto.py from botocore's Lambda model",
            f"// (botocore {botocore.__version__}); do not edit by hand, re-run the script.",
            "//",
            "// The Lambda API between the gateway and the control plane: one RPC per AWS",
            "// operation, one message per AWS structure. The caller's account, region and",
            "// request id travel in metadata (lf-account, lf-region, lf-request-id);",
            "// AWS errors travel in trailing metadata (see lambdafleet/errors.py).",
            'syntax = "proto3";',
            "",
            "package lambdafleet.api.v1;",
            "",
            'import "google/protobuf/empty.proto";',
            'import "google/protobuf/field_mask.proto";',
            'import "google/protobuf/timestamp.proto";',
            "",
            "service LambdaService {",
            *rpcs,
            "}",
        ]
        for name in sorted(self.order):
            out += ["", f"message {name} {{", *self.messages[name], "}"]
        return "\n".join(out) + "\n"


def main() -> int:
    text = Generator().render()
    if "--check" in sys.argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/gen_lambda_proto.py")
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET} ({text.count('rpc ')} rpcs, {text.count('message ')} messages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
