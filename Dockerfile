# lambdafleet's images, one Dockerfile, two targets:
#   lambdafleet  gateway and control plane (no Docker in them); the command picks the part
#   worker       a worker with its own Docker daemon inside (Debian's docker.io),
#                so that each replica of the compose service has a daemon of its own
#
# BASE_IMAGE is a public Python image by default; offline, a Debian image with
# python3 and python3-venv made locally (scripts/offline-images.sh). When
# wheelhouse/ holds wheels (that script downloads them on the host, at the
# lock's versions) everything installs from there with --no-index; otherwise
# pip reaches the index. Either way the lock, constraints.txt, applies
# (through PIP_CONSTRAINT, which also reaches the isolated environment of the
# build step).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base

# The wheelhouse's folders may be empty or missing (an online build): make them
# exist so that the stages below can copy each one on its own, and a new
# lambdafleet wheel does not invalidate the layer of its dependencies.
FROM base AS wheels
COPY wheelhouse/ /wheels/
RUN mkdir -p /wheels/deps /wheels/dist /wheels/runtime

# A virtual environment with lambdafleet's dependencies: Debian's python3
# refuses `pip install` into the system (PEP 668), and the same path works
# from either base. Built aside and copied, so the wheels stay out of the images.
FROM base AS deps-venv
COPY --from=wheels /wheels/deps/ /wheels/deps/
COPY pyproject.toml constraints.txt /src/
RUN export PIP_CONSTRAINT=/src/constraints.txt \
    && python3 -m venv /opt/lambdafleet \
    && if ls /wheels/deps/*.whl >/dev/null 2>&1; then \
         /opt/lambdafleet/bin/pip install --no-cache-dir --no-index --disable-pip-version-check /wheels/deps/*.whl; \
       else \
         /opt/lambdafleet/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' >/src/requirements.txt \
         && /opt/lambdafleet/bin/pip install --no-cache-dir --disable-pip-version-check -r /src/requirements.txt; \
       fi

FROM base AS deps
COPY --from=deps-venv /opt/lambdafleet /opt/lambdafleet
ENV PATH=/opt/lambdafleet/bin:$PATH PYTHONUNBUFFERED=1

# lambdafleet itself goes last in each image: a change of the code rebuilds
# only that layer. From the wheelhouse's wheel, or (online) from the source.
FROM deps AS source
COPY --from=wheels /wheels/dist/ /wheels/dist/
COPY pyproject.toml setup.py MANIFEST.in README.md constraints.txt /src/
COPY proto/ /src/proto/
COPY lambdafleet/ /src/lambdafleet/
COPY gateway/ /src/gateway/
COPY control_plane/ /src/control_plane/
COPY worker/ /src/worker/
RUN mkdir -p /dist \
    && if ls /wheels/dist/lambdafleet-*.whl >/dev/null 2>&1; then \
      cp /wheels/dist/lambdafleet-*.whl /dist/; \
    else \
      PIP_CONSTRAINT=/src/constraints.txt \
        pip wheel --no-cache-dir --disable-pip-version-check --no-deps -w /dist /src; \
    fi

FROM deps AS lambdafleet
COPY --from=source /dist/ /dist/
RUN pip install --no-cache-dir --no-index --disable-pip-version-check --no-deps /dist/lambdafleet-*.whl \
    && pip check && rm -rf /dist
ENTRYPOINT ["lambdafleet"]

FROM deps AS worker
# dockerd (with containerd, runc, iptables) for the worker's own daemon, and
# debootstrap (with a keyring that knows trixie) for the root filesystems of
# the runtime images the worker builds on that daemon. apt reaches the Debian
# mirror over plain HTTP from inside a container.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         docker.io debootstrap debian-archive-keyring ca-certificates iproute2 procps \
    && rm -rf /var/lib/apt/lists/*
# The wheels of the runtime interface client and boto3, which the worker's own
# `pip download` finds here instead of on the index (see
# scripts/worker-entrypoint.sh).
COPY --from=wheels /wheels/runtime/ /wheels/runtime/
COPY scripts/worker-entrypoint.sh /usr/local/bin/lambdafleet-worker-entrypoint
# The inner daemon's images and containers: overlay2 cannot stack on the
# container's own overlay filesystem, so this must be a volume (for a plain
# `docker run`) or a tmpfs (compose.yaml mounts one: no volume is made then).
VOLUME /var/lib/docker
COPY --from=source /dist/ /dist/
RUN pip install --no-cache-dir --no-index --disable-pip-version-check --no-deps /dist/lambdafleet-*.whl \
    && pip check && rm -rf /dist
ENTRYPOINT ["lambdafleet-worker-entrypoint"]
