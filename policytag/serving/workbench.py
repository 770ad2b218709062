"""The web app's service, with no Gradio in it: tag, correct, review, aggregate, export.

:class:`AppService` holds what every browser session shares (the model, the corrections
store, the registry) and does everything the page asks for; ``app.py`` only wires widgets
to its methods. The CLI, the tests and notebooks can call it directly:

    svc = AppService(model_dir)
    ws = svc.tag_text(open("policy.txt").read(), name="某省科普条例")
    svc.save_correction(ws.rows[3], ["youth"], ["activities"], annotator="张三")
    svc.export(ws, "xlsx")

Rows are :class:`~policytag.data.records.ClauseRow` records; a tagged document is a
:class:`TagResult`; what one browser session has tagged is a :class:`Workspace`.
"""

from __future__ import annotations

import atexit
import hmac
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from policytag import paths
from policytag.clause import Clause
from policytag.config import load_config
from policytag.data.corrections import CorrectionStore, clause_key
from policytag.data.records import ACCEPTED, CORRECTED, JUNK, ClauseRow, ReviewItem
from policytag.data.taxonomy import Taxonomy, load_taxonomy
from policytag.errors import InputError, ModelNotFoundError, PolicytagError
from policytag.modeling.registry import ModelRegistry
from policytag.serving import analyses, documents, exports
from policytag.serving.documents import PASTED_NAME, DocMeta, doc_meta
from policytag.serving.tagging import family_counts, heatmap_matrix, load_model, model_version, tag_clauses
from policytag.text.segmentation import segment
from policytag.training.retrain import RetrainJob, corrections_since, review_queue

log = logging.getLogger("policytag.app")

NO_MODEL_HELP = (
    "没有可用的模型 / no model to serve: the registry in {models} has no production model yet. "
    "Train and promote the default model on the shipped labels with "
    "`policytag serve --train-if-missing` (what `bash scripts/main.sh` does) or `policytag retrain`; "
    "or serve a model directory written by `policytag train` with `policytag serve --model DIR`."
)
ADMIN_TOKEN_ENV = "POLICYTAG_ADMIN_TOKEN"
LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}


def load_app_config(overrides: Sequence[str] = ()) -> dict:
    """``configs/app.yaml`` with ``key=value`` overrides (``limits.max_chars=200000``)."""
    return load_config("app", overrides)


# --------------------------------------------------------------------------- records of a session


@dataclass
class TagResult:
    """One tagged document."""

    doc_id: str
    name: str
    text: str
    rows: list[ClauseRow]
    model_version: str
    seconds: float
    removed: int = 0
    meta: DocMeta = field(default_factory=DocMeta)
    total: int = 0  # clauses in the document (more than len(rows) while it is still being tagged)

    @property
    def complete(self) -> bool:
        return len(self.rows) >= self.total


@dataclass
class Workspace:
    """What one browser session has tagged: one or several documents."""

    docs: list[TagResult] = field(default_factory=list)

    @property
    def rows(self) -> list[ClauseRow]:
        return [r for d in self.docs for r in d.rows]

    @property
    def name(self) -> str:
        if len(self.docs) == 1:
            return self.docs[0].name
        return f"{len(self.docs)} 份文档" if self.docs else ""

    def doc(self, doc_id: str | None) -> TagResult | None:
        return next((d for d in self.docs if d.doc_id == doc_id), self.docs[0] if self.docs and not doc_id else None)

    def rows_of(self, doc_id: str | None) -> list[ClauseRow]:
        """Rows of one document, or of all (``doc_id`` empty / ``__all__``)."""
        if not doc_id or doc_id == "__all__":
            return self.rows
        d = self.doc(doc_id)
        return list(d.rows) if d else []

    def find(self, clause_id: str | None) -> ClauseRow | None:
        return next((r for r in self.rows if r.clause_id == str(clause_id)), None)

    def replace(self, new_rows: Sequence[ClauseRow]) -> "Workspace":
        """A copy with rows of the same clause ids replaced."""
        by_id = {r.clause_id: r for r in new_rows}
        docs = [TagResult(**{**d.__dict__, "rows": [by_id.get(r.clause_id, r) for r in d.rows]}) for d in self.docs]
        return Workspace(docs)


