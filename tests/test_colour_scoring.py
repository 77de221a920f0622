"""The colorization scoring protocol: truths with no colour are left out and counted, PSNR comes as
the mean of per-image values and from the pooled MSE, and the neutral cast measures colour added
where the truth is neutral."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from prism import metrics
from prism.evaluation import evaluate_colorizer
from tests.conftest import sample_photos


class TintColorizer:
    """Stands in for a model: returns the gray input with a fixed blue tint (b* shift)."""
    render_size, card, source = 64, {"name": "tint"}, "tint"

    def __init__(self, tint: float = 0.0):
        self.tint = tint

    def colorize_batch(self, grays, saturation=1.0, batch_size=8):
        from kornia.color import lab_to_rgb, rgb_to_lab
        outs = []
        for g in grays:
            lab = rgb_to_lab(torch.from_numpy(np.asarray(g, dtype=np.float32)).permute(2, 0, 1)[None])
            lab[:, 2] -= self.tint
            rgb = lab_to_rgb(lab).clamp(0, 1)[0].permute(1, 2, 0).numpy()
            outs.append(Image.fromarray((rgb * 255 + 0.5).astype("uint8")))
        return outs


@pytest.fixture()
def mixed_folder(tmp_path):
    """Three colour photos, one gray photo stored as RGB and one nearly gray (1-level noise)."""
    photos = sample_photos()
    for i, img in enumerate(photos[1:4]):
        Image.fromarray(img[:64, :64]).save(tmp_path / f"colour{i}.png")
    gray = np.asarray(Image.fromarray(photos[0][:64, :64]).convert("L"))
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "gray.png")
    noisy = np.stack([gray] * 3, -1).astype(int) + np.random.default_rng(0).integers(0, 2, (64, 64, 3))
    Image.fromarray(noisy.clip(0, 255).astype("uint8")).save(tmp_path / "nearly_gray.png")
    return tmp_path


def test_gray_truths_are_left_out_and_counted(mixed_folder):
    res = evaluate_colorizer(TintColorizer(), mixed_folder, progress=False)
    assert res["count"] == 3
    assert res["left_out"]["count"] == 2
    left = " ".join(res["left_out"]["files"])
    assert "gray.png" in left and "nearly_gray.png" in left and "colour0" not in left
    assert "left out" in res["notes"][0]
    gray = res["rows"]["gray baseline"]
    # only colour photos are scored: the gray image is far from perfect on them
    assert gray["psnr"] < 45 and gray["psnr_pooled"] < 45 and gray["ciede2000"] > 1
    # a model that outputs the gray image scores the gray baseline (up to 8-bit rounding)
    assert res["rows"]["model"]["psnr"] == pytest.approx(gray["psnr"], abs=0.3)


def test_pooled_psnr_is_not_ruled_by_one_perfect_image():
    truth = torch.rand(3, 16, 16)
    score = metrics.ColorizationScore()
    score.add(truth + 0.1 * torch.sign(torch.randn(3, 16, 16)), truth)  # MSE ~0.01 (some clipping)
    score.add(truth.clone(), truth)                                   # a perfect image: infinite PSNR
    s = score.summary()
    assert s["psnr"] == float("inf")          # the mean of per-image values is ruled by it
    assert 20 < s["psnr_pooled"] < 30          # the pooled MSE is not: about 10*log10(1/0.005)


def test_neutral_cast_measures_colour_added_on_neutral_truth(mixed_folder):
    gray_truth = torch.full((3, 32, 32), 0.5)
    for tint, expect in ((0.0, 0.0), (10.0, 10.0)):
        score = metrics.ColorizationScore()
        from kornia.color import lab_to_rgb, rgb_to_lab
        lab = rgb_to_lab(gray_truth[None])
        lab[:, 2] -= tint
        score.add(lab_to_rgb(lab)[0], gray_truth)
        assert score.summary()["neutral_cast"] == pytest.approx(expect, abs=0.5)
    res = evaluate_colorizer(TintColorizer(tint=12.0), mixed_folder, progress=False)
    assert res["rows"]["model"]["neutral_cast"] > 8 > res["rows"]["gray baseline"]["neutral_cast"]
    res = evaluate_colorizer(TintColorizer(tint=40.0), mixed_folder, progress=False)
    assert res["rows"]["model"]["beats_gray"] == 0.0  # a strong cast is worse than gray everywhere


def test_colourless_reason():
    colour = torch.from_numpy(sample_photos()[1][:64, :64]).permute(2, 0, 1).float() / 255
    gray = colour.mean(0, keepdim=True).expand(3, -1, -1)
    assert metrics.colourless_reason(colour, gray) is None
    assert "colourfulness" in metrics.colourless_reason(gray, gray)


def test_training_validation_uses_the_protocol(tmp_path):
    from prism.tasks.colorize import ColorizeTask
    from tests.conftest import tiny_colorize_config
    Image.fromarray(sample_photos()[1][:64, :64]).save(tmp_path / "c.png")
    task = ColorizeTask(tiny_colorize_config(tmp_path))
    task.nets = {name: net.eval() for name, net in task.build_networks().items()}
    colour = torch.from_numpy(sample_photos()[1][:32, :32]).permute(2, 0, 1).float() / 255
    gray = colour.mean(0, keepdim=True).expand(3, -1, -1)
    out = task.validate([{"image": torch.stack([colour, gray, gray])}])
    assert out["left_out"] == 2 and np.isfinite(out["psnr"])
