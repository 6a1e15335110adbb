"""compose.yaml for real: the offline preparation, `docker-compose up -d`, and
invocations from boto3 on the host that run function containers on both
workers' own Docker daemons, then `docker-compose down -v`.

It needs Docker and docker-compose (or Docker Compose v2) and fails without
them, never skips. Its images are built offline by scripts/offline-images.sh
and tagged per checkout, so that parallel checkouts sharing one daemon do not
overwrite each other's images; the daemon's build cache keeps later runs quick.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, fleet_status, lambda_client, wait_healthy, zip_bytes

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "lambdafleet/base:bookworm"
WORKERS = 2

# A fresh machine builds the base image, the cluster's images and a runtime
# image on each worker's daemon (debootstrap included): a few minutes.
pytestmark = pytest.mark.timeout(1200)

SLEEPY_HANDLER = """
import socket
import time

def handler(event, context):
    time.sleep(event["sleep"])
    return {"container": socket.gethostname()}
"""


def compose_command() -> list[str]:
    """docker-compose (1.29, Debian's) or Docker Compose v2; fail without either."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode == 0:
        return ["docker", "compose"]
    pytest.fail("docker-compose is required (apt-get install -y docker-compose; .ci/run does)")


@dataclass
class Compose:
    """One compose project of the checkout's compose.yaml."""

    command: list[str]
    project: str
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        result = subprocess.run(
            [*self.command, "-p", self.project, "-f", str(ROOT / "compose.yaml"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def timed(self, name: str, *args: str, timeout: float = 600) -> str:
        started = time.monotonic()
        output = self.run(*args, timeout=timeout)
        self.timings[name] = time.monotonic() - started
        return output

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail=60", check=False, timeout=60)


def host_image_cache() -> Path:
    """The host's runtime image cache: shared with the workers, so that a root
    filesystem debootstrapped once (by a worker or by the host's own tests)
    serves both."""
    configured = os.environ.get("LAMBDAFLEET_IMAGE_CACHE")
    cache = Path(configured) if configured else Path.home() / ".cache" / "lambdafleet" / "images"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture
def compose(docker_daemon: None) -> Iterator[Compose]:
    command = compose_command()
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    env = {
        **os.environ,
        "LAMBDAFLEET_TAG": f"test-{checkout}",
        "BASE_IMAGE": BASE_IMAGE,
        # Empty: the gateway is published on a free port of 127.0.0.1.
        "LAMBDAFLEET_GATEWAY_PORT": "",
        "LAMBDAFLEET_IMAGE_CACHE": str(host_image_cache()),
        "PYTHON": sys.executable,
        "COMPOSE": " ".join(command),
    }
    project = Compose(command, f"lf-test-{uuid.uuid4().hex[:8]}", env)
    started = time.monotonic()
    prepared = subprocess.run(
        ["bash", str(ROOT / "scripts" / "offline-images.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    project.timings["offline preparation"] = time.monotonic() - started
    assert prepared.returncode == 0, f"offline-images.sh failed:\n{prepared.stderr[-4000:]}"
    try:
        yield project
    finally:
        project.timed("down -v", "down", "-v", "--remove-orphans", "-t", "30", timeout=300)
        print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in project.timings.items()))


def invoke(client: Any, name: str, sleep: float) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}))
    assert "FunctionError" not in response, response["Payload"].read()
    result: dict[str, Any] = json.load(response["Payload"])
    return result


def test_compose_cluster_runs_functions_on_both_workers(compose: Compose) -> None:
    compose.timed("up -d", "up", "-d", "--no-build")
    try:
        port = compose.run("port", "gateway", "4566").strip().rsplit(":", 1)[1]
        endpoint = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        wait_healthy(endpoint, timeout=180, workers=WORKERS)
        compose.timings["both workers live"] = time.monotonic() - started

        client = lambda_client(endpoint)
        name = f"compose-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_bytes({"app.py": SLEEPY_HANDLER})},
            Timeout=60,
        )
        # Each worker builds the runtime image on its own daemon first.
        client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 600}
        )
        compose.timings["function active"] = time.monotonic() - started

        # Eight at a time, each a second long: placement by free memory
        # spreads them over both workers.
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: invoke(client, name, 1.0), range(16)))
        compose.timings["16 invocations"] = time.monotonic() - started
        ran_in = {result["container"] for result in results}

        # Which worker (its id is its container's hostname) holds which
        # function containers, as the control plane knows it...
        by_worker: dict[str, set[str]] = {}
        for worker in fleet_status(endpoint)["workers"]:
            by_worker[worker["worker_id"]] = {
                env["container_id"][:12]
                for env in worker["environments"]
                if env["function_arn"].split(":")[6] == name
            }
        # ...and as each worker's own daemon lists it.
        workers = compose.run("ps", "-q", "worker").split()
        assert len(workers) == WORKERS, workers
        for container in workers:
            listed = subprocess.run(
                ["docker", "exec", container, "docker", "ps", "--no-trunc", "--format",
                 "{{.ID}} {{.Image}} {{.Status}} {{.Names}}"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.splitlines()  # fmt: skip
            print(f"docker ps in worker {container[:12]}:\n  " + "\n  ".join(listed))
            expected = by_worker.get(container[:12])
            assert expected, f"worker {container[:12]} ran no container of {name}: {by_worker}"
            on_daemon = {line.split()[0][:12] for line in listed}
            assert expected <= on_daemon, (expected, listed)
            # The invocations reached containers on this daemon.
            assert expected & ran_in, (expected, ran_in)
        # The parts talked mutual TLS (compose.yaml's certs), never plaintext.
        logs = compose.run("logs", "--no-color", "control-plane", "gateway", "worker", timeout=60)
        assert logs.count('"event": "transport.secured"') >= 2 + WORKERS, logs[-2000:]
        assert '"mode": "mtls"' in logs, logs[-2000:]
        assert "transport.plaintext" not in logs, logs[-2000:]
    except BaseException:
        print(compose.logs())
        raise
