"""The app's service and callbacks without a browser: errors, roles, review decisions, exports,
several documents, languages, and (over HTTP) that only the four named endpoints are public.

Uses the keyword stand-in model of ``test_app.py``: no training needed.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from policytag import paths
from policytag.errors import InputError, PolicytagError, UnknownLabelError

gr = pytest.importorskip("gradio")

from test_app import KeywordModel, free_port  # noqa: E402  (tests/ is on sys.path)

SICHUAN = paths.SOURCES_DIR / "sichuan-2023-kepu-nengli.txt"
JIANGXI = paths.SOURCES_DIR / "jiangxi-2023-kepu-cuoshi.txt"


@pytest.fixture
def store(tmp_path):
    from policytag.data.corrections import CorrectionStore

    return CorrectionStore(tmp_path / "corrections.sqlite")


def _svc(store, tmp_path, overrides=()):
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.workbench import AppService, load_app_config

    return AppService(model=KeywordModel(), store=store, registry=ModelRegistry(tmp_path / "models"),
                      config=load_app_config(list(overrides)))


@pytest.fixture
def svc(store, tmp_path):
    return _svc(store, tmp_path)


@pytest.fixture
def ws(svc):
    return svc.tag_text(SICHUAN.read_text(encoding="utf-8"), name="四川省科普能力建设意见")


def _handlers(svc):
    from policytag.serving.handlers import Handlers

    return Handlers(svc)


# --------------------------------------------------------------------------- errors


def _is_skip(v) -> bool:
    return isinstance(v, dict) and v.get("__type__") == "update" and len(v) == 1


def test_empty_text_is_one_message_at_the_input_and_nothing_else_changes(svc):
    out = list(_handlers(svc).ui_tag_text("   ", "", "themes", "zh"))
    assert len(out) == 1
    first = out[0]
    assert "没有文本" in first[1] and "pt-msg-error" in first[1]
    assert all(_is_skip(v) for i, v in enumerate(first) if i != 1)  # downloads, table, heat map: untouched


def test_doc_file_says_to_save_as_docx_or_pdf(svc, tmp_path):
    doc = tmp_path / "通知.doc"
    doc.write_bytes(b"\xd0\xcf\x11\xe0junk")
    with pytest.raises(InputError, match="另存为.*docx 或 PDF"):
        svc.read_uploads([str(doc)])
    out = list(_handlers(svc).ui_tag_files([str(doc)], "themes", "zh"))
    assert "另存为" in out[-1][1] and out[-1][-1] is None  # the upload widget is emptied for the next try


def test_streaming_yields_progress_then_partial_then_complete(svc):
    svc.config.setdefault("ui", {})["stream_chunk"] = 16
    import policytag.serving.handlers as hmod

    old, hmod.STREAM_EVERY_S = hmod.STREAM_EVERY_S, 0.0
    try:
        outs = list(_handlers(svc).ui_tag_text(SICHUAN.read_text(encoding="utf-8"), "", "themes", "zh"))
    finally:
        hmod.STREAM_EVERY_S = old
    assert "正在标注 0/" in outs[0][1]
    assert any("正在标注 16/" in o[1] for o in outs)
    partial = next(o for o in outs if "正在标注 16/" in o[1])
    assert partial[4].count('class="pt-clause') == 16  # the first clauses are shown while the rest are tagged
    final = outs[-1]
    assert "完成" in final[1] and final[0].rows and final[2] is None  # old downloads cleared for a new document


# --------------------------------------------------------------------------- roles


def test_corrections_need_a_named_annotator_and_valid_fields(svc, ws):
    row = ws.rows[2]
    for who in (None, "", "   "):
        with pytest.raises(InputError, match="标注人"):
            svc.save_correction(row, ["youth"], [], who)
    with pytest.raises(UnknownLabelError):
        svc.save_correction(row, ["kids"], [], "张三")
    forged = row.to_dict()
    forged["model_version"] = "v9999"
    with pytest.raises(InputError, match="未知的模型版本"):
        svc.save_correction(forged, ["youth"], [], "张三")
    svc.config["limits"]["max_chars"] = 10
    with pytest.raises(InputError, match="条款过长"):
        svc.save_correction(row, ["youth"], [], "张三")
    assert len(svc.store) == 0


def test_admin_actions_need_the_token_when_one_is_set(store, tmp_path):
    open_svc = _svc(store, tmp_path)
    open_svc.check_admin(None)  # no token configured: local mode
    svc = _svc(store, tmp_path, ["auth.admin_token=s3cret"])
    for call in (lambda: svc.start_retrain(None), lambda: svc.start_retrain("wrong"),
                 lambda: svc.promote("v0001", ""), lambda: svc.rollback("nope")):
        with pytest.raises(InputError, match="管理员口令"):
            call()
    assert svc.retrain_job is None
    svc.check_admin("s3cret")


def test_serving_on_another_address_needs_a_token(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from policytag.cli.main import app
    from policytag.serving.workbench import load_app_config, public_host_check

    monkeypatch.delenv("POLICYTAG_ADMIN_TOKEN", raising=False)
    cfg = load_app_config()
    assert public_host_check("127.0.0.1", cfg) is None
    assert "admin token" in public_host_check("0.0.0.0", cfg)
    assert public_host_check("0.0.0.0", load_app_config(["auth.admin_token=x"])) is None
    assert public_host_check("0.0.0.0", load_app_config(["auth.require_on_public_host=false"])) is None
    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "7998"])
    assert isinstance(res.exception, PolicytagError)
    msg = str(res.exception)
    assert "refusing to serve on 0.0.0.0 without an admin token" in msg and "\n" not in msg


# --------------------------------------------------------------------------- review decisions


def test_accept_correct_and_junk_are_stored_at_once_and_junk_leaves_the_counts(svc, ws):
    rows = ws.rows
    h = _handlers(svc)
    acc = h.decide({"row": rows[0].to_dict(), "action": "accept", "themes": rows[0].themes,
                    "measures": rows[0].measures, "annotator": "审核员"})
    assert acc["ok"] and acc["status"] == "accepted"
    fix = h.decide({"row": rows[1].to_dict(), "action": "save", "themes": ["farmers"], "measures": [],
                    "annotator": "审核员"})
    assert fix["ok"] and fix["status"] == "corrected" and fix["themes"] == ["farmers"]
    junk = h.decide({"row": rows[2].to_dict(), "action": "junk", "annotator": "审核员"})
    assert junk["ok"] and junk["status"] == "junk"
    assert not h.decide({"row": rows[3].to_dict(), "action": "accept", "annotator": ""})["ok"]
    recs = {r["clause_id"]: r for r in svc.store.records()}
    assert {recs[r.clause_id]["status"] for r in rows[:3]} == {"accepted", "corrected", "junk"}
    assert recs[rows[0].clause_id]["themes"] == rows[0].themes  # "the model was right" is a reviewed clause too
    # junk is no training data and leaves the app's counts
    assert rows[2].text not in {c.text for c in svc.store.latest()}
    shown = svc.overlay_corrections(rows)
    assert [r.status for r in shown[:4]] == ["accepted", "corrected", "junk", ""]
    pairs = lambda rs: sum(max(1, len(r.themes)) * max(1, len(r.measures)) for r in rs if not r.junk)  # noqa: E731
    assert int(svc.heatmap(shown).values.sum()) == pairs(shown) == pairs(rows) - pairs([rows[2]]) \
        - pairs([rows[1]]) + pairs([shown[1]])


def test_bulk_action_adds_a_label_to_the_filtered_clauses(svc, ws):
    from policytag.serving.render import ALL, filter_rows

    chosen = filter_rows(ws.rows, ALL, ALL, "科普")[:12]
    assert len(chosen) >= 2
    n, new = svc.bulk_apply(chosen, "farmers", True, "张三")
    assert n == len(chosen) and all("farmers" in r.themes for r in new)
    assert all(r["note"] == "bulk" and "farmers" in r["themes"] for r in svc.store.records())
    again, _ = svc.bulk_apply(new, "farmers", True, "张三")
    assert again == 0  # nothing duplicated
    removed, back = svc.bulk_apply(new, "farmers", False, "张三")
    assert removed == len(chosen) and not any("farmers" in r.themes for r in back)
    with pytest.raises(InputError, match="标注人"):
        svc.bulk_apply(chosen, "farmers", True, "")


def test_a_store_written_before_statuses_gets_the_column(tmp_path):
    from policytag.data.corrections import CorrectionStore

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, clause_key TEXT NOT NULL, text TEXT NOT NULL,
          context TEXT NOT NULL DEFAULT '', doc_id TEXT NOT NULL DEFAULT '', clause_id TEXT NOT NULL DEFAULT '',
          predicted_themes TEXT, predicted_measures TEXT, scores TEXT, themes TEXT NOT NULL, measures TEXT NOT NULL,
          model_version TEXT, annotator TEXT, note TEXT, created_at TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO corrections (clause_key, text, themes, measures, created_at)
          VALUES ('k', '开展科技馆进校园活动。', '["youth"]', '["activities"]', '2025-01-01T00:00:00.000000+00:00');
    """)
    con.commit()
    con.close()
    store = CorrectionStore(db)
    old = store.records()
    assert len(old) == 1 and old[0]["status"] is None and store.latest()[0].themes == ["youth"]
    store.add("另一条条款。", [], [], status="junk", annotator="a")
    assert len(store.records()) == 2 and len(store.latest()) == 1


