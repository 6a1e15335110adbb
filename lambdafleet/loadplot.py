"""The picture `lambdafleet bench --plot` draws: every invocation's latency
over the run, cold starts and errors marked, with p50 and p99 per second and
the throughput beneath."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from .loadstats import Sample, percentile


def per_second(samples: Sequence[Sample]) -> list[tuple[int, int, float, float]]:
    """(second, invocations, p50 ms, p99 ms) for each second of the run that
    saw an invocation start."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        buckets[int(s.started_s)].append(s.latency_ms)
    return [
        (second, len(values), percentile(values, 50), percentile(values, 99))
        for second, values in sorted(buckets.items())
    ]


def plot(samples: Sequence[Sample], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    groups = {
        "warm": [s for s in samples if not s.cold_start and not s.error],
        "cold start": [s for s in samples if s.cold_start and not s.error],
        "error": [s for s in samples if s.error],
    }
    colours = {"warm": "#4c72b0", "cold start": "#dd8452", "error": "#c44e52"}
    for label, group in groups.items():
        if group:
            top.scatter(
                [s.started_s for s in group],
                [s.latency_ms for s in group],
                s=4,
                alpha=0.5,
                color=colours[label],
                label=f"{label} ({len(group)})",
            )
    seconds = per_second(samples)
    if seconds:
        xs = [second + 0.5 for second, *_ in seconds]
        top.plot(xs, [p50 for *_, p50, _ in seconds], color="black", label="p50 per second")
        top.plot(xs, [p99 for *_, p99 in seconds], color="grey", ls="--", label="p99 per second")
        bottom.bar(xs, [n for _, n, _, _ in seconds], width=0.9, color="#55a868")
    top.set_yscale("log")
    top.set_ylabel("latency (ms)")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(title or "lambdafleet bench")
    bottom.set_ylabel("invocations / s")
    bottom.set_xlabel("time since start (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
