"""Two unaligned image folders (domains A and B) as one dataset, for unpaired translation.

Built from two ImageFolders (loading, resize, crop, flip and bad-file skipping stay theirs). The
sampler indexes domain A; each sample's B partner is drawn from the sample's own seed, so a
resumed run pairs exactly the same images as an uninterrupted one, and pairs differ every epoch.
How long an epoch is (`epoch_length`, read by the trainer's sampler) balances the two domains:
  oversample  (default) max(|A|, |B|): every image of the larger domain is seen once per epoch on
              average, the smaller domain's images repeat (as in the CycleGAN reference);
  undersample min(|A|, |B|): short epochs, the larger domain contributes a random subset;
  an int      a fixed number of samples per epoch.
"""
from __future__ import annotations

from pathlib import Path

import kornia.augmentation as K
import numpy as np
import torch
from torch.utils.data import Dataset

from prism.data.folder import ImageFolder
from prism.data.images import DEFAULT_MAX_PIXELS

def epoch_length(mode, size_a: int, size_b: int) -> int:
    if mode == "oversample":
        return max(size_a, size_b)
    if mode == "undersample":
        return min(size_a, size_b)
    if isinstance(mode, int) and not isinstance(mode, bool) and mode > 0:
        return mode
    raise ValueError(f"data.epoch must be oversample, undersample or a positive number of samples, got {mode!r}")


def spread_holdout(files: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """(train, held out): `count` files spread evenly over the sorted list, so a folder sorted by
    subject does not lose one subject to validation."""
    if count <= 0:
        return files, []
    if count >= len(files):
        raise ValueError(f"cannot hold out {count} of {len(files)} images: nothing would be left to train on")
    picked = {round(i * (len(files) - 1) / max(count - 1, 1)) for i in range(count)}
    return [f for i, f in enumerate(files) if i not in picked], [f for i, f in enumerate(files) if i in picked]


class UnpairedFolders(Dataset):
    """(index, seed) -> {"A": (3,H,W), "B": (3,H,W) in [0, 1], "path_A", "path_B", "skipped"}.

    a, b: folders, files or lists of them (see list_images). size / load_size / crop / flip as in
    ImageFolder (resize the short side to load_size, then crop size); rotate: maximum angle in
    degrees of a random rotation (reflection-padded, so no black corners), 0 = off.
    """

    def __init__(self, a, b, size: int | None = 256, load_size: int | None = None, crop: str = "random",
                 flip: bool = True, rotate: float = 0.0, epoch="oversample", max_pixels: int = DEFAULT_MAX_PIXELS):
        kwargs = dict(size=size, load_size=load_size, crop=crop, flip=flip, max_pixels=max_pixels)
        self.folder_a = ImageFolder(a, **kwargs)
        self.folder_b = ImageFolder(b, **kwargs)
        self.epoch_length = epoch_length(epoch, len(self.folder_a), len(self.folder_b))
        self.rotate = K.RandomAffine(degrees=rotate, padding_mode="reflection", p=1.0) if rotate else None

    def __len__(self) -> int:
        return len(self.folder_a)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, key)
        # Independent draws for B's choice and each image's crop/flip and rotation, all from the seed.
        pick, seed_a, seed_b, rot_a, rot_b = (int(s) for s in np.random.default_rng(seed).integers(0, 2**62, size=5))
        a = self.folder_a[(index, seed_a)]
        b = self.folder_b[(pick % len(self.folder_b), seed_b)]
        return {"A": self._rotate(a["image"], rot_a), "B": self._rotate(b["image"], rot_b),
                "path_A": a["path"], "path_B": b["path"], "skipped": a["skipped"] + b["skipped"]}

    def _rotate(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        if self.rotate is None:
            return x
        with torch.random.fork_rng(devices=[]):  # kornia draws from the global RNG
            torch.manual_seed(seed)
            return self.rotate(x[None])[0].contiguous()

