"""The project's benchmark suite, one command:

    .venv/bin/python bench/run.py [--quick] [--no-scale]

It prints every figure of the performance issue next to its target, measured
on this machine with gateway, control plane and one worker as separate
processes and a boto3 client (an echo function in Python); the per-hop
breakdown of a warm invocation from the Server-Timing entries the parts
record; and how the control plane's cost per invocation moves with 1 or 100
(simulated) workers and 10,000 queued asynchronous events.

It never fails on a timing: it prints what it measured, and "met" or not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from harness import (
    Cluster,
    client,
    create,
    fleet_status,
    free_port,
    loadgen,
    measure_cold,
    median,
    percentile,
    rss_mb,
    server_timing,
    start,
    wait_healthy,
)
from lambdafleet.worker.prestart import AUTO_COUNT

PAYLOAD = json.dumps({"bench": True}).encode()
HERE = Path(__file__).resolve().parent


class Peak:
    """The most memory the processes held while a block ran."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.mb = max(self.mb, rss_mb(self.pids))

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def one_worker(work: Path, warm_n: int, cold_n: int, seconds: int) -> dict[str, Any]:
    """Warm latency and its breakdown, cold starts in new containers,
    throughput with 64 callers, and memory: one worker, no pre-started pool."""
    cluster = Cluster(work / "one-worker", {"LAMBDAFLEET_PRESTART": "off"})
    out: dict[str, Any] = {}
    try:
        time.sleep(3)  # settled: imports done, first heartbeats sent
        out["idle_mb"] = rss_mb(cluster.pids)
        lam = client(cluster.endpoint)
        name = f"bench-echo-{uuid.uuid4().hex[:6]}"
        create(lam, name)
        for _ in range(20):  # the cold start, then warm-up of connections and caches
            lam.invoke(FunctionName=name, Payload=PAYLOAD)["Payload"].read()
        warm: list[float] = []
        hops: list[dict[str, float]] = []
        for _ in range(warm_n):
            t0 = time.perf_counter()
            r = lam.invoke(FunctionName=name, Payload=PAYLOAD)
            r["Payload"].read()
            warm.append((time.perf_counter() - t0) * 1000)
            assert "FunctionError" not in r
            hops.append(server_timing(r["ResponseMetadata"]["HTTPHeaders"]))
        out["warm"], out["hops"] = warm, hops
        out["cold"] = measure_cold(lam, cold_n, PAYLOAD, None)
        # 64 environments up first: the figure is of warm invocations.
        loadgen(cluster.endpoint, name, "--concurrency", "64", "--count", "640")
        with Peak(cluster.pids) as peak:
            out["load"] = loadgen(
                cluster.endpoint, name, "--concurrency", "64", "--duration", f"{seconds}s"
            )
        out["load_mb"] = peak.mb
    finally:
        cluster.stop()
    return out


