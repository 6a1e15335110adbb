#!/bin/sh
# ENTRYPOINT of lambdafleet's locally built runtime images.
#
# It keeps the contract of /lambda-entrypoint.sh in AWS's public.ecr.aws/lambda
# images, so the worker starts both kinds of image the same way: the handler is
# the only argument (the image's CMD), it becomes $_HANDLER, and the runtime's
# /var/runtime/bootstrap serves the Runtime API named by AWS_LAMBDA_RUNTIME_API.
# AWS's images fall back to a bundled emulator when that variable is missing;
# these images bundle none, so they stop with an explanation instead.

if [ "$#" -ne 1 ]; then
  echo "lambda-entrypoint.sh: expected exactly one argument, the handler (for example app.handler), got $#" >&2
  exit 142
fi
export _HANDLER="$1"

if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
  echo "lambda-entrypoint.sh: AWS_LAMBDA_RUNTIME_API is not set. This image has no bundled Runtime Interface Emulator; it is meant to be started by a lambdafleet worker, which sets AWS_LAMBDA_RUNTIME_API=host:port of its Runtime API." >&2
  exit 1
fi

exec /var/runtime/bootstrap
