"""Per-part timings of an invocation: the control plane sends them to the
gateway as gRPC trailing metadata, the gateway answers them as a
Server-Timing header (`gateway;dur=1.234, control-plane;dur=0.9, ...`), and
`lambdafleet bench` and bench/run.py read that header. One definition of the
key and the syntax for all of them."""

from __future__ import annotations

from collections.abc import Mapping

# Trailing metadata of a control plane answer that carries timings.
METADATA_KEY = "lf-server-timing"


def format_entries(timing: Mapping[str, float]) -> str:
    """{"worker": 1.234} -> 'worker;dur=1.234'."""
    return ", ".join(f"{part};dur={ms:.3f}" for part, ms in timing.items())


def parse(header: str) -> dict[str, float]:
    """'gateway;dur=1.2, init;dur=300' -> {"gateway": 1.2, "init": 300.0}."""
    timings: dict[str, float] = {}
    for entry in header.split(","):
        name, _, rest = entry.strip().partition(";")
        for attr in rest.split(";"):
            key, _, value = attr.strip().partition("=")
            if key == "dur" and name:
                timings[name] = float(value)
    return timings
