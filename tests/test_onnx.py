"""ONNX export: onnxruntime output matches PyTorch within 1e-4 at several sizes; the exported
file carries its card, so it colorizes through the same API and CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import prism
from prism.cli import app
from prism.modelio import save_model
from prism.nets.unet import UNet

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    net = UNet(depth=4, width=8, dropout=0.0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    net.eval()
    path = tmp_path_factory.mktemp("m")
    spec = {"arch": "unet", "in_channels": 1, "out_channels": 2, "depth": 4, "width": 8, "dropout": 0.0}
    save_model(path, {"G": net}, {"task": "colorize", "nets": {"G": spec}, "options": {"render_size": 64}})
    return path


def test_onnx_matches_pytorch_at_dynamic_sizes(model_dir, tmp_path):
    from prism.onnx_export import OnnxGenerator, export_onnx
    onnx_file = export_onnx(model_dir, tmp_path / "g.onnx", sample_size=64)
    torch_g = prism.load_model(model_dir).G
    onnx_g = OnnxGenerator(onnx_file)
    assert onnx_g.size_multiple == 16
    for shape in [(1, 1, 64, 64), (3, 1, 32, 80), (2, 1, 144, 48)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = torch_g(x)
        diff = (onnx_g(x) - ref).abs().max().item()
        assert diff < 1e-4, (shape, diff)


def test_onnx_model_colorizes_like_the_torch_model(model_dir, tmp_path, photo_folder):
    runner = CliRunner()
    onnx_file = tmp_path / "col.onnx"
    result = runner.invoke(app, ["export", "--format", "onnx", "--model", str(model_dir), "-o", str(onnx_file)])
    assert result.exit_code == 0, result.output
    gray = (np.random.default_rng(0).random((40, 56)) * 255).astype(np.uint8)
    onnx_colorizer = prism.load_model(onnx_file)
    assert onnx_colorizer.task == "colorize" and onnx_colorizer.render_size == 64
    a = np.asarray(prism.load_model(model_dir).colorize(gray), np.int16)
    b = np.asarray(onnx_colorizer.colorize(gray), np.int16)
    assert np.abs(a - b).max() <= 1 and np.abs(a[..., 0] - a[..., 2]).mean() > 1  # same colours, not gray
    out = tmp_path / "out"
    result = runner.invoke(app, ["colorize", str(photo_folder / "a"), "-o", str(out), "--model", str(model_dir),
                                 "--backend", "onnxruntime", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list(out.iterdir())) == len(list((photo_folder / "a").iterdir()))


def test_non_prism_onnx_file_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="not a PRISM ONNX export"):
        prism.load_model(path)
