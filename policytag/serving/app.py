"""The policytag web app (Gradio 6): lay out the page and wire widgets to the service.

``build_app()`` returns a :class:`gradio.Blocks`; ``policytag serve`` (``cli/serve.py``) is
the only place that launches it. The work is done by :class:`~policytag.serving.workbench.AppService`
(no Gradio), the HTML by :mod:`~policytag.serving.render`, the downloads by
:mod:`~policytag.serving.exports`; the callbacks in :mod:`~policytag.serving.handlers`
translate between widgets and the service.

Named API endpoints for ``gradio_client`` (the only public ones): ``/tag_text``,
``/tag_file``, ``/save_correction``, ``/model_info``. Every other event is private, and
what it could change is guarded in the service itself (a named annotator for corrections,
the admin token for retrain / promote / rollback), since a private Gradio event can still
be called by anyone who can open the page.
"""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import gradio as gr

from policytag import paths
from policytag.serving import analysis_tab, panels, render
from policytag.serving.documents import doc_meta, upload_types
from policytag.serving.exports import export_choices
from policytag.serving.api import api_help, named_endpoints
from policytag.serving.handlers import Handlers
from policytag.serving.i18n import t
from policytag.serving.render import ALL
from policytag.serving.workbench import AppService, Workspace, load_app_config
from policytag.text.ingestion import doc_id_for

__all__ = ["AppService", "build_app", "launch_options", "load_app_config", "example_documents"]

STATIC_DIR = Path(__file__).resolve().parent
CSS_FILE = STATIC_DIR / "app.css"
REVIEW_JS = (STATIC_DIR / "review.js").read_text(encoding="utf-8")
CLICK_JS = """
element.addEventListener('click', (e) => {
  const c = e.target.closest('[data-cid]');
  if (!c) return;
  element.querySelectorAll('.pt-selected').forEach(x => x.classList.remove('pt-selected'));
  c.classList.add('pt-selected');
  trigger('click', {clause_id: c.dataset.cid});
});
"""
HEAT_JS = """
element.addEventListener('click', (e) => {
  const c = e.target.closest('td[data-t]');
  if (!c) return;
  trigger('click', {theme: c.dataset.t, measure: c.dataset.m});
});
"""
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def launch_options(config: dict | None = None) -> dict:
    """Keyword arguments for ``Blocks.launch`` that belong to the app itself (theme, css, upload limit)."""
    cfg = config or load_app_config()
    system_fonts = ["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC",
                    "WenQuanYi Micro Hei", "Helvetica Neue", "Arial", "sans-serif"]
    theme = gr.themes.Soft(primary_hue="blue", secondary_hue="sky", neutral_hue="slate", radius_size="sm",
                           font=system_fonts, font_mono=["Menlo", "Consolas", "Noto Sans Mono CJK SC", "monospace"])
    return {"theme": theme, "css_paths": [CSS_FILE], "max_file_size": (cfg.get("server") or {}).get("max_file_size"),
            "footer_links": ["api", "settings"]}


def example_documents(config: dict) -> list[tuple[str, str, str]]:
    """(readable name, text, doc id) of the one-click examples: the seed documents in ``labels/sources``."""
    ex = config.get("examples") or {}
    names = dict(ex.get("names") or {})
    chosen = list(ex.get("sources") or [])
    files = [paths.SOURCES_DIR / n for n in chosen] if chosen else sorted(paths.SOURCES_DIR.glob("*.txt"))
    out = []
    for f in files:
        if f.exists():
            text = f.read_text(encoding="utf-8")
            out.append((names.get(f.name) or doc_meta(text, f.name, f.stem).title, text, doc_id_for(f.name)))
    return out


