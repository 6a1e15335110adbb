"""The Lambda service model lambdafleet answers by, shipped with it.

`lambdafleet/model/lambda/2015-03-31/service-2.json` is AWS's Lambda model as
a botocore release carries it (which one: `source.json`), taken in by
`scripts/update_model.py`. The gateway routes, parses and validates with it
and `lambda.proto` is generated from it, so no answer depends on the botocore
installed next to lambdafleet: only botocore's model classes read the file.

The folder has botocore's data layout, so a botocore client can be pointed at
it too (`data_path`): tests call the newest operations with it whatever boto3
they run with.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from botocore.model import ServiceModel

__all__ = ["DATA_PATH", "model_source", "service_json", "service_model"]

# A botocore data path: <DATA_PATH>/lambda/2015-03-31/service-2.json.
DATA_PATH = Path(__file__).resolve().parent / "model"
_SERVICE_FILE = DATA_PATH / "lambda" / "2015-03-31" / "service-2.json"


@cache
def service_json() -> dict[str, Any]:
    """The model as JSON (read once; callers must not change it)."""
    data: dict[str, Any] = json.loads(_SERVICE_FILE.read_text(encoding="utf-8"))
    return data


@cache
def service_model() -> ServiceModel:
    """The shipped model, read by botocore's model classes; immutable."""
    return ServiceModel(service_json(), service_name="lambda")


def model_source() -> dict[str, Any]:
    """Which botocore release the shipped model was taken from."""
    source: dict[str, Any] = json.loads((DATA_PATH / "source.json").read_text(encoding="utf-8"))
    return source
