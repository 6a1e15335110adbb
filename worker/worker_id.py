"""The id a worker registers under when it is given none."""

from __future__ import annotations

import re

# Characters of the daemon's ID kept in the worker's id (Docker shortens its
# own ids to twelve characters too).
DAEMON_ID_CHARS = 12


def default_worker_id(hostname: str, daemon_id: str) -> str:
    """The host name and the Docker daemon's ID (`docker info`): two workers
    on one host, each with a daemon of its own, register apart, while a
    worker restarted against the same daemon gets its id back (and so finds
    and removes the containers its previous run left). Only the ID's
    letters and digits count (older daemons write `ABCD:EFGH:...`)."""
    short = re.sub(r"[^A-Za-z0-9]", "", daemon_id)[:DAEMON_ID_CHARS].lower()
    return f"{hostname}-{short}" if short else hostname
