"""Retake docs/service-colorize.png: `prism serve` with the bundled model on 127.0.0.1, Debian's
chromium (driven by Playwright) uploads the samples/ photos in the colorize tab.

    .venv/bin/python scripts/screenshot_service.py [--out docs/service-colorize.png]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

from prism.serve import ServeConfig, create_app
from prism.serve.testing import running_server

REPO = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(REPO / "docs" / "service-colorize.png"))
    p.add_argument("--saturation", default="1.0")
    a = p.parse_args()
    photos = sorted((REPO / "samples").glob("*.jpg"))
    with running_server(create_app(ServeConfig())) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                     args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(180_000)
        page.goto(url + "/")
        page.locator("#colorize-input input[type=file]").set_input_files([str(x) for x in photos])
        page.wait_for_selector(f"#colorize-input [aria-label='{photos[-1].name}']")
        page.locator("#colorize-saturation input[type=number]").fill(a.saturation)
        page.locator("#colorize-saturation input[type=number]").press("Enter")
        page.locator("#colorize-run").click()
        page.locator("#colorize-download a[download]").nth(len(photos) - 1).wait_for()
        page.wait_for_timeout(1500)  # let the previews paint
        page.screenshot(path=a.out, full_page=True)
        browser.close()
    print(a.out)


if __name__ == "__main__":
    main()
