"""The yardstick: character n-gram TF-IDF + one-vs-rest logistic regression.

Trains in seconds, has the same directory format and API as the transformer
(:class:`~policytag.training.modeling.PolicyClassifier`) and appears next to it in
every evaluation report.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag.modeling.classifier import PolicyClassifier, as_pairs, context_fields, thresholds_from_meta

BASELINE_FILE = "baseline.joblib"

DEFAULTS = {
    "ngram_range": [1, 3],
    "max_features": 200000,
    "min_df": 1,
    "sublinear_tf": True,
    "C": 4.0,
    "class_weight": "balanced",
    "context_weight": 0.5,
    "max_iter": 2000,
}


class BaselineClassifier(PolicyClassifier):
    backend = "baseline"

    def __init__(self, label_ids: Sequence[str], thresholds=None, metadata=None, params: dict | None = None):
        super().__init__(label_ids, thresholds, metadata)
        self.params = {**DEFAULTS, **(params or {})}
        self.text_vec = None
        self.ctx_vec = None
        self.clf = None
        self.constant: dict[int, float] = {}
        inp = self.metadata.setdefault("input", {})
        inp.setdefault("use_context", True)

    @property
    def use_context(self) -> bool:
        return bool(self.metadata["input"].get("use_context", True)) and float(self.params["context_weight"]) > 0

    def _features(self, pairs, fit: bool = False):
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [t for t, _ in pairs]
        if fit:
            p = self.params
            mk = lambda: TfidfVectorizer(analyzer="char", ngram_range=tuple(p["ngram_range"]),  # noqa: E731
                                         max_features=int(p["max_features"]), min_df=int(p["min_df"]),
                                         sublinear_tf=bool(p["sublinear_tf"]))
            self.text_vec = mk()
            x = self.text_vec.fit_transform(texts)
            if self.use_context:
                self.ctx_vec = mk()
                xc = self.ctx_vec.fit_transform([c or " " for _, c in pairs])
                return hstack([x, xc * float(p["context_weight"])]).tocsr()
            return x
        x = self.text_vec.transform(texts)
        if self.ctx_vec is not None:
            xc = self.ctx_vec.transform([c or " " for _, c in pairs])
            return hstack([x, xc * float(self.params["context_weight"])]).tocsr()
        return x

    def fit(self, clauses, y: np.ndarray, seed: int = 0) -> "BaselineClassifier":
        from sklearn.linear_model import LogisticRegression

        pairs = as_pairs(clauses, context_fields(self.metadata.get("input") or {}))
        x = self._features(pairs, fit=True)
        y = np.asarray(y)
        self.clf = {}
        self.constant = {}
        p = self.params
        for j in range(y.shape[1]):
            col = y[:, j]
            if col.min() == col.max():  # label never (or always) seen: constant prediction
                self.constant[j] = float(col[0]) if len(col) else 0.0
                continue
            lr = LogisticRegression(C=float(p["C"]), class_weight=p["class_weight"], max_iter=int(p["max_iter"]),
                                    solver="liblinear", random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lr.fit(x, col)
            self.clf[j] = lr
        return self

    def predict_proba(self, clauses, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        pairs = as_pairs(clauses, context_fields(self.metadata.get("input") or {}))
        out = np.zeros((len(pairs), len(self.label_ids)), dtype=np.float32)
        if not pairs:
            return out
        x = self._features(pairs)
        for j in range(len(self.label_ids)):
            if j in self.clf:
                out[:, j] = self.clf[j].predict_proba(x)[:, 1]
            else:
                out[:, j] = self.constant.get(j, 0.0)
        return out

    def full_metadata(self) -> dict[str, Any]:
        meta = super().full_metadata()
        meta["baseline"] = dict(self.params)
        return meta

    def _write_weights(self, tmp: Path) -> None:
        import joblib

        joblib.dump({"text_vec": self.text_vec, "ctx_vec": self.ctx_vec, "clf": self.clf,
                     "constant": self.constant, "params": self.params}, tmp / BASELINE_FILE)

    @classmethod
    def _load(cls, model_dir: Path, meta: dict[str, Any], **_) -> "BaselineClassifier":
        import joblib

        from policytag.errors import ModelNotFoundError

        path = model_dir / BASELINE_FILE
        if not path.exists():
            raise ModelNotFoundError(f"{model_dir}: {BASELINE_FILE} is missing; retrain with --backend baseline")
        state = joblib.load(path)
        obj = cls(meta["label_ids"], thresholds_from_meta(meta, meta["label_ids"]), meta, params=state["params"])
        obj.text_vec, obj.ctx_vec = state["text_vec"], state["ctx_vec"]
        obj.clf, obj.constant = state["clf"], state["constant"]
        return obj
