"""Build step: generate the gRPC stubs from proto/ into the package being built.

Generated code is never committed or edited; every build (`pip install .`,
wheel or sdist) regenerates it from the .proto files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "proto"


def generate(out_dir: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ]
    # Typed stubs for the services come from mypy-protobuf's plugin, a build
    # requirement; pip puts the build environment's scripts on PATH.
    plugin = shutil.which("protoc-gen-mypy_grpc") or str(
        Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    )
    if Path(plugin).exists():
        args += [f"--plugin=protoc-gen-mypy_grpc={plugin}", f"--mypy_grpc_out={out_dir}"]
    args += protos
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    # protoc writes no __init__.py; the packages must be importable.
    for proto in protos:
        pkg = out_dir / Path(proto).parent
        while pkg != out_dir:
            (pkg / "__init__.py").touch()
            pkg = pkg.parent


# Generated into the source tree (ignored by git) before setup() runs:
# setuptools checks that every listed package's folder exists as early as
# egg_info, and mypy and ruff then see the stubs when they check the tree.
# grpcio-tools is a build requirement, so it is importable here.
generate(ROOT)
setup()
