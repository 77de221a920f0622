"""Restoration (stylegan models) in the service, as a job: POST /v1/restore answers 202, the job is
polled at GET /v1/jobs/{id} until it is done, and its files (the restored face, w as .npy) are
what FaceGenerator.restore gives. Also: bad uploads and options (a 4xx at once, or a failed job
that says why), cancelling a queued and a running job, the job store's bounds and expiry, the
OpenAPI schema, the web app's tab, and that tab in a real browser (skipped without chromium).
Uses a tiny random 16-px StyleGAN (as tests/test_restore.py) and a few projection steps."""
from __future__ import annotations

import base64
import io
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import prism
from prism.modelio import save_model
from prism.serve import ServeConfig, create_app
from prism.serve.errors import ServeError
from prism.serve.jobs import FINAL, JobStore
from prism.serve.models import ModelStore
from prism.serve.service import Service
from prism.serve.testing import encoded, photo, running_server
from prism.serve.ui import build_blocks
from test_restore import D_SPEC, G_SPEC, tiny_nets
from test_serve_browser import ARTIFACTS, chromium, page  # noqa: F401  (fixtures: the browser, served by `server` below)

FACE = encoded(photo(40, 40, seed=2, gray=False))
LONG = 2000  # steps: tens of seconds at least, so a job is surely still running when it is cancelled


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    G, D = tiny_nets()
    save_model(root / "faces", {"G": G, "D": D}, {"task": "stylegan", "nets": {"G": G_SPEC, "D": D_SPEC},
                                                   "options": {"resolution": 16}})
    return root


@pytest.fixture(scope="module")
def client(models_dir):
    with TestClient(create_app(ServeConfig(models_dir=models_dir, bundled=False, ui_path=""))) as c:
        yield c


def submit(client, image=FACE, name="face.png", files=(), **options):
    data = {"align": "false", "steps": "3", **{k: str(v) for k, v in options.items()}}
    return client.post("/v1/restore", files=[("image", (name, image)), *files], data=data)


