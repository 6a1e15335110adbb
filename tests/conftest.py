from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import Process, close_clients, free_port, lambda_client, wait_healthy


def require_docker() -> None:
    """Tests that run functions need a real daemon: without one they fail,
    loudly, never skip."""
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.fail(f"a Docker daemon is required: {result.stderr.strip()[:300]}")


@pytest.fixture(scope="session", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_clients()


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    require_docker()


# Asynchronous invocations' retry delays in the session's cluster: a retry
# AWS makes after a minute comes after 0.6 s.
ASYNC_DELAY_SCALE = "0.01"


class UpCluster:
    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = env or {}
        self.data_dir = root / "data"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        self.process = Process(
            ["up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            self.root / f"up-{self.runs}.log",
            env={"LAMBDAFLEET_ASYNC_DELAY_SCALE": ASYNC_DELAY_SCALE, **self.env},
        ).start()
        wait_healthy(self.endpoint)

    @property
    def worker_prefix(self) -> str:
        """The ids `up` gives its workers: stable per data directory."""
        tag = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:8]
        return f"up-{tag}-"

    def stop(self) -> int:
        assert self.process is not None
        return self.process.stop()

    def client(self, region: str = "us-east-1") -> Any:
        return lambda_client(self.endpoint, region)


@pytest.fixture(scope="session")
def cluster(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    """One `lambdafleet up` for the session's API tests."""
    up = UpCluster(tmp_path_factory.mktemp("up"))
    up.start()
    yield up
    up.stop()


@pytest.fixture
def client(cluster: UpCluster) -> Any:
    return cluster.client()
