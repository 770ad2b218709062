"""The page's event handlers: turn widget values into :class:`AppService` calls and back.

No tagging, storing or aggregating happens here (that is :mod:`workbench`), and no HTML
is built here (that is :mod:`render`). A user mistake (empty text, a .doc file, no
annotator) becomes one message next to the widget that caused it; every other panel
keeps what it showed (``gr.skip()``), so no panel gets an error badge.
"""

from __future__ import annotations

import html
import logging
import time
import traceback
import uuid
from typing import Any, Iterator, Sequence

import gradio as gr

from policytag.errors import PolicytagError
from policytag.serving import panels, render
from policytag.serving.documents import upload_paths as upload_names
from policytag.serving.i18n import NONE_ID, label_name, t
from policytag.serving.render import ALL
from policytag.serving.workbench import AppService, TagResult, Workspace

log = logging.getLogger("policytag.app")

N_TAG_OUTPUTS = 14  # state, input_msg, downloads, summary, doc, table, heat, families, clause_dd, 3 filters, doc_sel, heat_doc
STREAM_EVERY_S = 0.4  # at most one partial result per this many seconds (the first and last always)


def message(text: str, kind: str = "error") -> str:
    return f'<div class="pt-msg pt-msg-{kind}">{html.escape(text)}</div>'


def problem(e: Exception) -> str:
    """One clear line for the user; internal errors are logged with their trace."""
    if isinstance(e, PolicytagError):
        return str(e)
    log.error("app callback failed:\n%s", traceback.format_exc())
    return f"内部错误 (internal error): {type(e).__name__}: {e}. 详细信息在服务器日志中。"


def skips(n: int) -> list[Any]:
    return [gr.skip() for _ in range(n)]


