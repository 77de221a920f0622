"""StyleGAN2: modulation/demodulation math, mapping and truncation, R1, lazy regularisation,
presets, generation, and exact resume of the GAN training."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import prism
from conftest import REPO
from prism.cli import app
from prism.config import ConfigError
from prism.nets.stylegan2 import MinibatchStd, StyleGAN2Discriminator, StyleGAN2Generator, modulated_conv2d
from prism.tasks import resolve_config, task_class
from prism.tasks.stylegan import StyleGANTask, r1_penalty
from prism.train import checkpoint as ckpt
from prism.train.trainer import Trainer

TINY_G = {"resolution": 16, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 128, "channel_max": 8}
TINY_D = {"resolution": 16, "channel_base": 128, "channel_max": 8}


def tiny_stylegan_config(train, **train_overrides) -> dict:
    overrides = {
        "data": {"train": str(train), "size": 16},
        "nets": {"G": TINY_G, "D": TINY_D},
        # R1 every 2 steps so a lazy-regularisation step falls on both sides of the resume point;
        # every random component on: mixing, all DiffAugment policies, noise inputs, EMA.
        "loss": {"r1_every": 2, "style_mixing": 0.5, "diffaugment": "color,translation,cutout"},
        "train": {"steps": 6, "batch_size": 4, "log_every": 2, "sample_every": 3, "val_every": 3,
                  "ckpt_every": 3, "val_batches": 1, "ema": 0.9, **train_overrides},
    }
    return resolve_config(None, overrides, base={"task": "stylegan"})


# --- network math ------------------------------------------------------------------------------------------
def test_modulated_conv_equals_per_sample_demodulated_weights():
    torch.manual_seed(0)
    x, weight, styles = torch.randn(2, 3, 6, 6), torch.randn(4, 3, 3, 3), torch.rand(2, 3) + 0.5
    out = modulated_conv2d(x, weight, styles, demodulate=True, padding=1)
    for b in range(2):  # the paper's equations, one sample at a time
        w1 = weight * styles[b].reshape(1, 3, 1, 1)                          # w'_oik = s_i w_oik
        w2 = w1 / torch.sqrt(w1.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)  # demodulated
        assert torch.allclose(out[b:b + 1], F.conv2d(x[b:b + 1], w2, padding=1), atol=1e-5)
    plain = modulated_conv2d(x, weight, styles, demodulate=False, padding=1)
    assert torch.allclose(plain[1:], F.conv2d(x[1:], weight * styles[1].reshape(1, 3, 1, 1), padding=1), atol=1e-5)
    # Demodulation makes the output independent of the styles' overall scale...
    assert torch.allclose(modulated_conv2d(x, weight, styles * 100, padding=1), out, atol=1e-4)
    # ...and restores unit variance for unit-variance input, whatever the weights and styles.
    big = modulated_conv2d(torch.randn(1, 64, 48, 48), torch.randn(32, 64, 3, 3) * 7, torch.rand(1, 64) * 3 + 0.1)
    assert 0.9 < float(big.std()) < 1.1


def test_mapping_tracks_w_avg_and_truncation_pulls_to_it():
    torch.manual_seed(0)
    G = StyleGAN2Generator(**TINY_G)
    assert G.num_ws == 6  # 4 px: 1 conv, 8 and 16 px: 2 each, + the last toRGB
    z = torch.randn(5, 8)
    G.train()
    before = G.mapping.w_avg.clone()
    w = G.mapping(z, update_w_avg=False)[:, 0]
    G.mapping(z)
    assert torch.allclose(G.mapping.w_avg, w.mean(0).lerp(before, 0.995), atol=1e-6)
    G.eval()
    tracked = G.mapping.w_avg.clone()
    G.mapping(z)
    assert torch.equal(G.mapping.w_avg, tracked)  # only training updates it
    G.mapping.w_avg.copy_(torch.arange(8.0))
    ws0 = G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws0, torch.arange(8.0).expand(5, 6, 8))  # psi = 0: every w is w_avg
    half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, (G.mapping(z) + torch.arange(8.0)) / 2, atol=1e-5)
    cut = G.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], ws0[:, :2]) and torch.allclose(cut[:, 2:], G.mapping(z)[:, 2:])
    faces = G(z, truncation_psi=0.0, noise_mode="const")  # one face, five times
    assert faces.shape == (5, 3, 16, 16) and torch.allclose(faces, faces[:1].expand_as(faces), atol=1e-5)


def test_style_mixing_noise_inputs_and_discriminator():
    torch.manual_seed(0)
    G = StyleGAN2Generator(**TINY_G).eval()
    z = torch.randn(3, 8)
    same = G.styles(z, mixing_prob=0.0)
    assert torch.equal(same, same[:, :1].expand_as(same))
    mixed = G.styles(z, mixing_prob=1.0)
    assert torch.equal(mixed[:, 0], same[:, 0]) and not torch.allclose(mixed[:, -1], same[:, -1])
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    ws = G.mapping(z)
    noises = [torch.randn(s) for s in G.noise_shapes()]
    assert torch.equal(G.synthesis(ws, noises=noises), G.synthesis(ws, noise_mode="none"))  # strength starts at 0
    for layer in G.synthesis.noise_layers():
        layer.noise_strength.data.fill_(0.5)
    assert not torch.allclose(G.synthesis(ws, noises=noises), G.synthesis(ws, noise_mode="none"))

    D = StyleGAN2Discriminator(**TINY_D)
    assert D(torch.randn(6, 3, 16, 16)).shape == (6, 1)  # 6 is no multiple of the group size 4
    assert [f.shape[-1] for f in D.features(torch.randn(2, 3, 16, 16))] == [8, 4]
    std = MinibatchStd(4)(torch.ones(4, 2, 3, 3))[:, -1]
    assert torch.allclose(std, torch.full_like(std, 1e-4))  # identical samples: sqrt(0 + 1e-8)


# --- R1 ------------------------------------------------------------------------------------------------------
class Quadratic(torch.nn.Module):
    """D(x) = sum(a * x^2) / 2 per image: grad_x D = a * x, so R1 = sum((a x)^2), by hand."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        return (self.a * x.square()).sum(dim=(1, 2, 3), keepdim=True) / 2


