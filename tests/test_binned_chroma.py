"""Class-rebalanced ab classification (Zhang et al. 2016): encoding, decoding, rebalancing, training."""
from __future__ import annotations

import pytest
import torch

import prism
from conftest import tiny_colorize_config
from prism.nets.binned_chroma import BinnedChroma, rebalance_weights
from prism.train.trainer import Trainer

BACKBONE = {"arch": "unet", "in_channels": 1, "depth": 3, "width": 4}


def _net(grid=8, temperature=0.38):
    return BinnedChroma(BACKBONE, features=4, grid=grid, temperature=temperature)


def test_soft_encoding_is_bilinear_and_exact_inside_the_grid():
    net = _net(grid=8)
    ab = torch.rand(2, 2, 5, 7) * 1.7 - 0.85  # inside the outermost bin centres (+-0.875)
    idx, wts = net.soft_encode(ab)
    assert idx.shape == (2, 4, 5, 7) and int(idx.min()) >= 0 and int(idx.max()) < 64
    assert torch.allclose(wts.sum(1), torch.ones(2, 5, 7))
    assert float(wts.min()) >= 0
    recon = torch.einsum("bkhw,bkhwc->bchw", wts, net.centers[idx])  # weighted centres give back ab
    assert torch.allclose(recon, ab, atol=1e-5)


def test_annealed_mean_decodes_a_confident_bin_to_its_centre_and_t1_to_the_mean():
    net = _net(grid=4, temperature=0.38)
    logits = torch.full((1, 16, 2, 2), -30.0)
    logits[:, 6] = 30.0
    assert torch.allclose(net.decode(logits), net.centers[6].view(1, 2, 1, 1).expand(1, 2, 2, 2), atol=1e-5)
    two_modes = torch.full((1, 16, 1, 1), -30.0)
    two_modes[:, 0], two_modes[:, 15] = 1.0, 0.0  # opposite corners, unequal
    mean = _net(grid=4, temperature=1.0).decode(two_modes).flatten()
    annealed = net.decode(two_modes).flatten()
    assert annealed.norm() > mean.norm()  # a lower temperature moves away from the gray-ish mean


def test_rebalancing_weights_favour_rare_colours_and_average_to_one():
    counts = torch.zeros(16)
    counts[5], counts[6], counts[10] = 1000.0, 100.0, 1.0
    w = rebalance_weights(counts, grid=4, mix=0.5)
    assert w[10] > w[6] > w[5]
    kernel_smoothed = rebalance_weights(counts, grid=4, mix=1.0)  # mix 1: uniform, no rebalancing
    assert torch.allclose(kernel_smoothed, torch.ones(16))


def test_loss_is_lowest_for_the_true_colour():
    net = _net(grid=8)
    ab = torch.full((1, 2, 3, 3), 0.4)
    idx, wts = net.soft_encode(ab)
    right = torch.zeros(1, 64, 3, 3).scatter_(1, idx, 20 * wts)
    wrong = torch.zeros(1, 64, 3, 3)
    wrong[:, 0] = 20.0
    assert net.loss(right, ab) < net.loss(wrong, ab)


def test_binned_recipe_trains_resumes_and_colorizes(photo_folder, tmp_path):
    def cfg(steps):
        c = tiny_colorize_config(photo_folder, steps=steps)
        c["nets"] = {"G": {"arch": "binned_chroma", "backbone": {**BACKBONE, "depth": 4}, "features": 4, "grid": 8}}
        c["optim"].pop("D", None)
        c["loss"].update(recon="binned_ce", gan_weight=0.0, recon_weight=1.0, pretrain_steps=0)
        return c
    straight = Trainer(cfg(6), runs_dir=tmp_path / "a", progress=False).fit()
    half = Trainer(cfg(3), runs_dir=tmp_path / "b", progress=False).fit()
    resumed = Trainer(cfg(6), runs_dir=tmp_path / "b", resume=half, progress=False).fit()
    a = torch.load(straight / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "latest.pt", weights_only=True)
    assert torch.equal(a["task"]["chroma_counts"], b["task"]["chroma_counts"])  # the colour prior resumes too
    assert all(torch.equal(a["nets"]["G"][k], b["nets"]["G"][k]) for k in a["nets"]["G"])
    colorizer = prism.load_model(straight)
    out = colorizer.colorize(next(photo_folder.rglob("*.png")))
    assert out.mode == "RGB"


def test_binned_ce_without_binned_generator_is_a_config_error(photo_folder, tmp_path):
    from prism.config import ConfigError
    c = tiny_colorize_config(photo_folder)
    c["loss"]["recon"] = "binned_ce"
    with pytest.raises(ConfigError, match="binned_chroma"):
        Trainer(c, runs_dir=tmp_path, progress=False).fit()


def test_perceptual_term_needs_decoded_colours(photo_folder, tmp_path):
    """A binned-chroma G trained without a discriminator never decodes its colours: a perceptual
    term there is refused up front, not a crash at the first step."""
    from prism.config import ConfigError
    c = tiny_colorize_config(photo_folder)
    c["nets"] = {"G": {"arch": "binned_chroma", "backbone": {**BACKBONE, "depth": 4}, "features": 4, "grid": 8}}
    c["optim"].pop("D", None)
    c["loss"].update(recon="binned_ce", gan_weight=0.0, recon_weight=1.0, perceptual_weight=1.0)
    with pytest.raises(ConfigError, match="perceptual_weight"):
        Trainer(c, runs_dir=tmp_path, progress=False).fit()
