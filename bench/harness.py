"""What the benchmarks share: lambdafleet's parts as separate processes,
functions to measure, the memory those processes hold, and the per-hop
timings the parts report in each answer's Server-Timing header."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from lambdafleet.server_timing import parse as parse_server_timing

ECHO = "def handler(event, context):\n    return event\n"
ROLE = "arn:aws:iam::000000000000:role/bench"


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


def wait_healthy(endpoint: str, workers: int = 1, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/_fleet/health", timeout=1) as r:
                if json.loads(r.read()).get("workers", 0) >= workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{endpoint} never had {workers} live worker(s)")


def fleet_status(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/_fleet/status", timeout=5) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def zip_of(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def client(endpoint: str, pool: int = 4) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 0}, read_timeout=300, max_pool_connections=pool),
    )


def create(lam: Any, name: str, source: str = ECHO, **extra: Any) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_of(source)},
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def rss_mb(pids: Sequence[int]) -> float:
    """Resident memory of these processes, in MB (from /proc)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def server_timing(headers: dict[str, str]) -> dict[str, float]:
    """The parts' timings of one answer (boto3 lower-cases header names)."""
    return parse_server_timing(headers.get("server-timing", ""))


class Cluster:
    """Control plane, gateway and one worker as separate processes, as they
    run across hosts."""

    def __init__(self, work: Path, worker_env: dict[str, str], inherit: bool = True) -> None:
        work.mkdir(parents=True, exist_ok=True)
        cp_port, gw_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{gw_port}"
        self.worker_id = f"bench-{uuid.uuid4().hex[:6]}"
        self.work = work
        self.procs = [
            start(
                ["control-plane", "--listen", f"127.0.0.1:{cp_port}", "--data-dir", str(work)],
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
        wait_healthy(self.endpoint)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_pool(endpoint: str, size: int, timeout: float = 60) -> None:
    """Until the worker reports `size` idle pre-started containers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = fleet_status(endpoint)["workers"]
        if workers and workers[0]["prestarted"] >= size:
            return
        time.sleep(0.1)
    raise SystemExit(f"the pre-started pool never reached {size}")


def measure_cold(lam: Any, n: int, payload: bytes, pool: tuple[str, int] | None) -> list[float]:
    """`n` first invocations of new functions (ms); `pool`: (endpoint, size)
    to wait for before each, as in a fleet where cold starts of one bucket
    seldom follow each other within a refill's time."""
    cold: list[float] = []
    for i in range(n):
        name = f"bench-cold-{uuid.uuid4().hex[:6]}-{i}"
        create(lam, name)
        if pool is not None:
            wait_pool(*pool)
        t0 = time.perf_counter()
        r = lam.invoke(FunctionName=name, Payload=payload)
        r["Payload"].read()
        cold.append((time.perf_counter() - t0) * 1000)
        assert "FunctionError" not in r
        lam.delete_function(FunctionName=name)
    return cold


def loadgen(endpoint: str, function: str, *args: str) -> dict[str, Any]:
    """`lambdafleet bench ... --json` in a process of its own."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdafleet.cli",
            "bench",
            function,
            "--endpoint",
            endpoint,
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc: dict[str, Any] = json.loads(out)
    return doc