def test_r1_penalty_matches_hand_computation_and_trains_d():
    x = torch.randn(2, 3, 4, 4)
    D = Quadratic()
    penalty = r1_penalty(D, x)
    assert torch.allclose(penalty, (3.0 * x).square().sum(dim=(1, 2, 3)))
    penalty.sum().backward()  # d/da sum(a^2 x^2) = 2 a sum(x^2): the graph reaches D's weights
    assert torch.allclose(D.a.grad, 2 * 3.0 * x.square().sum())

    torch.manual_seed(0)  # the real discriminator, against central finite differences
    D = StyleGAN2Discriminator(**TINY_D).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    penalty = r1_penalty(D, x)
    grad = torch.zeros_like(x)
    for idx in [(0, 0, 3, 4), (0, 2, 10, 1), (1, 1, 7, 7), (1, 0, 15, 15)]:
        e = torch.zeros_like(x)
        e[idx] = 1e-6
        with torch.no_grad():
            grad[idx] = (D(x + e).sum() - D(x - e).sum()) / 2e-6
    xr = x.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(D(xr).sum(), xr)
    mask = grad != 0
    assert torch.allclose(grad[mask], exact[mask], rtol=1e-5, atol=1e-8)
    assert torch.allclose(penalty, exact.square().sum(dim=(1, 2, 3)))


def test_lazy_r1_phase_and_adam_adjustment(photo_folder):
    cfg = tiny_stylegan_config(photo_folder)
    cfg["loss"]["r1_every"] = 16
    task = StyleGANTask(cfg)
    phases = {p.name: p for p in task.phases()}
    assert phases["D_r1"].optimizer == "D" and phases["D_r1"].every == 16
    assert [s for s in range(40) if phases["D_r1"].active(s)] == [0, 16, 32]
    assert phases["G"].frozen == ("D",)
    opts = task.build_optimizers(task.build_networks())
    c = 16 / 17
    assert opts["D"].param_groups[0]["lr"] == pytest.approx(0.0025 * c)
    assert opts["D"].param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** c))
    assert opts["G"].param_groups[0]["lr"] == pytest.approx(0.0025)


