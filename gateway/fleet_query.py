"""The query parameters of the `/_fleet/` endpoints, checked before any call
to the control plane. Pure: each function takes Tornado's query arguments
(name -> list of raw values) and answers the value, or raises QueryError
naming the parameter, which the handlers answer as a JSON 400."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

Arguments = Mapping[str, Sequence[bytes]]

# The control plane's fields for these numbers are int32.
INT32_MAX = 2**31 - 1
# Names, regions, accounts: short printable text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 256
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class QueryError(ValueError):
    """A query parameter the endpoint cannot take."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = f"{parameter}: {message}"

    def body(self) -> dict[str, str]:
        return {"message": self.message, "parameter": self.parameter}


def only(arguments: Arguments, known: Collection[str]) -> None:
    """Refuse parameters the endpoint does not know (a misspelt one would
    otherwise be ignored without a word)."""
    for name in sorted(arguments):
        if name not in known:
            expected = ", ".join(sorted(known)) or "none"
            raise QueryError(name, f"unknown parameter (expected: {expected})")


def text(arguments: Arguments, name: str, default: str = "", pattern: str | None = None) -> str:
    """The last value of `name` as UTF-8 text without control characters,
    at most MAX_TEXT characters, matching `pattern` when given."""
    values = arguments.get(name)
    if not values:
        return default
    try:
        value = values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise QueryError(name, "must be UTF-8 text") from None
    if _CONTROL.search(value):
        raise QueryError(name, "must not hold control characters")
    if len(value) > MAX_TEXT:
        raise QueryError(name, f"must be at most {MAX_TEXT} characters")
    if pattern is not None and value and not re.fullmatch(pattern, value):
        raise QueryError(name, f"must match {pattern}")
    return value


def integer(arguments: Arguments, name: str, default: int, low: int, high: int) -> int:
    """The last value of `name` as an integer from `low` to `high`."""
    raw = text(arguments, name, str(default)).strip()
    bound = f"must be an integer from {low} to {high}"
    if not re.fullmatch(r"[+-]?\d{1,19}", raw):
        raise QueryError(name, bound)
    value = int(raw)
    if not low <= value <= high:
        raise QueryError(name, bound)
    return value


def flag(arguments: Arguments, name: str) -> bool:
    """`1`, `true`, `yes`, `on` (or `0`, `false`, `no`, `off`, empty)."""
    value = text(arguments, name).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise QueryError(name, "must be 1, true, yes, on, 0, false, no or off")
