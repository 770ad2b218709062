"""policytag.analysis.agencies: names, roles and the agency × label matrices."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from policytag.analysis.agencies import (agency_matrix, agency_roles, analyze_agencies, normalize_agency,
                                         split_agency_names)
from policytag.analysis.agencies_export import plot_agency_matrix, write_agencies_xlsx
from policytag.analysis.inputs import gold_rows
from policytag.cli.main import app


@pytest.fixture(scope="module")
def kunshan():
    return gold_rows(["kunshan-2023"])


@pytest.mark.parametrize("raw, level, canonical", [
    ("市科协", None, "市科协"),
    ("昆山市科学技术协会", None, "市科协"),
    ("市科学技术协会", None, "市科协"),
    ("科协", "市", "市科协"),
    ("科学技术协会", "省", "省科协"),
    ("江西省科学技术厅", None, "省科技厅"),
    ("省科技厅", None, "省科技厅"),
    ("教育局", "市", "市教育局"),
    ("市应急局", None, "市应急管理局"),
    ("市人力资源和社会保障局", None, "市人社局"),
    ("江西省人力资源社会保障厅", None, "省人社厅"),
    ("市委宣传部(市文明办)", None, "市委宣传部"),
    ("共青团昆山市委", None, "团市委"),
    ("中国科学技术协会", None, "中国科协"),
    ("各区、镇", None, "各区镇"),
    ("区县科协", None, "区县科协"),
    ("市交通运输局", None, "市交通运输局"),          # not in the table: unchanged
    ("苏州市昆山生态环境局", None, "苏州市昆山生态环境局"),
])
def test_normalize(raw, level, canonical):
    assert normalize_agency(raw, level) == canonical


def test_split_names_and_role_words():
    assert split_agency_names("市教育局、市科协等,各区镇") == [("市教育局", None, None), ("市科协", None, None),
                                                      ("各区镇", None, None)]
    assert [n for n, _, _ in split_agency_names("市科协等各区镇")] == ["市科协", "各区镇"]
    assert split_agency_names(["市科技局牵头", "市教育局配合"]) == [("市科技局", "lead", "牵头"),
                                                            ("市教育局", "support", "配合")]
    assert split_agency_names("牵头单位：市科技局、市科协；配合单位：市教育局等") == [
        ("市科技局", "lead", "label"), ("市科协", "lead", "label"), ("市教育局", "support", "label")]
    assert split_agency_names("市委宣传部(市文明办)、市民政局") == [("市委宣传部(市文明办)", None, None),
                                                           ("市民政局", None, None)]


def test_roles_first_listed_text_and_collective():
    row = {"doc_id": "d", "clause_id": "d/1#1", "text": "开展活动。", "agencies": ["市教育局", "市人社局", "团市委", "各区镇"]}
    ms = agency_roles(row)
    assert [(m.name, m.role, m.basis, m.kind) for m in ms] == [
        ("市教育局", "lead", "first-listed", "agency"), ("市人社局", "support", "listed", "agency"),
        ("团市委", "support", "listed", "agency"), ("各区镇", "support", "listed", "collective")]
    only = agency_roles({"doc_id": "d", "clause_id": "d/2#1", "text": "x", "agencies": ["市委组织部"]})
    assert [(m.role, m.basis) for m in only] == [("lead", "only")]
    # the text decides when it says who leads: a listed agency that the text says 配合 supports
    said = agency_roles({"doc_id": "d", "clause_id": "d/3#1", "agencies": ["市科协", "市科技局"],
                         "text": "由市科技局牵头，市科协配合，组织开展科技活动周。"})
    assert {m.name: (m.role, m.basis) for m in said} == {"市科协": ("support", "配合"), "市科技局": ("lead", "牵头")}
    # agencies named only in the text are added, common nouns are not
    text = agency_roles({"doc_id": "d", "clause_id": "d/4#1", "agencies": [],
                         "text": "由省科技厅、省科协、省人力资源社会保障厅牵头，省委组织部、省教育厅配合，推动社会参与。"})
    assert [(m.name, m.role, m.source) for m in text] == [
        ("省科技厅", "lead", "text"), ("省科协", "lead", "text"), ("省人社厅", "lead", "text"),
        ("省委组织部", "support", "text"), ("省教育厅", "support", "text")]


def test_kunshan_agency_measure_matrix_hand_checked(kunshan):
    m = agency_matrix(kunshan, "measures")
    names = set(m.index)
    # canonical names only: the two spellings of the emergency bureau are one row, the
    # propaganda department with its bracketed second name is one row
    assert "市应急管理局" in names and "市应急局" not in names
    assert "市委宣传部" in names and "市委宣传部(市文明办)" not in names
    assert {"市科协", "市科技局", "市教育局", "市人社局", "团市委", "各区镇"} <= names
    # counted by hand from labels/clauses.jsonl (clauses listing the agency and carrying the measure)
    assert m.loc["市科协", "条款数"] == 139
    assert m.loc["市科协", "活动服务"] == 42
    assert m.loc["市人社局", "教育培训"] == 28
    assert m.loc["市应急管理局", "条款数"] == 43           # 10 × 市应急局 + 33 × 市应急管理局
    assert m.loc["市应急管理局", "教育培训"] == 15
    assert m.loc["市委宣传部", "条款数"] == 45             # 42 + 3 written 市委宣传部(市文明办)
    assert m.loc["市委组织部", "条款数"] == 15
    t = agency_matrix(kunshan, "themes")
    assert t.loc["市委组织部", "领导干部和公务员"] == 9
    assert t.loc["市教育局", "青少年"] == 33
    lead = agency_matrix(kunshan, "measures", role="lead")
    assert lead.loc["市科技局", "条款数"] == 37             # clauses whose note lists 市科技局 first


def test_analysis_per_document_and_export(tmp_path):
    rows = gold_rows(["kunshan-2023", "jiangxi-2023"])
    a = analyze_agencies(rows)
    assert set(a.by_doc_measures) == {"kunshan-2023", "jiangxi-2023"}
    assert "省科技厅" in a.by_doc_measures["jiangxi-2023"].index
    assert "省科技厅" not in a.by_doc_measures["kunshan-2023"].index
    assert a.measures.loc["省科技厅", "条款数"] == 56
    path = write_agencies_xlsx(a, tmp_path / "ag.xlsx", rows)
    wb = load_workbook(path)
    assert wb.sheetnames[:2] == ["责任单位×措施类型", "责任单位×主题"]
    assert "措施-kunshan-2023" in wb.sheetnames and "明细" in wb.sheetnames
    ws = wb["责任单位×措施类型"]
    assert ws.freeze_panes == "A2" and ws["A1"].value == "责任单位"
    assert all(c.data_type != "f" for w in wb.worksheets for r in w.iter_rows() for c in r)
    png = tmp_path / "ag.png"
    plot_agency_matrix(a, png, top=10)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_agencies_gold(tmp_path):
    out = tmp_path / "a.xlsx"
    res = CliRunner().invoke(app, ["agencies", "kunshan-2023", "--gold", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "市科协" in [c.value for c in load_workbook(out)["责任单位×措施类型"]["A"]]
