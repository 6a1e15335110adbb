"""Runtime images: which Docker image runs a Lambda runtime, and building one locally.

A function's container starts from the image of its runtime. Which image that is
follows LocalStack's ``LAMBDA_RUNTIME_IMAGE_MAPPING`` (our users migrate from
it), with AWS's official ``public.ecr.aws/lambda/...`` images as the default.
Machines without a reachable registry cannot pull those, so for the runtimes we
have a recipe for, the worker builds an image with the same layout itself: a
Debian root filesystem made with debootstrap on the worker's host, plus AWS's
runtime interface client from wheels downloaded on the host (pip inside a
container cannot reach the index everywhere). The image is assembled through
the Docker API only, so a remote daemon (DOCKER_HOST=tcp://...) works too.

Images built here keep the contract of the official ones, so the worker treats
both the same: ENTRYPOINT ``/lambda-entrypoint.sh`` takes the handler as its only
argument, code goes to ``/var/task`` (copied in before start), the runtime lives
in ``/var/runtime``, and ``AWS_LAMBDA_RUNTIME_API`` names the Runtime API.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import structlog

from .image_recipes import (
    LAYER_MTIME,
    RECIPE_LABEL,
    RECIPES,
    RUNTIME_LABEL,
    BuildRecipe,
    dockerfile,
    fingerprint,
    rootfs_key,
    runtime_layer,
    short_hash,
)

# The recipes' names as this module used them before they moved (tests and
# callers use them through here).
_fingerprint = fingerprint
_runtime_layer = runtime_layer
__all__ = ["RECIPES", "RECIPE_LABEL", "RUNTIME_LABEL", "BuildRecipe"]

log = structlog.get_logger(__name__)

Progress = Callable[[str], None]

MAPPING_ENV = "LAMBDA_RUNTIME_IMAGE_MAPPING"
CACHE_ENV = "LAMBDAFLEET_IMAGE_CACHE"
LOCAL_REPOSITORY = "lambdafleet/runtime"
OFFICIAL_REGISTRY = "public.ecr.aws/lambda"

# How long the registry may take to start answering a pull of an official image
# before we fall back to building. Where no registry resolves, the daemon fails
# within a fraction of a second; this bounds the case of a black-holed network.
OFFICIAL_PULL_TIMEOUT = 5.0
# An image the user named may live on a slow private registry: wait longer.
USER_PULL_TIMEOUT = 60.0
# Once a pull is under way the daemon reports progress every few hundred
# milliseconds; this long a silence means it is stuck.
PULL_IDLE_TIMEOUT = 120.0
# Read timeout of the build request: the daemon is silent while it unpacks
# the root filesystem layer.
BUILD_TIMEOUT = 900

# Runtime -> repository:tag under public.ecr.aws/lambda, as LocalStack maps
# them. Only runtimes AWS still accepts for new functions (botocore's Runtime
# enum minus the ones whose creation AWS blocks).
_OFFICIAL_TAGS: dict[str, str] = {
    "nodejs24.x": "nodejs:24",
    "nodejs22.x": "nodejs:22",
    "nodejs20.x": "nodejs:20",
    "nodejs18.x": "nodejs:18",
    "nodejs16.x": "nodejs:16",
    "python3.14": "python:3.14",
    "python3.13": "python:3.13",
    "python3.12": "python:3.12",
    "python3.11": "python:3.11",
    "python3.10": "python:3.10",
    "python3.9": "python:3.9",
    "python3.8": "python:3.8",
    "java25": "java:25",
    "java21": "java:21",
    "java17": "java:17",
    "java11": "java:11",
    "java8.al2": "java:8.al2",
    "dotnet10": "dotnet:10",
    "dotnet8": "dotnet:8",
    "dotnet6": "dotnet:6",
    "ruby4.0": "ruby:4.0",
    "ruby3.4": "ruby:3.4",
    "ruby3.3": "ruby:3.3",
    "ruby3.2": "ruby:3.2",
    "provided.al2023": "provided:al2023",
    "provided.al2": "provided:al2",
}


class RuntimeImageError(Exception):
    """No usable image for a runtime; the message says what to do about it."""


class ImageMappingError(RuntimeImageError):
    """LAMBDA_RUNTIME_IMAGE_MAPPING cannot be understood."""


def supported_runtimes() -> set[str]:
    """Runtimes we know an image for (official, or through the user's mapping)."""
    return set(_OFFICIAL_TAGS)


def buildable_runtimes() -> set[str]:
    """Runtimes whose image this module can build without any registry."""
    return set(RECIPES)


def default_image(runtime: str) -> str:
    """AWS's official image for a runtime, e.g. public.ecr.aws/lambda/python:3.11."""
    try:
        return f"{OFFICIAL_REGISTRY}/{_OFFICIAL_TAGS[runtime]}"
    except KeyError:
        raise _unknown_runtime(runtime) from None


def local_image(runtime: str) -> str:
    """The tag of the image this module builds for a runtime."""
    return f"{LOCAL_REPOSITORY}:{runtime}"


def _unknown_runtime(runtime: str) -> RuntimeImageError:
    return RuntimeImageError(
        f"unsupported runtime {runtime!r}: lambdafleet knows no image for it "
        f"(known: {', '.join(sorted(_OFFICIAL_TAGS))}); {MAPPING_ENV} can only map "
        f"known runtimes to other images"
    )


# --------------------------------------------------------------------------
# LAMBDA_RUNTIME_IMAGE_MAPPING


@dataclass(frozen=True)
class ImageMapping:
    """The user's choice of images: a pattern for all runtimes, or a map of some.

    Runtimes a JSON map leaves out keep the default behaviour, as in LocalStack.
    """

    pattern: str | None = None
    images: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> ImageMapping:
        if raw is None or not raw.strip():
            return cls()
        text = raw.strip()
        # JSON first: a map whose images contain "<runtime>" is still a map.
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ImageMappingError(f"{MAPPING_ENV} is not valid JSON: {exc}") from None
            if not isinstance(loaded, dict):
                raise ImageMappingError(f"{MAPPING_ENV} must be a JSON object")
            images: dict[str, str] = {}
            for runtime, image in loaded.items():
                if runtime not in _OFFICIAL_TAGS:
                    raise ImageMappingError(
                        f"unsupported runtime {runtime!r} in {MAPPING_ENV} "
                        f"(known: {', '.join(sorted(_OFFICIAL_TAGS))})"
                    )
                if not isinstance(image, str) or not image.strip():
                    raise ImageMappingError(
                        f"{MAPPING_ENV}: the image for {runtime} must be a non-empty string"
                    )
                images[runtime] = image.strip()
            return cls(images=images)
        if "<runtime>" in text:
            return cls(pattern=text)
        raise ImageMappingError(
            f"{MAPPING_ENV} must be a JSON object such as "
            '\'{"python3.11": "myrepo/lambda:py311"}\' or a pattern containing <runtime> '
            f"such as 'myrepo/lambda:<runtime>'; got {raw!r}"
        )

    def user_image(self, runtime: str) -> str | None:
        """The image the user chose for this runtime, if any."""
        if self.pattern is not None:
            return self.pattern.replace("<runtime>", runtime)
        return self.images.get(runtime)

    def image_for(self, runtime: str) -> str:
        """The user's image, else the official one; unknown runtimes are an error."""
        if runtime not in _OFFICIAL_TAGS:
            raise _unknown_runtime(runtime)
        return self.user_image(runtime) or default_image(runtime)


# --------------------------------------------------------------------------
# Resolving and ensuring images on the daemon


class ImageResolver:
    """Finds, pulls or builds the image for each runtime, once per process.

    ``ensure`` tries, in order: the image the user mapped the runtime to; AWS's
    official image (already on the daemon, or pulled within a short timeout);
    the image this module builds (``lambdafleet/runtime:<runtime>``). Blocking
    docker-py calls run in threads so the event loop stays responsive.
    """

    def __init__(
        self,
        mapping: str | None,
        client: docker.DockerClient,
        *,
        cache_dir: Path | None = None,
        pull_timeout: float = OFFICIAL_PULL_TIMEOUT,
    ) -> None:
        self._mapping = ImageMapping.parse(mapping)
        self._client = client
        self._cache_dir = cache_dir
        self._pull_timeout = pull_timeout
        self._resolved: dict[str, str] = {}
        # One task per runtime being resolved: callers share it, so concurrent
        # cold starts of one runtime cause one pull or build, and a caller that
        # is cancelled does not abandon a build the others are waiting for.
        self._pending: dict[str, asyncio.Task[str]] = {}
        self._listeners: dict[str, list[Progress]] = {}
        # Told each runtime whose image has just become ready (the worker
        # reports it to the control plane, whose placement waits for it).
        self.on_ready: Callable[[str], None] | None = None

    def ready_runtimes(self) -> frozenset[str]:
        """The runtimes whose image this process has made sure of."""
        return frozenset(self._resolved)

    async def ensure(self, runtime: str, progress: Progress | None = None) -> str:
        """Return a reference to an image on the daemon that runs ``runtime``.

        ``progress`` receives human-readable steps of a pull or build, always on
        the event loop's thread. Raises RuntimeImageError when no image can be
        had; the message names the runtime and LAMBDA_RUNTIME_IMAGE_MAPPING.
        """
        image = self._resolved.get(runtime)
        if image is not None:
            return image
        listeners = self._listeners.setdefault(runtime, [])
        if progress is not None:
            listeners.append(progress)
        try:
            task = self._pending.get(runtime)
            if task is None:
                task = asyncio.create_task(
                    self._resolve(runtime, self._reporter(runtime)),
                    name=f"ensure runtime image {runtime}",
                )
                self._pending[runtime] = task
                task.add_done_callback(functools.partial(self._settle, runtime))
            return await asyncio.shield(task)
        finally:
            if progress is not None and progress in listeners:
                listeners.remove(progress)

    async def ensure_image(self, image_uri: str) -> str:
        """A PackageType=Image function's image: on the daemon, or pulled.
        Raises RuntimeImageError with AWS's words for a missing image."""
        if await self._present(image_uri):
            return image_uri
        error = await self._pull(image_uri, USER_PULL_TIMEOUT, lambda message: None)
        if error is None:
            return image_uri
        raise RuntimeImageError(
            f"Source image {image_uri} does not exist. Provide a valid source image. "
            f"(It is not on the worker's Docker daemon and pulling it failed: {error}. "
            "Load it onto the daemon, e.g. docker build or docker load.)"
        )

    def forget(self, runtime: str) -> None:
        """Drop the remembered image, e.g. after someone removed it from the daemon."""
        self._resolved.pop(runtime, None)

    def _settle(self, runtime: str, task: asyncio.Task[str]) -> None:
        self._pending.pop(runtime, None)
        # Retrieving the exception also keeps asyncio from reporting it as
        # never retrieved when every waiter was cancelled.
        if task.cancelled() or task.exception() is not None:
            return
        self._resolved[runtime] = task.result()
        if self.on_ready is not None:
            self.on_ready(runtime)

    def _reporter(self, runtime: str) -> Progress:
        """A progress function that may be called from any thread."""
        loop = asyncio.get_running_loop()

        def deliver(message: str) -> None:
            # Logged here, once, whoever listens (the worker's listener
            # reports to the control plane; it logs nothing itself).
            log.info("image.progress", runtime=runtime, msg=message)
            for listener in list(self._listeners.get(runtime, ())):
                try:
                    listener(message)
                except Exception:
                    log.exception("progress callback failed", runtime=runtime)

        def report(message: str) -> None:
            # RuntimeError: the loop is closed, so nobody waits for news.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, message)

        return report

    async def _resolve(self, runtime: str, report: Progress) -> str:
        if runtime not in _OFFICIAL_TAGS:
            raise _unknown_runtime(runtime)

        user_image = self._mapping.user_image(runtime)
        if user_image is not None:
            if await self._present(user_image):
                return user_image
            report(f"pulling {user_image} for {runtime}")
            error = await self._pull(user_image, USER_PULL_TIMEOUT, report)
            if error is None:
                return user_image
            raise RuntimeImageError(
                f"runtime {runtime}: image {user_image!r} (from {MAPPING_ENV}) is not on the "
                f"Docker daemon and pulling it failed: {error}. Load it onto the daemon "
                f"(docker load / docker build) or set {MAPPING_ENV} to an image that is there."
            )

        official = default_image(runtime)
        if await self._present(official):
            return official
        report(f"trying to pull {official}")
        error = await self._pull(official, self._pull_timeout, report)
        if error is None:
            return official
        log.info("official image unavailable", runtime=runtime, image=official, error=error)

        if runtime not in RECIPES:
            raise RuntimeImageError(
                f"no image for runtime {runtime}: {official} is not on the Docker daemon and "
                f"cannot be pulled ({error}), and lambdafleet can only build "
                f"{', '.join(sorted(RECIPES))} itself. Put an image for {runtime} on the daemon "
                f"and name it in {MAPPING_ENV}, e.g. "
                f'\'{{"{runtime}": "myrepo/lambda:{runtime}"}}\'.'
            )
        built = local_image(runtime)
        state = await asyncio.to_thread(_local_image_state, self._client, runtime)
        if state == "current":
            return built
        report(f"{official} is unavailable ({error}); building {built} locally")
        try:
            return await asyncio.to_thread(
                build_runtime_image, self._client, runtime, report, cache_dir=self._cache_dir
            )
        except RuntimeImageError as exc:
            if state != "stale":
                raise
            # An image from an older recipe still runs functions; better than none.
            log.warning("rebuild failed, using the older image", runtime=runtime, error=str(exc))
            report(f"rebuilding {built} failed ({exc}); using the existing older image")
            return built

    async def _present(self, image: str) -> bool:
        return await asyncio.to_thread(_image_present, self._client, image)

    async def _pull(self, image: str, start_timeout: float, report: Progress) -> str | None:
        """Pull ``image``; None when it is on the daemon afterwards, else why not.

        docker-py's pull has no timeout of its own, so it runs in a daemon thread
        that we can walk away from: a stuck pull neither blocks the caller past
        the timeouts nor keeps the process (or asyncio.run) from exiting.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[Literal["message", "failed", "done"], Any]] = asyncio.Queue()

        def deliver(kind: Literal["message", "failed", "done"], payload: Any) -> None:
            with contextlib.suppress(RuntimeError):  # loop closed: we gave up long ago
                loop.call_soon_threadsafe(events.put_nowait, (kind, payload))

        def run() -> None:
            try:
                for message in self._client.api.pull(image, stream=True, decode=True):
                    deliver("message", message)
            except Exception as exc:
                deliver("failed", _docker_error(exc))
            else:
                deliver("done", None)

        started = time.monotonic()
        threading.Thread(target=run, name=f"docker pull {image}", daemon=True).start()
        timeout = start_timeout
        while True:
            try:
                kind, payload = await asyncio.wait_for(events.get(), timeout)
            except TimeoutError:
                error = f"no progress within {timeout:g} s"
                break
            if kind == "failed":
                error = str(payload)
                break
            if kind == "done":
                if await self._present(image):
                    report(f"pulled {image}")
                    return None
                error = "the pull ended but the image is not on the daemon"
                break
            if isinstance(payload, dict) and payload.get("error"):
                error = str(payload["error"])
                break
            timeout = PULL_IDLE_TIMEOUT
            line = _pull_status(payload)
            if line:
                report(line)
        log.info(
            "pull failed", image=image, error=error, seconds=round(time.monotonic() - started, 2)
        )
        return error


def _image_present(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def _local_image_state(
    client: docker.DockerClient, runtime: str
) -> Literal["missing", "stale", "current"]:
    try:
        labels = client.images.get(local_image(runtime)).labels
    except docker.errors.ImageNotFound:
        return "missing"
    current = labels.get(RECIPE_LABEL) == fingerprint(RECIPES[runtime], _host_arch())
    return "current" if current else "stale"


def _docker_error(exc: Exception) -> str:
    # APIError's explanation is the daemon's own message, without the URL noise.
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


# Statuses that repeat many times a second during a pull and only carry a byte count.
_NOISY_PULL_STATUSES = {"Downloading", "Extracting", "Waiting", "Verifying Checksum"}


def _pull_status(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    status = message.get("status")
    if not status or status in _NOISY_PULL_STATUSES:
        return None
    layer = message.get("id")
    return f"{layer}: {status}" if layer else str(status)


# --------------------------------------------------------------------------
# Building images


_DEBIAN_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_WHEEL_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def build_runtime_image(
    client: docker.DockerClient,
    runtime: str,
    progress: Progress | None = None,
    *,
    cache_dir: Path | None = None,
) -> str:
    """Build ``lambdafleet/runtime:<runtime>`` on the daemon and return its tag.

    Blocking. The root filesystem and wheels are cached under ``cache_dir``
    (default: $LAMBDAFLEET_IMAGE_CACHE or ~/.cache/lambdafleet/images), and the
    daemon's build cache keeps the layers, so only the first build is slow.
    Making a root filesystem needs root and debootstrap on this host.
    """
    recipe = RECIPES.get(runtime)
    if recipe is None:
        raise RuntimeImageError(
            f"lambdafleet cannot build an image for runtime {runtime!r} "
            f"(it can build: {', '.join(sorted(RECIPES))}); put one on the Docker daemon "
            f"and name it in {MAPPING_ENV}"
        )
    report: Progress = progress or (lambda _message: None)
    started = time.monotonic()
    arch = _host_arch()
    daemon_arch = _DEBIAN_ARCH.get(str(client.version().get("Arch", "")), "unknown")
    if daemon_arch != arch:
        # debootstrap and the wheels produce binaries for this host's CPU.
        raise RuntimeImageError(
            f"cannot build {runtime} for the Docker daemon: it runs on {daemon_arch} "
            f"but this host is {arch}; build on a host of the daemon's architecture "
            f"or name an image in {MAPPING_ENV}"
        )
    cache = _cache_root(cache_dir)
    rootfs = _rootfs_tarball(recipe, arch, cache, report)
    wheels = _download_wheels(recipe, arch, cache, report)
    recipe_fingerprint = fingerprint(recipe, arch)
    layer = runtime_layer(recipe, wheels)
    tag = local_image(runtime)
    _docker_build(client, recipe, tag, recipe_fingerprint, rootfs, layer, cache, report)
    report(f"built {tag} in {time.monotonic() - started:.1f} s")
    return tag


def _host_arch() -> str:
    machine = platform.machine().lower()
    try:
        return _DEBIAN_ARCH[machine]
    except KeyError:
        raise RuntimeImageError(
            f"cannot build runtime images on a {machine} host; name images in {MAPPING_ENV}"
        ) from None


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return cache_dir
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "lambdafleet" / "images"


@contextlib.contextmanager
def _file_lock(target: Path) -> Iterator[None]:
    """Serialise producing ``target`` between threads and processes on this host."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# debootstrap prints a line per package and step; these are the per-package
# ones, kept out of the progress stream (they still go to the debug log).
_PER_PACKAGE_LINE = re.compile(
    r"^I: (?:(?:Retrieving|Validating) \S+ \S*\d\S*|"
    r"(?:Extracting|Unpacking|Configuring) [^\s.]\S*\.\.\.)$"
)


def _rootfs_tarball(recipe: BuildRecipe, arch: str, cache: Path, report: Progress) -> Path:
    """A tarball of a Debian root filesystem for ``recipe``, made once and cached."""
    key = rootfs_key(recipe, arch)
    tarball = cache / "rootfs" / f"{recipe.suite}-{arch}-{key}.tar"
    if tarball.exists():
        report(f"using cached root filesystem {tarball}")
        return tarball
    with _file_lock(tarball):
        if tarball.exists():  # another thread or process made it meanwhile
            report(f"using cached root filesystem {tarball}")
            return tarball
        if os.geteuid() != 0:
            raise RuntimeImageError(
                f"building the {recipe.runtime} image needs a Debian root filesystem, and "
                f"debootstrap must run as root to make one: run `lambdafleet images build "
                f"{recipe.runtime}` as root once (it is then cached in {tarball.parent}), "
                f"or name an image in {MAPPING_ENV}"
            )
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise RuntimeImageError(
                f"building the {recipe.runtime} image needs debootstrap on this host "
                f"(apt-get install -y debootstrap), or name an image in {MAPPING_ENV}"
            )
        # Inside the cache, not /tmp: /tmp may be a tmpfs mounted nodev/noexec,
        # and debootstrap creates device files and runs programs in the target.
        work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=tarball.parent))
        try:
            target = work / "rootfs"
            command = [
                debootstrap,
                "--variant=minbase",
                f"--arch={arch}",
                f"--include={','.join(recipe.packages)}",
                recipe.suite,
                str(target),
            ]
            report(
                f"debootstrap {recipe.suite} ({', '.join(recipe.packages)}) started; "
                "this takes a minute or two"
            )
            started = time.monotonic()
            _run_streaming(command, report, "debootstrap", filter_line=_PER_PACKAGE_LINE.match)
            report(f"debootstrap finished in {time.monotonic() - started:.1f} s")
            # Package downloads and indexes are dead weight in an image
            # (Debian's own images drop them too); apt-get update restores them.
            for leftover in (
                *target.glob("var/cache/apt/archives/*.deb"),
                *target.glob("var/cache/apt/*.bin"),
                *(p for p in target.glob("var/lib/apt/lists/*") if p.is_file()),
            ):
                if leftover.name != "lock":
                    leftover.unlink()
            partial = work / "rootfs.tar"
            # Device nodes are left out: Docker provides /dev, and unpacking
            # them fails on daemons without the right to mknod (rootless, userns).
            subprocess.run(
                [
                    "tar",
                    "--numeric-owner",
                    "--exclude=./dev/*",
                    "--exclude=./proc/*",
                    "--exclude=./sys/*",
                    "-C",
                    str(target),
                    "-cf",
                    str(partial),
                    ".",
                ],
                check=True,
                capture_output=True,
            )
            os.replace(partial, tarball)
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise RuntimeImageError(
                f"packing the root filesystem failed: {stderr.strip()}"
            ) from exc
        finally:
            _remove_tree(work)
        size_mb = tarball.stat().st_size / 1e6
        report(f"cached root filesystem {tarball} ({size_mb:.0f} MB)")
        return tarball


