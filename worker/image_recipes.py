"""Recipes of the runtime images lambdafleet builds offline, and what they render to.

Pure: no Docker, no network, no subprocess. ``images.build_runtime_image``
feeds a recipe's Debian root filesystem (debootstrap), wheels (pip download on
the host) and the layer and Dockerfile made here to the daemon.

Every image keeps the layout of AWS's ``public.ecr.aws/lambda`` images: the
ENTRYPOINT ``/lambda-entrypoint.sh`` takes the handler as its only argument and
runs ``/var/runtime/bootstrap``; code lives in ``/var/task``, layers in
``/opt``. Only languages Debian itself ships are built: Python from bookworm
(3.11) and trixie (3.13) with AWS's awslambdaric and boto3, Node.js from bookworm (18)
and trixie (20) with our own runtime client (runtime_image/node-runtime.mjs:
AWS's needs a native build), and the OS-only ``provided.*`` runtimes, whose
function brings its own ``bootstrap``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RUNTIME_LABEL = "lambdafleet.runtime"
# Fingerprint of what an image was built from, so a changed recipe or changed
# runtime files lead to a rebuild instead of silently running a stale image.
RECIPE_LABEL = "lambdafleet.recipe"

Language = Literal["python", "nodejs", "provided"]


@dataclass(frozen=True)
class BuildRecipe:
    """How to build one runtime's image from Debian packages (and wheels)."""

    runtime: str
    suite: str  # the Debian release whose packages provide the language
    packages: tuple[str, ...]  # debootstrap --include
    language: Language
    python_version: str | None = None  # download wheels for this CPython
    requirements: tuple[str, ...] = ()  # pip requirements, unpacked into /var/runtime
    node_major: str | None = None  # the Node.js major version the suite must ship
    # (path in the image, file in runtime_image/, mode); @@NAME@@ placeholders
    # in the files are filled in by render().
    files: tuple[tuple[str, str, int], ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (path in the image, target)
    env: tuple[tuple[str, str], ...] = ()  # image ENV beyond the common one

    @property
    def execution_env(self) -> str | None:
        return execution_env(self.runtime)

    @property
    def placeholders(self) -> dict[str, str]:
        values = {"EXECUTION_ENV": self.execution_env or ""}
        if self.python_version is not None:
            values["PYTHON"] = f"/usr/bin/python{self.python_version}"
        if self.node_major is not None:
            values["NODE_MAJOR"] = self.node_major
        return values

    @property
    def build_steps(self) -> tuple[tuple[str, ...], ...]:
        """RUN steps of the Dockerfile, as exec-form argument lists."""
        return (*self._language_steps, STRIP_SETUID)

    @property
    def _language_steps(self) -> tuple[tuple[str, ...], ...]:
        if self.language == "python":
            # The function's user cannot write /var/runtime, so compile now
            # rather than on every cold start.
            return (
                (f"/usr/bin/python{self.python_version}", "-m", "compileall", "-q", "/var/runtime"),
            )
        if self.language == "nodejs":
            # Fails the build when the suite's Node.js is not the runtime's
            # major version (Debian moved on), instead of mislabelling it.
            check = (
                f"const v = process.versions.node; if (v.split('.')[0] !== '{self.node_major}') "
                f"{{ console.error('expected Node.js {self.node_major}, the suite has ' + v); "
                "process.exit(1); }"
            )
            return (
                ("/usr/bin/node", "-e", check),
                ("/usr/bin/node", "--check", "/var/runtime/index.mjs"),
            )
        return ()


# Debian's minbase has setuid and setgid programs (su, passwd, mount, chsh,
# newgrp, unix_chkpwd, ...): none has a use in a function, so no bit is left
# to escalate with. no-new-privileges (worker/isolation.py) disarms them in
# the images lambdafleet does not build.
STRIP_SETUID = (
    "/usr/bin/find", "/", "-xdev", "-type", "f", "-perm", "/6000",
    "-exec", "/usr/bin/chmod", "ug-s", "{}", "+",
)  # fmt: skip


def execution_env(runtime: str) -> str | None:
    """AWS_EXECUTION_ENV of a runtime. AWS sets none for the OS-only runtimes
    (recorded: test_lambda_common introspection of provided.al2/al2023)."""
    if runtime.startswith("provided"):
        return None
    return f"AWS_Lambda_{runtime}"


# Pinned so that the wheel cache, the image fingerprint and the runtime
# behaviour stay the same between builds; simplejson and snapshot-restore-py
# are awslambdaric's dependencies. All three have cp311 and cp313 wheels.
RIC_REQUIREMENTS = ("awslambdaric==4.2.2", "simplejson==4.3.0", "snapshot-restore-py==1.0.0")
# The AWS SDK that AWS's Python runtimes carry in /var/runtime, so a handler
# can `import boto3` without bundling it; a boto3 the function bundles in
# /var/task (or a layer's in /opt/python) comes first on sys.path and wins,
# as on AWS. Every dependency is pinned too (pure Python, py3-none-any), so
# that `pip download` resolves the same set from a wheelhouse with no index;
# urllib3 2.8.0 needs Python >= 3.10, which both images have.
BOTO3_REQUIREMENTS = (
    "boto3==1.44.8",
    "botocore==1.44.8",
    "jmespath==1.1.0",
    "s3transfer==0.19.3",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "urllib3==2.8.0",
)
# What a Python image unpacks into /var/runtime (scripts/offline-images.sh
# downloads the same list into the compose wheelhouse).
PYTHON_RUNTIME_REQUIREMENTS = RIC_REQUIREMENTS + BOTO3_REQUIREMENTS

_ENTRYPOINT = ("lambda-entrypoint.sh", "lambda-entrypoint.sh", 0o755)

_PYTHON_FILES = (
    _ENTRYPOINT,
    ("var/runtime/bootstrap", "python-bootstrap", 0o755),
    ("var/runtime/bootstrap.py", "python-bootstrap.py", 0o644),
)

_NODE_FILES = (
    _ENTRYPOINT,
    ("var/runtime/bootstrap", "node-bootstrap", 0o755),
    ("var/runtime/index.mjs", "node-runtime.mjs", 0o644),
)

_PROVIDED_FILES = (
    _ENTRYPOINT,
    ("var/runtime/bootstrap", "provided-bootstrap", 0o755),
)


def _python_recipe(version: str, suite: str) -> BuildRecipe:
    # AWS's python3.13 image sets LC_CTYPE (recorded introspection); 3.11's not.
    env = (("LC_CTYPE", "C.UTF-8"),) if version == "3.13" else ()
    return BuildRecipe(
        runtime=f"python{version}",
        suite=suite,
        # python3, not python3-minimal, which lacks http, decimal and more.
        # awslambdaric's C extension links libstdc++; tzdata makes TZ and
        # zoneinfo work as on Lambda.
        packages=("python3", "ca-certificates", "libstdc++6", "tzdata"),
        language="python",
        python_version=version,
        requirements=PYTHON_RUNTIME_REQUIREMENTS,
        files=_PYTHON_FILES,
        env=env,
    )


def _node_recipe(major: str, suite: str) -> BuildRecipe:
    # NODE_PATH as AWS's images set it (recorded introspection).
    node_path = (
        f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
        "/var/runtime/node_modules:/var/runtime:/var/task"
    )
    env: tuple[tuple[str, str], ...] = (("NODE_PATH", node_path),)
    links: tuple[tuple[str, str], ...] = ()
    if major == "18":
        # AWS's nodejs18.x names its CA bundle in NODE_EXTRA_CA_CERTS (recorded).
        env += (("NODE_EXTRA_CA_CERTS", "/var/runtime/ca-cert.pem"),)
        links = (("var/runtime/ca-cert.pem", "/etc/ssl/certs/ca-certificates.crt"),)
    return BuildRecipe(
        runtime=f"nodejs{major}.x",
        suite=suite,
        packages=("nodejs", "ca-certificates", "tzdata"),
        language="nodejs",
        node_major=major,
        files=_NODE_FILES,
        links=links,
        env=env,
    )


def _provided_recipe(runtime: str) -> BuildRecipe:
    # Not Amazon Linux: a Debian base with what AWS's custom runtime tutorial
    # uses (curl). Both provided runtimes share it, and its root filesystem.
    env: tuple[tuple[str, str], ...] = ()
    if runtime == "provided.al2":
        # Amazon Linux 2's image has no /var/lang (recorded introspection).
        env = (
            ("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin"),
            (
                "LD_LIBRARY_PATH",
                "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
            ),
        )
    return BuildRecipe(
        runtime=runtime,
        suite="bookworm",
        packages=("curl", "ca-certificates", "tzdata"),
        language="provided",
        files=_PROVIDED_FILES,
        # On Amazon Linux /bin/sh is bash, and `#!/bin/sh` bootstraps rely on
        # it (the tutorial's uses `set -o pipefail` and `source`, which
        # Debian's dash lacks). /bin is /usr/bin on bookworm (merged /usr).
        links=(("usr/bin/sh", "bash"),),
        env=env,
    )


RECIPES: dict[str, BuildRecipe] = {
    recipe.runtime: recipe
    for recipe in (
        _python_recipe("3.11", "bookworm"),
        _python_recipe("3.13", "trixie"),
        _node_recipe("18", "bookworm"),
        _node_recipe("20", "trixie"),
        _provided_recipe("provided.al2023"),
        _provided_recipe("provided.al2"),
    )
}

RUNTIME_FILES = Path(__file__).parent / "runtime_image"
# Bump when the way images are put together changes in a way that neither the
# recipe, the Dockerfile nor the runtime files show, to force rebuilds.
BUILD_FORMAT = 2
# Fixed timestamps make the runtime layer byte-identical between builds, so the
# daemon's build cache reuses layers and a rebuild costs seconds.
LAYER_MTIME = 1_700_000_000

# Mirrors the environment of AWS's images (and Lambda itself, for TZ).
IMAGE_ENV = {
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin",
    "LD_LIBRARY_PATH": (
        "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
        "/var/task:/var/task/lib:/opt/lib"
    ),
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}


def rootfs_key(recipe: BuildRecipe, arch: str) -> str:
    """Names the cached root filesystem: recipes with the same suite and
    packages (provided.al2 and provided.al2023) share one debootstrap."""
    return short_hash("minbase", recipe.suite, arch, sorted(recipe.packages))


def short_hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def fingerprint(recipe: BuildRecipe, arch: str) -> str:
    """What the image is built from: recipe, Dockerfile and runtime files."""
    digest = hashlib.sha256(repr((BUILD_FORMAT, recipe, arch)).encode())
    digest.update(dockerfile(recipe, fingerprint="").encode())
    for _, source, _ in recipe.files:
        digest.update((RUNTIME_FILES / source).read_bytes())
    return digest.hexdigest()[:16]


def render(recipe: BuildRecipe, text: bytes) -> bytes:
    for name, value in recipe.placeholders.items():
        text = text.replace(f"@@{name}@@".encode(), value.encode())
    return text


def runtime_layer(recipe: BuildRecipe, wheels: Iterable[Path]) -> bytes:
    """A tar with everything the image adds on top of Debian: /var/runtime, /var/task, ..."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, mode: int, data: bytes | None = None, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = LAYER_MTIME
            info.uname = info.gname = "root"
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        files: list[tuple[str, int, bytes]] = []
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.infolist():
                    if not member.is_dir():
                        executable = (member.external_attr >> 16) & 0o111
                        mode = 0o755 if executable else 0o644
                        files.append((f"var/runtime/{member.filename}", mode, archive.read(member)))
        # Directory entries of their own, so every level is readable and
        # searchable by everyone: functions may run as any user.
        directories = {"var/task", "var/runtime"}
        for path, _, _ in files:
            parent = path.rpartition("/")[0]
            while parent.startswith("var/runtime/"):
                directories.add(parent)
                parent = parent.rpartition("/")[0]
        for directory in sorted(directories):
            add(directory, 0o755)
        for path, mode, data in files:
            add(path, mode, data)
        for destination, source, mode in recipe.files:
            add(destination, mode, render(recipe, (RUNTIME_FILES / source).read_bytes()))
        for path, target in recipe.links:
            add(path, 0o777, link=target)
        # AWS's images set LANG=en_US.UTF-8. Without such a locale setlocale()
        # fails and programs fall back to ASCII; minbase has only C.UTF-8, the
        # same encoding, so the name becomes an alias of it (no locales package).
        add("usr/lib/locale/en_US.utf8", 0o777, link="C.utf8")
    return buffer.getvalue()


def dockerfile(recipe: BuildRecipe, fingerprint: str) -> str:
    variables = {**IMAGE_ENV, **dict(recipe.env)}
    env = "ENV " + " \\\n    ".join(f'{name}="{value}"' for name, value in variables.items())
    # The exec form of RUN takes a JSON array: no shell is needed in the image.
    steps = "".join(f"RUN {json.dumps(list(step))}\n" for step in recipe.build_steps)
    return f"""\
FROM scratch
ADD rootfs.tar /
ADD runtime.tar /
{steps}{env}
WORKDIR /var/task
ENTRYPOINT ["/lambda-entrypoint.sh"]
LABEL {RUNTIME_LABEL}="{recipe.runtime}" {RECIPE_LABEL}="{fingerprint}"
"""
