"""Function versions: PublishVersion and ListVersionsByFunction.

A version is a frozen copy of $LATEST (kind VERSION, see resolve.py); the
copy itself is made by functions.publish_version, which CreateFunction and
UpdateFunctionCode share with PublishVersion. Deleting a version is
DeleteFunction with a qualifier (functions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import invalid_parameter

from .. import lifecycle
from ..store import Scope

# Listed versions leave out their state, as listed functions do (recorded
# for ListVersionsByFunction); only the Get operations show it.
from .functions import NOT_LISTED as _NOT_LISTED
from .functions import publish_version
from .registry import Api, Caller, operation
from .resolve import (
    LATEST,
    VERSION,
    check_revision,
    fingerprint,
    function_arn,
    get_version,
    require,
    save,
)

log = structlog.get_logger(__name__)

DEFAULT_PAGE = 50


def listed(config: api.FunctionConfiguration, arn: str) -> api.FunctionConfiguration:
    """A version as ListVersionsByFunction shows it, under its qualified ARN."""
    out = api.FunctionConfiguration()
    out.CopyFrom(config)
    out.function_arn = arn
    for field in _NOT_LISTED:
        out.ClearField(field)  # type: ignore[arg-type]
    return out


def page_after(
    keys: Sequence[str],
    marker: str,
    max_items: int,
    order: Callable[[str], Any] = str,
) -> tuple[list[int], str | None]:
    """Indexes of one page of `keys` (sorted by `order`) after the entry
    `marker` names, and the marker of the next page (None on the last).

    The marker is an entry's key, so paging stays consistent while entries
    are added or deleted between pages: a marker whose entry is gone
    continues after where it was."""
    if not marker:
        start = 0
    elif marker in keys:
        start = list(keys).index(marker) + 1
    else:
        start = sum(1 for k in keys if order(k) <= order(marker))
    chosen = list(range(start, min(start + max_items, len(keys))))
    more = bool(chosen) and chosen[-1] + 1 < len(keys)
    return chosen, keys[chosen[-1]] if more else None


def version_order(key: str) -> int:
    """$LATEST first, then versions by number."""
    return int(key) if key.isdigit() else -1


def unchanged_since_publish(record_fingerprint: str, latest: api.FunctionConfiguration) -> bool:
    """Whether $LATEST still has the content the last version was published from."""
    return bool(record_fingerprint) and record_fingerprint == fingerprint(latest)


def version_keys(api_: Api, scope: Scope, name: str) -> list[tuple[str, api.FunctionConfiguration]]:
    """Every published version of `name`, in numeric order (ids are zero-padded)."""
    return [
        (config.version, config)
        for _, config in api_.store.items(
            scope, VERSION, api.FunctionConfiguration, prefix=f"{name}:", function=name
        )
    ]


@operation("PublishVersion")
async def publish(
    api_: Api, caller: Caller, request: api.PublishVersionRequest
) -> api.FunctionConfiguration:
    scope = caller.scope
    name = request.function_name
    record = require(api_.store, scope, name)
    latest = record.configuration
    check_revision(request.revision_id, latest.revision_id)
    if request.code_sha256 and request.code_sha256 != latest.code_sha256:
        raise invalid_parameter(
            f"CodeSHA256 ({request.code_sha256}) is different from current CodeSHA256 in "
            f"$LATEST ({latest.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
        )
    # A version is published from settled code and settings only.
    lifecycle.check_updatable(latest)
    if unchanged_since_publish(record.published_fingerprint, latest):
        previous = get_version(api_.store, scope, name, str(record.last_version))
        if previous is not None:
            # Nothing changed: AWS answers the last version again (201 all the same).
            return previous
    with api_.store.transaction():
        description = request.description if request.HasField("description") else None
        config = publish_version(api_, scope, record, description)
        # Publishing is a change of $LATEST too: its RevisionId moves on (recorded).
        record.configuration.revision_id = lifecycle.new_revision()
        save(api_.store, scope, record)
    return config


@operation("ListVersionsByFunction")
async def list_versions(
    api_: Api, caller: Caller, request: api.ListVersionsByFunctionRequest
) -> api.ListVersionsByFunctionResponse:
    scope = caller.scope
    name = request.function_name
    record = require(api_.store, scope, name)
    entries = [(LATEST, listed(record.configuration, function_arn(scope, name, LATEST)))]
    entries += [
        (key, listed(config, config.function_arn))
        for key, config in version_keys(api_, scope, name)
    ]
    chosen, next_marker = page_after(
        [key for key, _ in entries],
        request.marker,
        request.max_items or DEFAULT_PAGE,
        version_order,
    )
    out = api.ListVersionsByFunctionResponse(versions=[entries[i][1] for i in chosen])
    if next_marker is not None:
        out.next_marker = next_marker
    return out
