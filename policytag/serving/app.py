"""The policytag web app (Gradio 6): tag a document, see it, correct it.

``build_app()`` returns a :class:`gradio.Blocks`; ``policytag serve`` (``app_commands.py``)
is the only place that launches it. Everything the app computes comes from library
functions: reading (:mod:`policytag.text.ingestion`), segmenting (:mod:`policytag.text.segmentation`),
tagging, heat map and exports (:mod:`policytag.serving.tagging`), corrections
(:mod:`policytag.data.corrections`), versions (:mod:`policytag.modeling.registry`) and retraining
(:mod:`policytag.training.retrain`). This module only holds the shared state (:class:`AppService`),
turns rows into HTML and tables for the page, and wires widgets to those functions.

Named API endpoints for ``gradio_client``: ``/tag_text``, ``/tag_file``,
``/save_correction``, ``/model_info`` (see the README section "The web app").
"""

from __future__ import annotations

import atexit
import functools
import html
import json
import logging
import re
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr
import pandas as pd

from policytag import paths
from policytag.config import load_config
from policytag.errors import InputError, ModelNotFoundError, PolicytagError
from policytag.data.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger("policytag.app")

STATIC_DIR = Path(__file__).resolve().parent
CSS_FILE = STATIC_DIR / "app.css"
PASTED_NAME = "粘贴的文本"
ALL = "__all__"  # the "no filter" choice of the table filters
DIMENSION_CHOICES = [("按主题着色 (by theme)", "themes"), ("按措施类型着色 (by measure type)", "measures")]

NO_MODEL_HELP = (
    "没有可用的模型 / no model to serve: the registry in {models} has no production model yet. "
    "Train and promote the default model on the shipped labels with "
    "`policytag serve --train-if-missing` (what `bash scripts/main.sh` does) or `policytag retrain`; "
    "or serve a model directory written by `policytag train` with `policytag serve --model DIR`."
)


# --------------------------------------------------------------------------- configuration


def load_app_config(overrides: Sequence[str] = ()) -> dict:
    """``configs/app.yaml`` with ``key=value`` overrides (``limits.max_chars=200000``)."""
    return load_config("app", overrides)


def launch_options(config: dict | None = None) -> dict:
    """Keyword arguments for ``Blocks.launch`` that belong to the app itself (theme, css, upload limit).

    Gradio 6 takes theme and css in ``launch()``; the serve command, the tests and the
    benchmark all launch with these so that every copy of the app looks the same.
    """
    cfg = config or load_app_config()
    system_fonts = ["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC",
                    "WenQuanYi Micro Hei", "Helvetica Neue", "Arial", "sans-serif"]
    theme = gr.themes.Soft(
        primary_hue="blue", secondary_hue="sky", neutral_hue="slate", radius_size="sm",
        font=system_fonts,  # no web fonts: the app works on machines without internet access
        font_mono=["Menlo", "Consolas", "Noto Sans Mono CJK SC", "monospace"],
    )
    return {
        "theme": theme,
        "css_paths": [CSS_FILE],
        "max_file_size": (cfg.get("server") or {}).get("max_file_size"),
        "footer_links": ["api", "settings"],
    }


# --------------------------------------------------------------------------- shared state


@dataclass
class TagResult:
    """One tagged document as the app keeps it in the session state."""

    doc_id: str
    name: str
    text: str
    rows: list[dict]
    model_version: str
    seconds: float
    removed: int = 0

    def to_state(self) -> dict:
        return {"doc_id": self.doc_id, "name": self.name, "text": self.text, "rows": self.rows,
                "model_version": self.model_version, "seconds": self.seconds, "removed": self.removed}


