"""The recorded AWS scenarios of TestLambdaConcurrency (test_lambda.snapshot.json),
replayed against a real cluster through boto3, one test per scenario.

Each step is compared with its recording: the status code, the shape (the
key sets, recursively), and the values that do not depend on names, times
or ids: every error member (code, message, Reason, Type) and every
provisioned concurrency config member but LastModified. Waits the recorder
made in minutes (function sleeps) are shortened; polls for READY are quick.

test_reserved_concurrency sends its OnFailure record to SQS on AWS; here the
destination is a Lambda function, and what is compared is the record itself.

test_lambda_provisioned_concurrency_moves_with_alias keeps the recorder's
invocation assertions: as on AWS, a version invoked directly also runs in the
provisioned environments of an alias pointing at it (an environment is its
version's, lambdafleet/environments.py; the lease draws on the alias's pool,
control_plane/leases.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import ROLE, zip_bytes
from test_async_invocations import Collector
from test_concurrency_limits import in_background, recorded, throttle

from control_plane.api.concurrency import check_reserved_covers_provisioned
from lambdafleet.errors import LambdaError

HANDLERS = """
import json, os, time, urllib.request

def _report(event, context):
    port = os.environ.get("COLLECTOR_PORT")
    if not port:
        return
    host = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[0]
    body = json.dumps({
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "request_id": context.aws_request_id,
        "event": event,
    }).encode()
    url = "http://%s:%s/" % (host, port)
    urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10).read()

def echo(event, context):
    _report(event, context)
    if isinstance(event, dict) and event.get("wait"):
        time.sleep(event["wait"])
    if isinstance(event, dict) and event.get("raise_error"):
        raise Exception("Test exception (this is intentional)")
    return event

def init_type(event, context):
    if isinstance(event, dict) and event.get("wait"):
        time.sleep(event["wait"])
    return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
"""

FAILING_INIT = """
raise Exception("intentional init failure")

def handler(event, context):
    return "never"
