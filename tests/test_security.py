"""Security between the parts, as an operator runs them: separate processes
over mutual TLS and a token (certificates from a throwaway CA made here),
a worker without valid credentials refused, plaintext refused off
loopback, and what a function container can see."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import ROLE, Process, free_port, lambda_client, wait_healthy, zip_bytes

from lambdafleet.certs import write_bundle

# Lists what the sandbox can see: its variables, the Docker socket, the
# worker's credential files (paths given in the event), its user and limits.
PROBE = """
import os

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(64).decode(errors="replace")
    except OSError as exc:
        return type(exc).__name__

def _limit(*paths):
    for path in paths:
        if os.path.exists(path):
            return _read(path).strip()
    return None

def handler(event, context):
    return {
        "env": dict(os.environ),
        "docker_sock": os.path.exists("/var/run/docker.sock"),
        "credentials": {p: _read(p) for p in event["paths"]},
        "uid": os.getuid(),
        "pids_max": _limit("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"),
        "memory_max": _limit(
            "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        ),
    }
"""


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    return write_bundle(tmp_path / "certs", [])


def tls(certs: dict[str, Path], part: str) -> list[str]:
    return [
        "--tls-cert", str(certs[f"{part}.pem"]),
        "--tls-key", str(certs[f"{part}-key.pem"]),
        "--tls-ca", str(certs["ca.pem"]),
    ]  # fmt: skip


class Parts:
    def __init__(self, tmp: Path, certs: dict[str, Path]) -> None:
        self.tmp = tmp
        self.certs = certs
        self.cp_address = f"127.0.0.1:{free_port()}"
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self.processes: list[Process] = []

    def start(self, args: list[str], log: str, env: dict[str, str] | None = None) -> Process:
        process = Process(args, self.tmp / log, env).start()
        self.processes.append(process)
        return process

    def control_plane(self) -> Process:
        return self.start(
            [
                "control-plane", "--listen", self.cp_address, "--data-dir", str(self.tmp / "cp"),
                *tls(self.certs, "control-plane"),
                "--token-file", str(self.certs["token"]),
            ],
            "cp.log",
        )  # fmt: skip

    def gateway(self) -> Process:
        port = self.endpoint.rsplit(":", 1)[1]
        return self.start(
            ["gateway", "--control-plane", self.cp_address, "--port", port,
             *tls(self.certs, "gateway")],
            "gw.log",
            # The token from the environment, as every flag may be.
            env={"LAMBDAFLEET_TOKEN": self.certs["token"].read_text().strip()},
        )  # fmt: skip

    def worker(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        return self.start(
            ["worker", "--control-plane", self.cp_address, "--worker-id",
             f"sec-{uuid.uuid4().hex[:6]}", "--cache-dir", str(self.tmp / name), *args],
            f"{name}.log",
            env,
        )  # fmt: skip

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def parts(tmp_path: Path, certs: dict[str, Path]) -> Iterator[Parts]:
    p = Parts(tmp_path, certs)
    try:
        yield p
    finally:
        p.stop()


def wait_in_log(process: Process, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process.output():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not logged: {process.output()[-2000:]}")


def _json_line(line: str) -> dict[str, object]:
    try:
        found = json.loads(line)
    except ValueError:
        return {}  # gRPC's own stderr, not a log event
    return found if isinstance(found, dict) else {}


def rejection_pauses(process: Process, count: int, timeout: float = 30) -> list[float]:
    """The `retry_in_s` of the worker's first `count` rejections."""
    deadline = time.monotonic() + timeout
    pauses: list[float] = []
    while time.monotonic() < deadline:
        pauses = [
            float(event["retry_in_s"])
            for event in map(_json_line, process.output().splitlines())
            if event.get("event") == "worker.rejected"
        ]
        if len(pauses) >= count:
            return pauses[:count]
        time.sleep(0.2)
    raise AssertionError(f"{count} rejections not logged: {pauses} {process.output()[-2000:]}")


def test_container_sees_no_socket_and_no_credentials(docker_daemon: None, parts: Parts) -> None:
    certs = parts.certs
    token = certs["token"].read_text().strip()
    cp = parts.control_plane()
    parts.gateway()
    # The worker's token in its environment, its key on its disk.
    worker = parts.worker(
        "worker", tls(certs, "worker"), env={"LAMBDAFLEET_TOKEN": token, "SECRET_MARK": "x1"}
    )
    wait_healthy(parts.endpoint, timeout=60)
    client = lambda_client(parts.endpoint)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": PROBE})}, MemorySize=256,
    )  # fmt: skip
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    secrets = [str(certs[n]) for n in ("worker-key.pem", "token", "ca-key.pem")]
    response = client.invoke(FunctionName=name, Payload=json.dumps({"paths": secrets}))
    assert "FunctionError" not in response
    seen = json.loads(response["Payload"].read())

    env = seen["env"]
    assert not any(k.startswith("LAMBDAFLEET_") for k in env), sorted(env)
    assert "SECRET_MARK" not in env and "DOCKER_HOST" not in env
    assert token not in json.dumps(env)
    assert seen["docker_sock"] is False
    for path, content in seen["credentials"].items():
        assert content in ("FileNotFoundError", "PermissionError"), (path, content)
    assert seen["uid"] == 993
    assert seen["pids_max"] == "1024"
    assert int(seen["memory_max"]) == 256 * 1024 * 1024
    assert '"mode": "mtls+token"' in cp.output()
    assert '"event": "worker.registered"' in worker.output()


