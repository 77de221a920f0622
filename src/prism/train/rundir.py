"""Numbered run directories (00000-name, 00001-name, ...) holding the resolved config."""
from __future__ import annotations

import re
from pathlib import Path

RUN_RE = re.compile(r"^(\d{5})-")


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # another process may take the same number: retry
        used = [int(m.group(1)) for p in runs_dir.iterdir() if (m := RUN_RE.match(p.name))]
        path = runs_dir / f"{max(used, default=-1) + 1:05d}-{name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory in {runs_dir}")


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / "config.yaml").is_file()


class RunLocked(RuntimeError):
    """Another live process is training in this run directory."""


def lock_run_dir(run_dir: str | Path):
    """Hold RUN/.lock (an OS file lock, released when the process ends, however it ends) for as
    long as the returned file stays open; a run directory another live run holds raises RunLocked."""
    import fcntl
    import os
    path = Path(run_dir) / ".lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RunLocked(f"{run_dir} is being trained by another live run (pid {holder}): wait for it to end or "
                        f"stop it, then resume; or start a new run") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def hardware() -> str:
    """What a run trained on, for its model card."""
    import platform

    import torch
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
