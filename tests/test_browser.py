"""The HTML report and the docs' home page as a reader sees them, in headless Chromium
(Debian's ``chromium``, driven by Playwright through its ``executable_path``): every
figure loads with a non-zero natural size, nothing is logged as an error, the verdict
table and the RANDOM WEIGHTS caveat are visible where they apply, no request leaves the
file (the report is self-contained), and a screenshot is written next to the report for a
person to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from defstab.cli.main import main
from fixtures_formats import write_image_folder

ROOT = Path(__file__).resolve().parents[1]
#: the scaled-down E1 of test_scaleout: two types, two seeds, one epoch on synthetic data
EXPERIMENT = ["experiment", "pooling", "--data", "synthetic:2", "--archs", "maxpool,subsample",
              "--seeds", "2", "--width", "0.125", "--images", "8", "--per-class", "6",
              "--epochs", "1", "--quiet"]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    return found


class Reader:
    """A page opened as a reader would, recording what a test must not see."""

    def __init__(self, browser, url: str):
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._request)
        self.page.goto(url, wait_until="load")

    def _request(self, request):
        if not request.url.startswith(("file:", "data:", "about:")):
            self.requests.append(request.url)

    def images(self) -> list[dict]:
        return self.page.eval_on_selector_all(
            "img",
            "els => els.map(e => ({alt: e.alt, w: e.naturalWidth, h: e.naturalHeight,"
            " complete: e.complete}))",
        )


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.mark.slow
def test_report_as_a_reader_sees_it(browser, tmp_path):
    results = tmp_path / "results"
    assert main([*EXPERIMENT, "--out", str(results)]) == 0
    imgs = write_image_folder(tmp_path / "imgs", per_class=2, size=(32, 32))
    assert main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.25", "--data",
                 f"folder:{imgs}", "--images", "4", "--quiet", "--out",
                 str(results / "measure")]) == 0  # fmt: skip
    report = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(report)]) == 0
    reader = Reader(browser, report.as_uri())
    images = reader.images()
    assert len(images) >= 2 and all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in images)
    verdicts = reader.page.locator("table", has_text="verdict")
    assert verdicts.count() >= 1 and verdicts.first.is_visible()
    caveat = reader.page.locator(".caveat", has_text="RANDOM WEIGHTS")
    assert caveat.count() >= 1 and caveat.first.is_visible()
    assert reader.errors == [] and reader.requests == []
    shot = report.with_suffix(".png")
    reader.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_docs_home_page_as_a_reader_sees_it(browser, tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(site)], cwd=ROOT,
                   check=True, capture_output=True, env=env)  # fmt: skip
    reader = Reader(browser, (site / "index.html").as_uri())
    images = reader.images()
    assert images and all(i["w"] > 0 for i in images if "E1" in i["alt"]), images
    assert reader.page.get_by_role("heading", name="defstab").first.is_visible()
    assert reader.errors == [] and reader.requests == [], (reader.errors, reader.requests)
    reader.page.screenshot(path=str(site / "index.png"), full_page=True)
    # the site browses from disk: every page the navigation links to opens as a page
    # (with directory URLs a link would open the browser's "Index of …" listing)
    links = reader.page.eval_on_selector_all("nav a[href]", "els => els.map(e => e.href)")
    pages = sorted({link.split("#")[0] for link in links if link.startswith("file:")})
    assert len(pages) >= 15, pages
    for url in pages:
        reader.page.goto(url, wait_until="load")
        assert url.endswith(".html"), url
        assert not reader.page.title().startswith("Index of"), url
        assert reader.page.locator("article h1").first.is_visible(), url
