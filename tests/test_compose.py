"""compose.yaml for real, as an operator runs it from the README: the
offline preparation, `docker-compose up -d`, invocations from boto3 on the
host that run function containers on both workers' own Docker daemons; then
`docker-compose up -d --scale worker=3` (which must leave the running parts
alone, calls in flight included, and give the new worker work once its
runtime image is ready), a worker killed as a crash kills it (restarted by
the file's policy, registered again under its id), and `docker-compose down
-v`, which must leave no volume of the project behind.

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
import signal
import subprocess
import sys
import time
import urllib.request
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
SCALED = 3

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

    def containers(self, service: str = "") -> list[str]:
        """Full ids of the project's containers (of one service), stopped too."""
        return sorted(self.run("ps", "-a", "-q", *([service] if service else [])).split())


def inspect(container: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(
        subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    return found[0]


def project_volumes(project: str) -> set[str]:
    """The volumes compose made for the project (they carry its label)."""
    listed = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return set(listed.split())


def existing_volumes() -> set[str]:
    listed = subprocess.run(
        ["docker", "volume", "ls", "-q"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return set(listed.split())


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
    # No BASE_IMAGE: the README's compose commands set none; the offline
    # preparation's choice must reach them on its own (the test sets it only
    # where the README does).
    env = {
        **{k: v for k, v in os.environ.items() if k != "BASE_IMAGE"},
        "LAMBDAFLEET_TAG": f"test-{checkout}",
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
        env={**env, "BASE_IMAGE": BASE_IMAGE},
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


def by_worker(endpoint: str, name: str) -> dict[str, set[str]]:
    """Which worker (its id is its container's hostname) holds which
    function containers of `name`, as the control plane knows it."""
    found: dict[str, set[str]] = {}
    for worker in fleet_status(endpoint)["workers"]:
        found[worker["worker_id"]] = {
            env["container_id"][:12]
            for env in worker["environments"]
            if env["function_arn"].split(":")[6] == name
        }
    return found


def wait_ready_everywhere(endpoint: str, runtime: str, workers: int, timeout: float) -> None:
    """Until `workers` live workers report `runtime`'s image ready."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = fleet_status(endpoint)
        ready = [w for w in status["workers"] if runtime in w["ready_runtimes"]]
        if len(ready) >= workers:
            return
        time.sleep(0.5)
    raise AssertionError(f"not {workers} workers with {runtime} ready: {status['workers']}")


def invoke(client: Any, name: str, sleep: float) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}))
    assert "FunctionError" not in response, response["Payload"].read()
    result: dict[str, Any] = json.load(response["Payload"])
    return result


def test_compose_cluster_as_an_operator_runs_it(compose: Compose) -> None:
    # The README's offline start (its BASE_IMAGE as an operator's shell may
    # still export it); every later command runs without it.
    compose.env["BASE_IMAGE"] = BASE_IMAGE
    compose.timed("up -d", "up", "-d", "--no-build")
    del compose.env["BASE_IMAGE"]
    endpoint = name = ""
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
        check_workers_ran(compose, endpoint, name, results, WORKERS)
        # The parts talked mutual TLS (compose.yaml's certs), never plaintext.
        logs = compose.run("logs", "--no-color", "control-plane", "gateway", "worker", timeout=60)
        assert logs.count('"event": "transport.secured"') >= 2 + WORKERS, logs[-2000:]
        assert '"mode": "mtls"' in logs, logs[-2000:]
        assert "transport.plaintext" not in logs, logs[-2000:]

        check_scaling_leaves_running_parts_alone(compose, endpoint, client, name)
        check_killed_worker_restarts(compose, endpoint, client, name)

        # Every volume the project made goes with `down -v`: its named ones
        # and the daemons' storage of every worker, restarted ones included.
        volumes = project_volumes(compose.project)
        for container in compose.containers():
            volumes |= {
                m["Name"] for m in inspect(container)["Mounts"] if m.get("Type") == "volume"
            }
        assert volumes, "the project made no volume at all?"
        compose.timed("down -v", "down", "-v", "--remove-orphans", "-t", "30", timeout=300)
        assert not project_volumes(compose.project)
        left = volumes & existing_volumes()
        assert not left, f"down -v left volumes of the project: {left}"
    except BaseException:
        print(compose.logs())
        if endpoint and name:
            print(function_logs(endpoint, name))
        raise


def function_logs(endpoint: str, name: str) -> str:
    """The function's own log lines (a runtime's error output is there)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_fleet/logs/{name}", timeout=10) as answer:
            return str(answer.read().decode())
    except OSError as exc:
        return f"no function logs: {exc}"


def check_workers_ran(
    compose: Compose, endpoint: str, name: str, results: list[dict[str, Any]], workers: int
) -> None:
    """Every worker ran containers of `name` that the invocations reached,
    as the control plane knows it and as each worker's own daemon lists it."""
    ran_in = {result["container"] for result in results}
    known = by_worker(endpoint, name)
    containers = compose.run("ps", "-q", "worker").split()
    assert len(containers) == workers, containers
    for container in containers:
        listed = subprocess.run(
            ["docker", "exec", container, "docker", "ps", "--no-trunc", "--format",
             "{{.ID}} {{.Image}} {{.Status}} {{.Names}}"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.splitlines()  # fmt: skip
        print(f"docker ps in worker {container[:12]}:\n  " + "\n  ".join(listed))
        expected = known.get(container[:12])
        assert expected, f"worker {container[:12]} ran no container of {name}: {known}"
        on_daemon = {line.split()[0][:12] for line in listed}
        assert expected <= on_daemon, (expected, listed)
        # The invocations reached containers on this daemon.
        assert expected & ran_in, (expected, ran_in)


def check_scaling_leaves_running_parts_alone(
    compose: Compose, endpoint: str, client: Any, name: str
) -> None:
    """`docker-compose up -d --scale worker=3` exactly as the README writes
    it: the running containers stay (same ids), calls in flight are
    answered, and the new worker prepares the fleet's runtime by itself."""
    before = compose.containers()
    # When each running container started (the one-shot certs has exited).
    started_at = {
        c: state["StartedAt"] for c in before if (state := inspect(c)["State"])["Running"]
    }
    # Calls in flight during the scale, each 4 s long.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        in_flight = [pool.submit(invoke, client, name, 4.0) for _ in range(4)]
        time.sleep(1.0)
        compose.timed("up -d --scale worker=3", "up", "-d", "--scale", f"worker={SCALED}")
        for future in in_flight:
            future.result()
    after = compose.containers()
    assert set(before) <= set(after), f"containers were replaced: {before} -> {after}"
    for container, when in started_at.items():
        # Not restarted either (compose starts the one-shot certs again).
        state = inspect(container)["State"]
        assert state["Running"] and state["StartedAt"] == when, (container, state)
    assert len(compose.containers("worker")) == SCALED

    started = time.monotonic()
    wait_healthy(endpoint, timeout=180, workers=SCALED)
    # The new worker is told the fleet's runtimes and makes them ready
    # without a call for them; until then it is given none of their work.
    wait_ready_everywhere(endpoint, "python3.11", SCALED, timeout=600)
    compose.timings["third worker ready"] = time.monotonic() - started
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: invoke(client, name, 2.0), range(32)))
    check_workers_ran(compose, endpoint, name, results, SCALED)


def check_killed_worker_restarts(compose: Compose, endpoint: str, client: Any, name: str) -> None:
    """A worker whose process is killed as a crash kills it (SIGKILL from
    outside, as the kernel's OOM killer sends it) is started again by the
    file's restart policy, in the same container, and registers again."""
    victim = compose.containers("worker")[0]
    pid = inspect(victim)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    state = inspect(victim)["State"]
    while time.monotonic() < deadline:
        state = inspect(victim)["State"]
        if state["Running"] and state["Pid"] != pid:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"killed worker {victim[:12]} was not restarted: {state}")
    assert inspect(victim)["RestartCount"] >= 1
    # Registered again under its id (its hostname), beside the others.
    deadline = time.monotonic() + 180
    ids: set[str] = set()
    expected = {c[:12] for c in compose.containers("worker")}
    while time.monotonic() < deadline:
        ids = {w["worker_id"] for w in fleet_status(endpoint)["workers"]}
        if ids == expected:
            break
        time.sleep(0.5)
    assert ids == expected, (ids, expected)
    wait_ready_everywhere(endpoint, "python3.11", SCALED, timeout=600)
    invoke(client, name, 0.1)