# --------------------------------------------------------------------------- exports


def test_xlsx_export_has_chinese_labels_title_codebook_and_plain_cells(svc, ws):
    from openpyxl import load_workbook

    row = ws.rows[0]
    evil = svc.save_correction(row, ["youth"], [], "=HYPERLINK(\"x\")", "@SUM(A1)")[2]
    ws = ws.replace([evil])
    ws.docs[0].rows[1].context = "=1+1"
    path = svc.export(ws, "xlsx")
    sheets = pd.read_excel(path, sheet_name=None)
    assert set(sheets) == {"条款", "热力图", "编码表"}
    clauses = sheets["条款"]
    for col in ("文件名", "文件标题", "发文机关", "年份", "主题", "措施类型", "主题_id", "措施_id", "置信度"):
        assert col in clauses.columns
    assert set(clauses["文件名"]) == {"四川省科普能力建设意见"}
    assert clauses["文件标题"].iloc[0] == "关于大力加强科普能力建设 夯实创新发展基础的意见"
    youth = clauses[clauses["主题_id"].fillna("").str.contains("youth")]
    assert len(youth) and all("青少年" in v for v in youth["主题"])  # Chinese names by default, ids beside them
    assert clauses["置信度"].iloc[0] != clauses["置信度"].iloc[0]  # corrected: no stale score (empty cell)
    assert clauses["复核状态"].iloc[0] == "已修正"
    assert clauses["标题路径"].iloc[1] == "'=1+1"  # no live formula
    book = sheets["编码表"]
    assert list(book.columns[:3]) == ["label", "中文", "English"] and len(book) == 17
    assert set(book["类别"].dropna()) >= {"供给型", "环境型", "需求型"}
    wb = load_workbook(path)
    sh = wb["条款"]
    assert sh.freeze_panes == "A2" and sh.auto_filter.ref.startswith("A1:")
    assert sh.column_dimensions["G"].width >= 40  # the clause column is wide
    assert not any(isinstance(c.value, str) and c.value.startswith("=") for r in sh.iter_rows() for c in r)
    heat = wb["热力图"]
    assert heat["B1"].value in ("环境型", "供给型") and heat.cell(heat.max_row, 1).value == "合计"


