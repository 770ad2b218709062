"""The app's 比较 tab without Gradio: the documents of a workspace compared, their
responsible agencies and their quantified targets.

The same library functions as ``policytag compare`` / ``agencies`` / ``targets``
(:mod:`policytag.analysis`) on the rows the user sees (corrections included, rows marked
"not a clause" left out); the export files are written only when asked for.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policytag.analysis.agencies import AgencyAnalysis, analyze_agencies
from policytag.analysis.agencies_export import plot_agency_matrix, write_agencies_xlsx
from policytag.analysis.compare import Comparison, compare_documents
from policytag.analysis.compare_export import group_label, plot_comparison, write_comparison_xlsx
from policytag.analysis.inputs import load_metadata
from policytag.analysis.targets import Target, targets_from_rows
from policytag.analysis.targets_export import write_targets_xlsx
from policytag.data.taxonomy import Taxonomy
from policytag.errors import InputError

if TYPE_CHECKING:  # the service imports this module; only its types are needed here
    from policytag.serving.workbench import Workspace

KINDS = ("compare", "agencies", "targets")


@dataclass
class WorkspaceAnalysis:
    """Everything the tab shows for one workspace."""

    doc_ids: list[str]
    labels: dict[str, str]                      # doc id -> short name (title) for tables and captions
    rows: list[dict]
    source: str                                 # which labels: "模型 v…；人工修正 3 条"
    comparison: Comparison | None = None        # None with fewer than two documents
    agencies: AgencyAnalysis | None = None      # None when no clause names a responsible agency
    targets: list[Target] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rows


def short_name(title: str, fallback: str, limit: int = 16) -> str:
    """A column-sized name for a document: its title without the issuer's boilerplate, cut to ``limit``."""
    name = re.sub(r"^(关于印发|关于)", "", (title or "").strip()) or fallback
    name = re.sub(r"的通知$", "", name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def workspace_rows(ws: "Workspace", label_ids: list[str] | None = None) -> "OrderedDict[str, list[dict]]":
    """Rows per document in workspace order, as the analysis library reads them (junk left out)."""
    out: "OrderedDict[str, list[dict]]" = OrderedDict()
    for d in ws.docs:
        out[d.doc_id] = [r.to_dict(label_ids) for r in d.rows if not r.junk]
    return out


def source_note(ws: "Workspace") -> str:
    versions = sorted({r.model_version for r in ws.rows if r.model_version})
    fixed = sum(1 for r in ws.rows if r.status == "corrected")
    note = ("模型 " + ", ".join(versions)) if versions else "已标注条款"
    return note + (f"；人工修正 {fixed} 条" if fixed else "")


def analyze_workspace(ws: "Workspace", taxonomy: Taxonomy) -> WorkspaceAnalysis:
    """Compare the workspace's documents (two or more), find agencies and targets."""
    by_doc = workspace_rows(ws, list(taxonomy.label_ids))
    by_doc = OrderedDict((k, v) for k, v in by_doc.items() if v)
    known = load_metadata()  # the seed documents' short names (江西 2023), as the CLI uses them
    labels = {d.doc_id: str((known.get(d.doc_id) or {}).get("short") or short_name(d.meta.title or d.name, d.doc_id))
              for d in ws.docs}
    rows = [r for rs in by_doc.values() for r in rs]
    out = WorkspaceAnalysis(doc_ids=list(by_doc), labels=labels, rows=rows, source=source_note(ws))
    if not rows:
        return out
    years = {d.doc_id: int(d.meta.year) for d in ws.docs if str(d.meta.year).isdigit()}
    if len(by_doc) >= 2:
        out.comparison = compare_documents(by_doc, taxonomy, group_by="doc", labels=labels)
    ag = analyze_agencies(rows, taxonomy)
    out.agencies = ag if ag.mentions else None
    out.targets = targets_from_rows(rows, doc_years=years)
    return out


def write_analysis_files(analysis: WorkspaceAnalysis, kind: str, out_dir: str | Path) -> list[Path]:
    """The download of one part of the tab: its workbook and its figure (PNG)."""
    out = Path(out_dir)
    stem = "policytag-" + "-".join(analysis.doc_ids)[:60]
    if kind == "compare":
        if analysis.comparison is None:
            raise InputError("比较需要至少两份文档：在“标注”页一次上传两份或更多文件。"
                             " / Comparing needs two or more documents: upload several files in the Tag tab.")
        files = [write_comparison_xlsx(analysis.comparison, out / f"{stem}.compare.xlsx", source=analysis.source)]
        plot_comparison(analysis.comparison, out / f"{stem}.compare.png", source=analysis.source)
        return files + [out / f"{stem}.compare.png"]
    if kind == "agencies":
        if analysis.agencies is None:
            raise InputError("这些条款没有责任单位（责任单位/牵头单位）。 / No responsible agencies in these clauses.")
        files = [write_agencies_xlsx(analysis.agencies, out / f"{stem}.agencies.xlsx", analysis.rows,
                                     source=analysis.source)]
        plot_agency_matrix(analysis.agencies, out / f"{stem}.agencies.png",
                           caption=f"{', '.join(analysis.doc_ids)}；{analysis.source}")
        return files + [out / f"{stem}.agencies.png"]
    if kind == "targets":
        if not analysis.targets:
            raise InputError("这些条款没有量化目标。 / No quantified targets in these clauses.")
        return [write_targets_xlsx(analysis.targets, out / f"{stem}.targets.xlsx", analysis.rows,
                                   source=analysis.source)]
    raise InputError(f"unknown analysis {kind!r}; one of {', '.join(KINDS)}")


def compare_cell(analysis: WorkspaceAnalysis, theme: str, measure: str) -> list[tuple[str, dict]]:
    """The clauses behind one theme × measure cell, per document: ``[(doc label, row)]``."""
    c = analysis.comparison
    if c is None:
        return []
    return [(group_label(c, g), r) for g in c.groups for r in c.cell_clauses(g, theme, measure)]


def agency_measure_rows(analysis: WorkspaceAnalysis, top: int = 20) -> Any:
    """The agency × measure matrix (clause counts) of the ``top`` agencies (it is ordered by clauses)."""
    return None if analysis.agencies is None else analysis.agencies.measures.head(top)
