"""Warm invocation latency and cold start, end to end with boto3.

Starts control plane, gateway and one worker as separate processes (as they
run across hosts), creates an echo function, and prints a table:

    python bench/invoke_latency.py [--warm 500] [--cold 12]

Targets are those of the performance issue; this prints them beside the
figures measured here and never fails on a timing.
"""

from __future__ import annotations

import argparse
import io
import json
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

ECHO = "def handler(event, context):\n    return event\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lambdafleet.cli", "--log-level", "warning", *args],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=500)
    parser.add_argument("--cold", type=int, default=12)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lambdafleet-bench-"))
    cp_port, gw_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{gw_port}"
    procs = [
        start(
            ["control-plane", "--listen", f"127.0.0.1:{cp_port}", "--data-dir", str(work / "data")],
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
                f"bench-{uuid.uuid4().hex[:6]}",
                "--cache-dir",
                str(work / "cache"),
            ],
            work / "worker.log",
        ),
    ]
    try:
        wait_healthy(endpoint)
        client = boto3.client(
            "lambda",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, read_timeout=300, max_pool_connections=4),
        )
        payload = json.dumps({"bench": True}).encode()

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

        cold: list[float] = []
        for i in range(args.cold):
            cold_name = f"bench-cold-{uuid.uuid4().hex[:6]}-{i}"
            create(client, cold_name)
            t0 = time.perf_counter()
            r = client.invoke(FunctionName=cold_name, Payload=payload)
            r["Payload"].read()
            cold.append((time.perf_counter() - t0) * 1000)
            client.delete_function(FunctionName=cold_name)

        rows = [
            ("warm invocation p50", statistics.median(warm), 2.5, len(warm)),
            ("warm invocation p99", percentile(warm, 99), 10.0, len(warm)),
            ("cold start, new container, p50", statistics.median(cold), 400.0, len(cold)),
            ("cold start, new container, p99", percentile(cold, 99), None, len(cold)),
        ]
        print()
        print(f"{'figure':34} {'measured':>12} {'target':>10} {'samples':>8}")
        print("-" * 68)
        for label, value, target, n in rows:
            target_text = f"{target:.1f} ms" if target is not None else "-"
            print(f"{label:34} {value:9.2f} ms {target_text:>10} {n:>8}")
        print()
        print(f"(gateway, control plane and worker as separate processes; logs in {work})")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
