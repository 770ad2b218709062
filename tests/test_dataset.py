"""The gold data set tooling: loading and validation, splits, hashing, arrays, agreement."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from policytag import paths
from policytag.clause import Clause
from policytag.data.dataset import (
    NO_THEME, agreement, check_file, cohen_kappa, cooccurrence, data_hash, disagreements,
    doc_stats, fold_docs, grouped_folds, label_counts, label_matrix, load_gold, load_splits,
    rare_labels, split_clauses,
)
from policytag.errors import InputError, PolicytagError, UnknownLabelError
from policytag.data.taxonomy import load_taxonomy


def rec(doc, n, text, themes=(), measures=(), context="", source="gold"):
    return {"doc_id": doc, "clause_id": f"{doc}#{n}", "context": context, "text": text,
            "themes": list(themes), "measures": list(measures), "source": source}


def write(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
                              for r in records) + "\n", encoding="utf-8")
    return path


SAMPLE = [
    rec("a", 1, "坚持以习近平新时代中国特色社会主义思想为指导。"),
    rec("a", 2, "将科普经费列入本级财政预算。", [], ["funding"]),
    rec("a", 3, "开展老年人智能手机运用培训、竞赛等活动。", ["elderly"], ["education_training", "activities"],
        context="(四)实施老年人科学素质提升行动"),
    rec("b", 1, "鼓励建设科技馆、青少年科技馆等。", ["infrastructure", "youth"], ["facility_building"]),
    rec("b", 2, "整治以科普名义欺骗群众的行为。", [], ["regulation"]),
    rec("c", 1, "每年培训科技辅导员200人次以上。", ["youth"], ["talent", "goal_planning"]),
]


@pytest.fixture
def sample_file(tmp_path):
    return write(tmp_path / "gold.jsonl", SAMPLE)


@pytest.fixture
def sample(sample_file):
    return load_gold(sample_file)


# ----------------------------------------------------------------- loading and validation


def test_load_gold_reads_labels(sample):
    assert len(sample) == 6
    assert all(isinstance(c, Clause) and c.labeled and c.source == "gold" for c in sample)
    assert sample[2].themes == ["elderly"] and sample[2].context.startswith("(四)")


def test_unknown_id_names_file_line_and_id(tmp_path):
    bad = SAMPLE[:2] + [rec("a", 3, "某条款。", ["pupils"], ["funding"])]
    p = write(tmp_path / "bad.jsonl", bad)
    with pytest.raises(UnknownLabelError) as ei:
        load_gold(p)
    msg = str(ei.value)
    assert f"{p}:3" in msg and "'pupils'" in msg and "a#3" in msg
    assert ei.value.label_id == "pupils" and ei.value.dimension == "themes"
    assert "youth" in msg  # lists the known ids


def test_measure_id_in_theme_field_is_an_error(tmp_path):
    p = write(tmp_path / "swap.jsonl", [rec("a", 1, "文本。", ["funding"], [])])
    with pytest.raises(UnknownLabelError, match="is a measure id"):
        load_gold(p)


def test_check_file_lists_every_problem(tmp_path):
    lines = [
        json.dumps(rec("a", 1, "好的条款。", [], ["funding"])),
        "{not json",
        json.dumps(rec("a", 2, "未知措施。", [], ["money"])),
        json.dumps(rec("a", 1, "重复编号。", [], [])),  # duplicate clause id
        json.dumps({"doc_id": "a", "clause_id": "a#4", "text": "缺少措施。", "themes": [], "source": "gold"}),
        json.dumps(rec("a", 5, "来源不对。", source="prediction")),
        json.dumps(rec("a", 6, "   ")),
        json.dumps(rec("a", 7, "重复标签。", ["youth", "youth"], [])),
    ]
    p = write(tmp_path / "many.jsonl", lines)
    res = check_file(p, require_source="gold")
    assert not res.ok
    by_line = {i.line: i.message for i in res.errors}
    assert set(by_line) == {2, 3, 4, 5, 6, 7, 8}
    assert "not valid JSON" in by_line[2]
    assert "'money'" in by_line[3]
    assert "already used on line 1" in by_line[4]
    assert "missing 'measures'" in by_line[5]
    assert "'source' must be 'gold'" in by_line[6]
    assert "empty" in by_line[7]
    assert "more than once" in by_line[8]
    assert [c.clause_id for c in res.clauses] == ["a#1"]
    # load_gold (which accepts any source) raises the first problem and counts the others
    with pytest.raises(InputError, match=r"and 5 more problem"):
        load_gold(p)


def test_unlabeled_files_can_be_checked(tmp_path):
    p = write(tmp_path / "seg.jsonl", [{"doc_id": "a", "clause_id": "a#1", "text": "条款。", "context": ""}])
    assert check_file(p, require_labels=False).ok
    assert not check_file(p).ok


def test_missing_or_empty_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_gold(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no clauses"):
        load_gold(tmp_path / "empty.jsonl")


def test_custom_taxonomy_is_used(tmp_path, sample_file):
    tax = load_taxonomy()
    import yaml

    data = yaml.safe_load(paths.TAXONOMY_FILE.read_text(encoding="utf-8"))
    data["themes"] = [t for t in data["themes"] if t["id"] != "elderly"]
    small = tmp_path / "tax.yaml"
    small.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert len(load_gold(sample_file, tax)) == 6
    with pytest.raises(UnknownLabelError, match="'elderly'"):
        load_gold(sample_file, small)


# ----------------------------------------------------------------- hashing and arrays


def test_data_hash_is_order_independent_and_label_sensitive(sample):
    h = data_hash(sample)
    assert len(h) == 64
    shuffled = sample[:]
    random.Random(0).shuffle(shuffled)
    assert data_hash(shuffled) == h
    # label order inside a list does not matter, the labels themselves do
    swapped = [Clause.from_dict({**c.to_dict(), "measures": list(reversed(c.measures))}) for c in sample]
    assert data_hash(swapped) == h
    changed = [Clause.from_dict(c.to_dict()) for c in sample]
    changed[1].measures = ["funding", "goal_planning"]
    assert data_hash(changed) != h
    ctx = [Clause.from_dict(c.to_dict()) for c in sample]
    ctx[0].context = "一、总体要求"
    assert data_hash(ctx) != h
    assert data_hash(sample + sample[:1]) != h  # duplicates count


def test_label_matrix_follows_taxonomy_order(sample):
    tax = load_taxonomy()
    y = label_matrix(sample, tax)
    assert y.shape == (6, len(tax.label_ids)) and y.dtype == np.float32
    col = {l: j for j, l in enumerate(tax.label_ids)}
    assert y[0].sum() == 0
    assert y[2, col["elderly"]] == 1 and y[2, col["education_training"]] == 1 and y[2].sum() == 3
    assert y[3, col["infrastructure"]] == y[3, col["youth"]] == 1
    assert label_matrix(sample, tax, dtype=np.int64).dtype == np.int64


def test_label_matrix_rejects_unlabeled_and_misplaced_ids():
    with pytest.raises(InputError, match="no labels"):
        label_matrix([Clause("a", "a#1", "文本。")])
    with pytest.raises(UnknownLabelError):
        label_matrix([Clause("a", "a#1", "文本。", themes=["funding"], measures=[])])


# ----------------------------------------------------------------- splits


def _docs(clauses, idx):
    return {clauses[i].doc_id for i in idx}


def test_grouped_folds_never_split_a_document():
    clauses = [Clause(d, f"{d}#{i}", "x", themes=[], measures=[])
               for d, n in [("k", 40), ("s", 12), ("c", 10), ("j", 9), ("x", 7), ("y", 3)] for i in range(n)]
    random.Random(1).shuffle(clauses)
    folds = grouped_folds(clauses, 3)
    assert len(folds) == 3
    seen = []
    for train, test in folds:
        assert not (_docs(clauses, train) & _docs(clauses, test))
        assert len(train) + len(test) == len(clauses)
        seen.extend(test.tolist())
    assert sorted(seen) == list(range(len(clauses)))  # every clause held out exactly once
    assert [t.tolist() for _, t in grouped_folds(clauses, 3)] == [t.tolist() for _, t in folds]


def test_grouped_folds_leave_one_document_out(sample):
    folds = grouped_folds(sample, 3)
    assert [sorted(_docs(sample, t)) for _, t in folds] == [["a"], ["b"], ["c"]]
    assert fold_docs(sample, 3) == [["a"], ["b"], ["c"]]
    with pytest.raises(PolicytagError, match="k <= 3"):
        grouped_folds(sample, 4)
    with pytest.raises(PolicytagError):
        grouped_folds(sample, 1)


def test_load_splits_validates(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("test_docs: [a]\ndev_docs: [b]\nfolds: [[a], [b, c]]\n", encoding="utf-8")
    sp = load_splits(p)
    assert sp["test_docs"] == ["a"] and sp["folds"] == [["a"], ["b", "c"]]
    p.write_text("test_docs: [a]\ndev_docs: [a]\n", encoding="utf-8")
    with pytest.raises(InputError, match="both test_docs and dev_docs"):
        load_splits(p)
    p.write_text("test_docs: [a]\nfolds: [[a], [a]]\n", encoding="utf-8")
    with pytest.raises(InputError, match="more than one fold"):
        load_splits(p)
    with pytest.raises(InputError, match="not found"):
        load_splits(tmp_path / "missing.yaml")


def test_split_clauses_by_document(sample):
    parts = split_clauses(sample, {"test_docs": ["b"], "dev_docs": ["c"], "folds": []})
    assert {c.doc_id for c in parts["test"]} == {"b"}
    assert {c.doc_id for c in parts["dev"]} == {"c"}
    assert {c.doc_id for c in parts["train"]} == {"a"}


def test_shipped_splits_are_consistent():
    sp = load_splits()
    assert sp["test_docs"]
    assert not set(sp["test_docs"]) & set(sp["dev_docs"])
    assert len(sp["folds"]) == 10
    assert not set(sp["test_docs"]) & {d for f in sp["folds"] for d in f}


# ----------------------------------------------------------------- statistics


def test_counts_and_cooccurrence(sample):
    tax = load_taxonomy()
    counts = label_counts(sample, tax)
    assert list(counts) == tax.label_ids
    assert counts["youth"] == 2 and counts["funding"] == 1 and counts["officials"] == 0
    per_doc = doc_stats(sample, tax)
    assert per_doc["a"]["clauses"] == 3 and per_doc["a"]["no_theme"] == 2 and per_doc["a"]["no_measure"] == 1
    co = cooccurrence(sample, tax)
    assert list(co.columns) == tax.measures and list(co.index) == tax.themes + [NO_THEME]
    assert co.loc["youth", "facility_building"] == 1 and co.loc["youth", "talent"] == 1
    assert co.loc[NO_THEME, "funding"] == 1 and co.loc[NO_THEME, "regulation"] == 1
    assert co.values.sum() == 8
    assert "officials" in rare_labels(sample, tax, minimum=1) and "youth" not in rare_labels(sample, tax, 2)


# ----------------------------------------------------------------- agreement


def test_cohen_kappa_known_values():
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    # po = 0.5, pe = 0.5 -> 0
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.0)
    # po = 0.8, pa = 0.4, pb = 0.4 -> pe = 0.52 -> (0.8-0.52)/0.48
    assert cohen_kappa([1, 1, 0, 0, 0], [1, 0, 1, 0, 0]) == pytest.approx(
        (0.6 - 0.52) / 0.48)
    assert np.isnan(cohen_kappa([0, 0, 0], [0, 0, 0]))


def test_agreement_between_passes(sample):
    tax = load_taxonomy()
    same = agreement(sample, sample, tax)
    assert same["n"] == 6
    for dim in ("themes", "measures"):
        assert same[dim]["micro_f1"] == 1.0 and same[dim]["exact"] == 1.0
        assert same[dim]["kappa_mean"] == pytest.approx(1.0)
    assert same["themes"]["kappa"]["officials"] is None  # never used: undefined, not averaged

    second = [Clause.from_dict(c.to_dict()) for c in sample[:4]]  # a sample of the clauses
    second[1].measures = ["funding", "goal_planning"]
    second[3].themes = ["infrastructure"]
    res = agreement(sample, second, tax)
    assert res["n"] == 4
    # measures: pass1 has 4 positives among these 4 clauses, pass2 one more -> F1 = 8/9
    assert res["measures"]["micro_f1"] == pytest.approx(8 / 9)
    assert res["themes"]["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    assert res["themes"]["exact"] == pytest.approx(0.75)
    assert res["measures"]["support"]["goal_planning"] == [0, 1]
    diffs = disagreements(sample, second)
    assert [d["clause_id"] for d in diffs] == ["a#2", "b#1"]
    assert diffs[1]["themes"] == {"pass1": ["infrastructure", "youth"], "pass2": ["infrastructure"]}


def test_agreement_requires_matching_ids(sample):
    stranger = [Clause("z", "z#1", "x", themes=[], measures=[])]
    with pytest.raises(InputError, match="not in the first"):
        agreement(sample, stranger)


# ----------------------------------------------------------------- the shipped gold file

gold_exists = pytest.mark.skipif(not paths.GOLD_FILE.exists(), reason="labels/clauses.jsonl not written yet")


@gold_exists
def test_shipped_gold_is_valid_and_complete():
    gold = load_gold()
    assert len(gold) >= 300
    docs = {c.doc_id for c in gold}
    assert len(docs) >= 100
    assert all(c.source == "gold" for c in gold)
    sp = load_splits()
    assert set(sp["test_docs"]) <= docs and set(sp["dev_docs"]) <= docs
    assert sorted(d for f in sp["folds"] for d in f) == sorted(docs - set(sp["test_docs"]))
    # the recorded folds are the ones grouped_folds computes over the non-test documents
    rest = [c for c in gold if c.doc_id not in set(sp["test_docs"])]
    assert fold_docs(rest, len(sp["folds"])) == sp["folds"]
    counts = label_counts(gold)
    assert all(v > 0 for v in counts.values()), counts


@gold_exists
def test_gold_covers_the_segmenter_output():
    """The gold file labels the clauses the project's own segmenter makes of the sources.

    A small drift (a segmenter fix that changes a few boundaries) is tolerated here and
    shows up in `labels stats`; a large one means the gold file must be re-aligned.
    """
    from policytag.text.segmentation import segment_file

    gold = load_gold()
    gold_texts = {(c.doc_id, c.text) for c in gold}
    seg = []
    for src in sorted(paths.SOURCES_DIR.glob("*.txt")):
        _, clauses = segment_file(src)
        seg.extend((c.doc_id, c.text) for c in clauses)
    covered = sum(1 for k in seg if k in gold_texts)
    assert covered / len(seg) >= 0.95, f"only {covered}/{len(seg)} segmenter clauses are in the gold file"
