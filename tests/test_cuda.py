"""CUDA cases (marked `cuda`, skipped where torch sees no GPU): every task trains a few steps in
bf16 and in fp16 with Fabric's grad scaler and its checkpoint loads on the CPU; inference on the
GPU matches the CPU; bf16 and fp16 colorization stay within 1.0 mean CIEDE2000 of fp32 on the
shared val photos; a projection lowers its loss on the GPU. Run: pytest -m cuda tests/test_cuda.py"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import prism
from conftest import sample_photos, tiny_colorize_config
from prism.train import checkpoint as ckpt
from prism.train.trainer import Trainer
from test_cyclegan import tiny_cyclegan_config
from test_oasis import scenes, scenes_config  # noqa: F401  (scenes is a fixture)
from test_stylegan import tiny_stylegan_config

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

TASK_CONFIGS = {
    "colorize": lambda photos, scenes_root, **t: tiny_colorize_config(photos, **t),
    "cyclegan": lambda photos, scenes_root, **t: tiny_cyclegan_config(photos / "a", photos / "b", **t),
    "stylegan": lambda photos, scenes_root, **t: tiny_stylegan_config(photos, **t),
    "oasis": lambda photos, scenes_root, **t: scenes_config(scenes_root, **t),
}


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("task", list(TASK_CONFIGS))
def test_every_task_trains_on_cuda_in_mixed_precision(task, precision, photo_folder, scenes, tmp_path):
    cfg = TASK_CONFIGS[task](photo_folder, scenes, accelerator="cuda", precision=precision)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    rows = [json.loads(line) for line in open(run / "log.jsonl")]
    losses = {k: v for k, v in rows[-1].items() if isinstance(v, float)}
    assert losses and all(math.isfinite(v) for v in losses.values()), rows[-1]
    state = ckpt.load_checkpoint(run / "checkpoints" / "latest.pt")  # weights_only, onto the CPU
    assert state["step"] == cfg["train"]["steps"]
    for net in state["nets"].values():
        for key, value in net.items():
            assert value.device.type == "cpu" and (not value.is_floating_point() or torch.isfinite(value).all()), key
    prism.load_model(str(run), device="cuda", precision="bf16")  # and serves from the GPU


@pytest.fixture(scope="module")
def gray_photos():
    from PIL import Image
    return [Image.fromarray(p).convert("L") for p in sample_photos()[:4]]


def _ciede(a, b) -> torch.Tensor:
    from prism.metrics import ciede2000
    to_t = lambda im: torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1)[None]
    return torch.cat([ciede2000(to_t(x), to_t(y)).flatten() for x, y in zip(a, b)])


def test_cuda_colorization_matches_cpu(gray_photos):
    cpu = prism.load_model().colorize_batch(gray_photos)
    gpu = prism.load_model(device="cuda").colorize_batch(gray_photos)
    assert _ciede(cpu, gpu).mean() < 0.05  # the same model, only float rounding differs
    fast = prism.load_model(device="cuda").speedups(channels_last=True).colorize_batch(gray_photos)
    assert _ciede(cpu, fast).mean() < 0.05


@pytest.mark.shared_data
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_colorization_costs_at_most_1_ciede2000(precision, shared_data):
    from prism.data.images import list_images, read_image
    files = list_images(shared_data / "colorization" / "intel-scenes" / "val")
    files = files[::max(1, len(files) // 20)]  # 20 photos, every class
    images = [read_image(f) for f in files]
    fp32 = prism.load_model(device="cuda").colorize_batch(images)
    low = prism.load_model(device="cuda", precision=precision).colorize_batch(images)
    diffs = _ciede(fp32, low)
    assert diffs.mean() <= 1.0, diffs.mean()
    assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(fp32, low))  # it really ran in half


@pytest.mark.shared_data
def test_projection_lowers_the_loss_on_cuda(shared_data):
    from prism.restore import FaceGenerator
    from prism.restore.degradations import build_degradation
    from prism.restore.perceptual import DiscriminatorDistance
    from prism.restore.projector import ProjectionSettings, project
    from test_restore import tiny_nets
    G, D = (n.cuda() for n in tiny_nets())
    gen = FaceGenerator(G, D, {"options": {}})
    clean, _ = gen.prepare(sorted((shared_data / "faces" / "celeba-hq-256").glob("*.jpg"))[0], align=False)
    op = build_degradation("gray", 16)
    result = project(G, op(clean.cuda()), op, DiscriminatorDistance(D).to("cuda"), ProjectionSettings(steps=40, w_avg_samples=500))
    assert np.mean(result.distances[-3:]) < 0.6 * np.mean(result.distances[:3]), result.distances[::5]
