"""Function names and ARNs as Lambda's API accepts them.

A `FunctionName` may be a name (`my-function`), a name with a qualifier
(`my-function:v1`), a partial ARN (`123456789012:function:my-function`) or a
full ARN (`arn:aws:lambda:us-east-1:123456789012:function:my-function:1`); the
qualifier may also come as the `Qualifier` parameter. The checks AWS makes
beyond the model's pattern, and their exact errors, are those recorded in
test_lambda_api.snapshot.json (test_function_name_and_qualifier_validation,
test_get_function_wrong_region, test_ops_with_arn_qualifier_mismatch,
test_function_arns, test_function_concurrency_exceptions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import protocol
from .protocol import AwsError, ValidationError
from .validation import collect_errors, format_message

__all__ = [
    "CROSS_ACCOUNT_OPERATIONS",
    "FunctionRef",
    "function_arn",
    "function_not_found",
    "parse_function_identifier",
    "partition_for_region",
]

# The model's NamespacedFunctionName pattern (AWS's server copy, with eusc-),
# with named groups; Python's backtracking binds the groups as Java's does.
_FUNCTION_IDENTIFIER = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d{1}):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9-_\.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9-_]+))?",
    re.ASCII,
)

# The model's Alias pattern: a qualifier that is not a version number.
_ALIAS = re.compile(r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)", re.ASCII)

MAX_FUNCTION_NAME_LENGTH = 64

# Operations a resource-based policy can open to other accounts (the Lambda
# developer guide's list of function actions); for the others an ARN of
# another account is refused outright, as CreateFunction's is
# (test_function_arns: AccessDeniedException, 403, no message).
CROSS_ACCOUNT_OPERATIONS = frozenset(
    {
        "Invoke", "InvokeAsync", "InvokeWithResponseStream", "GetFunction",
        "GetFunctionConfiguration", "UpdateFunctionCode", "DeleteFunction", "PublishVersion",
        "ListVersionsByFunction", "CreateAlias", "GetAlias", "ListAliases", "UpdateAlias",
        "DeleteAlias", "GetPolicy", "PutFunctionConcurrency", "DeleteFunctionConcurrency",
        "ListTags", "TagResource", "UntagResource",
    }
)  # fmt: skip

# Operations on the function itself, never a version or alias
# (test_function_concurrency_exceptions, put_function_concurrency_with_qualified_arn).
_UNQUALIFIED_ONLY = frozenset(
    {"PutFunctionConcurrency", "GetFunctionConcurrency", "DeleteFunctionConcurrency"}
)
_UNQUALIFIED_ONLY_MESSAGE = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support "
    "this operation. Please specify either a function name or an unqualified function ARN."
)

# Whose "Function not found" names `$LATEST` when no qualifier was given
# (recorded for Invoke and PutFunctionConcurrency; GetFunction names none).
_NOT_FOUND_NAMES_LATEST = frozenset(
    {"Invoke", "InvokeWithResponseStream", "PutFunctionConcurrency"}
)


@dataclass(frozen=True)
class FunctionRef:
    """A function (and maybe a version or alias) in a region and account."""

    name: str
    qualifier: str | None
    region: str
    account: str

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account, self.name)

    @property
    def qualified_arn(self) -> str:
        return function_arn(self.region, self.account, self.name, self.qualifier)


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("eusc-"):
        return "aws-eusc"
    return "aws"


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:{partition_for_region(region)}:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _invalid_parameter(message: str) -> AwsError:
    return AwsError("InvalidParameterValueException", message)


def parse_function_identifier(
    value: str, qualifier: str | None, region: str, account: str, operation: str
) -> FunctionRef:
    """The function `value` (plus `qualifier`) names, for a request made in
    `region` by `account` to `operation`; or AWS's error for it.

    Meant to run after `validation.validate`, which reports the model's
    pattern and length failures (ValidationException) first, as AWS does.
    """
    m = _FUNCTION_IDENTIFIER.fullmatch(value)
    if m is None:
        # Only reachable without validate(): every function name shape's
        # pattern is narrower than this one. Answer as validate() would.
        errors = collect_errors(protocol.operation(operation), {"FunctionName": value})
        raise ValidationError(format_message([e for e in errors if "at 'functionName'" in e]))
    name = m["name"]
    if m["region"] is not None and m["region"] != region:
        raise AwsError(
            "ResourceNotFoundException",
            f"Functions from '{m['region']}' are not reachable in this region ('{region}')",
        )
    owner = m["account"] or account
    if owner != account and operation not in CROSS_ACCOUNT_OPERATIONS:
        raise AwsError("AccessDeniedException", None)
    derived = m["qualifier"]
    if qualifier is not None and derived is not None and qualifier != derived:
        raise _invalid_parameter(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    qualifier = qualifier if qualifier is not None else derived
    if operation == "CreateFunction" and len(name) > MAX_FUNCTION_NAME_LENGTH:
        # Worded like a validation error, but answered as a parameter error
        # (test_function_arns, long_function_name_exc).
        raise _invalid_parameter(
            format_message(
                [
                    f"Value '{value}' at 'functionName' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {MAX_FUNCTION_NAME_LENGTH}"
                ]
            )
        )
    if qualifier is not None and operation in _UNQUALIFIED_ONLY:
        raise _invalid_parameter(_UNQUALIFIED_ONLY_MESSAGE)
    if operation == "DeleteFunction" and qualifier is not None:
        # Refused before AWS looks the function up.
        if qualifier == "$LATEST":
            raise _invalid_parameter(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if _ALIAS.fullmatch(qualifier):
            raise _invalid_parameter("Deletion of aliases is not currently supported.")
    return FunctionRef(name=name, qualifier=qualifier, region=region, account=owner)


def function_not_found(ref: FunctionRef, operation: str) -> AwsError:
    """AWS's ResourceNotFoundException for a function (version) that is not there."""
    if operation == "DeleteFunction":
        qualifier = None  # DeleteFunction never names the version it missed
    elif operation in _NOT_FOUND_NAMES_LATEST:
        qualifier = ref.qualifier or "$LATEST"
    else:
        qualifier = ref.qualifier
    arn = function_arn(ref.region, ref.account, ref.name, qualifier)
    return AwsError("ResourceNotFoundException", f"Function not found: {arn}")
