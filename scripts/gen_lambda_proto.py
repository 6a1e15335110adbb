"""Write proto/lambdafleet/api/v1/lambda.proto from the shipped Lambda model.

The gateway and the control plane speak the Lambda API to each other as typed
gRPC: one RPC per AWS operation, one message per AWS structure. Writing those
~300 messages by hand would copy the model with mistakes, so they are derived
from the very model the gateway routes and validates with
(lambdafleet/model/, see lambdafleet/service_model.py), and committed so the
contract is reviewable. `tests/test_api_coverage.py` fails when the committed
file and the shipped model drift apart.

Mapping:
- structure -> message (same name); member -> snake_case field whose
  json_name is the AWS member name. Field numbers never change: the control
  plane stores these messages (FunctionConfiguration, ...) serialized, so a
  member keeps the number the committed file gave it, a new member takes the
  next unused number, and a member the model dropped leaves its number
  `reserved`. A member whose type changes incompatibly stops the script;
  a fresh message is numbered in model order;
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
from dataclasses import dataclass, field
from pathlib import Path

from botocore.model import Shape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # lambdafleet/service_model.py, from the source tree
from lambdafleet.service_model import model_source, service_model  # noqa: E402

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


# Types whose encodings read each other's bytes: a stored field may move
# between them (protobuf's compatibility rules); any other change may not.
_WIRE_GROUPS = ({"int32", "int64", "bool"}, {"string", "bytes"})


@dataclass
class Numbering:
    """The field numbers of one message in the committed file."""

    numbers: dict[str, int] = field(default_factory=dict)  # json_name -> number
    types: dict[str, str] = field(default_factory=dict)  # json_name -> "label type"
    reserved: set[int] = field(default_factory=set)


_MESSAGE = re.compile(r"^message (\w+) \{$")
_FIELD = re.compile(
    r"^\s+(?:(optional|repeated) )?(\S+(?:, \S+)?) \w+ = (\d+) \[json_name = \"(\w+)\"\];$"
)
_RESERVED = re.compile(r"^\s+reserved ([\d, ]+);")


def committed_numbering(text: str) -> dict[str, Numbering]:
    """Each message's field numbers (and reserved ones) in a lambda.proto."""
    found: dict[str, Numbering] = {}
    current: Numbering | None = None
    for line in text.splitlines():
        if m := _MESSAGE.match(line):
            current = found.setdefault(m.group(1), Numbering())
        elif line == "}":
            current = None
        elif current is not None and (m := _FIELD.match(line)):
            label, kind, number, json_name = m.groups()
            current.numbers[json_name] = int(number)
            current.types[json_name] = f"{label or ''} {kind}".strip()
        elif current is not None and (m := _RESERVED.match(line)):
            current.reserved |= {int(n) for n in m.group(1).split(",")}
    return found


def _compatible(old: str, new: str) -> bool:
    if old == new:
        return True
    old_label, _, old_type = old.rpartition(" ")
    new_label, _, new_type = new.rpartition(" ")
    if old_label.strip() != new_label.strip():
        return False
    return any(old_type in g and new_type in g for g in _WIRE_GROUPS)


def snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


class Generator:
    def __init__(self, committed: str = "") -> None:
        self.model = service_model()
        self.committed = committed_numbering(committed)
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
        numbered: list[tuple[int, str]] = []
        seen: set[str] = set()
        old = self.committed.get(shape.name, Numbering())
        taken = set(old.numbers.values()) | old.reserved
        next_free = max(taken, default=0) + 1
        used: set[int] = set()
        for name, member in shape.members.items():
            field_name = snake(name)
            if field_name in seen:
                raise ValueError(f"{shape.name}: two members map to {field_name}")
            seen.add(field_name)
            label, kind = self.type_of(member, shape.name)
            if kind.startswith("map<"):
                label = ""
            if name in old.numbers:
                number = old.numbers[name]
                if not _compatible(old.types[name], f"{label}{kind}".strip()):
                    raise ValueError(
                        f"{shape.name}.{name} changes from {old.types[name]} to "
                        f"{label}{kind}: stored messages could not be read; decide by hand"
                    )
            else:
                number = next_free
                next_free += 1
            used.add(number)
            numbered.append(
                (number, f'  {label}{kind} {field_name} = {number} [json_name = "{name}"];')
            )
        # In number order: a model update then shows as added lines only.
        fields = [line for _, line in sorted(numbered)]
        dropped = sorted((set(old.numbers.values()) | old.reserved) - used)
        if dropped:
            fields.append(
                "  // Members the model no longer has: their numbers are never reused.\n"
                f"  reserved {', '.join(map(str, dropped))};"
            )
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
            "// GENERATED by scripts/gen_lambda_proto.py from the shipped Lambda model",
            f"// (lambdafleet/model/, from botocore {model_source()['botocore']}); do not edit by",
            "// hand, re-run the script. Field numbers are stable across model updates.",
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
    current = TARGET.read_text() if TARGET.exists() else ""
    text = Generator(current).render()
    if "--check" in sys.argv:
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
