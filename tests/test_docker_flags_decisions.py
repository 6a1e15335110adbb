"""The pure decisions behind LAMBDA_DOCKER_FLAGS, LAMBDA_REMOVE_CONTAINERS,
/tmp's mount, the layers' merge and an image function's command."""

from __future__ import annotations

import io
import tarfile

import pytest
from lambdafleet.worker.docker_flags import (
    DockerFlagsError,
    check_environment,
    parse_flags,
    parse_remove,
    tmp_mount,
)
from lambdafleet.worker.launch import container_command
from lambdafleet.worker.layers import merge_tars

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.environments import environment_key


def test_supported_flags_in_every_spelling() -> None:
    flags = parse_flags(
        "-e A=1 --env B='two words' --env=C=3 -e FROM_HOST -v /src:/dst:ro "
        "--add-host db:10.0.0.5 --dns 1.1.1.1 --network=fn-net -l team=x "
        "--memory 256m --cpus 0.5 --pids-limit 100 --ulimit nofile=1024:2048",
        host_env={"FROM_HOST": "h"},
    )
    assert flags.environment == {"A": "1", "B": "two words", "C": "3", "FROM_HOST": "h"}
    assert flags.volumes == ["/src:/dst:ro"]
    assert flags.extra_hosts == {"db": "10.0.0.5"}
    assert flags.dns == ["1.1.1.1"]
    assert flags.network == "fn-net"
    assert flags.labels == {"team": "x"}
    kwargs = flags.create_kwargs()
    assert kwargs["mem_limit"] == "256m"
    assert kwargs["nano_cpus"] == 500_000_000
    assert kwargs["pids_limit"] == 100
    assert kwargs["ulimits"] == [{"name": "nofile", "soft": 1024, "hard": 2048}]
    assert kwargs["volumes"] == ["/src:/dst:ro"]


def test_empty_flags_add_nothing() -> None:
    assert parse_flags(None).create_kwargs() == {}
    assert parse_flags("").environment == {}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("--privileged", "--privileged is not allowed"),
        ("-p 5050:5050", "'-p' is not supported"),
        ("--cap-add ALL", "'--cap-add' is not supported"),
        ("-e", "needs a value"),
        ("-v /only-one-part", "SOURCE:DESTINATION"),
        ("--add-host nocolon", "KEY:VALUE"),
        ("--cpus many", "--cpus expects a number"),
        ("-e 'unclosed", "cannot split"),
    ],
)
def test_unsupported_flags_are_refused_with_the_reason(raw: str, says: str) -> None:
    with pytest.raises(DockerFlagsError, match="LAMBDA_DOCKER_FLAGS") as info:
        parse_flags(raw, host_env={})
    assert says in str(info.value)


def test_remove_containers_setting() -> None:
    assert parse_remove(None) is True
    assert parse_remove("1") is True
    assert parse_remove("0") is False
    assert parse_remove("false") is False
    with pytest.raises(DockerFlagsError):
        parse_remove("maybe")
    assert check_environment({"LAMBDA_REMOVE_CONTAINERS": "maybe"}) is not None
    assert check_environment({"LAMBDA_DOCKER_FLAGS": "--privileged"}) is not None
    assert check_environment({"LAMBDA_DOCKER_FLAGS": "-e A=1"}) is None


def test_tmp_is_a_tmpfs_of_the_ephemeral_size_owned_by_the_sandbox_user() -> None:
    assert tmp_mount(1024, "993:990") == {"/tmp": "rw,size=1024m,uid=993,gid=990,mode=1777"}


def _tar(files: dict[str, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _read(data: bytes) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            f = tar.extractfile(info) if info.isfile() else None
            found[info.name] = f.read() if f is not None else None
    return found


def test_later_layers_overwrite_earlier_ones_in_order() -> None:
    first = _tar({"python": None, "python/a.py": b"a1", "shared.txt": b"first"})
    second = _tar({"shared.txt": b"second", "python/b.py": b"b2"})
    merged = _read(merge_tars([first, second]))
    assert merged == {
        "python": None,
        "shared.txt": b"second",
        "python/a.py": b"a1",
        "python/b.py": b"b2",
    }
    # The other order, the other winner.
    assert _read(merge_tars([second, first]))["shared.txt"] == b"first"
    assert merge_tars([]) == b""


def test_a_file_over_a_folder_replaces_the_folder() -> None:
    merged = _read(merge_tars([_tar({"x": None, "x/y": b"1"}), _tar({"x": b"file"})]))
    assert merged == {"x": b"file"}


def test_image_function_command_keeps_the_image_unless_overridden() -> None:
    zip_spec = apb.FunctionSpec(handler="app.handler")
    assert container_command(zip_spec) == (["app.handler"], None, None)
    image = apb.FunctionSpec(package_type="Image", image_uri="repo/fn:1")
    assert container_command(image) == ([], None, None)
    image.image_config.command.append("app.other")
    image.image_config.entry_point.extend(["/lambda-entrypoint.sh"])
    image.image_config.working_directory = "/var/task"
    assert container_command(image) == (["app.other"], ["/lambda-entrypoint.sh"], "/var/task")


def test_environment_key_changes_with_layers_and_image() -> None:
    spec = apb.FunctionSpec(function_name="f", version="$LATEST", revision_id="r", code_sha256="c")
    plain = environment_key(spec)
    spec.layers.append(apb.LayerSpec(layer_version_arn="arn:1", code_sha256="L1"))
    one = environment_key(spec)
    spec.layers.append(apb.LayerSpec(layer_version_arn="arn:2", code_sha256="L2"))
    two = environment_key(spec)
    assert len({plain, one, two}) == 3
    spec.image_uri = "repo/fn:1"
    assert environment_key(spec) != two
