"""Every runtime lambdafleet builds offline, through boto3 against a real
cluster and real containers: the echo, introspection and uncaught-exception
scenarios of AWS's recorded test_lambda_common, plus what is particular to a
runtime (Node.js module kinds and init errors, custom runtimes' bootstraps),
and a runtime with no image.

The images are built on first use (lambdafleet/runtime:<runtime>), once per
machine: their root filesystems are cached under ~/.cache/lambdafleet.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, environments, fleet_status, zip_bytes
from conftest import UpCluster
from lambdafleet.worker.image_recipes import BOTO3_REQUIREMENTS

FUNCTIONS = Path(__file__).parent / "functions"
RECORDED = json.loads(
    (
        Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_common.snapshot.json"
    ).read_text()
)
COMMON = "tests/aws/services/lambda_/test_lambda_common.py::TestLambdaRuntimesCommon::"

RUNTIMES = [
    "python3.11",
    "python3.13",
    "nodejs18.x",
    "nodejs20.x",
    "provided.al2023",
    "provided.al2",
]
# The test functions are the same for every version of a language.
LANGUAGE = {
    "python3.11": "python",
    "python3.13": "python",
    "nodejs18.x": "nodejs",
    "nodejs20.x": "nodejs",
    "provided.al2023": "provided",
    "provided.al2": "provided",
}
HANDLERS = {
    "python": {"echo": "handler.echo", "introspect": "handler.introspect", "fail": "handler.fail"},
    "nodejs": {"echo": "index.echo", "introspect": "index.introspect", "fail": "index.fail"},
    "provided": {
        "echo": "function.echo_event",
        "introspect": "function.introspect",
        "fail": "function.fail",
    },
}
# What `python3 --version` / `node --version` print in the images (Debian's).
LANGUAGE_MAJOR = {"nodejs18.x": "v18.", "nodejs20.x": "v20."}

# Variables AWS sets that a lambdafleet environment does not have: X-Ray's
# daemon (no X-Ray here) and what a login shell adds (PWD, SHLVL).
NOT_EMULATED = {
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT",
    "PWD",
    "SHLVL",
}
# The provided test function prints the variables it names; these it does not.
PROVIDED_UNPRINTED = {"_X_AMZN_TRACE_ID"}


def code_zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            info = zipfile.ZipInfo(path.name)
            # Unix modes in the zip, so a bootstrap stays executable.
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


class Functions:
    """Functions of one test, created Active and deleted afterwards."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.names: list[str] = []

    def create(self, runtime: str, handler: str, folder: str, **extra: Any) -> dict[str, Any]:
        name = f"rt-{runtime.replace('.', '-')}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        self.client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": code_zip(FUNCTIONS / folder)},
            **extra,
        )
        self.client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
        )
        config: dict[str, Any] = self.client.get_function(FunctionName=name)["Configuration"]
        return config

    def invoke(self, name: str, event: Any, **extra: Any) -> tuple[dict[str, Any], Any]:
        response: dict[str, Any] = self.client.invoke(
            FunctionName=name, Payload=json.dumps(event), **extra
        )
        raw = response["Payload"].read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode()
        return response, payload


@pytest.fixture
def functions(client: Any) -> Iterator[Functions]:
    made = Functions(client)
    yield made
    for name in made.names:
        client.delete_function(FunctionName=name)


def recorded(test: str, runtime: str) -> dict[str, Any]:
    content: dict[str, Any] = RECORDED[f"{COMMON}{test}[{runtime}]"]["recorded-content"]
    return content


