"""Working tool for hand labeling (not part of the package).

    python labels/tools/labeltool.py show  labels/work/cast-2021.unlabeled.jsonl 0 30
    python labels/tools/labeltool.py segment-corpus [labels/sources/corpus] [labels/work/corpus]
    python labels/tools/labeltool.py apply labels/work/cast-2021.unlabeled.jsonl \
        labels/work/cast-2021.decisions.tsv labels/work/cast-2021.pass1.jsonl
    python labels/tools/labeltool.py merge labels/work/pass1.jsonl labels/work/*.pass1.jsonl
    python labels/tools/labeltool.py resolve labels/work/pass1.jsonl \
        labels/work/resolutions.tsv labels/clauses.jsonl

A decisions file has one line per clause, written by the annotator after reading it:

    <clause_id> TAB <themes> TAB <measures> [TAB # note]

themes / measures are comma- or space-separated ids or the short codes below; "-" is
none. Lines starting with # are comments. `apply` refuses to write unless every clause
of the unlabeled file has exactly one decision and every code is known.

`resolve` writes the gold file: the merged first pass with the final labels of the
clauses listed in a resolutions file (same format; each line replaces that clause's
labels), after the disagreements with the second pass were discussed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from policytag.clause import atomic_write_text
from policytag.data.taxonomy import load_taxonomy

THEME_CODES = {"Y": "youth", "F": "farmers", "W": "workers", "E": "elderly", "O": "officials",
               "I": "infrastructure"}
MEASURE_CODES = {"GP": "goal_planning", "OR": "organization", "RG": "regulation",
                 "IE": "incentive_evaluation", "FU": "funding", "TA": "talent",
                 "FB": "facility_building", "CM": "content_media", "ET": "education_training",
                 "AC": "activities", "CO": "cooperation_market"}


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


def parse_ids(field, codes, allowed, where):
    field = field.strip()
    if field in ("", "-"):
        return []
    out = []
    for tok in field.replace(",", " ").split():
        lid = codes.get(tok.upper(), tok)
        if lid not in allowed:
            raise SystemExit(f"{where}: unknown label {tok!r}")
        if lid not in out:
            out.append(lid)
    return out


def read_decisions(path, tax):
    dec = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise SystemExit(f"{path}:{lineno}: expected clause_id TAB themes TAB measures")
        cid = parts[0].strip()
        if cid in dec:
            raise SystemExit(f"{path}:{lineno}: {cid} decided twice")
        where = f"{path}:{lineno}"
        dec[cid] = (parse_ids(parts[1], THEME_CODES, set(tax.themes), where),
                    parse_ids(parts[2], MEASURE_CODES, set(tax.measures), where))
    return dec


def apply(unlabeled, decisions, out, source="gold"):
    tax = load_taxonomy()
    recs = read(unlabeled)
    dec = read_decisions(decisions, tax)
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
        th, me = dec[r["clause_id"]]
        lines.append(json.dumps({**r, "themes": th, "measures": me, "source": source}, ensure_ascii=False))
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} labeled clauses to {out}")


def merge(out, *files):
    lines = []
    for f in files:
        lines.extend(json.dumps(r, ensure_ascii=False) for r in read(f))
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} clauses from {len(files)} file(s) to {out}")


def resolve(merged, resolutions, out):
    tax = load_taxonomy()
    recs = read(merged)
    dec = read_decisions(resolutions, tax)
    ids = {r["clause_id"] for r in recs}
    extra = [i for i in dec if i not in ids]
    if extra:
        raise SystemExit(f"resolutions for unknown clauses: {extra[:5]}")
    changed = 0
    lines = []
    for r in recs:
        if r["clause_id"] in dec:
            th, me = dec[r["clause_id"]]
            if (sorted(th), sorted(me)) != (sorted(r["themes"]), sorted(r["measures"])):
                changed += 1
            r = {**r, "themes": th, "measures": me}
        lines.append(json.dumps(r, ensure_ascii=False))
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} clauses to {out}; {changed} relabeled by {resolutions}")


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
    {"show": show, "apply": apply, "merge": merge, "resolve": resolve,
     "segment-corpus": segment_corpus}[cmd](*args)
