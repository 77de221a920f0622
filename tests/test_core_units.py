"""Unit tests: colour round trip, networks at several sizes, losses, config."""
from __future__ import annotations

import pytest
import torch

from prism import color, config as C
from prism.losses import AdversarialLoss, feature_matching_loss, reconstruction_loss
from prism.nets.patchgan import PatchGAN
from prism.nets.unet import UNet
from prism.registry import build_network


def test_lab_round_trip_and_ranges():
    torch.manual_seed(0)
    rgb = torch.rand(4, 3, 17, 23)
    L, ab = color.rgb_to_lab_norm(rgb)
    assert L.shape == (4, 1, 17, 23) and ab.shape == (4, 2, 17, 23)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    assert torch.allclose(color.lab_norm_to_rgb(L, ab), rgb, atol=1e-4)
    gray = color.gray_rgb(rgb)
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=2e-3) and torch.allclose(gray[:, 1], gray[:, 2], atol=2e-3)
    assert torch.allclose(color.rgb_to_lab_norm(gray)[0], L, atol=1e-3)  # same lightness


def test_full_resolution_helpers_match_kornia():
    import numpy as np
    rgb = np.random.default_rng(0).random((37, 29, 3), dtype=np.float32)
    L = color.lightness_full(rgb, tile_rows=8)
    whole_L, whole_ab = color.rgb_to_lab_norm(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    assert torch.allclose(L, whole_L[0, 0], atol=4e-3)  # OpenCV's curve: within 0.2 of L's 0..100
    out = color.compose_full(L, whole_ab[0], tile_rows=8)  # OpenCV's L with kornia's ab: 2.5 levels at most
    assert np.abs(out.astype(np.float32) / 255 - rgb).max() < 3 / 255


@pytest.mark.parametrize("depth,size", [(3, 8), (5, 32), (6, 64), (6, 128)])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_unet_sizes_and_norms(depth, size, norm):
    net = UNet(depth=depth, width=8, norm=norm)
    y = net(torch.randn(2, 1, size, size))
    assert y.shape == (2, 2, size, size) and y.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unet_non_square_and_bad_sizes():
    net = UNet(depth=4, width=8)
    assert net(torch.randn(1, 1, 32, 48)).shape == (1, 2, 32, 48)
    with pytest.raises(ValueError, match="divisible by 16, got 30x48"):
        net(torch.randn(1, 1, 30, 48))
    with pytest.raises(ValueError, match="depth must be at least 2"):
        UNet(depth=1)


def test_unet_paper_layout():
    net = UNet(depth=8, width=64)  # pix2pix 256 px: 54.4M parameters, 3 dropout layers
    assert net.size_multiple == 256
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3
    assert abs(sum(p.numel() for p in net.parameters()) / 1e6 - 54.41) < 0.01


@pytest.mark.parametrize("antialias", [False, True])
def test_unet_bilinear_decoder_down_to_a_1x1_bottleneck(antialias):
    net = UNet(3, 3, depth=5, width=8, norm="instance", upsample="bilinear", antialias=antialias)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    y = net(torch.randn(2, 3, 32, 32))  # 1x1 at the bottleneck: the blur must not fail there
    assert y.shape == (2, 3, 32, 32)
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="upsample must be"):
        UNet(upsample="nearest")


def test_unet_antialias_stops_a_grid_planted_before_the_last_decoder_stage():
    """A Nyquist checkerboard added where the last decoder stage starts (its ReLU, at half size)
    is period 4 in the output: the plain decoder passes it on, the antialiased one removes it."""
    from prism.artifacts import luminance_spectrum
    from prism.nets.common import BlurredReLU
    x = torch.rand(1, 3, 128, 128) * 0.2 + 0.4
    power = {}
    for antialias in (False, True):
        torch.manual_seed(1)
        net = UNet(3, 3, depth=5, width=8, norm="instance", dropout=0.0, upsample="bilinear", antialias=antialias)
        relu = net.up[-1][0]
        assert isinstance(relu, BlurredReLU) == antialias

        def plant(module, inputs):
            h, w = inputs[0].shape[-2:]
            return (inputs[0] + 2.0 * ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 * 2.0 - 1),)
        relu.register_forward_pre_hook(plant)
        with torch.no_grad():
            spectrum = luminance_spectrum((net(x)[0] + 1) / 2)
        power[antialias] = float(spectrum[64 + 32, 64 + 32] / spectrum.mean())
    assert power[False] > 30 and power[True] < power[False] / 1000, power


@pytest.mark.parametrize("n_layers,rf,out", [(1, 16, 15), (2, 34, 7), (3, 70, 6)])
def test_patchgan_receptive_field_and_output(n_layers, rf, out):
    assert PatchGAN.receptive_field(n_layers) == rf
    d = PatchGAN(in_channels=3, width=8, n_layers=n_layers)
    size = 64 if n_layers < 3 else 128
    y = d(torch.randn(2, 3, size, size))
    assert y.shape[:2] == (2, 1)
    if n_layers == 3:
        assert y.shape[-1] == 14  # 128 px -> 14x14 patches of 70x70


