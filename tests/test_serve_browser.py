"""The web app end to end in a real browser: Debian's chromium driven by Playwright against
`prism serve`'s app on a free 127.0.0.1 port. Uploads photos in the colorize tab, checks the
before/after view and the results appear, downloads one and compares it with the REST API's
answer, shows an error for a bad upload, and saves a screenshot to test-artifacts/.

Skipped with a reason when chromium is not installed, unless PRISM_REQUIRE_BROWSER is set
(CI sets it): then that is a failure. The browser may reach 127.0.0.1 only; any other request
is refused and fails the test (the app must work offline and send nothing out).
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from prism.serve import ServeConfig, create_app
from prism.serve.testing import encoded, photo, running_server, save_tiny_colorizer

REPO = Path(__file__).resolve().parents[1]
# gradio's queue calls pandas APIs that pandas 3 deprecates: their warnings, not ours
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]
TIMEOUT_MS = 90_000  # a loaded 2-core machine: page load and first inference take a while


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "Debian's chromium is not installed (bash scripts/install-browser.sh installs it)"
        if os.environ.get("PRISM_REQUIRE_BROWSER"):
            pytest.fail(reason + "; PRISM_REQUIRE_BROWSER is set, so the browser test is required")
        pytest.skip(reason + "; set PRISM_REQUIRE_BROWSER=1 to make this a failure")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    save_tiny_colorizer(models / "tiny")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))  # uploads stay in tmp
        with running_server(create_app(ServeConfig(models_dir=models, bundled=False))) as url:
            yield url


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    from skimage import data
    folder = tmp_path_factory.mktemp("upload")
    paths = [folder / "camera.jpg", folder / "gradient.png"]
    Image.fromarray(data.camera()[::2, ::2]).save(paths[0], quality=90)  # a real B&W photo, 256x256
    paths[1].write_bytes(encoded(photo(120, 160, seed=3)))
    return paths


@pytest.fixture()
def page(chromium, server):
    from playwright.sync_api import sync_playwright
    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)

        def only_loopback(route):
            if route.request.url.startswith(server + "/"):
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()
        context.route("**/*", only_loopback)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()
    assert outside == [], f"the web app tried to reach beyond 127.0.0.1: {outside}"


def test_colorize_tab_uploads_colorizes_and_downloads(page, server, photos, tmp_path):
    page.goto(server + "/")  # redirects to the web app
    page.wait_for_selector("#tab-colorize, button[role=tab]:has-text('Colorize')")
    page.locator("#colorize-input input[type=file]").set_input_files([str(p) for p in photos])
    page.wait_for_selector("#colorize-input [aria-label='gradient.png']")  # both uploads listed
    page.locator("#colorize-saturation input[type=number]").fill("1.5")
    page.locator("#colorize-saturation input[type=number]").press("Enter")
    page.locator("#colorize-run").click()

    links = page.locator("#colorize-download a[download]")
    links.nth(1).wait_for()
    assert links.count() == 2
    assert page.locator("#colorize-gallery img").count() >= 2
    assert page.locator("#colorize-compare img").count() == 2  # before and after
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-colorize.png"), full_page=True)

    with page.expect_download() as download:
        links.first.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "01-camera-colorized.png"
    got = np.asarray(Image.open(saved))
    assert got.shape == (256, 256, 3)  # full size, in colour
    assert np.abs(got[..., 0].astype(int) - got[..., 2].astype(int)).mean() > 2
    # the web app and the REST API give the same picture for the same options
    api = httpx.post(server + "/v1/colorize", files={"image": ("camera.jpg", photos[0].read_bytes())},
                     data={"saturation": "1.5"}, timeout=60)
    assert api.status_code == 200
    assert np.abs(np.asarray(Image.open(io.BytesIO(api.content))).astype(int) - got.astype(int)).max() <= 1


def test_bad_upload_shows_an_error(page, server, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are notes, not a photo")
    page.goto(server + "/ui/")
    page.locator("#colorize-input input[type=file]").set_input_files(str(fake))
    page.wait_for_selector("#colorize-input [aria-label='notes.png']")
    page.locator("#colorize-run").click()
    page.get_by_text("not an image", exact=False).first.wait_for()
    assert page.locator("#colorize-download a[download]").count() == 0


def test_api_docs_render_offline(page, server):
    """/docs (where the web app points) draws Swagger UI from the app's own files: the browser may
    not reach any CDN, and the page fixture fails the test if it tries."""
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "PRISM" in page.locator(".swagger-ui .info .title").inner_text()
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/colorize']")
