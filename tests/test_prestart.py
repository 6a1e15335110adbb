"""Pre-started environments with real containers, through boto3: a worker
keeps idle runtime containers before any function exists; a matching cold
invocation binds one (its code, its variables, /var/task read-only) instead
of creating a container; the pool refills; other memory sizes take the normal
path; stopping the worker removes the pool."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, containers, environments, fleet_status, zip_bytes
from conftest import UpCluster
from lambdafleet.worker.prestart import AUTO_BUCKETS, AUTO_COUNT

POOL = 2

INSPECT = """
import os, socket

def handler(event, context):
    try:
        open("/var/task/written", "w").close()
        writable = True
    except OSError:
        writable = False
    names = ["AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
             "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "AWS_LAMBDA_RUNTIME_API",
             "LAMBDA_TASK_ROOT", "AWS_LAMBDA_INITIALIZATION_TYPE", "MY_SETTING"]
    return {
        "env": {n: os.environ.get(n) for n in names},
        "container": socket.gethostname(),
        "task_writable": writable,
        "user": os.getuid(),
        # Who the runtime is, and what its code looks like: the same in a
        # bound pre-started container as in a fresh one.
        "identity": {
            "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
            "groups": sorted(os.getgroups()), "home": os.environ.get("HOME"),
            "cwd": os.getcwd(),
        },
        # (A folder's time is when its files arrived.)
        "code": {
            path: [st.st_uid, st.st_gid, oct(st.st_mode)]
            + ([] if os.path.isdir(path) else [int(st.st_mtime)])
            for path in ("/var/task", "/var/task/app.py", "/var/task/pkg", "/var/task/pkg/run.sh")
            for st in [os.stat(path)]
        },
    }
"""


def eventually(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pooled(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    up = UpCluster(
        tmp_path_factory.mktemp("prestart"), env={"LAMBDAFLEET_PRESTART": f"python3.11:128={POOL}"}
    )
    up.start()
    yield up
    if up.process is not None and up.process.proc is not None and up.process.proc.poll() is None:
        up.stop()


def pool_of(up: UpCluster) -> list[dict[str, Any]]:
    return [
        c
        for c in containers(label="lambdafleet.prestart")
        if c["labels"]["lambdafleet.worker"].startswith(up.worker_prefix)
    ]


def pool_ids(up: UpCluster) -> set[str]:
    return {c["id"] for c in pool_of(up)}


def create(client: Any, memory: int, code: bytes | None = None, **extra: Any) -> str:
    name = f"pre-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        MemorySize=memory,
        Code={"ZipFile": code or code_zip()},
        Environment={"Variables": {"MY_SETTING": "mine"}},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def code_zip() -> bytes:
    """INSPECT, a folder, and an executable file in it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", INSPECT)
        script = zipfile.ZipInfo("pkg/run.sh")
        script.external_attr = 0o755 << 16
        archive.writestr(script, "#!/bin/sh\necho run\n")
    return buffer.getvalue()


def invoke(client: Any, name: str) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=b"{}")
    body: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_a_matching_cold_start_binds_a_prestarted_container(pooled: UpCluster) -> None:
    eventually(lambda: len(pool_of(pooled)) == POOL, 120, f"{POOL} pre-started containers")
    before = pool_ids(pooled)
    client = pooled.client()
    name = create(client, 128)

    body = invoke(client, name)

    # No new container: the function runs in one of the pre-started ones
    # (a container's hostname is the start of its id).
    (taken,) = [cid for cid in before if cid.startswith(body["container"])]
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["AWS_LAMBDA_RUNTIME_API"]
    assert env["MY_SETTING"] == "mine"
    assert body["task_writable"] is False
    assert body["user"] == 993
    # Warm afterwards, in the same container.
    assert invoke(client, name)["container"] == body["container"]

    # The pool refills to its size, without the taken container.
    eventually(lambda: len(pool_ids(pooled) - {taken}) == POOL, 60, "the pool refilled")


def test_another_memory_size_takes_the_normal_path(pooled: UpCluster) -> None:
    eventually(lambda: len(pool_of(pooled)) >= POOL, 60, "a full pool")
    before = pool_ids(pooled)
    client = pooled.client()
    name = create(client, 256)
    body = invoke(client, name)
    assert not any(cid.startswith(body["container"]) for cid in before)
    assert body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    # A pre-started container unpacks the code itself, as root, then drops to
    # the sandbox user (worker/prestart.py): nothing of that shows.
    pooled_name = create(client, 128)
    pooled_body = invoke(client, pooled_name)
    assert any(cid.startswith(pooled_body["container"]) for cid in before)
    assert pooled_body["identity"] == body["identity"]
    assert body["identity"]["uid"] == 993 and body["identity"]["groups"] == [990]
    assert pooled_body["code"] == body["code"]
    assert body["code"]["/var/task/pkg/run.sh"][:3] == [0, 0, "0o100755"]
    # Its container carries the function's labels, as every normal one.
    (own,) = [
        c for c in containers(label="lambdafleet.function") if c["id"].startswith(body["container"])
    ]
    assert own["labels"]["lambdafleet.function"].endswith(f":{name}")


