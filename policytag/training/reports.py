"""Evaluation and cross-validation reports: JSON, Markdown and PNG charts (matplotlib, Agg)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag.clause import Clause
from policytag.config import _merge, load_config
from policytag.data import dataset as D
from policytag.fileio import atomic_write_bytes, atomic_write_text
from policytag.data.taxonomy import Taxonomy, load_taxonomy
from policytag.errors import PolicytagError


def _f(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def _cjk_font() -> str | None:
    """A font family that can draw Chinese, if one is installed (else charts use label ids)."""
    try:
        from matplotlib import font_manager as fm
    except ImportError:
        return None
    keys = ("CJK", "Noto Sans SC", "WenQuanYi", "SimHei", "Source Han", "PingFang", "Microsoft YaHei", "AR PL")
    for f in fm.fontManager.ttflist:
        if any(k.lower() in f.name.lower() for k in keys):
            return f.name
    return None


def _names(tax: Taxonomy, ids: list[str], font: str | None) -> list[str]:
    return [f"{tax[i].zh}\n{i}" if font else i for i in ids]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------ charts

def plot_f1_bars(systems: dict[str, dict[str, float | None]], label_ids: list[str], path: Path,
                 title: str, tax: Taxonomy | None = None) -> Path:
    """Grouped bars: per-label F1 of each system."""
    tax = tax or load_taxonomy()
    plt = _plt()
    font = _cjk_font()
    if font:
        plt.rcParams["font.family"] = [font, "DejaVu Sans"]
    n = len(systems)
    x = np.arange(len(label_ids))
    w = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(10, len(label_ids) * 0.75), 4.8))
    for i, (name, f1) in enumerate(systems.items()):
        vals = [np.nan if f1.get(lab) is None else f1[lab] for lab in label_ids]
        ax.bar(x + (i - (n - 1) / 2) * w, vals, width=w, label=name)
    ax.axvline(len(tax.themes) - 0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels(_names(tax, label_ids, font), rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cooccurrence(y: np.ndarray, n_themes: int) -> np.ndarray:
    """themes × measures counts: clauses carrying both the theme and the measure."""
    y = np.asarray(y).astype(int)
    return y[:, :n_themes].T @ y[:, n_themes:]


def plot_cooccurrence(panels: dict[str, np.ndarray], path: Path, title: str, tax: Taxonomy | None = None) -> Path:
    """Heat maps of theme × measure co-occurrence (e.g. gold next to predicted)."""
    tax = tax or load_taxonomy()
    plt = _plt()
    font = _cjk_font()
    if font:
        plt.rcParams["font.family"] = [font, "DejaVu Sans"]
    ncols = min(3, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.2 * nrows), squeeze=False,
                             constrained_layout=True)
    flat = axes.ravel().tolist()
    for ax in flat[len(panels):]:
        ax.axis("off")
    for ax, (name, m) in zip(flat, panels.items()):
        vmax = max(1, int(m.max()))  # each panel on its own scale; the numbers are printed in the cells
        im = ax.imshow(m, cmap="Blues", vmin=0, vmax=vmax)
        ax.set_xticks(range(len(tax.measures)))
        ax.set_xticklabels(_names(tax, tax.measures, font), rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(tax.themes)))
        ax.set_yticklabels(_names(tax, tax.themes, font), fontsize=7)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if m[i, j] > vmax * 0.6 else "black")
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ markdown

def dimension_table(systems: dict[str, dict]) -> str:
    rows = ["| system | themes micro F1 | themes macro F1 | themes exact | measures micro F1 | measures macro F1 | measures exact |",
            "|---|---|---|---|---|---|---|"]
    for name, m in systems.items():
        t, me = m["themes"], m["measures"]
        rows.append(f"| {name} | {_f(t['micro_f1'])} | {_f(t['macro_f1'])} | {_f(t['exact_match'])} | "
                    f"{_f(me['micro_f1'])} | {_f(me['macro_f1'])} | {_f(me['exact_match'])} |")
    return "\n".join(rows)


def per_label_table(systems: dict[str, dict], label_ids: list[str], tax: Taxonomy) -> str:
    names = list(systems)
    head = "| label | support | " + " | ".join(f"{n} P / R / F1" for n in names) + " |"
    rows = [head, "|---|---|" + "---|" * len(names)]
    for lab in label_ids:
        sup = next(iter(systems.values()))["per_label"][lab]["support"]
        cells = []
        for n in names:
            d = systems[n]["per_label"][lab]
            cells.append(f"{_f(d['precision'])} / {_f(d['recall'])} / **{_f(d['f1'])}**")
        rows.append(f"| {tax[lab].zh} `{lab}` | {sup} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def use_tables(systems: dict[str, dict]) -> str:
    """Per genre family and level, false labels on no-label clauses, calibration (ECE)."""
    names = [n for n, m in systems.items() if m.get("use")]
    if not names:
        return ""
    out = []
    for key, title in (("by_genre_family", "genre family"), ("by_level", "level")):
        groups = sorted({g for n in names for g in systems[n]["use"][key]})
        out += [f"Micro F1 by {title} (themes / measures):", "",
                f"| {title} | clauses | docs | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
        for g in groups:
            first = systems[names[0]]["use"][key].get(g, {})
            cells = [f"{_f(systems[n]['use'][key].get(g, {}).get('themes_micro_f1'))} / "
                     f"{_f(systems[n]['use'][key].get(g, {}).get('measures_micro_f1'))}" for n in names]
            out.append(f"| {g} | {first.get('n', '')} | {first.get('docs', '')} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["Clauses with no gold label that get one (lower is better), and calibration (expected calibration error):", "",
            "| system | no-measure clauses given a measure | no-theme clauses given a theme | ECE themes | ECE measures |",
            "|---|---|---|---|---|"]
    for n in names:
        u = systems[n]["use"]
        nm, nt = u["no_measures"], u["no_themes"]
        cal = u.get("calibration") or {}
        out.append(f"| {n} | {nm['predicted_some']}/{nm['n']} = {_f(nm['rate'])} | {nt['predicted_some']}/{nt['n']} = "
                   f"{_f(nt['rate'])} | {_f((cal.get('themes') or {}).get('ece'))} | {_f((cal.get('measures') or {}).get('ece'))} |")
    return "\n".join(out) + "\n"


def plot_reliability(systems: dict[str, dict], path: Path, title: str) -> Path | None:
    names = [n for n, m in systems.items() if (m.get("use") or {}).get("calibration")]
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, dim in zip(axes, ("themes", "measures")):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for n in names:
            bins = systems[n]["use"]["calibration"][dim]["bins"]
            ax.plot([b["mean_prob"] for b in bins], [b["observed"] for b in bins], marker="o", ms=3,
                    label=f"{n} (ECE {systems[n]['use']['calibration'][dim]['ece']:.3f})")
        ax.set_title(dim)
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed frequency")
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cv_table(cv: dict) -> str:
    rows = ["| system | themes micro F1 | themes macro F1 | themes exact | measures micro F1 | measures macro F1 | measures exact | time |",
            "|---|---|---|---|---|---|---|---|"]
    for name, s in cv["systems"].items():
        sm = s["summary"]

        def ms(dim, key):
            d = sm[dim][key]
            return f"{d['mean']:.3f} ± {d['std']:.3f}"

        rows.append(f"| {name} | {ms('themes', 'micro_f1')} | {ms('themes', 'macro_f1')} | {ms('themes', 'exact_match')} | "
                    f"{ms('measures', 'micro_f1')} | {ms('measures', 'macro_f1')} | {ms('measures', 'exact_match')} | "
                    f"{s['seconds']:.0f}s |")
    return "\n".join(rows)


# ------------------------------------------------------------------ writers

def _readable(files: dict[str, Path]) -> None:
    """atomic_write_text leaves 0600 files (mkstemp); reports are for sharing: 0644 under the umask."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for p in files.values():
        if Path(p).exists():
            os.chmod(p, 0o666 & ~umask)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def write_eval_report(report: dict, out_dir: str | Path, *, gold_y: np.ndarray, preds: dict[str, np.ndarray],
                      tax: Taxonomy | None = None) -> dict[str, Path]:
    """``report.json``, ``report.md``, ``f1_by_label.png``, ``cooccurrence.png`` in ``out_dir``."""
    tax = tax or load_taxonomy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    systems = report["systems"]
    label_ids = tax.label_ids
    files = {"json": out / "report.json", "markdown": out / "report.md",
             "f1_chart": out / "f1_by_label.png", "heatmap": out / "cooccurrence.png"}
    plot_f1_bars({n: {lab: m["per_label"][lab]["f1"] if m["per_label"][lab]["support"] else None for lab in label_ids}
                  for n, m in systems.items()}, label_ids, files["f1_chart"],
                 f"Per-label F1 on {report['data']['description']}", tax)
    panels = {"gold": cooccurrence(gold_y, len(tax.themes))}
    for n, p in preds.items():
        panels[n] = cooccurrence(p, len(tax.themes))
    plot_cooccurrence(panels, files["heatmap"], "theme × measure co-occurrence (clauses)", tax)
    write_json(files["json"], report)
    md = [f"# Evaluation of model {report['model']['version']}", "",
          f"Data: {report['data']['description']} — {report['data']['n_clauses']} clauses from "
          f"{len(report['data']['docs'])} document(s) ({', '.join(report['data']['docs'])}).", "",
          f"Model: `{report['model']['dir']}` ({report['model']['backend']}, base {report['model']['base']}).", ""]
    for note in report.get("notes", []):
        md += [f"- {note}"]
    md += ["", "## Per dimension", "", dimension_table(systems), "",
           "Micro F1 pools every decision of a dimension; macro F1 averages the labels present in this data; "
           "exact match: the predicted label set of the dimension equals the gold set.", "",
           "## Per label", "", per_label_table(systems, label_ids, tax), "",
           "![per-label F1](f1_by_label.png)", "", "![theme × measure co-occurrence](cooccurrence.png)", ""]
    files["reliability"] = out / "reliability.png"
    if plot_reliability(systems, files["reliability"], f"Reliability on {report['data']['description']}"):
        md += ["## Matching use", "", use_tables(systems), "![reliability](reliability.png)", ""]
    else:
        files.pop("reliability")
    atomic_write_text(files["markdown"], "\n".join(md))
    _readable(files)
    return files


