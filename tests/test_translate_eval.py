"""`prism eval` for translation models (prism.evaluation.translation): CycleGAN's FID / KID / MiFID against
a real folder and its cycle error with and without noise, pix2pix's L1 / PSNR / SSIM against the
paired target, and the CLI path. A fixed 8-d projection stands in for the FID Inception (prism.fid's
own tests cover the Inception network); generators are exact stand-ins (identity, channel
rotation) where a number must come out exactly, tiny random networks elsewhere."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from prism.cli import app
from prism.fid import inception as inc
from prism.fid import metrics as fm
from prism.modelio import save_model
from prism.nets.resnet_generator import ResnetGenerator
from prism.registry import build_network
from prism.tasks.cyclegan import CycleGANTask
from prism.tasks.pix2pix import Pix2PixTask, Translator
from prism.evaluation.translation import evaluate_paired_translator, evaluate_unpaired_translator

runner = CliRunner()
DISTRIBUTION = ("fid", "kid_mean", "kid_std", "mifid")


class SmallFeatures(nn.Module):
    """features = 16x16-resized image @ a fixed matrix, in float64: a cheap, deterministic stand-in
    for the FID Inception (same `input_size` / `num_features` contract)."""

    input_size = (16, 16)
    num_features = 8

    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(np.random.default_rng(0).normal(size=(3 * 16 * 16, 8))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).double() @ self.weight


class Exact(nn.Module):
    """A generator with a known output: the input itself, or its channels rotated (R,G,B -> B,R,G)."""

    def __init__(self, rotate: bool = False):
        super().__init__()
        self.rotate = rotate
        self.zero = nn.Parameter(torch.zeros(()))  # Translator reads its device off a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, [2, 0, 1]] if self.rotate else x) + self.zero


def _finite(row: dict, keys) -> bool:
    return all(math.isfinite(row[k]) for k in keys)


@pytest.fixture(scope="module")
def cyclegan_dir(tmp_path_factory):
    torch.manual_seed(0)
    spec = {"arch": "resnet_generator", "ngf": 4, "n_blocks": 1}
    nets = {n: ResnetGenerator(ngf=4, n_blocks=1) for n in ("G_AB", "G_BA")}
    card = {"task": "cyclegan", "nets": {n: spec for n in nets}, "options": {"directions": {"AtoB": "G_AB", "BtoA": "G_BA"}}}
    return save_model(tmp_path_factory.mktemp("cyclegan"), nets, card)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """5 A|B pair images of 32x32 halves; B is A with its channels rotated."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for i in range(5):
        a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, a[..., [2, 0, 1]]], axis=1)).save(root / f"{i}.png")
    return root


@pytest.fixture
def fid_stand_in(monkeypatch, tmp_path):
    """No real weights anywhere; prism.fid's Inception loader replaced by SmallFeatures, recording
    the weight path it was asked for."""
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    asked = []

    def load(path=None, device="cpu"):
        asked.append(path)
        return SmallFeatures().to(device)
    monkeypatch.setattr(fm, "load_fid_inception", load)
    return asked


# --- CycleGAN ----------------------------------------------------------------------------------------
def test_identity_translator_scores_zero_fid_and_the_noise_alone(photo_folder, tmp_path):
    identity = Translator({"AtoB": Exact(), "BtoA": Exact()}, {"task": "cyclegan"})
    run = lambda: evaluate_unpaired_translator(identity, photo_folder / "a", real=photo_folder / "a",  # noqa: E731
                                               feature=SmallFeatures(), cache_dir=tmp_path, progress=False)
    first = run()
    row = first["rows"]["model"]
    assert first["count"] == 12 and first["real_count"] == 12 and not first["real_from_cache"]
    # translations = the real set itself (8-bit, as `prism translate` writes them): FID ~ 0
    assert abs(row["fid"]) < 1e-4 and _finite(row, DISTRIBUTION)  # round-off only: feature variances are ~60
    assert row["cycle_l1"] == 0.0
    # identity reconstruction: the error is the noise itself, E|N(0, 0.08)| / 2 in 0..1 pixel units
    assert row["cycle_l1_noisy"] == pytest.approx(0.08 * math.sqrt(2 / math.pi) / 2, rel=0.02)
    assert first["mifid_cosine_threshold"] == 0.1 and first["cycle_noise_std"] == 0.08

    second = run()  # the real folder's statistics now come from the cache
    assert second["real_from_cache"] and second["rows"] == first["rows"]


