"""Runtime images: the mapping rules, the order ``ensure`` tries things in (against
a fake daemon), and a locally built python3.11 image serving a real invocation
from a Runtime API served by this test (against the real daemon)."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import docker
import docker.errors
import pytest
import structlog.testing
from lambdafleet.worker import images
from lambdafleet.worker.agent import prepare_progress_reporter
from lambdafleet.worker.images import (
    ImageMapping,
    ImageMappingError,
    ImageResolver,
    RuntimeImageError,
    buildable_runtimes,
    default_image,
    local_image,
    supported_runtimes,
)

from lambdafleet.service_model import service_json

# --------------------------------------------------------------------------
# LAMBDA_RUNTIME_IMAGE_MAPPING and the defaults


@pytest.mark.parametrize(
    ("runtime", "image"),
    [
        ("python3.11", "public.ecr.aws/lambda/python:3.11"),
        ("python3.13", "public.ecr.aws/lambda/python:3.13"),
        ("nodejs20.x", "public.ecr.aws/lambda/nodejs:20"),
        ("nodejs22.x", "public.ecr.aws/lambda/nodejs:22"),
        ("provided.al2023", "public.ecr.aws/lambda/provided:al2023"),
        ("provided.al2", "public.ecr.aws/lambda/provided:al2"),
        ("java21", "public.ecr.aws/lambda/java:21"),
        ("java8.al2", "public.ecr.aws/lambda/java:8.al2"),
        ("dotnet8", "public.ecr.aws/lambda/dotnet:8"),
        ("ruby3.3", "public.ecr.aws/lambda/ruby:3.3"),
    ],
)
def test_defaults_are_the_official_images(runtime: str, image: str) -> None:
    assert default_image(runtime) == image
    assert ImageMapping.parse(None).image_for(runtime) == image
    assert ImageMapping.parse("  ").image_for(runtime) == image


def test_json_mapping_overrides_only_the_runtimes_it_names() -> None:
    mapping = ImageMapping.parse('{"python3.11": "myrepo/py:3.11", "java21": "myrepo/java:21"}')
    assert mapping.image_for("python3.11") == "myrepo/py:3.11"
    assert mapping.image_for("java21") == "myrepo/java:21"
    assert mapping.user_image("nodejs20.x") is None
    assert mapping.image_for("nodejs20.x") == "public.ecr.aws/lambda/nodejs:20"


def test_pattern_mapping_applies_to_every_runtime() -> None:
    mapping = ImageMapping.parse("myrepo/lambda:<runtime>")
    assert mapping.image_for("python3.11") == "myrepo/lambda:python3.11"
    assert mapping.image_for("provided.al2023") == "myrepo/lambda:provided.al2023"


def test_unknown_runtime_names_it_and_the_setting() -> None:
    with pytest.raises(RuntimeImageError) as error:
        ImageMapping.parse("myrepo/lambda:<runtime>").image_for("cobol85")
    assert "cobol85" in str(error.value)
    assert "LAMBDA_RUNTIME_IMAGE_MAPPING" in str(error.value)
    with pytest.raises(RuntimeImageError, match="cobol85"):
        default_image("cobol85")


@pytest.mark.parametrize(
    "raw",
    [
        "myrepo/lambda:latest",  # neither JSON nor a pattern
        "{not json",
        '["python3.11"]',
        '{"cobol85": "myrepo/cobol"}',
        '{"python3.11": ""}',
        '{"python3.11": 3}',
    ],
)
def test_bad_mappings_are_rejected_at_construction(raw: str) -> None:
    with pytest.raises(ImageMappingError, match="LAMBDA_RUNTIME_IMAGE_MAPPING"):
        make_resolver(raw, FakeClient())


def test_known_runtimes_are_model_runtimes() -> None:
    botocore_runtimes = set(service_json()["shapes"]["Runtime"]["enum"])
    assert supported_runtimes() <= botocore_runtimes
    assert {"python3.11", "nodejs20.x", "provided.al2023", "java21"} <= supported_runtimes()
    assert buildable_runtimes() == {
        "python3.11",
        "python3.13",
        "nodejs18.x",
        "nodejs20.x",
        "provided.al2023",
        "provided.al2",
    }
    assert buildable_runtimes() <= supported_runtimes()


# --------------------------------------------------------------------------
# What the build puts on top of Debian (pure)


def test_runtime_layer_has_the_official_layout(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/__init__.py", "X = 1\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\n")
    layer = images._runtime_layer(images.RECIPES["python3.11"], [wheel])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        bootstrap = tar.extractfile(members["var/runtime/bootstrap"])
        assert bootstrap is not None
        bootstrap_text = bootstrap.read().decode()
    assert members["var/task"].isdir() and members["var/task"].mode == 0o755
    assert members["var/runtime/demo"].isdir() and members["var/runtime/demo"].mode == 0o755
    assert members["var/runtime/demo/__init__.py"].mode == 0o644
    assert members["lambda-entrypoint.sh"].mode == 0o755
    assert members["var/runtime/bootstrap"].mode == 0o755
    assert members["var/runtime/bootstrap.py"].mode == 0o644
    assert members["usr/lib/locale/en_US.utf8"].issym()
    assert "@@EXECUTION_ENV@@" not in bootstrap_text and "@@PYTHON@@" not in bootstrap_text
    assert "AWS_EXECUTION_ENV=AWS_Lambda_python3.11" in bootstrap_text
    assert "exec /usr/bin/python3.11 /var/runtime/bootstrap.py" in bootstrap_text


def test_debootstrap_progress_leaves_out_per_package_lines() -> None:
    noisy = images._PER_PACKAGE_LINE.match
    assert noisy("I: Retrieving libc6 2.36-9+deb12u4")
    assert noisy("I: Validating python3.11-minimal 3.11.2-6")
    assert noisy("I: Unpacking ca-certificates...")
    assert noisy("I: Configuring libstdc++6:amd64...")
    assert not noisy("I: Retrieving InRelease")
    assert not noisy("I: Retrieving Packages")
    assert not noisy("I: Unpacking required packages...")
    assert not noisy("I: Configuring the base system...")
    assert not noisy("I: Base system installed successfully.")
    assert not noisy("E: Couldn't download packages: python3")


# --------------------------------------------------------------------------
# ensure() against a fake daemon


class FakeImages:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def get(self, name: str) -> SimpleNamespace:
        self.client.calls.append(("get", name))
        if name not in self.client.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return SimpleNamespace(labels=self.client.labels.get(name, {}))


class FakeAPI:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def pull(self, image: str, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        self.client.calls.append(("pull", image))
        if self.client.pull_blocks is not None:
            self.client.pull_blocks.wait(30)
        if image not in self.client.pullable:
            raise docker.errors.APIError(
                "500 Server Error", explanation=f"lookup for {image}: no such host"
            )
        self.client.present.add(image)
        return iter([{"status": "Pulling from x", "id": "1"}, {"status": "Downloading"}])


class FakeClient:
    """Just the docker-py surface ImageResolver uses, with scripted answers."""

    def __init__(self, present: set[str] | None = None, pullable: set[str] | None = None) -> None:
        self.present = set(present or ())
        self.pullable = set(pullable or ())
        self.labels: dict[str, dict[str, str]] = {}
        self.pull_blocks: threading.Event | None = None
        self.calls: list[tuple[str, str]] = []
        self.images = FakeImages(self)
        self.api = FakeAPI(self)


def make_resolver(mapping: str | None, client: FakeClient, **kwargs: Any) -> ImageResolver:
    return ImageResolver(mapping, cast(docker.DockerClient, client), **kwargs)


def ensure(resolver: ImageResolver, runtime: str) -> str:
    return asyncio.run(resolver.ensure(runtime))


def test_mapped_image_on_the_daemon_is_used_as_is() -> None:
    client = FakeClient(present={"myrepo/py:3.11"})
    resolver = make_resolver('{"python3.11": "myrepo/py:3.11"}', client)
    assert ensure(resolver, "python3.11") == "myrepo/py:3.11"
    assert ("pull", "myrepo/py:3.11") not in client.calls


def test_mapped_image_is_pulled_when_absent() -> None:
    client = FakeClient(pullable={"myrepo/lambda:nodejs20.x"})
    resolver = make_resolver("myrepo/lambda:<runtime>", client)
    assert ensure(resolver, "nodejs20.x") == "myrepo/lambda:nodejs20.x"


def test_mapped_image_that_cannot_be_pulled_is_an_error_not_a_fallback() -> None:
    client = FakeClient(present={local_image("python3.11")})
    resolver = make_resolver('{"python3.11": "myrepo/py:3.11"}', client)
    with pytest.raises(RuntimeImageError) as error:
        ensure(resolver, "python3.11")
    message = str(error.value)
    assert "python3.11" in message and "myrepo/py:3.11" in message
    assert "LAMBDA_RUNTIME_IMAGE_MAPPING" in message and "no such host" in message


def test_official_image_wins_when_present_or_pullable() -> None:
    official = "public.ecr.aws/lambda/python:3.11"
    client = FakeClient(present={official, local_image("python3.11")})
    assert ensure(make_resolver(None, client), "python3.11") == official
    assert not [call for call in client.calls if call[0] == "pull"]
    client = FakeClient(pullable={official})
    assert ensure(make_resolver(None, client), "python3.11") == official


def test_current_local_build_is_used_when_the_official_image_is_unavailable() -> None:
    built = local_image("python3.11")
    client = FakeClient(present={built})
    fingerprint = images._fingerprint(images.RECIPES["python3.11"], images._host_arch())
    client.labels[built] = {images.RECIPE_LABEL: fingerprint}
    resolver = make_resolver(None, client)
    assert ensure(resolver, "python3.11") == built
    assert ("pull", "public.ecr.aws/lambda/python:3.11") in client.calls
    calls = len(client.calls)
    assert ensure(resolver, "python3.11") == built
    assert len(client.calls) == calls, "a resolved runtime is remembered"


def test_unbuildable_runtime_without_image_names_runtime_and_setting() -> None:
    resolver = make_resolver(None, FakeClient())
    with pytest.raises(RuntimeImageError) as error:
        ensure(resolver, "java21")
    assert "java21" in str(error.value)
    assert "LAMBDA_RUNTIME_IMAGE_MAPPING" in str(error.value)
    assert "public.ecr.aws/lambda/java:21" in str(error.value)
    with pytest.raises(RuntimeImageError, match="unsupported runtime 'cobol85'"):
        ensure(resolver, "cobol85")


def test_concurrent_ensures_share_one_build(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()
    builds: list[str] = []

    def fake_build(
        client_: Any, runtime: str, progress: Any = None, *, cache_dir: Any = None
    ) -> str:
        builds.append(runtime)
        progress("fake build step")
        time.sleep(0.3)
        client.present.add(local_image(runtime))
        return local_image(runtime)

    monkeypatch.setattr(images, "build_runtime_image", fake_build)
    resolver = make_resolver(None, client)
    heard: list[list[str]] = [[], [], []]

    async def main() -> list[str]:
        return await asyncio.gather(
            *(resolver.ensure("python3.11", progress=messages.append) for messages in heard)
        )

    assert asyncio.run(main()) == [local_image("python3.11")] * 3
    assert builds == ["python3.11"]
    for messages in heard:
        assert "fake build step" in messages


def test_every_step_is_logged_once_and_reaches_the_control_plane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A step was logged by the build and again by the worker's listener:
    # now the resolver logs each step once, and the worker's listener only
    # passes steps on to the control plane (at most one per interval).
    def fake_build(
        client_: Any, runtime: str, progress: Any = None, *, cache_dir: Any = None
    ) -> str:
        progress("fake build step")
        progress("another step")
        return local_image(runtime)

    monkeypatch.setattr(images, "build_runtime_image", fake_build)
    resolver = make_resolver(None, FakeClient())
    outbox: asyncio.Queue[Any] = asyncio.Queue()

    async def main() -> str:
        return await resolver.ensure("python3.11", progress=prepare_progress_reporter("p1", outbox))

    with structlog.testing.capture_logs() as logged:
        assert asyncio.run(main()) == local_image("python3.11")
    texts = [str(e.get("msg", e["event"])) for e in logged]
    official = "public.ecr.aws/lambda/python:3.11"
    for step in (f"trying to pull {official}", "fake build step", "another step"):
        assert texts.count(step) == 1, (step, texts)
    assert all(e["event"] == "image.progress" for e in logged if e.get("msg"))
    sent = [outbox.get_nowait().prepare_progress for _ in range(outbox.qsize())]
    # The first step at once; the next ones came within the interval.
    assert [(p.prepare_id, p.step) for p in sent] == [("p1", f"trying to pull {official}")]


def test_a_hanging_pull_falls_back_after_the_short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()
    client.pull_blocks = threading.Event()
    monkeypatch.setattr(
        images, "build_runtime_image", lambda *args, **kwargs: local_image("python3.11")
    )
    resolver = make_resolver(None, client, pull_timeout=0.3)
    started = time.monotonic()
    try:
        assert ensure(resolver, "python3.11") == local_image("python3.11")
    finally:
        client.pull_blocks.set()
    assert time.monotonic() - started < 3


# --------------------------------------------------------------------------
# The real daemon: build (or reuse) lambdafleet/runtime:python3.11 and run it


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    # These tests prove the images work; without a daemon they must fail.
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"a Docker daemon is required for runtime image tests: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def python_image(docker_client: docker.DockerClient) -> str:
    steps: list[str] = []
    resolver = ImageResolver(None, docker_client)
    image = asyncio.run(resolver.ensure("python3.11", progress=steps.append))
    if image != local_image("python3.11"):
        # The official image was reachable; this test is about ours.
        image = images.build_runtime_image(docker_client, "python3.11", steps.append)
    attrs = docker_client.images.get(image).attrs
    assert attrs["Config"]["Labels"][images.RUNTIME_LABEL] == "python3.11"
    assert attrs["Config"]["Entrypoint"] == ["/lambda-entrypoint.sh"]
    assert attrs["Config"]["WorkingDir"] == "/var/task"
    return image


def test_unreachable_mapped_image_fails_fast(docker_client: docker.DockerClient) -> None:
    # .invalid never resolves, like every registry on machines without one.
    resolver = ImageResolver('{"nodejs20.x": "registry.invalid/lambda/nodejs:20"}', docker_client)
    started = time.monotonic()
    with pytest.raises(RuntimeImageError, match=r"registry\.invalid/lambda/nodejs:20"):
        asyncio.run(resolver.ensure("nodejs20.x"))
    assert time.monotonic() - started < images.USER_PULL_TIMEOUT


class RuntimeAPI:
    """The two Runtime API calls of one invocation, served to one container."""

    def __init__(self, event: Any) -> None:
        self.event = json.dumps(event).encode()
        self.request_id = str(uuid.uuid4())
        self.served = False
        self.posted: dict[str, bytes] = {}
        self.answered = threading.Event()
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                if api.served:
                    api.release.wait(30)  # there is no second event: park the runtime
                    self.send_error(503)
                    return
                api.served = True
                deadline = int(time.time() * 1000) + 60_000
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", api.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:echo",
                )
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.event)))
                self.end_headers()
                self.wfile.write(api.event)

            def do_POST(self) -> None:
                body = self._body()
                api.posted[self.path] = body
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if self.path.endswith(("/response", "/error")):
                    api.answered.set()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> RuntimeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on the default bridge, where containers reach our server."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    # The daemon leaves Gateway out when it picked the default: the first host.
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def code_tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_built_image_serves_an_invocation_as_a_non_root_user(
    docker_client: docker.DockerClient, python_image: str
) -> None:
    event = {"hello": "world", "n": [1, 2.5, None], "text": "h\u00e9"}
    with RuntimeAPI(event) as api:
        container = docker_client.containers.create(
            python_image,
            command=["app.handler"],
            user="993:990",
            environment={"AWS_LAMBDA_RUNTIME_API": f"{bridge_gateway(docker_client)}:{api.port}"},
        )
        try:
            app = "def handler(event, context):\n    return {'echo': event}\n"
            assert container.put_archive("/var/task", code_tar({"app.py": app}))
            container.start()
            answered = api.answered.wait(60)
            logs = container.logs().decode(errors="replace")
            assert answered, f"no answer from the runtime; container output:\n{logs}"
            response_path = f"/2018-06-01/runtime/invocation/{api.request_id}/response"
            assert response_path in api.posted, f"posted {api.posted}; output:\n{logs}"
            assert json.loads(api.posted[response_path]) == {"echo": event}
            container.reload()
            assert container.attrs["Config"]["User"] == "993:990"
        finally:
            container.remove(force=True)


def test_entrypoint_without_runtime_api_explains_and_fails(
    docker_client: docker.DockerClient, python_image: str
) -> None:
    container = docker_client.containers.create(python_image, command=["app.handler"])
    try:
        container.start()
        status = container.wait(timeout=60)
        logs = container.logs().decode(errors="replace")
        assert status["StatusCode"] != 0
        assert "AWS_LAMBDA_RUNTIME_API is not set" in logs
    finally:
        container.remove(force=True)