def build_app(model_dir: str | Path | None = None, store: Any = None, registry: Any = None, *,
              config: dict | None = None, model: Any = None) -> gr.Blocks:
    """Build the app around a model (``model_dir``, or the registry's production model).

    Raises :class:`~policytag.errors.ModelNotFoundError` with the commands to train a model when there is none.
    """
    svc = AppService(model_dir=model_dir, store=store, registry=registry, config=config, model=model)
    h = Handlers(svc)
    ui = svc.config.get("ui") or {}
    with gr.Blocks(title=ui.get("title", "policytag"), fill_width=True, elem_id="pt-app") as demo:
        c = SimpleNamespace(state=gr.State(None), i18n=[])
        _header(c, ui)
        with gr.Tabs(selected="tag", elem_id="pt-tabs") as c.tabs:
            _tag_tab(c, h, svc.config)
            _review_tab(c, h, svc.config)
            analysis_tab.build(c, h.tax, _tr)
            _model_tab(c, svc)
            with gr.Tab(t("tab_api"), id="api", elem_id="pt-tab-api"):
                c.api_md = gr.Markdown(api_help("http://127.0.0.1:7860/"))
        named_endpoints(svc)  # first: the public names are taken before any private event is named
        _wire_tagging(c, h)
        _wire_table(c, h)
        _wire_review(c, h)
        analysis_tab.wire(c, analysis_tab.AnalysisHandlers(svc))
        _wire_model(c, h, demo)
        _wire_language(c, h)
    q = svc.config.get("queue") or {}
    demo.queue(default_concurrency_limit=int(q.get("default_concurrency_limit", 2)), max_size=q.get("max_size"))
    demo.policytag_service = svc  # for tests and the benchmark: the state behind the page
    return demo


def _dims(lang: str) -> list[tuple[str, str]]:
    return [(t("dim_themes", lang), "themes"), (t("dim_measures", lang), "measures")]


def _tr(c: SimpleNamespace, comp: Any, **keys: str | Callable[[str], Any]) -> Any:
    """Register a widget's translatable properties for the language switch.

    Each keyword is a property: a key of :data:`i18n.STRINGS` (``label="text_label"``) or a
    function of the language (``choices=lambda lang: ...``).
    """
    c.i18n.append((comp, keys))
    return comp


# --------------------------------------------------------------------------- layout


def _header(c: SimpleNamespace, ui: dict) -> None:
    with gr.Row(elem_classes="pt-header"):
        with gr.Column(scale=4, min_width=240):
            gr.HTML(f'<div class="pt-title">{html.escape(ui.get("title", "policytag"))}</div>')
            c.subtitle = _tr(c, gr.Markdown(t("subtitle"), elem_classes="pt-sub"), value="subtitle")
        with gr.Column(scale=2, min_width=200):
            c.badge = gr.HTML(elem_classes="pt-badge")
            c.lang = gr.Radio([("中文", "zh"), ("English", "en")], value="zh", show_label=False, container=False,
                              elem_id="pt-lang")


