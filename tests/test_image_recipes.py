"""The pure parts of the offline runtime images: recipes, what they render to,
fingerprints, and how pre-started containers of each image wait for a binding."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import tarfile
from dataclasses import replace

import pytest
from lambdafleet.worker import image_recipes
from lambdafleet.worker.image_recipes import (
    RECIPES,
    dockerfile,
    execution_env,
    fingerprint,
    rootfs_key,
    runtime_layer,
)
from lambdafleet.worker.prestart import Bucket, bind_entrypoint, bind_user, prestartable
from lambdafleet.worker.runtime_api import shell_assignments


def layer_files(runtime: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(runtime_layer(RECIPES[runtime], []))) as tar:
        return {member.name: member for member in tar.getmembers()}


def layer_text(runtime: str, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(runtime_layer(RECIPES[runtime], []))) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read().decode()


def test_each_language_comes_from_the_debian_release_that_ships_it() -> None:
    suites = {runtime: recipe.suite for runtime, recipe in RECIPES.items()}
    assert suites == {
        "python3.11": "bookworm",
        "python3.13": "trixie",
        "nodejs18.x": "bookworm",
        "nodejs20.x": "trixie",
        "provided.al2023": "bookworm",
        "provided.al2": "bookworm",
    }
    assert RECIPES["python3.13"].python_version == "3.13"
    assert RECIPES["nodejs20.x"].node_major == "20"
    assert "nodejs" in RECIPES["nodejs18.x"].packages
    assert "curl" in RECIPES["provided.al2"].packages


def test_the_provided_runtimes_share_one_root_filesystem() -> None:
    al2, al2023 = RECIPES["provided.al2"], RECIPES["provided.al2023"]
    assert rootfs_key(al2, "amd64") == rootfs_key(al2023, "amd64")
    assert rootfs_key(al2, "amd64") != rootfs_key(RECIPES["python3.11"], "amd64")
    assert rootfs_key(al2, "amd64") != rootfs_key(al2, "arm64")
    # ... but not an image: each is labelled with its own runtime.
    assert fingerprint(al2, "amd64") != fingerprint(al2023, "amd64")


def test_fingerprints_follow_the_recipe_and_the_runtime_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    recipe = RECIPES["nodejs20.x"]
    assert fingerprint(recipe, "amd64") == fingerprint(recipe, "amd64")
    assert fingerprint(recipe, "amd64") != fingerprint(recipe, "arm64")
    changed = replace(recipe, packages=(*recipe.packages, "git"))
    assert fingerprint(changed, "amd64") != fingerprint(recipe, "amd64")
    before = fingerprint(recipe, "amd64")
    monkeypatch.setattr(image_recipes, "BUILD_FORMAT", image_recipes.BUILD_FORMAT + 1)
    assert fingerprint(recipe, "amd64") != before


def test_layers_are_byte_identical_between_builds() -> None:
    for recipe in RECIPES.values():
        assert runtime_layer(recipe, []) == runtime_layer(recipe, [])


@pytest.mark.parametrize("runtime", sorted(RECIPES))
def test_every_image_has_the_official_layout(runtime: str) -> None:
    files = layer_files(runtime)
    assert files["lambda-entrypoint.sh"].mode == 0o755
    assert files["var/runtime/bootstrap"].mode == 0o755
    assert files["var/task"].isdir()
    bootstrap = layer_text(runtime, "var/runtime/bootstrap")
    assert not re.search(r"@@[A-Z_]+@@", bootstrap)
    text = dockerfile(RECIPES[runtime], "f1")
    assert 'ENTRYPOINT ["/lambda-entrypoint.sh"]' in text
    assert "WORKDIR /var/task" in text
    assert f'lambdafleet.runtime="{runtime}"' in text and 'lambdafleet.recipe="f1"' in text
    assert 'LAMBDA_TASK_ROOT="/var/task"' in text


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x"])
def test_node_images_run_our_runtime_client_with_aws_variables(runtime: str) -> None:
    major = runtime[len("nodejs") : -len(".x")]
    files = layer_files(runtime)
    assert files["var/runtime/index.mjs"].mode == 0o644
    bootstrap = layer_text(runtime, "var/runtime/bootstrap")
    assert f"export AWS_EXECUTION_ENV=AWS_Lambda_{runtime}" in bootstrap
    assert "/var/runtime/index.mjs" in bootstrap
    text = dockerfile(RECIPES[runtime], "f")
    assert f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:" in text
    # The build fails when Debian's Node.js is not this major version.
    assert f"expected Node.js {major}" in text
    # Only AWS's nodejs18.x names a CA bundle (recorded introspection).
    assert ("NODE_EXTRA_CA_CERTS" in text) == (major == "18")
    if major == "18":
        assert files["var/runtime/ca-cert.pem"].issym()


def test_python_images_compile_their_runtime_and_name_their_interpreter() -> None:
    text = dockerfile(RECIPES["python3.13"], "f")
    assert 'RUN ["/usr/bin/python3.13", "-m", "compileall"' in text
    bootstrap = layer_text("python3.13", "var/runtime/bootstrap")
    assert "exec /usr/bin/python3.13 /var/runtime/bootstrap.py" in bootstrap
    assert "AWS_EXECUTION_ENV=AWS_Lambda_python3.13" in bootstrap
    assert all(req.count("==") == 1 for req in RECIPES["python3.13"].requirements)


@pytest.mark.parametrize("runtime", ["python3.11", "python3.13"])
def test_python_images_carry_a_pinned_boto3_and_rebuild_for_it(runtime: str) -> None:
    recipe = RECIPES[runtime]
    pins = dict(req.split("==") for req in recipe.requirements)
    assert pins["boto3"] == pins["botocore"] == "1.44.8"
    # Every dependency pinned: the wheelhouse resolves without an index.
    assert {"jmespath", "s3transfer", "python-dateutil", "six", "urllib3"} <= set(pins)
    # An image built before boto3 joined the recipe is stale.
    without = replace(recipe, requirements=image_recipes.RIC_REQUIREMENTS)
    assert fingerprint(without, "amd64") != fingerprint(recipe, "amd64")


def test_provided_images_run_the_functions_bootstrap_with_bash_as_sh() -> None:
    files = layer_files("provided.al2023")
    assert files["usr/bin/sh"].issym() and files["usr/bin/sh"].linkname == "bash"
    bootstrap = layer_text("provided.al2023", "var/runtime/bootstrap")
    assert "/opt/bootstrap" in bootstrap and "Runtime.InvalidEntrypoint" in bootstrap
    # Nothing to compile or check: its only step strips setuid bits.
    runs = [x for x in dockerfile(RECIPES["provided.al2023"], "f").splitlines() if "RUN " in x]
    assert runs == [f"RUN {json.dumps(list(image_recipes.STRIP_SETUID))}"]


def test_execution_env_is_unset_for_os_only_runtimes() -> None:
    assert execution_env("python3.13") == "AWS_Lambda_python3.13"
    assert execution_env("nodejs20.x") == "AWS_Lambda_nodejs20.x"
    assert execution_env("java21") == "AWS_Lambda_java21"
    assert execution_env("provided.al2023") is None
    assert execution_env("provided.al2") is None


# --------------------------------------------------------------------------
# Pre-started containers of each image


def test_each_built_image_has_a_way_to_wait_for_its_binding() -> None:
    # Python images: isolated Python, root until bound (it unpacks the code).
    assert bind_entrypoint("python3.13") == [
        "/usr/bin/python3",
        "-I",
        "-c",
        bind_entrypoint("python3.11")[3],  # type: ignore[index]
    ]
    assert bind_user("python3.13") == bind_user("python3.11") == "0:0"
    assert bind_user("nodejs20.x") is None and bind_user("provided.al2") is None
    node = bind_entrypoint("nodejs20.x")
    provided = bind_entrypoint("provided.al2")
    assert node is not None and node[:2] == ["/bin/sh", "-c"] and "/usr/bin/node" in node[2]
    assert provided is not None and "curl -sf" in provided[2]
    assert bind_entrypoint("java21") is None
    assert prestartable(Bucket("nodejs20.x", 128, image="lambdafleet/runtime:nodejs20.x"))
    assert not prestartable(Bucket("nodejs20.x", 128, image="public.ecr.aws/lambda/nodejs:20"))
    assert not prestartable(Bucket("java21", 128, image="lambdafleet/runtime:java21"))


@pytest.mark.parametrize("runtime", ["nodejs20.x", "provided.al2"])
def test_shell_waiters_are_valid_shell(runtime: str) -> None:
    script = bind_entrypoint(runtime)
    assert script is not None
    result = subprocess.run(["sh", "-n", "-c", script[2]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_binding_as_shell_assignments_survives_any_value() -> None:
    document = {
        "handler": "function.handler",
        "environment": {
            "PLAIN": "x",
            "QUOTES": 'it\'s "quoted" $HOME `id`',
            "LINES": "a\nb",
            "EMPTY": "",
            "bad-name": "dropped",
        },
    }
    text = shell_assignments(document)
    script = text + 'printf "%s|%s|%s|%s|%s" "$PLAIN" "$QUOTES" "$LINES" "$EMPTY" "$_HANDLER"'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == 'x|it\'s "quoted" $HOME `id`|a\nb||function.handler'
    assert "bad-name" not in text
    assert all(line.startswith("export ") for line in text.splitlines() if "=" in line)
    assert shlex.split(text)  # plain shell words, no syntax a shell could trip on


@pytest.mark.parametrize("runtime", sorted(RECIPES))
def test_every_image_strips_setuid_and_setgid_bits_last(runtime: str) -> None:
    text = dockerfile(RECIPES[runtime], "f")
    steps = [line for line in text.splitlines() if line.startswith("RUN ")]
    # Last, so no later step brings a setuid file back.
    assert steps[-1] == (
        'RUN ["/usr/bin/find", "/", "-xdev", "-type", "f", "-perm", "/6000", '
        '"-exec", "/usr/bin/chmod", "ug-s", "{}", "+"]'
    )

    # An image built before has another fingerprint, so it is rebuilt.
    real = image_recipes.dockerfile
    before = fingerprint(RECIPES[runtime], "amd64")

    def unstripped_dockerfile(recipe: image_recipes.BuildRecipe, fingerprint: str) -> str:
        return real(recipe, fingerprint).replace(steps[-1] + "\n", "")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(image_recipes, "dockerfile", unstripped_dockerfile)
        assert fingerprint(RECIPES[runtime], "amd64") != before
