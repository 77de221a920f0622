"""OASIS models in the service: label maps in (ids or colours), photos of the same size out,
exactly what `Synthesizer.synthesize` draws for the seed; bad label maps are a 422."""
from __future__ import annotations

import io
import shutil

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

import prism
from prism.data.labels import read_label
from prism.serve import ServeConfig, create_app
from prism.serve.service import Service
from prism.serve.testing import encoded
from prism.serve.ui import build_blocks
from test_oasis import random_model, scenes  # noqa: F401  (fixtures: synthetic scenes, a tiny OASIS model)


def _post(client, upload: bytes, **options):
    return client.post("/v1/oasis", files={"image": ("map.png", upload)}, data={k: str(v) for k, v in options.items()})


def test_oasis_model_is_served(random_model, scenes, tmp_path):
    shutil.copytree(random_model, tmp_path / "models" / "scenes")
    client = TestClient(create_app(ServeConfig(models_dir=tmp_path / "models", bundled=False)))
    models = client.get("/v1/models").json()
    assert models["tasks"] == ["oasis"] and models["models"][0]["name"] == "scenes"

    synth = prism.load_model(random_model)
    label_file = scenes / "labels" / "0.png"
    label, _ = read_label(label_file, synth.table)
    r = _post(client, label_file.read_bytes(), seed=3)
    assert r.status_code == 200, r.text
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    assert out.shape == (40, 72, 3) and np.array_equal(out, np.asarray(synth.synthesize(label, seed=3)))
    other = np.asarray(Image.open(io.BytesIO(_post(client, label_file.read_bytes(), seed=4).content)))
    assert np.abs(out.astype(int) - other).mean() > 1  # the seed reaches the image

    # the same map colour-coded in the model's palette (don't-care black: matches no class)
    palette = np.zeros((256, 3), np.uint8)
    palette[:3] = [c.colour for c in synth.table.classes]
    r = _post(client, encoded(palette[label]), seed=3, label_format="colour")
    assert r.status_code == 200, r.text
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), out)

    r = _post(client, encoded(np.full((8, 8), 99, np.uint8)))
    assert r.status_code == 422 and r.json()["error"] == "invalid_label_map" and "label ids [99]" in r.json()["message"]
    r = _post(client, encoded(palette[label]))  # colours sent as ids
    assert r.status_code == 422 and "colour format" in r.json()["message"]
    for bad in ({"seed": -1}, {"label_format": "kitti"}):
        r = _post(client, label_file.read_bytes(), **bad)
        assert r.status_code == 422 and r.json()["error"] == "invalid_options"

    config = build_blocks(Service.create(ServeConfig(models_dir=tmp_path / "models", bundled=False))).get_config_file()
    kinds = {(x["type"], x["props"].get("elem_id")) for x in config["components"]}
    assert {("tabitem", "tab-oasis"), ("number", "oasis-seed"), ("dropdown", "oasis-label_format")} <= kinds