def test_presets_and_config_errors(photo_folder):
    for name, res in (("cpu-faces64", 64), ("paper-256", 256), ("paper-1024", 1024)):
        cfg = resolve_config(REPO / "configs" / "stylegan" / f"{name}.yaml")
        task = task_class("stylegan")(cfg)
        assert cfg["nets"]["G"]["resolution"] == cfg["nets"]["D"]["resolution"] == cfg["data"]["size"] == res
        if res == 64:
            G = task.build_networks()["G"]
            assert G(torch.randn(2, 128)).shape == (2, 3, 64, 64)
        if res == 1024:  # config F: the reference's parameter counts (stylegan2-ada-pytorch's module
            # summary: D 29,012,513; G 28,794,124 with a 2-layer mapping, + 6 x (512 x 512 + 512) for 8)
            nets = task.build_networks()
            assert nets["G"].num_ws == 18
            assert sum(p.numel() for p in nets["G"].parameters()) == 28_794_124 + 6 * (512 * 512 + 512)
            assert sum(p.numel() for p in nets["D"].parameters()) == 29_012_513
    with pytest.raises(ConfigError, match="diffaugment"):
        StyleGANTask(resolve_config(None, {"data": {"train": "x", "size": 16}, "nets": {"G": TINY_G, "D": TINY_D},
                                           "loss": {"diffaugment": "zoom"}}, base={"task": "stylegan"}))
    with pytest.raises(ConfigError, match="must be equal"):
        StyleGANTask(resolve_config(None, {"data": {"size": 32}, "nets": {"G": TINY_G, "D": TINY_D}},
                                    base={"task": "stylegan"}))


# --- training -----------------------------------------------------------------------------------------------------
def _assert_same_state(a: dict, b: dict) -> None:
    for group in ("nets", "ema", "opts"):
        assert set(a[group]) == set(b[group]), group
        for net in a[group]:
            flat_a = a[group][net]["state"] if group == "opts" else a[group][net]
            flat_b = b[group][net]["state"] if group == "opts" else b[group][net]
            for key in flat_a:
                va, vb = flat_a[key], flat_b[key]
                for k2 in (va if isinstance(va, dict) else [None]):
                    x, y = (va[k2], vb[k2]) if k2 is not None else (va, vb)
                    assert torch.equal(torch.as_tensor(x), torch.as_tensor(y)), (group, net, key, k2)


def test_gan_resume_is_bit_identical_and_model_generates(photo_folder, tmp_path):
    straight = Trainer(tiny_stylegan_config(photo_folder), runs_dir=tmp_path / "a", progress=False).fit()
    half = Trainer(tiny_stylegan_config(photo_folder, steps=3), runs_dir=tmp_path / "b", progress=False).fit()
    resumed = Trainer(tiny_stylegan_config(photo_folder), runs_dir=tmp_path / "b", resume=half, progress=False).fit()
    a, b = (ckpt.load_checkpoint(r / "checkpoints" / "latest.pt") for r in (straight, resumed))
    assert a["step"] == b["step"] == 6
    _assert_same_state(a, b)
    assert not torch.equal(a["nets"]["G"]["mapping.w_avg"], torch.zeros(8))  # tracked during training
    for rel in ("samples/step-0000003.png", "metrics.jsonl", "model/card.json"):
        assert (straight / rel).exists(), rel

    generator = prism.load_model(str(straight / "model"))
    assert generator.task == "stylegan" and generator.D is not None
    assert generator.card["options"]["resolution"] == 16
    faces = generator.generate(3, seed=7)
    again = generator.generate(3, seed=7)
    assert [f.size for f in faces] == [(16, 16)] * 3
    assert [f.tobytes() for f in faces] == [f.tobytes() for f in again]
    assert faces[0].tobytes() != generator.generate(1, seed=8)[0].tobytes()
    average = generator.generate(2, seed=1, psi=0.0)
    assert average[0].tobytes() == average[1].tobytes()

    out = tmp_path / "gen"
    res = CliRunner().invoke(app, ["generate", "--model", str(straight / "model"), "--count", "3", "--seed", "7",
                                   "--psi", "0.7", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["seed-7-0000.png", "seed-7-0001.png", "seed-7-0002.png"]
