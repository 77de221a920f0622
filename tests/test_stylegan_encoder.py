"""The inversion encoder: its network, the degradations' encoder inputs, a projection that starts at
given latents, and the stylegan_encoder task end to end (frozen G and D, a model whose restore
starts from the encoder for the degradations it learned)."""
from __future__ import annotations

import json

import pytest
import torch

import prism
from prism.config import ConfigError
from prism.nets.inversion import StyleEncoder
from prism.restore.degradations import Mask, build_degradation, diffusion_fill
from prism.restore.perceptual import PixelDistance
from prism.restore.projector import ProjectionSettings, project
from prism.tasks import resolve_config
from prism.train import checkpoint as ckpt
from prism.train.trainer import Trainer
from test_restore import tiny_model_dir, tiny_nets


def test_untrained_encoder_answers_the_mean_w():
    E = StyleEncoder(resolution=16, num_ws=6, w_dim=8, channels=(4, 8, 8, 8, 8))
    w_avg = torch.arange(8.0)
    E.set_w_statistics(w_avg, 2.0)
    ws = E(torch.rand(3, 3, 16, 16), torch.zeros(3, 1, 16, 16))
    assert ws.shape == (3, 6, 8)
    assert torch.equal(ws, w_avg.expand(3, 6, 8))
    with pytest.raises(ValueError, match="multiple of 16"):
        StyleEncoder(resolution=24)


def test_encoder_inputs_and_per_image_holes():
    faces = torch.rand(2, 3, 16, 16)
    holes = torch.zeros(2, 1, 16, 16)
    holes[0, :, 2:6, 2:6] = 1
    holes[1, :, 8:14, 4:12] = 1
    op = Mask(holes)
    observed = op(faces)
    assert torch.equal(observed[0, :, 2:6, 2:6], torch.zeros(3, 4, 4)) and observed[1, :, 2:6, 2:6].abs().sum() > 0
    image, hole = op.encoder_input(observed, 16)
    assert torch.equal(hole, holes) and torch.equal(image, observed)
    # a batch of different holes fills each image as if it were alone
    together = diffusion_fill(observed, holes)
    for i in range(2):
        assert torch.allclose(together[i:i + 1], diffusion_fill(observed[i:i + 1], holes[i:i + 1]), atol=1e-6)
    gray = build_degradation("gray", 16)
    image, hole = gray.encoder_input(gray(faces), 16)
    assert hole.shape == (2, 1, 16, 16) and not hole.any() and torch.equal(image[:, 0], image[:, 1])
    small = build_degradation("downsample", 16, factor=4)
    image, hole = small.encoder_input(small(faces), 16)
    assert image.shape == (2, 3, 16, 16) and not hole.any()
    chain = build_degradation("gray+mask", 16, holes[:1])
    assert torch.equal(chain.encoder_input(chain(faces), 16)[1], holes[:1].expand(2, -1, -1, -1))


def test_projection_starts_at_the_given_latents():
    G, _ = tiny_nets()
    op = build_degradation("gray", 16)
    observed = op(torch.rand(2, 3, 16, 16))
    start = torch.randn(2, G.num_ws, G.w_dim)
    # step 0 has learning rate 0 (the ramp-up): after one step the latents are still the start
    p = project(G, observed, op, PixelDistance(), ProjectionSettings(steps=1, samples=2, w_avg_samples=64), init_ws=start)
    assert torch.equal(p.sample_ws[0], start) and torch.equal(p.sample_ws[1], start)
    longer = project(G, observed, op, PixelDistance(), ProjectionSettings(steps=6, w_avg_samples=64), init_ws=start)
    assert not torch.equal(longer.ws, start)
    single = project(G, observed, op, PixelDistance(), ProjectionSettings(steps=1, space="w", w_avg_samples=64), init_ws=start)
    assert torch.allclose(single.ws, start.mean(dim=1, keepdim=True).expand_as(start))


def _encoder_config(generator, faces, **train):
    return resolve_config(None, {
        "generator": str(generator), "data": {"train": str(faces)},
        "nets": {"E": {"channels": [4, 8, 8, 8, 8]}},
        "train": {"steps": 4, "batch_size": 2, "log_every": 2, "sample_every": 2, "val_every": 2, "ckpt_every": 2,
                  "val_batches": 1, **train}}, base={"task": "stylegan_encoder"})


