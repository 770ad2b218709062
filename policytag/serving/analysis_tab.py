"""The 比较 tab: layout, callbacks and wiring.

The callbacks only translate: :meth:`AppService.analyze` computes (the library of
``policytag compare`` / ``agencies`` / ``targets``), :mod:`~policytag.serving.analysis_render`
draws, :meth:`AppService.analysis_files` writes the downloads when asked.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import gradio as gr

from policytag.serving import analysis_render as ar
from policytag.serving.analyses import WorkspaceAnalysis, compare_cell
from policytag.serving.handlers import message, problem
from policytag.serving.i18n import t
from policytag.serving.workbench import AppService, Workspace

PRIVATE: dict[str, Any] = {"api_visibility": "private"}
CELL_JS = """
element.addEventListener('click', (e) => {
  const c = e.target.closest('td[data-t]');
  if (!c) return;
  trigger('click', {theme: c.dataset.t, measure: c.dataset.m});
});
"""


class AnalysisHandlers:
    """Callbacks of the tab; ``svc`` does the work."""

    def __init__(self, svc: AppService) -> None:
        self.svc = svc
        self.tax = svc.taxonomy

    def analyze(self, ws: Workspace | None, lang: str) -> tuple:
        """-> analysis state, message, compare html, cell html, agencies html, targets table, files."""
        if not ws or not ws.rows:
            a = None
            msg = message(t("an_none", lang), "info")
        else:
            try:
                a = self.svc.analyze(ws)
            except Exception as e:  # noqa: BLE001 - one clear line, the page keeps working
                return (None, message(problem(e)), *self.views(None, lang), "", None)
            msg = message(t("an_done", lang, n=len(a.doc_ids), c=len(a.rows), t=len(a.targets)), "info")
        return (a, msg, *self.views(a, lang), "", None)

    def views(self, a: WorkspaceAnalysis | None, lang: str) -> tuple:
        """-> compare html, agencies html, targets table."""
        empty = WorkspaceAnalysis(doc_ids=[], labels={}, rows=[], source="")
        a = a or empty
        return ar.compare_html(a, self.tax, lang), ar.agencies_html(a, self.tax, lang), ar.targets_frame(a, lang)

    def cell(self, a: WorkspaceAnalysis | None, lang: str, evt: gr.EventData) -> Any:
        data = getattr(evt, "_data", None) or {}
        th, me = data.get("theme"), data.get("measure")
        if a is None or not th or not me:
            return gr.skip()
        return ar.cell_clauses_html(compare_cell(a, th, me), th, me, self.tax, lang)

    def download(self, a: WorkspaceAnalysis | None, kind: str, lang: str, current: Any) -> tuple:
        """-> files, message."""
        try:
            if a is None or a.empty:
                return gr.skip(), message(t("an_none", lang), "info")
            paths = self.svc.analysis_files(a, kind)
        except Exception as e:  # noqa: BLE001
            return gr.skip(), message(problem(e))
        files = [f for f in (current or []) if isinstance(f, str)]
        return files + paths, ""


def build(c: SimpleNamespace, tax: Any, tr: Callable[..., Any]) -> None:
    """The tab's widgets, inside the page's ``gr.Tabs`` (``tr`` registers them for the language switch)."""
    with tr(c, gr.Tab(t("tab_analysis"), id="analysis", elem_id="pt-tab-analysis"), label="tab_analysis") as c.tab_analysis:
        c.an_state = gr.State(None)
        c.an_intro = tr(c, gr.Markdown(t("an_intro")), value="an_intro")
        with gr.Row():
            c.an_btn = tr(c, gr.Button(t("an_btn"), variant="primary", elem_id="pt-an-btn", scale=1), value="an_btn")
            c.an_msg = gr.HTML(elem_id="pt-an-msg")
        with gr.Tabs(elem_id="pt-an-tabs"):
            with tr(c, gr.Tab(t("an_compare"), id="an-compare"), label="an_compare"):
                c.an_dl_compare = tr(c, gr.Button(t("an_dl_compare"), size="sm", elem_id="pt-an-dl-compare"), value="an_dl_compare")
                c.an_compare = gr.HTML(ar.compare_html(WorkspaceAnalysis([], {}, [], ""), tax), elem_id="pt-an-compare",
                                       js_on_load=CELL_JS)
                c.an_cell = gr.HTML(elem_id="pt-an-cell")
            with tr(c, gr.Tab(t("an_agencies"), id="an-agencies"), label="an_agencies"):
                c.an_dl_agencies = tr(c, gr.Button(t("an_dl_agencies"), size="sm", elem_id="pt-an-dl-agencies"), value="an_dl_agencies")
                c.an_agencies = gr.HTML(elem_id="pt-an-agencies")
            with tr(c, gr.Tab(t("an_targets"), id="an-targets"), label="an_targets"):
                c.an_dl_targets = tr(c, gr.Button(t("an_dl_targets"), size="sm", elem_id="pt-an-dl-targets"), value="an_dl_targets")
                c.an_targets = gr.Dataframe(ar.targets_frame(WorkspaceAnalysis([], {}, [], "")), interactive=False, wrap=True,
                                            max_height=480, elem_id="pt-an-targets")
        c.an_files = tr(c, gr.File(label=t("an_files"), file_count="multiple", interactive=False, elem_id="pt-an-files",
                                   height=100), label="an_files")


def wire(c: SimpleNamespace, h: AnalysisHandlers) -> None:
    outs = [c.an_state, c.an_msg, c.an_compare, c.an_agencies, c.an_targets, c.an_cell, c.an_files]
    c.an_btn.click(h.analyze, [c.state, c.lang], outs, concurrency_id="analysis", **PRIVATE)
    c.tab_analysis.select(h.analyze, [c.state, c.lang], outs, concurrency_id="analysis", **PRIVATE)
    c.an_compare.click(h.cell, [c.an_state, c.lang], c.an_cell, queue=False, **PRIVATE)
    for btn, kind in ((c.an_dl_compare, "compare"), (c.an_dl_agencies, "agencies"), (c.an_dl_targets, "targets")):
        btn.click(lambda a, lang, cur, _k=kind: h.download(a, _k, lang, cur), [c.an_state, c.lang, c.an_files],
                  [c.an_files, c.an_msg], concurrency_id="analysis", **PRIVATE)
    c.lang.change(lambda a, lang: h.views(a, lang), [c.an_state, c.lang], [c.an_compare, c.an_agencies, c.an_targets],
                  queue=False, **PRIVATE)
