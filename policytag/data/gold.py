"""The gold file is built, not edited: sources + segmenter + human decisions → ``labels/clauses.jsonl``.

The chain (``policytag labels build``):

1. every source document (the five seeds ``labels/sources/*.txt`` with ``sources/meta.yaml``,
   and every corpus folder ``labels/sources/corpus/<slug>/``) is read and segmented by the
   project's own ingestion and segmenter, with its document metadata;
2. each clause takes the first-pass annotator's decision from its decisions file
   (``labels/work/<doc>.decisions.tsv`` for the seeds, ``labels/work/corpus/<slug>.decisions.tsv``
   for the corpus): ``clause_id TAB themes TAB measures [TAB # note]``;
3. the resolutions files (``labels/work/resolutions.tsv``, ``labels/work/corpus/resolutions.tsv``:
   the final labels of clauses changed after comparing the two passes) replace those labels.

Every clause must have exactly one decision and every decision must name an existing clause,
so a change to the segmenter that changes the clauses shows up here (and in the test that
checks the chain reproduces the shipped gold file) instead of silently shifting labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from policytag import paths
from policytag.clause import Clause
from policytag.data.taxonomy import Taxonomy, load_taxonomy
from policytag.errors import InputError
from policytag.text.ingestion import load_source
from policytag.text.segmentation import segment

THEME_CODES = {"Y": "youth", "F": "farmers", "W": "workers", "E": "elderly", "O": "officials",
               "I": "infrastructure"}
MEASURE_CODES = {"GP": "goal_planning", "OR": "organization", "RG": "regulation",
                 "IE": "incentive_evaluation", "FU": "funding", "TA": "talent",
                 "FB": "facility_building", "CM": "content_media", "ET": "education_training",
                 "AC": "activities", "CO": "cooperation_market"}


@dataclass(frozen=True)
class Decision:
    clause_id: str
    themes: list[str]
    measures: list[str]
    note: str = ""
    where: str = ""


@dataclass
class GoldBuild:
    clauses: list[Clause]
    undecided: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    relabeled: int = 0

    @property
    def ok(self) -> bool:
        return not self.undecided and not self.orphans


def _parse_ids(text: str, codes: dict[str, str], dimension: str, tax: Taxonomy, where: str) -> list[str]:
    text = text.strip()
    if text in ("", "-"):
        return []
    out: list[str] = []
    for tok in text.replace(",", " ").split():
        lid = codes.get(tok.upper(), tok)
        for lab in tax.validate([lid], dimension, where):
            if lab not in out:
                out.append(lab)
    return out


def read_decisions(path: str | os.PathLike, taxonomy: Taxonomy | None = None) -> dict[str, Decision]:
    """Decisions keyed by clause id; unknown codes and duplicate ids name file:line."""
    tax = taxonomy or load_taxonomy()
    out: dict[str, Decision] = {}
    p = Path(path)
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        where = f"{p}:{lineno}"
        if len(parts) < 3:
            raise InputError(f"{where}: expected clause_id TAB themes TAB measures [TAB # note]")
        cid = parts[0].strip()
        if cid in out:
            raise InputError(f"{where}: {cid} is decided twice")
        note = "\t".join(parts[3:]).strip().lstrip("#").strip()
        out[cid] = Decision(cid, _parse_ids(parts[1], THEME_CODES, "themes", tax, where),
                            _parse_ids(parts[2], MEASURE_CODES, "measures", tax, where), note, where)
    return out


def source_documents(sources_dir: Path | None = None) -> list[Path]:
    """The seed files and corpus folders, in a fixed order (seeds first)."""
    root = Path(sources_dir or paths.SOURCES_DIR)
    seeds = sorted(root.glob("*.txt"))
    corpus_dir = root / "corpus"
    corpus = sorted(p for p in corpus_dir.iterdir() if p.is_dir()) if corpus_dir.is_dir() else []
    return seeds + corpus


def segment_sources(sources_dir: Path | None = None) -> dict[str, list[Clause]]:
    """Clauses of every source document, keyed by doc id (what the labelers labeled)."""
    out: dict[str, list[Clause]] = {}
    for src in source_documents(sources_dir):
        doc = load_source(src)
        out[doc.doc_id] = segment(doc)
    return out


def decisions_file(doc_id: str, seed: bool, work_dir: Path) -> Path:
    return work_dir / f"{doc_id}.decisions.tsv" if seed else work_dir / "corpus" / f"{doc_id}.decisions.tsv"


def build_gold(sources_dir: Path | None = None, work_dir: Path | None = None,
               taxonomy: Taxonomy | None = None, only_decided: bool = False) -> GoldBuild:
    """Run the chain. ``only_decided=True`` leaves out documents without a decisions file
    (work in progress) instead of reporting their clauses as undecided."""
    tax = taxonomy or load_taxonomy()
    work = Path(work_dir or paths.LABELS_DIR / "work")
    seeds = {p.stem for p in Path(sources_dir or paths.SOURCES_DIR).glob("*.txt")}
    resolutions: dict[str, Decision] = {}
    for res in (work / "resolutions.tsv", work / "corpus" / "resolutions.tsv"):
        if res.exists():
            resolutions.update(read_decisions(res, tax))
    build = GoldBuild([])
    seen: set[str] = set()
    for src in source_documents(sources_dir):
        doc = load_source(src)
        clauses = segment(doc)
        dec_path = decisions_file(doc.doc_id, src.stem in seeds and src.is_file(), work)
        if not dec_path.exists():
            if not only_decided:
                build.undecided.extend(c.clause_id for c in clauses)
            continue
        decisions = read_decisions(dec_path, tax)
        ids = {c.clause_id for c in clauses}
        build.orphans.extend(f"{d.where} {d.clause_id}" for d in decisions.values() if d.clause_id not in ids)
        for c in clauses:
            d = decisions.get(c.clause_id)
            if d is None:
                build.undecided.append(c.clause_id)
                continue
            final = resolutions.get(c.clause_id, d)
            if final is not d and (sorted(final.themes), sorted(final.measures)) != (sorted(d.themes), sorted(d.measures)):
                build.relabeled += 1
            c.themes, c.measures, c.source = list(final.themes), list(final.measures), "gold"
            build.clauses.append(c)
            seen.add(c.clause_id)
    build.orphans.extend(f"{r.where} {cid}" for cid, r in resolutions.items() if cid not in seen)
    return build


def corpus_passes(work_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                  seeds: bool = False) -> tuple[list[Clause], list[Clause]]:
    """The two passes over the corpus second-pass sample: (first pass, second pass) clauses
    of the sampled clause ids, from ``work/corpus/<doc>.decisions.tsv`` (first) and
    ``work/corpus-pass2/<labeler>.decisions.tsv`` over ``<labeler>.sample.jsonl`` (second).
    Sample clauses whose first-pass file does not exist yet are left out."""
    from policytag.clause import load_clauses

    tax = taxonomy or load_taxonomy()
    work = Path(work_dir or paths.LABELS_DIR / "work")
    first, second = [], []
    cache: dict[str, dict[str, Decision]] = {}
    texts: dict[str, dict[str, str]] = {}  # doc -> normalized text -> current clause id
    pass1_dir = work if seeds else work / "corpus"
    samples = [work / "pass2.sample.jsonl"] if seeds else sorted((work / "corpus-pass2").glob("*.sample.jsonl"))
    for sample in samples:
        dec_file = sample.with_name(sample.name.replace(".sample.jsonl", ".decisions.tsv"))
        if not dec_file.exists():
            continue
        p2 = read_decisions(dec_file, tax)
        for c in load_clauses(sample):
            if c.doc_id not in cache:
                f = pass1_dir / f"{c.doc_id}.decisions.tsv"
                cache[c.doc_id] = read_decisions(f, tax) if f.exists() else {}
                snap = pass1_dir / f"{c.doc_id}.unlabeled.jsonl"
                texts[c.doc_id] = {_norm(s.text): s.clause_id for s in load_clauses(snap)} if snap.exists() else {}
            # the sample was drawn before later segmenter fixes: find its clause by text
            now_id = texts[c.doc_id].get(_norm(c.text), c.clause_id if not texts[c.doc_id] else None)
            d1, d2 = cache[c.doc_id].get(now_id) if now_id else None, p2.get(c.clause_id)
            if d1 is None or d2 is None:
                continue
            first.append(Clause(doc_id=c.doc_id, clause_id=c.clause_id, text=c.text, context=c.context,
                                themes=list(d1.themes), measures=list(d1.measures)))
            second.append(Clause(doc_id=c.doc_id, clause_id=c.clause_id, text=c.text, context=c.context,
                                 themes=list(d2.themes), measures=list(d2.measures)))
    return first, second


# --------------------------------------------------------------------------- re-segmenting

@dataclass
class Remap:
    doc_id: str
    decisions: list[Decision]
    dropped: list[str]      # labeled clauses the segmenter no longer produces (e.g. junk it now removes)
    new: list[str]          # clauses without a decision (the segmenter now splits differently)
    moved: int              # decisions carried to a clause whose id changed
    id_map: dict[str, str] = field(default_factory=dict)  # old clause id -> new clause id


def _norm(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def remap_document(snapshot: list[Clause], decisions: dict[str, Decision], clauses: list[Clause]) -> Remap:
    """Carry decisions made on ``snapshot`` (what the labeler saw) to ``clauses`` (what the
    segmenter produces now) by clause text — exact first, then ignoring punctuation and
    spaces — never by position, so a removed junk line cannot shift labels onto other clauses."""
    by_text: dict[str, list[str]] = {}
    by_norm: dict[str, list[str]] = {}
    for c in snapshot:
        if c.clause_id in decisions:
            by_text.setdefault(c.text, []).append(c.clause_id)
            by_norm.setdefault(_norm(c.text), []).append(c.clause_id)
    used: set[str] = set()
    out, new, moved = [], [], 0
    id_map: dict[str, str] = {}
    for c in clauses:
        cands = [i for i in by_text.get(c.text, []) if i not in used] or \
                [i for i in by_norm.get(_norm(c.text), []) if i not in used]
        if not cands:
            new.append(c.clause_id)
            continue
        old = cands[0]
        used.add(old)
        id_map[old] = c.clause_id
        d = decisions[old]
        moved += old != c.clause_id
        out.append(Decision(c.clause_id, d.themes, d.measures, d.note, d.where))
    dropped = [c.clause_id for c in snapshot if c.clause_id in decisions and c.clause_id not in used]
    return Remap(snapshot[0].doc_id if snapshot else "", out, dropped, new, moved, id_map)


def _codes(ids: list[str], codes: dict[str, str]) -> str:
    inv = {v: k for k, v in codes.items()}
    return " ".join(inv.get(i, i) for i in ids) or "-"


def write_decisions(path: Path, decisions: list[Decision], header: str) -> None:
    from policytag.clause import atomic_write_text

    lines = [header.rstrip("\n")]
    for d in decisions:
        note = f"\t# {d.note}" if d.note else ""
        lines.append(f"{d.clause_id}\t{_codes(d.themes, THEME_CODES)}\t{_codes(d.measures, MEASURE_CODES)}{note}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def snapshot_file(doc_id: str, seed: bool, work_dir: Path) -> Path:
    return work_dir / f"{doc_id}.unlabeled.jsonl" if seed else work_dir / "corpus" / f"{doc_id}.unlabeled.jsonl"


def remap_all(sources_dir: Path | None = None, work_dir: Path | None = None, write: bool = False,
              taxonomy: Taxonomy | None = None) -> list[Remap]:
    """After a segmenter change: carry every document's decisions (and the resolutions) to the
    clauses the segmenter now produces; with ``write=True`` rewrite the decision files, the
    resolutions and the labelers' snapshots (``*.unlabeled.jsonl``). Clauses left without a
    decision are listed at the end of their decisions file as ``# UNDECIDED`` lines to label."""
    from policytag.clause import load_clauses, write_jsonl

    tax = taxonomy or load_taxonomy()
    work = Path(work_dir or paths.LABELS_DIR / "work")
    seeds = {p.stem for p in Path(sources_dir or paths.SOURCES_DIR).glob("*.txt")}
    results, id_map = [], {}
    for src in source_documents(sources_dir):
        doc = load_source(src)
        seed = src.is_file() and src.stem in seeds
        dec_path, snap_path = decisions_file(doc.doc_id, seed, work), snapshot_file(doc.doc_id, seed, work)
        if not dec_path.exists() or not snap_path.exists():
            continue
        clauses = segment(doc)
        snapshot = load_clauses(snap_path)
        r = remap_document(snapshot, read_decisions(dec_path, tax), clauses)
        r.doc_id = doc.doc_id
        id_map.update(r.id_map)
        same = [c.clause_id for c in clauses] == [c.clause_id for c in snapshot] and \
            [c.text for c in clauses] == [c.text for c in snapshot]
        if same:
            continue
        results.append(r)
        if write:
            header = "\n".join(ln for ln in dec_path.read_text(encoding="utf-8").splitlines()[:1] if ln.startswith("#"))
            write_decisions(dec_path, r.decisions, header or f"# {doc.doc_id}: decisions")
            if r.new:
                by_id = {c.clause_id: c for c in clauses}
                with dec_path.open("a", encoding="utf-8") as fh:
                    for cid in r.new:
                        fh.write(f"# UNDECIDED {cid} | {by_id[cid].context} | {by_id[cid].text}\n")
            write_jsonl(snap_path, clauses, labels=False)
    if write:
        for res in (work / "resolutions.tsv", work / "corpus" / "resolutions.tsv"):
            if not res.exists():
                continue
            lines = []
            for ln in res.read_text(encoding="utf-8").splitlines():
                cid = ln.split("\t", 1)[0]
                if not ln.startswith("#") and cid in id_map and id_map[cid] != cid:
                    ln = id_map[cid] + ln[len(cid):]
                lines.append(ln)
            from policytag.clause import atomic_write_text

            atomic_write_text(res, "\n".join(lines) + "\n")
    return results
