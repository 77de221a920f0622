"""Training checkpoints: written atomically, read without unpickling code.

A checkpoint is a nested dict of tensors, numbers, strings, lists and dicts only, so
`torch.load(weights_only=True)` can read it. The write goes to a temporary file in the same
folder, is flushed to disk and then renamed over the old one: a kill mid-save leaves the last
good checkpoint untouched.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"


def atomic_torch_save(obj, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """The temporary files of writes that a kill cut short (each as big as a checkpoint). Call only
    while holding the run directory's lock: then no live writer owns any of them."""
    stale = sorted((Path(run_dir) / CHECKPOINT_DIR).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, foreign pickle with code, ...
        raise ValueError(f"{path}: not a readable PRISM checkpoint ({type(e).__name__}: {e})") from None


def capture_rng() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def find_checkpoint(run_dir: str | Path, prefer: tuple[str, ...] = ("latest",)) -> Path | None:
    for name in prefer:
        path = Path(run_dir) / CHECKPOINT_DIR / f"{name}.pt"
        if path.is_file():
            return path
    return None