def _tag_tab(c: SimpleNamespace, h: Handlers, cfg: dict) -> None:
    ui = cfg.get("ui") or {}
    th, me = h.filter_choices("zh")
    with _tr(c, gr.Tab(t("tab_tag"), id="tag", elem_id="pt-tab-tag"), label="tab_tag") as c.tab_tag:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                with gr.Tabs():
                    with _tr(c, gr.Tab(t("tab_paste"), id="paste"), label="tab_paste"):
                        c.text_in = _tr(c, gr.Textbox(label=t("text_label"), lines=5, max_lines=7, elem_id="pt-text",
                                                      placeholder=t("text_placeholder")), label="text_label", placeholder="text_placeholder")
                        with gr.Row():
                            c.doc_name = _tr(c, gr.Textbox(label=t("docname_label"), placeholder=t("docname_placeholder"),
                                                           elem_id="pt-docname", scale=3), label="docname_label", placeholder="docname_placeholder")
                            c.tag_btn = _tr(c, gr.Button(t("tag_btn"), variant="primary", elem_id="pt-tag-btn", scale=1), value="tag_btn")
                            c.clear_btn = _tr(c, gr.ClearButton([c.text_in, c.doc_name], value=t("clear_btn"), scale=1), value="clear_btn")
                    with _tr(c, gr.Tab(t("tab_upload"), id="upload"), label="tab_upload"):
                        c.file_in = _tr(c, gr.File(label=t("file_label"), file_count="multiple", file_types=upload_types(),
                                                   elem_id="pt-file", height=120), label="file_label")
                        c.upload_hint = _tr(c, gr.Markdown(f"<span class='pt-muted'>{t('upload_hint')}</span>"),
                                            value=lambda lang: f"<span class='pt-muted'>{t('upload_hint', lang)}</span>")
                c.input_msg = gr.HTML(elem_id="pt-input-msg")
                c.examples = example_documents(cfg)
                if c.examples:
                    h.seed_ids = {name: doc_id for name, _, doc_id in c.examples}  # examples keep their file's doc id
                    c.ex = gr.Examples(examples=[[txt, name] for name, txt, _ in c.examples], inputs=[c.text_in, c.doc_name],
                                       example_labels=[name for name, _, _ in c.examples], label=t("examples_label"),
                                       examples_per_page=10, cache_examples=False)
            with gr.Column(scale=2, min_width=300):
                c.summary = gr.Markdown(t("no_doc"), elem_id="pt-summary")
                c.families = gr.HTML(elem_id="pt-families")
                with gr.Row():
                    c.export_fmt = _tr(c, gr.Dropdown(export_choices("zh"), value="xlsx", label=t("export_label"), scale=3,
                                                      elem_id="pt-export-fmt"), label="export_label", choices=export_choices)
                    c.export_btn = _tr(c, gr.Button(t("export_btn"), elem_id="pt-export-btn", scale=2), value="export_btn")
                c.export_msg = gr.HTML()
                c.downloads = _tr(c, gr.File(label=t("downloads_label"), file_count="multiple", interactive=False,
                                             elem_id="pt-downloads", height=110), label="downloads_label")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                _results(c, h, ui, th, me)
            with gr.Column(scale=2, min_width=300, elem_classes="pt-editor"):
                _correction_form(c, h, cfg)


