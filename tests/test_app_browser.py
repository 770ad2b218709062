"""A real browser on the web app: Playwright driving Debian's headless chromium.

Pastes a seed document, tags it, checks the highlighted clauses and the heat map, edits
one clause's labels, saves, and finds the correction in the store. Saves a screenshot to
the test's tmp dir and, when ``POLICYTAG_SCREENSHOT_DIR`` is set, there too.
Skipped (with the reason) where chromium or the playwright package is missing;
``scripts/test.sh`` installs chromium with apt.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from policytag import paths

CHROMIUM = os.environ.get("POLICYTAG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SEED = paths.SOURCES_DIR / "sichuan-2023-kepu-nengli.txt"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
                    "(scripts/test.sh does) or set POLICYTAG_CHROMIUM")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def app_url(tiny_model_dir, tmp_path):
    from policytag.data.corrections import CorrectionStore
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.app import build_app, launch_options, load_app_config

    cfg = load_app_config()
    store = CorrectionStore(tmp_path / "corrections.sqlite")
    demo = build_app(tiny_model_dir, store=store, registry=ModelRegistry(tmp_path / "models"), config=cfg)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True,
                            quiet=True, **launch_options(cfg))
    try:
        yield url, store
    finally:
        demo.close()


def _choose(page, elem_id: str, labels: list[str]) -> None:
    """Replace the selection of a Gradio multiselect dropdown by ``labels`` (their display text)."""
    box = page.locator(f"#{elem_id}")
    clear = box.locator(".remove-all")
    if clear.count():
        clear.first.click()
    for label in labels:
        box.locator("input").click()
        box.locator("input").fill(label.split(" ")[0])
        box.locator("li[role=option]", has_text=label).first.click()
    page.keyboard.press("Escape")


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    out = os.environ.get("POLICYTAG_SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(out) / name)
    return shot


def test_tag_see_correct_in_a_real_browser(browser, app_url, tmp_path):
    url, store = app_url
    page = browser.new_page(viewport={"width": 1500, "height": 1250})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#pt-text textarea", timeout=60_000)

    # paste a seed document and tag it
    page.fill("#pt-text textarea", SEED.read_text(encoding="utf-8"))
    page.click("#pt-tag-btn")
    page.wait_for_selector("#pt-doc .pt-clause", timeout=120_000)
    clauses = page.locator("#pt-doc .pt-clause")
    n = clauses.count()
    assert n > 20
    highlighted = page.locator("#pt-doc .pt-clause[style*='background']")
    assert highlighted.count() > 0, "no clause is highlighted by a label colour"
    assert page.locator("#pt-doc .pt-legend-item").count() == 6  # one legend entry per theme
    assert "个条款" in page.locator("#pt-summary").inner_text()
    downloads = page.locator("#pt-downloads").inner_text()
    assert downloads.count("xlsx") == 2 and "jsonl" in downloads and downloads.count("csv") == 2

    # the colouring follows the chosen dimension
    page.get_by_text("按措施类型着色 (by measure type)").click()
    page.wait_for_function("document.querySelectorAll('#pt-doc .pt-legend-item').length == 11")

    # the heat map: themes x measures with family headers
    page.get_by_role("tab", name="热力图 (Heat map)").click()
    heat = page.locator("#pt-heat table.pt-heat")
    heat.wait_for()
    assert heat.locator("tbody tr").count() == 8  # 6 themes + "无" + totals
    assert "供给型" in heat.inner_text() and "需求型" in heat.inner_text()
    _screenshot(page, tmp_path, "app-heatmap.png")
    page.get_by_role("tab", name="高亮文档 (Document)").click()

    # click a clause in the document: the correction form opens on it
    target = clauses.nth(min(8, n - 1))
    cid = target.get_attribute("data-cid")
    text = target.inner_text().strip()
    target.click()
    page.wait_for_function(
        "cid => document.querySelector('#pt-clause-detail') && document.querySelector('#pt-clause-detail').innerText.includes(cid)",
        arg=cid, timeout=30_000)

    # change its labels and save
    _choose(page, "pt-themes", ["老年人 (elderly)"])
    _choose(page, "pt-measures", ["活动服务 (activities)", "教育培训 (education_training)"])
    page.locator("#pt-annotator").locator("input, textarea").first.fill("browser-test")
    page.locator("#pt-note").locator("input, textarea").first.fill("改为老年人活动")
    page.click("#pt-save-btn")
    page.wait_for_function("document.querySelector('#pt-save-status').innerText.includes('已保存校正')", timeout=30_000)

    recs = store.records(latest_only=False)
    assert len(recs) == 1
    rec = recs[0]
    assert rec["clause_id"] == cid and "".join(rec["text"].split()) == "".join(text.split())
    assert rec["themes"] == ["elderly"] and rec["measures"] == ["education_training", "activities"]
    assert rec["annotator"] == "browser-test" and rec["note"] == "改为老年人活动"
    assert rec["model_version"] and rec["predicted_themes"] is not None

    # the page shows the corrected clause; saving again writes nothing new
    assert page.locator("#pt-doc .pt-corrected").count() == 1
    page.click("#pt-save-btn")
    page.wait_for_function("document.querySelector('#pt-save-status').innerText.includes('已经保存过')", timeout=30_000)
    assert len(store.records(latest_only=False)) == 1

    target = page.locator(f"#pt-doc [data-cid='{cid}']")
    target.scroll_into_view_if_needed()
    shot = _screenshot(page, tmp_path, "app-tagged.png")
    assert shot.stat().st_size > 20_000
    assert not errors, errors
