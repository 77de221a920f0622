"""The bundled colorizer: present, self-describing, small, and colorizes real photos at full size
(scikit-image's sample photos and the repo's samples/ — what README command 1 runs)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import prism
from prism import color
from prism.cli import app
from prism.modelio import BUNDLED_DIR, DEFAULT_MODEL

from conftest import REPO, sample_photos


@pytest.fixture(scope="module")
def colorizer():
    return prism.load_model()


def test_bundled_model_card_and_size():
    model_dir = BUNDLED_DIR / DEFAULT_MODEL
    assert sorted(p.name for p in model_dir.iterdir()) == ["README.md", "card.json", "model.safetensors"]
    assert (model_dir / "model.safetensors").stat().st_size < 50e6
    card = json.loads((model_dir / "card.json").read_text())
    assert card["task"] == "colorize" and card["nets"]["G"]["arch"] in ("unet", "resnet_unet", "effnet_unet")
    t = card["training"]
    assert t["steps"] > 0 and t["wall_time_s"] > 0 and t["hardware"] and t["config"]["data"]["train"]
    assert "research" in card["license"]
    rows = card["evaluation"]["rows"]
    assert {"model", "gray baseline"} <= set(rows)
    assert card["evaluation"]["count"] + card["evaluation"]["left_out"]["count"] == 420  # colourless truths left out


def _chroma(img: Image.Image) -> float:
    rgb = torch.from_numpy(np.asarray(img.convert("RGB"), np.float32) / 255).permute(2, 0, 1)[None]
    return float(color.rgb_to_lab_norm(rgb)[1].abs().mean() * color.AB_SCALE)


def test_colorizes_sample_photos_at_full_size(colorizer):
    for photo in sample_photos()[:3]:
        gray = Image.fromarray(photo).convert("L")
        out = colorizer.colorize(gray)
        assert out.size == gray.size and out.mode == "RGB"
        assert _chroma(out) > 1.0  # it adds colour: a gray image has chroma ~0
        L_in = color.lightness_full(np.asarray(gray))
        L_out = color.lightness_full(np.asarray(out))
        assert (L_in - L_out).abs().mean() * 50 < 1.5  # lightness (all the detail) is the input's


def test_readme_main_job(tmp_path):
    result = CliRunner().invoke(app, ["colorize", str(REPO / "samples"), "-o", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in (REPO / "samples").glob("*.jpg"))
    for name in written:
        assert Image.open(tmp_path / name).size == Image.open(REPO / "samples" / name).size


@pytest.mark.shared_data
def test_bf16_inference_costs_at_most_1_ciede2000(shared_data, colorizer):
    """bf16 autocast vs fp32 on the shared val photos: mean CIEDE2000 between the two outputs."""
    from prism.data.images import list_images, read_image
    from prism.metrics import ciede2000
    files = list_images(shared_data / "colorization" / "intel-scenes" / "val")[::21]  # 20 photos, every class
    images = [read_image(f) for f in files]
    fp32 = colorizer.colorize_batch(images)
    bf16 = prism.load_model(precision="bf16")
    low = bf16.colorize_batch(images)
    to_t = lambda im: torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1)[None]
    diffs = torch.cat([ciede2000(to_t(a), to_t(b)) for a, b in zip(fp32, low)])
    assert diffs.mean() <= 1.0, diffs.mean()
    assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(fp32, low))  # bf16 really ran
