"""Inference: the Colorizer predictor, the `prism` CLI (colorize, export, models) and model files."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import kornia.color as kc
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import prism
from prism.cli import app
from prism.modelio import ModelError, bundled_models, resolve, save_model
from prism.nets.unet import UNet
from prism.tasks.colorize import Colorizer

G_SPEC = {"arch": "unet", "in_channels": 1, "out_channels": 2, "depth": 3, "width": 8, "dropout": 0.0}
CARD = {"task": "colorize", "nets": {"G": G_SPEC}, "options": {"render_size": 64}}


# --- fixtures and helpers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny untrained colorizer whose weights are perturbed so it predicts clearly visible chroma."""
    torch.manual_seed(0)
    net = UNet(in_channels=1, out_channels=2, depth=3, width=8, dropout=0.0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return save_model(tmp_path_factory.mktemp("model"), {"G": net}, CARD)


@pytest.fixture(scope="module")
def colorizer(model_dir) -> Colorizer:
    return prism.load_model(model_dir)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth color content with some texture: HxWx3 uint8."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 12, (h, w, 3))
    base = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1),
                     128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)], axis=2)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _lab(rgb_uint8: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(rgb_uint8)[..., :3].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return kc.rgb_to_lab(t)[0]


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int16)


def _squash(text: str) -> str:
    """Rich wraps long lines (and paths) to the console width: compare without whitespace."""
    return re.sub(r"\s+", "", text)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


runner = CliRunner()


# --- the model fixture itself ------------------------------------------------------------------------------
def test_model_dir_holds_no_pickles(model_dir):
    assert sorted(p.name for p in model_dir.iterdir()) == ["README.md", "card.json", "model.safetensors"]
    card = json.loads((model_dir / "card.json").read_text())
    assert card["task"] == "colorize" and card["nets"]["G"] == G_SPEC and card["format"] == "prism-model-1"