def test_english_headers_and_heat_map_pictures(svc, ws):
    clauses = pd.read_csv(svc.export(ws, "csv", lang="en"), encoding="utf-8-sig")
    assert {"file", "title", "clause", "themes", "measure_ids"} <= set(clauses.columns)
    assert any("Youth" in str(v) for v in clauses["themes"])
    png = Path(svc.export(ws, "heat_png"))
    svg = Path(svc.export(ws, "heat_svg"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))
    from policytag.serving.heatmap_plot import cjk_font

    assert cjk_font(), "no CJK font found: install fonts-noto-cjk"


def test_a_pasted_document_keeps_its_given_name(svc):
    ws = svc.tag_text(JIANGXI.read_text(encoding="utf-8"), name="江西科普若干措施")
    assert ws.docs[0].name == "江西科普若干措施" and ws.docs[0].doc_id == "江西科普若干措施"
    assert Path(svc.export(ws, "csv")).name == "江西科普若干措施.clauses.csv"
    assert svc.tag_text(JIANGXI.read_text(encoding="utf-8")).docs[0].name == "粘贴的文本"


# --------------------------------------------------------------------------- several documents


def test_several_files_and_a_zip_give_one_table_and_a_heat_map_each(svc, tmp_path):
    from policytag.serving.render import clause_table

    z = tmp_path / "docs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(JIANGXI, "sub/jiangxi-2023-kepu-cuoshi.txt")
        zf.writestr("__MACOSX/._x.txt", "junk")
        zf.writestr("../../evil.txt", SICHUAN.read_text(encoding="utf-8"))
    ws = svc.tag_files([str(SICHUAN), {"path": str(z), "orig_name": "docs.zip"}])
    assert [d.name for d in ws.docs] == ["sichuan-2023-kepu-nengli.txt", "jiangxi-2023-kepu-cuoshi.txt", "evil.txt"]
    assert not (tmp_path.parent / "evil.txt").exists()
    table = clause_table(ws.rows, svc.taxonomy, with_file=True)
    assert len(table) == len(ws.rows) and set(table["文件"]) == {d.name for d in ws.docs}
    per_doc = [int(svc.heatmap(ws.rows_of(d.doc_id)).values.sum()) for d in ws.docs[:2]]
    assert int(svc.heatmap(ws.rows_of(ws.docs[0].doc_id)).values.sum()) == per_doc[0]
    assert int(svc.heatmap(ws.rows_of("__all__")).values.sum()) >= sum(per_doc)
    xlsx = pd.read_excel(svc.export(ws, "xlsx"), sheet_name="条款")
    assert set(xlsx["文件名"]) == {d.name for d in ws.docs}


