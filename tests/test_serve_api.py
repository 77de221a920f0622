"""The service's REST API (prism.serve) through FastAPI's TestClient: every endpoint, every error
code, the safety rules (names never reach the file system, no pickles, limits before decoding),
the CLI entry point, the web app's tabs, and a schemathesis run against the OpenAPI schema."""
from __future__ import annotations

import base64
import io
import os
import pickle
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

import prism
from prism import modelio
from prism.data.images import read_image_bytes
from prism.serve import ServeConfig, create_app
from prism.serve.errors import QueueFull
from prism.serve.metrics import _quantile
from prism.serve.models import ModelStore, ServedModel
from prism.serve.pool import InferencePool
from prism.serve.testing import encoded, photo, png_header_only, save_tiny_colorizer
from prism.serve.uploads import safe_stem


# --- fixtures and helpers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_tiny_colorizer(root / "tiny")
    return root


def make_app(models_dir: Path, **config):
    # bundled=False: these tests must not depend on whether the bundled model is installed yet
    return create_app(ServeConfig(models_dir=models_dir, bundled=False, ui_path="", **config))


@pytest.fixture(scope="module")
def client(models_dir):
    with TestClient(make_app(models_dir)) as c:
        yield c


def post_images(client, *images: bytes, names=None, data=None, headers=None):
    names = names or [f"photo{i}.png" for i in range(len(images))]
    return client.post("/v1/colorize", files=[("image", (n, b)) for n, b in zip(names, images)],
                       data=data or {}, headers=headers or {})


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def assert_error(r, status: int, code: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and body["status"] == status and body["message"], body
    return body


GRAY = encoded(photo(48, 64))


# --- POST /v1/colorize ----------------------------------------------------------------------------------
def test_colorize_returns_the_same_image_as_the_python_api(client, models_dir):
    r = post_images(client, GRAY, data={"saturation": "1.5"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-prism-model"] == "tiny" and 'filename="photo0-colorized.png"' in r.headers["content-disposition"]
    got = decode(r.content)
    want = np.asarray(prism.load_model(models_dir / "tiny").colorize(read_image_bytes(GRAY), saturation=1.5))
    assert got.shape == (48, 64, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.abs(got[..., 0].astype(int) - got[..., 2].astype(int)).mean() > 2  # really coloured


def test_saturation_zero_gives_gray(client):
    out = decode(post_images(client, GRAY, data={"saturation": "0"}).content).astype(int)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 2 and np.abs(out[..., 1] - out[..., 2]).max() <= 2


@pytest.mark.parametrize("data,headers,media_type", [
    ({}, {}, "image/png"),
    ({"format": "jpeg"}, {}, "image/jpeg"),
    ({}, {"Accept": "image/jpeg"}, "image/jpeg"),
    ({"format": "png"}, {"Accept": "image/jpeg"}, "image/png"),   # the explicit field wins
    ({}, {"Accept": "image/webp, image/jpeg;q=0.5"}, "image/jpeg"),
])
def test_output_format_by_field_or_accept_header(client, data, headers, media_type):
    r = post_images(client, GRAY, data=data, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == media_type
    assert Image.open(io.BytesIO(r.content)).format == media_type.split("/")[1].upper()


def test_several_images_come_back_as_json_with_base64(client):
    color = encoded(photo(30, 40, seed=1, gray=False), "JPEG")
    r = post_images(client, GRAY, color, names=["../../a b.png", "x.jpg"], data={"format": "jpeg"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["task"] == "colorize" and body["model"] == "tiny"
    assert [i["filename"] for i in body["images"]] == ["a_b-colorized.jpg", "x-colorized.jpg"]
    sizes = [decode(base64.b64decode(i["data"])).shape[:2] for i in body["images"]]
    assert sizes == [(48, 64), (30, 40)] and [(i["height"], i["width"]) for i in body["images"]] == sizes


def test_accept_json_gives_json_for_one_image(client):
    r = post_images(client, GRAY, headers={"Accept": "application/json"})
    assert r.status_code == 200 and len(r.json()["images"]) == 1


def test_alpha_is_kept_in_png_and_flattened_in_jpeg(client):
    rgba = np.dstack([photo(32, 32, gray=False), np.full((32, 32), 128, np.uint8)])
    assert decode(post_images(client, encoded(rgba)).content).shape == (32, 32, 4)
    assert decode(post_images(client, encoded(rgba), data={"format": "jpeg"}).content).shape == (32, 32, 3)


# --- GET endpoints -----------------------------------------------------------------------------------------
def test_models_lists_loaded_models_without_local_paths(client):
    body = client.get("/v1/models").json()
    assert body["tasks"] == ["colorize"]
    (m,) = body["models"]
    assert (m["name"], m["task"], m["source"], m["default"]) == ("tiny", "colorize", "models_dir", True)
    assert m["networks"] == {"G": "unet"} and "training" not in m and str(Path("/")) + "tmp" not in str(m)


def test_healthz(client, models_dir):
    assert client.get("/healthz").json()["status"] == "ok"
    with TestClient(create_app(ServeConfig(ui_path=""), store=ModelStore([]))) as empty:
        r = empty.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "no_models"
        assert empty.post("/v1/colorize", files={"image": ("a.png", GRAY)}).status_code == 404  # no route


def test_metrics_count_requests_and_latency_quantiles(models_dir):
    with TestClient(make_app(models_dir)) as c:
        for _ in range(3):
            post_images(c, GRAY)
        post_images(c, b"not an image")
        ep = c.get("/metrics").json()["endpoints"]["POST /v1/colorize"]
        assert ep["count"] == 4 and ep["errors"] == 1 and ep["status"] == {"200": 3, "415": 1}
        q = ep["latency_ms"]
        assert 0 < q["p50"] <= q["p95"] <= q["p99"]
        text = c.get("/metrics", params={"format": "prometheus"}).text
        assert 'prism_requests_total{endpoint="POST /v1/colorize",status="200"} 3' in text
        assert 'prism_request_latency_seconds{endpoint="POST /v1/colorize",quantile="0.95"}' in text
        assert_error(c.get("/metrics", params={"format": "xml"}), 422, "invalid_options")
        for i in range(3):  # made-up methods and paths share one key each: memory stays bounded
            c.request(f"BREW{i}", f"/coffee/{i}")
        keys = set(c.get("/metrics").json()["endpoints"])
        assert "OTHER (unmatched)" in keys and not any("BREW" in k or "coffee" in k for k in keys)


def test_quantiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert [_quantile(values, q) for q in (0.5, 0.95, 0.99)] == [50.0, 95.0, 99.0]
    assert _quantile([], 0.5) == 0.0 and _quantile([3.0], 0.99) == 3.0


def test_unknown_route_is_a_json_404(client):
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.post("/v1/translate"), 404, "not_found")  # no translate model: no route


# --- errors ------------------------------------------------------------------------------------------------
def test_413_request_body_over_the_byte_limit(models_dir):
    big = encoded(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))  # ~40 kB of noise
    with TestClient(make_app(models_dir, max_upload_bytes=20_000)) as c:
        body = assert_error(post_images(c, big), 413, "too_large")
        assert "20,000" in body["message"]
        # without a Content-Length the body is counted as it streams in
        boundary = "x" * 16
        payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
                   .encode() + big + f"\r\n--{boundary}--\r\n".encode())
        r = c.post("/v1/colorize", content=iter([payload[i:i + 4096] for i in range(0, len(payload), 4096)]),
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert_error(r, 413, "too_large")
        assert post_images(c, GRAY).status_code == 200  # small ones still pass
        assert c.get("/metrics").json()["endpoints"]["POST /v1/colorize"]["status"] == {"200": 1, "413": 2}


def test_413_pixels_refused_from_the_header_before_decoding(models_dir, monkeypatch):
    decoded = []
    monkeypatch.setattr("prism.serve.uploads.read_image_bytes", lambda *a, **k: decoded.append(a))
    with TestClient(make_app(models_dir, max_pixels=100_000, max_total_pixels=150_000, max_images=3)) as c:
        bomb = png_header_only(50_000, 50_000)  # 2.5 gigapixels declared in 100 bytes
        assert len(bomb) < 200
        assert "2,500,000,000" in assert_error(post_images(c, bomb), 413, "too_many_pixels")["message"]
        assert_error(post_images(c, encoded(photo(400, 300))), 413, "too_many_pixels")  # 120k > 100k
        # each image within the limit, together over the request's total
        assert_error(post_images(c, *[encoded(photo(250, 250))] * 3), 413, "too_many_pixels")
        assert_error(post_images(c, *[GRAY] * 4), 413, "too_many_images")
    assert decoded == []


@pytest.mark.parametrize("data", [b"hello, not an image", b"", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
                                  b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"])
def test_415_non_images_and_formats_not_allowed(client, data):
    assert_error(post_images(client, data), 415, "not_an_image")


def test_415_truncated_image_fails_at_decoding(client):
    full = encoded(photo(64, 64, gray=False))
    assert_error(post_images(client, full[: len(full) // 2]), 415, "not_an_image")


@pytest.mark.parametrize("data", [{"saturation": "2.5"}, {"saturation": "-0.1"}, {"saturation": "nan"},
                                  {"saturation": "vivid"}, {"format": "gif"}, {"saturaton": "1"}])
def test_422_bad_options(client, data):
    body = assert_error(post_images(client, GRAY, data=data), 422, "invalid_options")
    assert any(k in body["message"] for k in data)


def test_422_no_image(client):
    assert_error(client.post("/v1/colorize", data={"saturation": "1"}), 422, "invalid_options")


def test_422_model_of_another_task(models_dir):
    tiny = ModelStore.discover(models_dir, bundled=False).models["tiny"]
    other = ServedModel("painter", "translate", "models_dir", predictor=None, card={})
    with TestClient(create_app(ServeConfig(ui_path=""), store=ModelStore([tiny, other]))) as c:
        assert "translate" in assert_error(post_images(c, GRAY, data={"model": "painter"}), 422, "wrong_task")["message"]


def test_503_with_retry_after_when_the_queue_is_full(models_dir):
    app = make_app(models_dir, workers=1, max_queue=1)
    pool, gate = app.state.service.pool, threading.Event()
    with TestClient(app) as c, ThreadPoolExecutor(1) as background:
        pool.submit(gate.wait, 30)  # holds the only worker
        queued = background.submit(post_images, c, GRAY)  # takes the one waiting place
        deadline = time.monotonic() + 30
        while pool.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.pending == 2
        r = post_images(c, GRAY)
        assert_error(r, 503, "busy")
        assert int(r.headers["retry-after"]) >= 1
        gate.set()
        assert queued.result(30).status_code == 200  # the waiting request was served
        assert post_images(c, GRAY).status_code == 200


def test_pool_bounds_and_releases_slots():
    pool = InferencePool(workers=1, max_queue=1)
    gate = threading.Event()
    running = [pool.submit(gate.wait, 10), pool.submit(gate.wait, 10)]
    with pytest.raises(QueueFull):
        pool.submit(lambda: None)
    gate.set()
    [f.result(10) for f in running]
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(10)
    assert pool.pending == 0 and pool.submit(lambda: 42).result(10) == 42
    pool.shutdown()


# --- safety ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "tiny/../tiny", "./tiny", "tiny\x00"])
def test_model_names_are_dictionary_keys_not_paths(client, monkeypatch, name):
    touched = []

    def forbidden(*args, **kwargs):
        raise AssertionError(f"model loading reached with {args}")
    for target in ("resolve", "load_nets", "load_model"):
        monkeypatch.setattr(modelio, target, forbidden)
    recording = threading.Event()

    def audit(event, args):
        if recording.is_set() and event in ("open", "os.listdir", "os.scandir", "os.chdir"):
            touched.append((event, args[0] if args else None))
    sys.addaudithook(audit)  # cannot be removed; `recording` switches it off again
    monkeypatch.setattr(os, "stat", _recording_stat(touched, recording, os.stat))
    recording.set()
    try:
        r = post_images(client, GRAY, data={"model": name})
    finally:
        recording.clear()
    assert_error(r, 404, "model_not_found")
    assert touched == []


def _recording_stat(touched, recording, real_stat):
    def stat(path, *args, **kwargs):
        if recording.is_set():
            touched.append(("os.stat", path))
        return real_stat(path, *args, **kwargs)
    return stat


class _Boom:
    """Unpickling this creates a file: a stand-in for code execution from a pickled checkpoint."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_models_dir_loads_saved_models_only(tmp_path):
    models = tmp_path / "models"
    save_tiny_colorizer(models / "good")
    run = models / "a_run"  # a training run directory: pickled checkpoints, never loaded
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: colorize\n")
    marker = tmp_path / "unpickled"
    (run / "checkpoints" / "latest.pt").write_bytes(pickle.dumps(_Boom(marker)))
    (models / "linked").symlink_to(save_tiny_colorizer(tmp_path / "elsewhere" / "m"))  # outside DIR
    (models / "broken").mkdir()
    (models / "broken" / "card.json").write_text("{not json")
    (models / "notes.txt").write_text("hello")
    store = ModelStore.discover(models, bundled=False)
    assert list(store.models) == ["good"] and list(store.skipped) == ["broken"]
    assert not marker.exists()


def test_bundled_models_load_and_models_dir_shadows_them(tmp_path, monkeypatch):
    monkeypatch.setattr(modelio, "BUNDLED_DIR", tmp_path / "bundled")
    save_tiny_colorizer(tmp_path / "bundled" / "colorizer")
    store = ModelStore.discover(None)
    assert store.default("colorize") == "colorizer" and store.models["colorizer"].source == "bundled"
    save_tiny_colorizer(tmp_path / "mine" / "colorizer", seed=1)
    assert ModelStore.discover(tmp_path / "mine").models["colorizer"].source == "models_dir"


def test_the_real_bundled_model_loads_if_present():
    names = modelio.bundled_models()
    if not names:
        pytest.skip(f"no bundled model in {modelio.BUNDLED_DIR} yet")
    store = ModelStore.discover(None)
    assert sorted(store.models) == names and not store.skipped


def test_cors_is_off_unless_configured(models_dir, client):
    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/v1/models", headers=origin).headers
    with TestClient(make_app(models_dir, cors_origins=["https://elsewhere.example"])) as c:
        assert c.get("/v1/models", headers=origin).headers["access-control-allow-origin"] == "https://elsewhere.example"


@pytest.mark.parametrize("name,stem", [("../../etc/passwd.png", "passwd"), ('a"b\r\nc.png', "a_b_c"),
                                       ("C:\\x\\y z.jpeg", "y_z"), ("", "image"), ("...", "image")])
def test_client_file_names_are_reduced_to_safe_stems(name, stem):
    assert safe_stem(name) == stem


# --- CLI ------------------------------------------------------------------------------------------------
def test_cli_serve_binds_loopback_by_default(models_dir, monkeypatch):
    from prism.cli import app as cli
    calls = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    r = CliRunner().invoke(cli, ["serve", "--models", str(models_dir), "--no-bundled", "--no-ui"])
    assert r.exit_code == 0, r.output
    app, kw = calls[0]
    assert (kw["host"], kw["port"]) == ("127.0.0.1", 7860)
    assert {"/v1/colorize", "/v1/models", "/healthz", "/metrics"} <= {getattr(x, "path", "") for x in app.routes}
    r = CliRunner().invoke(cli, ["serve", "--models", str(models_dir), "--no-bundled", "--no-ui",
                                 "--host", "0.0.0.0", "--port", "9000", "--max-queue", "2", "--max-pixels", "1000"])
    assert r.exit_code == 0 and calls[1][1]["host"] == "0.0.0.0" and calls[1][1]["port"] == 9000
    config = calls[1][0].state.service.config
    assert (config.max_queue, config.max_pixels, config.max_total_pixels) == (2, 1000, 2000)
    r = CliRunner().invoke(cli, ["serve", "--models", str(models_dir), "--no-bundled", "--no-ui",
                                 "--job-workers", "2", "--max-jobs", "5", "--job-ttl", "60"])
    assert r.exit_code == 0, r.output
    config = calls[2][0].state.service.config
    assert (config.job_workers, config.max_jobs, config.job_ttl_s) == (2, 5, 60.0)
    r = CliRunner().invoke(cli, ["serve", "--models", str(models_dir), "--no-bundled", "--no-ui", "--job-ttl", "0"])
    assert r.exit_code == 2 and "job_ttl_s must be more than 0" in r.output


@pytest.mark.parametrize("bad", [{"ui_path": "/"}, {"ui_path": "ui"}, {"workers": 0}, {"max_queue": -1},
                                 {"max_pixels": 0}])
def test_config_refuses_unusable_settings(bad):
    with pytest.raises(ValueError):
        ServeConfig(**bad)


def test_cli_serve_refuses_to_start_without_models(tmp_path):
    from prism.cli import app as cli
    r = CliRunner().invoke(cli, ["serve", "--models", str(tmp_path), "--no-bundled", "--no-ui"])
    assert r.exit_code == 2 and "no model to serve" in r.output


# --- web app: tabs only for tasks with a model ---------------------------------------------------------------
def test_web_app_has_a_tab_per_task_with_a_model(models_dir):
    from prism.serve.service import Service
    from prism.serve.ui import build_blocks

    def components(store):
        config = build_blocks(Service.create(ServeConfig(ui_path="/ui"), store)).get_config_file()
        return [(c["type"], c["props"].get("elem_id")) for c in config["components"]]
    with_model = components(ModelStore.discover(models_dir, bundled=False))
    assert ("tabitem", "tab-colorize") in with_model
    assert {("file", "colorize-input"), ("slider", "colorize-saturation"), ("imageslider", "colorize-compare"),
            ("file", "colorize-download")} <= set(with_model)
    assert not any(kind == "tabitem" for kind, _ in components(ModelStore([])))


def test_web_app_is_mounted_and_serves_no_files_from_outside_its_cache(models_dir):
    with TestClient(create_app(ServeConfig(models_dir=models_dir, bundled=False))) as c:
        assert c.get("/").headers.get("location") in (None, "/ui") and c.get("/ui/").status_code == 200
        for path in ("/etc/passwd", str(models_dir / "tiny" / "model.safetensors")):
            r = c.get(f"/ui/gradio_api/file={path}")
            assert r.status_code in (403, 404) and Path(path).read_bytes()[:64] not in r.content
        assert "GET /ui/*" in c.get("/metrics").json()["endpoints"]


def test_a_new_task_plugs_in_with_one_adapter(monkeypatch, models_dir):
    """A task registers an adapter: it gets its route, form fields and schema from its options
    model, and a web app tab, with no change to the core."""
    from pydantic import BaseModel, Field

    from prism.serve import tasks
    from prism.serve.service import Service
    from prism.serve.ui import build_blocks

    class InvertOptions(BaseModel):
        strength: float = Field(1.0, ge=0.0, le=1.0, description="how much to invert")

    class Inverter:  # a stand-in predictor of a future task
        task = "invert"

        def invert(self, images, strength):
            return [Image.fromarray((255 - im.pixels * strength).astype(np.uint8)) for im in images]
    adapter = tasks.TaskAdapter("invert", "Invert", "Negatives.", InvertOptions,
                                run=lambda p, images, o: p.invert(images, o.strength))
    tasks.adapters()  # the built-in ones first, so the registry is complete
    monkeypatch.setitem(tasks.TASK_ADAPTERS, "invert", adapter)
    store = ModelStore([ServedModel("neg", "invert", "models_dir", Inverter(), {})])
    with TestClient(create_app(ServeConfig(ui_path=""), store)) as c:
        r = c.post("/v1/invert", files={"image": ("a.png", GRAY)}, data={"strength": "1"})
        assert r.status_code == 200 and (decode(r.content) == 255 - photo(48, 64)).all()
        assert_error(c.post("/v1/invert", files={"image": ("a.png", GRAY)}, data={"strength": "2"}), 422,
                     "invalid_options")
        form = c.get("/openapi.json").json()["components"]["schemas"]["Body_run_invert_v1_invert_post"]
        assert form["properties"]["strength"]["maximum"] == 1.0
        assert_error(post_images(c, GRAY), 404, "not_found")  # no colorize model, so no colorize route
    config = build_blocks(Service.create(ServeConfig(), store)).get_config_file()
    kinds = {(x["type"], x["props"].get("elem_id")) for x in config["components"]}
    assert {("tabitem", "tab-invert"), ("slider", "invert-strength")} <= kinds
    assert ("tabitem", "tab-colorize") not in kinds


# --- the OpenAPI schema, fuzzed ------------------------------------------------------------------------------
# Driven through schemathesis' Python API: its pytest fixture loader (from_fixture) fails on this
# pytest (9.2: no Function._nodeid), so each operation's strategy runs under hypothesis directly.
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def openapi_schema(models_dir):
    return schemathesis.openapi.from_asgi("/openapi.json", make_app(models_dir, max_upload_bytes=200_000))


def test_openapi_schema_lists_every_endpoint(openapi_schema):
    assert sorted(f"{op.ok().method.upper()} {op.ok().path}" for op in openapi_schema.get_all_operations()) == [
        "GET /healthz", "GET /metrics", "GET /v1/models", "POST /v1/colorize"]


POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE


@pytest.mark.parametrize("method,path,mode", [  # NEGATIVE only where there are parameters to get wrong
    ("GET", "/healthz", POSITIVE), ("GET", "/v1/models", POSITIVE), ("GET", "/metrics", POSITIVE),
    ("GET", "/metrics", NEGATIVE), ("POST", "/v1/colorize", POSITIVE), ("POST", "/v1/colorize", NEGATIVE)])
def test_openapi_schema_holds_under_fuzzing(openapi_schema, method, path, mode):
    """Generated requests, valid (POSITIVE) and invalid (NEGATIVE), never get a 5xx, and every
    answer matches the schema: a documented status, content type, headers and body."""
    operation = openapi_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(checks=CHECKS)
    check()