def _results(c: SimpleNamespace, h: Handlers, ui: dict, th: list, me: list) -> None:
    with gr.Tabs(selected="doc", elem_id="pt-result-tabs") as c.result_tabs:
        with _tr(c, gr.Tab(t("tab_doc"), id="doc"), label="tab_doc"):
            with gr.Row():
                c.dimension = _tr(c, gr.Radio(_dims("zh"), value=ui.get("highlight_by", "themes"), show_label=False,
                                              elem_id="pt-dimension", container=False, scale=2), choices=_dims)
                c.doc_sel = _tr(c, gr.Dropdown([], label=t("doc_select"), visible=False, scale=2, elem_id="pt-doc-sel"),
                                label="doc_select")
            c.doc_html = gr.HTML(render.document_html("", [], h.tax), elem_id="pt-doc", js_on_load=CLICK_JS, max_height=720)
        with _tr(c, gr.Tab(t("tab_table"), id="table"), label="tab_table"):
            with gr.Row():
                c.f_theme = _tr(c, gr.Dropdown(th, value=ALL, label=t("f_theme"), scale=1, elem_id="pt-f-theme"), label="f_theme",
                                choices=lambda lang: h.filter_choices(lang)[0])
                c.f_measure = _tr(c, gr.Dropdown(me, value=ALL, label=t("f_measure"), scale=1, elem_id="pt-f-measure"),
                                  label="f_measure", choices=lambda lang: h.filter_choices(lang)[1])
                c.f_query = _tr(c, gr.Textbox(label=t("f_query"), scale=2, placeholder=t("f_query_ph"), elem_id="pt-f-query"),
                                label="f_query", placeholder="f_query_ph")
            c.bulk_msg = gr.HTML(elem_id="pt-bulk-msg")
            c.table = _tr(c, gr.Dataframe(render.clause_table([], h.tax), interactive=False, wrap=True,
                                          max_height=int(ui.get("table_height", 520)), elem_id="pt-table",
                                          column_widths=render.TABLE_WIDTHS, buttons=["fullscreen", "copy"],
                                          label=t("table_label")), label="table_label")
            with gr.Accordion(t("bulk_title"), open=False, elem_id="pt-bulk") as c.bulk_acc:
                with gr.Row():
                    c.bulk_label = _tr(c, gr.Dropdown(h.label_choices("themes", "zh") + h.label_choices("measures", "zh"),
                                                      label=t("bulk_label"), scale=2, elem_id="pt-bulk-label"), label="bulk_label",
                                       choices=lambda lang: h.label_choices("themes", lang) + h.label_choices("measures", lang))
                    c.bulk_add = _tr(c, gr.Button(t("bulk_add"), scale=1, elem_id="pt-bulk-add"), value="bulk_add")
                    c.bulk_remove = _tr(c, gr.Button(t("bulk_remove"), scale=1, elem_id="pt-bulk-remove"), value="bulk_remove")
        with _tr(c, gr.Tab(t("tab_heat"), id="heat"), label="tab_heat"):
            with gr.Row():
                c.heat_mode = _tr(c, gr.Radio([(t("heat_counts"), "count"), (t("heat_pct"), "pct")], value="count",
                                              label=t("heat_mode"), scale=2, elem_id="pt-heat-mode"), label="heat_mode",
                              choices=lambda lang: [(t("heat_counts", lang), "count"), (t("heat_pct", lang), "pct")])
                c.heat_doc = _tr(c, gr.Dropdown([], label=t("doc_select"), visible=False, scale=2, elem_id="pt-heat-doc"),
                                 label="doc_select")
                c.heat_png = gr.Button("PNG", scale=1, elem_id="pt-heat-png", size="sm")
                c.heat_svg = gr.Button("SVG", scale=1, elem_id="pt-heat-svg", size="sm")
            c.heat = gr.HTML(render.heatmap_html(None, h.tax), elem_id="pt-heat", js_on_load=HEAT_JS)


def _correction_form(c: SimpleNamespace, h: Handlers, cfg: dict) -> None:
    c.correct_title = _tr(c, gr.Markdown(f"### {t('correct_title')}"), value=lambda lang: f"### {t('correct_title', lang)}")
    c.clause_dd = _tr(c, gr.Dropdown([], label=t("clause_dd"), info=t("clause_dd_info"), elem_id="pt-clause-dd",
                                     filterable=True), label="clause_dd", info="clause_dd_info")
    c.clause_md = gr.Markdown(render.clause_detail_markdown(None, h.tax), elem_id="pt-clause-detail")
    c.themes_dd = _tr(c, gr.Dropdown(h.label_choices("themes", "zh"), multiselect=True, label=t("themes_label"),
                                     info=t("themes_info"), elem_id="pt-themes"), label="themes_label", info="themes_info",
                      choices=lambda lang: h.label_choices("themes", lang))
    c.measures_dd = _tr(c, gr.Dropdown(h.label_choices("measures", "zh"), multiselect=True, label=t("measures_label"),
                                       info=t("measures_info"), elem_id="pt-measures"), label="measures_label", info="measures_info",
                        choices=lambda lang: h.label_choices("measures", lang))
    with gr.Row():
        c.annotator = _tr(c, gr.Textbox(label=t("annotator_label"), value=(cfg.get("corrections") or {}).get("annotator", ""),
                                        placeholder=t("annotator_ph"), scale=1, elem_id="pt-annotator"),
                          label="annotator_label", placeholder="annotator_ph")
        c.note = _tr(c, gr.Textbox(label=t("note_label"), placeholder=t("note_ph"), scale=2, elem_id="pt-note"),
                     label="note_label", placeholder="note_ph")
    c.save_btn = _tr(c, gr.Button(t("save_btn"), variant="primary", elem_id="pt-save-btn"), value="save_btn")
    c.save_status = gr.HTML(elem_id="pt-save-status")


