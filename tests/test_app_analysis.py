"""The app's 比较 tab: the same comparison, agencies and targets as the CLI, on what the page shows.

Uses the keyword stand-in model of ``test_app.py`` (no training) and two seed documents.
"""

from __future__ import annotations

import pandas as pd
import pytest

from policytag import paths

gr = pytest.importorskip("gradio")

from test_app import KeywordModel  # noqa: E402  (tests/ is on sys.path)

SICHUAN = paths.SOURCES_DIR / "sichuan-2023-kepu-nengli.txt"
JIANGXI = paths.SOURCES_DIR / "jiangxi-2023-kepu-cuoshi.txt"
KUNSHAN = paths.SOURCES_DIR / "kunshan-2023-kxsz-shishi.txt"


@pytest.fixture
def svc(tmp_path):
    from policytag.data.corrections import CorrectionStore
    from policytag.modeling.registry import ModelRegistry
    from policytag.serving.workbench import AppService, load_app_config

    return AppService(model=KeywordModel(), store=CorrectionStore(tmp_path / "c.sqlite"),
                      registry=ModelRegistry(tmp_path / "models"), config=load_app_config([]))


@pytest.fixture
def ws2(svc):
    return svc.tag_files([str(JIANGXI), str(SICHUAN)])


def test_two_documents_give_the_cli_comparison(svc, ws2):
    from policytag.analysis.compare import compare_documents

    a = svc.analyze(ws2)
    assert a.comparison is not None and a.comparison.groups == [d.doc_id for d in ws2.docs]
    by_doc = {d.doc_id: [r.to_dict() for r in d.rows] for d in ws2.docs}
    same = compare_documents(by_doc, svc.taxonomy)
    for g in same.groups:  # what the CLI's library computes from the same rows
        assert (a.comparison.shares[g].values == same.shares[g].values).all()
    files = svc.analysis_files(a, "compare")
    assert [f.rsplit(".", 2)[-2:] for f in files] == [["compare", "xlsx"], ["compare", "png"]]
    sheets = pd.read_excel(files[0], sheet_name=None)
    assert {"占比", "差异", "政策工具类别", "条款", "说明"} <= set(sheets)


def test_a_correction_changes_the_analysis(svc, ws2):
    row = next(r for r in ws2.rows if r.measures)
    before = svc.analyze(ws2)
    svc.save_correction(row, themes=["elderly"], measures=["funding"], annotator="tester")
    after = svc.analyze(ws2)
    g = row.doc_id
    assert after.comparison.counts[g].loc["elderly", "funding"] == before.comparison.counts[g].loc["elderly", "funding"] + 1
    assert "人工修正 1 条" in after.source


def test_one_document_explains_that_comparing_needs_two_and_still_lists_agencies_and_targets(svc):
    from policytag.errors import InputError
    from policytag.serving import analysis_render as ar

    ws = svc.tag_files([str(KUNSHAN)])
    a = svc.analyze(ws)
    assert a.comparison is None
    assert "至少两份文档" in ar.compare_html(a, svc.taxonomy)
    with pytest.raises(InputError, match="两份"):
        svc.analysis_files(a, "compare")
    assert a.agencies is not None and "市科协" in a.agencies.measures.index
    html = ar.agencies_html(a, svc.taxonomy)
    assert "市科协" in html and "<script" not in html
    assert len(a.targets) > 0 and len(ar.targets_frame(a)) == len(a.targets)
    files = svc.analysis_files(a, "agencies") + svc.analysis_files(a, "targets")
    assert sorted(f.rsplit(".", 2)[-2] for f in files) == ["agencies", "agencies", "targets"]


def test_handlers_analyse_click_a_cell_and_download(svc, ws2):
    from policytag.serving.analysis_tab import AnalysisHandlers

    h = AnalysisHandlers(svc)
    state, msg, cmp_html, ag_html, targets, cell, files = h.analyze(ws2, "zh")
    assert "2 份文档" in msg and 'data-t="' in cmp_html and isinstance(targets, pd.DataFrame)
    g = state.comparison.groups[0]
    counts = state.comparison.counts[g]
    t, m = next((t, m) for t in counts.index for m in counts.columns if counts.loc[t, m] > 0)
    evt = gr.EventData(None, {"theme": t, "measure": m})
    listed = h.cell(state, "zh", evt)
    assert listed.count("<li>") >= int(counts.loc[t, m])
    out, err = h.download(state, "compare", "zh", None)
    assert err == "" and len(out) == 2
    en = h.views(state, "en")[0]
    assert "difference (pp)" in en
    none = h.analyze(None, "zh")
    assert none[0] is None and "先在" in none[1]


def test_the_app_has_the_tab(svc):
    from policytag.serving.app import build_app

    demo = build_app(model=KeywordModel(), store=svc.store, registry=svc.registry, config=svc.config)
    cfg = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in cfg["components"]}
    assert {"pt-tab-analysis", "pt-an-compare", "pt-an-agencies", "pt-an-targets"} <= ids
