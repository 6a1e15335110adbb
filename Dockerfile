# lambdafleet's images, one Dockerfile, two targets:
#   lambdafleet  gateway and control plane (no Docker in them); the command picks the part
#   worker       a worker with its own Docker daemon inside (Debian's docker.io),
#                so that each replica of the compose service has a daemon of its own
#
# BASE_IMAGE is a public Python image by default; offline, a Debian image with
# python3 and python3-venv made locally (scripts/offline-images.sh). When
# wheelhouse/ holds wheels (that script downloads them on the host) everything
# installs from there with --no-index; otherwise pip reaches the index.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base

# The wheelhouse's folders may be empty or missing (an online build): make them
# exist so that the stages below can copy each one on its own, and a new
# lambdafleet wheel does not invalidate the layer of its dependencies.
FROM base AS wheels
COPY wheelhouse/ /wheels/
RUN mkdir -p /wheels/deps /wheels/dist /wheels/runtime

# A virtual environment: Debian's python3 refuses `pip install` into the
# system (PEP 668), and the same path works from either base.
FROM base AS venv
COPY --from=wheels /wheels/deps/ /wheels/deps/
RUN python3 -m venv /opt/lambdafleet \
    && if ls /wheels/deps/*.whl >/dev/null 2>&1; then \
         /opt/lambdafleet/bin/pip install --no-cache-dir --no-index --disable-pip-version-check /wheels/deps/*.whl; \
       fi
COPY --from=wheels /wheels/dist/ /wheels/dist/
COPY pyproject.toml setup.py MANIFEST.in README.md /src/
COPY proto/ /src/proto/
COPY lambdafleet/ /src/lambdafleet/
COPY gateway/ /src/gateway/
COPY control_plane/ /src/control_plane/
COPY worker/ /src/worker/
RUN if ls /wheels/dist/lambdafleet-*.whl >/dev/null 2>&1; then \
      /opt/lambdafleet/bin/pip install --no-cache-dir --no-index --disable-pip-version-check \
        --find-links /wheels/deps /wheels/dist/lambdafleet-*.whl; \
    else \
      /opt/lambdafleet/bin/pip install --no-cache-dir --disable-pip-version-check /src; \
    fi \
    && rm -rf /src

FROM base AS lambdafleet
COPY --from=venv /opt/lambdafleet /opt/lambdafleet
ENV PATH=/opt/lambdafleet/bin:$PATH PYTHONUNBUFFERED=1
ENTRYPOINT ["lambdafleet"]

FROM base AS worker
# dockerd (with containerd, runc, iptables) for the worker's own daemon, and
# debootstrap (with a keyring that knows trixie) for the root filesystems of
# the runtime images the worker builds on that daemon. apt reaches the Debian
# mirror over plain HTTP from inside a container.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         docker.io debootstrap debian-archive-keyring ca-certificates iproute2 procps \
    && rm -rf /var/lib/apt/lists/*
# The runtime interface client's wheels, which the worker's own `pip download`
# finds here instead of on the index (see docker/worker-entrypoint.sh).
COPY --from=wheels /wheels/runtime/ /wheels/runtime/
COPY --from=venv /opt/lambdafleet /opt/lambdafleet
COPY docker/worker-entrypoint.sh /usr/local/bin/lambdafleet-worker-entrypoint
ENV PATH=/opt/lambdafleet/bin:$PATH PYTHONUNBUFFERED=1
# The inner daemon's images and containers: overlay2 cannot stack on the
# container's own overlay filesystem, so this must be a volume.
VOLUME /var/lib/docker
ENTRYPOINT ["lambdafleet-worker-entrypoint"]