def _run_streaming(
    command: list[str],
    report: Progress,
    name: str,
    filter_line: Callable[[str], object] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``command``, passing its output on as progress; raise with its tail on failure."""
    tail: deque[str] = deque(maxlen=20)
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            if not line:
                continue
            tail.append(line)
            if filter_line is None or not filter_line(line):
                log.debug(name, line=line)
                report(f"{name}: {line}")
        returncode = process.wait()
    if returncode != 0:
        output = "\n".join(tail)
        raise RuntimeImageError(f"{name} failed with exit code {returncode}:\n{output}")


def _remove_tree(path: Path) -> None:
    # A debootstrap that died midway can leave /proc and /sys mounted inside
    # its target; removing files there would reach into the host's.
    with contextlib.suppress(OSError):
        prefix = str(path) + "/"
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if len(line.split()) > 1
        ]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _download_wheels(recipe: BuildRecipe, arch: str, cache: Path, report: Progress) -> list[Path]:
    """Wheels of ``recipe.requirements`` for the image's Python, cached per version set."""
    if recipe.python_version is None or not recipe.requirements:
        return []
    platform_tag = f"manylinux2014_{_WHEEL_ARCH[arch]}"
    abi = "cp" + recipe.python_version.replace(".", "")
    key = short_hash(recipe.requirements, platform_tag, abi)
    folder = cache / "wheels" / f"{recipe.runtime}-{platform_tag}-{key}"
    complete = folder / ".complete"
    if complete.exists():
        report(f"using cached wheels {folder}")
        return sorted(folder.glob("*.whl"))
    with _file_lock(folder):
        if complete.exists():
            return sorted(folder.glob("*.whl"))
        shutil.rmtree(folder, ignore_errors=True)
        report(f"downloading wheels: {' '.join(recipe.requirements)}")
        started = time.monotonic()
        partial = Path(tempfile.mkdtemp(prefix="wheels-", dir=folder.parent))
        try:
            # On the host, not in the image: pip inside containers cannot
            # always reach the package index. The platform and ABI flags make
            # pip pick wheels for the image's Python whatever the host runs.
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--progress-bar=off",
                "--only-binary=:all:",
                "--platform",
                platform_tag,
                "--python-version",
                recipe.python_version,
                "--implementation",
                "cp",
                "--abi",
                abi,
                "-d",
                str(partial),
                *recipe.requirements,
            ]
            # The recipe pins every wheel exactly; a lock or constraint the
            # worker's own environment carries (PIP_CONSTRAINT: our test
            # command sets it for lambdafleet's install) is not the image's.
            env = {**os.environ, "PIP_CONSTRAINT": ""}
            _run_streaming(command, lambda _line: None, "pip download", env=env)
            (partial / ".complete").write_text(" ".join(recipe.requirements) + "\n")
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    wheels = sorted(folder.glob("*.whl"))
    report(f"downloaded {', '.join(w.name for w in wheels)} in {time.monotonic() - started:.1f} s")
    return wheels