def _review_tab(c: SimpleNamespace, h: Handlers, cfg: dict) -> None:
    with _tr(c, gr.Tab(t("tab_review"), id="review", elem_id="pt-tab-review"), label="tab_review"):
        c.review_intro = _tr(c, gr.Markdown(t("review_intro")), value="review_intro")
        with gr.Row():
            c.review_source = _tr(c, gr.Radio([(t("review_doc"), "doc"), (t("review_queue"), "queue")], value="doc",
                                              label=t("review_source"), scale=3, elem_id="pt-rv-source"), label="review_source",
                                  choices=lambda lang: [(t("review_doc", lang), "doc"), (t("review_queue", lang), "queue")])
            c.review_n = _tr(c, gr.Slider(5, 200, value=int((cfg.get("review_queue") or {}).get("size", 30)), step=5,
                                          label=t("review_n"), scale=2), label="review_n")
            c.rv_annotator = _tr(c, gr.Textbox(label=t("annotator_label"), placeholder=t("annotator_ph"), scale=2,
                                               value=(cfg.get("corrections") or {}).get("annotator", ""), elem_id="pt-rv-annotator",
                                               interactive=True),
                                 label="annotator_label", placeholder="annotator_ph")
            c.review_btn = _tr(c, gr.Button(t("review_start"), variant="primary", scale=1, elem_id="pt-rv-start"),
                               value="review_start")
        c.review_msg = gr.HTML()

        def decide(data: dict) -> dict:  # the review card's server function (review.js: server.decide)
            return h.decide(data)

        c.review_html = gr.HTML("", elem_id="pt-review", js_on_load=REVIEW_JS, server_functions=[decide])
        c.review_df = gr.Dataframe(render.review_table([], h.tax), interactive=False, wrap=True, elem_id="pt-review-queue",
                                   max_height=420)