LAYERED = """
import os, socket

def handler(event, context):
    with open("/opt/shared.txt") as f:
        shared = f.read()
    st = os.stat("/opt/python/layer_mod.py")
    import layer_mod
    return {"container": socket.gethostname(), "shared": shared, "value": layer_mod.VALUE,
            "owner": [st.st_uid, st.st_gid]}
"""


def test_a_bound_container_has_the_functions_layers_in_opt(pooled: UpCluster) -> None:
    eventually(lambda: len(pool_of(pooled)) >= POOL, 60, "a full pool")
    before = pool_ids(pooled)
    client = pooled.client()
    tag = uuid.uuid4().hex[:8]
    arns = [
        client.publish_layer_version(
            LayerName=f"pre-layer-{tag}-{i}",
            Content={"ZipFile": zip_bytes(files)},
            CompatibleRuntimes=["python3.11"],
        )["LayerVersionArn"]
        for i, files in enumerate(
            [
                {"shared.txt": "first", "python/layer_mod.py": "VALUE = 1\n"},
                {"shared.txt": "second"},
            ]
        )
    ]
    name = create(client, 128, zip_bytes({"app.py": LAYERED}), Layers=arns)
    body = invoke(client, name)
    assert any(cid.startswith(body["container"]) for cid in before)
    # The later layer's file wins; the layers' files are root's, as Docker copies them.
    assert body["shared"] == "second"
    assert body["value"] == 1
    assert body["owner"] == [0, 0]


def test_stopping_the_worker_removes_the_pool(pooled: UpCluster, tmp_path: Path) -> None:
    eventually(lambda: len(pool_of(pooled)) >= POOL, 60, "a full pool")
    assert pooled.stop() == 0
    assert pool_of(pooled) == []
    assert [
        c
        for c in containers(label="lambdafleet.worker")
        if c["labels"]["lambdafleet.worker"].startswith(pooled.worker_prefix)
    ] == []


@pytest.fixture(scope="module")
def learning(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    """A cluster with the default pool: LAMBDAFLEET_PRESTART unset."""
    up = UpCluster(tmp_path_factory.mktemp("prestart-auto"))
    assert "LAMBDAFLEET_PRESTART" not in up.env
    up.start()
    yield up
    assert up.stop() == 0


def reported(up: UpCluster) -> dict[str, Any]:
    (worker,) = fleet_status(up.endpoint)["workers"]
    return worker  # type: ignore[no-any-return]


def test_by_default_the_pool_learns_the_buckets_cold_started(learning: UpCluster) -> None:
    # Nothing is pre-started before a function runs: no image is built, no
    # memory held, for runtimes nobody uses.
    time.sleep(2)
    assert pool_of(learning) == [] and reported(learning)["prestarted"] == 0
    client = learning.client()

    first = create(client, 128)
    body = invoke(client, first)
    (env,) = environments(learning.endpoint, first)
    assert env["prestarted"] is False and env["container_id"].startswith(body["container"])
    # That cold start taught the worker its bucket: it keeps AUTO_COUNT
    # containers of it ready, and says so to the control plane.
    eventually(lambda: len(pool_of(learning)) == AUTO_COUNT, 120, "the learned pool")
    eventually(lambda: reported(learning)["prestarted"] == AUTO_COUNT, 30, "pool reported")
    before = pool_ids(learning)

    # Another function of that runtime and memory size starts in one of them.
    second = create(client, 128)
    body = invoke(client, second)
    (env,) = environments(learning.endpoint, second)
    assert env["prestarted"] is True
    (taken,) = [cid for cid in before if cid.startswith(body["container"])]
    assert env["container_id"] == taken
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == second
    assert body["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert body["task_writable"] is False and body["user"] == 993
    eventually(lambda: len(pool_ids(learning) - {taken}) == AUTO_COUNT, 60, "refilled")


def test_the_least_recent_bucket_is_forgotten(learning: UpCluster) -> None:
    client = learning.client()
    eventually(lambda: reported(learning)["prestarted"] == AUTO_COUNT, 60, "a full pool")
    # Two more buckets cold-started: the 128 MB one falls out (AUTO_BUCKETS).
    assert AUTO_BUCKETS == 2
    for memory in (256, 512):
        invoke(client, create(client, memory))

    def buckets() -> list[str]:
        """The buckets of the idle pre-started containers (a bound one keeps
        its pool label, and is an environment now)."""
        bound = {env["container_id"] for env in environments(learning.endpoint)}
        return sorted(
            c["labels"]["lambdafleet.prestart"] for c in pool_of(learning) if c["id"] not in bound
        )

    expected = sorted(["python3.11:256", "python3.11:512"] * AUTO_COUNT)
    eventually(lambda: buckets() == expected, 120, "the pool of the two recent buckets")
