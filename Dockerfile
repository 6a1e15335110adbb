# lambdafleet's parts in one image; the command picks the part.
# BASE_IMAGE may be a locally built Debian image with python3 for offline builds.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG PIP_FIND_LINKS=/wheels
RUN apt-get update && apt-get install -y --no-install-recommends debootstrap \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN pip install --no-cache-dir --find-links ${PIP_FIND_LINKS} /src
ENTRYPOINT ["lambdafleet"]
