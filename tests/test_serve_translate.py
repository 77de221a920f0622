"""Translation models in the service: a CycleGAN model gets its own endpoint and tab, answers
both directions at the input's size, and rejects an unknown direction with 422."""
from __future__ import annotations

import io

import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image

from prism.modelio import save_model
from prism.nets.resnet_generator import ResnetGenerator
from prism.serve import ServeConfig, create_app
from prism.serve.testing import encoded, photo

SPEC = {"arch": "resnet_generator", "in_channels": 3, "out_channels": 3, "ngf": 8, "n_blocks": 1}


def _tiny_cyclegan(path):
    torch.manual_seed(0)
    nets = {"G_AB": ResnetGenerator(**{k: v for k, v in SPEC.items() if k != "arch"}),
            "G_BA": ResnetGenerator(**{k: v for k, v in SPEC.items() if k != "arch"})}
    card = {"task": "cyclegan", "nets": {"G_AB": SPEC, "G_BA": SPEC},
            "options": {"directions": {"AtoB": "G_AB", "BtoA": "G_BA"}}}
    return save_model(path, nets, card)


def test_cyclegan_model_is_served_in_both_directions(tmp_path):
    _tiny_cyclegan(tmp_path / "monet")
    client = TestClient(create_app(ServeConfig(models_dir=tmp_path, bundled=False)))
    models = client.get("/v1/models").json()
    assert models["tasks"] == ["cyclegan"] and models["models"][0]["name"] == "monet"
    upload = encoded(photo(37, 53, gray=False))
    outs = {}
    for direction in ("AtoB", "BtoA"):
        r = client.post("/v1/cyclegan", files={"image": ("p.png", upload)}, data={"direction": direction})
        assert r.status_code == 200, r.text
        outs[direction] = np.asarray(Image.open(io.BytesIO(r.content)))
        assert outs[direction].shape == (37, 53, 3)  # the input's own size
    assert not np.array_equal(outs["AtoB"], outs["BtoA"])  # two different generators
    r = client.post("/v1/cyclegan", files={"image": ("p.png", upload)}, data={"direction": "sideways"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_options"
    assert client.post("/v1/colorize", files={"image": ("p.png", upload)}).status_code == 404  # no colorizer loaded
