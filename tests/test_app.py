"""The web app: the service (workbench), rendering, limits, corrections, and the API over a real server.

The fast tests use a keyword "model" (a stand-in with the PolicyClassifier interface) so
that they need no training; the slow ones launch the app on a free local port with the
tiny transformer (fixture ``tiny_model_dir``) and talk to it with ``gradio_client``.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from policytag import paths
from policytag.errors import InputError, ModelNotFoundError
from policytag.data.taxonomy import load_taxonomy

gr = pytest.importorskip("gradio")

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = sorted(paths.SOURCES_DIR.glob("*.txt"))
SICHUAN = paths.SOURCES_DIR / "sichuan-2023-kepu-nengli.txt"

KEYWORDS = {  # label -> cue words: enough to give every seed document some labels
    "youth": ["青少年", "学生", "学校"], "farmers": ["农民", "农村", "乡村"], "workers": ["职工", "产业工人"],
    "elderly": ["老年"], "officials": ["干部", "公务员"], "infrastructure": ["科技馆", "基地", "场馆"],
    "goal_planning": ["到2025年", "规划"], "organization": ["协调", "职责"], "regulation": ["监管", "条例"],
    "incentive_evaluation": ["考核", "表彰"], "funding": ["经费", "资金"], "talent": ["人才", "志愿者"],
    "facility_building": ["建设"], "content_media": ["传播", "作品"], "education_training": ["培训", "课程"],
    "activities": ["活动", "竞赛"], "cooperation_market": ["合作", "产业"],
}


class KeywordModel:
    """A stand-in classifier: probability 0.9 for a label whose cue word is in the clause."""

    def __init__(self, version: str = "kw-1"):
        self.taxonomy = load_taxonomy()
        self.label_ids = self.taxonomy.label_ids
        self.thresholds = np.full(len(self.label_ids), 0.5, dtype=np.float32)
        self.version = version
        self.metadata = {"version": version, "backend": "keywords", "base_model": {"name": "keywords"},
                         "created_at": "2026-01-01T00:00:00+00:00", "n_train_clauses": 12, "train_docs": ["a", "b"],
                         "metrics": {"test": {"n": 10, "themes": {"micro_f1": 0.8, "macro_f1": 0.7},
                                              "measures": {"micro_f1": 0.6, "macro_f1": 0.5}, "all": {"exact_match": 0.3}}}}
        self.calls = 0

    def predict_proba(self, clauses, batch_size=None, progress=False):
        self.calls += 1
        out = np.full((len(clauses), len(self.label_ids)), 0.1, dtype=np.float32)
        for i, c in enumerate(clauses):
            text = c if isinstance(c, str) else (c.text if hasattr(c, "text") else c["text"])
            for j, lab in enumerate(self.label_ids):
                if any(k in text for k in KEYWORDS[lab]):
                    out[i, j] = 0.9
                elif lab == "goal_planning" and "目标" in text:
                    out[i, j] = 0.52  # close to the threshold: first in the review queue
        return out

    def decide(self, probs):
        return (np.asarray(probs) >= self.thresholds[None, :]).astype(np.int8)

    def decide_clauses(self, probs, clauses):
        return self.decide(probs)


@pytest.fixture
def store(tmp_path):
    from policytag.data.corrections import CorrectionStore

    return CorrectionStore(tmp_path / "corrections.sqlite")


@pytest.fixture
def svc(store, tmp_path):
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.workbench import AppService

    return AppService(model=KeywordModel(), store=store, registry=ModelRegistry(tmp_path / "models"))


def _tag_seed(svc, path=SICHUAN):
    return svc.tag(svc.read_text(path.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- rendering


def test_document_html_highlights_every_clause_with_taxonomy_colours(svc):
    from policytag.serving.render import document_html, legend_html

    res = _tag_seed(svc)
    tax = svc.taxonomy
    assert len(res.rows) > 20 and all(r.span for r in res.rows)
    page = document_html(res.text, res.rows, tax, "themes")
    assert page.count('class="pt-clause') == len(res.rows)
    assert page.count("data-cid=") == len(res.rows)
    youth = [r for r in res.rows if "youth" in r.themes]
    assert youth and tax["youth"].color in page
    by_measure = document_html(res.text, res.rows, tax, "measures")
    assert tax["activities"].color in by_measure and by_measure != page
    legend = legend_html(tax, "measures", res.rows)
    assert "供给型" in legend and "需求型" in legend and tax["funding"].zh in legend
    # the clause text is shown exactly once (escaped), nothing of the document is lost
    assert "&lt;" not in page or "<" in res.text


def test_document_html_without_spans_rebuilds_from_headings(svc):
    from dataclasses import replace

    from policytag.serving.render import document_html

    rows = [replace(r, span=None) for r in _tag_seed(svc).rows[:5]]
    page = document_html("", rows, svc.taxonomy)
    assert page.count('class="pt-clause') == 5


def test_table_filter_heatmap_families(svc):
    from policytag.serving.render import ALL, TABLE_COLUMNS, clause_table, families_html, filter_rows, heatmap_html
    from policytag.serving.tagging import NONE_ID

    rows = _tag_seed(svc).rows
    tax = svc.taxonomy
    df = clause_table(rows, tax)
    assert list(df.columns) == TABLE_COLUMNS["zh"] and len(df) == len(rows)
    assert any("科普基础设施" in v for v in df["主题"])
    assert all(v == "" or 0 <= float(v) <= 1 for v in df["置信度"])  # the label decision's confidence
    infra = filter_rows(rows, "infrastructure", ALL, "")
    assert infra and all("infrastructure" in r.themes for r in infra)
    none = filter_rows(rows, NONE_ID, ALL, "")
    assert none and all(not r.themes for r in none)
    assert len(infra) + len(none) <= len(rows)
    both = filter_rows(rows, "infrastructure", "facility_building", "")
    assert all("facility_building" in r.measures for r in both)
    assert all("科技馆" in r.text or "科技馆" in r.context for r in filter_rows(rows, ALL, ALL, "科技馆"))
    heat = heatmap_html(svc.heatmap(rows), tax)
    assert "合计" in heat and "供给型" in heat and tax["youth"].zh in heat and tax["talent"].zh in heat
    assert heat.count('class="pt-cell"') == 7 * 12  # 6 themes + 无, 11 measures + 无: every cell clickable
    assert "%" in heatmap_html(svc.heatmap(rows), tax, mode="pct")
    fam = families_html(svc.family_counts(rows), tax)
    assert fam.count("pt-fam-row") == 3


# --------------------------------------------------------------------------- limits and bad input


def test_bad_input_gets_a_clear_message(svc, tmp_path):
    with pytest.raises(InputError, match="没有文本"):
        svc.read_text("   \n ")
    svc.config["limits"]["max_chars"] = 1000
    with pytest.raises(InputError, match="过长.*policytag predict"):
        svc.read_text(SICHUAN.read_text(encoding="utf-8"))
    exe = tmp_path / "virus.exe"
    exe.write_bytes(b"MZ")
    with pytest.raises(InputError, match="不支持的文件类型 .exe"):
        svc.read_file(exe)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="空"):
        svc.read_file(empty)
    svc.config["limits"].update(max_chars=0, max_clauses=10)
    with pytest.raises(InputError, match="上限 10"):
        _tag_seed(svc)


def test_200_page_document_is_refused_before_the_model_runs(svc):
    big = SICHUAN.read_text(encoding="utf-8") * 30  # ~440 000 characters, about 250 pages
    model = svc.model
    with pytest.raises(InputError, match="过长"):
        svc.tag(svc.read_text(big))
    assert model.calls == 0


def test_upload_uses_the_file_name_as_doc_id(svc, tmp_path):
    doc = svc.read_file(SICHUAN, name="sichuan-2023-kepu-nengli.txt")
    res = svc.tag(doc, name="sichuan-2023-kepu-nengli.txt")
    assert res.doc_id == "sichuan-2023" and res.name == "sichuan-2023-kepu-nengli.txt"
    assert all(r.clause_id.startswith("sichuan-2023/") for r in res.rows)


def test_no_model_says_how_to_train_one(store, tmp_path):
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.app import build_app
    from policytag.serving.workbench import AppService

    with pytest.raises(ModelNotFoundError, match="--train-if-missing"):
        AppService(store=store, registry=ModelRegistry(tmp_path / "models"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        build_app(tmp_path / "missing-model", store=store)


def test_serve_without_model_exits_with_the_training_hint(tmp_path):
    from typer.testing import CliRunner

    from policytag.cli.main import app

    res = CliRunner().invoke(app, ["serve", "--port", "7999"])
    assert isinstance(res.exception, ModelNotFoundError)
    assert "policytag serve --train-if-missing" in str(res.exception)


def test_serve_train_if_missing_trains_first_then_builds_the_app(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from policytag.training import retrain
    from policytag.cli.main import app
    from policytag.serving import app as webapp

    calls = []

    class Stop(Exception):
        pass

    def fake_build_app(model_dir=None, store=None, registry=None, *, config=None, model=None):
        calls.append(("build", model_dir, config["corrections"]["db"], config["retrain"]["config"],
                      config["limits"]["max_chars"]))
        raise Stop

    monkeypatch.setattr(retrain, "ensure_production_model", lambda config: calls.append(("ensure", config)) or tmp_path)
    monkeypatch.setattr(webapp, "build_app", fake_build_app)
    db = tmp_path / "c.sqlite"
    res = CliRunner().invoke(app, ["serve", "--train-if-missing", "--config", "tiny", "--db", str(db),
                                   "--set", "limits.max_chars=5000"])
    assert isinstance(res.exception, Stop), res.output
    assert calls == [("ensure", "tiny"), ("build", None, str(db), "tiny", 5000)]


# --------------------------------------------------------------------------- corrections


def test_save_correction_keeps_prediction_is_idempotent_and_survives_restart(svc, store, tmp_path):
    from policytag.data.corrections import CorrectionStore
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.workbench import AppService

    res = _tag_seed(svc)
    row = res.rows[3]
    rid, written, new = svc.save_correction(row, ["elderly"], ["activities", "education_training"], "张三", "测试")
    assert written and new.themes == ["elderly"] and new.measures == ["education_training", "activities"]
    assert new.corrected and new.predicted_themes == row.themes
    rid2, written2, _ = svc.save_correction(new, ["elderly"], ["education_training", "activities"], "张三", "")
    assert (rid2, written2) == (rid, False)
    recs = store.records(latest_only=False)
    assert len(recs) == 1
    rec = recs[0]
    assert rec["model_version"] == "kw-1" and rec["annotator"] == "张三" and rec["note"] == "测试"
    assert rec["predicted_themes"] == row.themes and rec["predicted_measures"] == row.measures
    assert rec["scores"]["youth"] == pytest.approx(row.scores["youth"])
    assert rec["status"] == "corrected"
    assert svc.corrections_since_training() == 1
    # names in display form are accepted; unknown ids are an error naming the id
    rid3, written3, _ = svc.save_correction(new, ["老年人 (elderly)"], ["活动服务"], "张三", None)
    assert written3 and rid3 != rid
    from policytag.errors import UnknownLabelError

    with pytest.raises(UnknownLabelError, match="no_such_label"):
        svc.save_correction(new, ["no_such_label"], [], "张三", None)

    # a restart: a new store object on the same file and a new app show the saved labels
    svc2 = AppService(model=KeywordModel(), store=CorrectionStore(store.path), registry=ModelRegistry(tmp_path / "m2"))
    again = _tag_seed(svc2)
    fixed = [r for r in again.rows if r.corrected]
    assert [r.text for r in fixed] == [row.text]
    assert fixed[0].themes == ["elderly"] and fixed[0].measures == ["activities"]
    assert fixed[0].predicted_themes == row.themes
    assert fixed[0].to_dict()["corrected"] and "已修正" in __import__(
        "policytag.serving.render", fromlist=["x"]).confidence_text(fixed[0])


def test_review_queue_reads_the_least_certain_label(svc):
    from policytag.data.records import ReviewItem
    from policytag.serving.render import review_table

    res = _tag_seed(svc)
    items = svc.review(res.rows, 5)
    assert len(items) == 5 and all(isinstance(it, ReviewItem) for it in items)
    df = review_table(items, svc.taxonomy)
    assert list(df["编号"]) == [it.row.clause_id for it in items]
    # the column used to read a key review_queue never wrote: it was always empty
    tax = svc.taxonomy
    assert all(v.startswith(tax[it.nearest_label].zh) for v, it in zip(df["最不确定的标签"], items))


def test_exports_are_written_on_demand(svc):
    import pandas as pd

    from policytag.serving.workbench import Workspace

    ws = Workspace([_tag_seed(svc)])
    for fmt, suffix in [("xlsx", ".clauses.xlsx"), ("csv", ".clauses.csv"), ("jsonl", ".clauses.jsonl"),
                        ("heat_csv", ".heatmap.csv")]:
        assert svc.export(ws, fmt).endswith(suffix)
    xlsx = pd.read_excel(svc.export(ws, "xlsx"), sheet_name=None)
    assert len(xlsx["条款"]) == len(ws.rows) and "p_youth" in xlsx["条款"].columns
    heat = pd.read_csv(svc.export(ws, "heat_csv"), encoding="utf-8-sig", header=[0, 1], index_col=0)
    assert "青少年" in set(heat.index) and "合计" in set(heat.index)


def test_model_panel_figures(svc, store):
    from policytag.serving.panels import model_markdown, retrain_markdown

    info = svc.model_info()
    assert info["version"] == "kw-1" and info["base_model"] == "keywords" and info["n_train_clauses"] == 12
    assert info["metrics"][0]["set"] == "test" and info["metrics"][0]["theme_micro_f1"] == 0.8
    md = model_markdown(info)
    assert "kw-1" in md and "0.800" in md and "上次训练以来" in md
    assert "重新训练" in retrain_markdown({"status": "idle"})
    done = retrain_markdown({"status": "done", "result": {
        "version": "v0002", "promoted": True, "new_score": 0.71, "production_score": 0.65, "delta": 0.06,
        "metric": "mean_micro_f1", "n_train": 100, "corrections": 3, "n_test": 40, "seconds": 12}})
    assert "v0002" in done and "0.650 → **0.710**" in done and "已上线" in done


def test_build_app_has_named_api_endpoints(svc, store):
    from policytag.serving.app import build_app

    demo = build_app(model=KeywordModel(), store=store, registry=svc.registry)
    public = {f.api_name for f in demo.fns.values() if getattr(f, "api_visibility", "public") == "public"}
    assert public == {"tag_text", "tag_file", "save_correction", "model_info"}
    assert demo.policytag_service.store is store


# --------------------------------------------------------------------------- over a real server (slow)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tiny_model_dir, store, tmp_path):
    """The app with the tiny model, launched on a free local port; yields (url, service)."""
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.app import build_app, launch_options, load_app_config

    cfg = load_app_config(["limits.max_chars=60000"])
    demo = build_app(tiny_model_dir, store=store, registry=ModelRegistry(tmp_path / "models"), config=cfg)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, **launch_options(cfg))
    try:
        yield url, demo.policytag_service
    finally:
        demo.close()


@pytest.mark.slow
def test_gradio_client_tag_correct_and_errors(served, store, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, svc = served
    client = Client(url, verbose=False)
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/tag_text", "/tag_file", "/save_correction", "/model_info"} <= names

    res = client.predict(SICHUAN.read_text(encoding="utf-8"), api_name="/tag_text")
    assert res["n_clauses"] == len(res["clauses"]) > 20
    assert res["model_version"] == svc.model_info()["version"]
    c = res["clauses"][0]
    assert {"clause_id", "context", "text", "themes", "measures", "p_youth", "model_version"} <= set(c)
    assert len(res["heatmap"]["counts"]) == len(res["heatmap"]["themes"])
    assert set(res["families"]) == {"supply", "environment", "demand"}

    up = client.predict(handle_file(str(paths.SOURCES_DIR / "jiangxi-2023-kepu-cuoshi.txt")), api_name="/tag_file")
    assert up["doc_id"] == "jiangxi-2023" and up["n_clauses"] > 10

    clause = res["clauses"][5]
    first = client.predict(clause, ["elderly"], ["activities"], "李四", "app test", api_name="/save_correction")
    second = client.predict(clause, ["elderly"], ["activities"], "李四", "app test", api_name="/save_correction")
    assert first["written"] and not second["written"] and first["id"] == second["id"]
    recs = store.records(latest_only=False)
    assert len(recs) == 1 and recs[0]["text"] == clause["text"]
    assert recs[0]["predicted_themes"] == clause["themes"] and recs[0]["model_version"] == res["model_version"]
    assert client.predict(api_name="/model_info")["corrections_since_training"] == 1

    bad = tmp_path / "slides.pptx"
    bad.write_bytes(b"PK\x03\x04")
    for args, api, message in [
        (("  ",), "/tag_text", "没有文本"),
        (("科" * 60001,), "/tag_text", "过长"),
        ((handle_file(str(bad)),), "/tag_file", "不支持的文件类型"),
    ]:
        with pytest.raises(AppError, match=message) as err:
            client.predict(*args, api_name=api)
        assert "Traceback" not in str(err.value)


@pytest.mark.slow
def test_several_users_at_once_are_queued_not_crashed(served):
    from gradio_client import Client

    url, _ = served
    texts = [p.read_text(encoding="utf-8") for p in SEEDS if p.stat().st_size < 20000][:3]
    results: list = [None] * 6
    errors: list = []

    def user(i: int) -> None:
        try:
            results[i] = Client(url, verbose=False).predict(texts[i % len(texts)], api_name="/tag_text")["n_clauses"]
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=user, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors and all(isinstance(n, int) and n > 0 for n in results)


@pytest.mark.slow
def test_retrain_button_runs_in_background_and_switches_model(tmp_path, store, monkeypatch):
    """The model panel's retraining: a background job, tagging still works, then the new version is served."""
    import functools
    import time

    from policytag.training import retrain as rt
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.panels import retrain_markdown
    from policytag.serving.workbench import AppService, load_app_config

    gold = FIXTURES / "mini_gold.jsonl"
    from policytag.clause import load_clauses

    test_doc = sorted({c.doc_id for c in load_clauses(gold)})[0]
    # train the tiny config on the small fixture data instead of the full default model
    monkeypatch.setattr(rt, "RetrainJob", functools.partial(rt.RetrainJob, gold=str(gold), test_docs=[test_doc]))
    cfg = load_app_config(["retrain.config=tiny", "retrain.mode=thread"])
    svc = AppService(model=KeywordModel(), store=store, registry=ModelRegistry(tmp_path / "models"), config=cfg)
    assert svc.start_retrain()
    assert not svc.start_retrain()  # one job at a time
    res = svc.tag(svc.read_text(SICHUAN.read_text(encoding="utf-8")))  # tagging is not blocked
    assert res.rows
    deadline = time.time() + 600
    while svc.retrain_state()["status"] == "running" and time.time() < deadline:
        assert "正在重新训练" in retrain_markdown(svc.retrain_state())
        time.sleep(1)
    st = svc.retrain_state()
    assert st["status"] == "done", st
    version = st["result"]["version"]
    assert st["result"]["promoted"] and svc.model_info()["version"] == version
    assert svc.follows_registry and svc.model_info()["status"] == "production"
    assert version in retrain_markdown(st) and "已上线" in retrain_markdown(st)