def test_worker_without_valid_credentials_cannot_register(parts: Parts, tmp_path: Path) -> None:
    certs = parts.certs
    cp = parts.control_plane()
    parts.gateway()
    (tmp_path / "wrong").write_text("not-the-token\n")
    other_ca = write_bundle(tmp_path / "other", [])
    wrong_token = parts.worker(
        "wrong-token",
        ["--backend", "fake", *tls(certs, "worker"), "--token-file", str(tmp_path / "wrong")],
    )
    no_cert = parts.worker(
        "no-cert",
        ["--backend", "fake", "--tls-ca", str(certs["ca.pem"]),
         "--token-file", str(certs["token"])],
    )  # fmt: skip
    foreign = parts.worker(
        "foreign", ["--backend", "fake", *tls(other_ca, "worker"), "--token-file",
                    str(certs["token"])],
    )  # fmt: skip
    wait_in_log(wrong_token, '"event": "worker.rejected"')
    wait_in_log(cp, '"event": "auth.rejected"')
    wait_in_log(no_cert, '"event": "worker.tls_failed"')
    wait_in_log(foreign, '"event": "worker.tls_failed"')
    # They keep trying, with growing pauses (from wherever the backoff
    # stood: a worker that started before the control plane listened has
    # already waited once).
    pauses = rejection_pauses(wrong_token, count=2)
    assert pauses[1] > pauses[0], pauses
    # None of them is a worker of the cluster; a right one is.
    good = parts.worker(
        "good", ["--backend", "fake", *tls(certs, "worker"), "--token-file", str(certs["token"])]
    )
    assert wait_healthy(parts.endpoint, timeout=30) == {"status": "ok", "workers": 1}
    time.sleep(1)
    assert wait_healthy(parts.endpoint, timeout=5)["workers"] == 1
    for refused in (wrong_token, no_cert, foreign):
        assert '"event": "worker.registered"' not in refused.output()
    assert '"event": "worker.registered"' in good.output()


def test_plaintext_off_loopback_needs_insecure(tmp_path: Path) -> None:
    address = f"0.0.0.0:{free_port()}"
    refused = Process(
        ["control-plane", "--listen", address, "--data-dir", str(tmp_path / "a")],
        tmp_path / "refused.log",
    ).start()
    assert refused.proc is not None
    assert refused.proc.wait(30) == 2
    refused.stop()
    assert "refusing plaintext" in refused.output()

    allowed = Process(
        ["control-plane", "--listen", address, "--data-dir", str(tmp_path / "b")],
        tmp_path / "allowed.log",
        env={"LAMBDAFLEET_INSECURE": "1"},
    ).start()
    try:
        deadline = time.monotonic() + 30
        while '"control_plane.started"' not in allowed.output():
            assert time.monotonic() < deadline, allowed.output()
            time.sleep(0.2)
        (line,) = [x for x in allowed.output().splitlines() if "transport.plaintext" in x]
        assert json.loads(line)["level"] == "warning"
        assert "--insecure" in json.loads(line)["reason"]
    finally:
        allowed.stop()