def test_cyclegan_metrics_are_finite_seeded_and_follow_the_direction(cyclegan_dir, photo_folder, tmp_path):
    import prism
    translator = prism.load_model(cyclegan_dir)
    kwargs = dict(real=photo_folder / "b", feature=SmallFeatures(), cache_dir=tmp_path, progress=False, batch_size=5)
    res = CycleGANTask.evaluate(translator, photo_folder / "a", **kwargs)
    row = res["rows"]["model"]
    assert res["count"] == 12 and res["direction"] == "AtoB" and res["notes"] == [] and res["skipped"] == []
    assert _finite(row, DISTRIBUTION + ("cycle_l1", "cycle_l1_noisy"))
    assert 0 < row["cycle_l1"] <= 1 and 0 < row["cycle_l1_noisy"] <= 1
    assert row["fid"] > 0 and row["kid_std"] >= 0
    assert row["mifid"] >= row["fid"] * (1 - 1e-9)  # MiFID = FID / d with d in (0, 1]
    assert res["images_per_s"] > 0

    again = CycleGANTask.evaluate(translator, photo_folder / "a", **kwargs)["rows"]["model"]
    assert again == row  # the noise is seeded
    other_seed = CycleGANTask.evaluate(translator, photo_folder / "a", seed=1, **kwargs)["rows"]["model"]
    assert other_seed["cycle_l1"] == row["cycle_l1"] and other_seed["cycle_l1_noisy"] != row["cycle_l1_noisy"]

    back = CycleGANTask.evaluate(translator, photo_folder / "b", direction="BtoA", limit=3, **kwargs)
    assert back["count"] == 3 and back["direction"] == "BtoA"
    # only AtoB: no reconstruction, said so; no real folder: no FID, said so
    one_way = Translator({"AtoB": translator.generators["AtoB"]}, {"task": "cyclegan"})
    res = evaluate_unpaired_translator(one_way, photo_folder / "a", limit=2, progress=False)
    assert res["rows"]["model"] == {} and len(res["notes"]) == 2
    assert "no BtoA generator" in res["notes"][0] and "--real" in res["notes"][1]


# --- pix2pix ---------------------------------------------------------------------------------------------
def test_paired_scores_against_the_right_half(pairs, tmp_path):
    rotate = Translator({"AtoB": Exact(rotate=True)}, {"task": "pix2pix"})  # maps each A exactly onto its B
    res = Pix2PixTask.evaluate(rotate, pairs, feature=SmallFeatures(), progress=False)
    row = res["rows"]["model"]
    assert res["count"] == 5 and res["real"] == "the target halves"
    assert row["l1"] < 1e-6 and row["ssim"] == pytest.approx(1.0, abs=1e-4) and row["psnr"] > 100
    assert abs(row["fid"]) < 1e-4  # the translations are the targets: FID against themselves ~ 0 (round-off)

    identity = Translator({"BtoA": Exact()}, {"task": "pix2pix"})  # B -> A unchanged: every channel off
    res = evaluate_paired_translator(identity, pairs, real=pairs, feature=SmallFeatures(), cache_dir=tmp_path,
                                     limit=3, progress=False)
    row = res["rows"]["model"]
    assert res["count"] == 3 and res["real_count"] == 5 and row["l1"] > 0.1 and row["fid"] > 0
    with pytest.raises(ValueError, match="translates BtoA only"):
        evaluate_paired_translator(identity, pairs, direction="AtoB", progress=False)


