#!/usr/bin/env bash
# Offline preparation of the compose cluster's images, for machines that reach
# no container registry (and whose containers cannot reach the package index):
#
#   1. a base image, lambdafleet/base:bookworm: `debootstrap --variant=minbase
#      bookworm` with python3 and python3-venv, then `docker import`;
#   2. a wheelhouse in ./wheelhouse, downloaded on this host (pip inside a
#      container fails here): deps/ lambdafleet's dependencies for the base's
#      CPython 3.11, at the lock's versions (constraints.txt, as an online
#      build installs them), dist/ the wheel of lambdafleet itself, runtime/
#      the wheels of the runtime interface client and of boto3 (pinned by
#      worker/image_recipes.py) that workers put into the python3.11 and
#      python3.13 runtime images they build;
#   3. BASE_IMAGE recorded in .env (other lines of it are kept), which
#      docker-compose reads for every command: a later `docker-compose up -d
#      --scale worker=3` sees the configuration the cluster was started with,
#      and leaves the running containers alone;
#   4. `docker-compose build` from the project's Dockerfile with that base.
#
# Idempotent: an existing base image is kept (LAMBDAFLEET_REBUILD_BASE=1 makes
# it again), each wheelhouse folder is made again only when its sources
# changed, and the build reuses the daemon's layer cache. Run as root (debootstrap). Extra arguments go to
# `docker-compose build`, e.g. a service name.
#
# Environment: BASE_IMAGE (default lambdafleet/base:bookworm), PYTHON (the
# host interpreter that runs pip; default .venv/bin/python, else python3),
# COMPOSE (default docker-compose), LAMBDAFLEET_TAG (tag of the built images).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-lambdafleet/base:bookworm}
COMPOSE=${COMPOSE:-docker-compose}
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# The base's interpreter: bookworm ships CPython 3.11 (and glibc 2.36, which
# bounds the manylinux wheels it can run).
PY_VERSION=3.11
WHEELHOUSE=wheelhouse
# The lock: the build step of lambdafleet's wheel (its isolated environment
# reads only the variable) and the dependencies' download use its versions.
export PIP_CONSTRAINT="$PWD/constraints.txt"

say() { echo "offline-images: $*" >&2; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }
started=$(date +%s)

# --------------------------------------------------------------------------
# 1. The base image
if [ -z "${LAMBDAFLEET_REBUILD_BASE:-}" ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE exists; keeping it"
else
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    step=$(date +%s)
    say "making $BASE_IMAGE: debootstrap --variant=minbase bookworm with python3, python3-venv"
    rootfs=$(mktemp -d /var/tmp/lambdafleet-base-XXXXXX)
    # A debootstrap that dies midway leaves /proc and /sys mounted in the target.
    trap 'umount -l "$rootfs"/proc "$rootfs"/sys 2>/dev/null || true; rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" >"$rootfs.log" 2>&1 || {
        tail -20 "$rootfs.log" >&2
        exit 1
    }
    rm -f "$rootfs.log"
    # Package downloads and indexes are dead weight; `apt-get update` in the
    # Dockerfile fetches fresh indexes.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # Device nodes are Docker's to provide.
    tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -C "$rootfs" -c . |
        docker import \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["/bin/bash"]' \
            - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    say "made $BASE_IMAGE in $(elapsed "$step")"
fi

# --------------------------------------------------------------------------
# 2. The wheelhouse
# Each folder is made again only when what it comes from changed (a key file
# in it says from what), and then whole, so no stale wheel stays behind.
# LAMBDAFLEET_REFRESH_WHEELS=1 downloads the dependencies again anyway.
step=$(date +%s)
mkdir -p "$WHEELHOUSE"
fresh=$(mktemp -d "$WHEELHOUSE/.fresh-XXXXXX")
trap 'rm -rf "$fresh"' EXIT

key_of() { sha256sum | cut -c1-16; }
current() { [ -f "$WHEELHOUSE/$1/.key" ] && [ "$(cat "$WHEELHOUSE/$1/.key")" = "$2" ]; }
install_folder() { # $1 folder, $2 key: replace the folder with the fresh one
    echo "$2" >"$fresh/$1/.key"
    rm -rf "${WHEELHOUSE:?}/$1"
    mv "$fresh/$1" "$WHEELHOUSE/$1"
}

