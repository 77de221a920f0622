"""The full-resolution colour path of `prism colorize`, candidates side by side on one 12.6 Mpx
photo (issue 21): lightness in, chroma upsampling, Lab -> sRGB out. The network's chroma for the
photo is computed once and every candidate turns it into the same full-size uint8 RGB output.

Each candidate is timed (median of --repeats, after a warm-up) and its output scored against the
previous path's (v3 as shipped before issue 21, kept below only for this comparison) by mean
CIEDE2000 over a 1-in-16 pixel grid; the kept path must stay within 0.5. All figures come from
one run, so on a shared machine their ratios hold while the absolute times drift.

    .venv/bin/python benchmarks/color_path.py [--repeats 5] [--rgb]
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

import prism
from prism import color


# --- the previous path (torch lookup tables in row tiles), for the before/after comparison ---------
def _previous_luts() -> dict:
    import kornia.color as kc
    v = torch.arange(256, dtype=torch.float32).view(1, 1, 1, 256).expand(1, 3, 1, 256) / 255.0
    lin = torch.linspace(0, 1, 65536).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    eye = kc.rgb_to_xyz(torch.eye(3).view(3, 3, 1, 1)).view(3, 3).T
    return {"L8": kc.rgb_to_lab(v)[0, 0, 0] / 50.0 - 1.0, "lin8": kc.rgb_to_linear_rgb(v)[0, 0, 0],
            "srgb8": (kc.linear_rgb_to_rgb(lin)[0, 0, 0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8),
            "M": torch.linalg.inv(eye), "Y": eye[1]}


def _f_lab(t):
    d = 6.0 / 29.0
    return torch.where(t > d ** 3, t.clamp(min=d ** 3).pow(1.0 / 3.0), t / (3 * d * d) + 4.0 / 29.0)


def previous_path(pixels: np.ndarray, ab_small: torch.Tensor, lut: dict) -> np.ndarray:
    if pixels.ndim == 2:
        L = lut["L8"][torch.from_numpy(pixels).long()]
    else:
        L = (116.0 * _f_lab(lut["lin8"][torch.from_numpy(pixels).long()] @ lut["Y"]) - 16.0) / 50.0 - 1.0
    ab = F.interpolate(ab_small, size=L.shape, mode="bilinear", align_corners=False)[0]
    h, w = L.shape
    out, white, d = np.empty((h, w, 3), np.uint8), (0.95047, 1.0, 1.08883), 6.0 / 29.0
    for r in range(0, h, 256):
        fy = ((L[r:r + 256] + 1.0) * 50.0 + 16.0) / 116.0
        fs = (fy + ab[0, r:r + 256] * (color.AB_SCALE / 500.0), fy, fy - ab[1, r:r + 256] * (color.AB_SCALE / 200.0))
        X, Y, Z = (torch.where(t > d, t * t * t, (t - 4.0 / 29.0) * (3 * d * d)) * wp for t, wp in zip(fs, white))
        for c in range(3):
            lin = (X * lut["M"][c, 0]).add_(Y * lut["M"][c, 1]).add_(Z * lut["M"][c, 2]).clamp_(0.0, 1.0)
            out[r:r + 256, :, c] = lut["srgb8"][lin.mul_(65535).add_(0.5).long()].numpy()
    return out


# --- candidates --------------------------------------------------------------------------------------
def _ab_lab(ab_small: torch.Tensor) -> np.ndarray:
    """(1,2,h,w) normalised chroma -> (h,w,2) float32 in Lab units, for OpenCV."""
    return np.ascontiguousarray(ab_small[0].permute(1, 2, 0).numpy() * color.AB_SCALE)


def torch_fused(pixels, ab_small, lut):
    """Whole frame in float32 with torch ops (kornia's lab_to_rgb on the upsampled chroma)."""
    L = lut["L8"][torch.from_numpy(pixels).long()] if pixels.ndim == 2 else \
        color.rgb_to_lab_norm(torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255)[0][0, 0]
    ab = F.interpolate(ab_small, size=L.shape, mode="bilinear", align_corners=False)
    rgb = color.lab_norm_to_rgb(L[None, None], ab)[0]
    return rgb.mul_(255).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def cv2_float(pixels, ab_small, lut=None):
    """OpenCV float32 whole frame: resize, merge, cvtColor Lab -> RGB, round to uint8."""
    h, w = pixels.shape[:2]
    L = color.lightness_full(pixels).numpy() * 50.0 + 50.0
    ab = cv2.resize(_ab_lab(ab_small), (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.convertScaleAbs(cv2.cvtColor(cv2.merge([L, ab]), cv2.COLOR_Lab2RGB), alpha=255.0)


def cv2_uint8(pixels, ab_small, lut=None):
    """OpenCV 8-bit Lab (L*255/100, a+128, b+128) whole frame: fixed-point resize and conversion."""
    h, w = pixels.shape[:2]
    L8 = cv2.extractChannel(cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab), 0) if pixels.ndim == 3 else \
        cv2.convertScaleAbs(color.lightness_full(pixels).numpy(), alpha=127.5, beta=127.5)
    ab8 = cv2.resize(np.clip(_ab_lab(ab_small) + 128.0, 0, 255).round().astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(cv2.merge([L8, ab8]), cv2.COLOR_Lab2RGB)


def shipped(pixels, ab_small, lut=None, tile_rows=None):
    """What `prism colorize` runs (prism.color): OpenCV float32, merge + convert in row tiles."""
    kwargs = {"tile_rows": tile_rows} if tile_rows else {}
    return color.compose_full(color.lightness_full(pixels), ab_small[0], **kwargs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rgb", action="store_true", help="an RGB photo (re-colorized from its lightness), not gray")
    a = p.parse_args()
    from PIL import Image
    from skimage import data
    photo = Image.fromarray(data.astronaut()).resize((4096, 3072), Image.BICUBIC)
    pixels = np.asarray(photo if a.rgb else photo.convert("L")).copy()
    col = prism.load_model("colorizer")
    small = col.colorize_batch([pixels])  # warm-up; and the network's chroma for this photo:
    x, (h, w) = col._render_input(color.lightness_full(pixels))
    with torch.no_grad():
        ab_small = col.G(x[None]).float()[:, :, :h, :w] * col.chroma_gain
    lut = _previous_luts()
    candidates = {
        "previous: torch lookup tables, row tiles": previous_path,
        "torch fused float32 (kornia), whole frame": torch_fused,
        "OpenCV float32, whole frame": cv2_float,
        "OpenCV 8-bit Lab, whole frame": cv2_uint8,
        "OpenCV float32, 128-row tiles": lambda p, ab, l: shipped(p, ab, l, 128),
        "OpenCV float32, 32-row tiles (shipped)": shipped,
    }
    ref = previous_path(pixels, ab_small, lut)
    ref_t = torch.from_numpy(ref[::4, ::4]).permute(2, 0, 1)[None].float() / 255
    from prism.metrics import ciede2000
    rows = []
    for name, fn in candidates.items():
        fn(pixels, ab_small, lut)
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = fn(pixels, ab_small, lut)
            times.append(time.perf_counter() - t)
        de = float(ciede2000(torch.from_numpy(out[::4, ::4]).permute(2, 0, 1)[None].float() / 255, ref_t)[0])
        rows.append((name, float(np.median(times)), de))
    base = rows[0][1]
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), OpenCV {cv2.__version__} "
          f"({cv2.getNumThreads()} threads); 4096x3072 {'RGB' if a.rgb else 'gray'} photo, median of {a.repeats}\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'candidate':<{width}}  {'ms':>7}  {'x previous':>10}  {'CIEDE2000 vs previous':>21}")
    for name, s, de in rows:
        print(f"{name:<{width}}  {s * 1e3:7.1f}  {base / s:10.2f}  {de:21.3f}")
    best = min((r for r in rows[1:] if r[2] <= 0.5), key=lambda r: r[1])
    print(f"\nfastest within 0.5 CIEDE2000 of the previous output: {best[0]} ({base / best[1]:.1f}x faster)")
    print("(8-bit Lab quantises L to 100/255 and ab to whole units: the same picture given as uint8 or as\n"
          " float then differs by up to 7 levels, so prism ships the float path)")


if __name__ == "__main__":
    main()
