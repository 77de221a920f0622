"""CIE Lab helpers on top of kornia, with the normalisation the networks use:
L in [0, 100] -> [-1, 1], ab in about [-110, 110] -> [-1, 1]."""
from __future__ import annotations

import functools

import cv2
import kornia.color as kc
import numpy as np
import torch

AB_SCALE = 110.0


def rgb_to_lab_norm(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,3,H,W) sRGB in [0,1] -> normalised L (B,1,H,W) and ab (B,2,H,W)."""
    lab = kc.rgb_to_lab(rgb.clamp(0, 1))
    return lab[:, :1] / 50.0 - 1.0, lab[:, 1:] / AB_SCALE


def lab_norm_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_lab_norm; output clipped to [0, 1]."""
    lab = torch.cat([(L + 1.0) * 50.0, ab * AB_SCALE], dim=1)
    return kc.lab_to_rgb(lab, clip=True)


def gray_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """The colourless image with the same lightness (Lab with a = b = 0), as 3-channel RGB."""
    L, ab = rgb_to_lab_norm(rgb)
    return lab_norm_to_rgb(L, torch.zeros_like(ab))


# Full-resolution path: a 12.6 Mpx photo must cost about what streaming its bytes a few times costs,
# so it runs on OpenCV's SIMD, multi-threaded resize and colour conversions, in row tiles that stay
# in cache. OpenCV's float CIE Lab is kornia's (D65 white, the sRGB curve; L within 0.2, outputs
# within 0.01 mean CIEDE2000). benchmarks/color_path.py measures it against the alternatives
# (issue 21); OpenCV's 8-bit Lab is faster still but quantises L and ab, so the same picture given as
# uint8 or as float came out up to 7 levels apart.
_TILE_ROWS = 32  # 32 beat 128 and whole frames in benchmarks/color_path.py


@functools.cache
def _l_of_gray8() -> np.ndarray:
    """uint8 gray level -> normalised L, by the same OpenCV conversion as colour and float input,
    so that a picture gives the same colours whichever way it is stored."""
    ramp = np.repeat(np.arange(256, dtype=np.float32)[None, :, None] / 255.0, 3, axis=2)
    return cv2.cvtColor(ramp, cv2.COLOR_RGB2Lab)[0, :, 0] / 50.0 - 1.0


def _tiles(h: int, work, tile_rows: int = _TILE_ROWS) -> None:
    """work(row0, row1) over row tiles; each OpenCV call inside spreads over the cores itself."""
    for r in range(0, h, tile_rows):
        work(r, min(h, r + tile_rows))


def lightness_full(pixels, tile_rows: int = _TILE_ROWS) -> torch.Tensor:
    """Normalised Lab lightness (H,W) of an image at full resolution: uint8, or float in [0,1]
    (16-bit sources), HxW or HxWx3."""
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8 and arr.ndim == 2:
        return torch.from_numpy(cv2.LUT(arr, _l_of_gray8()))
    out = np.empty(arr.shape[:2], np.float32)

    def work(r0, r1):
        t = arr[r0:r1].astype(np.float32)
        if arr.dtype == np.uint8:
            t *= 1 / 255.0
        if t.ndim == 2:
            t = cv2.cvtColor(t, cv2.COLOR_GRAY2RGB)
        np.multiply(cv2.extractChannel(cv2.cvtColor(t, cv2.COLOR_RGB2Lab), 0), 1 / 50.0, out=out[r0:r1])
        out[r0:r1] -= 1.0
    _tiles(arr.shape[0], work, tile_rows)
    return torch.from_numpy(out)


def compose_full(L: torch.Tensor, ab: torch.Tensor, tile_rows: int = _TILE_ROWS) -> np.ndarray:
    """Full-resolution L (H,W) + chroma ab (2,h,w) at any smaller size, normalised -> uint8 HxWx3
    sRGB. The chroma is upsampled bilinearly with half-pixel centres and edges replicated, as
    F.interpolate(align_corners=False)."""
    h, w = L.shape
    ab_np = np.ascontiguousarray(ab.permute(1, 2, 0).numpy() * AB_SCALE, dtype=np.float32)
    ab_full = cv2.resize(ab_np, (w, h), interpolation=cv2.INTER_LINEAR)
    L_np = L.numpy()
    out = np.empty((h, w, 3), np.uint8)

    def work(r0, r1):  # the merged tile is still in cache when it is converted
        rgb = cv2.cvtColor(cv2.merge([L_np[r0:r1] * 50.0 + 50.0, ab_full[r0:r1]]), cv2.COLOR_Lab2RGB)
        cv2.convertScaleAbs(rgb, dst=out[r0:r1], alpha=255.0)  # rgb is clipped to [0, 1]; rounds
    _tiles(h, work, tile_rows)
    return out
