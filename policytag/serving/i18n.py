"""The app's words in Chinese (the default) and English: one language on screen at a time."""

from __future__ import annotations

from typing import Any

from policytag.analysis.tally import NONE_ID  # "no label"; the tab and the exports use the same id
from policytag.data.taxonomy import Taxonomy

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    # header, tabs
    "subtitle": ("科普政策条款标注：主题（对象） × 措施类型（政策工具）", "Policy clause tagger: theme (target group) × measure type (policy instrument)"),
    "tab_tag": ("标注", "Tag"), "tab_review": ("复核", "Review"), "tab_model": ("模型", "Model"), "tab_api": ("API", "API"),
    "tab_analysis": ("比较", "Compare"),
    "an_intro": ("对“标注”页中的文档（可一次上传多份）做比较：各文档主题 × 措施类型占比并列及其差异、供给型/环境型/需求型平衡；"
                 "责任单位（规范名称）× 措施类型；量化目标（数量、单位、指标、期限）。使用页面上看到的标签（含人工修正）。",
                 "For the documents of the Tag tab (upload several at once): theme × measure shares side by side and their "
                 "difference, the supply / environment / demand balance; responsible agencies (canonical names) × measure "
                 "types; quantified targets (quantity, unit, indicator, deadline). Uses the labels on the page, corrections included."),
    "an_btn": ("分析当前文档", "Analyse the current documents"),
    "an_compare": ("文档对比", "Compare documents"), "an_agencies": ("责任单位", "Who does what"),
    "an_targets": ("量化目标", "Quantified targets"),
    "an_dl_compare": ("下载对比（XLSX + PNG）", "Download comparison (XLSX + PNG)"),
    "an_dl_agencies": ("下载责任单位（XLSX + PNG）", "Download agencies (XLSX + PNG)"),
    "an_dl_targets": ("下载量化目标（XLSX）", "Download targets (XLSX)"),
    "an_files": ("分析下载", "Analysis downloads"),
    "an_done": ("已分析 {n} 份文档、{c} 个条款：{t} 个量化目标。", "Analysed {n} document(s), {c} clauses: {t} quantified targets."),
    "an_none": ("先在“标注”页标注文档。", "Tag a document on the Tag tab first."),
    "tab_paste": ("粘贴文本", "Paste"), "tab_upload": ("上传文件", "Upload"),
    "tab_doc": ("文档", "Document"), "tab_table": ("条款表", "Table"), "tab_heat": ("热力图", "Heat map"),
    # input
    "text_label": ("政策文件正文", "Policy document text"),
    "text_placeholder": ("粘贴政策文件全文（标题、章节编号、条款）……", "Paste the full text of a policy document…"),
    "docname_label": ("文档名称（用于导出）", "Document name (used in exports)"),
    "docname_placeholder": ("如：江西省科普若干措施（2023）", "e.g. Jiangxi science popularization measures (2023)"),
    "tag_btn": ("标注", "Tag"), "clear_btn": ("清空", "Clear"),
    "file_label": ("上传 .txt / .docx / .pdf / .html，可多选，或一个 .zip", "Upload .txt / .docx / .pdf / .html (several at once) or a .zip"),
    "upload_hint": ("上传后自动标注；新的上传替换之前的文件。", "Uploading tags the files; a new upload replaces the previous one."),
    "examples_label": ("示例文档（点击即标注）", "Example documents (one click to tag)"),
    "lang_label": ("语言", "Language"),
    # results
    "no_doc": ("尚未标注文档", "No document tagged yet"),
    "progress": ("正在标注 {done}/{total} 条…", "Tagging {done}/{total} clauses…"),
    "progress_start": ("正在读取和切分 {name}…", "Reading and segmenting {name}…"),
    "done_line": ("完成：{n} 个条款，用时 {s:.1f} 秒", "Done: {n} clauses in {s:.1f} s"),
    "downloads_label": ("下载", "Downloads"),
    "export_label": ("导出格式", "Export format"), "export_btn": ("生成下载文件", "Prepare download"),
    "export_lang_label": ("表头语言", "Header language"),
    "dim_themes": ("按主题着色", "Colour by theme"), "dim_measures": ("按措施类型着色", "Colour by measure type"),
    "doc_select": ("文档", "Document"), "all_docs": ("全部文档", "All documents"),
    "f_theme": ("主题", "Theme"), "f_measure": ("措施类型", "Measure type"), "f_query": ("搜索", "Search"),
    "f_query_ph": ("条款、标题或责任单位中的文字，如：科技馆", "Text in the clause, heading or agencies"),
    "all_themes": ("全部主题", "All themes"), "all_measures": ("全部措施", "All measures"),
    "no_theme": ("无主题", "No theme"), "no_measure": ("无措施", "No measure"),
    "table_label": ("条款表（点击表头排序，点击一行进行校正）", "Clauses (click a header to sort, a row to correct it)"),
    "heat_mode": ("显示", "Show"), "heat_counts": ("条款数", "Counts"), "heat_pct": ("行百分比", "Row %"),
    "heat_export": ("导出热力图", "Export heat map"),
    "heat_hint": ("点击单元格：在条款表中筛选这些条款。", "Click a cell to list those clauses in the table."),
    # bulk
    "bulk_title": ("批量操作（作用于当前筛选出的条款）", "Bulk action (on the clauses filtered above)"),
    "bulk_label": ("标签", "Label"), "bulk_add": ("添加到这些条款", "Add to these clauses"),
    "bulk_remove": ("从这些条款移除", "Remove from these clauses"),
    # correction form
    "correct_title": ("校正条款", "Correct a clause"),
    "clause_dd": ("条款编号", "Clause"), "clause_dd_info": ("选择条款，或在文档/表格中点击", "Pick one, or click a clause in the document or table"),
    "themes_label": ("主题", "Themes"), "themes_info": ("对象群体；留空 = 一般公众", "Target groups; empty = the general public"),
    "measures_label": ("措施类型", "Measure types"), "measures_info": ("政策工具，通常一到两个", "Policy instruments, usually one or two"),
    "annotator_label": ("标注人（必填）", "Annotator (required)"), "annotator_ph": ("你的名字", "your name"),
    "note_label": ("备注", "Note"), "note_ph": ("可选", "optional"),
    "save_btn": ("保存校正", "Save correction"),
    # review
    "review_intro": ("逐条复核：数字键 1–6 切换主题，字母键切换措施类型，Enter 确认并进入下一条，← → 移动，N 标记为非条款。"
                     "每个决定立即保存。", "Review one clause at a time: keys 1–6 toggle themes, letters toggle measure types, "
                     "Enter accepts and moves on, ← → move, N marks “not a clause”. Every decision is saved at once."),
    "review_source": ("复核范围", "Review"), "review_doc": ("当前文档的全部条款", "All clauses of the current document(s)"),
    "review_queue": ("最不确定的条款（待复核队列）", "Least-certain clauses (review queue)"),
    "review_n": ("队列条数", "Queue size"), "review_start": ("开始复核", "Start review"),
    "review_empty": ("先在“标注”页标注文档，再开始复核。", "Tag a document on the Tag tab first, then start the review."),
    # model
    "retrain_btn": ("重新训练", "Retrain on corrections"), "promote_btn": ("上线此版本", "Promote this version"),
    "rollback_btn": ("回滚到上一版本", "Roll back"), "version_dd": ("版本", "Version"),
    "admin_token": ("管理员口令", "Admin token"),
    "admin_hint": ("重新训练、上线和回滚需要管理员口令（configs/app.yaml: auth.admin_token）。",
                   "Retrain, promote and roll back need the admin token (configs/app.yaml: auth.admin_token)."),
    "admin_open": ("本机模式：未设置管理员口令，管理操作对本机开放。", "Local mode: no admin token set; admin actions are open on this machine."),
    "versions_label": ("版本（最新在前）", "Versions (newest first)"),
}


def t(key: str, lang: str = "zh", **fmt: Any) -> str:
    zh, en = STRINGS[key]
    s = en if lang == "en" else zh
    return s.format(**fmt) if fmt else s


def label_name(tax: Taxonomy, label_id: str, lang: str = "zh") -> str:
    """A label's name in the UI language; ``(none)`` is 无 / none."""
    if label_id == NONE_ID:
        return "none" if lang == "en" else "无"
    lab = tax[label_id]
    return lab.en if lang == "en" else lab.zh


def family_name(tax: Taxonomy, family: str, lang: str = "zh") -> str:
    f = tax.families.get(family) or {}
    return str(f.get("en" if lang == "en" else "zh", family))


def names(tax: Taxonomy, ids: Any, lang: str = "zh", sep: str | None = None) -> str:
    sep = sep if sep is not None else (", " if lang == "en" else "、")
    return sep.join(label_name(tax, i, lang) for i in (ids or []) if i in tax)