def test_a_zip_bomb_is_refused_before_extracting(svc, tmp_path):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.txt", "科" * (3 * 1024 * 1024))  # 9 MB of text, compresses to a few kB
    svc.config["limits"]["max_zip_mb"] = 5
    with pytest.raises(InputError, match="解压后.*超过 5 MB"):
        svc.read_uploads([str(z)])


# --------------------------------------------------------------------------- language


def test_one_language_at_a_time(svc, ws):
    from policytag.serving import render
    from policytag.serving.app import build_app

    zh = render.clause_table(ws.rows, svc.taxonomy, "zh")
    en = render.clause_table(ws.rows, svc.taxonomy, "en")
    assert list(zh.columns)[0] == "编号" and list(en.columns)[0] == "ID"
    assert not any("(" in v for v in zh["主题"]) and any("Youth" in v for v in en["Themes"])
    assert "青少年" not in render.heatmap_html(svc.heatmap(ws.rows), svc.taxonomy, lang="en")
    demo = build_app(model=KeywordModel(), store=svc.store, registry=svc.registry)
    labels = [getattr(b, "label", None) for b in demo.blocks.values()]
    mixed = [lab for lab in labels if isinstance(lab, str) and any("\u4e00" <= ch <= "\u9fff" for ch in lab)
             and any("a" <= ch.lower() <= "z" for ch in lab.replace("Excel", "").replace("CSV", "").replace("PNG", "")
                     .replace("SVG", "").replace("JSONL", "").replace("zip", "").replace("txt", "").replace("docx", "")
                     .replace("pdf", "").replace("html", ""))]
    assert not mixed, mixed