def test_encoder_task_trains_e_only_and_its_model_starts_restorations_there(photo_folder, tmp_path):
    generator = tiny_model_dir(tmp_path)
    cfg = _encoder_config(generator, photo_folder)
    cfg["restore"] = {"encoder_steps": 2, "encoder_samples": 3, "encoder_spread": 0.5}  # over the generator's
    run = Trainer(cfg, runs_dir=tmp_path / "runs", progress=False).fit()
    state = ckpt.load_checkpoint(run / "checkpoints" / "latest.pt")
    G, D = tiny_nets()
    for name, net in (("G", G), ("D", D)):  # frozen: exactly the generator model's weights
        assert all(torch.equal(v, state["nets"][name][k]) for k, v in net.state_dict().items()), name
    assert state["nets"]["E"]["head.weight"].abs().sum() > 0  # E learned (its head starts at zero)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"mask_psnr", "mask_baseline_psnr"} <= set(metrics[-1])
    assert (run / "samples" / "step-0000004.png").exists()

    model = prism.load_model(str(run / "model"))
    assert model.task == "stylegan" and model.encoder is not None and model.encoder_degradations == {"mask"}
    assert model.card["options"]["align"] == {"zoom": 1.0, "shift_y": 0.0}  # the generator's crop
    face = torch.rand(1, 3, 16, 16)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 4:10, 4:12] = 1
    op = Mask(hole)
    expected = model.encoder(*op.encoder_input(op(face), 16))
    assert torch.allclose(model.initial_ws(op, op(face)), expected)
    assert model.initial_ws(build_degradation("gray", 16), face) is None  # not learned: the mean w
    photo = next(p for p in sorted(photo_folder.rglob("*")) if p.is_file())
    # from E's guess the projection runs the encoder_ settings; where E does not help, the generator's
    assert model.projection_defaults("mask") == {"steps": 2, "samples": 3, "spread": 0.5}
    assert model.projection_defaults("gray") == model.projection_defaults("gray+mask") == {"steps": 300, "samples": 1, "spread": 0.0}
    masked = model.restore(photo, "mask", rect=(0, 0, 8, 8), align=False)
    assert masked.start == "encoder" and len(masked.losses) == 2 and masked.sample_ws.shape[0] == 3
    assert model.restore(photo, "gray", steps=2, align=False).start == "mean w"
    assert json.loads(masked.save(tmp_path / "out")["json"].read_text())["start"] == "encoder"


def test_encoder_config_errors(photo_folder, tmp_path):
    with pytest.raises(ConfigError, match="generator is not set"):
        prism.tasks.task_class("stylegan_encoder")(resolve_config(None, {}, base={"task": "stylegan_encoder"}))
    with pytest.raises(ConfigError, match="cannot load it"):
        prism.tasks.task_class("stylegan_encoder")(_encoder_config(tmp_path / "missing", photo_folder))
    with pytest.raises(ConfigError, match="loss.degradations"):
        cfg = _encoder_config(tiny_model_dir(tmp_path), photo_folder)
        cfg["loss"]["degradations"] = "blur"
        prism.tasks.task_class("stylegan_encoder")(cfg)


def test_composite_target_trains_e_on_the_restoration(photo_folder, tmp_path):
    cfg = _encoder_config(tiny_model_dir(tmp_path), photo_folder, steps=2, sample_every=0, val_every=0)
    cfg["loss"]["target"] = "composite"
    run = Trainer(cfg, runs_dir=tmp_path / "runs", progress=False).fit()
    state = ckpt.load_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["nets"]["E"]["head.weight"].abs().sum() > 0  # gradients reach E through the blend
    # sample_every / val_every 0: only at the last step
    assert [p.name for p in (run / "samples").glob("step-*.png")] == ["step-0000002.png"]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2]
    with pytest.raises(ConfigError, match="loss.target"):
        cfg["loss"]["target"] = "pixels"
        prism.tasks.task_class("stylegan_encoder")(cfg)
