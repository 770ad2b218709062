"""`policytag predict`: mixed inputs, skips with reasons, exit code, output formats, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from policytag.cli.main import app
from policytag.errors import ModelNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"
JIANGXI = FIXTURES / "jiangxi-2023-kepu-cuoshi.txt"
SICHUAN = FIXTURES / "sichuan-2023-kepu-nengli.txt"

JSONL_CLAUSES = [
    {"clause_id": "own#1", "doc_id": "own", "text": "将科普经费列入本级财政预算,逐步提高科普投入水平。"},
    {"clause_id": "own#2", "doc_id": "own", "context": "(四)实施老年人科学素质提升行动",
     "text": "开展老年人智能手机运用培训、竞赛等活动。"},
    {"clause_id": "own#3", "text": "鼓励建设科技馆、主题博物馆、科普公园、青少年科技馆等。"},
]


def run(*args: str):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A docx, a GB18030 text file, a clause JSONL, an empty file and a corrupt PDF."""
    import docx

    d = tmp_path_factory.mktemp("inputs")
    doc = docx.Document()
    for line in JIANGXI.read_text(encoding="utf-8").splitlines()[15:24]:
        if line.strip():
            doc.add_paragraph(line.strip())
    doc.save(d / "jiangxi.docx")
    (d / "sichuan-gb.txt").write_bytes(SICHUAN.read_text(encoding="utf-8").encode("gb18030"))
    (d / "clauses.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in JSONL_CLAUSES),
                                     encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage garbage\n")
    return {"dir": d, "docx": d / "jiangxi.docx", "txt": d / "sichuan-gb.txt", "jsonl": d / "clauses.jsonl",
            "empty": d / "empty.txt", "pdf": d / "broken.pdf"}


def _expected_clauses(path: Path) -> list:
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment

    return segment(load_document(path))


def test_mixed_inputs_rows_skips_and_exit_code(inputs, tiny_model_dir, tmp_path):
    out = tmp_path / "tags.jsonl"
    res = run(inputs["docx"], inputs["txt"], inputs["jsonl"], inputs["empty"], inputs["pdf"],
              "--model", tiny_model_dir, "-o", out)
    assert res.exit_code == 1, res.output  # some inputs failed, the rest were tagged
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    docx_clauses = _expected_clauses(inputs["docx"])
    txt_clauses = _expected_clauses(inputs["txt"])
    assert docx_clauses and txt_clauses
    assert len(rows) == len(docx_clauses) + len(txt_clauses) + len(JSONL_CLAUSES)
    # rows follow the input order: the docx, the text file, then the clause file as given
    assert [r["clause_id"] for r in rows[:len(docx_clauses)]] == [c.clause_id for c in docx_clauses]
    assert [r["text"] for r in rows[-3:]] == [c["text"] for c in JSONL_CLAUSES]
    assert rows[-3]["doc_id"] == "own" and rows[-1]["clause_id"] == "own#3"
    assert rows[-1]["doc_id"]  # a missing doc_id defaults to the file's id
    assert rows[-2]["context"] == "(四)实施老年人科学素质提升行动"
    # the GB18030 file was decoded: its Chinese text reaches the output intact
    assert any("科普" in r["text"] for r in rows[len(docx_clauses):-3])
    for r in rows:
        assert isinstance(r["themes"], list) and isinstance(r["measures"], list)
        assert 0.0 <= r["p_youth"] <= 1.0 and r["model_version"]

    report = res.output
    assert "empty.txt" in report and "broken.pdf" in report
    assert "read 3 file(s)" in report and f"tagged {len(rows)} clause(s)" in report
    assert "skipped 2 input(s)" in report and "exit code 1" in report
    assert "jiangxi.docx:" not in report and "clauses.jsonl:" not in report


def test_all_good_inputs_exit_zero_and_write_summary(inputs, tiny_model_dir, tmp_path):
    out = tmp_path / "tags.csv"
    res = run(inputs["docx"], inputs["jsonl"], "--model", tiny_model_dir, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    summary = tmp_path / "tags.summary.csv"
    assert summary.exists()
    df = pd.read_csv(summary, encoding="utf-8-sig")
    assert {"doc_id", "theme", "theme_zh", "clauses", "theme_clauses"} <= set(df.columns)
    assert "own" in set(df["doc_id"]) and "(all)" in set(df["doc_id"])
    assert "青少年" in set(df["theme_zh"])


@pytest.mark.parametrize("ext", [".csv", ".xlsx"])
def test_csv_and_xlsx_open_with_pandas_with_chinese_intact(inputs, tiny_model_dir, tmp_path, ext):
    out = tmp_path / f"tags{ext}"
    res = run(inputs["txt"], inputs["jsonl"], "--model", tiny_model_dir, "-o", out, "-q", "--no-summary")
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "tags.summary.csv").exists()
    if ext == ".csv":
        assert out.read_bytes()[:3] == b"\xef\xbb\xbf"
        df = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    else:
        df = pd.read_excel(out, keep_default_na=False)
    assert list(df["text"][-3:]) == [c["text"] for c in JSONL_CLAUSES]
    assert df["text"].str.contains("科普").sum() > 5
    assert {"doc_id", "clause_id", "context", "themes", "measures", "p_youth", "p_activities",
            "model_version", "span_start", "span_end"} <= set(df.columns)


def test_level_provision_aggregates_clauses(inputs, tiny_model_dir, tmp_path):
    out = tmp_path / "prov.jsonl"
    res = run(inputs["txt"], "--model", tiny_model_dir, "-o", out, "--level", "provision", "-q")
    assert res.exit_code == 0, res.output
    prov = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    clauses = _expected_clauses(inputs["txt"])
    assert 0 < len(prov) <= len(clauses)
    assert sum(p["n_clauses"] for p in prov) == len(clauses)
    by_id = {c.clause_id: c for c in clauses}
    for p in prov:
        members = [by_id[cid] for cid in p["clause_ids"]]
        assert len({c.provision_id for c in members}) == 1
    assert "provisions" in res.output


def test_directories_and_globs_are_expanded(inputs, tiny_model_dir, tmp_path):
    sub = tmp_path / "corpus" / "nested"
    sub.mkdir(parents=True)
    (sub / "a.txt").write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    (sub / "notes.png").write_bytes(b"\x89PNG")
    (sub / ".hidden.txt").write_text("隐藏文件", encoding="utf-8")
    out = tmp_path / "tags.jsonl"
    res = run(tmp_path / "corpus", str(inputs["dir"] / "*.jsonl"), str(sub / "a.txt"),
              "--model", tiny_model_dir, "-o", out, "-q")
    assert res.exit_code == 0, res.output  # an ignored .png inside a directory is not a failure
    assert "ignored 1 file" in res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    docs = {r["doc_id"] for r in rows}
    assert "own" in docs and len(docs) == 3  # a.txt once (deduplicated), clauses.jsonl's two doc ids
    assert not any("隐藏" in r["text"] for r in rows)


def test_output_inside_an_input_folder_is_not_read_back(inputs, tiny_model_dir, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "c.jsonl").write_text(inputs["jsonl"].read_text(encoding="utf-8"), encoding="utf-8")
    out = folder / "tags.jsonl"
    for _ in range(2):  # the second run sees the first run's output in the folder
        res = run(folder, "--model", tiny_model_dir, "-o", out, "-q")
        assert res.exit_code == 0, res.output
        assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    assert "the output of this run" in res.output


def test_missing_inputs_are_skipped_not_fatal(tiny_model_dir, tmp_path, inputs):
    out = tmp_path / "tags.jsonl"
    res = run(tmp_path / "nope.docx", str(tmp_path / "*.pdf"), inputs["jsonl"],
              "--model", tiny_model_dir, "-o", out, "-q")
    assert res.exit_code == 1
    assert "file not found" in res.output and "no file matches" in res.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


def test_bad_lines_in_a_clause_file_are_reported(tiny_model_dir, tmp_path):
    f = tmp_path / "mixed.jsonl"
    f.write_text('{"text": "开展科普活动。"}\n{"clause_id": "x"}\n{"text": "加强科普基础设施建设。"}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    res = run(f, "--model", tiny_model_dir, "-o", out, "-q")
    assert res.exit_code == 1
    assert "mixed.jsonl:2" in res.output and "empty 'text'" in res.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


def test_interrupted_run_leaves_no_half_file(inputs, tiny_model_dir, tmp_path, monkeypatch):
    from policytag.serving import tagging

    out = tmp_path / "tags.csv"
    out.write_text("the previous complete output\n", encoding="utf-8")
    real = tagging.predict_proba_sorted

    def interrupted(model, clauses, *a, **kw):
        kw["progress"] = lambda n: (_ for _ in ()).throw(KeyboardInterrupt())
        return real(model, clauses, *a, **kw)

    monkeypatch.setattr(tagging, "predict_proba_sorted", interrupted)
    res = run(inputs["txt"], "--model", tiny_model_dir, "-o", out, "-q")
    assert res.exit_code == 130 or isinstance(res.exception, KeyboardInterrupt)  # click: Ctrl-C is exit 130
    assert out.read_text(encoding="utf-8") == "the previous complete output\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "policytag_home") == ["tags.csv"]


def test_bad_output_extension_is_a_clear_error(inputs, tiny_model_dir, tmp_path):
    res = run(inputs["jsonl"], "--model", tiny_model_dir, "-o", tmp_path / "tags.txt")
    assert res.exit_code != 0
    assert ".jsonl, .csv, .xlsx" in str(res.exception)


def test_no_model_and_empty_registry_says_how_to_train(inputs, tmp_path):
    res = run(inputs["jsonl"], "-o", tmp_path / "t.jsonl")
    assert isinstance(res.exception, ModelNotFoundError)
    assert "policytag train" in str(res.exception)


def test_default_model_is_the_registry_production_model(inputs, tiny_model_dir, tmp_path):
    from policytag.modeling.registry import ModelRegistry

    reg = ModelRegistry()
    vid = reg.register(tiny_model_dir)
    reg.promote(vid)
    out = tmp_path / "t.jsonl"
    res = run(inputs["jsonl"], "-o", out, "-q")
    assert res.exit_code == 0, res.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


def test_baseline_model_works_and_refuses_onnx_runtime(inputs, baseline_model_dir, tmp_path):
    out = tmp_path / "t.jsonl"
    res = run(inputs["jsonl"], "--model", baseline_model_dir, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    res = run(inputs["jsonl"], "--model", baseline_model_dir, "-o", out, "--runtime", "onnx")
    assert isinstance(res.exception, ModelNotFoundError)
    assert "drop --runtime onnx" in str(res.exception)


def test_batch_size_and_device_options(inputs, tiny_model_dir, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(inputs["txt"], "--model", tiny_model_dir, "-o", a, "-q", "--batch-size", "1").exit_code == 0
    assert run(inputs["txt"], "--model", tiny_model_dir, "-o", b, "-q", "--batch-size", "64",
               "--device", "cpu").exit_code == 0
    ra = [json.loads(x) for x in a.read_text(encoding="utf-8").splitlines()]
    rb = [json.loads(x) for x in b.read_text(encoding="utf-8").splitlines()]
    assert [r["clause_id"] for r in ra] == [r["clause_id"] for r in rb]
    # batch composition changes the padding only (and, for a clause without context in a batch
    # with contexts, the model's pair encoding), so probabilities stay close and labels agree
    same = [x["themes"] + x["measures"] == y["themes"] + y["measures"] for x, y in zip(ra, rb)]
    assert sum(same) >= 0.95 * len(same)
    for x, y in zip(ra, rb):
        assert x["p_youth"] == pytest.approx(y["p_youth"], abs=0.02)