def wait(client, url, until=FINAL, timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url).json()
        if body["status"] in until:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def assert_error(body: dict, status: int, code: str, *words: str):
    assert body["status"] == status and body["error"] == code, body
    assert all(w in body["message"] for w in words), body["message"]


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# --- submit, poll, fetch ---------------------------------------------------------------------------------
def test_restore_job_gives_what_the_python_api_gives(client, models_dir):
    r = submit(client, degradation="gray", steps=4, seed=1)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == job["status_url"] == f"/v1/jobs/{job['id']}"
    assert job["task"] == "restore" and job["model"] == "faces" and job["status"] in ("queued", "running")

    done = wait(client, job["status_url"])
    assert done["status"] == "done" and done["error"] is None, done
    assert done["progress"]["step"] == done["progress"]["total"] == 4 and done["progress"]["loss"] > 0
    assert done["finished"] >= done["started"] >= done["created"] and done["expires"] > done["finished"]
    files = {f["filename"]: f for f in done["result"]["files"]}
    assert set(files) == {"face-restored.png", "face-w.npy", "face-projection.png"}
    [image] = done["result"]["images"]
    assert (image["filename"], image["width"], image["height"], image["data"]) == ("face-restored.png", 16, 16, None)

    want = prism.load_model(models_dir / "faces").restore(Image.open(io.BytesIO(FACE)), degradation="gray", steps=4,
                                                          align=False, seed=1)
    got = client.get(image["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert np.array_equal(png(got.content), np.asarray(want.restored))
    w = client.get(files["face-w.npy"]["url"])
    assert 'filename="face-w.npy"' in w.headers["content-disposition"]
    assert np.array_equal(np.load(io.BytesIO(w.content)), want.w) and want.w.shape == (6, 8)
    embedded = client.get(job["status_url"], params={"embed": "true"}).json()["result"]["images"][0]["data"]
    assert embedded and np.array_equal(png(base64.b64decode(embedded)), png(got.content))


def test_mask_image_reaches_the_projection_and_several_photos_are_numbered(client, models_dir):
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 5:25] = 255  # white = missing
    other = encoded(photo(32, 48, seed=5, gray=False))
    r = client.post("/v1/restore", data={"degradation": "mask", "steps": "3", "align": "false"},
                    files=[("image", ("face.png", FACE)), ("image", ("face.jpg", other)),
                           ("mask", ("hole.png", encoded(mask)))])
    assert r.status_code == 202, r.text
    done = wait(client, r.json()["status_url"])
    assert done["status"] == "done", done
    assert done["progress"]["total"] == 6  # 3 steps for each photo
    names = [i["filename"] for i in done["result"]["images"]]
    assert names == ["01-face-restored.png", "02-face-restored.png"]  # same stem, still two downloads
    assert {"01-face-w.npy", "02-face-w.npy"} <= {f["filename"] for f in done["result"]["files"]}
    want = prism.load_model(models_dir / "faces").restore(Image.open(io.BytesIO(FACE)), degradation="mask", steps=3,
                                                          align=False, mask=Image.fromarray(mask))
    got = png(client.get(done["result"]["images"][0]["url"]).content)
    assert np.array_equal(got, np.asarray(want.restored))


# --- errors: at once when they can be seen at once, else in the job ------------------------------------------------
def test_bad_uploads_and_options_are_refused_at_once(client):
    r = submit(client, image=b"these are notes", name="notes.png")
    assert r.status_code == 415 and "notes.png" in r.json()["message"]
    r = submit(client, degradation="mask")  # no hole given
    assert r.status_code == 422, r.text
    assert_error(r.json(), 422, "invalid_options", "mask image", "rect=x,y,w,h")
    for bad in ({"steps": 0}, {"steps": 5000}, {"degradation": "sepia"}, {"rect": "1,2,3"}, {"space": "z"}):
        r = submit(client, **bad)
        assert r.status_code == 422 and r.json()["error"] == "invalid_options", (bad, r.text)
    r = client.post("/v1/restore", files={"image": ("face.png", FACE), "mask": ("m.png", b"no image")})
    assert r.status_code == 415 and "m.png" in r.json()["message"]
    r = client.get("/v1/jobs/0123456789abcdef")
    assert r.status_code == 404 and r.json()["error"] == "job_not_found"
    assert client.delete("/v1/jobs/0123456789abcdef").status_code == 404


def test_failures_found_by_the_job_are_reported_in_it(client):
    truncated = FACE[: len(FACE) // 2]  # the header is fine; decoding fails in the job
    body = wait(client, submit(client, image=truncated, name="half.png").json()["status_url"])
    assert body["status"] == "failed" and body["result"] is None
    assert_error(body["error"], 415, "not_an_image", "half.png", "truncated")

    body = wait(client, submit(client, degradation="mask", rect="30,30,20,20").json()["status_url"])
    assert_error(body["error"], 422, "invalid_options", "face.png", "does not fit in the 40x40 image")
    body = wait(client, submit(client, degradation="downsample", factor=3).json()["status_url"])
    assert_error(body["error"], 422, "invalid_options", "factor 3 must divide")

    body = wait(client, submit(client, align="true").json()["status_url"])  # no face in this picture
    assert body["status"] == "failed" and body["error"]["error"] in ("no_face", "alignment_unavailable"), body
    assert "face.png" in body["error"]["message"] and "align=false" in body["error"]["message"]


# --- cancel ----------------------------------------------------------------------------------------------------
def test_cancel_a_queued_and_a_running_job(client):
    running = submit(client, steps=LONG).json()["status_url"]
    queued = submit(client, steps=LONG).json()  # one job worker: this one waits
    assert queued["status"] == "queued"
    r = client.delete(queued["status_url"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    body = wait(client, running, until=("running",))
    while (body["progress"] or {}).get("loss") is None:  # really projecting
        body = client.get(running).json()
        time.sleep(0.05)
    r = client.delete(running)
    assert r.status_code == 200 and r.json()["cancel_requested"]
    body = wait(client, running, timeout=30)
    assert body["status"] == "cancelled" and body["progress"]["step"] < LONG and body["result"] is None
    assert client.delete(running).json()["status"] == "cancelled"  # a finished job: forgotten now
    assert client.get(running).status_code == 404
    assert client.get(queued["status_url"]).json()["status"] == "cancelled"


def test_full_job_queue_is_a_503_with_retry_after(models_dir):
    config = ServeConfig(models_dir=models_dir, bundled=False, ui_path="", max_queue=0)
    with TestClient(create_app(config)) as c:
        first = submit(c, steps=LONG).json()["status_url"]
        r = submit(c)
        assert r.status_code == 503 and r.json()["error"] == "busy" and int(r.headers["retry-after"]) >= 1
        c.delete(first)
        wait(c, first, timeout=30)
        assert submit(c).status_code == 202


def test_job_store_keeps_a_bounded_number_of_jobs_and_expires_them():
    store = JobStore(workers=1, max_waiting=1, max_jobs=3, ttl_s=0.5)
    gate = threading.Event()

    def blocked(job):
        gate.wait(10)
        return [], []

    def finished(job, timeout=10):
        deadline = time.monotonic() + timeout
        while not job.is_final:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return job
    a, b = store.submit("t", "m", blocked), store.submit("t", "m", blocked)
    with pytest.raises(ServeError) as e:  # 2 unfinished: the capacity
        store.submit("t", "m", blocked)
    assert e.value.status == 503 and int(e.value.headers["Retry-After"]) >= 1
    gate.set()
    finished(a), finished(b)

    def bug(job):
        raise RuntimeError("a bug")

    def refused(job):
        raise ServeError(422, "invalid_options", "x.png: bad")
    c = finished(store.submit("t", "m", bug))
    assert c.status == "failed" and c.error["error"] == "internal" and "a bug" not in c.error["message"]
    assert store.get(a.id) is a  # three jobs kept: the most
    d = finished(store.submit("t", "m", refused))
    assert d.error == {"error": "invalid_options", "message": "x.png: bad", "status": 422}
    assert store.get(a.id) is None and store.get(b.id) is b  # the oldest finished one made room
    time.sleep(0.6)
    assert store.get(b.id) is None and store.get(d.id) is None  # expired
    assert store.stats()["done"] == 0
    store.shutdown()


@pytest.mark.parametrize("bad", [{"job_workers": 0}, {"max_jobs": 0}, {"job_ttl_s": 0}])
def test_config_refuses_unusable_job_settings(bad):
    with pytest.raises(ValueError):
        ServeConfig(**bad)


# --- schema and web app ----------------------------------------------------------------------------------------
def test_openapi_schema_has_the_job_endpoints(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/v1/jobs/{job_id}"]) == {"get", "delete"} and "get" in paths["/v1/jobs/{job_id}/files/{filename}"]
    post = paths["/v1/restore"]["post"]
    assert "202" in post["responses"] and "200" not in post["responses"]
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobOut")
    form = schema["components"]["schemas"]["Body_run_restore_v1_restore_post"]["properties"]
    steps = next(t for t in form["steps"].get("anyOf", [form["steps"]]) if t.get("type") == "integer")
    assert steps["maximum"] == 2000 and form["degradation"]["enum"][0] == "gray"
    assert "mask" in form and "image" in form
    job = schema["components"]["schemas"]["JobOut"]["properties"]
    assert {"status", "progress", "result", "error", "status_url"} <= set(job)


@pytest.mark.parametrize("method,path,mode", [
    ("GET", "/v1/jobs/{job_id}", "positive"), ("GET", "/v1/jobs/{job_id}", "negative"),
    ("DELETE", "/v1/jobs/{job_id}", "positive"), ("GET", "/v1/jobs/{job_id}/files/{filename}", "positive"),
    ("POST", "/v1/restore", "negative")])  # valid POSTs would each start a projection: those are tested above
def test_job_endpoints_hold_their_schema_under_fuzzing(models_dir, method, path, mode):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    from test_serve_api import CHECKS
    app = create_app(ServeConfig(models_dir=models_dir, bundled=False, ui_path="", max_upload_bytes=200_000))
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(checks=CHECKS)
    check()
    stats = app.state.service.jobs.stats()
    assert stats["queued"] + stats["running"] + stats["done"] + stats["failed"] == 0  # no job was started
    app.state.service.close()


def test_web_app_has_a_restore_tab_with_a_mask_and_a_stop_button(models_dir):
    config = build_blocks(Service.create(ServeConfig(), ModelStore.discover(models_dir, bundled=False))).get_config_file()
    kinds = {(c["type"], c["props"].get("elem_id")) for c in config["components"]}
    assert {("tabitem", "tab-restore"), ("file", "restore-input"), ("file", "restore-mask"),
            ("dropdown", "restore-degradation"), ("number", "restore-steps"), ("number", "restore-samples"),
            ("checkbox", "restore-align"),
            ("button", "restore-run"), ("button", "restore-stop"), ("file", "restore-download")} <= kinds


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))  # uploads stay in tmp
        with running_server(create_app(ServeConfig(models_dir=models_dir, bundled=False))) as url:
            yield url


@pytest.mark.filterwarnings("ignore:::gradio.queueing")
def test_restore_tab_shows_progress_then_the_result(page, server, tmp_path):  # noqa: F811
    face = tmp_path / "face.png"
    face.write_bytes(FACE)
    page.goto(server + "/ui/")
    page.get_by_role("tab", name="Restore (StyleGAN)").click()
    page.locator("#restore-input input[type=file]").set_input_files(str(face))
    page.wait_for_selector("#restore-input [aria-label='face.png']")
    page.locator("#restore-align input[type=checkbox]").uncheck()
    page.locator("#restore-steps input[type=number]").fill("400")
    page.locator("#restore-steps input[type=number]").press("Enter")
    page.locator("#restore-run").click()
    page.get_by_text("loss", exact=False).first.wait_for()  # the progress bar: "face.png, loss ..."
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-restore-progress.png"), full_page=True)
    links = page.locator("#restore-download a[download]")
    links.nth(2).wait_for()
    page.screenshot(path=str(ARTIFACTS / "serve-restore.png"), full_page=True)
    names = links.evaluate_all("links => links.map(a => a.getAttribute('download'))")
    assert sorted(names) == ["face-projection.png", "face-restored.png", "face-w.npy"]
    assert page.locator("#restore-compare img").count() == 2  # before (degraded) and after

    # Stop ends the job itself, not only the page's wait for it
    page.locator("#restore-steps input[type=number]").fill("2000")
    page.locator("#restore-steps input[type=number]").press("Enter")
    page.locator("#restore-run").click()
    page.get_by_text("loss", exact=False).first.wait_for()  # running again
    page.locator("#restore-stop").click()
    deadline = time.monotonic() + 30
    while httpx.get(server + "/metrics").json()["jobs"]["cancelled"] != 1:
        assert time.monotonic() < deadline, "Stop did not cancel the job"
        time.sleep(0.1)
