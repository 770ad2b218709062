"""Evaluation that matches use: per genre/level, false labels on no-label clauses, calibration,
document bootstrap; threshold shrinkage; document titles in the model input."""

import numpy as np

from policytag.clause import Clause
from policytag.data.dataset import genre_family, make_splits, stratified_test_docs
from policytag.modeling.classifier import as_pairs, compose_context
from policytag.training.evaluation import bootstrap_docs, calibration, use_metrics
from policytag.training.thresholds import tune_thresholds

LABELS = ["a", "b", "m1", "m2"]  # 2 "themes", 2 "measures"


def _clauses():
    out = []
    for d, genre, level in (("d1", "tiaoli", "provincial"), ("d2", "activity-plan", "county"),
                            ("d3", "news-report-on-plan", "city")):
        for i in range(4):
            out.append(Clause(doc_id=d, clause_id=f"{d}/{i}", text=f"{d} {i}", genre=genre, level=level))
    return out


def test_use_metrics_groups_and_false_measures():
    cl = _clauses()
    y = np.zeros((12, 4), dtype=int)
    y[:4, 0] = 1
    y[4:8, 2] = 1          # d2 has measures, d1 and d3 none
    pred = y.copy()
    pred[8, 3] = 1         # one clause without a gold measure gets one
    u = use_metrics(cl, y, pred, 2, probs=pred.astype(float))
    assert set(u["by_genre_family"]) == {"regulation", "activity", "news"}
    assert u["by_level"]["county"]["measures_micro_f1"] == 1.0
    assert u["no_measures"] == {"n": 8, "predicted_some": 1, "rate": 0.125}
    assert u["calibration"]["themes"]["ece"] == 0.0


def test_calibration_of_an_overconfident_model():
    y = np.array([1, 0, 1, 0])
    cal = calibration(y, np.array([0.95, 0.95, 0.95, 0.95]))
    assert cal["ece"] > 0.4 and cal["bins"][0]["observed"] == 0.5


def test_bootstrap_over_documents():
    cl = _clauses()
    y = np.zeros((12, 4), dtype=int)
    y[:, 0] = 1
    y[:, 2] = 1
    same = bootstrap_docs(cl, y, y, y, LABELS, 2, n_boot=50)
    assert same["estimate"] == 0 and same["ci95"] == [0.0, 0.0] and same["p_below_zero"] == 0
    worse = y.copy()
    worse[:4, 0] = 0       # the new system misses the themes of one document
    b = bootstrap_docs(cl, y, y, worse, LABELS, 2, n_boot=200)
    assert b["estimate"] < 0 and b["ci95"][0] < 0 and b["n_docs"] == 3


def test_threshold_shrinkage_does_not_trust_a_few_positives():
    rng = np.random.default_rng(0)
    y = np.zeros((200, 1), dtype=int)
    y[:4, 0] = 1
    p = rng.uniform(0, 0.2, (200, 1))
    p[:4, 0] = 0.07        # four positives at a low probability: plain F1 tuning goes down to ~0.05
    plain = tune_thresholds(y, p, default=0.5, min_positive=2)[0]
    shrunk = tune_thresholds(y, p, default=0.5, min_positive=2, prior_strength=10)[0]
    assert plain <= 0.1 and shrunk > 0.3


def test_document_title_in_the_model_context():
    c = Clause(doc_id="d", clause_id="d/1", text="开展宣传活动。", context="二、主要活动", doc_title="老年健康宣传周活动方案")
    assert compose_context(c, ["title", "heading"]) == "老年健康宣传周活动方案 | 二、主要活动"
    assert as_pairs([c], ["heading"]) == [("开展宣传活动。", "二、主要活动")]
    assert as_pairs([{"text": "x", "doc_title": "T"}], ["title", "heading"]) == [("x", "T")]


def test_stratified_splits_cover_families_and_keep_documents_whole():
    cl = []
    for k in range(30):
        genre = ["tiaoli", "activity-plan", "kxsz-plan"][k % 3]
        cl += [Clause(doc_id=f"d{k}", clause_id=f"d{k}/{i}", text="t", genre=genre, level="city") for i in range(3)]
    test = stratified_test_docs(cl, 0.2, seed=1)
    assert len(test) == 6 and {genre_family(c.genre) for c in cl if c.doc_id in test} == {"regulation", "activity", "plan"}
    sp = make_splits(cl, 0.2, k=4)
    assert not set(sp["test_docs"]) & {d for f in sp["folds"] for d in f}
    assert sum(len(f) for f in sp["folds"]) == 24


def test_gates_say_none_with_confidence():
    from policytag.training.thresholds import apply_gates, tune_gates

    # 2 themes, 2 measures; clauses 0-9 have measure m1, clauses 10-19 none but a weak m1 probability
    y = np.zeros((20, 4), dtype=int)
    y[:10, 2] = 1
    p = np.full((20, 4), 0.01)
    p[:10, 2] = 0.8
    p[10:, 2] = 0.3                      # above its threshold 0.2 but never the truth
    th = np.array([0.5, 0.5, 0.2, 0.5])
    gates = tune_gates(y, p, th, 2)
    assert gates["measures"] is not None and 0.3 < gates["measures"] <= 0.8
    dec = apply_gates((p >= th).astype(int), p, 2, gates)
    assert dec[:10, 2].all() and not dec[10:, 2:].any()


def test_a_capped_measure_gate_keeps_preambles_without_a_measure():
    from policytag.training.thresholds import tune_gates

    # 10 measure clauses (prob 0.5-0.9), 10 preambles with a weak 0.35-0.55 measure probability:
    # F1 alone keeps a low gate (some preambles get a measure); the cap raises it
    y = np.zeros((20, 3), dtype=int)
    y[:10, 1] = 1
    p = np.zeros((20, 3))
    p[:10, 1] = np.linspace(0.5, 0.9, 10)
    p[10:, 1] = np.linspace(0.35, 0.55, 10)
    th = np.array([0.5, 0.3, 0.5])
    free = tune_gates(y, p, th, 1)
    capped = tune_gates(y, p, th, 1, max_false_rate={"measures": 0.1})
    rate = lambda g: float((p[10:, 1] >= max(g or 0, 0.3)).mean())  # noqa: E731
    assert rate(capped["measures"]) <= 0.1 < rate(free["measures"])
    # a cap no gate of the grid reaches: the gate with the fewest false measures
    assert tune_gates(y, np.where(y == 1, 0.2, p), th, 1, max_false_rate={"measures": 0.0})["measures"] is not None
