"""What the page shows, as HTML, Markdown and tables: pure functions of records, no Gradio.

Every function takes :class:`~policytag.data.records.ClauseRow` rows and the taxonomy and
a language (``zh`` default, ``en``).
"""

from __future__ import annotations

import html
import json
from typing import Any, Sequence

import pandas as pd

from policytag.data.records import ClauseRow, ReviewItem
from policytag.data.taxonomy import Taxonomy
from policytag.serving.i18n import NONE_ID, family_name, label_name, names, t

ALL = "__all__"  # the "no filter" choice of the table filters
CONF_CORRECTED = {"zh": "已修正", "en": "corrected"}
STATUS_TEXT = {"zh": {"corrected": "✎ 已修正", "accepted": "✓ 已确认", "junk": "✗ 非条款", "": ""},
               "en": {"corrected": "✎ corrected", "accepted": "✓ accepted", "junk": "✗ not a clause", "": ""}}
TABLE_COLUMNS = {"zh": ["编号", "条款", "主题", "措施类型", "置信度", "责任单位", "状态"],
                 "en": ["ID", "Clause", "Themes", "Measures", "Confidence", "Agencies", "Status"]}
TABLE_WIDTHS: list[str | int] = ["11%", "44%", "11%", "13%", "8%", "7%", "6%"]
FILE_COLUMN = {"zh": "文件", "en": "File"}


def esc(s: Any) -> str:
    return html.escape(str(s if s is not None else ""), quote=True)


def _alpha(color: str, a: float) -> str:
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return f"#{c[:6]}{int(round(a * 255)):02x}"


def confidence_text(r: ClauseRow, lang: str = "zh") -> str:
    """The label decision's confidence; corrected labels have no model score (shown as 已修正)."""
    if r.corrected:
        return CONF_CORRECTED["en" if lang == "en" else "zh"]
    c = r.confidence()
    return "" if c is None or r.junk else f"{c:.2f}"


def score_text(r: ClauseRow, tax: Taxonomy, lang: str = "zh") -> str:
    ids = r.model_themes + r.model_measures
    return " · ".join(f"{label_name(tax, i, lang)} {r.scores[i]:.2f}" for i in ids if i in tax and i in r.scores)


# --------------------------------------------------------------------------- document


def legend_html(tax: Taxonomy, dimension: str, rows: Sequence[ClauseRow] = (), lang: str = "zh") -> str:
    counts = {i: 0 for i in tax.ids(dimension)}
    for r in rows:
        if not r.junk:
            for i in getattr(r, dimension):
                if i in counts:
                    counts[i] += 1
    if dimension == "measures" and tax.families:
        groups = [(family_name(tax, f, lang), [m for m in tax.measures if tax.family_of(m) == f]) for f in tax.families]
    else:
        groups = [("", tax.themes)]
    parts = []
    for title, ids in groups:
        chips = "".join(
            f'<span class="pt-legend-item" title="{esc(tax[i].definition)}">'
            f'<span class="pt-swatch" style="background:{tax[i].color}"></span>{esc(label_name(tax, i, lang))}'
            f'<span class="pt-count">{counts[i]}</span></span>' for i in ids)
        head = f'<span class="pt-legend-group">{esc(title)}</span>' if title else ""
        parts.append(f'<span class="pt-legend-row">{head}{chips}</span>')
    return f'<div class="pt-legend">{"".join(parts)}</div>'


