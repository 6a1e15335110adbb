"""Take a new Lambda service model from a botocore release into lambdafleet.

lambdafleet answers from the model it ships (lambdafleet/model/), never from
the botocore a user happens to have installed: the gateway routes, parses and
validates with it, and the gRPC contract (lambda.proto) is generated from it.
Updating it is a deliberate step:

    pip download --no-deps botocore==1.44.8 -d /tmp/botocore
    python scripts/update_model.py /tmp/botocore/botocore-1.44.8-py3-none-any.whl
    python scripts/gen_lambda_proto.py
    bash scripts/test.sh          # the recorded AWS answers decide

Without an argument the installed botocore's model is taken. Documentation
strings are dropped (they are most of the file and nothing reads them); every
operation, shape, member, constraint and error is kept.

Member order matters: AWS's validator lists a request's errors, and prints
a structure, in the order its server-side classes declare the members, and
the recorded answers follow the older models' order (PublishLayerVersion's
CompatibleRuntimes before CompatibleArchitectures). Newer models reorder
members, so a structure's members keep the order of the model shipped so far,
and members new to it follow in the new model's order. (The shipped model was
first taken from botocore 1.43.11, then updated to 1.44.8 this way.)

Usage: python scripts/update_model.py [WHEEL_OR_SERVICE_JSON]
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "lambdafleet" / "model"
TARGET = MODEL_DIR / "lambda" / "2015-03-31" / "service-2.json"
SOURCE = MODEL_DIR / "source.json"
MEMBER = "botocore/data/lambda/2015-03-31/service-2.json"


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _read(source: str | None) -> tuple[dict[str, Any], str]:
    """The model and the botocore release it came from."""
    if source is None:
        import botocore
        import botocore.loaders

        loader = botocore.loaders.Loader()
        return loader.load_service_model("lambda", "service-2"), botocore.__version__
    path = Path(source)
    if path.suffix == ".whl":
        found = re.match(r"botocore-([^-]+)-", path.name)
        version = found.group(1) if found else "unknown"
        with zipfile.ZipFile(path) as wheel:
            names = set(wheel.namelist())
            for name in (MEMBER, MEMBER + ".gz"):
                if name in names:
                    raw = wheel.read(name)
                    text = gzip.decompress(raw) if name.endswith(".gz") else raw
                    return json.loads(text), version
        raise SystemExit(f"{path} holds no Lambda model")
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw), "unknown"


def _keep_member_order(model: dict[str, Any], shipped: dict[str, Any]) -> None:
    """Each structure's members in the shipped order, new members after."""
    for name, shape in model["shapes"].items():
        old = shipped.get("shapes", {}).get(name, {}).get("members")
        if shape.get("type") != "structure" or not old:
            continue
        members = shape["members"]
        order = [m for m in old if m in members] + [m for m in members if m not in old]
        shape["members"] = {m: members[m] for m in order}


def main() -> int:
    model, version = _read(sys.argv[1] if len(sys.argv) > 1 else None)
    if TARGET.exists():
        _keep_member_order(model, json.loads(TARGET.read_text()))
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(json.dumps(_strip(model), indent=1, ensure_ascii=False) + "\n")
    SOURCE.write_text(
        json.dumps(
            {"botocore": version, "operations": len(model["operations"])}, indent=1
        )
        + "\n"
    )
    print(f"wrote {TARGET.relative_to(ROOT)} (botocore {version}, "
          f"{len(model['operations'])} operations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