class AppService:
    """What every browser session shares: the model, the corrections store, the registry.

    The model is swapped (under a lock) when a retraining promotes a new version; requests
    already running finish on the model they started with.
    """

    def __init__(self, model_dir: str | Path | None = None, store: Any = None, registry: Any = None,
                 config: dict | None = None, model: Any = None):
        self.config = config or load_app_config()
        self.taxonomy: Taxonomy = load_taxonomy()
        if store is None:
            from policytag.data.corrections import CorrectionStore

            db = (self.config.get("corrections") or {}).get("db")
            store = CorrectionStore(Path(db) if db else paths.corrections_db(), taxonomy=self.taxonomy)
        self.store = store
        self._registry = registry
        self._lock = threading.RLock()
        # One prediction at a time: a Hugging Face fast tokenizer is not thread-safe (two requests
        # tokenizing at once fail with "Truncation error"); reading, segmenting and exporting
        # still run in parallel, and more users simply wait in the queue.
        self._predict_lock = threading.Lock()
        self.model_dir: Path | None = Path(model_dir) if model_dir is not None else None
        self.follows_registry = model_dir is None and model is None
        if model is None:
            self.model_dir = self._resolve_model_dir(model_dir)
            model = self._load_model(self.model_dir)
        self._model = model
        self.retrain_job: Any = None  # policytag.retrain.RetrainJob of the last "retrain" click
        self._reloaded_for: str | None = None
        self._export_root = Path(tempfile.mkdtemp(prefix="policytag-app-"))
        atexit.register(shutil.rmtree, self._export_root, True)

    # ---- model and registry
    @property
    def registry(self) -> Any:
        if self._registry is None:
            from policytag.modeling.registry import ModelRegistry

            self._registry = ModelRegistry()
        return self._registry

    @property
    def model(self) -> Any:
        with self._lock:
            return self._model

    def _resolve_model_dir(self, model_dir: str | Path | None) -> Path:
        if model_dir is not None:
            p = Path(model_dir)
            if not p.exists():
                raise ModelNotFoundError(f"model directory {p} does not exist; give a directory written by "
                                         "`policytag train`, or leave out --model to serve the production model")
            return p
        try:
            prod = self.registry.production()
        except ModuleNotFoundError:
            prod = None
        if prod is None:
            raise ModelNotFoundError(NO_MODEL_HELP.format(models=getattr(self.registry, "root", paths.models_dir())))
        return Path(prod)

    @staticmethod
    def _load_model(model_dir: Path) -> Any:
        from policytag.serving.tagging import load_model

        return load_model(model_dir)

    def reload_production(self) -> bool:
        """Switch to the registry's production model if it differs from the one served."""
        prod = self.registry.production()
        if prod is None or (self.model_dir is not None and Path(prod) == self.model_dir):
            return False
        model = self._load_model(Path(prod))
        with self._lock:
            self._model, self.model_dir = model, Path(prod)
            self.follows_registry = True
        log.info("now serving the production model %s", prod)
        return True

    @property
    def limits(self) -> dict:
        return dict(self.config.get("limits") or {})

    # ---- reading and tagging
    def read_text(self, text: str | None, doc_id: str = "pasted", name: str | None = None) -> Any:
        from policytag.text.ingestion import document_from_text

        if text is None or not str(text).strip():
            raise InputError("没有文本：请粘贴政策文件的正文，或上传 .txt/.docx/.pdf/.html 文件 "
                             "(no text: paste a document or upload a file)")
        self._check_chars(len(text), name or PASTED_NAME)
        return document_from_text(text, doc_id=doc_id, name=name)

    def read_file(self, path: str | Path, name: str | None = None) -> Any:
        from policytag.text.ingestion import doc_id_for, load_document

        path = Path(path)
        name = name or path.name
        suffix = Path(name).suffix.lower() or path.suffix.lower()
        if suffix not in supported_suffixes():
            raise InputError(f"不支持的文件类型 {suffix or '(无扩展名)'}：请上传 {' / '.join(supported_suffixes())} 文件 "
                             f"(unsupported file type {suffix or '(none)'} for {name})")
        if not path.exists() or path.stat().st_size == 0:
            raise InputError(f"文件 {name} 是空的 (the file is empty)")
        max_mb = float(self.limits.get("max_file_mb") or 0)
        if max_mb and path.stat().st_size > max_mb * 1024 * 1024:
            raise InputError(f"文件 {name} 超过 {max_mb:g} MB 上限 (file too large); "
                             "用命令行 `policytag predict` 标注大文件")
        doc = load_document(path, doc_id=doc_id_for(name))
        self._check_chars(len(doc.text), name)
        return doc

    def _check_chars(self, n: int, name: str) -> None:
        max_chars = int(self.limits.get("max_chars") or 0)
        if max_chars and n > max_chars:
            raise InputError(
                f"{name} 过长：{n:,} 字，网页版上限 {max_chars:,} 字（约 {max_chars // 1700} 页）。"
                "请拆分文档，或用命令行 `policytag predict FILE -o out.xlsx` 标注整份长文档 "
                f"(document too long for the web app: {n:,} characters, limit {max_chars:,})")

    def tag(self, doc: Any, name: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> TagResult:
        """Segment and tag a document (limits checked before the model runs).

        ``progress(done, total)`` is called as batches of clauses are tagged.
        """
        from policytag.text.segmentation import segment
        from policytag.serving.tagging import model_version, tag_clauses

        if name is None:
            name = PASTED_NAME if getattr(doc, "kind", "") == "text" else (getattr(doc, "source", None) or doc.doc_id)
        clauses = segment(doc)
        if not clauses:
            raise InputError(f"{Path(str(name)).name}：没有识别出任何条款（文本太短，或只有标题和页面杂项）"
                             " (no clauses found in the document)")
        max_clauses = int(self.limits.get("max_clauses") or 0)
        if max_clauses and len(clauses) > max_clauses:
            raise InputError(f"{Path(str(name)).name} 有 {len(clauses):,} 个条款，网页版上限 {max_clauses:,}。"
                             "请拆分文档，或用命令行 `policytag predict` 标注 "
                             f"(too many clauses for the web app: {len(clauses):,} > {max_clauses:,})")
        if self.retrain_job is not None:
            self.retrain_state()  # a finished retraining may have promoted a new version: serve it
        model = self.model
        t0 = time.perf_counter()
        done = [0]

        def step(k: int) -> None:
            done[0] += k
            if progress is not None:
                progress(done[0], len(clauses))

        with self._predict_lock:
            rows = tag_clauses(model, clauses, progress=step)
        seconds = time.perf_counter() - t0
        self.overlay_corrections(rows)
        return TagResult(doc_id=doc.doc_id, name=Path(str(name)).name, text=doc.text, rows=rows,
                         model_version=model_version(model), seconds=seconds,
                         removed=len(getattr(doc, "removed", None) or []))

    def overlay_corrections(self, rows: list[dict]) -> int:
        """Show saved corrections: a corrected clause displays its latest corrected labels."""
        from policytag.data.corrections import clause_key

        latest = self.store.latest_by_key()
        n = 0
        for r in rows:
            rec = latest.get(clause_key(r.get("text", "")))
            if rec is None:
                continue
            _apply_correction(r, rec["themes"], rec["measures"], rec.get("id"))
            n += 1
        return n

    # ---- corrections
    def save_correction(self, row: dict, themes: Any, measures: Any, annotator: str | None = None,
                        note: str | None = None) -> tuple[int, bool, dict]:
        """Store a correction of one tagged clause with its original prediction and scores.

        Returns ``(row id, written, row)``; ``written`` is False when the latest correction of
        this clause already had these labels (nothing is duplicated).
        """
        if not isinstance(row, dict) or not str(row.get("text") or "").strip():
            raise InputError("没有选中条款：先标注文档并选择一个条款 (select a clause first)")
        predicted = {"themes": row.get("predicted_themes", row.get("themes") or []),
                     "measures": row.get("predicted_measures", row.get("measures") or [])}
        scores = {lid: float(row[f"p_{lid}"]) for lid in self.taxonomy.label_ids if f"p_{lid}" in row}
        item = self.store.prepare(row, themes, measures, predicted=predicted, scores=scores or None,
                                  model_version=row.get("model_version") or None,
                                  annotator=(annotator or "").strip() or None, note=(note or "").strip() or None)
        res = self.store.add_many([item])
        rid = (res.added or res.unchanged)[0]
        new = dict(row)
        _apply_correction(new, item.themes, item.measures, rid)
        return rid, bool(res.flags and res.flags[0]), new

    def corrections_since_training(self) -> int:
        """Clauses corrected since the served model was trained (all of them for an unregistered model)."""
        from policytag.training.retrain import corrections_since
        from policytag.serving.tagging import model_version

        try:
            return int(corrections_since(self.registry, self.store, version=model_version(self.model)))
        except PolicytagError:  # a model directory that is not a registered version
            created = (getattr(self.model, "metadata", None) or {}).get("created_at")
            return int(self.store.count(since=created, distinct=True) if created else self.store.count(distinct=True))

    # ---- model panel
    def model_info(self) -> dict:
        from policytag.serving.tagging import model_version

        meta = dict(getattr(self.model, "metadata", None) or {})
        base = meta.get("base_model") or ""
        if isinstance(base, dict):
            base = base.get("name") or base.get("path") or json.dumps(base, ensure_ascii=False)
        version = model_version(self.model)
        entry = next((v for v in self.versions() if v.get("version") == version), {})
        n_train = meta.get("n_train_clauses") or entry.get("n_train")
        docs = meta.get("train_docs") or []
        return {
            "version": version,
            "status": entry.get("status", "unregistered"),
            "backend": meta.get("backend", ""),
            "base_model": str(base),
            "created_at": meta.get("created_at", ""),
            "taxonomy_version": meta.get("taxonomy_version", ""),
            "data_hash": meta.get("data_hash", ""),
            "n_train_clauses": int(n_train) if n_train else None,
            "n_train_docs": len(docs),
            "thresholds": meta.get("thresholds_source", ""),
            "metrics": _metric_summary(meta.get("metrics") or {}),
            "main_metric": entry.get("main_metric"),
            "model_dir": str(self.model_dir) if self.model_dir else "",
            "serving": "production" if self.follows_registry else "--model",
            "corrections_total": int(self.store.count(distinct=True)),
            "corrections_since_training": self.corrections_since_training(),
            "corrections_db": str(getattr(self.store, "path", "")),
        }

    def versions(self) -> list[dict]:
        try:
            return list(self.registry.versions())
        except (ModuleNotFoundError, PolicytagError):
            return []

    # ---- retraining: policytag.retrain.RetrainJob (a background process at lower CPU priority)
    def start_retrain(self) -> bool:
        """Start retraining on gold + corrections; False when one is already running."""
        from policytag.training.retrain import RetrainJob

        with self._lock:
            if self.retrain_job is not None and self.retrain_job.running:
                return False
            rc = self.config.get("retrain") or {}
            self.retrain_job = RetrainJob(config=rc.get("config", "default"), overrides=list(rc.get("overrides") or []),
                                          registry=self.registry, store=self.store,
                                          mode=rc.get("mode", "process")).start()
            return True

    def retrain_state(self) -> dict:
        """The job's state; after a promotion the app switches to the new production model."""
        job = self.retrain_job
        if job is None:
            return {"status": "idle"}
        st = job.state()
        res = st.get("result") or {}
        if st.get("status") == "done" and res.get("promoted") and self._reloaded_for != res.get("version"):
            self._reloaded_for = res.get("version")
            self.reload_production()
        return st

    # ---- review queue
    def review(self, rows: list[dict], n: int | None = None) -> list[dict]:
        from policytag.clause import Clause
        from policytag.training.retrain import review_queue

        n = int(n or (self.config.get("review_queue") or {}).get("size", 30))
        clauses = [Clause.from_dict({k: r.get(k) for k in ("doc_id", "clause_id", "text", "context",
                                                             "provision_id", "agencies")}) for r in rows]
        with self._predict_lock:
            return list(review_queue(self.model, clauses, n=n))

    # ---- exports
    def export(self, result: dict) -> list[str]:
        """Clause table (JSONL, CSV, XLSX) and heat-map matrix (CSV, XLSX) of one document."""
        from policytag.serving.tagging import heatmap_matrix, write_csv, write_rows, write_xlsx

        self._prune_exports()
        out = Path(tempfile.mkdtemp(dir=self._export_root))
        stem = _safe_stem(result.get("doc_id") or "document")
        rows = result["rows"]
        files = [write_rows(rows, out / f"{stem}.clauses{ext}") for ext in (".jsonl", ".csv", ".xlsx")]
        matrix = heatmap_matrix(rows, self.taxonomy).reset_index()
        files.append(write_csv(matrix, out / f"{stem}.heatmap.csv"))
        files.append(write_xlsx(matrix, out / f"{stem}.heatmap.xlsx", sheet_name="heatmap"))
        return [str(f) for f in files]

    def _prune_exports(self, max_age_s: float = 3600.0) -> None:
        now = time.time()
        for d in self._export_root.glob("*"):
            try:
                if now - d.stat().st_mtime > max_age_s:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass


def supported_suffixes() -> list[str]:
    """File types the app accepts: those :mod:`policytag.text.ingestion` can read."""
    from policytag.text.ingestion import SUPPORTED_SUFFIXES

    return sorted(SUPPORTED_SUFFIXES)


def _apply_correction(row: dict, themes: list[str], measures: list[str], correction_id: Any) -> None:
    row.setdefault("predicted_themes", list(row.get("themes") or []))
    row.setdefault("predicted_measures", list(row.get("measures") or []))
    row["themes"], row["measures"] = list(themes), list(measures)
    row["corrected"] = True
    row["correction_id"] = correction_id


def _safe_stem(s: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", str(s)).strip("._") or "document"


# --------------------------------------------------------------------------- rendering (pure functions)


def _alpha(color: str, a: float) -> str:
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return f"#{c[:6]}{int(round(a * 255)):02x}"


def _names(ids: Sequence[str] | None, tax: Taxonomy) -> str:
    return "、".join(tax[i].zh for i in (ids or []) if i in tax)


def _confidences(row: dict, tax: Taxonomy) -> str:
    ids = list(row.get("themes") or []) + list(row.get("measures") or [])
    parts = [f"{tax[i].zh} {float(row[f'p_{i}']):.2f}" for i in ids if i in tax and f"p_{i}" in row]
    return " · ".join(parts)


def legend_html(tax: Taxonomy, dimension: str, rows: Sequence[dict] = ()) -> str:
    counts = {i: 0 for i in tax.ids(dimension)}
    for r in rows:
        for i in r.get(dimension) or []:
            if i in counts:
                counts[i] += 1
    groups: list[tuple[str, list[str]]]
    if dimension == "measures" and tax.families:
        groups = [((tax.families[f] or {}).get("zh", f), [m for m in tax.measures if tax.family_of(m) == f])
                  for f in tax.families]
    else:
        groups = [("", tax.themes)]
    parts = []
    for title, ids in groups:
        chips = "".join(
            f'<span class="pt-legend-item" title="{html.escape(tax[i].en + " — " + tax[i].definition)}">'
            f'<span class="pt-swatch" style="background:{tax[i].color}"></span>{html.escape(tax[i].zh)}'
            f'<span class="pt-count">{counts[i]}</span></span>'
            for i in ids)
        head = f'<span class="pt-legend-group">{html.escape(title)}</span>' if title else ""
        parts.append(f'<span class="pt-legend-row">{head}{chips}</span>')
    return f'<div class="pt-legend">{"".join(parts)}</div>'


def _clause_html(row: dict, text: str, tax: Taxonomy, dimension: str, index: int) -> str:
    ids = [i for i in (row.get(dimension) or []) if i in tax]
    other = "measures" if dimension == "themes" else "themes"
    tip = "\n".join(filter(None, [
        row.get("clause_id", ""),
        f"主题: {_names(row.get('themes'), tax) or '—'}",
        f"措施类型: {_names(row.get('measures'), tax) or '—'}",
        f"置信度: {_confidences(row, tax)}" if _confidences(row, tax) else "",
        "已校正 (corrected)" if row.get("corrected") else "",
    ]))
    if ids:
        main = tax[ids[0]].color
        style = f"background:{_alpha(main, 0.20)};border-bottom:2px solid {main}"
        cls = "pt-clause"
    else:
        style, cls = "", "pt-clause pt-unlabeled"
    if row.get("corrected"):
        cls += " pt-corrected"
    chips = "".join(f'<span class="pt-chip" style="background:{tax[i].color}">{html.escape(tax[i].zh)}</span>'
                    for i in ids)
    other_ids = [i for i in (row.get(other) or []) if i in tax]
    if other_ids:
        chips += "".join(f'<span class="pt-chip pt-chip-other" style="border-color:{tax[i].color};color:{tax[i].color}">'
                         f'{html.escape(tax[i].zh)}</span>' for i in other_ids)
    if row.get("corrected"):
        chips += '<span class="pt-chip pt-chip-fixed" title="已校正 (corrected)">✎</span>'
    cid = html.escape(str(row.get("clause_id", "")), quote=True)
    return (f'<span class="{cls}" id="pt-c{index}" data-cid="{cid}" title="{html.escape(tip, quote=True)}" '
            f'style="{style}">{html.escape(text)}</span><span class="pt-chips">{chips}</span>')


def document_html(text: str, rows: Sequence[dict], tax: Taxonomy, dimension: str = "themes") -> str:
    """The document with each clause highlighted by its labels (click a clause to correct it)."""
    if not rows:
        return '<div class="pt-doc pt-empty">标注后，这里显示带高亮的文档。(The highlighted document appears here.)</div>'
    spans = [(r.get("span"), i, r) for i, r in enumerate(rows)]
    usable = all(s and 0 <= int(s[0]) < int(s[1]) <= len(text) for s, _, _ in spans)
    out: list[str] = []
    if usable:
        pos = 0
        for s, i, r in sorted(spans, key=lambda t: (int(t[0][0]), t[1])):
            start, end = int(s[0]), int(s[1])
            if start < pos:  # overlapping span: show the clause on its own line instead
                out.append("\n" + _clause_html(r, r.get("text", ""), tax, dimension, i) + "\n")
                continue
            out.append(f'<span class="pt-plain">{html.escape(text[pos:start])}</span>')
            out.append(_clause_html(r, text[start:end], tax, dimension, i))
            pos = end
        out.append(f'<span class="pt-plain">{html.escape(text[pos:])}</span>')
    else:  # no spans: rebuild the document from the heading paths and clauses
        ctx = None
        for i, r in enumerate(rows):
            if r.get("context") != ctx:
                ctx = r.get("context")
                if ctx:
                    out.append(f'\n<span class="pt-plain pt-heading">{html.escape(ctx)}</span>\n')
            out.append(_clause_html(r, r.get("text", ""), tax, dimension, i))
    return f'<div class="pt-doc">{"".join(out)}</div>'


TABLE_COLUMNS = ["编号", "标题路径", "条款", "主题", "措施类型", "置信度", "责任单位", "校正"]


def clause_table(rows: Sequence[dict], tax: Taxonomy) -> pd.DataFrame:
    recs = [{
        "编号": r.get("clause_id", ""),
        "标题路径": r.get("context", ""),
        "条款": r.get("text", ""),
        "主题": _names(r.get("themes"), tax),
        "措施类型": _names(r.get("measures"), tax),
        "置信度": _confidences(r, tax),
        "责任单位": "、".join(r.get("agencies") or []),
        "校正": "✎ 已校正" if r.get("corrected") else "",
    } for r in rows]
    return pd.DataFrame(recs, columns=TABLE_COLUMNS)


def filter_rows(rows: Sequence[dict], theme: str | None = None, measure: str | None = None,
                query: str | None = None) -> list[dict]:
    """Rows having ``theme`` and ``measure`` (``(none)`` = no label; ALL/None = any) and containing ``query``."""
    from policytag.serving.tagging import NONE_ID

    out = []
    q = (query or "").strip()
    for r in rows:
        if theme and theme != ALL:
            if theme == NONE_ID and r.get("themes"):
                continue
            if theme != NONE_ID and theme not in (r.get("themes") or []):
                continue
        if measure and measure != ALL:
            if measure == NONE_ID and r.get("measures"):
                continue
            if measure != NONE_ID and measure not in (r.get("measures") or []):
                continue
        if q and not any(q in str(r.get(k) or "") for k in ("text", "context", "clause_id")) \
                and q not in "、".join(r.get("agencies") or []):
            continue
        out.append(r)
    return out


def heatmap_html(rows: Sequence[dict], tax: Taxonomy) -> str:
    """Theme × measure-type counts as a coloured table, measure columns grouped by family."""
    from policytag.serving.tagging import NONE_ID, heatmap_matrix

    if not rows:
        return '<div class="pt-empty">标注后显示主题 × 措施类型热力图 (theme × measure heat map)</div>'
    m = heatmap_matrix(rows, tax, names="id")
    measures = [c for c in m.columns]
    fam_of = {c: (tax.family_of(c) if c in tax else "") for c in measures}
    vmax = max(1, int(m.values.max()))
    head_fam = ['<th class="pt-corner" rowspan="2">主题 \\ 措施</th>']
    fams: list[tuple[str, int]] = []
    for c in measures:
        f = fam_of[c]
        if fams and fams[-1][0] == f:
            fams[-1] = (f, fams[-1][1] + 1)
        else:
            fams.append((f, 1))
    for f, n in fams:
        label = (tax.families.get(f) or {}).get("zh", f) if f else "—"
        head_fam.append(f'<th class="pt-fam pt-fam-{html.escape(f or "none")}" colspan="{n}">{html.escape(label)}</th>')
    head_fam.append('<th class="pt-total" rowspan="2">合计</th>')

    def name(i: str) -> str:
        return "无" if i == NONE_ID else tax[i].zh

    def title(i: str) -> str:
        return "no label" if i == NONE_ID else f"{tax[i].en} ({i})"

    head_m = "".join(f'<th class="pt-mcol" title="{html.escape(title(c))}">{html.escape(name(c))}</th>' for c in measures)
    body = []
    for t in m.index:
        vals = [int(m.loc[t, c]) for c in measures]
        cells = []
        for c, v in zip(measures, vals):
            a = 0.0 if v == 0 else 0.15 + 0.85 * v / vmax
            fg = "#fff" if a > 0.55 else "#1f2937"
            cells.append(f'<td style="background:rgba(37,99,235,{a:.2f});color:{fg}" '
                         f'title="{html.escape(name(t))} × {html.escape(name(c))}: {v}">{v or ""}</td>')
        color = tax[t].color if t in tax else "#9ca3af"
        body.append(f'<tr><th class="pt-trow" title="{html.escape(title(t))}"><span class="pt-swatch" '
                    f'style="background:{color}"></span>{html.escape(name(t))}</th>{"".join(cells)}'
                    f'<td class="pt-total">{sum(vals)}</td></tr>')
    col_tot = "".join(f'<td class="pt-total">{int(m[c].sum())}</td>' for c in measures)
    body.append(f'<tr><th class="pt-trow">合计</th>{col_tot}<td class="pt-total">{int(m.values.sum())}</td></tr>')
    return (f'<div class="pt-heat-wrap"><table class="pt-heat"><thead><tr>{"".join(head_fam)}</tr>'
            f'<tr>{head_m}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            '<div class="pt-note">单元格：同时带有该主题和该措施类型的条款数（一条款可计入多个单元格）。'
            'Cell = clauses with both labels; a clause can count in several cells.</div></div>')


def families_html(rows: Sequence[dict], tax: Taxonomy) -> str:
    """Counts per measure family (supply / environment / demand) with a bar per family."""
    from policytag.serving.tagging import family_counts

    if not rows:
        return ""
    fc = family_counts(rows, tax)
    total = int(fc["count"].sum()) or 1
    parts = []
    for fam, g in fc.groupby("family", sort=False):
        n = int(g["count"].sum())
        zh = g["family_zh"].iloc[0]
        en = (tax.families.get(fam) or {}).get("en", fam)
        detail = "、".join(f"{a} {int(b)}" for a, b in zip(g["measure_zh"], g["count"]) if b)
        parts.append(
            f'<div class="pt-fam-row" title="{html.escape(en)}: {html.escape(detail or "—")}">'
            f'<span class="pt-fam-name">{html.escape(zh)}</span>'
            f'<span class="pt-bar"><span class="pt-bar-fill pt-fam-{html.escape(fam)}" style="width:{100 * n / total:.0f}%"></span></span>'
            f'<span class="pt-fam-n">{n} <small>({100 * n / total:.0f}%)</small></span></div>')
    return f'<div class="pt-families">{"".join(parts)}</div>'


def summary_markdown(res: dict, n_shown: int | None = None) -> str:
    rows = res.get("rows") or []
    n = len(rows)
    labeled = sum(1 for r in rows if r.get("themes") or r.get("measures"))
    corrected = sum(1 for r in rows if r.get("corrected"))
    s = (f"**{html.escape(str(res.get('name') or res.get('doc_id')))}** · {n} 个条款 · "
         f"{labeled} 个有标签 · 用时 {res.get('seconds', 0):.1f} 秒 · 模型 `{res.get('model_version', '')}`")
    if corrected:
        s += f" · {corrected} 个已校正 ✎"
    if res.get("removed"):
        s += f" · 已去除 {res['removed']} 行页面杂项"
    return s


def clause_choices(rows: Sequence[dict]) -> list[tuple[str, str]]:
    out = []
    for r in rows:
        t = " ".join(str(r.get("text", "")).split())
        out.append((f"{r.get('clause_id', '')} · {t[:28]}{'…' if len(t) > 28 else ''}", str(r.get("clause_id", ""))))
    return out


def clause_detail_markdown(row: dict | None, tax: Taxonomy, history: Sequence[dict] = ()) -> str:
    if not row:
        return "在表格或文档中点击一个条款，或在上面选择条款编号。\n\n*(Click a clause in the document or the table to correct it.)*"
    lines = [f"**{html.escape(str(row.get('clause_id', '')))}**"]
    if row.get("context"):
        lines.append(f"<span class='pt-muted'>{html.escape(row['context'])}</span>")
    lines.append(f"> {html.escape(str(row.get('text', '')))}")
    pt = row.get("predicted_themes", row.get("themes")) or []
    pm = row.get("predicted_measures", row.get("measures")) or []
    pred = [f"{tax[i].zh} {float(row.get('p_' + i, 0)):.2f}" for i in list(pt) + list(pm) if i in tax]
    lines.append(f"模型预测 (prediction, `{row.get('model_version', '')}`): {' · '.join(pred) or '无标签'}")
    if history:
        last = history[-1]
        who = last.get("annotator") or "匿名"
        lines.append(f"已校正 {len(history)} 次，最近：{who} · {str(last.get('created_at', ''))[:19]}")
    return "\n\n".join(lines)


def review_table(items: Sequence[dict], tax: Taxonomy) -> pd.DataFrame:
    """The review queue as a table; accepts the dicts of :func:`policytag.retrain.review_queue`."""
    recs = []
    for it in items:
        lab = it.get("label") or it.get("uncertain_label") or ""
        if isinstance(lab, (list, tuple)):
            lab = "、".join(tax[i].zh for i in lab if i in tax)
        elif lab in tax:
            lab = tax[lab].display
        margin = it.get("margin", it.get("uncertainty", it.get("score", "")))
        recs.append({
            "编号": it.get("clause_id", ""),
            "条款": it.get("text", ""),
            "最不确定的标签": lab,
            "与阈值的距离": round(float(margin), 3) if isinstance(margin, (int, float)) else margin,
            "主题": _names(it.get("themes"), tax),
            "措施类型": _names(it.get("measures"), tax),
        })
    return pd.DataFrame(recs, columns=["编号", "条款", "最不确定的标签", "与阈值的距离", "主题", "措施类型"])


METRIC_SETS = [  # (key in the model metadata "metrics", label shown)
    ("test", "测试文档 (fixed test documents)"),
    ("train_oof", "训练数据交叉验证 (out-of-fold, optimistic)"),
    ("train_fit", "训练拟合 (fit on training data)"),
]


def _metric_summary(metrics: dict) -> list[dict]:
    """Headline figures per evaluation set of a model's metadata (``training.evaluation`` reports)."""
    out = []
    for key, label in METRIC_SETS:
        m = metrics.get(key)
        if not isinstance(m, dict) or not isinstance(m.get("themes"), dict):
            continue
        t, me = m["themes"], m.get("measures") or {}
        out.append({"set": key, "label": label, "n": m.get("n"),
                    "theme_micro_f1": t.get("micro_f1"), "theme_macro_f1": t.get("macro_f1"),
                    "measure_micro_f1": me.get("micro_f1"), "measure_macro_f1": me.get("macro_f1"),
                    "exact_match": (m.get("all") or {}).get("exact_match")})
    return out


def _f(v: Any) -> str:
    return "—" if v is None else f"{float(v):.3f}"


def model_markdown(info: dict) -> str:
    status = {"production": "生产版本 (production)", "candidate": "候选版本 (candidate)",
              "retired": "已退役 (retired)"}.get(info.get("status"), "未登记的目录 (unregistered directory)")
    n = info.get("n_train_clauses")
    data = f"{n} 个条款，{info.get('n_train_docs', 0)} 份文档 (clauses, documents)" if n else "—"
    rows = [
        ("当前版本 (version)", f"`{info.get('version', '')}` · {status}"),
        ("基础模型 (base model)", f"`{info.get('base_model') or '—'}` · {info.get('backend', '')}"),
        ("训练时间 (trained)", str(info.get("created_at") or "—")[:19].replace("T", " ")),
        ("训练数据 (training data)", data),
        ("校正 (corrections)", f"共 {info.get('corrections_total', 0)} 个条款；上次训练以来 **{info.get('corrections_since_training', 0)}** 个"),
    ]
    body = "\n".join(f"| {a} | {b} |" for a, b in rows)
    out = [f"#### 模型 (Model)\n\n| 项目 | 内容 |\n|---|---|\n{body}"]
    ms = info.get("metrics") or []
    if ms:
        lines = ["| 评估集 (evaluation set) | 条款 | 主题 micro-F1 | 主题 macro-F1 | 措施 micro-F1 | 措施 macro-F1 | 完全匹配 |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for m in ms:
            lines.append(f"| {m['label']} | {m.get('n') or ''} | {_f(m['theme_micro_f1'])} | {_f(m['theme_macro_f1'])} | "
                         f"{_f(m['measure_micro_f1'])} | {_f(m['measure_macro_f1'])} | {_f(m['exact_match'])} |")
        out.append("#### 评估 (Evaluation)\n\n" + "\n".join(lines))
    else:
        out.append("<span class='pt-muted'>模型元数据中没有评估结果 (no evaluation figures in the model metadata)</span>")
    out.append(f"<span class='pt-muted'>模型目录 (model dir): {html.escape(info.get('model_dir', ''))}<br>"
               f"阈值 (thresholds): {html.escape(str(info.get('thresholds') or '—'))}</span>")
    return "\n\n".join(out)


STAGE_NAMES = {"data": "准备数据 (data)", "train": "训练 (training)", "evaluate": "评估 (evaluating)",
               "register": "登记版本 (registering)"}


def retrain_markdown(state: dict) -> str:
    """The retraining panel from a :class:`policytag.retrain.RetrainJob` state."""
    status = state.get("status", "idle")
    if status == "idle":
        return ("点击 **重新训练**：用标注数据和全部校正训练新版本，在固定的测试文档上与当前生产版本比较，"
                "不比它差才上线。训练在后台进程中进行，期间可以照常标注。\n\n"
                "*Retrain on the gold labels plus all corrections; the new version goes live only if it is not "
                "worse on the fixed test documents. Tagging keeps working meanwhile.*")
    if status == "running":
        pct = 100 * float(state.get("fraction") or 0)
        stage = STAGE_NAMES.get(state.get("stage"), state.get("stage") or "")
        return (f"**正在重新训练…** · {html.escape(stage)} · {pct:.0f}%"
                f'<div class="pt-bar pt-progress"><span class="pt-bar-fill pt-fam-environment" style="width:{pct:.0f}%"></span></div>'
                f"<span class='pt-muted'>{html.escape(str(state.get('message') or ''))} · 开始于 {str(state.get('started_at') or '')[11:19]} UTC</span>")
    if status in ("failed", "cancelled"):
        return f"**重新训练未完成**  (retraining {status}): {html.escape(str(state.get('error') or state.get('message') or ''))}"
    r = state.get("result") or {}
    head = (f"**重新训练完成** ({r.get('seconds', 0):.0f} 秒)：新版本 `{r.get('version', '')}` "
            + ("**已上线**，本页面已切换到新版本 (promoted; now serving it)" if r.get("promoted")
               else "**未上线** (kept as candidate)"))
    lines = [head, ""]
    new, old, delta = r.get("new_score"), r.get("production_score"), r.get("delta")
    metric = r.get("metric", "mean_micro_f1")
    if new is not None:
        if old is not None:
            arrow = "▲" if (delta or 0) > 0 else "▼" if (delta or 0) < 0 else "＝"
            lines.append(f"- {metric}（测试文档）：{old:.3f} → **{new:.3f}** {arrow} {(delta or 0):+.3f}")
        else:
            lines.append(f"- {metric}（测试文档）：**{new:.3f}**（此前没有生产版本）")
    nm, pm = r.get("new_metrics") or {}, r.get("production_metrics") or {}
    for k in ("theme_micro_f1", "measure_micro_f1", "theme_macro_f1", "measure_macro_f1"):
        if k in nm:
            lines.append(f"- {k}: {_f(pm.get(k)) if k in pm else '—'} → {_f(nm[k])}")
    lines.append(f"- 训练数据 {r.get('n_train', 0)} 个条款，其中校正 {r.get('corrections', 0)} 个；测试 {r.get('n_test', 0)} 个条款")
    if r.get("reason"):
        lines.append(f"\n<span class='pt-muted'>{html.escape(str(r['reason']))}</span>")
    return "\n".join(lines)


def versions_table(versions: Sequence[dict]) -> pd.DataFrame:
    recs = []
    for v in reversed(list(versions)):  # newest first
        mm = v.get("main_metric")
        recs.append({
            "版本": v.get("version", ""),
            "状态": {"production": "● 生产", "candidate": "候选", "retired": "退役"}.get(v.get("status"), v.get("status", "")),
            "创建时间": str(v.get("created_at", ""))[:16].replace("T", " "),
            "父版本": v.get("parent") or "",
            "训练条款": v.get("n_train", ""),
            "校正": v.get("corrections", ""),
            "mean micro-F1": "" if mm is None else f"{float(mm):.3f}",
            "变化": "" if v.get("delta") is None else f"{float(v['delta']):+.3f}",
        })
    return pd.DataFrame(recs, columns=["版本", "状态", "创建时间", "父版本", "训练条款", "校正", "mean micro-F1", "变化"])


# --------------------------------------------------------------------------- callbacks


def _user_errors(fn: Callable) -> Callable:
    """Show a user-fixable error as a Gradio message, never a stack trace in the page."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except PolicytagError as e:
            raise gr.Error(str(e), title="无法完成 (cannot do this)", print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - logged with its trace; the page gets one clear line
            log.error("app callback %s failed:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"内部错误 (internal error): {type(e).__name__}: {e}. 详细信息在服务器日志中。",
                           title="出错了", print_exception=False) from None

    return wrapper


def _api_result(res: TagResult | dict, tax: Taxonomy) -> dict:
    """The JSON answer of the ``tag_text`` / ``tag_file`` endpoints."""
    from policytag.serving.tagging import family_counts, heatmap_matrix

    d = res.to_state() if isinstance(res, TagResult) else res
    rows = d["rows"]
    m = heatmap_matrix(rows, tax, names="id")
    fc = family_counts(rows, tax)
    return {
        "doc_id": d["doc_id"], "name": d["name"], "model_version": d["model_version"],
        "n_clauses": len(rows), "seconds": round(d["seconds"], 3),
        "clauses": rows,
        "heatmap": {"themes": list(m.index), "measures": list(m.columns), "counts": m.values.tolist()},
        "families": {f: int(g["count"].sum()) for f, g in fc.groupby("family", sort=False)},
    }


def _file_path_and_name(file: Any) -> tuple[str, str | None]:
    if file is None:
        raise InputError("没有文件：请选择一个 .txt/.docx/.pdf/.html 文件 (no file uploaded)")
    if isinstance(file, dict):
        p = file.get("path") or file.get("name")
        return str(p), file.get("orig_name") or (Path(str(p)).name if p else None)
    p = getattr(file, "path", None) or getattr(file, "name", None) or str(file)
    return str(p), getattr(file, "orig_name", None) or Path(str(p)).name


def example_documents(config: dict) -> list[tuple[str, str]]:
    """(label, text) of the one-click examples: the seed documents in ``labels/sources``."""
    names = list((config.get("examples") or {}).get("sources") or [])
    files = [paths.SOURCES_DIR / n for n in names] if names else sorted(paths.SOURCES_DIR.glob("*.txt"))
    out = []
    for f in files:
        if f.exists():
            out.append((f.stem, f.read_text(encoding="utf-8")))
    return out


CLICK_JS = """
element.addEventListener('click', (e) => {
  const c = e.target.closest('[data-cid]');
  if (!c) return;
  element.querySelectorAll('.pt-selected').forEach(x => x.classList.remove('pt-selected'));
  c.classList.add('pt-selected');
  trigger('click', {clause_id: c.dataset.cid});
});
"""


def build_app(model_dir: str | Path | None = None, store: Any = None, registry: Any = None, *,
              config: dict | None = None, model: Any = None) -> gr.Blocks:
    """Build the app around a model (``model_dir``, or the registry's production model).

    ``store`` is a :class:`~policytag.corrections.CorrectionStore` (default: the path in
    ``configs/app.yaml``, else ``$POLICYTAG_HOME/corrections.sqlite``); ``registry`` a
    :class:`~policytag.registry.ModelRegistry`. Raises :class:`ModelNotFoundError` with the
    commands to train a model when there is none.
    """
    svc = AppService(model_dir=model_dir, store=store, registry=registry, config=config, model=model)
    cfg = svc.config
    tax = svc.taxonomy
    ui = cfg.get("ui") or {}
    from policytag.serving.tagging import NONE_ID

    theme_choices = [(tax[i].display, i) for i in tax.themes]
    measure_choices = [(f"{tax[i].display} · {(tax.families.get(tax.family_of(i)) or {}).get('zh', '')}", i)
                       for i in tax.measures]
    filter_theme_choices = [("全部主题 (all)", ALL)] + theme_choices + [("无主题 (none)", NONE_ID)]
    filter_measure_choices = [("全部措施 (all)", ALL)] + [(tax[i].display, i) for i in tax.measures] + [("无措施 (none)", NONE_ID)]
    default_dim = ui.get("highlight_by", "themes")

    # ---- callbacks: each one a thin call into AppService / library functions
    def render(res: dict, dimension: str, theme_f: str = ALL, measure_f: str = ALL, query: str = ""):
        rows = res.get("rows") or []
        return (
            summary_markdown(res),
            legend_html(tax, dimension, rows) + document_html(res.get("text", ""), rows, tax, dimension),
            clause_table(filter_rows(rows, theme_f, measure_f, query), tax),
            heatmap_html(rows, tax),
            families_html(rows, tax),
        )

    def show(result: TagResult, dimension: str):
        state = result.to_state()
        files = svc.export(state)
        return (state, *render(state, dimension), files,
                gr.update(choices=clause_choices(state["rows"]), value=None),
                ALL, ALL, "")

    seed_names = {t.strip(): n for n, t in example_documents(cfg)}

    def reporter(progress: gr.Progress) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"标注中 (tagging) {done}/{total} 个条款")
        return report

    @_user_errors
    def ui_tag_text(text: str, dimension: str, progress=gr.Progress()):
        name = seed_names.get((text or "").strip())  # a one-click example keeps its document name
        if name is None:
            return show(svc.tag(svc.read_text(text), progress=reporter(progress)), dimension)
        from policytag.text.ingestion import doc_id_for

        doc = svc.read_text(text, doc_id=doc_id_for(name), name=name)
        return show(svc.tag(doc, name=name, progress=reporter(progress)), dimension)

    @_user_errors
    def ui_tag_file(file: Any, dimension: str, progress=gr.Progress()):
        path, name = _file_path_and_name(file)
        return show(svc.tag(svc.read_file(path, name), name=name, progress=reporter(progress)), dimension)

    @_user_errors
    def ui_rerender_doc(res: dict, dimension: str):
        rows = (res or {}).get("rows") or []
        return legend_html(tax, dimension, rows) + document_html((res or {}).get("text", ""), rows, tax, dimension)

    @_user_errors
    def ui_filter(res: dict, theme_f: str, measure_f: str, query: str):
        return clause_table(filter_rows((res or {}).get("rows") or [], theme_f, measure_f, query), tax)

    def find_row(res: dict | None, clause_id: str | None) -> dict | None:
        for r in (res or {}).get("rows") or []:
            if str(r.get("clause_id")) == str(clause_id):
                return r
        return None

    @_user_errors
    def ui_select_clause(res: dict, clause_id: str | None):
        row = find_row(res, clause_id)
        if row is None:
            return clause_detail_markdown(None, tax), gr.update(value=[]), gr.update(value=[]), ""
        hist = svc.store.history(row["text"])
        return (clause_detail_markdown(row, tax, hist), gr.update(value=list(row.get("themes") or [])),
                gr.update(value=list(row.get("measures") or [])), "")

    def ui_table_select(evt: gr.SelectData):
        value = evt.row_value[0] if getattr(evt, "row_value", None) else None
        return gr.update(value=value) if value else gr.update()

    def ui_doc_click(evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        cid = data.get("clause_id") if isinstance(data, dict) else None
        return gr.update(value=cid) if cid else gr.update()

    @_user_errors
    def ui_save(res: dict, clause_id: str | None, themes: list[str], measures: list[str], annotator: str,
                note: str, dimension: str, theme_f: str, measure_f: str, query: str):
        row = find_row(res, clause_id)
        if row is None:
            raise InputError("请先选择一个条款 (select a clause to correct first)")
        rid, written, new = svc.save_correction(row, themes or [], measures or [], annotator, note)
        res = dict(res)
        res["rows"] = [new if r is row else r for r in res["rows"]]
        msg = (f"**已保存校正 #{rid}** (saved)：{_names(new['themes'], tax) or '无主题'} | {_names(new['measures'], tax) or '无措施'}"
               if written else f"这条校正已经保存过（#{rid}），没有重复写入 (already saved, nothing duplicated)")
        gr.Info(f"已保存校正 #{rid}" if written else "已保存过，未重复写入")
        hist = svc.store.history(new["text"])
        return (res, msg, *render(res, dimension, theme_f, measure_f, query), svc.export(res),
                clause_detail_markdown(new, tax, hist), _badge(svc.model_info()))

    @_user_errors
    def ui_model_panel():
        return model_markdown(svc.model_info()), versions_table(svc.versions()), retrain_markdown(svc.retrain_state())

    @_user_errors
    def ui_start_retrain():
        if not svc.start_retrain():
            gr.Warning("已有一个重新训练任务在运行 (a retraining is already running)")
        return retrain_markdown(svc.retrain_state()), gr.Timer(active=True)

    @_user_errors
    def ui_poll_retrain():
        st = svc.retrain_state()
        running = st.get("status") == "running"
        return (retrain_markdown(st), model_markdown(svc.model_info()), versions_table(svc.versions()),
                _badge(svc.model_info()), gr.Timer(active=running))

    @_user_errors
    def ui_review(res: dict, n: float):
        rows = (res or {}).get("rows") or []
        if not rows:
            raise InputError("先标注一份文档，再生成待复核队列 (tag a document first)")
        return review_table(svc.review(rows, int(n)), tax)

    def ui_review_select(evt: gr.SelectData):
        value = evt.row_value[0] if getattr(evt, "row_value", None) else None
        return (gr.update(value=value), gr.Tabs(selected="tag")) if value else (gr.update(), gr.update())

    # ---- API endpoints (gradio_client): typed functions returning JSON
    @_user_errors
    def tag_text(text: str) -> dict:
        """Tag pasted document text. Returns the clauses (doc_id, clause_id, context, text, span, agencies, themes, measures, p_<label> scores, model_version), the theme × measure heat map and the counts per measure family."""
        return _api_result(svc.tag(svc.read_text(text)), tax)

    @_user_errors
    def tag_file(file: gr.FileData) -> dict:
        """Tag an uploaded .txt/.docx/.pdf/.html document (use gradio_client.handle_file). Same answer as tag_text."""
        path, name = _file_path_and_name(file)
        return _api_result(svc.tag(svc.read_file(path, name), name=name), tax)

    @_user_errors
    def save_correction(clause: dict, themes: list[str], measures: list[str], annotator: str = "",
                        note: str = "") -> dict:
        """Save corrected labels for one clause (a clause dict as returned by tag_text, or at least {"text": ...}). themes/measures: label ids such as "youth", "activities" (Chinese names accepted). Saving the same labels twice does not add a row."""
        rid, written, new = svc.save_correction(dict(clause or {}), themes or [], measures or [], annotator, note)
        return {"id": rid, "written": written, "clause_id": new.get("clause_id", ""),
                "themes": new["themes"], "measures": new["measures"]}

    @_user_errors
    def model_info() -> dict:
        """The served model: version, base model, training data, evaluation figures, corrections since training."""
        return svc.model_info()

    # ---- layout
    with gr.Blocks(title=ui.get("title", "policytag"), fill_width=True, elem_id="pt-app") as demo:
        state = gr.State({})
        with gr.Row(elem_classes="pt-header"):
            gr.HTML(f'<div class="pt-title">{html.escape(ui.get("title", "policytag"))}'
                    '<span class="pt-sub">Policy clause tagger · 主题 (target group) × 措施类型 (policy instrument)</span></div>')
            model_badge = gr.HTML(elem_classes="pt-badge")
        with gr.Tabs(selected="tag") as tabs:
            with gr.Tab("文档标注 (Tag)", id="tag"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        with gr.Tabs():
                            with gr.Tab("粘贴文本 (Paste)"):
                                text_in = gr.Textbox(label="政策文件正文", lines=5, max_lines=7, elem_id="pt-text",
                                                     placeholder="粘贴政策文件全文（标题、章节编号、条款）……",
                                                     info="Paste the full text of a policy document.")
                                with gr.Row():
                                    tag_btn = gr.Button("标注 (Tag)", variant="primary", elem_id="pt-tag-btn", scale=2)
                                    clear_btn = gr.ClearButton([text_in], value="清空 (Clear)", scale=1)
                            with gr.Tab("上传文件 (Upload)"):
                                file_in = gr.File(label="上传 .txt / .docx / .pdf / .html", file_count="single",
                                                  file_types=supported_suffixes(), elem_id="pt-file", height=120)
                                gr.Markdown("<span class='pt-muted'>上传后自动标注。Uploading tags the file.</span>")
                        examples = example_documents(cfg)
                        if examples:
                            ex = gr.Examples(examples=[[t] for _, t in examples], inputs=[text_in],
                                             example_labels=[n for n, _ in examples],
                                             label="示例文档（点击即标注）· Seed documents, one click to tag",
                                             examples_per_page=10, cache_examples=False)
                    with gr.Column(scale=2, min_width=320):
                        summary = gr.Markdown("尚未标注文档 (no document yet)", elem_id="pt-summary")
                        families = gr.HTML(elem_id="pt-families")
                        downloads = gr.File(label="下载 (Downloads): 条款表 JSONL / CSV / XLSX，热力图 CSV / XLSX",
                                            file_count="multiple", interactive=False, elem_id="pt-downloads")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        with gr.Tabs():
                            with gr.Tab("高亮文档 (Document)"):
                                dimension = gr.Radio(DIMENSION_CHOICES, value=default_dim, show_label=False,
                                                     elem_id="pt-dimension", container=False)
                                doc_html = gr.HTML(document_html("", [], tax), elem_id="pt-doc",
                                                   js_on_load=CLICK_JS, max_height=720)
                            with gr.Tab("条款表 (Table)"):
                                with gr.Row():
                                    f_theme = gr.Dropdown(filter_theme_choices, value=ALL, label="主题筛选", scale=1,
                                                          info="Filter by theme")
                                    f_measure = gr.Dropdown(filter_measure_choices, value=ALL, label="措施类型筛选",
                                                            scale=1, info="Filter by measure type")
                                    f_query = gr.Textbox(label="关键词", scale=1, info="Text contains",
                                                         placeholder="如：科技馆")
                                table = gr.Dataframe(clause_table([], tax), interactive=False, wrap=True,
                                                     max_height=int(ui.get("table_height", 520)), elem_id="pt-table",
                                                     column_widths=["8%", "14%", "36%", "9%", "11%", "12%", "6%", "4%"],
                                                     show_search="search", buttons=["fullscreen", "copy"],
                                                     label="条款表（点击表头排序，点击行进行校正）")
                            with gr.Tab("热力图 (Heat map)"):
                                heat = gr.HTML(heatmap_html([], tax), elem_id="pt-heat")
                    with gr.Column(scale=2, min_width=320, elem_classes="pt-editor"):
                        gr.Markdown("### 校正条款 (Correct a clause)")
                        clause_dd = gr.Dropdown([], label="条款编号", info="Pick a clause, or click one in the document/table",
                                                elem_id="pt-clause-dd", filterable=True)
                        clause_md = gr.Markdown(clause_detail_markdown(None, tax), elem_id="pt-clause-detail")
                        themes_dd = gr.Dropdown(theme_choices, multiselect=True, label="主题 (themes)",
                                                info="Target groups; empty = the public in general", elem_id="pt-themes")
                        measures_dd = gr.Dropdown(measure_choices, multiselect=True, label="措施类型 (measure types)",
                                                  info="Policy instruments; usually one or two", elem_id="pt-measures")
                        with gr.Row():
                            annotator = gr.Textbox(label="标注人 (annotator)", value=(cfg.get("corrections") or {}).get("annotator", ""),
                                                   placeholder="可选 optional", scale=1, elem_id="pt-annotator")
                            note = gr.Textbox(label="备注 (note)", placeholder="可选 optional", scale=2, elem_id="pt-note")
                        save_btn = gr.Button("保存校正 (Save)", variant="primary", elem_id="pt-save-btn")
                        save_status = gr.Markdown(elem_id="pt-save-status")
            with gr.Tab("待复核 (Review queue)", id="review"):
                gr.Markdown("模型最不确定的条款（分数离阈值最近）排在前面：先复核这些，校正最有价值。点击一行即转到校正。\n\n"
                            "*Least-certain clauses of the current document first; click a row to correct it.*")
                with gr.Row():
                    review_n = gr.Slider(5, 200, value=int((cfg.get("review_queue") or {}).get("size", 30)), step=5,
                                         label="条数 (how many)", scale=3)
                    review_btn = gr.Button("生成待复核队列 (Build queue)", scale=1)
                review_df = gr.Dataframe(review_table([], tax), interactive=False, wrap=True, elem_id="pt-review",
                                         column_widths=["10%", "46%", "16%", "8%", "8%", "12%"], max_height=640)
            with gr.Tab("模型 (Model)", id="model"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        model_md = gr.Markdown(elem_id="pt-model-info")
                    with gr.Column(scale=2):
                        retrain_btn = gr.Button("重新训练 (Retrain on corrections)", variant="primary", elem_id="pt-retrain-btn")
                        retrain_md = gr.Markdown(retrain_markdown({"status": "idle"}), elem_id="pt-retrain-status")
                versions_df = gr.Dataframe(versions_table([]), interactive=False, label="版本 (versions, newest first)",
                                           elem_id="pt-versions")
                timer = gr.Timer(float((cfg.get("retrain") or {}).get("poll_seconds", 2)), active=False)
            with gr.Tab("API", id="api"):
                gr.Markdown(API_HELP)

        # ---- events
        tag_outputs = [state, summary, doc_html, table, heat, families, downloads, clause_dd, f_theme, f_measure, f_query]
        tag_btn.click(ui_tag_text, [text_in, dimension], tag_outputs, api_visibility="private",
                      concurrency_id="tagging", scroll_to_output=False)
        text_in.submit(ui_tag_text, [text_in, dimension], tag_outputs, api_visibility="private", concurrency_id="tagging")
        file_in.upload(ui_tag_file, [file_in, dimension], tag_outputs, api_visibility="private", concurrency_id="tagging")
        if examples:
            ex.load_input_event.then(ui_tag_text, [text_in, dimension], tag_outputs, api_visibility="private",
                                     concurrency_id="tagging")
        dimension.change(ui_rerender_doc, [state, dimension], doc_html, api_visibility="private", queue=False)
        for w in (f_theme, f_measure):
            w.change(ui_filter, [state, f_theme, f_measure, f_query], table, api_visibility="private", queue=False)
        f_query.change(ui_filter, [state, f_theme, f_measure, f_query], table, api_visibility="private",
                       queue=False, trigger_mode="always_last")
        table.select(ui_table_select, None, clause_dd, api_visibility="private", queue=False)
        doc_html.click(ui_doc_click, None, clause_dd, api_visibility="private", queue=False)
        clause_dd.change(ui_select_clause, [state, clause_dd], [clause_md, themes_dd, measures_dd, save_status],
                         api_visibility="private", queue=False)
        save_btn.click(ui_save, [state, clause_dd, themes_dd, measures_dd, annotator, note, dimension, f_theme,
                                 f_measure, f_query],
                       [state, save_status, summary, doc_html, table, heat, families, downloads, clause_md, model_badge],
                       api_visibility="private", concurrency_id="corrections")
        review_btn.click(ui_review, [state, review_n], review_df, api_visibility="private", concurrency_id="tagging")
        review_df.select(ui_review_select, None, [clause_dd, tabs], api_visibility="private", queue=False)
        retrain_btn.click(ui_start_retrain, None, [retrain_md, timer], api_visibility="private")
        timer.tick(ui_poll_retrain, None, [retrain_md, model_md, versions_df, model_badge, timer], api_visibility="private",
                   show_progress="hidden")
        demo.load(ui_model_panel, None, [model_md, versions_df, retrain_md], api_visibility="private")
        demo.load(lambda: _badge(svc.model_info()), None, model_badge, api_visibility="private")

        gr.api(tag_text, api_name="tag_text", concurrency_id="tagging")
        gr.api(tag_file, api_name="tag_file", concurrency_id="tagging")
        gr.api(save_correction, api_name="save_correction", concurrency_id="corrections")
        gr.api(model_info, api_name="model_info")

    q = cfg.get("queue") or {}
    demo.queue(default_concurrency_limit=int(q.get("default_concurrency_limit", 2)), max_size=q.get("max_size"))
    demo.policytag_service = svc  # for tests and the benchmark: the state behind the page
    return demo


def _badge(info: dict) -> str:
    return (f'<div class="pt-badge-inner" title="{html.escape(info.get("model_dir", ""))}">模型 '
            f'<b>{html.escape(str(info.get("version", "")))}</b> · {html.escape(str(info.get("base_model") or info.get("backend") or ""))}'
            f' · 待训练校正 <b>{info.get("corrections_since_training", 0)}</b></div>')


API_HELP = """
### 用 Python 调用 (gradio_client)

```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")
res = client.predict("（一）实施青少年科学素质提升行动。开展科技馆进校园活动。", api_name="/tag_text")
for c in res["clauses"]:
    print(c["clause_id"], c["themes"], c["measures"], c["text"][:30])

res = client.predict(handle_file("policy.docx"), api_name="/tag_file")   # .txt/.docx/.pdf/.html

clause = res["clauses"][0]
client.predict(clause, ["youth"], ["activities"], "张三", "馆校合作", api_name="/save_correction")
print(client.predict(api_name="/model_info"))
```

Endpoints: `/tag_text(text)`, `/tag_file(file)`, `/save_correction(clause, themes, measures, annotator, note)`,
`/model_info()`. Label ids: see `labels/taxonomy.yaml`; Chinese names are accepted too. Errors (empty text,
unsupported file, a document above the size limit) come back as `gradio_client.exceptions.AppError` with the message.
"""
