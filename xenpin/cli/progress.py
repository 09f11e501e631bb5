"""Progress on a terminal for the long commands (`boot`, `prove`, `logs`), with `rich.progress`, on stderr.

Shown only when stderr is a terminal and neither `--json` nor `--quiet` is given; transient: the bars are erased
when the command ends, so what stays on the screen (and everything on stdout) is the same with or without them.
`boot` shows one bar per variant, naming the `init_memory_mapping` call being walked and the share of the pages
it maps; `prove` shows n/N obligations as verdicts come in; `logs` n/N logs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)


def wanted(args: argparse.Namespace) -> bool:
    """Progress is shown: stderr is a terminal, and neither `--json` nor `--quiet` was given."""
    if getattr(args, "json", False) or getattr(args, "quiet", False):
        return False
    return sys.stderr.isatty()


class Bars:
    """The progress bars of one command, or nothing at all when not `enabled` (every method then does nothing).

    `counts`: bars show `n/N` (obligations, logs); otherwise a percentage (a boot's pages)."""

    def __init__(self, enabled: bool, *, counts: bool) -> None:
        self._progress: Progress | None = None
        self._boot_task: TaskID | None = None
        if enabled:
            amount = MofNCompleteColumn() if counts else TaskProgressColumn()
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                amount,
                TimeElapsedColumn(),
                # `wanted` already checked stderr is a terminal (a test may say so for a pipe)
                console=Console(stderr=True, force_terminal=True),
                transient=True,
            )

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, description: str, total: int) -> TaskID | None:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total)

    def update(self, task: TaskID | None, *, description: str | None = None, done: int | None = None,
               total: int | None = None, advance: int = 0) -> None:  # fmt: skip
        if self._progress is None or task is None:
            return
        self._progress.update(task, description=description, completed=done, total=total, advance=advance)

    def boot_callback(self, variant: str) -> Callable[[str, int, int], None] | None:
        """A new bar for booting `variant`, and the `on_progress` for `boot` that moves it (None: no bars)."""
        if self._progress is None:
            return None
        task = self.add(f"{variant}: start of day", 1)
        self._boot_task = task

        def on_progress(what: str, done: int, total: int) -> None:
            self.update(task, description=f"{variant}: {what}", done=done, total=max(total, 1))

        return on_progress

    def boot_done(self, variant: str, outcome: str) -> None:
        """The last boot's bar says how it ended (complete, or where it stopped)."""
        if self._progress is not None and self._boot_task is not None:
            self.update(self._boot_task, description=f"{variant}: {outcome}")
