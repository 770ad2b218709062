"""``MODEL_CARD.md``: a Markdown template filled from a model's metadata and real metrics."""

from __future__ import annotations

from typing import Any

TEMPLATE = """# policytag model {version}

Tags clauses of Chinese science-popularization policy documents by **theme** (target group,
{n_themes} labels) and **measure type** (policy instrument, {n_measures} labels): one multi-label
classifier, one sigmoid output per label, per-label decision thresholds.

| | |
|---|---|
| backend | {backend} |
| base model | {base_name} |
| base model source | {base_source} |
| created | {created_at} |
| taxonomy version | {taxonomy_version} |
| training data | {n_train} clauses from {n_docs} documents ({train_docs}) |
| training-data hash | `{data_hash}` |
| input | {input_desc} |
| thresholds | {thresholds_source} |
| training | {training_desc} |

{base_warning}
## Metrics

All figures below were produced by this model (base: {base_name}).

{metrics_block}

Per-label decision thresholds:

{thresholds_table}

{gates_desc}

## Intended use and limits

- For policy analysts: a first pass of "policy instrument × target group" coding of
  science-popularization documents, meant to be reviewed and corrected in the app.
- Trained on a few hundred hand-labeled clauses from a handful of documents. Figures from so
  little data are noisy; document-grouped cross-validation (`policytag train --cv K`) is the
  better guide. Labels are defined by the project's labeling guide (LABELING.md).
- Documents unlike the training ones (other provinces' styles, laws, very long articles)
  will be tagged less reliably.

## Reproduce

```
{command}
```

Training configuration (as used):

```json
{config_json}
```
"""


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def metrics_table(m: dict[str, Any] | None, title: str) -> str:
    if not m:
        return ""
    rows = [f"**{title}** (n = {m.get('n', '?')})", "", "| dimension | micro F1 | macro F1 | exact match |",
            "|---|---|---|---|"]
    for dim in ("themes", "measures"):
        d = m.get(dim, {})
        rows.append(f"| {dim} | {_fmt(d.get('micro_f1'))} | {_fmt(d.get('macro_f1'))} | {_fmt(d.get('exact_match'))} |")
    if m.get("note"):
        rows += ["", f"_{m['note']}_"]
    return "\n".join(rows) + "\n"


def render_model_card(meta: dict[str, Any]) -> str:
    import json

    base = meta.get("base_model") or {}
    label_ids = meta.get("label_ids", [])
    n_themes = int(meta.get("n_themes", 6))
    metrics = meta.get("metrics") or {}
    blocks = []
    for key, title in (("test", "Fixed test documents"), ("cv", "Cross-validation"),
                       ("train_oof", "Out-of-fold on the training data"), ("train_fit", "Training data (fit)")):
        if metrics.get(key):
            blocks.append(metrics_table(metrics[key], title))
    metrics_block = "\n".join(blocks) or "_No metrics recorded._"
    th = meta.get("thresholds") or {}
    th_rows = ["| label | threshold |", "|---|---|"] + [f"| {lab} | {th.get(lab, 0.5):.2f} |" for lab in label_ids]
    g = meta.get("gates") or {}
    gate_lines = []
    for dim in ("themes", "measures"):
        if g.get(dim) is not None:
            score = ("mean of the highest probability and the TF-IDF part's probability that the clause has any "
                     f"{dim[:-1]}" if dim in (g.get("presence") or []) else "highest probability")
            gate_lines.append(f"- {dim}: no label when the {score} is below {float(g[dim]):.2f}")
    gates_desc = ("Per-dimension gates (tuned out of fold with the thresholds):\n\n" + "\n".join(gate_lines)
                  if gate_lines else "No per-dimension gates.")
    inp = meta.get("input") or {}
    input_desc = (f"clause text paired with its heading-path context (context truncated first), max "
                  f"{inp.get('max_length', '?')} tokens" if inp.get("use_context", True)
                  else "clause text only (context switched off)")
    if meta.get("backend") == "baseline":
        input_desc = ("character 1–3-gram TF-IDF of the clause" +
                      (" and of its heading path" if inp.get("use_context", True) else ""))
    if (meta.get("blend") or {}).get("tfidf_weight"):
        input_desc += (f"; its probabilities are averaged with a character n-gram TF-IDF model's "
                       f"({meta['blend'].get('what', '')}, files in `{meta['blend'].get('dir', 'tfidf')}/`)")
    tr = meta.get("training") or {}
    training_desc = ", ".join(f"{k} {v}" for k, v in tr.items() if k in ("device", "epochs", "steps", "seconds", "bf16"))
    if tr.get("trained_layers"):
        training_desc += (f"; encoder blocks trained: {tr['trained_layers']} "
                          f"({tr.get('trainable_params', 0):,} of {tr.get('total_params', 0):,} parameters)")
    warn = ""
    if base.get("approximation"):
        warn = f"> **Base model note.** {base.get('approximation')}\n"
    cfg = meta.get("config") or {}
    docs = meta.get("train_docs") or []
    return TEMPLATE.format(
        version=meta.get("version", "?"), n_themes=n_themes, n_measures=len(label_ids) - n_themes,
        backend=meta.get("backend", "?"), base_name=base.get("name", "?"),
        base_source=" / ".join(str(x) for x in (base.get("source"), base.get("original")) if x) or "—",
        created_at=meta.get("created_at", "?"), taxonomy_version=meta.get("taxonomy_version", "?"),
        n_train=meta.get("n_train_clauses", "?"), n_docs=len(docs), train_docs=", ".join(docs) or "—",
        data_hash=meta.get("data_hash", "?"), input_desc=input_desc,
        thresholds_source=meta.get("thresholds_source", "?"), training_desc=training_desc or "—",
        base_warning=warn, metrics_block=metrics_block, thresholds_table="\n".join(th_rows), gates_desc=gates_desc,
        command=(f"policytag train --config {cfg.get('_source') or meta.get('config_source') or 'default'}"
                 + (" --backend baseline" if meta.get("backend") == "baseline" else "")),
        config_json=json.dumps(cfg, ensure_ascii=False, indent=2),
    )
