"""Shared fixtures. Photos come from scikit-image's bundled samples (available anywhere);
tests marked `shared_data` use ../shared/data (override with PRISM_DATA) and are skipped with a
reason when it is absent — except in CI, where .ci/run makes that a failure."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PRISM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests use tiny networks: one thread is faster for them and stays fast on a busy machine."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sample_photos() -> list[np.ndarray]:
    from skimage import data
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """24 small color JPEG/PNG crops (48..80 px) cut from scikit-image's sample photos."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(24):
        img = sample_photos()[i % 5]
        s = int(rng.integers(48, 81))
        y, x = int(rng.integers(0, img.shape[0] - s)), int(rng.integers(0, img.shape[1] - s))
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(img[y:y + s, x:x + s]).save(sub / f"{i:02d}.{'jpg' if i % 3 else 'png'}")
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        reason = f"shared data not found at {SHARED} (set PRISM_DATA to its path)"
        if os.environ.get("PRISM_REQUIRE_SHARED_DATA") or os.environ.get("CI"):
            pytest.fail(reason + "; CI requires it")
        pytest.skip(reason)
    return SHARED


def tiny_colorize_config(train: Path, **train_overrides) -> dict:
    from prism.tasks import resolve_config
    overrides = {
        "data": {"train": str(train), "val": str(train), "size": 32},
        "nets": {"G": {"depth": 4, "width": 8}, "D": {"width": 8, "n_layers": 2}},
        "loss": {"pretrain_steps": 2},
        "train": {"steps": 6, "batch_size": 4, "log_every": 2, "sample_every": 3, "val_every": 3,
                  "ckpt_every": 3, "val_batches": 1, "ema": 0.9, **train_overrides},
    }
    return resolve_config(None, overrides, base={"task": "colorize"})
