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


# Full-resolution fast path. kornia defines every curve; lookup tables built from kornia's own
# functions make a 12-Mpx photo cost a few gathers instead of millions of pow() calls.
_LUTS: dict = {}
_GAMMA_STEPS = 65535  # linear -> sRGB table resolution (< 0.1 level error in 8-bit output)


def _luts() -> dict:
    if not _LUTS:
        v = torch.arange(256, dtype=torch.float32) / 255.0
        gray = v.view(1, 1, 1, 256).expand(1, 3, 1, 256)
        _LUTS["L_of_gray8"] = (kc.rgb_to_lab(gray)[0, 0, 0] / 50.0 - 1.0)      # uint8 gray -> norm L
        _LUTS["linear8"] = kc.rgb_to_linear_rgb(gray)[0, 0, 0]  # uint8 -> linear
        lin = torch.linspace(0, 1, _GAMMA_STEPS + 1).view(1, 1, 1, -1).expand(1, 3, 1, -1)
        _LUTS["srgb8"] = (kc.linear_rgb_to_rgb(lin)[0, 0, 0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
        _LUTS["xyz_to_rgb"] = torch.linalg.inv(_rgb_to_xyz_matrix())
        _LUTS["Y_row"] = _rgb_to_xyz_matrix()[1]
    return _LUTS


def _rgb_to_xyz_matrix() -> torch.Tensor:
    eye = torch.eye(3).view(3, 3, 1, 1)  # columns: XYZ of pure linear R, G, B, as kornia computes
    return kc.rgb_to_xyz(eye).view(3, 3).T.contiguous()


def _f_lab(t: torch.Tensor) -> torch.Tensor:
    d = 6.0 / 29.0
    return torch.where(t > d ** 3, t.clamp(min=d ** 3).pow(1.0 / 3.0), t / (3 * d * d) + 4.0 / 29.0)


def lightness_full(pixels, tile_rows: int = 512) -> torch.Tensor:
    """Normalised Lab lightness (H,W) of an image at full resolution: uint8 HxW (table lookup),
    uint8 HxWx3 (linearisation table + luminance) or float HxW[x3] in [0,1] (kornia, in row tiles)."""
    import numpy as np
    arr = np.asarray(pixels)
    if not arr.flags.writeable:  # torch cannot wrap read-only memory (e.g. np.asarray(PIL image))
        arr = arr.copy()
    lut = _luts()
    if arr.dtype == np.uint8 and arr.ndim == 2:
        return lut["L_of_gray8"][torch.from_numpy(arr).long()]
    if arr.dtype == np.uint8:
        lin = lut["linear8"][torch.from_numpy(arr).long()]  # (H,W,3)
        Y = lin @ lut["Y_row"]
        return (116.0 * _f_lab(Y) - 16.0) / 50.0 - 1.0
    h = arr.shape[0]
    out = torch.empty(h, arr.shape[1])
    for r in range(0, h, tile_rows):
        t = torch.from_numpy(np.ascontiguousarray(arr[r:r + tile_rows], dtype=np.float32))
        t = t[None, None].expand(1, 3, *t.shape) if t.ndim == 2 else t.permute(2, 0, 1)[None]
        out[r:r + tile_rows] = rgb_to_lab_norm(t)[0][0, 0]
    return out


def compose_full(L: torch.Tensor, ab: torch.Tensor, tile_rows: int = 256):
    """Full-resolution L (H,W) + upsampled ab (2,H,W), normalised -> uint8 HxWx3 sRGB, in row tiles
    (the same CIE Lab -> XYZ -> linear RGB -> sRGB chain as kornia.color.lab_to_rgb)."""
    import numpy as np
    lut = _luts()
    h, w = L.shape
    out = np.empty((h, w, 3), dtype=np.uint8)
    white = torch.tensor([0.95047, 1.0, 1.08883])
    d = 6.0 / 29.0
    M = lut["xyz_to_rgb"]
    for r in range(0, h, tile_rows):
        fy = ((L[r:r + tile_rows] + 1.0) * 50.0 + 16.0) / 116.0
        fx = fy + ab[0, r:r + tile_rows] * (AB_SCALE / 500.0)
        fz = fy - ab[1, r:r + tile_rows] * (AB_SCALE / 200.0)
        X, Y, Z = (torch.where(t > d, t * t * t, (t - 4.0 / 29.0) * (3 * d * d)) * wp
                   for t, wp in ((fx, white[0]), (fy, white[1]), (fz, white[2])))
        for c in range(3):  # planar 3x3 product: far faster than an (N,3)@(3,3) matmul
            lin = (X * M[c, 0]).add_(Y * M[c, 1]).add_(Z * M[c, 2]).clamp_(0.0, 1.0)
            out[r:r + tile_rows, :, c] = lut["srgb8"][lin.mul_(_GAMMA_STEPS).add_(0.5).long()].numpy()
    return out
