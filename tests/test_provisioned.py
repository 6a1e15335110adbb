"""Provisioned concurrency with real containers, through boto3: environments
started ahead of time, READY once they run, serving their qualifier's
invocations warm, moved with the alias, serving the alias's version invoked
directly too, stopped with the config, and never reaped by the keep-alive."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cluster import (
    ROLE,
    Process,
    environments,
    free_port,
    lambda_client,
    wait_healthy,
    zip_bytes,
)
from conftest import UpCluster

REPORTER = """
import os

def handler(event, context):
    return {
        "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "arn": context.invoked_function_arn,
        "environment": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
    }
"""


def create_reporter(client: Any) -> str:
    name = f"pc-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": REPORTER})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def publish(client: Any, name: str, marker: str = "") -> str:
    if marker:
        # A new configuration, so that the next version differs.
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"MARKER": marker}}
        )
        client.get_waiter("function_updated_v2").wait(FunctionName=name)
    version: str = client.publish_version(FunctionName=name)["Version"]
    client.get_waiter("function_active_v2").wait(FunctionName=name, Qualifier=version)
    return version


def function_containers(endpoint: str, name: str) -> list[dict[str, Any]]:
    """The function's environments (any version), as the cluster reports them."""
    return environments(endpoint, name)


def eventually(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def wait_ready(client: Any, name: str, qualifier: str, timeout: float = 90) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def ready() -> bool:
        found.update(
            client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        )
        assert found["Status"] != "FAILED", found
        return bool(found["Status"] == "READY")

    eventually(ready, timeout, f"{name}:{qualifier} READY")
    return found


def live_alias_with_provisioned(client: Any) -> tuple[str, str]:
    """A new function whose version 1 is behind alias "live" with one
    provisioned environment, READY: (name, version)."""
    name = create_reporter(client)
    version = publish(client, name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    wait_ready(client, name, "live")
    return name, version


def invoke(client: Any, name: str, qualifier: str | None = None) -> dict[str, Any]:
    """What the function saw: its initialisation type and version."""
    answer = invoke_all(client, name, qualifier)
    return {k: answer[k] for k in ("init", "version")}


def invoke_all(client: Any, name: str, qualifier: str | None = None) -> dict[str, Any]:
    """What the function saw, with the ARN it was invoked by and its
    environment (the log stream names it)."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    response = client.invoke(FunctionName=name, **extra)
    assert "FunctionError" not in response, response
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer


def versions_running(endpoint: str, name: str) -> list[str]:
    return sorted(env["version"] for env in function_containers(endpoint, name))


def test_provisioned_version_runs_before_any_invocation(cluster: UpCluster) -> None:
    client = cluster.client()
    name = create_reporter(client)
    version = publish(client, name)
    put = client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    assert put["Status"] == "IN_PROGRESS"
    ready = wait_ready(client, name, version)
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 1
    assert ready["AvailableProvisionedConcurrentExecutions"] == 1
    # Started ahead of time: a container exists before any invocation.
    assert versions_running(cluster.endpoint, name) == [version]

    # The version's invocations run in it: warm, no new container.
    for _ in range(3):
        assert invoke(client, name, version) == {
            "init": "provisioned-concurrency",
            "version": version,
        }
    assert versions_running(cluster.endpoint, name) == [version]

    client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    eventually(
        lambda: not function_containers(cluster.endpoint, name),
        30,
        "provisioned containers removed",
    )
    # Afterwards the version runs on demand.
    assert invoke(client, name, version)["init"] == "on-demand"


def test_provisioned_concurrency_moves_with_the_alias(cluster: UpCluster) -> None:
    client = cluster.client()
    name, first = live_alias_with_provisioned(client)
    assert versions_running(cluster.endpoint, name) == [first]
    assert invoke(client, name, "live") == {"init": "provisioned-concurrency", "version": first}

    second = publish(client, name, marker="two")
    client.update_alias(FunctionName=name, Name="live", FunctionVersion=second)
    # AWS answers IN_PROGRESS right after the move, the old ones still counted.
    moving = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    assert moving["Status"] in ("IN_PROGRESS", "READY")
    wait_ready(client, name, "live")
    eventually(
        lambda: versions_running(cluster.endpoint, name) == [second], 30, "moved to the new version"
    )
    assert invoke(client, name, "live") == {"init": "provisioned-concurrency", "version": second}
    assert versions_running(cluster.endpoint, name) == [second]

    # Deleting the alias deletes its config, and so its environments.
    client.delete_alias(FunctionName=name, Name="live")
    eventually(
        lambda: not function_containers(cluster.endpoint, name), 30, "alias's containers removed"
    )


def test_a_version_invoked_directly_runs_in_its_alias_provisioned_environment(
    cluster: UpCluster,
) -> None:
    """On AWS an alias's provisioned environments are its version's: the
    version invoked by number runs in them too (recorded
    test_lambda_provisioned_concurrency_moves_with_alias), and the function
    sees the ARN it was invoked by (recorded test_invocation_with_qualifier:
    context.invoked_function_arn qualified as invoked) and its version
    number."""
    client = cluster.client()
    name, version = live_alias_with_provisioned(client)
    assert versions_running(cluster.endpoint, name) == [version]
    unqualified = client.get_function_configuration(FunctionName=name)["FunctionArn"]

    through_alias = invoke_all(client, name, "live")
    assert through_alias["init"] == "provisioned-concurrency"
    assert through_alias["version"] == version
    assert through_alias["arn"] == f"{unqualified}:live"

    # The same environment, by version number: no new container.
    for _ in range(2):
        direct = invoke_all(client, name, version)
        assert direct == {
            "init": "provisioned-concurrency",
            "version": version,
            "arn": f"{unqualified}:{version}",
            "environment": through_alias["environment"],
        }
        assert versions_running(cluster.endpoint, name) == [version]
    # And the alias again, after the version: still its ARN, same environment.
    assert invoke_all(client, name, "live") == through_alias

    # $LATEST, unqualified or by name, is another version: on demand.
    latest = invoke_all(client, name)
    assert (latest["init"], latest["version"]) == ("on-demand", "$LATEST")
    assert latest["arn"] == unqualified
    named = invoke_all(client, name, "$LATEST")
    assert named["arn"] == f"{unqualified}:$LATEST"
    # ... and one environment serves both.
    assert named["environment"] == latest["environment"]
    assert versions_running(cluster.endpoint, name) == ["$LATEST", version]
    client.delete_alias(FunctionName=name, Name="live")


def test_an_event_through_the_alias_runs_in_its_provisioned_environment(
    cluster: UpCluster,
) -> None:
    """Asynchronous invocations take the same leases as synchronous ones: an
    Event through an alias with provisioned concurrency runs in the alias's
    provisioned environment, and no on-demand one starts."""
    client = cluster.client()
    name, version = live_alias_with_provisioned(client)
    (env,) = function_containers(cluster.endpoint, name)
    assert env["provisioned"] is True and env["invocations"] == 0
    assert env["version"] == version

    # One at a time: two at once would spill over to an on-demand
    # environment, as on AWS, since one environment is provisioned.
    for n in (1, 2):
        response = client.invoke(FunctionName=name, Qualifier="live", InvocationType="Event")
        assert response["StatusCode"] == 202

        def ran(n: int = n) -> bool:
            envs = function_containers(cluster.endpoint, name)
            assert [e["environment_id"] for e in envs] == [env["environment_id"]], envs
            return (envs[0]["invocations"], envs[0]["state"]) == (n, "ENVIRONMENT_STATE_READY")

        # Counts arrive with the worker's next heartbeat.
        eventually(ran, 30, f"event {n} ran in the provisioned environment")


@pytest.fixture(scope="module")
def short_keepalive(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cluster whose idle on-demand environments stop after one second."""
    root = tmp_path_factory.mktemp("short-keepalive")
    port = free_port()
    process = Process(
        ["up", "--port", str(port), "--data-dir", str(root / "data")],
        root / "up.log",
        env={"LAMBDA_KEEPALIVE_MS": "1000"},
    ).start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(endpoint)
        yield endpoint
    finally:
        assert process.stop() == 0


def test_provisioned_environments_outlive_the_keepalive(short_keepalive: str) -> None:
    client = lambda_client(short_keepalive)
    name = create_reporter(client)
    version = publish(client, name)
    client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    wait_ready(client, name, version)
    assert invoke(client, name)["init"] == "on-demand"  # $LATEST: on demand
    assert versions_running(short_keepalive, name) == ["$LATEST", version]
    # The on-demand one is reaped after the keep-alive; the provisioned one stays.
    eventually(lambda: versions_running(short_keepalive, name) == [version], 30, "on-demand reaped")
    time.sleep(2.5)
    assert versions_running(short_keepalive, name) == [version]
    status = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert status["Status"] == "READY"
    assert invoke(client, name, version)["init"] == "provisioned-concurrency"
    assert versions_running(short_keepalive, name) == [version]
