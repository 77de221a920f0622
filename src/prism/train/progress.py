"""A rich progress bar for training: step, losses, elapsed and ETA."""
from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, total: int, start: int = 0, enabled: bool = True):
        self.progress = None
        if enabled:
            self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                     TextColumn("{task.description}"))
            self.progress.start()
            self.task = self.progress.add_task("", total=total, completed=start)

    def update(self, step: int, losses: dict | None = None) -> None:
        if self.progress is None:
            return
        kwargs = {"completed": step}
        if losses:
            kwargs["description"] = " ".join(f"{k}={v:.3g}" for k, v in losses.items())
        self.progress.update(self.task, **kwargs)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
