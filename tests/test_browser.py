"""The web pages in a real headless Chromium (Debian's), driven by Playwright, against real Gunicorn.

``make screenshots`` runs these with SCREENSHOT_DIR=docs/screenshots to refresh the README's pictures.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from helpers import copy_store, encode, post_upload
from playwright.sync_api import expect, sync_playwright

from bench.harness import ROOT, gunicorn
from mnist_flask.model import list_versions, write_label

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    """A fresh page that fails the test if it asks for anything but the server itself."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    opened = context.new_page()
    foreign = []
    opened.on("request", lambda request: foreign.append(request.url) if not request.url.startswith((server.url, "data:", "blob:")) else None)
    yield opened
    context.close()
    assert foreign == [], "the page loaded assets from outside the server"


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)


@pytest.fixture
def digit_file(tmp_path, mnist_test):
    images, labels = mnist_test
    path = tmp_path / "digit.png"
    path.write_bytes(encode(255 - images[3]))  # dark ink on white, as a scan would be
    return path, int(labels[3])


def test_upload_shows_the_digit_probabilities_and_model_input(page, server, digit_file, screenshot_dir):
    path, label = digit_file
    page.goto(server.url + "/")
    page.get_by_label("Choose a digit picture").set_input_files(path)
    expect(page.locator("#prediction")).to_have_text(str(label))
    expect(page.locator("#probabilities tr.best")).to_have_attribute("data-digit", str(label))
    assert page.locator("#probabilities tr[data-digit]").count() == 10
    assert page.locator("#model-input").get_attribute("src").startswith("data:image/png;base64,")
    expect(page.locator("#sent")).to_be_visible()
    page.screenshot(path=screenshot_dir / "upload.png", full_page=True)


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Mouse strokes on the pad; points are fractions of its width and height."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
ONE = [[(0.5, 0.15), (0.5, 0.85)]]


@pytest.mark.parametrize(("strokes", "digit"), [(ONE, 1), (SEVEN, 7)], ids=["one", "seven"])
def test_drawing_a_digit(page, server, strokes, digit, screenshot_dir):
    page.goto(server.url + "/")
    draw(page, strokes)
    expect(page.locator("#prediction")).to_have_text(str(digit))
    page.screenshot(path=screenshot_dir / f"draw-{digit}.png", full_page=True)
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#result")).to_be_hidden()


def test_text_file_gets_a_message_on_the_page(page, server, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    page.goto(server.url + "/")
    page.get_by_label("Choose a digit picture").set_input_files(path)
    expect(page.locator("#error")).to_contain_text("not an image")
    expect(page.locator("#result")).to_be_hidden()


def test_too_large_file_gets_a_message_on_the_page(page, server, tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(bytes(5 * 1024 * 1024))
    page.goto(server.url + "/")
    page.get_by_label("Choose a digit picture").set_input_files(path)
    expect(page.locator("#error")).to_contain_text("limit")


def test_plain_form_post_works_without_javascript(browser, server, digit_file):
    path, label = digit_file
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.locator("#pad")).to_be_hidden()
    page.get_by_label("Choose a digit picture").set_input_files(path)
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(page.locator("#prediction")).to_have_text(str(label))
    assert urlparse(page.url).path == "/prediction"
    context.close()


def test_phone_width_has_no_sideways_scrolling(browser, server, screenshot_dir):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server.url + "/")
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.screenshot(path=screenshot_dir / "phone.png", full_page=True)
    context.close()


def test_keyboard_reaches_every_control(page, server):
    page.goto(server.url + "/")
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert {"image", "stroke", "clear", "predict-drawing", "Predict"} <= reached


def test_swagger_try_it_out_with_a_file(page, server, digit_file, screenshot_dir):
    path, label = digit_file
    page.goto(server.url + "/apidocs/")
    operation = page.locator(".opblock-post", has_text="/prediction")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("input[type=file]").set_input_files(path)
    operation.get_by_role("button", name="Execute").click()
    body = operation.locator(".live-responses-table .response-col_description pre").first
    expect(body).to_contain_text(f'"prediction": {label}')
    page.screenshot(path=screenshot_dir / "apidocs.png", full_page=False)


def policy_violations(page) -> list[str]:
    """Console messages about the Content-Security-Policy (an inline script or style it blocked)."""
    found = []
    page.on("console", lambda message: found.append(message.text) if "Content Security Policy" in message.text else None)
    return found


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    """A store mid-rollout: version 2 labelled stable, the newest (3) the canary for 10 %, so 2 is the default."""
    store = tmp_path_factory.mktemp("store")
    copy_store(store)
    write_label(store, "mnist", "stable", 2)
    write_label(store, "mnist", "canary", 3)
    env = {"MNIST_FLASK_MODEL_DIR": str(store), "MNIST_FLASK_CANARY_PERCENT": "10"}
    with gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", env=env) as started:
        yield started