def test_api_help_uses_the_address_of_the_page():
    from policytag.serving.app import page_url
    from policytag.serving.api import api_help

    class Req:
        headers = {"host": "10.0.0.5:8123"}

    assert page_url(Req()) == "http://10.0.0.5:8123/"
    assert 'Client("http://10.0.0.5:8123/")' in api_help(page_url(Req()))
    assert "7860" not in api_help("http://10.0.0.5:8123/")


# --------------------------------------------------------------------------- over HTTP


@pytest.mark.slow
def test_only_the_named_endpoints_are_public_and_retrain_cannot_be_triggered(store, tmp_path, monkeypatch):
    """Call every event of the page through the HTTP queue (fn_index) and by api name, with no token."""
    import httpx
    from gradio_client import Client

    from policytag.serving import workbench

    started = []

    class FakeJob:  # a retraining that only records that it was started
        running = False

        def __init__(self, **kw):
            started.append(kw)

        def start(self):
            return self

        def state(self):
            return {"status": "running"}

    monkeypatch.setattr(workbench, "RetrainJob", FakeJob)

    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.api import PUBLIC_ENDPOINTS
    from policytag.serving.app import build_app, launch_options, load_app_config

    cfg = load_app_config(["auth.admin_token=s3cret"])
    registry = ModelRegistry(tmp_path / "models")
    demo = build_app(model=KeywordModel(), store=store, registry=registry, config=cfg)
    svc = demo.policytag_service
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_options(cfg))
    try:
        client = Client(url, verbose=False)
        named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
        assert named == set(PUBLIC_ENDPOINTS)
        assert client.predict(api_name="/model_info")["version"] == "kw-1"
        results = {}
        with httpx.Client(base_url=url, timeout=30) as http:
            for fn_index, fn in demo.fns.items():
                results[fn_index] = _call_by_index(http, fn_index, len(fn.inputs))
                if fn.api_name and fn.api_visibility != "public":
                    http.post(f"/gradio_api/call/{fn.api_name}", json={"data": [None] * len(fn.inputs)})
            # the review card's server function: same rule as /save_correction (a named annotator)
            comp = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "pt-review")
            r = http.post("/gradio_api/component_server/", json={
                "data": {"row": {"text": "开展科技馆进校园活动。"}, "action": "accept"}, "component_id": comp._id,
                "fn_name": "decide", "session_hash": uuid.uuid4().hex[:10]})
            assert r.status_code == 200 and r.json()["ok"] is False
        assert len(results) == len(demo.fns) and any(results.values())  # the calls did run
        assert svc.retrain_job is None and not started and registry.versions() == [] and len(store) == 0
        # the positive control: the same private event with the admin token does start a retraining
        token_box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "pt-admin-token")
        admin_fns = [i for i, fn in demo.fns.items() if token_box in fn.inputs]
        assert len(admin_fns) == 3  # retrain, promote, roll back
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in admin_fns:
                _call_by_index(http, i, 2, data=["s3cret", None])
        assert len(started) == 1 and svc.retrain_job is not None
    finally:
        demo.close()


def _call_by_index(http, fn_index: int, n_inputs: int, data: list | None = None) -> bool:
    """Join the queue with fn_index and empty inputs; True when the event completed successfully."""
    session = uuid.uuid4().hex[:10]
    r = http.post("/gradio_api/queue/join", json={"data": data or [None] * n_inputs, "fn_index": fn_index,
                                                  "session_hash": session, "event_data": None, "trigger_id": None})
    if r.status_code != 200:
        return False
    with http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                return bool(msg.get("success"))
            if msg.get("msg") in ("close_stream", "unexpected_error"):
                return False
    return False