def _clause_html(r: ClauseRow, text: str, tax: Taxonomy, dimension: str, index: int, lang: str) -> str:
    ids = [i for i in getattr(r, dimension) if i in tax]
    other = [i for i in getattr(r, "measures" if dimension == "themes" else "themes") if i in tax]
    conf = confidence_text(r, lang)
    tip = "\n".join(filter(None, [
        r.clause_id, f"{t('themes_label', lang)}: {names(tax, r.themes, lang) or '—'}",
        f"{t('measures_label', lang)}: {names(tax, r.measures, lang) or '—'}",
        f"{'confidence' if lang == 'en' else '置信度'}: {conf}" if conf else "",
        STATUS_TEXT["en" if lang == "en" else "zh"][r.status or ""]]))
    cls = "pt-clause"
    style = ""
    if ids and not r.junk:
        main = tax[ids[0]].color
        style = f"background:{_alpha(main, 0.20)};border-bottom:2px solid {main}"
    else:
        cls += " pt-unlabeled"
    if r.corrected:
        cls += " pt-corrected"
    if r.junk:
        cls += " pt-junk"
    chips = "".join(f'<span class="pt-chip" style="background:{tax[i].color}">{esc(label_name(tax, i, lang))}</span>'
                    for i in ids)
    chips += "".join(f'<span class="pt-chip pt-chip-other" style="border-color:{tax[i].color};color:{tax[i].color}">'
                     f'{esc(label_name(tax, i, lang))}</span>' for i in other)
    if r.corrected:
        chips += '<span class="pt-chip pt-chip-fixed" title="corrected">✎</span>'
    return (f'<span class="{cls}" id="pt-c{index}" data-cid="{esc(r.clause_id)}" title="{esc(tip)}" '
            f'style="{style}">{esc(text)}</span><span class="pt-chips">{chips}</span>')


def document_html(text: str, rows: Sequence[ClauseRow], tax: Taxonomy, dimension: str = "themes",
                  lang: str = "zh") -> str:
    """The document with each clause highlighted by its labels (click a clause to correct it).

    While a document is still being tagged ``rows`` covers its beginning; the rest is plain text.
    """
    if not rows:
        if text:
            return f'<div class="pt-doc"><span class="pt-plain">{esc(text)}</span></div>'
        empty = "The highlighted document appears here." if lang == "en" else "标注后，这里显示带高亮的文档。"
        return f'<div class="pt-doc pt-empty">{empty}</div>'
    usable = all(r.span and 0 <= r.span[0] < r.span[1] <= len(text) for r in rows)
    out: list[str] = []
    if usable:
        pos = 0
        spanned = [(i, r, r.span) for i, r in enumerate(rows) if r.span]  # every row, as usable
        for i, r, (start, end) in sorted(spanned, key=lambda p: (p[2][0], p[0])):
            if start < pos:  # overlapping span: show the clause on its own line instead
                out.append("\n" + _clause_html(r, r.text, tax, dimension, i, lang) + "\n")
                continue
            out.append(f'<span class="pt-plain">{esc(text[pos:start])}</span>')
            out.append(_clause_html(r, text[start:end], tax, dimension, i, lang))
            pos = end
        out.append(f'<span class="pt-plain">{esc(text[pos:])}</span>')
    else:  # no spans: rebuild the document from the heading paths and clauses
        ctx = None
        for i, r in enumerate(rows):
            if r.context != ctx:
                ctx = r.context
                if ctx:
                    out.append(f'\n<span class="pt-plain pt-heading">{esc(ctx)}</span>\n')
            out.append(_clause_html(r, r.text, tax, dimension, i, lang))
    return f'<div class="pt-doc">{"".join(out)}</div>'


# --------------------------------------------------------------------------- table


def clause_table(rows: Sequence[ClauseRow], tax: Taxonomy, lang: str = "zh", with_file: bool = False) -> pd.DataFrame:
    cols = list(TABLE_COLUMNS["en" if lang == "en" else "zh"])
    recs = []
    for r in rows:
        text = f"{r.context} ▸ {r.text}" if r.context else r.text
        vals = [r.clause_id, text, names(tax, r.themes, lang), names(tax, r.measures, lang), confidence_text(r, lang),
                ("、" if lang != "en" else ", ").join(r.agencies), STATUS_TEXT["en" if lang == "en" else "zh"][r.status or ""]]
        recs.append(([r.doc_name] if with_file else []) + vals)
    head = ([FILE_COLUMN["en" if lang == "en" else "zh"]] if with_file else []) + cols
    return pd.DataFrame(recs, columns=head)


