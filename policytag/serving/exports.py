"""The app's downloads: the clause table (XLSX / CSV / JSONL) and the heat map (PNG / SVG / CSV).

Written when the user asks for them, never on every tag. Label names are Chinese by
default (ids in extra columns), headers Chinese or English, each row carries the
document's file name, title, issuer and year, and the XLSX has a codebook sheet, a heat
map sheet with families and totals, a frozen header, autofilters and column widths.
Every cell is a plain value: text that a spreadsheet would run as a formula
(``= + - @``, tab, CR) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from policytag.data.records import ClauseRow
from policytag.fileio import atomic_write_bytes
from policytag.data.taxonomy import Taxonomy
from policytag.serving.heatmap_plot import plot_heatmap
from policytag.serving.i18n import family_name, label_name, names

if TYPE_CHECKING:  # the service imports this module; only its types are needed here
    from policytag.serving.workbench import Workspace

FORMATS = {  # format id -> (file suffix, Chinese label, English label)
    "xlsx": (".clauses.xlsx", "条款表 Excel（含编码表、热力图）", "Clause table, Excel (codebook, heat map)"),
    "csv": (".clauses.csv", "条款表 CSV", "Clause table, CSV"),
    "jsonl": (".clauses.jsonl", "条款 JSONL（含全部分数）", "Clauses, JSON Lines (all scores)"),
    "heat_png": (".heatmap.png", "热力图 PNG", "Heat map, PNG"),
    "heat_svg": (".heatmap.svg", "热力图 SVG", "Heat map, SVG"),
    "heat_csv": (".heatmap.csv", "热力图 CSV", "Heat map, CSV"),
}
STATUS_NAMES = {"zh": {"corrected": "已修正", "accepted": "已确认", "junk": "非条款", "": ""},
                "en": {"corrected": "corrected", "accepted": "accepted", "junk": "not a clause", "": ""}}
COLUMNS = [  # (key, 中文, English)
    ("file", "文件名", "file"), ("title", "文件标题", "title"), ("issuer", "发文机关", "issuer"), ("year", "年份", "year"),
    ("clause_id", "条款编号", "clause_id"), ("context", "标题路径", "heading_path"), ("text", "条款", "clause"),
    ("themes", "主题", "themes"), ("measures", "措施类型", "measures"), ("families", "措施类别", "measure_families"),
    ("confidence", "置信度", "confidence"), ("status", "复核状态", "review_status"), ("agencies", "责任单位", "agencies"),
    ("theme_ids", "主题_id", "theme_ids"), ("measure_ids", "措施_id", "measure_ids"),
    ("model_version", "模型版本", "model_version"),
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def plain(v: Any) -> Any:
    """A cell value that cannot run as a formula in Excel / LibreOffice / Sheets (idempotent:
    a value already neutralized keeps its single leading ')."""
    if isinstance(v, str):
        v = _ILLEGAL.sub("", v)
        if v.startswith(_FORMULA_START):
            return "'" + v
    return v


def safe_stem(s: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", str(s)).strip("._") or "document"


# --------------------------------------------------------------------------- tables


def clause_frame(ws: "Workspace", tax: Taxonomy, lang: str = "zh", doc_id: str | None = None) -> pd.DataFrame:
    """The clause table: Chinese (or English) names, ids and scores in extra columns."""
    recs = []
    for d in ws.docs:
        if doc_id and doc_id != "__all__" and d.doc_id != doc_id:
            continue
        for r in d.rows:
            recs.append(_record(r, d, tax, lang))
    head = [zh if lang != "en" else en for _, zh, en in COLUMNS] + [f"p_{lid}" for lid in tax.label_ids]
    return pd.DataFrame(recs, columns=head)


def _record(r: ClauseRow, d: Any, tax: Taxonomy, lang: str) -> dict:
    conf = r.confidence()
    fams = []
    for m in r.measures:
        f = family_name(tax, tax.family_of(m), lang) if m in tax else ""
        if f and f not in fams:
            fams.append(f)
    sep = ", " if lang == "en" else "、"
    vals = {
        "file": d.meta.file_name or d.name, "title": d.meta.title, "issuer": d.meta.issuer, "year": d.meta.year,
        "clause_id": r.clause_id, "context": r.context, "text": r.text,
        "themes": names(tax, r.themes, lang), "measures": names(tax, r.measures, lang), "families": sep.join(fams),
        "confidence": None if r.corrected or r.junk or conf is None else round(conf, 3),
        "status": STATUS_NAMES["en" if lang == "en" else "zh"][r.status or ""],
        "agencies": sep.join(r.agencies), "theme_ids": ";".join(r.themes), "measure_ids": ";".join(r.measures),
        "model_version": r.model_version,
    }
    out = {(zh if lang != "en" else en): plain(vals[k]) for k, zh, en in COLUMNS}
    out.update({f"p_{lid}": r.scores.get(lid) for lid in tax.label_ids})
    return out


def codebook_frame(tax: Taxonomy, lang: str = "zh") -> pd.DataFrame:
    head = ["label", "中文", "English", "维度" if lang != "en" else "dimension",
            "定义" if lang != "en" else "definition", "类别" if lang != "en" else "family"]
    recs = []
    for lid in tax.label_ids:
        lab = tax[lid]
        dim = (tax.dimension_names.get(lab.dimension) or {}).get("en" if lang == "en" else "zh", lab.dimension)
        fam = family_name(tax, lab.family, lang) if lab.family else ""
        recs.append([lid, lab.zh, lab.en, dim, lab.definition, fam])
    return pd.DataFrame(recs, columns=head)


def heat_frame(heat: pd.DataFrame, tax: Taxonomy, lang: str = "zh") -> pd.DataFrame:
    """The theme × measure counts with a (family, measure) column header and totals."""
    total = "合计" if lang != "en" else "total"
    cols = []
    for m in heat.columns:
        fam = family_name(tax, tax.family_of(m), lang) if m in tax else ("无" if lang != "en" else "none")
        cols.append((fam, label_name(tax, m, lang)))
    df = pd.DataFrame(heat.values, index=[label_name(tax, t, lang) for t in heat.index],
                      columns=pd.MultiIndex.from_tuples(cols))
    df[(total, total)] = df.sum(axis=1)
    df.loc[total] = df.sum(axis=0)
    df.index.name = "主题 \\ 措施类型" if lang != "en" else "theme \\ measure"
    return df.astype(int)


# --------------------------------------------------------------------------- writers


def write_export(ws: "Workspace", fmt: str, out_dir: Path, tax: Taxonomy, *, lang: str = "zh",
                 doc_id: str | None = None, heat: pd.DataFrame | None = None, model_version: str = "") -> Path:
    """Write one download into ``out_dir``; ``heat`` is the id-indexed heat-map matrix of the rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    doc = ws.doc(doc_id) if doc_id and doc_id != "__all__" else None
    label = doc.name if doc else ws.name
    stem = safe_stem(Path(label).stem if doc or len(ws.docs) == 1 else "documents")
    path = out_dir / f"{stem}{FORMATS[fmt][0]}"
    version = model_version or next((r.model_version for r in ws.rows if r.model_version), "")
    if fmt == "xlsx":
        write_xlsx(path, clause_frame(ws, tax, lang, doc_id), codebook_frame(tax, lang), heat_frame(heat, tax, lang), lang)
    elif fmt == "csv":
        _write_csv(path, clause_frame(ws, tax, lang, doc_id))
    elif fmt == "jsonl":
        rows = [{**r.to_dict(tax.label_ids), "doc_name": d.name, **{f"doc_{k}": v for k, v in d.meta.__dict__.items()}}
                for d in ws.docs if not doc or d is doc for r in d.rows]
        _atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    elif fmt == "heat_csv":
        _write_csv(path, heat_frame(heat, tax, lang), index=True)
    else:
        caption = caption_text(label, version, lang)
        _atomic(path, plot_heatmap(heat_frame(heat, tax, lang), caption, "svg" if fmt == "heat_svg" else "png"))
    return path


def caption_text(doc_label: str, version: str, lang: str = "zh") -> str:
    today = date.today().isoformat()
    if lang == "en":
        return f"Document: {doc_label} · model {version} · {today}"
    return f"文档：{doc_label} · 模型 {version} · {today}"


def write_xlsx(path: Path, clauses: pd.DataFrame, codebook: pd.DataFrame, heat: pd.DataFrame, lang: str) -> Path:
    """Clauses, heat map and codebook sheets; frozen header, autofilter, column widths."""
    wb = Workbook()
    sheet = wb.active
    sheet.title = "条款" if lang != "en" else "clauses"
    _fill_sheet(sheet, clauses, widths={"条款": 70, "clause": 70, "标题路径": 28, "heading_path": 28})
    hs = wb.create_sheet("热力图" if lang != "en" else "heatmap")
    _fill_heat_sheet(hs, heat)
    cb = wb.create_sheet("编码表" if lang != "en" else "codebook")
    _fill_sheet(cb, codebook, widths={"定义": 80, "definition": 80})
    bold = Font(bold=True)
    for ws_ in (sheet, cb):
        for c in ws_[1]:
            c.font = bold
            c.fill = PatternFill("solid", fgColor="E5E7EB")
            c.alignment = Alignment(vertical="center", wrap_text=True)
    buf = io.BytesIO()
    wb.save(buf)
    _atomic(path, buf.getvalue())
    return path


def _fill_sheet(sheet: Any, df: pd.DataFrame, widths: dict[str, int]) -> None:
    sheet.append([plain(str(c)) for c in df.columns])
    for rec in df.itertuples(index=False):
        sheet.append([None if (isinstance(v, float) and v != v) else plain(v) for v in rec])
    sheet.freeze_panes = "A2"
    if len(df.columns):
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(df.columns))}{max(len(df) + 1, 2)}"
    for i, col in enumerate(df.columns, 1):
        sample = [str(col)] + [str(v) for v in df[col].head(200).tolist()]
        width = widths.get(str(col)) or min(40, max(8, max(_display_len(s) for s in sample) + 2))
        sheet.column_dimensions[get_column_letter(i)].width = width


def _fill_heat_sheet(sheet: Any, heat: pd.DataFrame) -> None:
    """Row 1: families (merged over their measures), row 2: measures, then themes, totals last."""
    fams = [c[0] for c in heat.columns]
    sheet.append([heat.index.name] + fams)
    sheet.append([""] + [c[1] for c in heat.columns])
    start = 2
    for j in range(1, len(fams) + 1):
        if j == len(fams) or fams[j] != fams[j - 1]:
            if j + 1 > start:
                sheet.merge_cells(start_row=1, start_column=start, end_row=1, end_column=j + 1)
            start = j + 2
    sheet.merge_cells(start_row=1, start_column=1, end_row=2, end_column=1)
    for name, vals in zip(heat.index, heat.values.tolist()):
        sheet.append([name] + [int(v) for v in vals])
    for row in sheet.iter_rows(min_row=1, max_row=2):
        for c in row:
            c.font = Font(bold=True)
            c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for c in sheet[sheet.max_row]:
        c.font = Font(bold=True)
    sheet.freeze_panes = "B3"
    sheet.column_dimensions["A"].width = 22
    for j in range(2, len(fams) + 2):
        sheet.column_dimensions[get_column_letter(j)].width = 11


def _display_len(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _write_csv(path: Path, df: pd.DataFrame, index: bool = False) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if isinstance(df.columns, pd.MultiIndex):
        for level in range(df.columns.nlevels):
            w.writerow(([df.index.name if level == 0 else ""] if index else []) +
                       [plain(str(c[level])) for c in df.columns])
    else:
        w.writerow(([df.index.name or ""] if index else []) + [plain(str(c)) for c in df.columns])
    for idx, rec in zip(df.index, df.itertuples(index=False)):
        vals = ["" if (isinstance(v, float) and v != v) or v is None else plain(v) for v in rec]
        w.writerow(([plain(str(idx))] if index else []) + vals)
    _atomic(path, "\ufeff".encode("utf-8") + buf.getvalue().encode("utf-8"))
    return path


def _atomic(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def export_choices(lang: str = "zh") -> list[tuple[str, str]]:
    return [(v[2] if lang == "en" else v[1], k) for k, v in FORMATS.items()]