class Handlers:
    """Callbacks of one app; ``svc`` does the work."""

    def __init__(self, svc: AppService):
        self.svc = svc
        self.tax = svc.taxonomy
        self.seed_ids: dict[str, str] = {}  # example name -> doc id of its seed file

    # ---- choices
    def filter_choices(self, lang: str) -> tuple[list, list]:
        th = [(t("all_themes", lang), ALL)] + [(label_name(self.tax, i, lang), i) for i in self.tax.themes] + \
             [(t("no_theme", lang), NONE_ID)]
        me = [(t("all_measures", lang), ALL)] + [(label_name(self.tax, i, lang), i) for i in self.tax.measures] + \
             [(t("no_measure", lang), NONE_ID)]
        return th, me

    def label_choices(self, dim: str, lang: str) -> list[tuple[str, str]]:
        return [(label_name(self.tax, i, lang), i) for i in self.tax.ids(dim)]

    def doc_choices(self, ws: Workspace, lang: str, with_all: bool) -> list[tuple[str, str]]:
        out = [(d.name, d.doc_id) for d in ws.docs]
        return ([(t("all_docs", lang), ALL)] if with_all and len(out) > 1 else []) + out

    # ---- tagging (generators: partial results while the model runs)
    def ui_tag_text(self, text: str, name: str | None, dimension: str, lang: str) -> Iterator[tuple]:
        name = (name or "").strip() or None
        try:
            doc = self.svc.read_text(text, doc_id=self.seed_ids.get(name or ""), name=name)
        except Exception as e:  # noqa: BLE001 - shown at the input, nothing else changes
            yield self._input_error(e)
            return
        yield from self._stream([(doc, name)], dimension, lang)

    def ui_tag_files(self, files: Any, dimension: str, lang: str) -> Iterator[tuple]:
        """Upload event: the tag outputs plus the upload widget, emptied once the files are read,
        so that the next upload replaces these files instead of adding to them."""
        if not files:
            yield (*skips(N_TAG_OUTPUTS), gr.skip())
            return
        names = [n for _, n in upload_names(files)]
        out = skips(N_TAG_OUTPUTS)
        out[1] = message(t("progress_start", lang, name="、".join(names)), "progress")
        yield (*out, gr.skip())
        try:
            jobs = self.svc.read_uploads(files)
        except Exception as e:  # noqa: BLE001
            yield (*self._input_error(e), None)
            return
        for i, outputs in enumerate(self._stream(jobs, dimension, lang)):
            yield (*outputs, None if i == 0 else gr.skip())

    def _input_error(self, e: Exception) -> tuple:
        out = skips(N_TAG_OUTPUTS)
        out[1] = message(problem(e))
        return tuple(out)

    def _stream(self, jobs: Sequence[tuple[Any, str | None]], dimension: str, lang: str) -> Iterator[tuple]:
        done: list[TagResult] = []
        last = 0.0
        try:
            for doc, name in jobs:
                res = None
                for res in self.svc.tag_iter(doc, name):
                    now = time.monotonic()
                    if res.complete or now - last < STREAM_EVERY_S and res.rows:
                        continue
                    last = now
                    yield self._partial(done, res, dimension, lang)
                assert res is not None  # tag_iter yields at least once
                done.append(res)
        except Exception as e:  # noqa: BLE001
            yield self._input_error(e)
            return
        ws = Workspace(done)
        n = len(ws.rows)
        secs = sum(d.seconds for d in done)
        yield (ws, message(t("done_line", lang, n=n, s=secs), "ok"), None, *self.render_all(ws, dimension, lang))

    def _partial(self, done: list[TagResult], res: TagResult, dimension: str, lang: str) -> tuple:
        out = skips(N_TAG_OUTPUTS)
        prefix = f"{res.name}：" if len(done) or res.total else ""
        out[1] = message(prefix + t("progress", lang, done=len(res.rows), total=res.total), "progress")
        out[4] = render.document_html(res.text, res.rows, self.tax, dimension, lang)
        rows = [r for d in done for r in d.rows] + res.rows
        out[5] = gr.update(value=render.clause_table(rows, self.tax, lang, with_file=len(done) > 0),
                           column_widths=render.table_widths(len(done) > 0))
        return tuple(out)

    # ---- rendering a whole workspace
    def render_all(self, ws: Workspace, dimension: str, lang: str, heat_mode: str = "count") -> tuple:
        """summary, doc, table, heat, families, clause_dd, f_theme, f_measure, f_query, doc_sel, heat_doc."""
        first = ws.docs[0].doc_id if ws.docs else None
        multi = len(ws.docs) > 1
        return (render.summary_markdown(ws.docs, lang), self.doc_view(ws, first, dimension, lang),
                self.table(ws, ALL, ALL, "", lang), self.heat(ws, ALL, heat_mode, lang),
                render.families_html(self.svc.family_counts(ws.rows), self.tax, lang),
                gr.update(choices=render.clause_choices(ws.rows), value=None), ALL, ALL, "",
                gr.update(choices=self.doc_choices(ws, lang, False), value=first, visible=multi),
                gr.update(choices=self.doc_choices(ws, lang, True), value=ALL if multi else first, visible=multi))

    def doc_view(self, ws: Workspace | None, doc_id: str | None, dimension: str, lang: str) -> str:
        d = ws.doc(doc_id) if ws else None
        rows = d.rows if d else []
        return (render.legend_html(self.tax, dimension, rows, lang) +
                render.document_html(d.text if d else "", rows, self.tax, dimension, lang))

    def table(self, ws: Workspace | None, theme: str, measure: str, query: str, lang: str) -> Any:
        rows = render.filter_rows(ws.rows if ws else [], theme, measure, query)
        multi = ws is not None and len(ws.docs) > 1
        return gr.update(value=render.clause_table(rows, self.tax, lang, with_file=multi),
                         column_widths=render.table_widths(multi))

    def heat(self, ws: Workspace | None, doc_id: str | None, mode: str, lang: str) -> str:
        if not ws or not ws.docs:
            return render.heatmap_html(None, self.tax, mode, lang)
        d = ws.doc(doc_id) if doc_id and doc_id != ALL else None
        title = d.name if d else ws.name
        return render.heatmap_html(self.svc.heatmap(ws.rows_of(doc_id)), self.tax, mode, lang, title=title)

    def filtered(self, ws: Workspace | None, theme: str, measure: str, query: str, lang: str) -> tuple:
        n = len(render.filter_rows(ws.rows if ws else [], theme, measure, query))
        filtered = theme not in (None, ALL) or measure not in (None, ALL) or bool((query or "").strip())
        note = (f"{n} clauses selected" if lang == "en" else f"已筛选出 {n} 个条款") if ws and filtered else ""
        return self.table(ws, theme, measure, query, lang), (message(note, "progress") if note else "")

    # ---- selecting and correcting one clause
    def select_clause(self, ws: Workspace | None, clause_id: str | None, lang: str) -> tuple:
        row = ws.find(clause_id) if ws else None
        if row is None:
            return render.clause_detail_markdown(None, self.tax, lang=lang), gr.update(value=[]), gr.update(value=[]), ""
        hist = self.svc.store.history(row.text)
        return (render.clause_detail_markdown(row, self.tax, hist, lang), gr.update(value=list(row.themes)),
                gr.update(value=list(row.measures)), "")

    @staticmethod
    def table_select(ws: Workspace | None, evt: gr.SelectData) -> Any:
        row = getattr(evt, "row_value", None) or []
        cid = next((v for v in row if isinstance(v, str) and ws and ws.find(v) is not None), None)
        return gr.update(value=cid) if cid else gr.update()

    @staticmethod
    def doc_click(evt: gr.EventData) -> Any:
        data = getattr(evt, "_data", None) or {}
        cid = data.get("clause_id") if isinstance(data, dict) else None
        return gr.update(value=cid) if cid else gr.update()

    def save(self, ws: Workspace | None, clause_id: str | None, themes: list, measures: list, annotator: str,
             note: str, dimension: str, theme_f: str, measure_f: str, query: str, lang: str) -> tuple:
        """-> state, save_status, summary, doc, table, heat, families, clause_md, badge."""
        row = ws.find(clause_id) if ws else None
        try:
            if row is None:
                raise PolicytagError("请先选择一个条款 (select a clause to correct first)")
            rid, written, new = self.svc.save_correction(row, themes or [], measures or [], annotator, note)
        except Exception as e:  # noqa: BLE001
            return (gr.skip(), message(problem(e)), *skips(7))
        assert ws is not None  # the row came from it
        ws = ws.replace([new])
        msg = (f"已保存校正 #{rid}：{render.names(self.tax, new.themes, lang) or '无主题'} | "
               f"{render.names(self.tax, new.measures, lang) or '无措施'}" if written
               else f"这条校正已经保存过（#{rid}），没有重复写入 (already saved)")
        d = ws.doc(new.doc_id)
        return (ws, message(msg, "ok"), render.summary_markdown(ws.docs, lang),
                self.doc_view(ws, d.doc_id if d else None, dimension, lang), self.table(ws, theme_f, measure_f, query, lang),
                self.heat(ws, ALL, "count", lang), render.families_html(self.svc.family_counts(ws.rows), self.tax, lang),
                render.clause_detail_markdown(new, self.tax, self.svc.store.history(new.text), lang), self.badge())

    def bulk(self, ws: Workspace | None, theme_f: str, measure_f: str, query: str, label: str, annotator: str,
             add: bool, lang: str) -> tuple:
        """-> state, bulk_msg, table, heat, families, summary."""
        try:
            rows = render.filter_rows(ws.rows if ws else [], theme_f, measure_f, query)
            if not label:
                raise PolicytagError("请选择要添加或移除的标签 (pick a label)")
            n, new = self.svc.bulk_apply(rows, label, add, annotator)
        except Exception as e:  # noqa: BLE001
            return (gr.skip(), message(problem(e)), *skips(4))
        assert ws is not None  # bulk_apply refuses no rows
        ws = ws.replace(new)
        verb = ("added to" if add else "removed from") if lang == "en" else ("添加到" if add else "移除自")
        msg = (f"{label_name(self.tax, label, lang)} {verb} {len(new)} clauses ({n} saved)" if lang == "en"
               else f"已将“{label_name(self.tax, label, lang)}”{verb} {len(new)} 个条款（写入 {n} 条校正）")
        return (ws, message(msg, "ok"), self.table(ws, theme_f, measure_f, query, lang), self.heat(ws, ALL, "count", lang),
                render.families_html(self.svc.family_counts(ws.rows), self.tax, lang), render.summary_markdown(ws.docs, lang))

    def heat_click(self, ws: Workspace | None, lang: str, evt: gr.EventData) -> tuple:
        """A heat-map cell: filter the table to its clauses. -> f_theme, f_measure, f_query, table, bulk_msg, tabs."""
        data = getattr(evt, "_data", None) or {}
        th, me = data.get("theme"), data.get("measure")
        if not ws or not th or not me:
            return tuple(skips(6))
        table, note = self.filtered(ws, th, me, "", lang)
        return th, me, "", table, note, gr.Tabs(selected="table")

    def refresh(self, ws: Workspace | None, dimension: str, lang: str) -> tuple:
        """After a review: rows show the stored decisions. -> state + render_all outputs."""
        if not ws or not ws.docs:
            return tuple(skips(12))
        ws = ws.replace(self.svc.overlay_corrections(ws.rows))
        return (ws, *self.render_all(ws, dimension, lang))

    # ---- exports (written when asked for)
    def export(self, ws: Workspace | None, fmt: str, lang: str, doc_id: str | None, current: Any) -> tuple:
        """-> downloads, export_msg."""
        try:
            if not ws or not ws.docs:
                raise PolicytagError("先标注文档，再导出 (tag a document first)")
            path = self.svc.export(ws, fmt, lang, doc_id if fmt.startswith("heat") else None)
        except Exception as e:  # noqa: BLE001
            return gr.skip(), message(problem(e))
        files = [f for f in (current or []) if isinstance(f, str)]
        return files + [path], ""

    # ---- review mode
    def review_start(self, ws: Workspace | None, source: str, n: float, lang: str) -> tuple:
        """-> review card html, review queue table, message."""
        if not ws or not ws.rows:
            return gr.skip(), gr.skip(), message(t("review_empty", lang))
        rows = self.svc.overlay_corrections(ws.rows)
        items = []
        order = None
        if source == "queue":
            items = self.svc.review(rows, int(n))
            index = {r.clause_id: i for i, r in enumerate(rows)}
            order = [index[it.row.clause_id] for it in items if it.row.clause_id in index]
        html_ = render.review_payload(rows, self.tax, lang, order=order, batch=uuid.uuid4().hex)
        table = render.review_table(items, self.tax, lang) if items else gr.skip()
        return html_, table, ""

    def decide(self, data: dict) -> dict:
        """Server function of the review card: one decision, stored at once."""
        try:
            return self.svc.review_decision(dict(data or {}))
        except Exception as e:  # noqa: BLE001
            return {"ok": False, "error": problem(e)}

    # ---- model panel (admin actions check the token in the service)
    def badge(self, lang: str = "zh") -> str:
        info = self.svc.model_info()
        pending = "corrections since training" if lang == "en" else "待训练校正"
        return (f'<div class="pt-badge-inner" title="{html.escape(info.get("model_dir", ""))}">'
                f'<b>{html.escape(str(info.get("version", "")))}</b> · '
                f'{html.escape(str(info.get("base_model") or info.get("backend") or ""))} · '
                f'{pending} <b>{info.get("corrections_since_training", 0)}</b></div>')

    def model_panel(self) -> tuple:
        """-> model_md, versions_df, version_dd, retrain_md."""
        versions = self.svc.versions()
        return (panels.model_markdown(self.svc.model_info()), panels.versions_table(versions),
                gr.update(choices=[v["version"] for v in reversed(versions)]), panels.retrain_markdown(self.svc.retrain_state()))

    def poll_retrain(self) -> tuple:
        """-> retrain_md, model_md, versions_df, badge, timer."""
        st = self.svc.retrain_state()
        return (panels.retrain_markdown(st), panels.model_markdown(self.svc.model_info()),
                panels.versions_table(self.svc.versions()), self.badge(), gr.Timer(active=st.get("status") == "running"))

    def admin(self, action: str, token: str, version: str | None) -> tuple:
        """retrain / promote / rollback. -> admin_msg, timer."""
        try:
            if action == "retrain":
                started = self.svc.start_retrain(token)
                return message("已开始重新训练" if started else "已有一个重新训练任务在运行", "ok"), gr.Timer(active=True)
            if action == "promote":
                if not version:
                    raise PolicytagError("请选择一个版本 (pick a version)")
                return message(f"已上线 {self.svc.promote(version, token)}", "ok"), gr.skip()
            return message(f"已回滚到 {self.svc.rollback(token)}", "ok"), gr.skip()
        except Exception as e:  # noqa: BLE001
            return message(problem(e)), gr.skip()