def write_oof(cv: dict, path: Path) -> Path:
    """Every system's out-of-fold probabilities and decisions (rows in ``clause_ids`` order), so
    decision rules can be studied without retraining (``np.load(path)``)."""
    import io

    arrays: dict[str, Any] = {"clause_ids": np.asarray(cv.get("_clause_ids") or [], dtype=str),
                              "systems": np.asarray(list(cv["systems"]), dtype=str)}
    for i, s in enumerate(cv["systems"].values()):
        oof = s.get("_oof") or {}
        for key, arr in oof.items():
            arrays[f"{key}_{i}"] = np.asarray(arr)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_cv_run(report_dir: str | Path, gold: Sequence[Clause] | None = None) -> tuple[dict, dict, list, dict]:
    """A saved cross-validation (``train --cv K --report-dir DIR``) for replaying rules on it:
    ``(cv.json, the cv_oof.npz arrays, the gold clauses in the arrays' row order, the run's
    recorded config with keys added since taken from configs/default.yaml)``. ``gold``: the
    labeled clauses the run used (default: the shipped gold file)."""
    d = Path(report_dir)
    missing = [f for f in ("cv.json", "cv_oof.npz") if not (d / f).is_file()]
    if missing:
        raise PolicytagError(f"{d} is not a saved cross-validation (no {' or '.join(missing)}); "
                             "write one with `policytag train --cv K --report-dir DIR`")
    cv = json.loads((d / "cv.json").read_text(encoding="utf-8"))
    oof = dict(np.load(d / "cv_oof.npz"))
    by_id = {c.clause_id: c for c in (D.load_gold() if gold is None else gold)}
    unknown = [str(i) for i in oof["clause_ids"] if i not in by_id]
    if unknown:
        raise PolicytagError(f"{len(unknown)} clause(s) of the run in {d} are not in the labeled clauses "
                             f"(e.g. {unknown[0]}): the labels changed since; run the cross-validation again")
    clauses = [by_id[i] for i in oof["clause_ids"]]
    recorded = next(iter(cv["systems"].values()))["config"]
    base = _merge(load_config("default"), {k: v for k, v in recorded.items() if k != "backend"})
    return cv, oof, clauses, base