def pooled_cold(work: Path, cold_n: int) -> list[float]:
    """Cold starts from the default pre-started pool (LAMBDAFLEET_PRESTART
    unset): one cold start teaches the worker the bucket, not counted."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "LAMBDAFLEET_PRESTART"}
    cluster = Cluster(work / "pooled", env, inherit=False)
    try:
        lam = client(cluster.endpoint)
        measure_cold(lam, 1, PAYLOAD, None)
        return measure_cold(lam, cold_n, PAYLOAD, (cluster.endpoint, AUTO_COUNT))
    finally:
        cluster.stop()


def placement_cost(workers: int, keys: int = 50, rounds: int = 2000) -> float:
    """Microseconds the scheduler spends choosing a worker for one
    invocation (snapshots, then placement), in this process."""
    import asyncio
    import random

    from lambdafleet.control_plane.placement import place
    from lambdafleet.control_plane.workers import WorkerSession

    from lambdafleet.agent.v1 import agent_pb2 as apb

    async def run() -> float:
        rng = random.Random(1)
        sessions = []
        for i in range(workers):
            s = WorkerSession(apb.Register(worker_id=f"w{i}", capacity=64, memory_mb=65536), 10_000)
            for _ in range(20):
                s.idle[f"key-{rng.randrange(keys)}"] += 1
            sessions.append(s)
        by_id = {s.worker_id: s for s in sessions}
        t0 = time.perf_counter()
        for n in range(rounds):
            snapshots = [s.snapshot() for s in sessions]
            chosen = place(snapshots, f"key-{n % keys}", 128, "x86_64")
            # The invocation changes the chosen worker's state (in flight,
            # idle environments), as WorkerSession.invoke does.
            by_id[chosen or "w0"]._changed()
        return (time.perf_counter() - t0) / rounds * 1e6

    return asyncio.run(run())


def fleet_latency(work: Path, workers: int, events: int, count: int) -> dict[str, Any]:
    """Synchronous invocations through a control plane with `workers`
    simulated workers while `events` asynchronous events wait in its queue."""
    work.mkdir(parents=True, exist_ok=True)
    cp = f"127.0.0.1:{free_port()}"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    procs = [
        start(["control-plane", "--listen", cp, "--data-dir", str(work)], work / "cp.log"),
        start(["gateway", "--control-plane", cp, "--port", str(port)], work / "gw.log"),
        subprocess.Popen(
            [sys.executable, str(HERE / "fake_fleet.py"), cp, str(workers)],
            stdout=(work / "fleet.log").open("ab"),
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        wait_healthy(endpoint, workers)
        lam = client(endpoint)
        create(lam, "fast")
        if events:
            # Events of a function that runs for ten minutes: 256 run (the
            # dispatcher's limit), the rest wait in the queue.
            create(lam, "slow", Environment={"Variables": {"LAMBDAFLEET_FAKE_RUN_MS": "600000"}})
            loadgen(
                endpoint,
                "slow",
                "--invocation-type",
                "Event",
                "--count",
                str(events),
                "--concurrency",
                "32",
            )
        queued = int(fleet_status(endpoint)["queued_events"])
        loadgen(endpoint, "fast", "--concurrency", "16", "--count", "400")  # warm
        doc = loadgen(endpoint, "fast", "--concurrency", "16", "--count", str(count))
        doc["queued_events"] = queued
        return doc
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


def breakdown(warm: list[float], hops: list[dict[str, float]]) -> list[tuple[str, float]]:
    """Median time spent in each part of a warm invocation (ms). Each part's
    Server-Timing entry is its whole time, the nested ones included, so a
    part's own share is its time less the next one's."""

    def med(name: str) -> float:
        return median([h[name] for h in hops if name in h])

    gateway, cp, worker, runtime = (
        med(n) for n in ("gateway", "control-plane", "worker", "runtime")
    )
    return [
        ("client (boto3) and HTTP", median(warm) - gateway),
        # A part's share holds the stream to the next part, both ways.
        ("gateway, and its stream to the control plane", gateway - cp),
        ("control plane, and its stream to the worker", cp - worker),
        ("worker: environment, hand-off, logs", worker - runtime),
        ("runtime: Runtime API round trip and handler", runtime),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--no-scale", action="store_true", help="skip the control plane's scale")
    args = parser.parse_args()
    warm_n, cold_n, seconds = (200, 6, 5) if args.quick else (500, 12, 10)
    work = Path(tempfile.mkdtemp(prefix="lambdafleet-bench-"))

    one = one_worker(work, warm_n, cold_n, seconds)
    pooled = pooled_cold(work, cold_n)
    load = one["load"]
    rows: list[tuple[str, str, str, bool]] = []

    def row(label: str, value: float, target: float, unit: str, higher: bool = False) -> None:
        met = value >= target if higher else value <= target
        rows.append((label, f"{value:.1f} {unit}", f"{target:g} {unit}", met))

    row("warm invocation p50", median(one["warm"]), 2.5, "ms")
    row("warm invocation p99", percentile(one["warm"], 99), 10, "ms")
    row("cold start, new container, p50", median(one["cold"]), 400, "ms")
    row("cold start, pre-started, p50", median(pooled), 100, "ms")
    row("warm invocations/s, 64 callers", load["throughput_per_s"], 1000, "/s", higher=True)
    rows.append(
        ("  errors during that load", str(load["error_count"]), "0", load["error_count"] == 0)
    )
    row("memory idle (3 processes)", one["idle_mb"], 250, "MB")
    row("memory under that load", one["load_mb"], 400, "MB")

    print()
    print(f"{'figure':38} {'measured':>12} {'target':>10}  met")
    print("-" * 68)
    for label, value, target, met in rows:
        print(f"{label:38} {value:>12} {target:>10}  {'yes' if met else 'NO'}")
    print(
        f"\n(samples: {len(one['warm'])} warm, {len(one['cold'])} + {len(pooled)} cold, "
        f"{load['count']} under load over {load['duration_s']:.1f} s; "
        f"load p50 {load['latency_ms']['p50']:.1f} ms, p99 {load['latency_ms']['p99']:.1f} ms)"
    )

    print("\nwarm invocation, per hop (medians of the parts' Server-Timing)")
    print("-" * 68)
    for label, ms in breakdown(one["warm"], one["hops"]):
        print(f"{label:50} {ms:8.2f} ms")

    if not args.no_scale:
        print("\ncontrol plane's scale")
        print("-" * 68)
        for n in (1, 10, 100):
            print(f"choosing a worker among {n:>3} workers {placement_cost(n):>27.1f} µs")
        count = 1000 if args.quick else 3000
        events = 10_000
        cases = [(1, 0), (100, 0), (100, events)]
        print(
            f"\n{'simulated workers':>18} {'queued events':>14} {'p50':>9} {'p99':>9} {'rate':>9}"
        )
        for workers, queued in cases:
            doc = fleet_latency(work / f"fleet-{workers}-{queued}", workers, queued, count)
            lat = doc["latency_ms"]
            print(
                f"{workers:>18} {doc['queued_events']:>14} {lat['p50']:>6.2f} ms "
                f"{lat['p99']:>6.2f} ms {doc['throughput_per_s']:>7.0f}/s"
                + (f"  ({doc['error_count']} errors)" if doc["error_count"] else "")
            )
    print(f"\n(logs in {work})")


if __name__ == "__main__":
    main()