def test_models_page_lists_every_version_with_its_traffic(browser, rollout, digit_file, screenshot_dir):
    path, _ = digit_file
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda query: post_upload(rollout.url, path.read_bytes(), path="/prediction" + query),
                      [""] * 100 + ["?version=1"] * 3))  # fmt: skip
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    violations = policy_violations(page)
    page.goto(rollout.url + "/")
    page.get_by_role("link", name="Model versions").click()
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-version") for i in range(3)] == ["3", "2", "1"]
    stable, canary, named = (page.locator(f"tr[data-version='{v}']") for v in (2, 3, 1))
    expect(stable.locator(".labels")).to_have_text("stable")
    expect(canary.locator(".labels")).to_have_text("canary")
    expect(stable.locator(".share")).to_contain_text("90 % (default)")
    expect(canary.locator(".share")).to_contain_text("10 % (canary)")
    expect(named.locator(".share")).to_contain_text("0 % (named only)")
    expect(canary).to_contain_text("litert")
    expect(canary).to_contain_text("99.14 %")  # its x_test accuracy, from its metadata
    counts = [int(row.locator(".requests").inner_text()) for row in (stable, canary, named)]
    assert sum(counts[:2]) == 100 and counts[2] == 3  # summed over both workers
    assert violations == []
    page.screenshot(path=screenshot_dir / "models.png", full_page=True)
    context.close()


def test_compare_versions_shows_every_version_side_by_side(page, server, digit_file, screenshot_dir):
    path, label = digit_file
    versions = list_versions(ROOT / "models", "mnist")
    violations = policy_violations(page)
    page.goto(server.url + "/")
    page.get_by_label("Compare versions").check()
    page.get_by_label("Choose a digit picture").set_input_files(path)
    cards = page.locator("#comparison-cards article")
    expect(cards).to_have_count(len(versions))
    assert [cards.nth(i).get_attribute("data-model") for i in range(len(versions))] == [f"mnist:{v}" for v in versions]
    for index in range(len(versions)):
        expect(cards.nth(index).locator(".digit")).to_have_text(str(label))
        expect(cards.nth(index).locator("tr.best")).to_have_attribute("data-digit", str(label))
        assert cards.nth(index).locator("tr[data-digit]").count() == 10
    expect(page.locator("#result")).to_be_hidden()
    page.screenshot(path=screenshot_dir / "compare.png", full_page=True)
    page.get_by_role("button", name="Clear").click()
    draw(page, SEVEN)
    expect(cards.first.locator(".digit")).to_have_text("7")
    expect(cards).to_have_count(len(versions))
    page.get_by_label("Compare versions").uncheck()  # the same drawing again, to the default version only
    expect(page.locator("#prediction")).to_have_text("7")
    expect(page.locator("#comparison")).to_be_hidden()
    assert violations == []


def test_the_digit_found_is_outlined_on_the_sent_picture(page, server, mnist_test, tmp_path, screenshot_dir):
    """A wide page with the digit in its right half: the outline sits over the digit, not the page."""
    images, labels = mnist_test
    page_pixels = np.full((200, 400), 240, np.uint8)
    page_pixels[40:152, 250:362] = 240 - np.kron(images[3], np.ones((4, 4), np.uint8)) * 0.85
    path = tmp_path / "page.png"
    path.write_bytes(encode(page_pixels))
    page.goto(server.url + "/")
    page.get_by_label("Choose a digit picture").set_input_files(path)
    expect(page.locator("#prediction")).to_have_text(str(labels[3]))
    expect(page.locator("#digit-box")).to_be_visible()
    sent, outline = page.locator("#sent").bounding_box(), page.locator("#digit-box").bounding_box()
    scale = sent["width"] / 400
    assert sent["height"] == pytest.approx(200 * scale, abs=1.5)  # the picture keeps its shape
    centre = ((outline["x"] - sent["x"] + outline["width"] / 2) / scale, (outline["y"] - sent["y"] + outline["height"] / 2) / scale)
    assert 270 < centre[0] < 345 and 60 < centre[1] < 135
    assert outline["width"] / scale < 112 and outline["height"] / scale < 112
    page.screenshot(path=screenshot_dir / "outline.png", full_page=True)
