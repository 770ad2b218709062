"""Working tool for hand labeling (not part of the package).

    python labels/tools/labeltool.py show  labels/work/corpus/<doc>.unlabeled.jsonl 0 30
    python labels/tools/labeltool.py segment-corpus [labels/sources/corpus] [labels/work/corpus]
    python labels/tools/labeltool.py apply labels/work/corpus/<doc>.unlabeled.jsonl \
        labels/work/corpus/<doc>.decisions.tsv /tmp/<doc>.labeled.jsonl

A decisions file has one line per clause, written by the annotator after reading it:

    <clause_id> TAB <themes> TAB <measures> [TAB # note]

themes / measures are comma- or space-separated ids or the short codes of
:mod:`policytag.data.gold` (Y F W E O I; GP OR RG IE FU TA FB CM ET AC CO); "-" is none.
Lines starting with # are comments. `apply` is the annotator's check: it refuses to write
unless every clause of the unlabeled file has exactly one decision and every code is known.
The gold file itself is built by `policytag labels build` (decisions + resolutions).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from policytag.data.gold import read_decisions
from policytag.data.taxonomy import load_taxonomy
from policytag.errors import PolicytagError
from policytag.fileio import atomic_write_text


def read(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(l) for l in fh if l.strip()]


def show(path, start=0, n=30):
    recs = read(path)
    if recs and any(recs[0].get(k) for k in ("doc_title", "genre", "level", "year")):
        r0 = recs[0]
        print(f"== {r0['doc_id']}: {r0.get('doc_title', '')} [{r0.get('genre', '')}, {r0.get('level', '')}, "
              f"{r0.get('year') or '?'}]")
    for i, r in enumerate(recs[int(start):int(start) + int(n)], int(start)):
        print(f"[{i}] {r['clause_id']} | {r.get('context', '')} | {r['text']}")
    print(f"-- {len(recs)} clauses in {path}")


def apply(unlabeled, decisions, out, source="gold"):
    recs = read(unlabeled)
    try:
        dec = read_decisions(decisions, load_taxonomy())
    except PolicytagError as e:
        raise SystemExit(str(e)) from None
    ids = [r["clause_id"] for r in recs]
    missing = [i for i in ids if i not in dec]
    extra = [i for i in dec if i not in set(ids)]
    if extra:
        raise SystemExit(f"decisions for unknown clauses: {extra[:5]}")
    if missing:
        print(f"{len(missing)} clause(s) still undecided, first: {missing[:3]}")
        raise SystemExit(1)
    lines = []
    for r in recs:
        d = dec[r["clause_id"]]
        lines.append(json.dumps({**r, "themes": d.themes, "measures": d.measures, "source": source},
                                ensure_ascii=False))
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} labeled clauses to {out}")


def segment_corpus(corpus="labels/sources/corpus", out="labels/work/corpus"):
    """Segment every corpus folder (meta.json + raw.txt or part-NN.txt) with the project's
    segmenter and write ``<out>/<slug>.unlabeled.jsonl`` (clauses with doc metadata, no
    labels); prints clauses per document, per genre and the total. Reproducible: the
    output depends only on the corpus folders and the code."""
    from collections import Counter

    from policytag.clause import write_jsonl
    from policytag.text.ingestion import load_source
    from policytag.text.segmentation import segment

    corpus, out = Path(corpus), Path(out)
    folders = sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))
    total, per_genre, empty = 0, Counter(), []
    for folder in folders:
        doc = load_source(folder)
        clauses = segment(doc)
        write_jsonl(out / f"{doc.doc_id}.unlabeled.jsonl", clauses, labels=False)
        genre = doc.meta.get("source_meta", {}).get("genre", "")
        print(f"{len(clauses):4d}  {doc.doc_id}  [{genre}]")
        total += len(clauses)
        per_genre[genre] += len(clauses)
        if not clauses:
            empty.append(doc.doc_id)
    print("-- per genre: " + ", ".join(f"{g} {n}" for g, n in per_genre.most_common()))
    print(f"-- {total} clauses in {len(folders)} documents written to {out}" +
          (f"; no clauses: {', '.join(empty)}" if empty else ""))
    return total


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"show": show, "apply": apply, "segment-corpus": segment_corpus}[cmd](*args)