def test_without_inception_weights_the_distribution_is_scored_in_effnet_space(pairs, tmp_path, monkeypatch):
    monkeypatch.setenv("PRISM_FID_WEIGHTS", str(tmp_path / "absent.pth"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    identity = Translator({"BtoA": Exact()}, {"task": "pix2pix"})
    res = evaluate_paired_translator(identity, pairs, progress=False)
    row = res["rows"]["model"]
    assert not {"fid", "kid_mean", "mifid"} & set(row)  # never reported as FID
    assert row["fd_effnet_lite0"] > 0 and row["kid_effnet_lite0_std"] >= 0 and row["mifid_effnet_lite0"] > 0
    assert res["feature"].startswith("efficientnet-lite0") and "EfficientNet-Lite0" in res["notes"][0]
    # a weight file the user names but that is not there stays an error
    with pytest.raises(FileNotFoundError):
        evaluate_paired_translator(identity, pairs, inception_weights=tmp_path / "named.pth", progress=False)


# --- CLI -------------------------------------------------------------------------------------------------------
def test_cli_cyclegan_eval_end_to_end(cyclegan_dir, photo_folder, tmp_path, fid_stand_in):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"stand-in")  # the replaced loader only records the path
    out_json = tmp_path / "eval.json"
    args = ["eval", "--model", str(cyclegan_dir), "--data", str(photo_folder / "a"), "--real", str(photo_folder / "b"),
            "--inception-weights", str(weights), "--limit", "4", "--batch-size", "3"]
    result = runner.invoke(app, args + ["--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert fid_stand_in == [weights]
    res = json.loads(out_json.read_text())
    assert res["task"] == "cyclegan" and res["count"] == 4 and res["direction"] == "AtoB"
    row = res["rows"]["model"]
    assert _finite(row, DISTRIBUTION + ("cycle_l1", "cycle_l1_noisy"))
    for name in ("cycle_l1_noisy", "mifid", "direction: AtoB"):
        assert name in result.output
    assert len(list((tmp_path / "xdg" / "prism" / "fid-stats").iterdir())) == 1  # real statistics cached

    result = runner.invoke(app, ["eval", "cyclegan", *args[1:], "--direction", "BtoA", "--seed", "3",
                                 "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    res = json.loads(out_json.read_text())
    assert res["direction"] == "BtoA" and res["noise_seed"] == 3 and res["real_from_cache"]


def test_cli_without_weights_reports_the_cycle_and_effnet_distances(cyclegan_dir, photo_folder, tmp_path, monkeypatch):
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    out_json = tmp_path / "eval.json"
    args = ["eval", "--model", str(cyclegan_dir), "--data", str(photo_folder / "a"), "--real", str(photo_folder / "b"),
            "--limit", "2"]
    result = runner.invoke(app, args + ["--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert inc.WEIGHTS_URL in result.output and "never downloads" in result.output
    row = json.loads(out_json.read_text())["rows"]["model"]
    assert set(row) == {"cycle_l1", "cycle_l1_noisy", "fd_effnet_lite0", "kid_effnet_lite0", "kid_effnet_lite0_std",
                        "mifid_effnet_lite0"}

    missing = tmp_path / "nowhere.pth"  # a file the user names must exist
    result = runner.invoke(app, args + ["--inception-weights", str(missing)])
    assert result.exit_code == 2 and str(missing) in result.output and inc.WEIGHTS_URL in result.output
    result = runner.invoke(app, args + ["--direction", "sideways"])
    assert result.exit_code == 2 and "translates AtoB and BtoA only" in result.output
    result = runner.invoke(app, ["eval", "--model", "colorizer", "--data", str(photo_folder), "--real", str(photo_folder)])
    assert result.exit_code == 2 and "--real does not apply to colorize models" in result.output


def test_cli_pix2pix_eval(pairs, tmp_path, fid_stand_in):
    torch.manual_seed(0)
    spec = {"arch": "unet", "in_channels": 3, "out_channels": 3, "depth": 3, "width": 4, "norm": "batch", "dropout": 0.5}
    model = save_model(tmp_path / "p2p", {"G": build_network(spec)},
                       {"task": "pix2pix", "nets": {"G": spec}, "options": {"directions": {"BtoA": "G"}}})
    out_json = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "pix2pix", "--model", str(model), "--data", str(pairs), "--limit", "4",
                                 "--inception-weights", str(tmp_path), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    res = json.loads(out_json.read_text())
    row = res["rows"]["model"]
    assert res["count"] == 4 and res["direction"] == "BtoA" and fid_stand_in == [tmp_path]
    assert _finite(row, ("l1", "psnr", "ssim") + DISTRIBUTION)
    assert 0 < row["l1"] <= 1 and -1 <= row["ssim"] <= 1 and "psnr" in result.output
