"""Finding functions, versions and aliases in the store, with AWS's errors.

Layout of a function's rows (all deleted with the function):
- kind "function", id NAME: the FunctionRecord ($LATEST and function-wide state);
- kind "version", id NAME:0000000007: a published version's configuration;
- kind "alias", id NAME:ALIAS: an AliasConfiguration.
Version ids are zero-padded so id order is numeric order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, not_found
from lambdafleet.state.v1 import state_pb2

from ..store import ResourceStore, Scope

FUNCTION, VERSION, ALIAS = "function", "version", "alias"
LATEST = "$LATEST"
_VERSION_NUMBER = re.compile(r"[0-9]+")


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("eusc-"):
        return "aws-eusc"
    return "aws"


def function_arn(scope: Scope, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:{partition(scope.region)}:lambda:{scope.region}:{scope.account_id}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def is_version(qualifier: str) -> bool:
    return bool(_VERSION_NUMBER.fullmatch(qualifier))


def version_id(name: str, version: str | int) -> str:
    return f"{name}:{int(version):010d}"


def alias_id(name: str, alias: str) -> str:
    return f"{name}:{alias}"


def function_not_found(scope: Scope, name: str, qualifier: str | None = None) -> LambdaError:
    return not_found(f"Function not found: {function_arn(scope, name, qualifier)}")


def alias_not_found(scope: Scope, name: str, alias: str) -> LambdaError:
    """AWS's answer for an alias that is not there (GetAlias, and the
    alias-scoped operations: provisioned concurrency, permissions)."""
    return not_found(f"Cannot find alias arn: {function_arn(scope, name, alias)}")


def check_revision(given: str, current: str, source: str = "GetFunction/GetAlias") -> None:
    """Optimistic locking: a RevisionId the caller sent must be the current one.
    `source` names the API that shows it (GetPolicy for policies)."""
    if given and given != current:
        raise LambdaError(
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. "
            f"Call the {source} API to retrieve the latest Revision Id",
        )


# What differs between a version and the $LATEST it was published from, or
# changes without the function changing: not part of its content.
_NOT_CONTENT = (
    "function_arn",
    "version",
    "revision_id",
    "last_modified",
    "state",
    "state_reason",
    "state_reason_code",
    "last_update_status",
    "last_update_status_reason",
    "last_update_status_reason_code",
)


def fingerprint(config: api.FunctionConfiguration) -> str:
    """A digest of a configuration's content (code and settings): equal when
    publishing it again would publish the same function."""
    content = api.FunctionConfiguration()
    content.CopyFrom(config)
    for field in _NOT_CONTENT:
        content.ClearField(field)  # type: ignore[arg-type]
    return hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()


def qualified(config: api.FunctionConfiguration, arn: str) -> api.FunctionConfiguration:
    """`config` as shown through a qualifier: AWS answers with the ARN asked for."""
    out = api.FunctionConfiguration()
    out.CopyFrom(config)
    out.function_arn = arn
    return out


def load(store: ResourceStore, scope: Scope, name: str) -> state_pb2.FunctionRecord | None:
    return store.get(scope, FUNCTION, name, state_pb2.FunctionRecord)


def require(
    store: ResourceStore, scope: Scope, name: str, qualifier: str | None = None
) -> state_pb2.FunctionRecord:
    """The function's record, or AWS's not-found naming `qualifier`."""
    record = load(store, scope, name)
    if record is None:
        raise function_not_found(scope, name, qualifier)
    return record


def save(store: ResourceStore, scope: Scope, record: state_pb2.FunctionRecord) -> None:
    name = record.configuration.function_name
    store.put(scope, FUNCTION, name, record, function=name)


def get_version(
    store: ResourceStore, scope: Scope, name: str, version: str
) -> api.FunctionConfiguration | None:
    return store.get(scope, VERSION, version_id(name, version), api.FunctionConfiguration)


def get_alias(
    store: ResourceStore, scope: Scope, name: str, alias: str
) -> api.AliasConfiguration | None:
    return store.get(scope, ALIAS, alias_id(name, alias), api.AliasConfiguration)


@dataclass
class Resolved:
    """What a (name, qualifier) pair names."""

    record: state_pb2.FunctionRecord
    # The configuration of the version named (directly or by the alias):
    # for $LATEST, the one GetFunctionConfiguration shows.
    configuration: api.FunctionConfiguration
    # The alias, when the qualifier was one.
    alias: api.AliasConfiguration | None = None

    @property
    def version(self) -> str:
        return self.configuration.version


def resolve(
    store: ResourceStore,
    scope: Scope,
    name: str,
    qualifier: str | None,
    *,
    not_found_qualifier: str | None = None,
) -> Resolved:
    """The function version or alias named, or AWS's ResourceNotFoundException.

    The error names `not_found_qualifier` when given (some operations name
    $LATEST, some nothing), else the qualifier asked for.
    """
    shown = qualifier if not_found_qualifier is None else not_found_qualifier or None
    record = require(store, scope, name, shown)
    if not qualifier:
        return Resolved(record, record.configuration)
    # Asked through a qualifier, the configuration carries the qualified ARN
    # (GetFunction with Qualifier=$LATEST or an alias, as recorded).
    arn = function_arn(scope, name, qualifier)
    if qualifier == LATEST:
        return Resolved(record, qualified(record.configuration, arn))
    if is_version(qualifier):
        config = get_version(store, scope, name, qualifier)
        if config is None:
            raise function_not_found(scope, name, shown)
        return Resolved(record, config)
    alias = get_alias(store, scope, name, qualifier)
    if alias is None:
        raise function_not_found(scope, name, shown)
    if alias.function_version == LATEST:
        return Resolved(record, qualified(record.configuration, arn), alias)
    config = get_version(store, scope, name, alias.function_version)
    if config is None:  # pragma: no cover - versions an alias uses cannot be deleted
        raise function_not_found(scope, name, shown)
    return Resolved(record, qualified(config, arn), alias)