def table_widths(with_file: bool) -> list[str | int]:
    return (["9%", "10%", "37%", "11%", "12%", "8%", "7%", "6%"] if with_file else TABLE_WIDTHS)


def filter_rows(rows: Sequence[ClauseRow], theme: str | None = None, measure: str | None = None,
                query: str | None = None) -> list[ClauseRow]:
    """Rows having ``theme`` and ``measure`` (``(none)`` = no label; ALL/None = any) and containing ``query``."""
    out = []
    q = (query or "").strip()
    for r in rows:
        if not _has(r.themes, theme) or not _has(r.measures, measure):
            continue
        if theme not in (None, ALL) or measure not in (None, ALL):
            if r.junk:
                continue
        if q and not any(q in s for s in (r.text, r.context, r.clause_id, "、".join(r.agencies))):
            continue
        out.append(r)
    return out


def _has(ids: Sequence[str], want: str | None) -> bool:
    if not want or want == ALL:
        return True
    return not ids if want == NONE_ID else want in ids


# --------------------------------------------------------------------------- heat map


def heatmap_html(heat: pd.DataFrame | None, tax: Taxonomy, mode: str = "count", lang: str = "zh",
                 title: str = "") -> str:
    """Theme × measure (id-indexed counts) as a clickable table: family headers, 无, totals."""
    if heat is None or not int(heat.values.sum()):
        empty = "Theme × measure heat map after tagging" if lang == "en" else "标注后显示主题 × 措施类型热力图"
        return f'<div class="pt-empty">{empty}</div>'
    measures = list(heat.columns)
    total = "total" if lang == "en" else "合计"
    head_fam = [f'<th class="pt-corner" rowspan="2">{esc(title)}</th>']
    fams: list[tuple[str, int]] = []
    for c in measures:
        f = tax.family_of(c) if c in tax else ""
        if fams and fams[-1][0] == f:
            fams[-1] = (f, fams[-1][1] + 1)
        else:
            fams.append((f, 1))
    for f, n in fams:
        label = family_name(tax, f, lang) if f else ""
        head_fam.append(f'<th class="pt-fam pt-fam-{esc(f or "none")}" colspan="{n}">{esc(label)}</th>')
    head_fam.append(f'<th class="pt-total" rowspan="2">{total}</th>')
    head_m = "".join(f'<th class="pt-mcol" title="{esc(c)}">{esc(label_name(tax, c, lang))}</th>' for c in measures)
    vmax = max(1, int(heat.values.max()))
    body = [_heat_row(tname, heat.loc[tname].tolist(), measures, tax, mode, vmax, lang) for tname in heat.index]
    col_tot = "".join(f'<td class="pt-total">{int(heat[c].sum())}</td>' for c in measures)
    body.append(f'<tr><th class="pt-trow">{total}</th>{col_tot}<td class="pt-total">{int(heat.values.sum())}</td></tr>')
    note = ("Cell = clauses with both labels (a clause can count in several cells); row % = share of the row total. "
            "Click a cell to list its clauses." if lang == "en" else
            "单元格：同时带有该主题和该措施类型的条款数（一条款可计入多个单元格）；行百分比 = 占该行合计的比例。点击单元格筛选条款表。")
    return (f'<div class="pt-heat-wrap"><table class="pt-heat"><thead><tr>{"".join(head_fam)}</tr>'
            f'<tr>{head_m}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            f'<div class="pt-note">{esc(note)}</div>')


def _heat_row(theme: str, vals: list, measures: list[str], tax: Taxonomy, mode: str, vmax: int, lang: str) -> str:
    vals = [int(v) for v in vals]
    row_total = sum(vals)
    cells = []
    for c, v in zip(measures, vals):
        a = 0.0 if v == 0 else 0.15 + 0.85 * v / vmax
        fg = "#fff" if a > 0.55 else "#1f2937"
        shown = (f"{100 * v / row_total:.0f}%" if row_total else "") if mode == "pct" and v else (str(v) if v else "")
        tip = f"{label_name(tax, theme, lang)} × {label_name(tax, c, lang)}: {v}"
        cells.append(f'<td class="pt-cell" data-t="{esc(theme)}" data-m="{esc(c)}" style="background:rgba(37,99,235,{a:.2f});'
                     f'color:{fg}" title="{esc(tip)}">{shown}</td>')
    color = tax[theme].color if theme in tax else "#9ca3af"
    return (f'<tr><th class="pt-trow" title="{esc(theme)}"><span class="pt-swatch" style="background:{color}"></span>'
            f'{esc(label_name(tax, theme, lang))}</th>{"".join(cells)}<td class="pt-total">{row_total}</td></tr>')


def families_html(fc: pd.DataFrame | None, tax: Taxonomy, lang: str = "zh") -> str:
    """Counts per measure family (supply / environment / demand) with a bar per family."""
    if fc is None or not len(fc):
        return ""
    total = int(fc["count"].sum()) or 1
    parts = []
    for fam, g in fc.groupby("family", sort=False):
        n = int(g["count"].sum())
        detail = "、".join(f"{label_name(tax, m, lang)} {int(b)}" for m, b in zip(g["measure"], g["count"]) if b)
        parts.append(
            f'<div class="pt-fam-row" title="{esc(detail or "—")}"><span class="pt-fam-name">{esc(family_name(tax, fam, lang))}</span>'
            f'<span class="pt-bar"><span class="pt-bar-fill pt-fam-{esc(fam)}" style="width:{100 * n / total:.0f}%"></span></span>'
            f'<span class="pt-fam-n">{n} <small>({100 * n / total:.0f}%)</small></span></div>')
    return f'<div class="pt-families">{"".join(parts)}</div>'


# --------------------------------------------------------------------------- summary, form, review


def summary_markdown(docs: Sequence[Any], lang: str = "zh") -> str:
    if not docs:
        return t("no_doc", lang)
    rows = [r for d in docs for r in d.rows]
    n = sum(1 for r in rows if not r.junk)
    labeled = sum(1 for r in rows if (r.themes or r.measures) and not r.junk)
    fixed = sum(1 for r in rows if r.corrected)
    reviewed = sum(1 for r in rows if r.reviewed)
    secs = sum(d.seconds for d in docs)
    name = docs[0].name if len(docs) == 1 else (f"{len(docs)} documents" if lang == "en" else f"{len(docs)} 份文档")
    version = docs[0].model_version
    if lang == "en":
        s = f"**{esc(name)}** · {n} clauses · {labeled} labeled · {secs:.1f} s · model `{version}`"
        s += f" · {reviewed} reviewed ({fixed} corrected)" if reviewed else ""
    else:
        s = f"**{esc(name)}** · {n} 个条款 · {labeled} 个有标签 · 用时 {secs:.1f} 秒 · 模型 `{version}`"
        s += f" · 已复核 {reviewed} 个（修正 {fixed} 个）" if reviewed else ""
    return s


def clause_choices(rows: Sequence[ClauseRow]) -> list[tuple[str, str]]:
    out = []
    for r in rows:
        s = " ".join(r.text.split())
        out.append((f"{r.clause_id} · {s[:28]}{'…' if len(s) > 28 else ''}", r.clause_id))
    return out


def clause_detail_markdown(r: ClauseRow | None, tax: Taxonomy, history: Sequence[dict] = (), lang: str = "zh") -> str:
    if r is None:
        return ("Click a clause in the document or the table to correct it." if lang == "en"
                else "在文档或表格中点击一个条款，或在上面选择条款编号。")
    lines = [f"**{esc(r.clause_id)}**"]
    if r.context:
        lines.append(f"<span class='pt-muted'>{esc(r.context)}</span>")
    lines.append(f"> {esc(r.text)}")
    pred = score_text(r, tax, lang) or ("no labels" if lang == "en" else "无标签")
    lines.append(f"{'Model prediction' if lang == 'en' else '模型预测'} (`{esc(r.model_version)}`): {pred}")
    if history:
        last = history[-1]
        who = last.get("annotator") or ("anonymous" if lang == "en" else "匿名")
        lines.append((f"Reviewed {len(history)}×, last: {esc(who)} · {str(last.get('created_at', ''))[:19]}" if lang == "en"
                      else f"已复核 {len(history)} 次，最近：{esc(who)} · {str(last.get('created_at', ''))[:19]}"))
    return "\n\n".join(lines)


REVIEW_COLUMNS = {"zh": ["编号", "条款", "最不确定的标签", "与阈值的距离", "主题", "措施类型", "状态"],
                  "en": ["ID", "Clause", "Least-certain label", "Distance to threshold", "Themes", "Measures", "Status"]}


def review_table(items: Sequence[ReviewItem], tax: Taxonomy, lang: str = "zh") -> pd.DataFrame:
    """The review queue as a table (:class:`ReviewItem`: ``nearest_label`` is the least-certain label)."""
    key = "en" if lang == "en" else "zh"
    recs = [[it.row.clause_id, it.row.text,
             f"{label_name(tax, it.nearest_label, lang)} ({it.nearest_p:.2f} / {it.threshold:.2f})" if it.nearest_label in tax else "",
             round(it.margin, 3), names(tax, it.row.themes, lang), names(tax, it.row.measures, lang),
             STATUS_TEXT[key][it.row.status or ""]] for it in items]
    return pd.DataFrame(recs, columns=REVIEW_COLUMNS[key])


def key_map(tax: Taxonomy) -> dict[str, str]:
    """Keyboard shortcuts of the review mode: 1–6 themes; measures by family on the letter rows."""
    keys = {str(i + 1): lid for i, lid in enumerate(tax.themes[:9])}
    rows = ["qwertyui", "asdfghjk", "zxcvbm"]
    fams = list(tax.families) or [""]
    for k, fam in enumerate(fams):
        ids = [m for m in tax.measures if (tax.family_of(m) == fam or not fam)]
        for ch, lid in zip(rows[min(k, len(rows) - 1)], ids):
            keys[ch] = lid
    return keys


def review_payload(rows: Sequence[ClauseRow], tax: Taxonomy, lang: str = "zh",
                   order: Sequence[int] | None = None, batch: str = "") -> str:
    """The review card's data (read by ``review.js``): clauses in review order with their neighbours."""
    keys = key_map(tax)
    fam_order = {f: i for i, f in enumerate(tax.families)}
    ordered = tax.themes + sorted(tax.measures, key=lambda m: fam_order.get(tax.family_of(m), 99))  # key rows: Q, A, Z
    labels = [{"id": lid, "name": label_name(tax, lid, lang), "color": tax[lid].color, "dim": tax[lid].dimension,
               "family": family_name(tax, tax.family_of(lid), lang) if tax[lid].family else "",
               "key": next((k for k, v in keys.items() if v == lid), "")} for lid in ordered]
    idx = list(order) if order is not None else list(range(len(rows)))
    items = []
    for i in idx:
        r = rows[i]
        same_doc = lambda j: 0 <= j < len(rows) and rows[j].doc_id == r.doc_id  # noqa: E731
        items.append({"row": r.to_dict(tax.label_ids), "prev": rows[i - 1].text if same_doc(i - 1) else "",
                      "next": rows[i + 1].text if same_doc(i + 1) else "",
                      "conf": confidence_text(r, lang), "scores": score_text(r, tax, lang)})
    data = {"batch": batch, "lang": lang, "labels": labels, "items": items}
    blob = esc(json.dumps(data, ensure_ascii=False))
    return f'<div class="pt-review"><div class="pt-review-data" hidden data-json="{blob}"></div>' \
           '<div class="pt-review-card"></div></div>'
