"""A real browser on the web app: Playwright driving Debian's headless chromium, tiny model.

Tags a seed document and corrects a clause; reviews 50 clauses with the keyboard (at most
100 key presses) and finds every decision in the store, also after a reload; clicks a heat
map cell and gets the table filtered, exports the heat map as PNG (caption in the file);
uploads several files; checks the phone layout. Screenshots go to ``$POLICYTAG_ARTIFACTS``
(or ``$POLICYTAG_SCREENSHOT_DIR``) and the test's tmp dir. Skipped (with the reason) where
chromium or the playwright package is missing; ``scripts/test.sh`` installs chromium with apt.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from policytag import paths

CHROMIUM = os.environ.get("POLICYTAG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SEED = paths.SOURCES_DIR / "sichuan-2023-kepu-nengli.txt"
JIANGXI = paths.SOURCES_DIR / "jiangxi-2023-kepu-cuoshi.txt"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

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
def app(tiny_model_dir, tmp_path):
    """(url, store, service) of the app with the tiny model on a free local port."""
    from policytag.data.corrections import CorrectionStore
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.app import build_app, launch_options, load_app_config

    cfg = load_app_config()
    store = CorrectionStore(tmp_path / "corrections.sqlite")
    demo = build_app(tiny_model_dir, store=store, registry=ModelRegistry(tmp_path / "models"), config=cfg)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True,
                            quiet=True, **launch_options(cfg))
    try:
        yield url, store, demo.policytag_service
    finally:
        demo.close()


def _page(browser, url: str, viewport: dict = DESKTOP):
    page = browser.new_page(viewport=viewport)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#pt-text textarea", timeout=60_000)
    page.wait_for_selector(".pt-badge-inner", timeout=60_000)
    return page


def _tag(page, text: str) -> None:
    page.fill("#pt-text textarea", text)
    page.click("#pt-tag-btn")
    page.wait_for_function("document.querySelector('#pt-summary').innerText.includes('个有标签')", timeout=120_000)


def _upload(page, files: list[Path]) -> None:
    """Upload several files at once on the 上传文件 tab and wait until all are tagged."""
    page.get_by_role("tab", name="上传文件").click()
    page.set_input_files("#pt-file input[type=file]", [str(f) for f in files])
    page.wait_for_function(f"document.querySelector('#pt-summary').innerText.includes('{len(files)} 份文档')",
                           timeout=120_000)


def _choose(page, elem_id: str, labels: list[str]) -> None:
    """Replace the selection of a Gradio multiselect dropdown by ``labels`` (their display text)."""
    box = page.locator(f"#{elem_id}")
    clear = box.locator(".remove-all")
    if clear.count():
        clear.first.click()
    for label in labels:
        box.locator("input").click()
        box.locator("input").fill(label)
        box.locator("li[role=option]", has_text=label).first.click()
    page.keyboard.press("Escape")


def _fill(page, elem_id: str, value: str) -> None:
    page.locator(f"#{elem_id}").locator("input, textarea").first.fill(value)


def _screenshot(page, tmp_path: Path, name: str, full_page: bool = False) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=full_page)
    for var in ("POLICYTAG_ARTIFACTS", "POLICYTAG_SCREENSHOT_DIR"):
        out = os.environ.get(var)
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(out) / name)
    return shot


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


# --------------------------------------------------------------------------- tag and correct


def test_tag_see_correct_in_a_real_browser(browser, app, tmp_path):
    url, store, _ = app
    page = _page(browser, url)
    _tag(page, SEED.read_text(encoding="utf-8"))
    clauses = page.locator("#pt-doc .pt-clause")
    n = clauses.count()
    assert n > 20
    assert page.locator("#pt-doc .pt-clause[style*='background']").count() > 0, "no clause is highlighted"
    assert page.locator("#pt-doc .pt-legend-item").count() == 6  # one legend entry per theme
    assert "个条款" in page.locator("#pt-summary").inner_text()
    assert "完成" in page.locator("#pt-input-msg").inner_text()
    page.get_by_text("按措施类型着色").click()
    page.wait_for_function("document.querySelectorAll('#pt-doc .pt-legend-item').length == 11")

    target = clauses.nth(min(8, n - 1))
    cid = target.get_attribute("data-cid")
    text = target.inner_text().strip()
    target.click()
    page.wait_for_function("cid => document.querySelector('#pt-clause-detail').innerText.includes(cid)", arg=cid,
                           timeout=30_000)
    _choose(page, "pt-themes", ["老年人"])
    _choose(page, "pt-measures", ["活动服务", "教育培训"])
    page.click("#pt-save-btn")  # no annotator: refused next to the button, nothing stored
    page.wait_for_function("document.querySelector('#pt-save-status').innerText.includes('标注人')", timeout=30_000)
    assert len(store) == 0
    _fill(page, "pt-annotator", "browser-test")
    _fill(page, "pt-note", "改为老年人活动")
    page.click("#pt-save-btn")
    page.wait_for_function("document.querySelector('#pt-save-status').innerText.includes('已保存校正')", timeout=30_000)
    rec = store.records(latest_only=False)
    assert len(rec) == 1 and rec[0]["clause_id"] == cid and "".join(rec[0]["text"].split()) == "".join(text.split())
    assert rec[0]["themes"] == ["elderly"] and rec[0]["measures"] == ["education_training", "activities"]
    assert rec[0]["annotator"] == "browser-test" and rec[0]["status"] == "corrected"
    assert page.locator("#pt-doc .pt-corrected").count() == 1
    _screenshot(page, tmp_path, "app-tagged-1440.png")
    assert not page.errors, page.errors


# --------------------------------------------------------------------------- review mode


def test_review_50_clauses_with_at_most_100_key_presses(browser, app, tmp_path):
    url, store, svc = app
    page = _page(browser, url)
    _tag(page, SEED.read_text(encoding="utf-8"))
    page.get_by_role("tab", name="复核").click()
    _fill(page, "pt-rv-annotator", "审核员")
    page.click("#pt-rv-start")
    page.wait_for_selector(".pt-rv-clause", timeout=30_000)
    total = int(page.locator(".pt-rv-counter").inner_text().split("/")[-1])
    assert total >= 50
    page.locator(".pt-review-card").click()
    presses, plan = 0, {}
    for i in range(50):
        if i % 10 == 3:  # the model is mostly right: one clause in ten gets a theme toggled
            page.keyboard.press("2")
            presses += 1
            plan[i] = "corrected"
        if i == 17:  # and one is not a clause at all
            page.keyboard.press("n")
            plan[i] = "junk"
        else:
            page.keyboard.press("Enter")
            plan.setdefault(i, "accepted")
        presses += 1
        if i == 24:
            _screenshot(page, tmp_path, "app-review-1440.png")
    assert presses <= 100
    page.wait_for_function("document.querySelector('.pt-rv-counter b').innerText === '50'", timeout=60_000)
    _wait(lambda: len(store.records()) == 50)
    recs = store.records()
    assert sum(r["status"] == "junk" for r in recs) == 1
    assert sum(r["status"] == "corrected" for r in recs) == 5
    assert sum(r["status"] == "accepted" for r in recs) == 44
    assert all(r["annotator"] == "审核员" and r["model_version"] == svc.version for r in recs)
    corrected = [r for r in recs if r["status"] == "corrected"]
    assert all(("farmers" in r["themes"]) != ("farmers" in (r["predicted_themes"] or [])) for r in corrected)
    # nothing lost on reload: a new page on the same document starts at clause 51 with 50 reviewed
    page.reload()
    page.wait_for_selector("#pt-text textarea", timeout=60_000)
    _tag(page, SEED.read_text(encoding="utf-8"))
    page.get_by_role("tab", name="复核").click()
    page.click("#pt-rv-start")
    page.wait_for_selector(".pt-rv-clause", timeout=30_000)
    assert page.locator(".pt-rv-counter b").inner_text() == "50"
    assert "第 51 条" in page.locator(".pt-rv-pos").inner_text()
    assert not page.errors, page.errors


# --------------------------------------------------------------------------- heat map


def test_heatmap_click_filters_the_table_and_exports_a_png_with_caption(browser, app, tmp_path):
    from PIL import Image

    url, _, svc = app
    page = _page(browser, url)
    _tag(page, SEED.read_text(encoding="utf-8"))
    page.get_by_role("tab", name="热力图").click()
    heat = page.locator("#pt-heat table.pt-heat")
    heat.wait_for()
    assert heat.locator("tbody tr").count() == 8  # 6 themes + 无 + totals
    assert heat.locator("thead tr").first.locator("th").count() == 1 + 3 + 1 + 1  # corner, 3 families, 无, 合计
    assert heat.locator("thead tr").nth(1).locator("th").count() == 12  # 11 measures + 无
    box = heat.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= DESKTOP["width"], "heat map does not fit at 1440 px"
    wrap = page.locator(".pt-heat-wrap").evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    assert wrap, "the heat map needs a sideways scroll at 1440 px"
    cells = heat.locator("td.pt-cell")
    values = [c.inner_text().strip() for c in cells.all()]
    k = max(range(len(values)), key=lambda i: int(values[i] or 0))
    cells.nth(k).click()  # the fullest cell: its clauses in the table
    page.wait_for_selector("#pt-bulk-msg .pt-msg", timeout=30_000)
    n = int("".join(ch for ch in page.locator("#pt-bulk-msg").inner_text() if ch.isdigit()))
    assert n == int(values[k])
    assert page.locator("#pt-f-theme input").input_value() != "全部主题"
    _screenshot(page, tmp_path, "app-heat-filtered-1440.png")
    page.get_by_role("tab", name="热力图").click()
    page.get_by_text("行百分比", exact=True).click()
    page.wait_for_function("document.querySelector('#pt-heat tbody').innerText.includes('%')")
    page.locator("#pt-heat").scroll_into_view_if_needed()
    _screenshot(page, tmp_path, "app-heatmap-1440.png")
    # the heat map as a picture, with its caption
    page.click("#pt-heat-png")
    page.wait_for_function("document.querySelector('#pt-downloads').innerText.includes('.png')", timeout=60_000)
    pngs = list(svc._export_root.rglob("*.heatmap.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 20_000
    caption = Image.open(pngs[0]).text.get("Title", "")
    assert caption.startswith("文档：") and svc.version in caption and time.strftime("%Y-") in caption
    assert not page.errors, page.errors


# --------------------------------------------------------------------------- several documents


def test_several_files_at_once(browser, app, tmp_path):
    url, _, _ = app
    page = _page(browser, url)
    _upload(page, [SEED, JIANGXI])
    assert page.locator("#pt-doc-sel").is_visible()
    page.get_by_role("tab", name="条款表").click()
    page.wait_for_selector("#pt-table [data-testid='header-0']")
    assert page.locator("#pt-table [data-testid='header-0']").inner_text().strip() == "文件"
    page.get_by_role("tab", name="热力图").click()
    page.wait_for_selector("#pt-heat table.pt-heat")
    overall = page.locator("#pt-heat .pt-corner").inner_text()
    assert "2 份文档" in overall
    page.locator("#pt-heat-doc input").click()
    page.locator("li[role=option]", has_text="jiangxi").first.click()
    page.wait_for_function("document.querySelector('#pt-heat .pt-corner').innerText.includes('jiangxi')", timeout=30_000)
    _screenshot(page, tmp_path, "app-two-documents-1440.png")
    assert not page.errors, page.errors


# --------------------------------------------------------------------------- phone


def test_compare_tab_shows_the_difference_and_the_clauses_behind_a_cell(browser, app, tmp_path):
    url, _, _ = app
    page = _page(browser, url)
    _upload(page, [JIANGXI, SEED])
    page.get_by_role("tab", name="比较").click()
    page.wait_for_function("document.querySelector('#pt-an-msg').innerText.includes('已分析 2 份文档')", timeout=60_000)
    assert page.locator("#pt-an-compare table.pt-balance").is_visible()
    assert "差异" in page.locator("#pt-an-compare .pt-corner").nth(1).inner_text()
    page.locator("#pt-an-compare td.pt-cell:not(:empty)").first.click()
    page.wait_for_selector("#pt-an-cell li", timeout=30_000)
    _screenshot(page, tmp_path, "analysis-compare.png", full_page=True)
    page.locator("#pt-an-dl-compare").click()
    page.wait_for_function("document.querySelectorAll('#pt-an-files a').length >= 2", timeout=60_000)
    assert not page.errors


def test_phone_layout(browser, app, tmp_path):
    url, _, _ = app
    page = _page(browser, url, PHONE)
    _tag(page, SEED.read_text(encoding="utf-8"))
    tabs = page.locator("#pt-tabs button[role=tab]")
    names = [t.inner_text().strip() for t in tabs.all() if t.is_visible()]
    assert names[:5] == ["标注", "复核", "比较", "模型", "API"], names  # none hidden behind "⋯"
    for t in tabs.all()[:5]:
        b = t.bounding_box()
        assert b and b["x"] + b["width"] <= PHONE["width"]
    _screenshot(page, tmp_path, "app-phone-390.png")
    page.get_by_role("tab", name="条款表").click()
    page.wait_for_selector("#pt-table .body-cell")
    clause_cell = page.locator("#pt-table .virtual-row").first.locator(".body-cell").nth(1)
    assert clause_cell.bounding_box()["width"] >= 200, "the clause column is too narrow to read"
    page.locator("#pt-table").scroll_into_view_if_needed()
    _screenshot(page, tmp_path, "app-phone-table-390.png")
    page.get_by_role("tab", name="热力图").click()
    wrap = page.locator(".pt-heat-wrap")
    wrap.wait_for()
    assert wrap.evaluate("e => e.scrollWidth > e.clientWidth"), "the heat map should scroll sideways on a phone"
    first = page.locator("#pt-heat .pt-trow").first
    cell = page.locator("#pt-heat td.pt-cell").nth(6)
    x0, c0 = first.bounding_box()["x"], cell.bounding_box()["x"]
    wrap.evaluate("e => { e.scrollLeft = 200; }")
    page.wait_for_timeout(200)
    assert c0 - cell.bounding_box()["x"] > 150  # the cells scrolled ...
    assert abs(first.bounding_box()["x"] - x0) < 20, "the theme column should stay fixed while scrolling"
    wrap.scroll_into_view_if_needed()
    _screenshot(page, tmp_path, "app-phone-heatmap-390.png")
    assert not page.errors, page.errors