# The sources as git sees them (tracked, and new files not ignored): the
# generated stubs are ignored, so building does not change the key.
sources_key=$(git ls-files -z --cached --others --exclude-standard -- \
    pyproject.toml setup.py MANIFEST.in README.md proto lambdafleet gateway control_plane worker |
    sort -z | xargs -0 sha256sum | key_of)
if current dist "$sources_key"; then
    say "lambdafleet wheel is current ($(ls "$WHEELHOUSE"/dist))"
else
    say "building the lambdafleet wheel"
    # A fixed timestamp in the zip: the same sources give the same wheel, so
    # Docker's cache of the layers installing it stays valid.
    SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel --quiet --disable-pip-version-check \
        --no-deps -w "$fresh/dist" . >&2
    install_folder dist "$sources_key"
fi

# Wheels for the base's CPython whatever this host runs. Several platform tags
# because pip does not expand a manylinux_2_X tag to the older ones.
platforms=()
for glibc in 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17; do
    platforms+=(--platform "manylinux_2_${glibc}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform linux_x86_64)
abi="cp${PY_VERSION//./}"
deps_key=$({ cat pyproject.toml constraints.txt; echo "$PY_VERSION ${platforms[*]}"; } | key_of)
if [ -z "${LAMBDAFLEET_REFRESH_WHEELS:-}" ] && current deps "$deps_key"; then
    say "dependency wheels are current ($(ls "$WHEELHOUSE"/deps | wc -l) wheels)"
else
    say "downloading lambdafleet's dependencies for CPython $PY_VERSION"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        "${platforms[@]}" --python-version "$PY_VERSION" --implementation cp --abi "$abi" \
        -d "$fresh/deps" "$WHEELHOUSE"/dist/lambdafleet-*.whl >&2
    rm -f "$fresh"/deps/lambdafleet-*.whl
    install_folder deps "$deps_key"
fi

# The runtime interface client and boto3, exactly as a worker's own `pip
# download` asks for them (worker/images.py, pinned by its recipes rather than
# the lock), so that the worker finds them in
# this folder.
requirements=$("$PYTHON" - <<'EOF'
import importlib.util
import sys

# The recipes module is pure (standard library only): load it by path, no
# install needed. dataclasses look their module up in sys.modules.
spec = importlib.util.spec_from_file_location("recipes", "worker/image_recipes.py")
assert spec is not None and spec.loader is not None
recipes = importlib.util.module_from_spec(spec)
sys.modules["recipes"] = recipes
spec.loader.exec_module(recipes)
print(" ".join(recipes.PYTHON_RUNTIME_REQUIREMENTS))
EOF
)
runtime_versions="3.11 3.13"
runtime_key=$(echo "$requirements $runtime_versions" | key_of)
if [ -z "${LAMBDAFLEET_REFRESH_WHEELS:-}" ] && current runtime "$runtime_key"; then
    say "runtime wheels are current ($requirements)"
else
    mkdir -p "$fresh/runtime"
    for version in $runtime_versions; do
        say "downloading the runtime wheels for python$version: $requirements"
        # shellcheck disable=SC2086  # one word per requirement
        PIP_CONSTRAINT="" "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
            --platform manylinux2014_x86_64 --python-version "$version" --implementation cp \
            --abi "cp${version//./}" -d "$fresh/runtime" $requirements >&2
    done
    install_folder runtime "$runtime_key"
fi
rm -rf "$fresh"
trap - EXIT
say "wheelhouse ready in $(elapsed "$step")"

# --------------------------------------------------------------------------
# 3. BASE_IMAGE in .env
# docker-compose takes it from there when the shell does not set it, and a
# build argument is part of the configuration it compares to decide whether a
# running container must be recreated.
if [ -f .env ] && grep -qxF "BASE_IMAGE=$BASE_IMAGE" .env; then
    say ".env already sets BASE_IMAGE=$BASE_IMAGE"
else
    touch .env
    grep -v '^BASE_IMAGE=' .env >.env.new || true
    echo "BASE_IMAGE=$BASE_IMAGE" >>.env.new
    mv .env.new .env
    say "recorded BASE_IMAGE=$BASE_IMAGE in .env (docker-compose reads it for every command)"
fi

# --------------------------------------------------------------------------
# 4. The images
step=$(date +%s)
say "building the images with BASE_IMAGE=$BASE_IMAGE"
BASE_IMAGE="$BASE_IMAGE" $COMPOSE -f compose.yaml build "$@"
say "images built in $(elapsed "$step"); offline preparation took $(elapsed "$started")"