# --------------------------------------------------------------------------
# The recorded scenarios, for every runtime


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_echo(functions: Functions, runtime: str) -> None:
    language = LANGUAGE[runtime]
    config = functions.create(
        runtime, HANDLERS[language]["echo"], language, Environment={"Variables": {"TEST_KEY": "x"}}
    )
    event = {"hello": "world", "nested": {"list": [1, 2.5, None, True]}, "text": "h\u00e9 \u2713"}
    response, payload = functions.invoke(config["FunctionName"], event)
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert payload == event


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_introspection(functions: Functions, runtime: str) -> None:
    language = LANGUAGE[runtime]
    config = functions.create(
        runtime,
        HANDLERS[language]["introspect"],
        language,
        MemorySize=1024,
        Environment={"Variables": {"TEST_KEY": "TEST_VAL"}},
    )
    name = config["FunctionName"]
    response, payload = functions.invoke(name, {})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    environment = payload["environment"]
    aws = recorded("test_introspection_invoke", runtime)["invocation_result_payload"]

    # Every variable AWS sets is there (but X-Ray's), none of lambdafleet's own.
    expected_names = set(aws["environment"]) - NOT_EMULATED
    if language == "provided":
        expected_names -= PROVIDED_UNPRINTED
    assert expected_names <= set(environment), expected_names - set(environment)
    # AWS sets no AWS_EXECUTION_ENV for OS-only runtimes (recorded).
    if "AWS_EXECUTION_ENV" in aws["environment"]:
        assert environment["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
    else:
        assert "AWS_EXECUTION_ENV" not in environment
    same_as_aws = [
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
        "LANG",
        "LD_LIBRARY_PATH",
        "LC_CTYPE",
        "TZ",
        "TEST_KEY",
        "NODE_PATH",
        "NODE_EXTRA_CA_CERTS",
        "PYTHONPATH",
    ]
    for variable in same_as_aws:
        if variable in aws["environment"]:
            assert environment[variable] == aws["environment"][variable], variable
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert environment["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert environment["_HANDLER"] == HANDLERS[language]["introspect"]
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == "us-east-1"

    # The context, as the runtime's client presents it.
    ctx = payload["ctx"]
    assert ctx["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    if language != "provided":
        assert set(aws["ctx"]) <= set(ctx)
        assert ctx["function_name"] == name
        assert ctx["function_version"] == "$LATEST"
        assert ctx["invoked_function_arn"] == config["FunctionArn"]
        assert ctx["log_group_name"] == f"/aws/lambda/{name}"
        assert ctx["log_stream_name"] == environment["AWS_LAMBDA_LOG_STREAM_NAME"]
        assert 0 < ctx["remaining_time_in_millis"] <= config["Timeout"] * 1000
        assert str(ctx["memory_limit_in_mb"]) == "1024"

    # The sandbox: AWS's user, read-only code, writable /tmp.
    assert payload["uid"] == 993
    assert payload["task_writable"] is False
    assert payload["tmp_writable"] is True
    if runtime in LANGUAGE_MAJOR:
        assert payload["node_version"].startswith(LANGUAGE_MAJOR[runtime])

    # Invoked through a qualified ARN, the context names it.
    qualified = f"{config['FunctionArn']}:$LATEST"
    response, payload = functions.invoke(qualified, {})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    if language != "provided":
        assert payload["ctx"]["invoked_function_arn"] == qualified


@pytest.mark.parametrize("runtime", ["python3.11", "python3.13"])
def test_python_functions_import_the_runtimes_boto3_unless_they_bundle_one(
    functions: Functions, runtime: str
) -> None:
    pinned = dict(req.split("==") for req in BOTO3_REQUIREMENTS)
    config = functions.create(runtime, "handler.sdk_versions", "python")
    response, payload = functions.invoke(config["FunctionName"], {})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    assert (payload["boto3"], payload["botocore"]) == (pinned["boto3"], pinned["botocore"])
    assert payload["boto3_file"].startswith("/var/runtime/boto3/")
    assert payload["botocore_file"].startswith("/var/runtime/botocore/")
    # The SDK's data files came along: a client can be made.
    assert payload["service"] == "lambda"

    # /var/task comes before /var/runtime on sys.path, as on AWS: the
    # function's own boto3 is the one imported.
    name = f"rt-bundled-{uuid.uuid4().hex[:8]}"
    functions.names.append(name)
    functions.client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={
            "ZipFile": zip_bytes(
                {
                    "boto3/__init__.py": '__version__ = "0.0.bundled"\n',
                    "app.py": (
                        "import boto3\n\n\ndef handler(event, context):\n"
                        "    return {'boto3': boto3.__version__, 'file': boto3.__file__}\n"
                    ),
                }
            )
        },
    )
    functions.client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    response, payload = functions.invoke(name, {})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    assert payload == {"boto3": "0.0.bundled", "file": "/var/task/boto3/__init__.py"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_uncaught_exception(functions: Functions, runtime: str) -> None:
    language = LANGUAGE[runtime]
    config = functions.create(
        runtime, HANDLERS[language]["fail"], language, Environment={"Variables": {"TEST_KEY": "x"}}
    )
    response, payload = functions.invoke(config["FunctionName"], {"error_msg": "some_error_msg"})
    aws = recorded("test_uncaught_exception_invoke", runtime)["error_result"]
    assert response["StatusCode"] == aws["StatusCode"] == 200
    assert response["FunctionError"] == aws["FunctionError"] == "Unhandled"
    assert response["ExecutedVersion"] == "$LATEST"
    assert set(payload) == set(aws["Payload"])
    if language == "python":
        assert payload["errorType"] == aws["Payload"]["errorType"] == "Exception"
        assert payload["errorMessage"] == aws["Payload"]["errorMessage"]
        assert payload["requestId"] == response["ResponseMetadata"]["RequestId"]
        assert isinstance(payload["stackTrace"], list) and payload["stackTrace"]
    elif language == "nodejs":
        assert payload["errorType"] == aws["Payload"]["errorType"] == "Error"
        assert payload["errorMessage"] == aws["Payload"]["errorMessage"]
        assert payload["trace"][0] == "Error: Error: some_error_msg"
        assert any("/var/task/index.js" in line for line in payload["trace"])
    else:
        # A custom runtime reports what its bootstrap posts (AWS's recording
        # is of a Rust one): the type and message pass through unchanged.
        assert payload == {"errorType": "errorString", "errorMessage": "Error: some_error_msg"}
    # The environment survives a function error: the next call is served.
    response, payload = functions.invoke(config["FunctionName"], {"error_msg": "again"})
    assert response["FunctionError"] == "Unhandled"
    assert "again" in payload["errorMessage"]


# --------------------------------------------------------------------------
# Node.js: module kinds, callbacks, init errors


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x"])
def test_node_es_module_and_callback_handlers(functions: Functions, runtime: str) -> None:
    esm = functions.create(runtime, "esm.handler", "nodejs")
    response, payload = functions.invoke(esm["FunctionName"], {"n": 1})
    assert payload == {"module": "esm", "event": {"n": 1}}, payload

    callback = functions.create(runtime, "index.callback", "nodejs")
    # The answer waits for the event loop to empty: the timer ran out.
    response, payload = functions.invoke(callback["FunctionName"], {"n": 2})
    assert "FunctionError" not in response, payload
    assert payload == {"ticks": 3, "event": {"n": 2}}
    # callbackWaitsForEmptyEventLoop = false: the answer goes at once.
    response, payload = functions.invoke(callback["FunctionName"], {"dont_wait": True})
    assert payload == {"ticks": 0, "event": {"dont_wait": True}}


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "missing.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'missing'\nRequire stack:\n- /var/runtime/index.mjs",
        ),
        ("index.nothing", "Runtime.HandlerNotFound", "index.nothing is undefined or not exported"),
        ("indexhandler", "Runtime.MalformedHandlerName", "Bad handler"),
    ],
)
def test_node_init_errors(
    functions: Functions, handler: str, error_type: str, message: str
) -> None:
    # The function is Active (AWS checks the handler only when it runs it).
    config = functions.create("nodejs20.x", handler, "nodejs")
    response, payload = functions.invoke(config["FunctionName"], {})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type
    assert payload["errorMessage"] == message
    assert payload["trace"][0] == f"{error_type}: {message.splitlines()[0]}"


