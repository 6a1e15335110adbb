"""Real containers: a worker stopped in the middle of a burst of cold starts
leaves nothing on the daemon, those whose creation was in flight included."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from cluster import CLIENTS, containers, create_fleet_functions
from conftest import UpCluster

# New functions, so every invocation is a cold start of its own.
BURST = 32


def quiet_client(endpoint: str) -> Any:
    """No retries, and a caller cut off by the stop fails at once."""
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120, max_pool_connections=64),
    )
    CLIENTS.append(client)
    return client


def test_sigterm_during_a_burst_of_cold_starts_leaves_no_container(
    docker_daemon: None, tmp_path: Path
) -> None:
    up = UpCluster(tmp_path)
    up.start()
    client = quiet_client(up.endpoint)
    names = create_fleet_functions(up.endpoint, "stop", BURST)

    def ours() -> list[dict[str, Any]]:
        return [
            c
            for c in containers(label="lambdafleet.worker")
            if c["labels"]["lambdafleet.worker"].startswith(up.worker_prefix)
        ]

    def call(name: str) -> None:
        try:
            client.invoke(FunctionName=name, Payload=b"{}")
        except Exception:
            pass  # cut off by the stop: what is tested is what it leaves

    with ThreadPoolExecutor(BURST) as pool:
        for name in names:
            pool.submit(call, name)
        # Stopped once the burst is creating containers: most of its
        # creations are queued or in flight then.
        deadline = time.monotonic() + 60
        while not ours():
            assert time.monotonic() < deadline, "the burst started no container"
            time.sleep(0.05)
        assert up.stop() == 0
    assert ours() == []