def test_patchgan_spectral_norm_and_features():
    d = PatchGAN(in_channels=3, width=8, spectral_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert any("parametrizations" in n for n, _ in d.named_parameters())
    logits, feats = d(torch.randn(1, 3, 64, 64), return_features=True)
    assert len(feats) == 4 and logits.shape[1] == 1


def test_registry_builds_by_name_and_rejects_unknown():
    assert isinstance(build_network({"arch": "unet", "depth": 3, "width": 4}), UNet)
    with pytest.raises(KeyError, match="unknown network 'nope'"):
        build_network({"arch": "nope"})


def test_adversarial_losses():
    real, fake = torch.full((2, 1, 3, 3), 5.0), torch.full((2, 1, 3, 3), -5.0)
    for mode in ("bce", "lsgan", "hinge"):
        adv = AdversarialLoss(mode)
        good, bad = adv.d_loss(real, fake), adv.d_loss(fake, real)
        assert good < bad, mode
        assert adv.g_loss(real) < adv.g_loss(fake), mode
    # exact values: BCE of logit 0 is log 2; LSGAN of 0 vs target 1 is 1; hinge D at margin is 0
    zero = torch.zeros(4)
    assert torch.isclose(AdversarialLoss("bce").g_loss(zero), torch.log(torch.tensor(2.0)))
    assert torch.isclose(AdversarialLoss("lsgan").g_loss(zero), torch.tensor(1.0))
    assert AdversarialLoss("hinge").d_loss(torch.ones(3), -torch.ones(3)) == 0
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        AdversarialLoss("wgan")


def test_reconstruction_and_feature_matching():
    a, b = torch.zeros(2, 2, 4, 4), torch.full((2, 2, 4, 4), 0.5)
    assert reconstruction_loss("l1", a, b) == 0.5 and reconstruction_loss("mse", a, b) == 0.25
    with pytest.raises(ValueError):
        reconstruction_loss("huber", a, b)
    assert feature_matching_loss([a, a], [b, b]) == 0.5


def test_config_overrides_and_typos(tmp_path):
    from prism.tasks import resolve_config
    base = tmp_path / "base.yaml"
    base.write_text("task: colorize\ntrain: {steps: 10}\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\ntrain: {batch_size: 2}\nnets: {G: {arch: resnet_unet, decoder_width: 64}}\n")
    cfg = resolve_config(child, ["train.steps=20", "loss.recon=mse", "data.train=[a, b]"])
    assert cfg["train"]["steps"] == 20 and cfg["train"]["batch_size"] == 2 and cfg["loss"]["recon"] == "mse"
    assert cfg["data"]["train"] == ["a", "b"] and cfg["name"] == "child"
    assert cfg["nets"]["G"] == {"arch": "resnet_unet", "decoder_width": 64}  # other arch: replaced, not merged
    assert cfg["nets"]["D"]["arch"] == "patchgan"
    with pytest.raises(C.ConfigError, match="unknown config key 'train.stpes'"):
        resolve_config(child, ["train.stpes=5"])
    with pytest.raises(C.ConfigError, match="must look like"):
        C.parse_overrides(["train.steps"])
    with pytest.raises(C.ConfigError, match="not found"):
        resolve_config(tmp_path / "missing.yaml")


def test_saved_model_card_carries_its_training_data_licence(tmp_path):
    import json
    from prism.modelio import save_model
    net = torch.nn.Conv2d(1, 2, 1)
    card = {"task": "colorize", "nets": {"G": {"arch": "x"}},
            "training": {"config": {"data": {"train": ["../shared/data/semantic/camvid/train",
                                                       {"path": "../shared/data/faces/utkface-128", "every": 4}]},
                                    "nets": {"G": {"pretrained_encoder": "efficientnet-lite0"}}}}}
    out = save_model(tmp_path / "m", {"G": net}, card)
    saved = json.loads((out / "card.json").read_text())
    assert "CamVid" in saved["license"] and "UTKFace" in saved["license"] and "Apache-2.0" in saved["license"]
    assert "Licence:" in (out / "README.md").read_text()
    unpaired = {**card, "training": {"config": {"data": {"A": "x/monet2photo/photo", "B": "x/monet2photo/monet"}}}}
    assert "Painter Myself" in json.loads((save_model(tmp_path / "u", {"G": net}, unpaired) / "card.json").read_text())["license"]
    own = {**card, "license": "mine"}
    assert json.loads((save_model(tmp_path / "o", {"G": net}, own) / "card.json").read_text())["license"] == "mine"


def test_limit_threads_bounds_torch_and_opencv():
    import cv2
    from prism.runtime import limit_threads
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        limit_threads(1)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