# --------------------------------------------------------------------------
# Custom runtimes: the bootstrap is the function's


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2"])
def test_custom_runtime_tutorial_bootstrap(functions: Functions, runtime: str) -> None:
    """The bootstrap and function.sh of AWS's tutorial "Building a custom
    runtime", unchanged: #!/bin/sh with bashisms, curl against the Runtime API."""
    config = functions.create(runtime, "function.handler", "provided-tutorial")
    response, payload = functions.invoke(config["FunctionName"], {"text": "Hello"})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
    assert payload == 'Echoing request: \'{"text": "Hello"}\''


def test_custom_runtime_without_bootstrap_names_where_it_looked(functions: Functions) -> None:
    config = functions.create("provided.al2023", "function.handler", "nodejs")
    response, payload = functions.invoke(config["FunctionName"], {})
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
    }


# --------------------------------------------------------------------------
# A runtime lambdafleet builds no image for, offline


def test_runtime_without_image_fails_naming_the_mapping(client: Any) -> None:
    name = f"rt-java21-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="java21",
        Role=ROLE,
        Handler="example.Handler::handleRequest",
        Code={"ZipFile": code_zip(FUNCTIONS / "python")},
    )
    try:
        waiter = client.get_waiter("function_active_v2")
        with pytest.raises(Exception, match="Failed"):
            waiter.wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        config = client.get_function(FunctionName=name)["Configuration"]
        assert config["State"] == "Failed"
        assert "java21" in config["StateReason"]
        assert "LAMBDA_RUNTIME_IMAGE_MAPPING" in config["StateReason"]
        with pytest.raises(client.exceptions.ResourceConflictException, match="Failed"):
            client.invoke(FunctionName=name, Payload=b"{}")
    finally:
        client.delete_function(FunctionName=name)


