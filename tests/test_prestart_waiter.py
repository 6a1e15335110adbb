"""The waiting process of a pre-started Python container (WAIT_FOR_BIND),
run here against a small bind endpoint: while it is root, nothing of the
function's runs, even from the folder it works in or when unpacking fails."""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lambdafleet.worker.prestart import bind_entrypoint

PLANTED = "open({marker!r}, 'w').write('imported')\n"


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def bind_answer() -> Iterator[tuple[str, list[bytes]]]:
    """An endpoint answering the binding it is given; its address."""
    answer: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answer[0]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", answer
    server.shutdown()
    server.server_close()


def test_a_failed_unpacking_ends_the_waiter_before_anything_of_the_function_runs(
    bind_answer: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    address, answer = bind_answer
    task = tmp_path / "task"
    task.mkdir()
    marker = tmp_path / "imported"
    # Modules of the function's in the folder the waiter starts in, named as
    # ones it imports (tarfile), or one an error report would (traceback).
    for module in ("tarfile", "traceback", "json"):
        (task / f"{module}.py").write_text(PLANTED.format(marker=str(marker)))
    # "a" as a file, then "a/b": unpacking fails halfway.
    tar = _tar([("traceback.py", PLANTED.format(marker=str(marker)).encode()), ("a", b"x")])
    tar_conflict = _tar([("a/b", b"y")])
    head = {
        "handler": "app.handler",
        "environment": {},
        "archives": [[str(task), len(tar)], [str(task), len(tar_conflict)]],
    }
    answer.append(json.dumps(head).encode() + b"\n" + tar + tar_conflict)
    command = bind_entrypoint("python3.11")
    assert command is not None and command[0] == "/usr/bin/python3"
    done = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=task,
        env={"AWS_LAMBDA_RUNTIME_API": address, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode().startswith("lambdafleet: binding failed: NotADirectoryError")
    assert b"Traceback" not in done.stderr
    assert not marker.exists()
    # The first archive was unpacked before the second failed.
    assert (task / "a").read_bytes() == b"x"
