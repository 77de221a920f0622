"""Restoration by GAN inversion: degradation operators, projector pieces, LPIPS loading with
stand-in weights, projection on a real face, face alignment (synthetic and dlib), evaluation, CLI."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from prism.cli import app
from prism.modelio import save_model
from prism.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from prism.restore import FaceGenerator
from prism.restore import align as A
from prism.restore.degradations import (Compose, Downsample, Grayscale, Mask, build_degradation, diffusion_fill,
                                        hole_from_file, hole_from_rect, hole_tensor, luma)
from prism.restore.perceptual import (LPIPS, LPIPS_CHANNELS, DiscriminatorDistance, LPIPSDistance, LPIPSUnavailable,
                                      PixelDistance)
from prism.restore.projector import ProjectionSettings, learning_rate, noise_regularization, project, w_statistics

G_SPEC = {"arch": "stylegan2_generator", "resolution": 16, "z_dim": 8, "w_dim": 8, "mapping_layers": 2,
          "channel_base": 256, "channel_max": 16}
D_SPEC = {"arch": "stylegan2_discriminator", "resolution": 16, "channel_base": 256, "channel_max": 16}


def tiny_nets(seed: int = 0):
    torch.manual_seed(seed)
    G = StyleGAN2Generator(**{k: v for k, v in G_SPEC.items() if k != "arch"}).eval()
    D = StyleGAN2Discriminator(**{k: v for k, v in D_SPEC.items() if k != "arch"}).eval()
    return G, D


def tiny_model_dir(tmp_path):
    G, D = tiny_nets()
    card = {"task": "stylegan", "nets": {"G": G_SPEC, "D": D_SPEC},
            "options": {"resolution": 16, "align": {"zoom": 1.0, "shift_y": 0.0}}}
    return save_model(tmp_path / "model", {"G": G, "D": D}, card)


# --- degradations ------------------------------------------------------------------------------------------------
def test_gray_matches_pil_and_composite_keeps_lightness():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    gray = Grayscale()(x)
    pil_l = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.float32) / 255
    assert gray.shape == x.shape and torch.equal(gray[:, 0], gray[:, 2])
    assert np.abs(gray[0, 0].numpy() - pil_l).max() <= 1 / 255 + 1e-6  # PIL rounds to 8 bits
    mid = Grayscale()(torch.rand(1, 3, 8, 8) * 0.2 + 0.4)  # mid-range, so the composite needs no clipping
    generated = torch.rand(1, 3, 8, 8) * 0.2 + 0.4
    out = Grayscale().composite(generated, mid)
    assert torch.allclose(luma(out), luma(mid), atol=1e-6)           # the input's lightness...
    assert torch.allclose(out - luma(out), generated - luma(generated), atol=1e-6)  # ...G's chroma


def test_mask_downsample_compose_and_holes(tmp_path):
    x = torch.rand(1, 3, 16, 16)
    hole = hole_tensor(hole_from_rect((4, 8, 8, 4), (32, 32)), 16)  # photo 32 px, model 16 px
    assert hole.sum() == 2 * 4 and hole[0, 0, 4:6, 2:6].all()
    masked = Mask(hole)(x)
    assert (masked[..., 4:6, 2:6] == 0).all() and torch.equal(masked[..., :4, :], x[..., :4, :])
    generated = torch.rand(1, 3, 16, 16)
    comp = Mask(hole).composite(generated, masked)
    assert torch.equal(comp[..., :4, :], x[..., :4, :])  # outside the hole: the photo, exactly
    # inside: G's content (its gradients) shifted by a smooth membrane that removes the seam
    offset = (comp - generated)[..., 4:6, 2:6]
    assert not torch.equal(comp[..., 4:6, 2:6], generated[..., 4:6, 2:6])
    same_g = Mask(hole).composite(generated + 0.1, masked)  # a brighter G: same result, the membrane absorbs it
    assert torch.allclose(same_g, comp, atol=1e-5) and offset.abs().max() < 1
    flat = Mask(hole).composite(torch.full_like(x, 0.3), Mask(hole)(torch.full_like(x, 0.6)))
    assert torch.allclose(flat, torch.full_like(x, 0.6), atol=1e-4)  # no seam: a flat photo stays flat

    small = Downsample(4)(x)
    assert small.shape == (1, 3, 4, 4)
    assert torch.allclose(small[0, :, 1, 2], x[0, :, 4:8, 8:12].mean(dim=(1, 2)))  # exact box average
    smooth = torch.linspace(0.3, 0.7, 16).expand(1, 3, 16, 16).contiguous()
    back = Downsample(4).composite(torch.full_like(smooth, 0.5), Downsample(4)(smooth))
    assert (Downsample(4)(back) - Downsample(4)(smooth)).abs().max() < 0.02  # back-projection holds the input

    chain = build_degradation("gray+mask", 16, hole)
    assert isinstance(chain, Compose) and chain.name == "gray+mask"
    assert torch.equal(chain(x), Mask(hole)(Grayscale()(x)))
    assert build_degradation("none", 16)(x) is x
    with pytest.raises(ValueError, match="unknown degradation"):
        build_degradation("blur", 16)
    with pytest.raises(ValueError, match="needs a hole"):
        build_degradation("mask", 16)
    with pytest.raises(ValueError, match="does not fit"):
        hole_from_rect((30, 0, 8, 8), (32, 32))

    png = tmp_path / "mask.png"
    img = Image.new("L", (32, 32), 0)
    ImageDraw.Draw(img).rectangle((0, 0, 15, 7), fill=255)  # white = missing
    img.save(png)
    file_hole = hole_tensor(hole_from_file(png, (32, 32)), 16)
    assert file_hole[0, 0, :4, :8].all() and file_hole.sum() == 32
    Image.new("L", (32, 32), 0).save(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="marks no pixel"):
        hole_from_file(tmp_path / "empty.png", (32, 32))


def test_diffusion_fill_solves_laplace():
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 6:26] = 1
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).contiguous()  # harmonic: the exact fill is the ramp
    filled = diffusion_fill(ramp * (1 - hole), hole)
    assert (filled - ramp).abs().max() < 0.02
    assert torch.equal(filled * (1 - hole), ramp * (1 - hole))
    assert Mask(hole).baseline(Mask(hole)(ramp), 32).sub(ramp).abs().max() < 0.02


# --- projector pieces --------------------------------------------------------------------------------------------
def test_noise_regularization_and_learning_rate_schedule():
    torch.manual_seed(0)
    white = [torch.randn(1, 1, 32, 32)]
    smooth = [torch.nn.functional.interpolate(torch.randn(1, 1, 4, 4), size=(32, 32), mode="bilinear")]
    assert float(noise_regularization(smooth)) > 100 * float(noise_regularization(white))
    s = ProjectionSettings(steps=100, lr=0.1)
    assert learning_rate(0, s) == 0.0
    assert learning_rate(50, s) == pytest.approx(0.1)
    assert learning_rate(99, s) < 0.001
    assert learning_rate(2, s) == pytest.approx(0.1 * 2 / 5)  # linear ramp-up over 5 % of the steps
    with pytest.raises(ValueError, match="space"):
        ProjectionSettings(space="z")


# --- LPIPS with stand-in weights of the real files' layout ---------------------------------------------------------
def _standin_lpips_files(tmp_path):
    torch.manual_seed(0)
    vgg = {}
    convs = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
             (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision vgg16().features
    for idx, (cout, cin) in zip(indices, convs):
        vgg[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * math.sqrt(2 / (cin * 9))
        vgg[f"features.{idx}.bias"] = torch.zeros(cout)
    vgg["classifier.0.weight"] = torch.zeros(4, 4)  # present in the real file, ignored
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(LPIPS_CHANNELS)}
    torch.save(vgg, tmp_path / "vgg16.pth")
    torch.save(lin, tmp_path / "lin.pth")
    return tmp_path / "vgg16.pth", tmp_path / "lin.pth", vgg, lin


def test_lpips_loads_reference_layouts_and_measures(tmp_path):
    vgg_path, lin_path, vgg, lin = _standin_lpips_files(tmp_path)
    model = LPIPS.from_files(vgg_path, lin_path)
    assert torch.equal(model.net.features[28].weight, vgg["features.28.weight"])
    assert torch.equal(model.lin4.model[1].weight, lin["lin4.model.1.weight"])
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    d = model(x, y)
    assert d.shape == (2,) and (d > 0).all() and torch.allclose(model(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(d, model(y, x), atol=1e-6)
    # one layer by hand: relu1_2 = features[:4], unit-normalised over channels, weighted, mean over pixels
    scaled = ((x * 2 - 1) - model.shift) / model.scale, ((y * 2 - 1) - model.shift) / model.scale
    fa, fb = (model.net.features[:4](s) for s in scaled)
    unit = [f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10) for f in (fa, fb)]
    first = ((unit[0] - unit[1]).square() * lin["lin0.model.1.weight"]).sum(1).mean(dim=(1, 2))
    only_first = LPIPS.from_files(vgg_path, lin_path)
    for k in range(1, 5):
        getattr(only_first, f"lin{k}").model[1].weight.data.zero_()
    assert torch.allclose(only_first(x, y), first, atol=1e-5)
    dist = LPIPSDistance(model, size=16)
    assert dist(x, dist.prepare(x)).abs().max() < 1e-6

    with pytest.raises(LPIPSUnavailable, match="two weight files"):
        LPIPS.from_files(vgg_path, None)
    with pytest.raises(LPIPSUnavailable, match="no such weight file"):
        LPIPS.from_files(tmp_path / "missing.pth", lin_path)
    bad = dict(lin, **{"lin2.model.1.weight": torch.rand(1, 128, 1, 1)})
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="lin2.model.1.weight"):
        LPIPS.from_files(vgg_path, tmp_path / "bad.pth")


# --- projection on a real face -------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_projection_lowers_the_loss_on_a_real_face(shared_data):
    face_path = sorted((shared_data / "faces" / "celeba-hq-256").glob("*.jpg"))[0]
    G, D = tiny_nets()
    gen = FaceGenerator(G, D, {"options": {}})
    clean, _ = gen.prepare(face_path, align=False)
    op = build_degradation("gray", 16)
    for distance in (DiscriminatorDistance(D), PixelDistance()):
        result = project(G, op(clean), op, distance, ProjectionSettings(steps=40, w_avg_samples=500, frame_every=10))
        start, end = np.mean(result.distances[:3]), np.mean(result.distances[-3:])
        assert end < 0.6 * start, (distance.name, result.distances[::5])
        assert result.ws.shape == (1, G.num_ws, 8) and [s for s, _ in result.frames] == [0, 10, 20, 30, 40]
    w_only = project(G, op(clean), op, PixelDistance(), ProjectionSettings(steps=3, space="w", w_avg_samples=100))
    assert torch.equal(w_only.ws[0, 0], w_only.ws[0, -1])  # W: one latent shared by every layer
    assert not torch.equal(result.ws[0, 0], result.ws[0, -1])  # W+: one per layer


def test_samples_are_independent_projections_and_restore_uses_their_mean(tmp_path):
    G, D = tiny_nets()
    torch.manual_seed(1)
    truth = torch.rand(2, 3, 16, 16)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 4:10, 5:12] = 1
    op = Mask(hole)
    settings = ProjectionSettings(steps=6, w_avg_samples=100, samples=3, frame_every=3)
    result = project(G, op(truth), op, PixelDistance(), settings)
    assert result.samples.shape == (3, 2, 3, 16, 16) and result.sample_ws.shape == (3, 2, G.num_ws, 8)
    assert torch.equal(result.images, result.samples[0]) and torch.equal(result.ws, result.sample_ws[0])
    assert torch.allclose(result.mean, result.samples.mean(dim=0))
    assert not torch.allclose(result.samples[0], result.samples[1])  # each sample starts from its own noise
    assert [s for s, _ in result.frames] == [0, 3, 6] and result.frames[-1][1].shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="samples"):
        ProjectionSettings(samples=0)

    gen = FaceGenerator(G, D, {"options": {}})
    photo = Image.fromarray((torch.rand(32, 32, 3).numpy() * 255).astype(np.uint8))
    res = gen.restore(photo, degradation="mask", rect=(8, 8, 12, 10), steps=4, align=False, samples=3,
                      settings={"w_avg_samples": 100})
    assert res.sample_ws.shape == (3, G.num_ws, 8) and np.array_equal(res.w, res.sample_ws[0])
    spread = np.asarray(res.uncertainty.convert("L"), dtype=float)
    known = ~hole_tensor(hole_from_rect((8, 8, 12, 10), (32, 32)), 16)[0, 0].numpy().astype(bool)
    assert spread[known].max() == spread[known].min() < spread[~known].max()  # the photo decides outside the hole
    paths = res.save(tmp_path / "out")
    assert np.load(paths["sample_ws"]).shape == (3, G.num_ws, 8) and paths["uncertainty"].exists()
    assert json.loads(paths["json"].read_text())["samples"] == 3
    assert gen.restore(photo, degradation="gray", steps=2, align=False, settings={"w_avg_samples": 100}).uncertainty is None
    # steps and samples default to the model card's measured values
    carded = FaceGenerator(G, D, {"options": {"restore": {"steps": 3, "samples": 2}}})
    res = carded.restore(photo, degradation="gray", align=False, settings={"w_avg_samples": 100})
    assert len(res.losses) == 3 and res.sample_ws.shape[0] == 2
    assert len(gen.restore(photo, degradation="gray", steps=2, align=False, settings={"w_avg_samples": 100}).losses) == 2


def test_spread_starts_later_samples_around_the_start_and_keeps_the_first_there():
    G, D = tiny_nets()
    truth = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    op = Mask((torch.arange(16) >= 8).float().reshape(1, 1, 1, 16).expand(1, 1, 16, 16))
    start = torch.randn(2, G.num_ws, 8, generator=torch.Generator().manual_seed(3))
    w_std = w_statistics(G, 100)[1]
    # one step: the learning rate ramps up from 0, so the latents stay where they started
    settings = ProjectionSettings(steps=1, w_avg_samples=100, samples=400, spread=0.5)
    ws = project(G, op(truth), op, PixelDistance(), settings, init_ws=start).sample_ws
    assert torch.equal(ws[0], start)  # the first sample: the start itself
    offsets = ws[1:] - start
    assert torch.allclose(offsets, offsets[..., :1, :].expand_as(offsets), atol=1e-6)  # one offset for all layers
    radius = offsets[..., 0, :].square().sum(-1).mean().sqrt()  # RMS distance from the start
    assert abs(radius / (0.5 * w_std) - 1) < 0.05
    plain = ProjectionSettings(steps=2, w_avg_samples=100, samples=2)
    unspread = project(G, op(truth), op, PixelDistance(), plain, init_ws=start)
    zero = project(G, op(truth), op, PixelDistance(), ProjectionSettings(**{**vars(plain), "spread": 0.0}), init_ws=start)
    assert torch.equal(unspread.samples, zero.samples)
    with pytest.raises(ValueError, match="spread"):
        ProjectionSettings(spread=-1)
    # restore(spread=...) over the card's restore.spread; one step leaves each sample at its start
    photo = Image.fromarray((torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(4)).numpy() * 255).astype(np.uint8))
    carded = FaceGenerator(G, D, {"options": {"restore": {"steps": 1, "samples": 3, "spread": 0.5}}})
    restore = lambda **kw: carded.restore(photo, "mask", rect=(0, 0, 8, 8), align=False, settings={"w_avg_samples": 100}, **kw)
    spread_ws = restore().sample_ws
    assert not np.allclose(spread_ws[1], spread_ws[0]) and np.array_equal(restore(spread=0.5).sample_ws, spread_ws)
    assert np.array_equal(restore(spread=0.0).sample_ws[1], spread_ws[0])


@pytest.mark.shared_data
def test_restore_api_cli_and_evaluation(shared_data, tmp_path):
    faces = shared_data / "faces" / "celeba-hq-256"
    photo = sorted(faces.glob("*.jpg"))[1]
    model = tiny_model_dir(tmp_path)
    import prism
    gen = prism.load_model(str(model))
    result = gen.restore(photo, degradation="mask", rect=(64, 96, 128, 96), steps=4, align=False, frame_every=2,
                         settings={"w_avg_samples": 200})
    assert result.distance.startswith("discriminator-features") and result.degradation == "mask"
    restored, observed = np.asarray(result.restored), np.asarray(result.observed)
    hole = hole_tensor(hole_from_rect((64, 96, 128, 96), (256, 256)), 16)[0, 0].numpy().astype(bool)
    assert (observed[hole] == 0).all() and np.array_equal(restored[~hole], np.asarray(result.input)[~hole])
    paths = result.save(tmp_path / "out")
    assert np.load(paths["w"]).shape == (G_NUM_WS, 8)
    assert Image.open(paths["gif"]).n_frames == 3 and Image.open(paths["loss"]).size[0] > 100
    assert json.loads(paths["json"].read_text())["steps"] == 4

    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["restore", str(photo), "--model", str(model), "--degradation", "downsample",
                              "--steps", "3", "--no-align", "--frame-every", "0", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert {"restored.png", "projection.png", "w.npy", "loss.png", "result.json"} <= {p.name for p in out.iterdir()}
    res = runner.invoke(app, ["restore", str(photo), "--model", str(model), "--degradation", "mask", "--no-align", "-o", str(out)])
    assert res.exit_code == 2 and "--rect" in res.output
    res = runner.invoke(app, ["restore", str(photo), "--model", str(model), "--degradation", "mask", "--rect", "0,0,64,64",
                              "--steps", "1", "--samples", "3", "--spread", "0.5", "--no-align", "-o", str(tmp_path / "spread"),
                              "--no-progress", "--frame-every", "0"])
    assert res.exit_code == 0, res.output
    spread_ws = np.load(tmp_path / "spread" / "sample_ws.npy")
    assert spread_ws.shape[0] == 3 and not np.allclose(spread_ws[1], spread_ws[0])  # samples 2..K start elsewhere
    res = runner.invoke(app, ["eval", "stylegan", "--model", str(model), "--data", str(faces), "--limit", "1",
                              "--steps", "1", "--samples", "2", "--spread", "0.25", "--json", str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "eval.json").read_text())["projection"]["gray"] == {"steps": 1, "samples": 2, "spread": 0.25}
    assert "spread 0.25 x W's RMS radius" in res.output

    from prism.restore.evaluate import evaluate_restoration
    report = evaluate_restoration(gen, faces, limit=2, batch_size=2, steps=3, samples=2, progress=False)
    assert report["count"] == 2 and report["task"] == "stylegan"
    assert report["projection"]["mask"] == {"steps": 3, "samples": 2, "spread": 0.0}  # as asked, the rest the card's
    assert report["model"] == str(model)  # the model as the user named it, not the run it came from
    assert set(report["rows"]) == {f"{d}: {k}" for d, b in (("gray", "gray input"), ("mask", "diffusion fill"),
                                                           ("downsample", "bicubic"))
                                   for k in ("restored", "one sample", "projection", f"baseline ({b})")}
    for row in report["rows"].values():
        assert set(row) == {"psnr", "ssim", "perceptual"} and all(math.isfinite(v) for v in row.values())
    # the bicubic baseline of a 4x reduction is closer to the truth than a random 3-step projection
    assert report["rows"]["downsample: baseline (bicubic)"]["psnr"] > report["rows"]["downsample: projection"]["psnr"]
    # the paired comparison agrees with the rows' means (mean of differences = difference of means)
    for d, b in (("gray", "gray input"), ("mask", "diffusion fill"), ("downsample", "bicubic")):
        gain, rows = report["vs_baseline"][d], report["rows"]
        assert gain["faces"] == 2 and 0 <= gain["psnr_wins"] <= 2
        assert math.isclose(gain["psnr_gain"], rows[f"{d}: restored"]["psnr"] - rows[f"{d}: baseline ({b})"]["psnr"],
                            abs_tol=1e-4)
    assert any(line.startswith("mask: restored vs diffusion fill") for line in report["notes"])
    assert "mask: projected from the mean w, 3 step(s), mean of 2 sample(s)" in report["notes"]


def test_paired_gain_is_the_mean_difference_with_its_standard_error():
    from prism.restore.evaluate import paired_gain
    restored = torch.tensor([[30.0, 0.9], [28.0, 0.8], [25.0, 0.7]])
    baseline = torch.tensor([[29.0, 0.85], [28.5, 0.8], [24.0, 0.6]])
    g = paired_gain(restored, baseline)  # PSNR differences 1, -0.5, 1: mean 0.5, sd 0.866
    assert g["faces"] == 3 and g["psnr_wins"] == 2 and g["ssim_wins"] == 2  # a tie is not a win
    assert math.isclose(g["psnr_gain"], 0.5) and math.isclose(g["psnr_gain_se"], 0.75 ** 0.5 / 3 ** 0.5)
    assert math.isclose(g["ssim_gain"], 0.05, abs_tol=1e-6)


G_NUM_WS = 6


# --- alignment ---------------------------------------------------------------------------------------------------------
def template_landmarks() -> np.ndarray:
    """68 points with eyes centred at (40, 50) and (80, 50), mouth corners at (45, 90) and (75, 90)."""
    lm = np.zeros((68, 2))
    ring = np.array([[-6, 0], [-3, -2], [3, -2], [6, 0], [3, 2], [-3, 2]])
    lm[36:42] = ring + [40, 50]
    lm[42:48] = ring + [80, 50]
    lm[48:60] = np.array([[45 + 30 * i / 11, 90 + 4 * math.sin(math.pi * i / 11)] for i in range(12)])
    lm[48], lm[54] = [45, 90], [75, 90]
    return lm


def similarity(points, angle_deg: float, scale: float, shift) -> np.ndarray:
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ rot.T * scale + shift


def test_ffhq_quad_math_on_synthetic_landmarks():
    lm = template_landmarks()
    quad = A.face_quad(lm)
    # by hand: eye-to-eye (40, 0), eye-to-mouth (0, 40) -> x = (80, 0), y = (0, 80), centre (60, 54)
    assert np.allclose(quad, [[-20, -26], [-20, 134], [140, 134], [140, -26]])
    eyes_mouth = np.array([[40, 50], [80, 50], [60, 90]])
    expected = np.array([[24, 30.4], [40, 30.4], [32, 46.4]])  # at 64 px
    assert np.allclose(A.to_aligned(eyes_mouth, quad, 64), expected)
    for angle, scale, shift in ((30, 1.7, (200, 40)), (-75, 0.6, (10, 300))):  # same face, moved
        moved = similarity(lm, angle, scale, shift)
        assert np.allclose(A.to_aligned(similarity(eyes_mouth, angle, scale, shift), A.face_quad(moved), 64), expected)
    tight = A.to_aligned(eyes_mouth, A.face_quad(lm, zoom=2.0, shift_y=0.1), 64)
    assert tight[1, 0] - tight[0, 0] == pytest.approx(32)  # twice the eye distance
    assert tight[2, 1] == pytest.approx(32 + (46.4 - 32) * 2 - 6.4)  # zoomed about the centre, then moved up 10 %
    with pytest.raises(ValueError, match="68"):
        A.face_quad(lm[:5])


def test_align_face_puts_marked_eyes_in_place():
    """A synthetic photo with a red dot on the left eye, a blue one on the right eye and a green one on
    the mouth, rotated by 25 degrees and near the border (exercising the padding): after alignment
    the dots sit where the math says, the eyes level."""
    lm = similarity(template_landmarks(), 25, 1.5, (40, -10))
    img = Image.new("RGB", (220, 200), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    centers = similarity(np.array([[40, 50], [80, 50], [60, 90]]), 25, 1.5, (40, -10))
    for (cx, cy), colour in zip(centers, [(255, 0, 0), (0, 0, 255), (0, 255, 0)]):
        draw.ellipse((cx - 12, cy - 12, cx + 12, cy + 12), fill=colour)  # ~3 px radius after alignment
    out = np.asarray(A.align_face(img, lm, 64)).astype(int)
    expected = [[24, 30.4], [40, 30.4], [32, 46.4]]
    for channel, others, (ex, ey) in ((0, (1, 2), expected[0]), (2, (0, 1), expected[1]), (1, (0, 2), expected[2])):
        dot = (out[..., channel] > 180) & (out[..., others[0]] < 90) & (out[..., others[1]] < 90)
        ys, xs = np.nonzero(dot)
        assert len(xs) > 3, channel
        assert abs(xs.mean() + 0.5 - ex) < 1.0 and abs(ys.mean() + 0.5 - ey) < 1.0, (channel, xs.mean(), ys.mean())


def test_missing_dlib_gives_install_hint(monkeypatch):
    monkeypatch.setattr(A, "_DETECTOR", {})
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(A.AlignmentUnavailable, match="pip install dlib-bin face-recognition-models"):
        A.detect_landmarks(Image.new("RGB", (64, 64)))


@pytest.mark.shared_data
def test_dlib_alignment_on_a_real_photo(shared_data):
    pytest.importorskip("dlib", reason="dlib-bin is not installed (optional: face alignment)")
    photo = Image.open(sorted((shared_data / "faces" / "celeba-hq-256").glob("*.jpg"))[0]).convert("RGB")
    rotated = photo.rotate(20, resample=Image.BICUBIC, expand=False, fillcolor=(90, 90, 90))
    aligned = A.align_photo(rotated, 128)
    lm = A.detect_landmarks(aligned)  # found again, now upright at the FFHQ place
    left, right = lm[A.LEFT_EYE].mean(0), lm[A.RIGHT_EYE].mean(0)
    assert abs(left[1] - right[1]) < 3  # level eyes although the photo was turned by 20 degrees
    assert abs((left + right)[0] / 2 - 64) < 5 and 50 < (left + right)[1] / 2 < 68
    assert 28 < right[0] - left[0] < 36  # a quarter of the width when the eyes set the scale
    with pytest.raises(A.FaceNotFound, match="--no-align"):
        A.detect_landmarks(Image.new("RGB", (128, 128), (120, 120, 120)))