# --------------------------------------------------------------------------
# Pre-started containers of images without Python


PRESTARTED = ["nodejs20.x", "provided.al2023"]


@pytest.fixture(scope="module")
def pooled(docker_daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    pools = ",".join(f"{runtime}:256=1" for runtime in PRESTARTED)
    up = UpCluster(tmp_path_factory.mktemp("prestart-rt"), env={"LAMBDAFLEET_PRESTART": pools})
    up.start()
    yield up
    up.stop()


@pytest.mark.parametrize("runtime", PRESTARTED)
def test_prestarted_container_binds_with_the_functions_variables(
    pooled: UpCluster, runtime: str
) -> None:
    """Node.js and provided images have no Python: their pre-started
    containers wait for the binding through a shell (node or curl fetching
    it), then run the function as a fresh container would."""
    client = pooled.client()
    made = Functions(client)
    language = LANGUAGE[runtime]

    def pool_ready() -> bool:
        # As the worker reports it: its containers are in the pool, not only
        # created (the daemon lists a container before the worker holds it).
        (worker,) = fleet_status(pooled.endpoint)["workers"]
        return bool(worker["prestarted"] == len(PRESTARTED))

    # Quotes, a dollar and spaces survive the shell; the provided test
    # function prints values into JSON unescaped, so it gets no double quote.
    tricky = "it's $HOME `id`" if language == "provided" else 'it\'s "quoted" $HOME `id`'
    deadline = time.monotonic() + 120
    while not pool_ready():
        assert time.monotonic() < deadline, f"no pre-started {runtime} container"
        time.sleep(0.2)
    try:
        config = made.create(
            runtime,
            HANDLERS[language]["introspect"],
            language,
            MemorySize=256,
            Environment={"Variables": {"TEST_KEY": tricky}},
        )
        response, payload = made.invoke(config["FunctionName"], {})
        assert "FunctionError" not in response, payload
        (env,) = environments(pooled.endpoint, config["FunctionName"])
        assert env["prestarted"] is True
        environment = payload["environment"]
        assert environment["AWS_LAMBDA_FUNCTION_NAME"] == config["FunctionName"]
        assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
        assert environment["_HANDLER"] == HANDLERS[language]["introspect"]
        assert ("AWS_EXECUTION_ENV" in environment) == (language != "provided")
        assert payload["uid"] == 993 and payload["task_writable"] is False
        assert environment["TEST_KEY"] == tricky
    finally:
        for name in made.names:
            client.delete_function(FunctionName=name)
