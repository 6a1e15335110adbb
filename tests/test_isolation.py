"""What a function can reach and become, probed from inside real function
containers as an attacker would: not another function's server, not another
container on the daemon; the worker's Runtime API and the host beyond the
bridge, yes; no capability, no-new-privileges, no setuid binary (and one
that has the bit gains nothing). LAMBDA_DOCKER_NETWORK still picks the
network."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from cluster import ROLE, containers, environments, free_port, zip_bytes
from conftest import UpCluster
from lambdafleet.worker.containers import LABEL_WORKER, SANDBOX_USER, Containers
from lambdafleet.worker.docker_flags import DockerFlags
from lambdafleet.worker.isolation import FUNCTION_NETWORK, ICC_OPTION, LABEL_NETWORK

IMAGE = "lambdafleet/runtime:python3.11"
SETUID = 1 << 7
SETGID = 1 << 6

# B serves HTTP inside its container; A probes every address it is given.
# Both report their privileges and the setuid files they can see.
PROBE = """
import http.server, os, socket, stat, subprocess, threading

PORT = 8080
_server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=_server.serve_forever, daemon=True).start()


def _connect(address):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
            return s.recv(12).decode(errors="replace")
    except OSError as exc:
        return type(exc).__name__


def _status():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return {k: fields[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")}


def _setuid_files():
    found = []
    for top in ("/usr", "/etc", "/var", "/opt", "/root"):
        for root, _, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue
                if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                    found.append(path)
    return found


def _run(*argv):
    done = subprocess.run(list(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return {"code": done.returncode, "out": (done.stdout + done.stderr)[-300:]}


def handler(event, context):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((socket.gethostbyname(os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")[0]), 9))
        own_ip = s.getsockname()[0]
    probes = {a: _connect(a) for a in event.get("targets", [])}
    probes["own server"] = _connect(f"{own_ip}:{PORT}")
    probes["runtime api"] = _connect(os.environ["AWS_LAMBDA_RUNTIME_API"])
    return {
        "ip": own_ip,
        "probes": probes,
        "status": _status(),
        "setuid": _setuid_files(),
        "su": _run("su", "-c", "id -u", "root"),
        "mount": _run("mount", "-t", "tmpfs", "none", "/tmp"),
        "uid": os.getuid(),
        "euid": os.geteuid(),
    }
"""


def _reached(answer: str) -> bool:
    return answer.startswith("HTTP/")


@pytest.fixture(scope="module")
def host_server() -> Iterator[int]:
    """An HTTP server on every address of this host: the world outside the
    function network, as far as this machine has one without internet."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", free_port()), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def plain_container(docker_daemon: None) -> Iterator[str]:
    """A container on the daemon's default bridge serving HTTP: its address."""
    client = docker.from_env()
    container = client.containers.run(
        IMAGE,
        entrypoint=["/usr/bin/python3", "-m", "http.server", "8080"],
        name=f"lf-isolation-plain-{uuid.uuid4().hex[:6]}",
        detach=True,
    )
    try:
        container.reload()
        yield container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    finally:
        container.remove(force=True)
        client.close()


@pytest.fixture(scope="module")
def up(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    # 256 MB functions bind a pre-started container (root until bound);
    # 128 MB ones get a fresh one.
    cluster = UpCluster(
        tmp_path_factory.mktemp("isolation"), env={"LAMBDAFLEET_PRESTART": "python3.11:256=1"}
    )
    cluster.start()
    yield cluster
    cluster.stop()


def _create(client: Any, memory: int) -> str:
    name = f"iso-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": PROBE})}, MemorySize=memory, Timeout=60,
    )  # fmt: skip
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def _invoke(client: Any, name: str, targets: list[str]) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps({"targets": targets}))
    body: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def _network(name: str) -> dict[str, Any]:
    client = docker.from_env()
    try:
        attrs: dict[str, Any] = client.networks.get(name).attrs
        return attrs
    finally:
        client.close()


def test_a_function_reaches_the_worker_and_the_host_but_no_other_container(
    up: UpCluster, host_server: int, plain_container: str
) -> None:
    client = up.client()
    target = _create(client, 128)
    attacker_name = _create(client, 256)
    # B, warm, with its server listening.
    b = _invoke(client, target, [])
    assert _reached(b["probes"]["own server"]), b["probes"]

    network = _network(FUNCTION_NETWORK)
    assert network["Labels"][LABEL_NETWORK] == "functions"
    assert network["Options"][ICC_OPTION] == "false"
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    blocked = [f"{b['ip']}:8080", f"{plain_container}:8080"]
    outside = [f"{gateway}:{host_server}"]
    # A binds the pre-started container, once it is there.
    deadline = time.monotonic() + 120
    while not [
        c
        for c in containers(label="lambdafleet.prestart")
        if c["labels"][LABEL_WORKER].startswith(up.worker_prefix)
    ]:
        assert time.monotonic() < deadline, "no pre-started container"
        time.sleep(0.2)
    a = _invoke(client, attacker_name, blocked + outside)

    probes = a["probes"]
    for address in blocked:
        assert not _reached(probes[address]), (address, probes)
    for address in outside:
        assert _reached(probes[address]), (address, probes)
    # The Runtime API answers (whatever it says to a request without an
    # invocation of this environment's).
    assert _reached(probes["runtime api"]), probes
    assert _reached(probes["own server"]), probes
    assert b["ip"] != a["ip"]

    # No capability in effect, none to gain: a fresh container's bounding
    # set is empty; a pre-started one kept SETUID and SETGID to leave root,
    # and has none left in effect.
    (env_a,) = environments(up.endpoint, attacker_name)
    (env_b,) = environments(up.endpoint, target)
    assert env_b["prestarted"] is False
    assert b["status"] == {
        "CapEff": "0000000000000000",
        "CapPrm": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
    }
    assert env_a["prestarted"] is True
    assert a["status"] == {
        "CapEff": "0000000000000000",
        "CapPrm": "0000000000000000",
        "CapBnd": f"{SETUID | SETGID:016x}",
        "NoNewPrivs": "1",
    }, env_a
    for seen in (a, b):
        assert seen["setuid"] == []
        assert seen["su"]["code"] != 0 and "\n0\n" not in f"\n{seen['su']['out']}"
        assert seen["mount"]["code"] != 0
        assert (seen["uid"], seen["euid"]) == (993, 993)


def test_a_setuid_binary_gains_nothing(docker_daemon: None, tmp_path: Path) -> None:
    """no-new-privileges, for images lambdafleet does not build (an official
    AWS image has setuid binaries): a setuid-root copy of `id` still says 993."""
    client = docker.from_env()
    tag = f"lambdafleet-test/setuid:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {IMAGE}\n"
        'RUN ["/usr/bin/cp", "/usr/bin/id", "/usr/local/bin/suid-id"]\n'
        'RUN ["/usr/bin/chmod", "4755", "/usr/local/bin/suid-id"]\n'
    )
    client.images.build(path=str(tmp_path), tag=tag, rm=True)
    worker_id = f"iso-{uuid.uuid4().hex[:6]}"
    sandboxes = Containers(client, worker_id, None)
    try:
        # Without no-new-privileges the bit works: the check below means something.
        plain = client.containers.run(
            tag, entrypoint=["/usr/local/bin/suid-id", "-u"], user=SANDBOX_USER, remove=True
        )
        assert plain.decode().strip() == "0"

        sandboxes.use_function_network()
        cid = asyncio.run(
            sandboxes.create_and_start(
                image=tag,
                command=["-u"],
                entrypoint=["/usr/local/bin/suid-id"],
                name=f"lf-iso-{worker_id}",
                environment={},
                labels={},
                extra_hosts={},
                memory_mb=128,
                code_tar=b"",
            )
        )
        container = client.containers.get(cid)
        assert container.wait(timeout=60)["StatusCode"] == 0
        assert container.logs().decode().strip() == "993"
        assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
        assert container.attrs["HostConfig"]["SecurityOpt"] == ["no-new-privileges"]
        assert FUNCTION_NETWORK in container.attrs["NetworkSettings"]["Networks"]
    finally:
        sandboxes.remove_all_sync()
        client.images.remove(tag, force=True)
        client.close()


def test_lambda_docker_network_still_picks_the_network(docker_daemon: None) -> None:
    client = docker.from_env()
    mine = client.networks.create(f"lf-iso-mine-{uuid.uuid4().hex[:6]}", driver="bridge")
    try:
        named = Containers(client, "iso-x", mine.name)
        named.use_function_network()
        assert named.network == mine.name
        flagged = Containers(client, "iso-f", None, flags=DockerFlags(network=mine.name))
        flagged.use_function_network()
        assert flagged.network == mine.name
        assert named.bridge_gateway() == mine.attrs["IPAM"]["Config"][0]["Gateway"]
        default = Containers(client, "iso-y", None)
        default.use_function_network()
        assert default.network == _network(FUNCTION_NETWORK)["Id"]
        # Made once, then found again, by any number of workers.
        again = Containers(client, "iso-z", None)
        again.use_function_network()
        assert again.network == default.network
        assert (
            default.bridge_gateway() == _network(FUNCTION_NETWORK)["IPAM"]["Config"][0]["Gateway"]
        )
        assert not client.containers.list(all=True, filters={"label": f"{LABEL_WORKER}=iso-x"})
    finally:
        mine.remove()
        client.close()
