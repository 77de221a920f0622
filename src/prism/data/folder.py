"""A folder tree of images as a dataset, shared by every task.

Why samples are keyed by (index, seed): the sampler hands each sample its own augmentation seed,
so crops and flips depend only on (run seed, epoch, index) — not on worker count, prefetching or
whether the run was resumed. That is what makes resume bit-exact.
"""
from __future__ import annotations

from pathlib import Path

import kornia.augmentation as K
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from prism.data.images import DEFAULT_MAX_PIXELS, DataError, ImageReadError, list_images, pil_to_float, open_image

MAX_SUBSTITUTES = 16  # how many following files to try when one is unreadable


class ImageFolder(Dataset):
    """Images under one or more folders -> {"image": (3,H,W) float in [0,1], "path", "skipped"}.

    size: side of the square training crop (None keeps the image as is; then batch size must be 1
    or images must share a size). load_size: the short side is resized to this before cropping
    (default: no resize when the image already covers `size`). crop: random | center.
    split: "left" / "right" keeps that half of side-by-side A|B pair images (pix2pix format).
    A root may be {"path": folder, "every": k}: every k-th of its sorted files, to thin out a
    large set in a mix of sets.
    """

    def __init__(self, roots, size: int | None = 256, load_size: int | None = None, crop: str = "random",
                 flip: bool = True, split: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        roots = [roots] if isinstance(roots, (str, Path, dict)) else list(roots)
        self.files = [f for root in roots for f in _root_files(root)]
        self.size, self.load_size, self.crop, self.flip, self.split = size, load_size, crop, flip, split
        self.max_pixels = max_pixels
        if crop not in ("random", "center"):
            raise ValueError(f"crop must be random or center, got {crop!r}")
        self.augment = K.AugmentationSequential(K.RandomHorizontalFlip(p=0.5)) if flip else None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, key)
        skipped = []
        for attempt in range(MAX_SUBSTITUTES):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                img = self._load(path)
                break
            except ImageReadError as e:
                skipped.append(f"{e.path}\t{e.reason}")
        else:
            raise ImageReadError(self.files[index], f"this file and the {MAX_SUBSTITUTES - 1} after it are all unreadable")
        image = self._transform(img, seed)
        return {"image": image, "path": str(path), "skipped": skipped}

    def _load(self, path: Path) -> Image.Image:
        img = open_image(path, self.max_pixels)
        if self.split:
            w, h = img.size
            img = img.crop((0, 0, w // 2, h) if self.split == "left" else (w // 2, 0, w, h))
        return img

    def _transform(self, img: Image.Image, seed: int) -> torch.Tensor:
        if self.size is not None:
            w, h = img.size
            target = self.load_size or (self.size if min(w, h) < self.size else None)
            if target and min(w, h) != target:  # short side -> target, antialiased
                s = target / min(w, h)
                img = img.resize((max(self.size, round(w * s)), max(self.size, round(h * s))), Image.BICUBIC)
        x = torch.from_numpy(pil_to_float(img).rgb).permute(2, 0, 1)
        if self.size is None:
            return x
        gen = np.random.default_rng(seed)
        h, w = x.shape[-2:]
        if self.crop == "random":
            top, left = int(gen.integers(0, h - self.size + 1)), int(gen.integers(0, w - self.size + 1))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        x = x[:, top:top + self.size, left:left + self.size]
        if self.augment is not None:
            with torch.random.fork_rng(devices=[]):  # kornia draws from the global RNG
                torch.manual_seed(int(gen.integers(0, 2**62)))
                x = self.augment(x[None])[0]
        return x.contiguous()


def _root_files(root) -> list[Path]:
    if not isinstance(root, dict):
        return list_images(root)
    unknown = set(root) - {"path", "every"}
    if "path" not in root or unknown:
        raise DataError(f"a data root given as a mapping takes 'path' and 'every', got {sorted(root)}")
    every = int(root.get("every", 1))
    if every < 1:
        raise DataError(f"{root['path']}: 'every' must be >= 1, got {every}")
    return list_images(root["path"])[::every]


def collate(samples: list[dict]) -> dict:
    """Stack tensors, keep lists of strings as flat lists ('skipped' lists are concatenated)."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], list):
            out[key] = [v for vs in values for v in vs]
        else:
            out[key] = values
    return out
