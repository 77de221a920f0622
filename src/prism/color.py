"""CIE Lab helpers on top of kornia, with the normalisation the networks use:
L in [0, 100] -> [-1, 1], ab in about [-110, 110] -> [-1, 1]."""
from __future__ import annotations

import kornia.color as kc
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


def lightness_full(rgb, tile_rows: int = 512) -> torch.Tensor:
    """Normalised L (H,W) of a float HxWx3 numpy image, converted in row tiles so a 12-Mpx
    photo never holds more than one tile of kornia's intermediates."""
    h = rgb.shape[0]
    out = torch.empty(h, rgb.shape[1])
    for r in range(0, h, tile_rows):
        t = torch.from_numpy(rgb[r:r + tile_rows]).permute(2, 0, 1)[None]
        out[r:r + tile_rows] = rgb_to_lab_norm(t)[0][0, 0]
    return out


def compose_full(L: torch.Tensor, ab: torch.Tensor, tile_rows: int = 512):
    """Full-resolution L (H,W) + upsampled ab (2,H,W) -> uint8 HxWx3 numpy, in row tiles."""
    import numpy as np
    h, w = L.shape
    out = np.empty((h, w, 3), dtype=np.uint8)
    for r in range(0, h, tile_rows):
        rgb = lab_norm_to_rgb(L[None, None, r:r + tile_rows], ab[None, :, r:r + tile_rows])[0]
        out[r:r + tile_rows] = (rgb.permute(1, 2, 0) * 255.0 + 0.5).to(torch.uint8).numpy()
    return out
