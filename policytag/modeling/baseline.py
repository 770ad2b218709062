"""The yardstick: character n-gram TF-IDF + one-vs-rest logistic regression.

Trains in seconds, has the same directory format and API as the transformer
(:class:`~policytag.training.modeling.PolicyClassifier`) and appears next to it in
every evaluation report.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag.modeling.classifier import PolicyClassifier, as_pairs, check_finite, context_fields, thresholds_from_meta

BASELINE_FILE = "baseline.npz"
LEGACY_FILE = "baseline.joblib"  # the pickle format of earlier versions (loaded only when its checksum matches)

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
        self.text_vec: Any = None  # TfidfVectorizer once fitted or loaded
        self.ctx_vec: Any = None
        self.clf: dict[int, Any] = {}  # label index -> LogisticRegression
        self.constant: dict[int, float] = {}
        self._memo: tuple | None = None  # (pairs, scores) of the last _scores call
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
        """One logistic regression per label and, as columns ``K`` and ``K + 1`` after the ``K``
        labels, two *presence* classifiers: has the clause any theme / any measure
        (:meth:`presence_proba`; the gates of :mod:`policytag.modeling.decisions` can read them)."""
        from sklearn.linear_model import LogisticRegression

        pairs = as_pairs(clauses, context_fields(self.metadata.get("input") or {}))
        x = self._features(pairs, fit=True)
        y = np.asarray(y)
        nt = self.n_themes_of_labels()
        if y.shape[1] == len(self.label_ids):
            y = np.column_stack([y, y[:, :nt].max(axis=1) if nt else np.zeros(len(y)),
                                 y[:, nt:].max(axis=1) if y.shape[1] > nt else np.zeros(len(y))])
        self.clf = {}
        self.constant = {}
        self._memo = None
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
        return self._scores(clauses)[:, : len(self.label_ids)].copy()

    @property
    def has_presence(self) -> bool:
        """Whether this model has the two presence classifiers (models saved before they existed do not)."""
        k = len(self.label_ids)
        scorer = getattr(self, "_scorer", None)
        known = set(self.clf) | set(self.constant) | (set(scorer.labels) if scorer is not None else set())
        return {k, k + 1} <= known

    def presence_proba(self, clauses) -> np.ndarray | None:
        """``[n, 2]``: probability of any theme / any measure; None for a model without them."""
        if not self.has_presence:
            return None
        k = len(self.label_ids)
        return self._scores(clauses)[:, k:k + 2].copy()

    def _scores(self, clauses) -> np.ndarray:
        """``[n, K + 2]``: the labels' probabilities, then the two presence probabilities (zeros for
        a model without them). The last result is kept for the same inputs, so a blend and its
        gates featurize a batch once."""
        pairs = as_pairs(clauses, context_fields(self.metadata.get("input") or {}))
        memo = getattr(self, "_memo", None)
        if memo is not None and memo[0] == pairs:
            return memo[1]
        out = self._score_pairs(pairs)
        out.setflags(write=False)
        self._memo = (pairs, out)
        return out

    def _score_pairs(self, pairs) -> np.ndarray:
        width = len(self.label_ids) + 2
        out = np.zeros((len(pairs), width), dtype=np.float32)
        if not pairs:
            return out
        scorer: TfidfScorer | None = getattr(self, "_scorer", None)
        if scorer is not None:
            fitted, probs = scorer.predict(pairs)
            out[:, fitted] = probs
            for j, v in self.constant.items():
                out[:, j] = v
            return check_finite(out, self)
        x = self._features(pairs)
        for j in range(width):
            if j in self.clf:
                out[:, j] = self.clf[j].predict_proba(x)[:, 1]
            else:
                out[:, j] = self.constant.get(j, 0.0)
        return check_finite(out, self)

    def full_metadata(self) -> dict[str, Any]:
        meta = super().full_metadata()
        meta["baseline"] = dict(self.params)
        return meta

    # ----------------------------------------------------------------- files
    # The fitted state is plain arrays in baseline.npz (no pickle: a model directory must not
    # be able to run code when it is loaded); the scikit-learn objects are rebuilt on load
    # and give exactly the same probabilities.

    def _write_weights(self, tmp: Path) -> None:
        if not self.clf and getattr(self, "_state", None) is not None:  # loaded, scored in numpy: the same arrays
            np.savez_compressed(tmp / BASELINE_FILE, **self._state)
            return
        arrays: dict[str, np.ndarray] = {}
        for name, vec in (("text", self.text_vec), ("ctx", self.ctx_vec)):
            if vec is None:
                continue
            vocab = vec.vocabulary_
            terms = [""] * len(vocab)
            for term, j in vocab.items():
                terms[j] = term
            arrays[f"{name}_terms"] = np.array(terms, dtype=np.str_)
            arrays[f"{name}_idf"] = np.asarray(vec.idf_, dtype=np.float64)
        fitted = sorted(self.clf)
        arrays["lr_labels"] = np.array(fitted, dtype=np.int64)
        if fitted:
            arrays["lr_coef"] = np.vstack([self.clf[j].coef_ for j in fitted]).astype(np.float64)
            arrays["lr_intercept"] = np.concatenate([self.clf[j].intercept_ for j in fitted]).astype(np.float64)
            arrays["lr_classes"] = np.vstack([self.clf[j].classes_ for j in fitted])
        arrays["const_labels"] = np.array(sorted(self.constant), dtype=np.int64)
        arrays["const_values"] = np.array([self.constant[j] for j in sorted(self.constant)], dtype=np.float64)
        np.savez_compressed(tmp / BASELINE_FILE, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool

    def _vectorizer(self, terms: np.ndarray, idf: np.ndarray):
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        vec = TfidfVectorizer(analyzer="char", ngram_range=tuple(p["ngram_range"]), max_features=int(p["max_features"]),
                              min_df=int(p["min_df"]), sublinear_tf=bool(p["sublinear_tf"]))
        vec.vocabulary_ = {str(t): j for j, t in enumerate(terms.tolist())}
        vec.fixed_vocabulary_ = False
        vec.idf_ = idf
        return vec

    def _restore(self, state) -> None:
        """A saved model predicts with :class:`TfidfScorer` (numpy only: no scikit-learn import,
        the same probabilities); the scikit-learn objects are rebuilt only when asked for."""
        self._state = state
        self._memo = None
        self.constant = {int(j): float(v) for j, v in zip(state["const_labels"].tolist(), state["const_values"].tolist())}
        self._scorer = TfidfScorer.from_state(state, self.params) if TfidfScorer.supports(state) else None
        if self._scorer is None:
            self._restore_sklearn(state)

    def _restore_sklearn(self, state) -> None:
        from sklearn.linear_model import LogisticRegression

        self.text_vec = self._vectorizer(state["text_terms"], state["text_idf"])
        self.ctx_vec = self._vectorizer(state["ctx_terms"], state["ctx_idf"]) if "ctx_terms" in state else None
        self.clf = {}
        labels = state["lr_labels"].tolist()
        p = self.params
        for r, j in enumerate(labels):
            lr = LogisticRegression(C=float(p["C"]), class_weight=p["class_weight"], max_iter=int(p["max_iter"]),
                                    solver="liblinear")
            lr.classes_ = state["lr_classes"][r]
            lr.coef_ = state["lr_coef"][r:r + 1]
            lr.intercept_ = state["lr_intercept"][r:r + 1]
            lr.n_features_in_ = lr.coef_.shape[1]
            self.clf[int(j)] = lr
        self.constant = {int(j): float(v) for j, v in zip(state["const_labels"].tolist(), state["const_values"].tolist())}

    @classmethod
    def _load(cls, model_dir: Path, meta: dict[str, Any], **_) -> "BaselineClassifier":
        from policytag.errors import ModelIntegrityError, ModelNotFoundError

        obj = cls(meta["label_ids"], thresholds_from_meta(meta, meta["label_ids"]), meta,
                  params=meta.get("baseline") or {})
        path = model_dir / BASELINE_FILE
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    state = {k: npz[k] for k in npz.files}
                obj._restore(state)
            except Exception as e:  # noqa: BLE001 - truncated, damaged or foreign file
                raise ModelIntegrityError(f"{model_dir}: {BASELINE_FILE} cannot be read ({type(e).__name__}): the file "
                                          "is damaged; re-train or restore it") from None
            return obj
        legacy = model_dir / LEGACY_FILE
        if legacy.exists():
            return cls._load_legacy(model_dir, meta, obj)
        raise ModelNotFoundError(f"{model_dir}: {BASELINE_FILE} is missing; retrain with --backend baseline")

    @classmethod
    def _load_legacy(cls, model_dir: Path, meta: dict[str, Any], obj: "BaselineClassifier") -> "BaselineClassifier":
        """A ``baseline.joblib`` (pickle) of an older version: loaded only when its sha256 is the
        one recorded in ``policytag.json`` (a pickle runs code when it is loaded)."""
        from policytag.errors import ModelIntegrityError

        recorded = (meta.get("checksums") or {}).get(LEGACY_FILE)
        if not recorded:
            raise ModelIntegrityError(
                f"{model_dir}: {LEGACY_FILE} is a pickle with no recorded checksum; policytag does not load "
                "unverified pickles (loading one can run arbitrary code). Re-train the baseline "
                "(`policytag train --set backend=baseline`), which writes the safe baseline.npz format")
        # the checksum itself was verified by PolicyClassifier.from_pretrained before we got here
        import joblib

        try:
            state = joblib.load(model_dir / LEGACY_FILE)
        except Exception as e:  # noqa: BLE001
            raise ModelIntegrityError(f"{model_dir}: {LEGACY_FILE} cannot be read ({type(e).__name__}): the file is "
                                      "damaged; re-train or restore it") from None
        obj.params = {**DEFAULTS, **state["params"]}
        obj.text_vec, obj.ctx_vec = state["text_vec"], state["ctx_vec"]
        obj.clf, obj.constant = state["clf"], state["constant"]
        return obj


class TfidfScorer:
    """Character n-gram TF-IDF + logistic regression scores from the saved arrays, in numpy.

    Reproduces scikit-learn's ``TfidfVectorizer(analyzer="char", lowercase=True,
    sublinear_tf=True, norm="l2")`` and ``LogisticRegression.predict_proba`` for the saved
    model (checked against them in the tests) without importing scikit-learn or scipy, so a
    blended model starts as fast as the transformer alone.
    """

    _WHITE = re.compile(r"\s\s+")

    def __init__(self, vocabs, idfs, weights, coef, intercept, labels, ngram_range, sublinear: bool):
        self.vocabs, self.idfs, self.weights = vocabs, idfs, weights
        self.coef, self.intercept, self.labels = coef, intercept, labels
        self.min_n, self.max_n = int(ngram_range[0]), int(ngram_range[1])
        self.sublinear = sublinear

    @staticmethod
    def supports(state) -> bool:
        classes = state.get("lr_classes")
        return ("lr_coef" in state and classes is not None and len(classes) > 0
                and all(list(c) == [0, 1] for c in classes.tolist()))

    @classmethod
    def from_state(cls, state, params) -> "TfidfScorer":
        vocabs, idfs, weights = [], [], []
        for name, w in (("text", 1.0), ("ctx", float(params.get("context_weight", 0.5)))):
            if f"{name}_terms" in state:
                vocabs.append({str(t): j for j, t in enumerate(state[f"{name}_terms"].tolist())})
                idfs.append(np.asarray(state[f"{name}_idf"], dtype=np.float64))
                weights.append(w)
        return cls(vocabs, idfs, weights, np.asarray(state["lr_coef"], dtype=np.float64),
                   np.asarray(state["lr_intercept"], dtype=np.float64), state["lr_labels"].tolist(),
                   params.get("ngram_range", (1, 3)), bool(params.get("sublinear_tf", True)))

    def _ngrams(self, text: str) -> list[str]:
        text = self._WHITE.sub(" ", text.lower())
        grams = list(text) if self.min_n == 1 else []  # as scikit-learn: unigrams first, then n = 2 ...
        for n in range(max(self.min_n, 2), min(self.max_n, len(text)) + 1):
            grams.extend(text[i:i + n] for i in range(len(text) - n + 1))
        return grams

    def _row(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        vocab = self.vocabs[k]
        counts: dict[int, int] = {}
        for g in self._ngrams(text):
            j = vocab.get(g)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear:
            tf = np.log(tf) + 1.0
        v = tf * self.idfs[k][idx]
        norm = np.sqrt(np.dot(v, v))
        return idx, (v / norm if norm > 0 else v)

    def predict(self, pairs) -> tuple[list[int], np.ndarray]:
        """(fitted label columns, probabilities ``[len(pairs), len(fitted)]``)."""
        out = np.zeros((len(pairs), len(self.labels)))
        offsets = np.cumsum([0] + [len(v) for v in self.vocabs])
        for r, (text, ctx) in enumerate(pairs):
            z = self.intercept.copy()
            for k, part in enumerate((text, ctx or " ")[: len(self.vocabs)]):
                idx, val = self._row(part, k)
                if len(idx):
                    z += self.coef[:, offsets[k] + idx] @ (val * self.weights[k])
            out[r] = 1.0 / (1.0 + np.exp(-z))
        return self.labels, out