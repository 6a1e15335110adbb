"""GetAccountSettings: the account's limits and what it uses, per region.

Usage is counted from the store on every call (an account has at most a few
thousand rows of these kinds): TotalCodeSize adds up the code of every
function's $LATEST, every published version and every layer version, as AWS
does (publishing a version of unchanged code counts its size again, recorded
test_account_settings_total_code_size_config_update).
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.state.v1 import state_pb2

from ..store import ResourceStore, Scope
from .concurrency import reservations, unreserved
from .kinds import LAYER_VERSION
from .registry import Api, Caller, Settings, operation
from .resolve import FUNCTION, VERSION

# AWS's fixed quotas: 250 MB unzipped, 50 MB zipped direct upload.
CODE_SIZE_UNZIPPED = 250 * 1024 * 1024
CODE_SIZE_ZIPPED = 50 * 1024 * 1024


@dataclass(frozen=True)
class Usage:
    function_count: int
    total_code_size: int
    reserved_total: int


def usage(store: ResourceStore, scope: Scope) -> Usage:
    records = store.items(scope, FUNCTION, state_pb2.FunctionRecord)
    code = sum(record.configuration.code_size for _, record in records)
    code += sum(c.code_size for _, c in store.items(scope, VERSION, api.FunctionConfiguration))
    code += sum(
        layer.content.code_size
        for _, layer in store.items(scope, LAYER_VERSION, api.GetLayerVersionResponse)
    )
    return Usage(
        function_count=len(records),
        total_code_size=code,
        reserved_total=sum(reservations(store, scope).values()),
    )


def settings_response(settings: Settings, used: Usage) -> api.GetAccountSettingsResponse:
    """The answer for `used` under the operator's `settings` (pure)."""
    return api.GetAccountSettingsResponse(
        account_limit=api.AccountLimit(
            total_code_size=settings.code_storage_bytes,
            code_size_unzipped=CODE_SIZE_UNZIPPED,
            code_size_zipped=CODE_SIZE_ZIPPED,
            concurrent_executions=settings.concurrent_executions,
            unreserved_concurrent_executions=unreserved(
                settings.concurrent_executions, used.reserved_total
            ),
        ),
        account_usage=api.AccountUsage(
            total_code_size=used.total_code_size, function_count=used.function_count
        ),
    )


@operation("GetAccountSettings")
async def get_account_settings(
    api_: Api, caller: Caller, request: api.GetAccountSettingsRequest
) -> api.GetAccountSettingsResponse:
    return settings_response(api_.settings, usage(api_.store, caller.scope))
