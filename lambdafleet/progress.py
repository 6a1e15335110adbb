"""Progress of long CLI work: a spinner with the latest step and the time
elapsed on a terminal, plain lines otherwise (logs, CI, a pipe)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

Report = Callable[[str], None]


@contextlib.contextmanager
def steps(title: str, stream: TextIO, terminal: bool | None = None) -> Iterator[Report]:
    """A report function for one long task titled `title`. On a terminal
    (`terminal` None: whether `stream` is one) each step replaces the last
    under a spinner and the task ends with one line saying it is done; else
    every step is its own line, as before."""
    console = Console(file=stream, force_terminal=terminal, highlight=False)
    if not console.is_terminal:

        def plain(message: str) -> None:
            print(message, file=stream, flush=True)

        yield plain
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[title]}[/bold]"),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", title=title)

        def update(message: str) -> None:
            progress.update(task, description=message.strip()[-120:])

        yield update
    console.print(f"[green]✓[/green] {title}", highlight=False)