# --------------------------------------------------------------------------- the service


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
            db = (self.config.get("corrections") or {}).get("db")
            store = CorrectionStore(Path(db) if db else paths.corrections_db(), taxonomy=self.taxonomy)
        self.store = store
        self._registry = registry
        self._lock = threading.RLock()
        # One prediction at a time: a Hugging Face fast tokenizer is not thread-safe; reading,
        # segmenting and exporting still run in parallel, and more users wait in the queue.
        self._predict_lock = threading.Lock()
        self.model_dir: Path | None = Path(model_dir) if model_dir is not None else None
        self.follows_registry = model_dir is None and model is None
        if model is None:
            self.model_dir = self._resolve_model_dir(model_dir)
            model = load_model(self.model_dir)
        self._model = model
        self.retrain_job: Any = None  # RetrainJob of the last "retrain" click
        self._reloaded_for: str | None = None
        self._export_root = Path(tempfile.mkdtemp(prefix="policytag-app-"))
        atexit.register(shutil.rmtree, self._export_root, True)

    # ---- model and registry
    @property
    def registry(self) -> Any:
        if self._registry is None:
            self._registry = ModelRegistry()
        return self._registry

    @property
    def model(self) -> Any:
        with self._lock:
            return self._model

    @property
    def version(self) -> str:
        return model_version(self.model)

    def _resolve_model_dir(self, model_dir: str | Path | None) -> Path:
        if model_dir is not None:
            p = Path(model_dir)
            if not p.exists():
                raise ModelNotFoundError(f"model directory {p} does not exist; give a directory written by "
                                         "`policytag train`, or leave out --model to serve the production model")
            return p
        prod = self.registry.production()
        if prod is None:
            raise ModelNotFoundError(NO_MODEL_HELP.format(models=getattr(self.registry, "root", paths.models_dir())))
        return Path(prod)

    def reload_production(self) -> bool:
        """Switch to the registry's production model if it differs from the one served."""
        prod = self.registry.production()
        if prod is None or (self.model_dir is not None and Path(prod) == self.model_dir):
            return False
        model = load_model(Path(prod))
        with self._lock:
            self._model, self.model_dir = model, Path(prod)
            self.follows_registry = True
        log.info("now serving the production model %s", prod)
        return True

    @property
    def limits(self) -> dict:
        return dict(self.config.get("limits") or {})

    def _limit(self, key: str, default: float = 0) -> float:
        return float(self.limits.get(key) or default)

    # ---- access: corrections need a name, admin actions a token
    @property
    def admin_token(self) -> str | None:
        tok = (self.config.get("auth") or {}).get("admin_token") or os.environ.get(ADMIN_TOKEN_ENV)
        return str(tok) if tok else None

    @property
    def admin_required(self) -> bool:
        return self.admin_token is not None

    def check_admin(self, token: str | None) -> None:
        """Raise unless ``token`` is the admin token (no token configured: local mode, allowed)."""
        want = self.admin_token
        if want is None:
            return
        if not token or not hmac.compare_digest(str(token).encode(), want.encode()):
            raise InputError("需要正确的管理员口令才能重新训练、上线或回滚模型 (admin token required)")

    # ---- reading and tagging
    def read_text(self, text: str | None, doc_id: str | None = None, name: str | None = None) -> Any:
        doc = documents.read_text(text, name, max_chars=int(self._limit("max_chars")))
        if doc_id:
            doc.doc_id = doc_id
        return doc

    def read_file(self, path: str | Path, name: str | None = None) -> Any:
        return documents.read_file(path, name, max_chars=int(self._limit("max_chars")),
                                   max_file_mb=self._limit("max_file_mb"))

    def read_uploads(self, files: Any) -> list[tuple[Any, str]]:
        """(document, file name) of every uploaded file; a .zip gives its documents."""
        out = []
        for path, name in documents.upload_paths(files):
            if documents.check_suffix(name) == documents.ZIP_SUFFIX:
                dest = Path(tempfile.mkdtemp(dir=self._export_root))
                for p, inner in documents.expand_zip(Path(path), dest, max_total_mb=self._limit("max_zip_mb", 50),
                                                     max_files=int(self._limit("max_files", 30))):
                    out.append((self.read_file(p, inner), inner))
            else:
                out.append((self.read_file(path, name), name))
        if len(out) > int(self._limit("max_files", 30)):
            raise InputError(f"一次最多 {int(self._limit('max_files', 30))} 个文档 (too many files at once)")
        return out

    def segment(self, doc: Any, name: str) -> list[Clause]:
        clauses = segment(doc)
        if not clauses:
            raise InputError(f"{name}：没有识别出任何条款（文本太短，或只有标题和页面杂项）"
                             " (no clauses found in the document)")
        max_clauses = int(self._limit("max_clauses"))
        if max_clauses and len(clauses) > max_clauses:
            raise InputError(f"{name} 有 {len(clauses):,} 个条款，网页版上限 {max_clauses:,}。"
                             "请拆分文档，或用命令行 `policytag predict` 标注 "
                             f"(too many clauses for the web app: {len(clauses):,} > {max_clauses:,})")
        return clauses

    def _doc_name(self, doc: Any, name: str | None) -> str:
        if name:
            return Path(str(name)).name
        if getattr(doc, "kind", "") == "text":
            src = getattr(doc, "source", "")
            return src if src and src != "<pasted>" else PASTED_NAME
        return Path(str(getattr(doc, "source", None) or doc.doc_id)).name

    def tag_iter(self, doc: Any, name: str | None = None, chunk: int | None = None) -> Iterator[TagResult]:
        """Segment and tag a document in document order, yielding the result as it grows.

        The first yield (no rows yet, ``total`` known) comes right after segmenting; then one
        per ``chunk`` clauses (``ui.stream_chunk``). The last one is complete.
        """
        name = self._doc_name(doc, name)
        clauses = self.segment(doc, name)
        if self.retrain_job is not None:
            self.retrain_state()  # a finished retraining may have promoted a new version: serve it
        model = self.model
        chunk = int(chunk or (self.config.get("ui") or {}).get("stream_chunk") or 64)
        latest = self.store.latest_by_key()
        res = TagResult(doc_id=doc.doc_id, name=name, text=doc.text, rows=[], model_version=model_version(model),
                        seconds=0.0, removed=len(getattr(doc, "removed", None) or []),
                        meta=doc_meta(doc.text, name, doc.doc_id), total=len(clauses))
        yield res
        t0 = time.perf_counter()
        for start in range(0, len(clauses), chunk):
            with self._predict_lock:
                part = tag_clauses(model, clauses[start:start + chunk])
            rows = [self._overlay(ClauseRow.from_dict({**r, "doc_name": name}), latest) for r in part]
            res = TagResult(**{**res.__dict__, "rows": res.rows + rows, "seconds": time.perf_counter() - t0})
            yield res

    def tag(self, doc: Any, name: str | None = None, progress: Callable[[int, int], None] | None = None) -> TagResult:
        """Segment and tag a whole document (limits checked before the model runs)."""
        res = None
        for res in self.tag_iter(doc, name):
            if progress is not None:
                progress(len(res.rows), res.total)
        assert res is not None
        return res

    def tag_text(self, text: str, name: str | None = None) -> Workspace:
        return Workspace([self.tag(self.read_text(text, name=name), name=name)])

    def tag_files(self, files: Any) -> Workspace:
        return Workspace([self.tag(doc, name=name) for doc, name in self.read_uploads(files)])

    def _overlay(self, row: ClauseRow, latest: dict[str, dict]) -> ClauseRow:
        rec = latest.get(clause_key(row.text))
        if rec is None:
            return row
        return row.apply_review(rec["themes"], rec["measures"], rec.get("status") or CORRECTED, rec.get("id"))

    def overlay_corrections(self, rows: Sequence[ClauseRow]) -> list[ClauseRow]:
        """Rows showing their saved decisions (a corrected clause displays its latest labels)."""
        latest = self.store.latest_by_key()
        return [self._overlay(r, latest) for r in rows]

    # ---- corrections and review decisions
    def known_versions(self) -> set[str]:
        out = {self.version}
        try:
            out |= {str(v.get("version")) for v in self.registry.versions()}
        except PolicytagError:
            pass
        return out

    def _validate(self, row: ClauseRow, annotator: str | None) -> str:
        if not row.text.strip():
            raise InputError("没有选中条款：先标注文档并选择一个条款 (select a clause first)")
        name = (annotator or "").strip()
        if not name:
            raise InputError("请填写标注人：校正需要署名 (annotator required)")
        max_chars = int(self._limit("max_chars"))
        if max_chars and len(row.text) > max_chars:
            raise InputError(f"条款过长（{len(row.text):,} 字 > {max_chars:,}） (clause text too long)")
        if row.model_version and row.model_version not in self.known_versions():
            raise InputError(f"未知的模型版本 {row.model_version!r}：请用本服务标注的条款 (unknown model version)")
        return name

    def _item(self, row: ClauseRow, themes: Any, measures: Any, annotator: str, note: str | None,
              status: str | None) -> Any:
        has_pred = bool(row.model_version)
        predicted = {"themes": row.model_themes, "measures": row.model_measures} if has_pred else None
        return self.store.prepare(row.to_dict(), themes, measures, predicted=predicted, scores=row.scores or None,
                                  model_version=row.model_version or None, annotator=annotator,
                                  note=(note or "").strip() or None, status=status)

    def save_correction(self, row: ClauseRow | dict, themes: Any, measures: Any, annotator: str | None = None,
                        note: str | None = None, status: str | None = None) -> tuple[int, bool, ClauseRow]:
        """Store a decision about one clause with its original prediction and scores.

        Returns ``(row id, written, row)``; ``written`` is False when the latest decision of
        this clause already had these labels (nothing is duplicated). ``status``: None
        (corrected, or accepted when the labels are the model's), ``accepted`` or ``junk``.
        """
        row = row if isinstance(row, ClauseRow) else ClauseRow.from_dict(dict(row or {}))
        name = self._validate(row, annotator)
        if status == JUNK:
            themes, measures = [], []
        item = self._item(row, themes, measures, name, note, status)
        if item.status is None:
            same = item.themes == row.model_themes and item.measures == row.model_measures
            item.status = ACCEPTED if same and row.model_version else CORRECTED
        res = self.store.add_many([item])
        rid = (res.added or res.unchanged)[0]
        return rid, bool(res.flags and res.flags[0]), row.apply_review(item.themes, item.measures, item.status, rid)

    def bulk_apply(self, rows: Sequence[ClauseRow], label: str, add: bool, annotator: str | None) -> tuple[int, list[ClauseRow]]:
        """Add (or remove) one label on every row, in one transaction; returns (rows written, new rows)."""
        if label not in self.taxonomy:
            raise InputError(f"未知的标签 {label!r} (unknown label)")
        rows = [r for r in rows if not r.junk]
        if not rows:
            raise InputError("筛选结果为空：先用主题/措施/搜索筛选出要修改的条款 (no clauses selected)")
        dim = self.taxonomy[label].dimension
        items = []
        for r in rows:
            name = self._validate(r, annotator)
            cur = {"themes": list(r.themes), "measures": list(r.measures)}
            cur[dim] = (cur[dim] + [label]) if add and label not in cur[dim] else [x for x in cur[dim] if add or x != label]
            items.append(self._item(r, cur["themes"], cur["measures"], name, "bulk", None))
        for it, r in zip(items, rows):
            same = it.themes == r.model_themes and it.measures == r.model_measures
            it.status = ACCEPTED if same and r.model_version else CORRECTED
        res = self.store.add_many(items)
        added, unchanged = iter(res.added), iter(res.unchanged)
        out = [r.apply_review(it.themes, it.measures, it.status, next(added) if written else next(unchanged))
               for it, r, written in zip(items, rows, res.flags)]
        return sum(res.flags), out

    def review_decision(self, data: dict, annotator: str | None = None) -> dict:
        """One keyboard decision of the review mode (``data``: row, action, themes, measures, annotator)."""
        row = ClauseRow.from_dict(dict(data.get("row") or {}))
        action = str(data.get("action") or "")
        status = {"accept": None, "junk": JUNK, "save": None}.get(action, "invalid")
        if status == "invalid":
            raise InputError(f"unknown review action {action!r}")
        rid, written, new = self.save_correction(row, data.get("themes") or [], data.get("measures") or [],
                                                 annotator or data.get("annotator"), status=status)
        return {"ok": True, "id": rid, "written": written, "status": new.status, "clause_id": new.clause_id,
                "themes": new.themes, "measures": new.measures}

    def corrections_since_training(self) -> int:
        """Clauses corrected since the served model was trained (all of them for an unregistered model)."""
        try:
            return int(corrections_since(self.registry, self.store, version=self.version))
        except PolicytagError:  # a model directory that is not a registered version
            created = (getattr(self.model, "metadata", None) or {}).get("created_at")
            return int(self.store.count(since=created, distinct=True) if created else self.store.count(distinct=True))

    # ---- review queue
    def review(self, rows: Sequence[ClauseRow], n: int | None = None) -> list[ReviewItem]:
        """The ``n`` least-certain clauses of ``rows`` (junk left out), most uncertain first."""
        n = int(n or (self.config.get("review_queue") or {}).get("size", 30))
        clauses = [Clause(doc_id=r.doc_id, clause_id=r.clause_id, text=r.text, context=r.context,
                          provision_id=r.provision_id, span=(r.span[0], r.span[1]) if r.span else None, agencies=r.agencies)
                   for r in rows if not r.junk]
        with self._predict_lock:
            items = [ReviewItem.from_dict(d) for d in review_queue(self.model, clauses, n=n)]
        by_id = {r.clause_id: r for r in rows}
        for it in items:  # show what reviewers already decided
            it.row = by_id.get(it.row.clause_id, it.row)
        return items

    # ---- aggregates and exports
    def heatmap(self, rows: Sequence[ClauseRow], names: str = "id") -> Any:
        """Theme × measure counts (pandas) of the rows that are clauses (junk left out)."""
        return heatmap_matrix([{"themes": r.themes, "measures": r.measures} for r in rows if not r.junk],
                              self.taxonomy, names=names)

    def family_counts(self, rows: Sequence[ClauseRow]) -> Any:
        return family_counts([{"measures": r.measures} for r in rows if not r.junk], self.taxonomy)

    def export(self, ws: Workspace, fmt: str, lang: str = "zh", doc_id: str | None = None) -> str:
        """Write one export file (on demand, when the user asks for it); returns its path."""
        self._prune_exports()
        out = Path(tempfile.mkdtemp(dir=self._export_root))
        return str(exports.write_export(ws, fmt, out, self.taxonomy, lang=lang, doc_id=doc_id,
                                        heat=self.heatmap(ws.rows_of(doc_id))))

    def analyze(self, ws: Workspace) -> analyses.WorkspaceAnalysis:
        """The 比较 tab: compare the workspace's documents, their agencies and targets
        (on the rows as shown, corrections included)."""
        return analyses.analyze_workspace(ws.replace(self.overlay_corrections(ws.rows)), self.taxonomy)

    def analysis_files(self, analysis: analyses.WorkspaceAnalysis, kind: str) -> list[str]:
        """Write one analysis download (workbook + figure) on demand; returns the paths."""
        self._prune_exports()
        out = Path(tempfile.mkdtemp(dir=self._export_root))
        return [str(p) for p in analyses.write_analysis_files(analysis, kind, out)]

    def _prune_exports(self, max_age_s: float = 3600.0) -> None:
        now = time.time()
        for d in self._export_root.glob("*"):
            try:
                if now - d.stat().st_mtime > max_age_s:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass

    def api_result(self, res: TagResult) -> dict:
        """The JSON answer of the ``tag_text`` / ``tag_file`` endpoints."""
        m = self.heatmap(res.rows)
        fc = self.family_counts(res.rows)
        return {
            "doc_id": res.doc_id, "name": res.name, "model_version": res.model_version,
            "n_clauses": len(res.rows), "seconds": round(res.seconds, 3),
            "meta": res.meta.__dict__,
            "clauses": [r.to_dict(self.taxonomy.label_ids) for r in res.rows],
            "heatmap": {"themes": list(m.index), "measures": list(m.columns), "counts": m.values.tolist()},
            "families": {f: int(g["count"].sum()) for f, g in fc.groupby("family", sort=False)},
        }

    # ---- model panel
    def model_info(self) -> dict:
        meta = dict(getattr(self.model, "metadata", None) or {})
        base = meta.get("base_model") or ""
        if isinstance(base, dict):
            base = base.get("name") or base.get("path") or json.dumps(base, ensure_ascii=False)
        version = self.version
        entry = next((v for v in self.versions() if v.get("version") == version), {})
        n_train = meta.get("n_train_clauses") or entry.get("n_train")
        return {
            "version": version, "status": entry.get("status", "unregistered"), "backend": meta.get("backend", ""),
            "base_model": str(base), "created_at": meta.get("created_at", ""),
            "taxonomy_version": meta.get("taxonomy_version", ""), "data_hash": meta.get("data_hash", ""),
            "n_train_clauses": int(n_train) if n_train else None, "n_train_docs": len(meta.get("train_docs") or []),
            "thresholds": meta.get("thresholds_source", ""), "metrics": metric_summary(meta.get("metrics") or {}),
            "main_metric": entry.get("main_metric"), "model_dir": str(self.model_dir) if self.model_dir else "",
            "serving": "production" if self.follows_registry else "--model",
            "corrections_total": int(self.store.count(distinct=True)),
            "corrections_since_training": self.corrections_since_training(),
            "corrections_db": str(getattr(self.store, "path", "")),
        }

    def versions(self) -> list[dict]:
        try:
            return list(self.registry.versions())
        except PolicytagError:
            return []

    def start_retrain(self, token: str | None = None) -> bool:
        """Start retraining on gold + corrections (admin); False when one is already running."""
        self.check_admin(token)
        with self._lock:
            if self.retrain_job is not None and self.retrain_job.running:
                return False
            rc = self.config.get("retrain") or {}
            self.retrain_job = RetrainJob(config=rc.get("config", "default"), overrides=list(rc.get("overrides") or []),
                                          registry=self.registry, store=self.store,
                                          mode=rc["mode"]).start()
            return True

    def promote(self, version: str, token: str | None = None) -> str:
        self.check_admin(token)
        vid = self.registry.promote(version)
        self.reload_production()
        return vid

    def rollback(self, token: str | None = None) -> str:
        self.check_admin(token)
        vid = self.registry.rollback()
        self.reload_production()
        return vid

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


METRIC_SETS = [  # (key in the model metadata "metrics", label shown)
    ("test", "测试文档 (fixed test documents)"),
    ("train_oof", "训练数据交叉验证 (out-of-fold, optimistic)"),
    ("train_fit", "训练拟合 (fit on training data)"),
]


def metric_summary(metrics: dict) -> list[dict]:
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


def public_host_check(host: str, config: dict) -> str | None:
    """Why the app must not start on ``host`` (None when it may): another address needs a token."""
    auth = config.get("auth") or {}
    token = auth.get("admin_token") or os.environ.get(ADMIN_TOKEN_ENV)
    if host in LOOPBACK or host.startswith("127.") or token or not auth.get("require_on_public_host", True):
        return None
    return (f"refusing to serve on {host} without an admin token: set auth.admin_token "
            f"(--set auth.admin_token=SECRET or ${ADMIN_TOKEN_ENV}), or serve on 127.0.0.1")