def _model_tab(c: SimpleNamespace, svc: AppService) -> None:
    with _tr(c, gr.Tab(t("tab_model"), id="model", elem_id="pt-tab-model"), label="tab_model"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                c.model_md = gr.Markdown(elem_id="pt-model-info")
            with gr.Column(scale=2):
                hint = "admin_hint" if svc.admin_required else "admin_open"
                c.admin_hint = _tr(c, gr.Markdown(t(hint)), value=hint)
                c.token = _tr(c, gr.Textbox(label=t("admin_token"), type="password", elem_id="pt-admin-token",
                                            visible=svc.admin_required), label="admin_token")
                c.retrain_btn = _tr(c, gr.Button(t("retrain_btn"), variant="primary", elem_id="pt-retrain-btn"), value="retrain_btn")
                with gr.Row():
                    c.version_dd = _tr(c, gr.Dropdown([], label=t("version_dd"), scale=2, elem_id="pt-version-dd"), label="version_dd")
                    c.promote_btn = _tr(c, gr.Button(t("promote_btn"), scale=1, elem_id="pt-promote-btn"), value="promote_btn")
                    c.rollback_btn = _tr(c, gr.Button(t("rollback_btn"), scale=1, elem_id="pt-rollback-btn"), value="rollback_btn")
                c.admin_msg = gr.HTML(elem_id="pt-admin-msg")
                c.retrain_md = gr.Markdown(panels.retrain_markdown({"status": "idle"}), elem_id="pt-retrain-status")
        c.versions_df = _tr(c, gr.Dataframe(panels.versions_table([]), interactive=False, label=t("versions_label"),
                                            elem_id="pt-versions"), label="versions_label")
        c.timer = gr.Timer(float((svc.config.get("retrain") or {}).get("poll_seconds", 2)), active=False)


# --------------------------------------------------------------------------- events


def _wire_tagging(c: SimpleNamespace, h: Handlers) -> None:
    outs = [c.state, c.input_msg, c.downloads, c.summary, c.doc_html, c.table, c.heat, c.families, c.clause_dd,
            c.f_theme, c.f_measure, c.f_query, c.doc_sel, c.heat_doc]
    kw = dict(concurrency_id="tagging", show_progress="hidden", **PRIVATE)  # the progress line is ours
    c.tag_btn.click(h.ui_tag_text, [c.text_in, c.doc_name, c.dimension, c.lang], outs, **kw)
    c.file_in.upload(h.ui_tag_files, [c.file_in, c.dimension, c.lang], outs + [c.file_in], **kw)
    if c.examples:
        c.ex.load_input_event.then(h.ui_tag_text, [c.text_in, c.doc_name, c.dimension, c.lang], outs, **kw)
    view = [c.state, c.doc_sel, c.dimension, c.lang]
    c.dimension.change(h.doc_view, view, c.doc_html, queue=False, **PRIVATE)
    c.doc_sel.change(h.doc_view, view, c.doc_html, queue=False, **PRIVATE)
    c.doc_html.click(h.doc_click, None, c.clause_dd, queue=False, **PRIVATE)
    c.clause_dd.change(h.select_clause, [c.state, c.clause_dd, c.lang], [c.clause_md, c.themes_dd, c.measures_dd, c.save_status],
                       queue=False, **PRIVATE)
    c.save_btn.click(h.save, [c.state, c.clause_dd, c.themes_dd, c.measures_dd, c.annotator, c.note, c.dimension,
                              c.f_theme, c.f_measure, c.f_query, c.lang],
                     [c.state, c.save_status, c.summary, c.doc_html, c.table, c.heat, c.families, c.clause_md, c.badge],
                     concurrency_id="corrections", **PRIVATE)
    ex_out = [c.downloads, c.export_msg]
    c.export_btn.click(h.export, [c.state, c.export_fmt, c.lang, c.heat_doc, c.downloads], ex_out, **PRIVATE)
    for btn, fmt in ((c.heat_png, "heat_png"), (c.heat_svg, "heat_svg")):
        btn.click(lambda ws, lang, doc, cur, _f=fmt: h.export(ws, _f, lang, doc, cur),
                  [c.state, c.lang, c.heat_doc, c.downloads], ex_out, **PRIVATE)


def _wire_table(c: SimpleNamespace, h: Handlers) -> None:
    filt = [c.state, c.f_theme, c.f_measure, c.f_query, c.lang]
    for w in (c.f_theme, c.f_measure):
        w.change(h.filtered, filt, [c.table, c.bulk_msg], queue=False, **PRIVATE)
    c.f_query.change(h.filtered, filt, [c.table, c.bulk_msg], queue=False, trigger_mode="always_last", **PRIVATE)
    c.table.select(h.table_select, [c.state], c.clause_dd, queue=False, **PRIVATE)
    bulk_out = [c.state, c.bulk_msg, c.table, c.heat, c.families, c.summary]
    for btn, add in ((c.bulk_add, True), (c.bulk_remove, False)):
        btn.click(lambda ws, th, me, q, lab, who, lang, _a=add: h.bulk(ws, th, me, q, lab, who, _a, lang),
                  [c.state, c.f_theme, c.f_measure, c.f_query, c.bulk_label, c.annotator, c.lang], bulk_out,
                  concurrency_id="corrections", **PRIVATE)
    c.heat.click(h.heat_click, [c.state, c.lang], [c.f_theme, c.f_measure, c.f_query, c.table, c.bulk_msg, c.result_tabs],
                 queue=False, **PRIVATE)
    for w in (c.heat_mode, c.heat_doc):
        w.change(h.heat, [c.state, c.heat_doc, c.heat_mode, c.lang], c.heat, queue=False, **PRIVATE)


def _wire_review(c: SimpleNamespace, h: Handlers) -> None:
    c.review_btn.click(h.review_start, [c.state, c.review_source, c.review_n, c.lang],
                       [c.review_html, c.review_df, c.review_msg], concurrency_id="tagging", **PRIVATE)
    c.tab_tag.select(h.refresh, [c.state, c.dimension, c.lang],
                     [c.state, c.summary, c.doc_html, c.table, c.heat, c.families, c.clause_dd, c.f_theme, c.f_measure,
                      c.f_query, c.doc_sel, c.heat_doc], **PRIVATE)


def _wire_model(c: SimpleNamespace, h: Handlers, demo: gr.Blocks) -> None:
    panel = [c.model_md, c.versions_df, c.version_dd, c.retrain_md]
    demo.load(h.model_panel, None, panel, **PRIVATE)
    demo.load(h.badge, None, c.badge, **PRIVATE)

    def api_md(request: gr.Request) -> str:
        return api_help(page_url(request))

    demo.load(api_md, None, c.api_md, **PRIVATE)
    for btn, action in ((c.retrain_btn, "retrain"), (c.promote_btn, "promote"), (c.rollback_btn, "rollback")):
        btn.click(lambda tok, ver, _a=action: h.admin(_a, tok, ver), [c.token, c.version_dd], [c.admin_msg, c.timer],
                  **PRIVATE).then(h.model_panel, None, panel, **PRIVATE)
    c.timer.tick(h.poll_retrain, None, [c.retrain_md, c.model_md, c.versions_df, c.badge, c.timer],
                 show_progress="hidden", **PRIVATE)


def page_url(request: gr.Request | None) -> str:
    """The address the browser used (host and port as typed), for the API tab's sample code."""
    if request is None:
        return "http://127.0.0.1:7860/"
    headers = getattr(request, "headers", {}) or {}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    proto = headers.get("x-forwarded-proto") or getattr(getattr(request, "url", None), "scheme", None) or "http"
    return f"{proto}://{host}/"


def _wire_language(c: SimpleNamespace, h: Handlers) -> None:
    """One language at a time: the switch relabels every registered widget and re-renders the results."""
    rerendered = [c.summary, c.doc_html, c.heat, c.families, c.table, c.api_md, c.badge]
    outputs = list(dict.fromkeys([comp for comp, _ in c.i18n] + rerendered))

    def switch(lang: str, ws: Workspace | None, dimension: str, heat_mode: str, doc_id: str | None,
               heat_doc: str | None, request: gr.Request) -> dict:
        ups: dict[Any, dict] = {}
        for comp, keys in c.i18n:
            ups.setdefault(comp, {}).update({k: (v(lang) if callable(v) else t(v, lang)) for k, v in keys.items()})
        ups.setdefault(c.summary, {})["value"] = render.summary_markdown(ws.docs if ws else [], lang)
        ups.setdefault(c.doc_html, {})["value"] = h.doc_view(ws, doc_id, dimension, lang)
        ups.setdefault(c.heat, {})["value"] = h.heat(ws, heat_doc, heat_mode, lang)
        ups.setdefault(c.families, {})["value"] = render.families_html(h.svc.family_counts(ws.rows) if ws else None, h.tax, lang)
        ups.setdefault(c.table, {}).update(h.table(ws, ALL, ALL, "", lang))
        ups.setdefault(c.api_md, {})["value"] = api_help(page_url(request), lang)
        ups.setdefault(c.badge, {})["value"] = h.badge(lang)
        for comp in (c.f_theme, c.f_measure):
            ups[comp]["value"] = ALL
        ups[c.f_query]["value"] = ""
        return {comp: gr.update(**u) for comp, u in ups.items() if comp in outputs}

    c.lang.change(switch, [c.lang, c.state, c.dimension, c.heat_mode, c.doc_sel, c.heat_doc], outputs,
                  queue=False, **PRIVATE)
