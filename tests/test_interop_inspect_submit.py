"""`prism import` of reference CycleGAN checkpoints, `prism inspect` and `prism submit`."""
from __future__ import annotations

import functools
import os
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image, ImageOps
from typer.testing import CliRunner

from conftest import sample_photos
import prism
import prism.submit
from prism.cli import app
from prism.interop import ImportFormatError, import_pytorch_cyclegan
from prism.modelio import load_nets, save_model
from prism.nets.resnet_generator import ResnetGenerator
from prism.submit import write_submission

runner = CliRunner()




# --- the reference generator, as junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py builds it ------------
class RefResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias), norm_layer(dim),
                 nn.ReLU(True)]
        if use_dropout:
            block += [nn.Dropout(0.5)]
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, use_dropout=False, n_blocks=9, norm="instance"):
        super().__init__()
        norm_layer = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False) \
            if norm == "instance" else nn.BatchNorm2d
        use_bias = norm == "instance"  # norm_layer.func == nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 4
        for i in range(n_blocks):
            model += [RefResnetBlock(ngf * mult, norm_layer=norm_layer, use_dropout=use_dropout, use_bias=use_bias)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(int(ngf * mult / 2)), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


@pytest.mark.parametrize("n_blocks,norm", [(9, "instance"), (6, "instance"), (6, "batch")])
def test_import_reference_checkpoint_translates_exactly(tmp_path, n_blocks, norm):
    torch.manual_seed(n_blocks)
    reference = RefResnetGenerator(ngf=64, n_blocks=n_blocks, norm=norm)
    if norm == "batch":  # give the running statistics values that matter
        reference.train()(torch.randn(4, 3, 32, 32))
    reference.eval()
    state = reference.state_dict()
    if n_blocks == 6 and norm == "instance":  # PyTorch < 0.4 stored InstanceNorm running stats; dropped
        state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(64), torch.ones(64)
    torch.save(state, tmp_path / "latest_net_G_A.pth")
    out = tmp_path / "imported"
    result = runner.invoke(app, ["import", "--format", "pytorch-cyclegan", str(tmp_path / "latest_net_G_A.pth"),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output

    nets, card = load_nets(out)
    assert card["task"] == "cyclegan" and card["nets"]["G_AB"]["n_blocks"] == n_blocks
    assert card["nets"]["G_AB"]["ngf"] == 64 and card["nets"]["G_AB"]["norm"] == norm
    assert len(card["training"]["sha256"]) == 64
    x = torch.rand(2, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.equal(nets["G_AB"](x), reference(x))  # the same computation, bit for bit

    # ... and through the Translator: what the reference's test.py would save, rounded to 8 bits
    photo = np.random.default_rng(0).integers(0, 256, (36, 44, 3), dtype=np.uint8)
    translator = prism.load_model(out)
    with torch.no_grad():
        ref = reference(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255 * 2 - 1)[0]
    expected = (((ref + 1) / 2).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(translator.translate(photo)), expected)
    with pytest.raises(ValueError, match="translates AtoB only"):
        translator.translate(photo, "BtoA")


def test_import_refuses_what_is_not_a_generator_checkpoint(tmp_path):
    good = RefResnetGenerator(ngf=8, n_blocks=2).state_dict()
    cases = {
        "notes.pth": (b"just some text", "not a PyTorch state dict that loads without running code"),
        "code.pth": ({"x": os.getcwd}, "not a PyTorch state dict that loads without running code"),
        "model.pth": ([1, 2, 3], "expected a generator state dict"),
        "latest_net_D_A.pth": ({"model.0.weight": torch.zeros(64, 3, 4, 4), "model.0.bias": torch.zeros(64)},
                               "looks like a discriminator"),
        "unet.pth": ({"model.model.0.weight": torch.zeros(64, 3, 4, 4)}, "UnetGenerator"),
        "cut.pth": ({k: v for k, v in good.items() if k != "model.11.conv_block.5.bias"},
                    "missing model.11.conv_block.5.bias"),
        "shapes.pth": ({**good, "model.4.weight": torch.zeros(16, 8, 5, 5)}, r"wrong shape model.4.weight \(16, 8, 5, 5\)"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
        with pytest.raises(ImportFormatError, match=message) as err:
            import_pytorch_cyclegan(path, tmp_path / "out")
        assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["import", "--format", "pytorch-cyclegan", str(tmp_path / "notes.pth"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "notes.pth" in result.output and "state dict" in result.output
    result = runner.invoke(app, ["import", "--format", "tensorflow", str(tmp_path / "notes.pth"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown import format 'tensorflow'" in result.output


# --- submit ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def painter(tmp_path_factory):
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=1)
    card = {"task": "cyclegan", "nets": {"G_AB": {"arch": "resnet_generator", "ngf": 4, "n_blocks": 1}},
            "options": {"directions": {"AtoB": "G_AB"}}}
    return save_model(tmp_path_factory.mktemp("painter"), {"G_AB": net}, card)


@pytest.fixture
def three_photos(tmp_path):
    rng = np.random.default_rng(1)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(sample_photos()[0][:256, 100:356]).save(photos / "a.jpg", quality=95)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(photos / "b.png")  # not square
    Image.fromarray(rng.integers(0, 256, (256, 256), dtype=np.uint8)).save(photos / "c.png")  # gray
    (photos / "d.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return photos


def test_submission_zip(painter, three_photos, tmp_path):
    out = tmp_path / "sub" / "images.zip"
    path, skipped = write_submission(prism.load_model(painter), three_photos, 13, out, min_count=1, progress=False)
    assert path == out and [p.name for p, _ in skipped] == ["d.jpg"]
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert names == [f"{i:05d}.jpg" for i in range(13)]
        assert len({zf.read(n) for n in names}) == 13  # 4+ passes over 3 readable photos, no duplicate
        images = [Image.open(zf.open(n)) for n in names]
    assert all(im.format == "JPEG" and im.size == (256, 256) and im.mode == "RGB" for im in images)
    # the second pass through the folder translates the photos mirrored: no duplicate of image 0
    mirrored = prism.load_model(painter).translate(ImageOps.mirror(Image.open(three_photos / "a.jpg")))
    with zipfile.ZipFile(out) as zf:
        assert zf.read("00003.jpg") == prism.submit._jpeg(mirrored) != zf.read("00000.jpg")
    assert [p.name for p in out.parent.iterdir()] == ["images.zip"]  # no temporary file left


def test_submit_cli_checks_count_and_writes_zip(painter, three_photos, tmp_path, monkeypatch):
    out = tmp_path / "images.zip"
    args = ["submit", "--model", str(painter), "--photos", str(three_photos), "-o", str(out), "--no-progress"]
    result = runner.invoke(app, [*args, "--count", "50"])
    assert result.exit_code == 2 and "between 7,000 and 10,000" in result.output and not out.exists()
    result = runner.invoke(app, [*args, "--count", "10001"])
    assert result.exit_code == 2 and not out.exists()
    monkeypatch.setattr(prism.submit, "KAGGLE_MIN", 2)  # the rest of the command at a size a test can afford
    result = runner.invoke(app, [*args, "--count", "4"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "d.jpg" in result.output
    assert len(zipfile.ZipFile(out).namelist()) == 4


# --- inspect -------------------------------------------------------------------------------------------------------
def test_inspect_two_folders(photo_folder, three_photos, tmp_path):
    plot = tmp_path / "plots" / "data.png"
    result = runner.invoke(app, ["inspect", str(photo_folder / "a"), str(three_photos), "-o", str(plot), "--no-progress"],
                           env={"COLUMNS": "300"})  # rich wraps long paths at 80 columns
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row_a = next(line for line in lines if str(photo_folder / "a") in line and "│" in line)
    assert [c.strip() for c in row_a.split("│")[2:5]] == ["12", "12", "0"]  # files, readable, unreadable
    row_p = next(line for line in lines if str(three_photos) in line and "│" in line)
    assert [c.strip() for c in row_p.split("│")[2:5]] == ["4", "3", "1"]
    assert "RGB (2)" in row_p and "L (1)" in row_p and "256x256 (2)" in row_p
    assert "unreadable" in result.output and "d.jpg" in result.output
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width > im.height > 200
    result = runner.invoke(app, ["inspect", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such file or folder" in result.output