def _docker_build(
    client: docker.DockerClient,
    recipe: BuildRecipe,
    tag: str,
    recipe_fingerprint: str,
    rootfs: Path,
    layer: bytes,
    cache: Path,
    report: Progress,
) -> None:
    """Send the build context to the daemon (local or remote) and build ``tag``."""
    dockerfile_text = dockerfile(recipe, recipe_fingerprint).encode()
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    # A file rather than memory: the context holds the whole root filesystem.
    with tempfile.TemporaryFile(dir=cache / "tmp", prefix="context-") as context:
        with tarfile.open(fileobj=context, mode="w") as tar:
            for name, data in (("Dockerfile", dockerfile_text), ("runtime.tar", layer)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = LAYER_MTIME
                tar.addfile(info, io.BytesIO(data))
            tar.add(rootfs, arcname="rootfs.tar")
        size_mb = context.tell() / 1e6
        context.seek(0)
        report(f"sending build context ({size_mb:.0f} MB) to the Docker daemon")
        started = time.monotonic()
        try:
            output = client.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                timeout=BUILD_TIMEOUT,
            )
            for message in output:
                if not isinstance(message, dict):
                    continue
                if message.get("error"):
                    raise RuntimeImageError(
                        f"docker build of {tag} failed: {str(message['error']).strip()}"
                    )
                for line in str(message.get("stream", "")).splitlines():
                    if line.strip():
                        report(f"docker build: {line.strip()}")
        except docker.errors.APIError as exc:
            raise RuntimeImageError(f"docker build of {tag} failed: {_docker_error(exc)}") from exc
    report(f"docker build of {tag} finished in {time.monotonic() - started:.1f} s")