"""

# Members whose contents are ours, not AWS's (variables, payloads): their
# shape is not compared.
OPAQUE = {"Variables", "Payload", "requestPayload", "responsePayload"}


def shape(value: Any, ignore: frozenset[str] = frozenset()) -> Any:
    """The key sets of a response, recursively; transport details left out."""
    if isinstance(value, dict):
        return {
            k: (None if k in OPAQUE else shape(v, ignore))
            for k, v in value.items()
            if k not in ignore and k != "ResponseMetadata"
        }
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [shape(value[0], ignore)]
    return None


def status(response: dict[str, Any]) -> int:
    code: int = response["ResponseMetadata"]["HTTPStatusCode"]
    return code


def step(test: str, name: str) -> dict[str, Any]:
    return recorded(test, name)


def assert_shape(
    actual: dict[str, Any], expected: dict[str, Any], ignore: frozenset[str] = frozenset()
) -> None:
    assert status(actual) == status(expected)
    assert shape(actual, ignore) == shape(expected, ignore)


def assert_provisioned(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """A provisioned concurrency config: every member but LastModified."""
    assert_shape(actual, expected)

    def values(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("LastModified", "ResponseMetadata")}

    assert values(actual) == values(expected)


def assert_error(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """An error answer: status, code, message and every body member."""
    assert actual == expected


def error(call: Callable[[], Any]) -> dict[str, Any]:
    """The answer of a call that must fail, as the recorder kept it."""
    return throttle(call)


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(
    client: Any,
    name: str,
    handler: str = "handler.echo",
    code: str = HANDLERS,
    timeout: int = 30,
    variables: dict[str, str] | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    created: dict[str, Any] = client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler=handler,
        Code={"ZipFile": zip_bytes({"handler.py": code})},
        Timeout=timeout,
        Environment={"Variables": variables or {}},
    )
    if wait:
        client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
        )
    return created


def publish(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    published: dict[str, Any] = client.publish_version(FunctionName=name, **extra)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name,
        Qualifier=published["Version"],
        WaiterConfig={"Delay": 0.2, "MaxAttempts": 600},
    )
    return published


def provisioned(client: Any, name: str, qualifier: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get_provisioned_concurrency_config(
        FunctionName=name, Qualifier=qualifier
    )
    return found


def wait_status(
    client: Any, name: str, qualifier: str, wanted: str = "READY", timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = provisioned(client, name, qualifier)
        if found["Status"] == wanted:
            return found
        assert found["Status"] == "IN_PROGRESS", found
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}:{qualifier} not {wanted} within {timeout}s: {found}")
        time.sleep(0.1)


def invoke(client: Any, name: str, qualifier: str | None = None, **kwargs: Any) -> dict[str, Any]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    response: dict[str, Any] = client.invoke(FunctionName=name, **extra, **kwargs)
    raw = response["Payload"].read()
    response["Payload"] = json.loads(raw) if raw else ""
    return response


def init_type(client: Any, name: str, qualifier: str | None = None, wait: float = 0) -> str:
    response = invoke(client, name, qualifier, Payload=json.dumps({"wait": wait}))
    assert "FunctionError" not in response, response
    found: str = response["Payload"]
    return found


def put_provisioned(client: Any, name: str, qualifier: str, count: int) -> dict[str, Any]:
    put: dict[str, Any] = client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=count
    )
    return put


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


# --------------------------------------------------------------------------
# Reserved concurrency
# --------------------------------------------------------------------------


def test_lambda_concurrency_crud(client: Any) -> None:
    test = "test_lambda_concurrency_crud"
    name = new_name("rec-crud")
    create(client, name)
    got = client.get_function_concurrency(FunctionName=name)
    assert_shape(got, step(test, "get_function_concurrency_default"))
    put = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert_provisioned(put, step(test, "put_function_concurrency"))
    got = client.get_function_concurrency(FunctionName=name)
    assert_provisioned(got, step(test, "get_function_concurrency_updated"))
    client.delete_function_concurrency(FunctionName=name)
    got = client.get_function_concurrency(FunctionName=name)
    assert_shape(got, step(test, "get_function_concurrency_deleted"))


def test_lambda_concurrency_update(client: Any) -> None:
    test = "test_lambda_concurrency_update"
    name = new_name("rec-update")
    create(client, name)
    put = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert_provisioned(put, step(test, "put_function_concurrency"))
    got = client.get_function_concurrency(FunctionName=name)
    assert_provisioned(got, step(test, "get_function_concurrency_updated"))
    info = client.get_function(FunctionName=name)
    assert_shape(info, step(test, "get_function_concurrency_info"))
    assert info["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    client.delete_function_concurrency(FunctionName=name)
    got = client.get_function_concurrency(FunctionName=name)
    assert_shape(got, step(test, "get_function_concurrency_deleted"))


def test_reserved_concurrency(client: Any, collector: Collector) -> None:
    """Reserved 0 throttles synchronous calls, and an event goes straight
    to OnFailure as ZeroReservedConcurrency (SQS on AWS, a function here)."""
    test = "test_reserved_concurrency"
    name, target = new_name("rec-rc0"), new_name("rec-rc0-dest")
    port = {"COLLECTOR_PORT": str(collector.port)}
    create(client, name, timeout=20, variables=port)
    target_arn = create(client, target, variables=port)["FunctionArn"]
    fn = client.get_function_configuration(FunctionName=name, Qualifier="$LATEST")
    assert_shape(fn, step(test, "fn"))
    put = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert_provisioned(put, step(test, "put_reserved"))
    answer = error(lambda: client.invoke(FunctionName=fn["FunctionArn"]))
    assert_error(answer, step(test, "exc_no_cap_requestresponse"))

    conf = client.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": target_arn}},
    )
    assert_shape(conf, step(test, "put_event_invoke_conf"))
    result = invoke(client, fn["FunctionArn"], InvocationType="Event")
    assert_shape(result, step(test, "invoke_result"))
    assert result["Payload"] == "" and result["StatusCode"] == 202

    [report] = collector.wait(target, 1)
    record = report["event"]
    expected = step(test, "msg")["Body"]
    assert shape(record) == shape(expected)
    assert record["requestContext"] == {
        "requestId": result["ResponseMetadata"]["RequestId"],
        "functionArn": fn["FunctionArn"],
        "condition": "ZeroReservedConcurrency",
        "approximateInvokeCount": 0,
    }
    assert record["requestPayload"] == expected["requestPayload"] == {}
    assert collector.of(name) == []  # it never ran


def test_reserved_concurrency_async_queue(client: Any, collector: Collector) -> None:
    """Reserved 1: a running event holds the only lease, the second event
    waits in the queue, a synchronous call is throttled; with 3 reserved
    everything runs (4 invocations). The recorder's 15 s and 10 s waits
    are 3 s and 2 s here."""
    test = "test_reserved_concurrency_async_queue"
    name = new_name("rec-rcq")
    create(client, name, timeout=20, variables={"COLLECTOR_PORT": str(collector.port)})
    fn = client.get_function_configuration(FunctionName=name, Qualifier="$LATEST")
    assert_shape(fn, step(test, "fn"))
    arn = fn["FunctionArn"]
    put = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert_provisioned(put, step(test, "put_fn_concurrency"))
    invoke(client, arn)  # warm
    invoke(client, arn, InvocationType="Event", Payload=json.dumps({"wait": 3}))
    invoke(client, arn, InvocationType="Event", Payload=json.dumps({"wait": 2}))
    collector.wait(name, 2)  # the warm-up and the first event, now running
    answer = error(lambda: client.invoke(FunctionName=arn))
    assert_error(answer, step(test, "too_many_requests_exc"))
    assert len(collector.of(name)) == 2  # the second event is still queued

    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert invoke(client, arn)["StatusCode"] == 200
    runs = collector.wait(name, 4, timeout=30)
    assert sorted(json.dumps(r["event"], sort_keys=True) for r in runs) == sorted(
        ["{}", "{}", '{"wait": 3}', '{"wait": 2}']
    )


# --------------------------------------------------------------------------
# Provisioned concurrency
# --------------------------------------------------------------------------


def test_lambda_concurrency_block(client: Any) -> None:
    """Reserved 1 all taken by version 1's provisioned concurrency: $LATEST
    is throttled, the version runs."""
    test = "test_lambda_concurrency_block"
    name = new_name("rec-block")
    create(client, name)
    v1 = publish(client, name)
    assert_shape(v1, step(test, "v1_result"))
    version = v1["Version"]
    put = client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert_provisioned(put, step(test, "reserved_concurrency_result"))
    hello = json.dumps({"hello": "world"})
    before = invoke(client, name, "$LATEST", Payload=hello)
    assert_shape(before, step(test, "invoke_latest_before_block"))
    assert before["Payload"] == {"hello": "world"} and before["ExecutedVersion"] == "$LATEST"
    put = put_provisioned(client, name, version, 1)
    assert_provisioned(put, step(test, "provisioned_concurrency_result"))
    wait_status(client, name, version)

    first = error(lambda: client.invoke(FunctionName=name, Qualifier="$LATEST", Payload=hello))
    assert_error(first, step(test, "invoke_latest_first_exc"))
    after = invoke(client, name, version, Payload=hello)
    assert_shape(after, step(test, "invoke_v1_after_block"))
    assert after["Payload"] == {"hello": "world"} and after["ExecutedVersion"] == version
    second = error(lambda: client.invoke(FunctionName=name, Qualifier="$LATEST", Payload=hello))
    assert_error(second, step(test, "invoke_latest_second_exc"))


def test_provisioned_concurrency(client: Any) -> None:
    test = "test_provisioned_concurrency"
    name = new_name("rec-pc")
    create(client, name, handler="handler.init_type")
    version = publish(client, name)["Version"]
    put = put_provisioned(client, name, version, 5)
    assert_provisioned(put, step(test, "put_provisioned_5"))
    assert_provisioned(provisioned(client, name, version), step(test, "get_provisioned_prewait"))
    ready = wait_status(client, name, version)
    assert_provisioned(ready, step(test, "get_provisioned_postwait"))
    assert init_type(client, name, version) == "provisioned-concurrency"
    assert init_type(client, name, "$LATEST") == "on-demand"


def test_provisioned_concurrency_on_alias(client: Any) -> None:
    test = "test_provisioned_concurrency_on_alias"
    name = new_name("rec-pca")
    create(client, name, handler="handler.init_type")
    version = publish(client, name)["Version"]
    client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    put = put_provisioned(client, name, "live", 5)
    assert_provisioned(put, step(test, "put_provisioned_5"))
    assert_provisioned(provisioned(client, name, "live"), step(test, "get_provisioned_prewait"))
    ready = wait_status(client, name, "live")
    assert_provisioned(ready, step(test, "get_provisioned_postwait"))
    assert init_type(client, name, "live") == "provisioned-concurrency"


def test_reserved_provisioned_overlap(client: Any) -> None:
    test = "test_reserved_provisioned_overlap"
    name = new_name("rec-overlap")
    create(client, name, handler="handler.init_type")
    v1 = publish(client, name)["Version"]
    put = put_provisioned(client, name, v1, 2)
    assert_provisioned(put, step(test, "put_provisioned_5"))
    assert_provisioned(provisioned(client, name, v1), step(test, "get_provisioned_prewait"))
    assert_provisioned(wait_status(client, name, v1), step(test, "get_provisioned_postwait"))

    lower = error(
        lambda: client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    )
    assert_error(lower, step(test, "reserved_lower_than_provisioned_exc"))
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    got = client.get_function_concurrency(FunctionName=name)
    assert_provisioned(got, step(test, "get_concurrency"))

    # Reserved equals provisioned: nothing left for anything else.
    latest = error(lambda: client.invoke(FunctionName=name))
    assert_error(latest, step(test, "reserved_equals_provisioned_latest_invoke_exc"))
    assert init_type(client, name, v1) == "provisioned-concurrency"

    updated = client.update_function_configuration(FunctionName=name, Timeout=15)
    assert_shape(updated, step(test, "update_func_config"))
    assert updated["LastUpdateStatus"] == "InProgress"
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
    )
    v2 = publish(client, name)["Version"]
    assert v2 != v1
    another = error(lambda: put_provisioned(client, name, v2, 1))
    assert_error(another, step(test, "reserved_equals_provisioned_another_provisioned_exc"))
    increase = error(lambda: put_provisioned(client, name, v1, 3))
    assert_error(increase, step(test, "reserved_equals_provisioned_increase_provisioned_exc"))


def test_lambda_provisioned_concurrency_scheduling(client: Any) -> None:
    """Invocations go to the provisioned environment while it is free, and
    on demand while it is busy (the recorder's 6 s wait is 2 s here)."""
    test = "test_lambda_provisioned_concurrency_scheduling"
    name = new_name("rec-sched")
    create(client, name, handler="handler.init_type", timeout=10)
    version = publish(client, name)["Version"]
    put_provisioned(client, name, version, 1)
    ready = wait_status(client, name, version)
    assert_provisioned(ready, step(test, "get_provisioned_postwait"))
    assert init_type(client, name, version) == "provisioned-concurrency"

    other = client  # boto3 clients are thread-safe for calls
    thread, results = in_background(lambda: init_type(other, name, version, wait=2))
    time.sleep(0.7)
    assert init_type(client, name, version) == "on-demand"
    thread.join(30)
    assert results == ["provisioned-concurrency"]


def test_provisioned_concurrency_init_failure(client: Any) -> None:
    test = "test_provisioned_concurrency_init_failure"
    name = new_name("rec-initfail")
    create(client, name, handler="handler.handler", code=FAILING_INIT)
    version = publish(client, name)["Version"]
    put = put_provisioned(client, name, version, 1)
    assert_provisioned(put, step(test, "put_provisioned"))
    assert_provisioned(provisioned(client, name, version), step(test, "get_provisioned_prewait"))
    failed = wait_status(client, name, version, wanted="FAILED")
    assert_provisioned(failed, step(test, "get_provisioned_postwait"))


def test_lambda_provisioned_concurrency_moves_with_alias(client: Any) -> None:
    """Recorded by AWS (skipped by LocalStack as not implemented). The
    recording predates LoggingConfig in function configurations, so that
    member is left out of the shape comparison."""
    test = "test_lambda_provisioned_concurrency_moves_with_alias"
    old = frozenset({"LoggingConfig"})
    name = new_name("rec-moves")
    created = create(client, name, handler="handler.init_type", timeout=2, wait=False)
    assert_shape(created, step(test, "create-result")["CreateFunctionResponse"], old)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
    )
    fn = client.get_function_configuration(FunctionName=name, Qualifier="$LATEST")
    assert_shape(fn, step(test, "get-function-configuration"), old)
    first = client.publish_version(
        FunctionName=name, RevisionId=fn["RevisionId"], Description="my-first-version"
    )
    assert_shape(first, step(test, "publish_version_1"), old)
    v1 = first["Version"]
    got = client.get_function_configuration(FunctionName=name, Qualifier=v1)
    assert_shape(got, step(test, "get_function_configuration_version_1"), old)
    client.get_waiter("function_updated_v2").wait(FunctionName=name, Qualifier=v1)
    assert init_type(client, name, v1) == "on-demand"

    alias = client.create_alias(FunctionName=name, FunctionVersion=v1, Name="moving")
    assert_shape(alias, step(test, "create_alias"))
    got = client.get_function(FunctionName=name, Qualifier=v1)
    assert_shape(got, step(test, "get_function_before_provisioned"), old)
    put_provisioned(client, name, "moving", 1)
    wait_status(client, name, "moving")
    got = client.get_function(FunctionName=name, Qualifier="moving")
    assert_shape(got, step(test, "get_function_after_provisioned"), old)
    # Alias AND version now both use provisioned concurrency, as on AWS.
    assert init_type(client, name, v1) == "provisioned-concurrency"
    assert init_type(client, name, "moving") == "provisioned-concurrency"

    client.update_function_configuration(FunctionName=name, Timeout=10)
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
    )
    conf = client.get_function_configuration(FunctionName=name)
    assert_shape(conf, step(test, "get_function_after_update"), old)
    second = client.publish_version(FunctionName=name, RevisionId=conf["RevisionId"])
    assert_shape(second, step(test, "publish_version_2"), old)
    v2 = second["Version"]
    moved = client.update_alias(FunctionName=name, FunctionVersion=v2, Name="moving")
    assert_shape(moved, step(test, "update_alias"))
    moving = provisioned(client, name, "moving")
    assert_provisioned(moving, step(test, "get_provisioned_config_after_alias_move"))
    wait_status(client, name, "moving")

    # The old version runs on demand; the new version, invoked directly or
    # through the alias, runs provisioned.
    assert init_type(client, name, v1) == "on-demand"
    assert init_type(client, name, v2) == "provisioned-concurrency"
    assert init_type(client, name, "moving") == "provisioned-concurrency"
    answer = invoke(client, name, "moving")
    assert answer["ExecutedVersion"] == v2
    with pytest.raises(ClientError) as info:
        provisioned(client, name, v2)
    answer = dict(info.value.response)
    answer["ResponseMetadata"] = {"HTTPHeaders": {}, "HTTPStatusCode": status(answer)}
    assert_error(answer, step(test, "provisioned_concurrency_notfound"))


def test_reserved_may_not_drop_below_provisioned() -> None:
    """Pure: the recorded message of reserved_lower_than_provisioned_exc."""
    check_reserved_covers_provisioned(2, 2)
    with pytest.raises(LambdaError) as info:
        check_reserved_covers_provisioned(1, 2)
    expected = step("test_reserved_provisioned_overlap", "reserved_lower_than_provisioned_exc")
    assert info.value.message == expected["message"]
    assert info.value.omit == ("Type",)
