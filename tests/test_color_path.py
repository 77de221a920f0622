"""The full-resolution colour path (OpenCV, issue 21) against the float kornia chain it replaced:
the same network chroma, upsampled and put on the photo's lightness, must land within 0.5 mean
CIEDE2000 of the float path's output."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import prism
from prism import color
from prism.metrics import ciede2000

from conftest import sample_photos


def _t(rgb_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(rgb_uint8, np.float32) / 255).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def colorizer():
    return prism.load_model("colorizer")


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_output_within_half_ciede2000_of_the_float_kornia_path(colorizer, mode):
    photo = Image.fromarray(sample_photos()[0]).resize((1024, 768), Image.BICUBIC).convert(mode)
    out = np.asarray(colorizer.colorize(photo))
    # the previous path: kornia's float Lab of the input, F.interpolate'd chroma, kornia's lab_to_rgb
    pixels = np.asarray(photo.convert("RGB"))
    L = color.rgb_to_lab_norm(_t(pixels))[0]
    x, (h, w) = colorizer._render_input(L[0, 0])
    with torch.no_grad():
        ab = colorizer.G(x[None]).float()[:, :, :h, :w] * colorizer.chroma_gain
    ab = F.interpolate(ab, size=L.shape[2:], mode="bilinear", align_corners=False)
    ref = color.lab_norm_to_rgb(L, ab)
    assert float(ciede2000(_t(out), ref)[0]) < 0.5


def test_tiles_change_nothing_and_lightness_is_kornias():
    rgb = np.random.default_rng(0).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    L = color.lightness_full(rgb, tile_rows=8)
    assert torch.allclose(L, color.rgb_to_lab_norm(_t(rgb))[0][0, 0], atol=4e-3)  # OpenCV's curve: within 0.2 of 0..100
    assert torch.equal(L, color.lightness_full(rgb))
    ab = torch.rand(2, 5, 4) - 0.5
    np.testing.assert_array_equal(color.compose_full(L, ab, tile_rows=8), color.compose_full(L, ab))
    gray = rgb[..., 0].copy()
    assert torch.equal(color.lightness_full(gray), color.lightness_full(np.repeat(gray[..., None], 3, 2)))