def write_cv_report(cv: dict, out_dir: str | Path, tax: Taxonomy | None = None, command: str = "") -> dict[str, Path]:
    tax = tax or load_taxonomy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "cv.json", "markdown": out / "cv.md", "f1_chart": out / "cv_f1_by_label.png"}
    plot_f1_bars({n: {lab: v["f1_mean"] for lab, v in s["summary"]["per_label"].items()}
                  for n, s in cv["systems"].items()}, tax.label_ids, files["f1_chart"],
                 f"Per-label F1, mean over {cv['k']} document-grouped folds", tax)
    files["oof"] = write_oof(cv, out / "cv_oof.npz")
    write_json(files["json"], {k: v for k, v in cv.items() if not k.startswith("_")}
               | {"systems": {n: {k: v for k, v in s.items() if not k.startswith("_")}
                              for n, s in cv["systems"].items()}})
    md = [f"# {cv['k']}-fold document-grouped cross-validation", "",
          f"{cv['n_clauses']} clauses from {cv['n_docs']} documents; data hash `{cv['data_hash'][:16]}…`. "
          "Held-out documents per fold: " + "; ".join(f"{i + 1}: {', '.join(d)}" for i, d in enumerate(cv["fold_docs"]))
          + ".", ""]
    if command:
        md += [f"Command: `{command}`", ""]
    md += ["Mean ± standard deviation over folds:", "", cv_table(cv), "",
           "Pooled over all held-out clauses (every clause predicted once, by the model that did not see its document):",
           "", dimension_table({n: s["pooled"] for n, s in cv["systems"].items()}), "",
           "Per-label F1 (mean over folds where the label occurs):", ""]
    names = list(cv["systems"])
    md += ["| label | support | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for lab in tax.label_ids:
        first = cv["systems"][names[0]]["summary"]["per_label"][lab]
        cells = [_f(cv["systems"][n]["summary"]["per_label"][lab]["f1_mean"]) for n in names]
        md.append(f"| {tax[lab].zh} `{lab}` | {first['support']} | " + " | ".join(cells) + " |")
    md += ["", "![per-label F1](cv_f1_by_label.png)", ""]
    pooled = {n: s["pooled"] for n, s in cv["systems"].items()}
    files["reliability"] = out / "cv_reliability.png"
    if plot_reliability(pooled, files["reliability"], "Reliability of pooled out-of-fold probabilities"):
        md += ["## Matching use (pooled out-of-fold predictions)", "", use_tables(pooled),
               "![reliability](cv_reliability.png)", ""]
    else:
        files.pop("reliability")
    atomic_write_text(files["markdown"], "\n".join(md))
    _readable(files)
    return files
