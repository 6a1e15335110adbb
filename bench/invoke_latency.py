"""Warm invocation latency and cold start, end to end with boto3.

Starts control plane, gateway and one worker as separate processes (as they
run across hosts), creates an echo function, and prints a table:

    python bench/invoke_latency.py [--warm 500] [--cold 12] [--prestart auto|N|off]

Cold starts are measured twice, each time on a fresh cluster: without a
pre-started pool (LAMBDAFLEET_PRESTART=off), then with the pool: by default
as a worker runs it (LAMBDAFLEET_PRESTART unset: the pool learns the bucket
from one cold start, not counted), or with a fixed pool of N containers
(--prestart N); --prestart off skips that run. Each measured cold start
waits until the pool is full again, as in a fleet where cold starts of one
bucket seldom follow each other within a refill's time.

Targets are those of the performance issue; this prints them beside the
figures measured here and never fails on a timing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from lambdafleet.worker.prestart import AUTO_COUNT

ECHO = "def handler(event, context):\n    return event\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    args: list[str], log: Path, env: dict[str, str] | None = None, inherit: bool = True
) -> subprocess.Popen[bytes]:
    """`inherit`: `env` adds to this process's environment; else it is all."""
    return subprocess.Popen(
        [sys.executable, "-m", "lambdafleet.cli", "--log-level", "warning", *args],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})} if inherit else dict(env or {}),
    )


def wait_healthy(endpoint: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/_fleet/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{endpoint} never became healthy")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def zip_echo() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", ECHO)
    return buf.getvalue()


def create(client: Any, name: str) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/bench",
        Handler="app.handler",
        Code={"ZipFile": zip_echo()},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def wait_pool(endpoint: str, size: int, timeout: float = 60) -> None:
    """Until the worker reports `size` idle pre-started containers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{endpoint}/_fleet/status", timeout=5) as r:
            workers = json.loads(r.read())["workers"]
        if workers and workers[0]["prestarted"] >= size:
            return
        time.sleep(0.1)
    raise SystemExit(f"the pre-started pool never reached {size}")


class Cluster:
    """Control plane, gateway and one worker as separate processes."""

    def __init__(self, work: Path, worker_env: dict[str, str], inherit: bool = True) -> None:
        work.mkdir(parents=True, exist_ok=True)
        cp_port, gw_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{gw_port}"
        self.worker_id = f"bench-{uuid.uuid4().hex[:6]}"
        self.work = work
        self.procs = [
            start(
                [
                    "control-plane",
                    "--listen",
                    f"127.0.0.1:{cp_port}",
                    "--data-dir",
                    str(work / "data"),
                ],
                work / "cp.log",
            ),
            start(
                ["gateway", "--control-plane", f"127.0.0.1:{cp_port}", "--port", str(gw_port)],
                work / "gw.log",
            ),
            start(
                [
                    "worker",
                    "--control-plane",
                    f"127.0.0.1:{cp_port}",
                    "--worker-id",
                    self.worker_id,
                    "--cache-dir",
                    str(work / "cache"),
                ],
                work / "worker.log",
                worker_env,
                inherit,
            ),
        ]

    def client(self) -> Any:
        wait_healthy(self.endpoint)
        return boto3.client(
            "lambda",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, read_timeout=300, max_pool_connections=4),
        )

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


def measure_cold(client: Any, n: int, payload: bytes, pool: tuple[str, int] | None) -> list[float]:
    """`pool`: (endpoint, size) to wait for before each cold start."""
    cold: list[float] = []
    for i in range(n):
        cold_name = f"bench-cold-{uuid.uuid4().hex[:6]}-{i}"
        create(client, cold_name)
        if pool is not None:
            wait_pool(*pool)
        t0 = time.perf_counter()
        r = client.invoke(FunctionName=cold_name, Payload=payload)
        r["Payload"].read()
        cold.append((time.perf_counter() - t0) * 1000)
        assert "FunctionError" not in r
        client.delete_function(FunctionName=cold_name)
    return cold


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=500)
    parser.add_argument("--cold", type=int, default=12)
    parser.add_argument(
        "--prestart",
        default="auto",
        help="pool of the second cold-start run: auto (the default pool), N, or off",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lambdafleet-bench-"))
    payload = json.dumps({"bench": True}).encode()
    cluster = Cluster(work / "plain", {"LAMBDAFLEET_PRESTART": "off"})
    try:
        client = cluster.client()
        name = f"bench-echo-{uuid.uuid4().hex[:6]}"
        create(client, name)
        client.invoke(FunctionName=name, Payload=payload)  # cold, not counted
        for _ in range(20):  # warm-up of client connections and caches
            client.invoke(FunctionName=name, Payload=payload)
        warm: list[float] = []
        for _ in range(args.warm):
            t0 = time.perf_counter()
            r = client.invoke(FunctionName=name, Payload=payload)
            r["Payload"].read()
            warm.append((time.perf_counter() - t0) * 1000)
            assert "FunctionError" not in r
        cold = measure_cold(client, args.cold, payload, None)
    finally:
        cluster.stop()

    pooled: list[float] = []
    pool_label = ""
    if args.prestart != "off":
        env = {k: v for k, v in os.environ.items() if k != "LAMBDAFLEET_PRESTART"}
        if args.prestart == "auto":
            size, pool_label = AUTO_COUNT, f"default pool ({AUTO_COUNT})"
        else:
            size, pool_label = int(args.prestart), f"pool of {args.prestart}"
            env["LAMBDAFLEET_PRESTART"] = f"python3.11:128={size}"
        cluster = Cluster(work / "prestart", env, inherit=False)
        try:
            client = cluster.client()
            if args.prestart == "auto":
                measure_cold(client, 1, payload, None)  # teaches the pool its bucket
            pooled = measure_cold(client, args.cold, payload, (cluster.endpoint, size))
        finally:
            cluster.stop()

    rows = [
        ("warm invocation p50", statistics.median(warm), 2.5, len(warm)),
        ("warm invocation p99", percentile(warm, 99), 10.0, len(warm)),
        ("cold start, new container, p50", statistics.median(cold), 400.0, len(cold)),
        ("cold start, new container, p99", percentile(cold, 99), None, len(cold)),
    ]
    if pooled:
        rows += [
            (
                f"cold start, {pool_label}, p50",
                statistics.median(pooled),
                100.0,
                len(pooled),
            ),
            (
                f"cold start, {pool_label}, p99",
                percentile(pooled, 99),
                None,
                len(pooled),
            ),
        ]
    print()
    print(f"{'figure':34} {'measured':>12} {'target':>10} {'samples':>8}")
    print("-" * 68)
    for label, value, target, n in rows:
        target_text = f"{target:.1f} ms" if target is not None else "-"
        print(f"{label:34} {value:9.2f} ms {target_text:>10} {n:>8}")
    print()
    print(f"(gateway, control plane and worker as separate processes; logs in {work})")


if __name__ == "__main__":
    main()
