"""The model panel: the served version, its evaluation figures, retraining progress, versions."""

from __future__ import annotations

import html
from typing import Any, Sequence

import pandas as pd


def _f(v: Any) -> str:
    return "—" if v is None else f"{float(v):.3f}"


def model_markdown(info: dict) -> str:
    status_names: dict[Any, str] = {"production": "生产版本 (production)", "candidate": "候选版本 (candidate)",
                                    "retired": "已退役 (retired)"}
    status = status_names.get(info.get("status"), "未登记的目录 (unregistered directory)")
    n = info.get("n_train_clauses")
    data = f"{n} 个条款，{info.get('n_train_docs', 0)} 份文档 (clauses, documents)" if n else "—"
    rows = [
        ("当前版本 (version)", f"`{info.get('version', '')}` · {status}"),
        ("基础模型 (base model)", f"`{info.get('base_model') or '—'}` · {info.get('backend', '')}"),
        ("训练时间 (trained)", str(info.get("created_at") or "—")[:19].replace("T", " ")),
        ("训练数据 (training data)", data),
        ("校正 (corrections)", f"共 {info.get('corrections_total', 0)} 个条款；上次训练以来 **{info.get('corrections_since_training', 0)}** 个"),
    ]
    body = "\n".join(f"| {a} | {b} |" for a, b in rows)
    out = [f"#### 模型 (Model)\n\n| 项目 | 内容 |\n|---|---|\n{body}"]
    ms = info.get("metrics") or []
    if ms:
        lines = ["| 评估集 (evaluation set) | 条款 | 主题 micro-F1 | 主题 macro-F1 | 措施 micro-F1 | 措施 macro-F1 | 完全匹配 |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for m in ms:
            lines.append(f"| {m['label']} | {m.get('n') or ''} | {_f(m['theme_micro_f1'])} | {_f(m['theme_macro_f1'])} | "
                         f"{_f(m['measure_micro_f1'])} | {_f(m['measure_macro_f1'])} | {_f(m['exact_match'])} |")
        out.append("#### 评估 (Evaluation)\n\n" + "\n".join(lines))
    else:
        out.append("<span class='pt-muted'>模型元数据中没有评估结果 (no evaluation figures in the model metadata)</span>")
    out.append(f"<span class='pt-muted'>模型目录 (model dir): {html.escape(info.get('model_dir', ''))}<br>"
               f"阈值 (thresholds): {html.escape(str(info.get('thresholds') or '—'))}</span>")
    return "\n\n".join(out)


STAGE_NAMES = {"data": "准备数据 (data)", "train": "训练 (training)", "evaluate": "评估 (evaluating)",
               "register": "登记版本 (registering)"}


def retrain_markdown(state: dict) -> str:
    """The retraining panel from a :class:`policytag.retrain.RetrainJob` state."""
    status = state.get("status", "idle")
    if status == "idle":
        return ("点击 **重新训练**：用标注数据和全部校正训练新版本，在固定的测试文档上与当前生产版本比较，"
                "不比它差才上线。训练在后台进程中进行，期间可以照常标注。\n\n"
                "*Retrain on the gold labels plus all corrections; the new version goes live only if it is not "
                "worse on the fixed test documents. Tagging keeps working meanwhile.*")
    if status == "running":
        pct = 100 * float(state.get("fraction") or 0)
        stage_id: Any = state.get("stage")
        stage = STAGE_NAMES.get(stage_id, stage_id or "")
        return (f"**正在重新训练…** · {html.escape(stage)} · {pct:.0f}%"
                f'<div class="pt-bar pt-progress"><span class="pt-bar-fill pt-fam-environment" style="width:{pct:.0f}%"></span></div>'
                f"<span class='pt-muted'>{html.escape(str(state.get('message') or ''))} · 开始于 {str(state.get('started_at') or '')[11:19]} UTC</span>")
    if status in ("failed", "cancelled"):
        return f"**重新训练未完成**  (retraining {status}): {html.escape(str(state.get('error') or state.get('message') or ''))}"
    r = state.get("result") or {}
    head = (f"**重新训练完成** ({r.get('seconds', 0):.0f} 秒)：新版本 `{r.get('version', '')}` "
            + ("**已上线**，本页面已切换到新版本 (promoted; now serving it)" if r.get("promoted")
               else "**未上线** (kept as candidate)"))
    lines = [head, ""]
    new, old, delta = r.get("new_score"), r.get("production_score"), r.get("delta")
    metric = r.get("metric", "mean_micro_f1")
    if new is not None:
        if old is not None:
            arrow = "▲" if (delta or 0) > 0 else "▼" if (delta or 0) < 0 else "＝"
            lines.append(f"- {metric}（测试文档）：{old:.3f} → **{new:.3f}** {arrow} {(delta or 0):+.3f}")
        else:
            lines.append(f"- {metric}（测试文档）：**{new:.3f}**（此前没有生产版本）")
    nm, pm = r.get("new_metrics") or {}, r.get("production_metrics") or {}
    for k in ("theme_micro_f1", "measure_micro_f1", "theme_macro_f1", "measure_macro_f1"):
        if k in nm:
            lines.append(f"- {k}: {_f(pm.get(k)) if k in pm else '—'} → {_f(nm[k])}")
    lines.append(f"- 训练数据 {r.get('n_train', 0)} 个条款，其中校正 {r.get('corrections', 0)} 个；测试 {r.get('n_test', 0)} 个条款")
    if r.get("reason"):
        lines.append(f"\n<span class='pt-muted'>{html.escape(str(r['reason']))}</span>")
    return "\n".join(lines)


def versions_table(versions: Sequence[dict]) -> pd.DataFrame:
    recs = []
    for v in reversed(list(versions)):  # newest first
        mm = v.get("main_metric")
        recs.append({
            "版本": v.get("version", ""),
            "状态": {"production": "● 生产", "candidate": "候选", "retired": "退役"}.get(v.get("status"), v.get("status", "")),
            "创建时间": str(v.get("created_at", ""))[:16].replace("T", " "),
            "父版本": v.get("parent") or "",
            "训练条款": v.get("n_train", ""),
            "校正": v.get("corrections", ""),
            "mean micro-F1": "" if mm is None else f"{float(mm):.3f}",
            "变化": "" if v.get("delta") is None else f"{float(v['delta']):+.3f}",
        })
    return pd.DataFrame(recs, columns=["版本", "状态", "创建时间", "父版本", "训练条款", "校正", "mean micro-F1", "变化"])
