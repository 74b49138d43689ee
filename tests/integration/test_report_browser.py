"""The report of `salvo explain` (report/index.html) in a real browser: headless Chromium opens
it from its file:// URL (never through an HTTP server, which would hide what Chromium refuses
to file:// pages, such as fetch/XHR of local files) and the test reads the DOM.

Chromium and its WebDriver are Debian packages (`apt-get install -y chromium chromium-driver`,
in README's Development commands and .ci/run); when they are missing the tests FAIL with that
command. The screenshots are kept as artifacts: their paths are printed (`pytest -s`) and
recorded as the tests' `screenshot` properties (``--junitxml``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
from salvo.cli import main
from salvo.cli.report import write_report
from salvo.testing.planted import batchable, planted_image_with_object
from support import require

INSTALL = "apt-get install -y chromium chromium-driver"
LABELS = ["alpha", "beta", "gamma"]
#: Where the screenshots are copied (printed by the tests).
ARTIFACTS = Path(os.environ.get("SALVO_TEST_ARTIFACTS",
                                Path(tempfile.gettempdir()) / "salvo-test-artifacts"))


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver))
                               if p is None)
        pytest.fail(f"{missing} not found: the report's browser tests need Debian's Chromium "
                    f"and its WebDriver; install them with: {INSTALL}")
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven through the Debian chromedriver (one for the module)."""
    require("selenium", "pip install selenium", "Driving Chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield d
    finally:
        d.quit()


def open_report(browser, page: Path, timeout: float = 30.0) -> None:
    """Open ``page`` at its file:// URL and wait until every row shard is loaded."""
    browser.get(page.resolve().as_uri())
    end = time.monotonic() + timeout
    while browser.execute_script("return document.body.dataset.loaded") != "all":
        assert time.monotonic() < end, f"the report did not load all its rows: " \
            f"{browser.find_element('id', 'status').text!r}; console: {console(browser)}"
        time.sleep(0.05)


def console(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser")]


def rows(browser) -> list:
    return browser.find_elements("css selector", "#rows tbody tr")


def cells(browser, column: str) -> list[str]:
    return [e.text for e in browser.find_elements("css selector", f"#rows tbody td.{column}")]


def choose(browser, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", select_id)).select_by_value(value)


def keep_screenshot(browser, tmp_path: Path, name: str, record_property) -> Path:
    shot = tmp_path / name
    assert browser.save_screenshot(str(shot)), "Chromium took no screenshot"
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = ARTIFACTS / name
    shutil.copyfile(shot, kept)
    record_property("screenshot", str(kept))
    print(f"screenshot: {kept}")
    return kept


@pytest.fixture(scope="module")
def run(planted, tmp_path_factory):
    """`salvo explain` of three planted photos (one per class; every class a target) and a
    corrupt file, into a folder with its report."""
    root = tmp_path_factory.mktemp("report")
    model = root / "planted.xml"
    ov.save_model(batchable(planted), str(model), compress_to_fp16=False)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    photos = root / "photos"
    photos.mkdir()
    for k in range(3):
        x = planted_image_with_object(planted, k)[0].transpose(1, 2, 0)
        cv2.imwrite(str(photos / f"shot{k}.png"), np.rint(x[:, :, ::-1] * 255).astype(np.uint8))
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    out = root / "maps"
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(["explain", str(model), str(photos), "--out", str(out), "--targets", "all",
                     "--preprocess", "unit", "--labels", str(root / "labels.txt"),
                     "--no-progress", "--precision", "f32"])
    assert code == 1, err.getvalue()  # the corrupt file failed
    return out


def test_the_report_is_written_inside_the_output_folder_with_thumbnails(run):
    data = json.loads((run / "manifest.json").read_text())
    done = [r for r in data["images"] if r["status"] == "done"]
    assert len(done) == 3
    for record in done:
        thumbs = record["thumbs"]
        assert len(thumbs["maps"]) == len(thumbs["overlays"]) == len(record["outputs"]) == 3
        for rel in [thumbs["input"], *thumbs["maps"], *thumbs["overlays"]]:
            assert rel.startswith("report/thumbs/")
            image = cv2.imread(str(run / rel))
            assert image is not None and max(image.shape[:2]) <= 160
    page = (run / "report" / "index.html").read_text()
    assert "http:" not in page and "https:" not in page, "no network resource"
    script = (run / "report" / "report.js").read_text()
    assert "fetch(" not in script and "XMLHttpRequest" not in script


def test_report_in_chromium_pages_filters_sorts_and_names_failures(browser, run, tmp_path,
                                                                   record_property):
    open_report(browser, run / "report" / "index.html")
    assert not [m for m in console(browser) if "SEVERE" in m or "rror" in m], console(browser)
    assert len(rows(browser)) == 10, "3 images x 3 classes and the failed file"
    command = browser.find_element("id", "command").text
    assert command.startswith("salvo explain ") and "--targets all" in command
    assert "openvino" in browser.find_element("id", "versions").text
    assert browser.find_element("id", "legend").get_attribute("style").count("rgb(") == 11

    failed = browser.find_elements("css selector", "#rows tbody tr.failed")
    assert len(failed) == 1
    assert "corrupt.jpg" in failed[0].text and "not an image" in failed[0].text

    # every map row shows its three thumbnails, and they load (file:// images)
    images = browser.find_elements("css selector", "#rows tbody tr:not(.failed) img")
    assert len(images) == 27
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    end = time.monotonic() + 10
    while not all(browser.execute_script("return arguments[0].complete && "
                                         "arguments[0].naturalWidth > 0", i) for i in images):
        assert time.monotonic() < end, "thumbnails did not load"
        time.sleep(0.05)
    browser.execute_script("window.scrollTo(0, 0)")
    keep_screenshot(browser, tmp_path, "report_planted.png", record_property)

    choose(browser, "class-filter", "c:beta")
    assert len(rows(browser)) == 3
    assert set(cells(browser, "label")) == {"beta"}
    choose(browser, "class-filter", "f:")
    assert [r.text.split("\n")[1] for r in rows(browser)] == ["corrupt.jpg"]

    choose(browser, "class-filter", "")
    choose(browser, "sort", "score-desc")
    scores = [float(s) for s in cells(browser, "score") if s]
    assert len(scores) == 9 and scores == sorted(scores, reverse=True)
    assert len(set(scores)) > 3, "a sort of equal scores proves nothing"
    choose(browser, "sort", "score-asc")
    assert [float(s) for s in cells(browser, "score") if s] == sorted(scores)


def synthetic_manifest(n: int) -> dict:
    """A manifest of ``n`` images, one target each, over 7 classes, 1 in 1000 failed."""
    rng = np.random.default_rng(0)
    scores = rng.random(n)
    images = []
    for i in range(n):
        name = f"batch{i // 1000:03d}/img{i:06d}.jpg"
        if i % 1000 == 999:
            images.append({"input": "/data/" + name, "name": name, "status": "failed",
                           "reason": f"not an image: {name}"})
            continue
        k = i % 7
        out = f"{name}.class_{k}.jpg"
        images.append({"input": "/data/" + name, "name": name, "status": "done",
                       "outputs": [out], "inferences": 1, "seconds": 0.01,
                       "targets": [{"index": k, "label": f"class_{k}",
                                    "score": float(scores[i])}],
                       "thumbs": {"input": f"report/thumbs/input/{name}.jpg",
                                  "maps": [f"report/thumbs/map/{out}"],
                                  "overlays": [f"report/thumbs/overlay/{out}"]}})
    return {"command": ["salvo", "explain", "model.xml", "/data", "--out", "maps"],
            "versions": {"salvo": "test"}, "parameters": {"task": "classification",
                                                          "method": "reciprocam"},
            "summary": {"done": n - n // 1000, "failed": n // 1000}, "images": images}


@pytest.mark.slow
def test_a_report_of_100000_rows_opens_on_its_first_page(browser, tmp_path, record_property):
    n = 100_000
    t0 = time.perf_counter()
    page = write_report(tmp_path, synthetic_manifest(n))
    written = time.perf_counter() - t0
    assert page == tmp_path / "report" / "index.html"
    browser.get(page.resolve().as_uri())
    end = time.monotonic() + 60
    while browser.execute_script("return document.body.dataset.firstPageMs") is None:
        assert time.monotonic() < end, "the first page never rendered"
        time.sleep(0.02)
    assert len(rows(browser)) == 50
    first = float(browser.execute_script("return document.body.dataset.firstPageMs"))
    open_report(browser, page, timeout=60)
    first_again = float(browser.execute_script("return document.body.dataset.firstPageMs"))
    everything = float(browser.execute_script("return document.body.dataset.allRowsMs"))
    assert browser.find_element("id", "page-info").text == f"page 1 of {n // 50} ({n} rows)"
    browser.find_element("id", "next").click()
    assert rows(browser)[0].text.startswith("51\n"), "the second page starts at row 51"
    choose(browser, "class-filter", "c:class_3")
    assert set(cells(browser, "label")) == {"class_3"}
    choose(browser, "class-filter", "f:")
    assert browser.find_element("id", "page-info").text == f"page 1 of 2 ({n // 1000} rows)"
    keep_screenshot(browser, tmp_path, "report_100000.png", record_property)
    message = (f"100000-row report: written in {written:.2f} s; first page rendered "
               f"{first:.0f} ms / {first_again:.0f} ms after navigation start (two loads), "
               f"all rows {everything:.0f} ms")
    record_property("timing", message)
    print(message)


def test_a_missing_chromium_fails_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no chromium, no chromedriver
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium "
                                                    "chromium-driver"):
        _browser_paths()
