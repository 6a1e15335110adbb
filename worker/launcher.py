"""The command a runtime container starts with: the external extensions in
/opt/extensions, then the image's own /lambda-entrypoint.sh <handler>.

It is handed to the container (`/bin/sh -c LAUNCH lambda-launch <handler>`)
rather than baked into lambdafleet's runtime images, so it works the same for
AWS's official images (whose entrypoint, given AWS_LAMBDA_RUNTIME_API, runs
the runtime alone) and changing it rebuilds no image.

Before starting any extension it tells the worker how many it starts
(`POST /lambdafleet/v1/extensions?expected=N`, with whichever HTTP client the
image has): init then waits for all of them to register, as Lambda's
Extension init phase does, even if the runtime is faster.

The shell stays as PID 1 and supervises the runtime: SIGHUP (the worker's
`docker kill -s HUP`, which works on remote daemons and needs no exec or
process id) kills the runtime and starts it again in the same container, so
/tmp and the extensions live on. The worker does that when a hot-reloading
function's folder changes, and after a timeout, which AWS answers by running
init again in the same environment (recorded:
test_lambda_invoke_timed_out_environment_reuse keeps /tmp). A runtime that
exits on its own still ends the container, with its exit status.

The stdin fence: the worker creates every container with an open stdin that
Docker closes as soon as the worker's attach to it ends (StdinOnce), which
the kernel ends when the worker process dies, however it dies, and which
holds the same over a remote daemon's TCP connection and in Docker-in-Docker
(it is the worker's own connection to its daemon, not one from the
container back to the worker). A background reader (FENCE) waits for that
end of input and then ends the container: nothing of a dead worker runs on,
busy handlers included, and a caller's retry cannot run alongside. A
container started without an open stdin (none of lambdafleet's) is not
fenced.
"""

from __future__ import annotations

ANNOUNCE_PATH = "/lambdafleet/v1/extensions"

# Ends the container (SIGTERM to its PID 1, which must trap it: PID 1 ignores
# signals it has no handler for) once stdin ends. The reader keeps the
# original stdin as fd 3: an asynchronous list's own stdin is /dev/null. The
# processes started after it never see the fence's descriptor.
FENCE = """\
if [ -p /dev/stdin ]; then
  exec 3<&0
  ( while read -r _; do :; done <&3; kill -TERM $$ ) &
  exec 3<&-
fi
"""

LAUNCH = f"""\
handler="$1"
child=0
trap 'kill -TERM "$child" 2>/dev/null; exit 143' TERM
{FENCE}count=0
for ext in /opt/extensions/*; do
  if [ -f "$ext" ] && [ -x "$ext" ]; then count=$((count + 1)); fi
done
if [ "$count" -gt 0 ]; then
  url="http://$AWS_LAMBDA_RUNTIME_API{ANNOUNCE_PATH}?expected=$count"
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], data=b"")' "$url"
  elif command -v node >/dev/null 2>&1; then
    node -e 'require("http").request(process.argv[1], {{method: "POST"}}).end()' "$url"
  else
    curl -sf -X POST -o /dev/null "$url"
  fi
  for ext in /opt/extensions/*; do
    if [ -f "$ext" ] && [ -x "$ext" ]; then "$ext" & fi
  done
fi
reload=0
trap 'reload=1; kill -KILL "$child" 2>/dev/null' HUP
while :; do
  /lambda-entrypoint.sh "$handler" &
  child=$!
  status=0
  # wait returns early when a trapped signal arrives: wait until it is gone.
  while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
  done
  if [ "$reload" -eq 1 ]; then
    reload=0
    continue
  fi
  exit "$status"
done
"""


def launch_entrypoint() -> list[str]:
    """The container's entrypoint; its command is the handler."""
    return ["/bin/sh", "-c", LAUNCH, "lambda-launch"]