def test_load_model_never_unpickles(model_dir, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("load_model must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    c = prism.load_model(model_dir)
    assert isinstance(c, Colorizer) and c.render_size == 64 and c.multiple == 8
    assert not c.G.training


# --- Colorizer ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("w,h", [(50, 37), (64, 64), (300, 200), (37, 50), (1, 9)])
def test_output_has_input_size(colorizer, w, h):
    out = colorizer.colorize(Image.fromarray(_photo(h, w)))
    assert out.size == (w, h) and out.mode == "RGB"


def test_output_is_colored(colorizer):
    lab = _lab(np.asarray(colorizer.colorize(_photo(40, 60).mean(2).astype(np.uint8))))
    assert lab[1:].abs().mean() > 3  # the tiny model predicts visible chroma


def test_render_input_long_side_and_padding(colorizer):
    for H, W in [(200, 300), (37, 50), (64, 64), (1, 9)]:
        x, (h, w) = colorizer._render_input(torch.rand(H, W))
        assert max(h, w) == 64 and x.shape[0] == 1
        assert x.shape[1] % 8 == 0 and x.shape[2] % 8 == 0
        assert x.shape[1] - h < 8 and x.shape[2] - w < 8


def _check_lightness(inp_rgb_uint8: np.ndarray, out: Image.Image, tol: float = 1.5):
    L_in, L_out = _lab(inp_rgb_uint8)[0], _lab(np.asarray(out))[0]
    assert L_in.shape == L_out.shape
    assert (L_in - L_out).abs().mean() < tol


def test_mode_L(colorizer):
    gray = _photo(37, 50).mean(2).astype(np.uint8)
    out = colorizer.colorize(Image.fromarray(gray, "L"))
    assert out.size == (50, 37) and out.mode == "RGB"
    _check_lightness(np.repeat(gray[..., None], 3, 2), out)


def test_mode_RGB_is_recolorized_from_its_lightness(colorizer):
    rgb = _photo(37, 50)
    out = colorizer.colorize(Image.fromarray(rgb))
    _check_lightness(rgb, out)
    # a colour photo and its gray version give the same result: only lightness is used
    gray_same_L = np.asarray(colorizer.colorize(Image.fromarray(rgb), saturation=0.0))
    again = colorizer.colorize(gray_same_L)
    assert np.abs(_arr(out) - _arr(again)).mean() < 1.0


def test_mode_RGBA_alpha_preserved_exactly(colorizer):
    rgb = _photo(37, 50)
    alpha = np.random.default_rng(3).integers(0, 256, (37, 50), dtype=np.uint8)
    out = colorizer.colorize(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    assert out.mode == "RGBA" and out.size == (50, 37)
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)
    _check_lightness(rgb, out.convert("RGB"))


def test_mode_P_with_and_without_transparency(colorizer):
    src = Image.fromarray(_photo(37, 50)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    out = colorizer.colorize(src)
    assert out.mode == "RGB" and out.size == (50, 37)
    _check_lightness(np.asarray(src.convert("RGB")), out)
    src.info["transparency"] = int(np.asarray(src)[0, 0])
    out = colorizer.colorize(src)
    assert out.mode == "RGBA"
    expected_alpha = np.asarray(src.convert("RGBA"))[..., 3]
    assert expected_alpha.min() == 0 and expected_alpha.max() == 255
    np.testing.assert_array_equal(np.asarray(out)[..., 3], expected_alpha)


def test_mode_I16(colorizer):
    gray8 = _photo(37, 50, seed=4).mean(2)
    arr16 = (gray8 / 255 * 65535).astype(np.uint16)
    img = Image.fromarray(arr16)
    assert img.mode == "I;16"
    out = colorizer.colorize(img)
    assert out.size == (50, 37) and out.mode == "RGB"
    _check_lightness(np.repeat(np.round(arr16 / 257.0).astype(np.uint8)[..., None], 3, 2), out)


@pytest.mark.parametrize("kind", ["u8_gray", "u16_gray", "float_gray", "u8_rgb", "float_rgb", "u8_rgba"])
def test_numpy_inputs(colorizer, kind):
    rgb = _photo(37, 50, seed=2)
    gray = rgb.mean(2).astype(np.uint8)
    arr, ref = {
        "u8_gray": (gray, np.repeat(gray[..., None], 3, 2)),
        "u16_gray": (gray.astype(np.uint16) * 257, np.repeat(gray[..., None], 3, 2)),
        "float_gray": (gray / 255.0, np.repeat(gray[..., None], 3, 2)),
        "u8_rgb": (rgb, rgb),
        "float_rgb": (rgb.astype(np.float32) / 255, rgb),
        "u8_rgba": (np.dstack([rgb, np.full((37, 50), 77, np.uint8)]), rgb),
    }[kind]
    out = colorizer.colorize(arr)
    assert out.size == (50, 37)
    assert out.mode == ("RGBA" if kind == "u8_rgba" else "RGB")
    if kind == "u8_rgba":
        assert (np.asarray(out)[..., 3] == 77).all()
    _check_lightness(ref, out)
    # the same picture as a PIL image gives the same colors
    same = colorizer.colorize(Image.fromarray(ref))
    assert np.abs(_arr(out)[..., :3] - _arr(same)).max() <= 1


def test_file_path_input(colorizer, tmp_path):
    rgb = _photo(30, 41)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    a = colorizer.colorize(tmp_path / "x.png")
    b = colorizer.colorize(str(tmp_path / "x.png"))
    c = colorizer.colorize(Image.fromarray(rgb))
    assert a.size == (41, 30)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def test_lightness_detail_at_full_resolution(colorizer):
    """Fine detail far above the render size survives: output L follows the input pixel by pixel."""
    rng = np.random.default_rng(9)
    gray = rng.integers(40, 216, (200, 300), dtype=np.uint8)  # per-pixel noise, render size is 64
    out = colorizer.colorize(gray)
    L_in, L_out = _lab(np.repeat(gray[..., None], 3, 2))[0], _lab(np.asarray(out))[0]
    assert (L_in - L_out).abs().mean() < 1.5
    assert torch.corrcoef(torch.stack([L_in.flatten(), L_out.flatten()]))[0, 1] > 0.99


def test_saturation_zero_is_gray_and_two_is_more_vivid(colorizer):
    rgb = _photo(37, 50)
    gray = np.asarray(colorizer.colorize(rgb, saturation=0.0))
    lab0 = _lab(gray)
    assert lab0[1:].abs().max() < 1.0
    assert np.abs(gray.astype(int) - gray[..., :1].astype(int)).max() <= 1  # R = G = B within a level
    _check_lightness(rgb, Image.fromarray(gray))
    c1 = _lab(np.asarray(colorizer.colorize(rgb, saturation=1.0)))[1:].abs().mean()
    c2 = _lab(np.asarray(colorizer.colorize(rgb, saturation=2.0)))[1:].abs().mean()
    assert c1 > 3 and c2 > 1.3 * c1


def test_card_chroma_gain_multiplies_with_saturation(model_dir, tmp_path):
    """A card's calibrated chroma gain g: saturation s renders as s x g, so s = 1 is the model's own."""
    import json
    import shutil
    gained = tmp_path / "gained"
    shutil.copytree(model_dir, gained)
    card = json.loads((gained / "card.json").read_text())
    card["options"]["chroma_gain"] = 1.5
    (gained / "card.json").write_text(json.dumps(card))
    plain, boosted = prism.load_model(model_dir), prism.load_model(gained)
    rgb = _photo(37, 50)
    assert np.array_equal(np.asarray(boosted.colorize(rgb, saturation=1.0)), np.asarray(plain.colorize(rgb, saturation=1.5)))
    assert np.array_equal(np.asarray(boosted.colorize(rgb, saturation=0.0)), np.asarray(plain.colorize(rgb, saturation=0.0)))


@pytest.mark.parametrize("bad", [-0.1, 2.01, float("nan"), 5])
def test_saturation_out_of_range_raises(colorizer, bad):
    with pytest.raises(ValueError, match="saturation"):
        colorizer.colorize(_photo(8, 8), saturation=bad)
    with pytest.raises(ValueError, match="saturation"):
        colorizer.colorize_batch([_photo(8, 8)], saturation=bad)


def test_colorize_batch_mixed_sizes_matches_single(colorizer):
    sizes = [(37, 50), (64, 64), (50, 37), (37, 50), (20, 30), (37, 50)]
    imgs = [_photo(h, w, seed=i) for i, (h, w) in enumerate(sizes)]
    imgs[1] = Image.fromarray(imgs[1]).convert("L")
    imgs[4] = np.dstack([imgs[4], np.full(imgs[4].shape[:2], 200, np.uint8)])
    singles = [colorizer.colorize(img, saturation=1.3) for img in imgs]
    for batch_size in (2, 8):
        outs = colorizer.colorize_batch(imgs, saturation=1.3, batch_size=batch_size)
        assert len(outs) == len(imgs)
        for out, single, (h, w) in zip(outs, singles, sizes):
            assert out.size == (w, h) and out.mode == single.mode
            assert np.abs(_arr(out) - _arr(single)).max() <= 1
    assert colorizer.colorize_batch([]) == []


# --- CLI: colorize -------------------------------------------------------------------------------------------
@pytest.fixture()
def input_tree(tmp_path) -> Path:
    root = tmp_path / "in"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    Image.fromarray(_photo(30, 40, 1)).save(root / "top.jpg", quality=90)
    Image.fromarray(_photo(33, 21, 2).mean(2).astype(np.uint8)).save(root / "a" / "gray.png")
    Image.fromarray(np.dstack([_photo(25, 25, 3), np.full((25, 25), 90, np.uint8)]), "RGBA").save(
        root / "a" / "deep" / "alpha.png")
    Image.fromarray(_photo(40, 30, 4)).save(root / "b" / "pic.JPG")
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_colorize_mirrors_folder_structure(model_dir, input_tree, tmp_path):
    before = {p: _sha(p) for p in input_tree.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    res = _invoke("colorize", input_tree, "-o", out, "--model", model_dir, "--no-progress")
    assert res.exit_code == 0, res.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a/deep/alpha.png", "a/gray.png", "b/pic.JPG", "top.jpg"]
    for rel in written:
        src, dst = Image.open(input_tree / rel), Image.open(out / rel)
        assert dst.size == src.size
    assert Image.open(out / "a/deep/alpha.png").mode == "RGBA"
    assert (np.asarray(Image.open(out / "a/deep/alpha.png"))[..., 3] == 90).all()
    assert {p: _sha(p) for p in input_tree.rglob("*") if p.is_file()} == before
    assert "4 image(s) written" in res.output
    assert str(out.resolve()) in _squash(res.output)


def test_cli_colorize_into_the_input_folder_never_overwrites(model_dir, input_tree):
    before = {p: _sha(p) for p in input_tree.rglob("*") if p.is_file()}
    res = _invoke("colorize", input_tree, "-o", input_tree, "--model", model_dir, "--no-progress")
    assert res.exit_code == 0, res.output
    after = {p for p in input_tree.rglob("*") if p.is_file()}
    assert {p: _sha(p) for p in before} == before  # originals byte-identical
    new = sorted(str(p.relative_to(input_tree)) for p in after - set(before))
    assert new == ["a/deep/alpha_prism.png", "a/gray_prism.png", "b/pic_prism.JPG", "top_prism.jpg"]
    assert Image.open(input_tree / "a/gray_prism.png").size == (21, 33)
    assert not [p for p in after if p.name.startswith(".")]  # no temporary files left behind


def test_cli_colorize_single_file_next_to_itself(model_dir, input_tree):
    src = input_tree / "top.jpg"
    sha = _sha(src)
    res = _invoke("colorize", src, "-o", input_tree, "--model", model_dir, "--no-progress")
    assert res.exit_code == 0, res.output
    assert _sha(src) == sha and (input_tree / "top_prism.jpg").is_file()


def test_cli_colorize_never_overwrites_another_input(model_dir, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(_photo(20, 24, 5)).convert("P").save(folder / "scan.gif")
    Image.fromarray(_photo(20, 24, 6)).save(folder / "scan.png")
    sha = _sha(folder / "scan.png")
    res = _invoke("colorize", folder / "scan.gif", folder / "scan.png", "-o", folder, "--model", model_dir,
                  "--no-progress")
    assert res.exit_code == 0, res.output
    assert _sha(folder / "scan.png") == sha


def test_run_on_files_reports_the_paths_it_wrote(colorizer, tmp_path):
    from prism.infer import run_on_files
    folder = tmp_path / "in"
    folder.mkdir()
    rgba = np.dstack([_photo(20, 24, 7), np.full((20, 24), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "logo.jpg", format="PNG")  # a PNG with alpha named .jpg
    Image.fromarray(_photo(20, 24, 8)).save(folder / "photo.jpg")
    report = run_on_files([folder], tmp_path / "out", colorizer.colorize_batch, progress=False)
    assert report.failed == [] and len(report.written) == 2
    on_disk = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert sorted(report.written) == on_disk


def test_cli_colorize_reports_corrupt_file_and_exits_1(model_dir, input_tree, tmp_path):
    bad = input_tree / "a" / "broken.jpg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    empty = input_tree / "b" / "empty.png"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    res = _invoke("colorize", input_tree, "-o", out, "--model", model_dir, "--no-progress", "--batch-size", "2")
    assert res.exit_code == 1, res.output
    text = _squash(res.output)
    assert _squash(f"{bad}: not an image file PIL can read") in text
    assert _squash(f"{empty}: empty file (0 bytes)") in text
    assert "2failed" in text
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a/deep/alpha.png", "a/gray.png", "b/pic.JPG", "top.jpg"]


def test_cli_colorize_missing_input_exits_2(model_dir, tmp_path):
    missing = tmp_path / "no-such-folder"
    out = tmp_path / "out"
    res = _invoke("colorize", missing, "-o", out, "--model", model_dir, "--no-progress")
    assert res.exit_code == 2
    assert "error" in res.output and _squash(f"{missing}: no such file or folder") in _squash(res.output)
    assert not out.exists()


def test_cli_colorize_unknown_model_lists_bundled(tmp_path, input_tree):
    res = _invoke("colorize", input_tree, "-o", tmp_path / "out", "--model", "no-such-model", "--no-progress")
    assert res.exit_code == 2
    text = _squash(res.output)
    assert "model'no-such-model'notfound" in text and "bundledmodelname" in text
    names = bundled_models()
    for name in names:
        assert name in text
    if not names:
        assert "(noneinstalled)" in text
    assert not (tmp_path / "out").exists()


def test_cli_colorize_saturation_and_render_size_options(model_dir, input_tree, tmp_path):
    res = _invoke("colorize", input_tree / "top.jpg", "-o", tmp_path / "g", "--model", model_dir,
                  "--saturation", "0", "--render-size", "32", "--no-progress")
    assert res.exit_code == 0, res.output
    lab = _lab(np.asarray(Image.open(tmp_path / "g" / "top.jpg")))
    assert lab[1:].abs().mean() < 2.0  # gray up to JPEG noise
    res = _invoke("colorize", input_tree / "top.jpg", "-o", tmp_path / "x", "--model", model_dir,
                  "--saturation", "3", "--no-progress")
    assert res.exit_code == 2 and not (tmp_path / "x").exists()


def test_cli_models_lists_bundled():
    res = _invoke("models")
    assert res.exit_code == 0
    assert "bundled" in res.output
    for name in bundled_models():
        assert name in res.output


# --- CLI: export ---------------------------------------------------------------------------------------------
def test_cli_export_half(model_dir, colorizer, tmp_path):
    from safetensors import safe_open
    out = tmp_path / "half"
    res = _invoke("export", "--model", model_dir, "-o", out, "--half")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "card.json", "model.safetensors"]
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    floats = {k: v for k, v in dtypes.items() if "num_batches_tracked" not in k}
    assert floats and set(floats.values()) == {"F16"}
    assert (out / "model.safetensors").stat().st_size < 0.6 * (model_dir / "model.safetensors").stat().st_size
    assert json.loads((out / "card.json").read_text())["nets"] == CARD["nets"]
    half = prism.load_model(out)
    assert isinstance(half, Colorizer) and next(half.G.parameters()).dtype == torch.float32
    img = _photo(37, 50)
    a, b = _arr(colorizer.colorize(img)), _arr(half.colorize(img))
    assert np.abs(a - b).max() <= 4 and np.abs(a - b).mean() < 0.5


def test_cli_export_unknown_model_exits_2(tmp_path):
    res = _invoke("export", "--model", tmp_path / "nothing", "-o", tmp_path / "out")
    assert res.exit_code == 2 and "notfound" in _squash(res.output)
    assert not (tmp_path / "out").exists()


# --- modelio.resolve ---------------------------------------------------------------------------------------
def test_resolve_model_dir(model_dir):
    assert resolve(model_dir) == ("model", model_dir)
    assert resolve(str(model_dir)) == ("model", model_dir)


def test_resolve_plain_directory_raises_model_error(tmp_path):
    plain = tmp_path / "just-a-folder"
    plain.mkdir()
    (plain / "weights.pt").write_bytes(b"x")
    with pytest.raises(ModelError) as info:
        resolve(plain)
    msg = str(info.value)
    assert str(plain) in msg and "card.json" in msg and "config.yaml" in msg
    with pytest.raises(ModelError, match="not found"):
        resolve(tmp_path / "missing")


def test_resolve_run_dir(tmp_path):
    (tmp_path / "config.yaml").write_text("task: colorize\n")
    assert resolve(tmp_path) == ("run", tmp_path)


# --- precision: one mechanism for every task's predictor ------------------------------------------------------
def test_bf16_precision_wraps_the_network_and_stays_close(model_dir):
    import prism
    photo = _photo(40, 56)
    fp32 = prism.load_model(str(model_dir)).colorize(photo)
    low = prism.load_model(str(model_dir), precision="bf16")
    assert low.precision == "bf16"
    out = low.G(torch.zeros(1, 1, 32, 32))
    assert out.dtype == torch.float32  # autocast inside, float32 back to the predictor
    diff = np.abs(_arr(low.colorize(photo)).astype(int) - _arr(fp32).astype(int))
    assert diff.mean() < 2 and (diff > 0).any()  # bf16 really ran, and stayed close


def test_precision_errors_name_the_fix(model_dir):
    import prism
    with pytest.raises(ValueError, match="CUDA"):
        prism.load_model(str(model_dir), precision="fp16")  # fp16 without a GPU
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        prism.load_model(str(model_dir), precision="int8")
    result = _invoke("colorize", str(model_dir), "-m", str(model_dir), "--precision", "fp16")
    assert result.exit_code == 2 and "CUDA" in _squash(result.output)


# --- CLI: what a newcomer reads (issue 22) ----------------------------------------------------------
def test_cli_colorize_nothing_written_announces_no_folder(model_dir, tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"not a jpeg at all")
    out = tmp_path / "out2"
    res = _invoke("colorize", bad, "-o", out, "--model", model_dir, "--no-progress")
    assert res.exit_code == 1
    assert "0 image(s) written," in res.output and "1 failed" in res.output
    assert str(out) not in _squash(res.output) and not out.exists()


def test_cli_colorize_progress_bar_shows_ok_and_failed_apart(model_dir, input_tree, tmp_path):
    for name in ("bad1.jpg", "bad2.png"):
        (input_tree / name).write_bytes(b"garbage")
    res = _invoke("colorize", input_tree, "-o", tmp_path / "out", "--model", model_dir, "--progress")
    assert res.exit_code == 1
    assert "4 ok, 2 failed" in res.output  # the bar's last state: 6/6 done, not 6 written


def test_cli_colorize_rerun_counts_replaced_and_skip_existing_leaves_them(model_dir, input_tree, tmp_path):
    out = tmp_path / "out"
    assert _invoke("colorize", input_tree, "-o", out, "--model", model_dir, "--no-progress").exit_code == 0
    res = _invoke("colorize", input_tree, "-o", out, "--model", model_dir, "--no-progress")
    assert res.exit_code == 0 and "4 replaced" in res.output
    first = out / "top.jpg"
    first.write_bytes(b"kept")  # an earlier output: --skip-existing must not touch it
    (out / "b" / "pic.JPG").unlink()  # the one that an interruption did not write
    res = _invoke("colorize", input_tree, "-o", out, "--model", model_dir, "--no-progress", "--skip-existing")
    assert res.exit_code == 0, res.output
    assert "1 image(s) written" in res.output and "3 already there" in res.output
    assert first.read_bytes() == b"kept" and (out / "b" / "pic.JPG").is_file()


def test_cli_train_help_shows_overrides_and_sections():
    from prism.cli import CONFIG_SECTIONS
    from prism.tasks import TASKS, TRAINER_DEFAULTS, task_class
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "[OPTIONS] [SECTION.KEY=VALUE]..." in res.output and "train.steps=2000" in res.output
    listed = {s for names in CONFIG_SECTIONS.values() for s in names}
    actual = set(TRAINER_DEFAULTS) | {k for t in TASKS for k in task_class(t).defaults}
    assert listed == actual  # the help lists exactly the sections a config can have


@pytest.mark.parametrize("command", ["colorize", "train", "eval", "serve", "models"])
def test_cli_flags_read_as_flags(command):
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--help" in res.output
    assert "<bool>" not in res.output


def test_cli_models_lists_saved_models_with_headline(model_dir, tmp_path):
    import shutil
    folder = tmp_path / "my-models"
    shutil.copytree(model_dir, folder / "tiny")
    res = runner.invoke(app, ["models", "--models", str(folder)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "tiny" in res.output and "saved" in res.output and "colorize" in res.output
    from prism.modelio import CHECKOUT_MODELS_DIR, saved_models
    res = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    for path in saved_models(CHECKOUT_MODELS_DIR):  # run from a checkout: models/ is listed by default
        assert path.name in res.output
    assert runner.invoke(app, ["models", "--models", str(tmp_path / "nope")]).exit_code == 2


def test_headline_prefers_evaluation_then_best_then_metrics():
    from prism.modelio import headline
    assert headline({"evaluation": {"count": 9, "rows": {"model": {"psnr": 25.0}}}}) == "psnr 25 (eval, 9 images)"
    assert headline({"best": {"value": 0.5, "step": 3, "metric": "miou"}}) == "miou 0.5 (val, step 3)"
    assert headline({"best": {"value": None}, "metrics": {"fid": 12.0}}) == "fid 12 (last val)"
    assert headline({}) == "-"
