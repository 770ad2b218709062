"""``policytag labels ...``: validate, inspect and compare labeled clause files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from policytag import paths
from policytag.errors import PolicytagError

labels_app = typer.Typer(
    help="The labeled clause data: validate files, print statistics, compare labeling passes.",
    no_args_is_help=True,
)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)  # messages stay one grep-able line


def _check_splits(gold_docs: set[str]) -> list[str]:
    """Problems of labels/splits.yaml against the documents of the gold file."""
    from policytag.data.dataset import load_splits

    if not paths.SPLITS_FILE.exists():
        return [f"{paths.SPLITS_FILE}: splits file not found"]
    try:
        sp = load_splits()
    except PolicytagError as e:
        return [str(e)]
    problems = []
    named = set(sp["test_docs"]) | set(sp["dev_docs"]) | {d for f in sp["folds"] for d in f}
    for d in sorted(named - gold_docs):
        problems.append(f"{paths.SPLITS_FILE}: document {d!r} is not in the gold file")
    if sp["folds"]:
        in_folds = {d for f in sp["folds"] for d in f}
        for d in sorted(gold_docs - in_folds - set(sp["test_docs"])):
            problems.append(f"{paths.SPLITS_FILE}: gold document {d!r} is neither a test document nor in a fold")
        for d in sorted(in_folds & set(sp["test_docs"])):
            problems.append(f"{paths.SPLITS_FILE}: test document {d!r} is also in a cross-validation fold")
    if not sp["test_docs"]:
        problems.append(f"{paths.SPLITS_FILE}: no test_docs")
    return problems


@labels_app.command("validate")
def validate(
    files: Optional[List[Path]] = typer.Argument(
        None, help="JSON Lines clause files (default: the shipped gold file labels/clauses.jsonl)."
    ),
    any_source: bool = typer.Option(
        False, "--any-source", help="Accept any 'source' value (default: every clause must say \"gold\")."
    ),
    unlabeled: bool = typer.Option(
        False, "--unlabeled", help="Clauses need not carry themes/measures (segmenter output)."
    ),
    taxonomy: Optional[Path] = typer.Option(None, help="Taxonomy YAML (default: labels/taxonomy.yaml)."),
    quiet_warnings: bool = typer.Option(False, "--no-warnings", help="Do not print warnings."),
) -> None:
    """Check clause files: JSON, required fields, known label ids, duplicate clause ids.

    Lists every problem as file:line (clause_id): message and exits 1 if there is any.
    Validating the shipped gold file also checks labels/splits.yaml against it.
    """
    from policytag.data.dataset import check_file
    from policytag.data.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    default = not files
    files = list(files) if files else [paths.GOLD_FILE]
    con = _console()
    n_err = 0
    for f in files:
        res = check_file(f, tax, require_labels=not unlabeled,
                         require_source=None if (any_source or unlabeled) else "gold")
        for issue in res.errors:
            con.print(f"[red]error[/red] {issue}")
        if not quiet_warnings:
            for issue in res.warnings:
                con.print(f"[yellow]warning[/yellow] {issue}")
        extra = []
        if default and res.clauses:
            extra = _check_splits({c.doc_id for c in res.clauses})
            for p in extra:
                con.print(f"[red]error[/red] {p}")
        errs = len(res.errors) + len(extra)
        n_err += errs
        docs = len({c.doc_id for c in res.clauses})
        status = "[green]ok[/green]" if not errs else f"[red]{errs} error(s)[/red]"
        con.print(f"{f}: {len(res.clauses)} valid clause(s) from {docs} document(s), "
                  f"{status}, {len(res.warnings)} warning(s); taxonomy {tax.version}")
    if n_err:
        raise typer.Exit(1)


def _split_of(per_doc: dict) -> dict[str, str]:
    from policytag.data.dataset import load_splits

    out: dict[str, str] = {}
    if not paths.SPLITS_FILE.exists():
        return out
    sp = load_splits()
    for d in per_doc:
        out[d] = "test" if d in sp["test_docs"] else "dev" if d in sp["dev_docs"] else "train"
    for i, fold in enumerate(sp["folds"]):
        for d in fold:
            if d in out:
                out[d] += f" / fold {i}"
    return out


def _label_table(counts: dict, tax, n: int, minimum: int) -> Table:
    t = Table(title="Clauses per label", box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    for col in ("dimension", "id", "name", "family", "clauses", "share"):
        t.add_column(col, justify="right" if col in ("clauses", "share") else "left", no_wrap=True)
    for lid, v in counts.items():
        lab = tax[lid]
        flag = f"[yellow]{v} (<{minimum})[/yellow]" if v < minimum else str(v)
        t.add_row(lab.dimension[:-1], lid, lab.zh, lab.family or "", flag, f"{v / n:.1%}" if n else "-")
    return t


def _group_table(title: str, rows: dict, tax, labels: list[str]) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    t.add_column("group", no_wrap=True)
    for col in ["docs", "clauses", "no theme", "no measure"] + labels:
        t.add_column(col if col in ("docs", "clauses", "no theme", "no measure") else col[:6], justify="right")
    for g, r in rows.items():
        t.add_row(g, str(r["documents"]), str(r["clauses"]), str(r["no_theme"]), str(r["no_measure"]),
                  *[str(r[l]) if r[l] else "·" for l in labels])
    return t


def _doc_table(per_doc: dict, split_of: dict, tax) -> Table:
    t = Table(title="Clauses per document", box=box.SIMPLE_HEAD)
    t.add_column("document", no_wrap=True)
    if split_of:
        t.add_column("split")
    for col in ("clauses", "no theme", "no measure", "theme labels", "measure labels"):
        t.add_column(col, justify="right")
    for d, row in per_doc.items():
        cells = [d] + ([split_of.get(d, "")] if split_of else [])
        cells += [str(row["clauses"]), str(row["no_theme"]), str(row["no_measure"]),
                  str(sum(row[l] for l in tax.themes)), str(sum(row[l] for l in tax.measures))]
        t.add_row(*cells)
    return t


def _cooccurrence_table(co, tax, wide: bool) -> Table:
    from policytag.data.dataset import NO_THEME

    rows, cols = (list(co.index), list(co.columns)) if wide else (list(co.columns), list(co.index))

    def cell(r, c):
        return int(co.loc[r, c]) if wide else int(co.loc[c, r])

    def header(lid: str) -> str:
        if lid == NO_THEME:
            return lid if wide else "none"
        return tax[lid].zh if wide else lid

    caption = "clauses carrying both labels"
    if not wide:
        caption += "; transposed to fit the terminal; none = clauses without a theme"
    t = Table(title="Theme × measure co-occurrence", caption=caption, box=box.SIMPLE_HEAD,
              padding=(0, 1) if wide else (0, 0), pad_edge=False)
    t.add_column("theme" if wide else "measure", no_wrap=True)
    for c in cols:
        t.add_column(header(c), justify="right", no_wrap=True)
    for r in rows:
        label = (r if r == NO_THEME else f"{tax[r].zh} {r}") if wide else tax[r].zh
        t.add_row(label, *[str(cell(r, c)) if cell(r, c) else "·" for c in cols])
    return t


@labels_app.command("stats")
def stats(
    file: Optional[Path] = typer.Argument(None, help="Labeled clause file (default: labels/clauses.jsonl)."),
    minimum: int = typer.Option(30, "--min", help="Flag labels with fewer examples than this."),
    per_doc_tables: bool = typer.Option(False, "--per-doc", help="Also print the per-document tables."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON instead of tables."),
    taxonomy: Optional[Path] = typer.Option(None, help="Taxonomy YAML (default: labels/taxonomy.yaml)."),
) -> None:
    """Counts per label, per genre family, genre and level (and per document), and the theme × measure table."""
    from policytag.data.dataset import cooccurrence, doc_stats, group_stats, label_counts, load_gold
    from policytag.data.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    path = file or paths.GOLD_FILE
    clauses = load_gold(path, tax)
    counts = label_counts(clauses, tax)
    per_doc = doc_stats(clauses, tax)
    groups = {k: group_stats(clauses, k, tax) for k in ("genre_family", "genre", "level")}
    co = cooccurrence(clauses, tax)
    split_of = _split_of(per_doc) if file is None else {}
    rare = {k: v for k, v in counts.items() if v < minimum}
    if as_json:
        typer.echo(json.dumps({
            "file": str(path), "clauses": len(clauses), "taxonomy_version": tax.version,
            "labels": counts, "documents": per_doc, "splits": split_of, "groups": groups,
            "cooccurrence": {t: {m: int(co.loc[t, m]) for m in co.columns} for t in co.index},
            "rare": rare,
        }, ensure_ascii=False, indent=2))
        return
    con = _console()
    n = len(clauses)
    con.print(f"[bold]{path}[/bold]: {n} clauses, {len(per_doc)} documents, taxonomy {tax.version}; "
              f"{sum(1 for c in clauses if not c.themes)} without theme, "
              f"{sum(1 for c in clauses if not c.measures)} without measure")
    con.print(_label_table(counts, tax, n, minimum))
    for key, title in (("genre_family", "Per genre family"), ("level", "Per level"), ("genre", "Per genre")):
        con.print(_group_table(title + " (clauses per theme)", groups[key], tax, tax.themes))
    con.print(_group_table("Per genre family (clauses per measure)", groups["genre_family"], tax, tax.measures))
    if per_doc_tables:
        con.print(_doc_table(per_doc, split_of, tax))
    con.print(_cooccurrence_table(co, tax, con.width >= 150))
    if rare:
        con.print(f"[yellow]labels with fewer than {minimum} examples:[/yellow] "
                  + ", ".join(f"{k} ({v})" for k, v in rare.items()))


@labels_app.command("agreement")
def agreement_cmd(
    first: Optional[Path] = typer.Argument(None, help="First labeling pass (JSON Lines; all clauses)."),
    second: Optional[Path] = typer.Argument(None, help="Second, independent pass (a sample of the same clause ids)."),
    corpus: bool = typer.Option(False, "--corpus", help="The corpus passes: labels/work/corpus/*.decisions.tsv "
                                "against labels/work/corpus-pass2/*.decisions.tsv (no FIRST/SECOND needed)."),
    seeds: bool = typer.Option(False, "--seeds", help="The seed passes: labels/work/<doc>.decisions.tsv against "
                               "labels/work/pass2.decisions.tsv over pass2.sample.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    show: bool = typer.Option(False, "--show", help="List the clauses on which the passes disagree."),
    taxonomy: Optional[Path] = typer.Option(None, help="Taxonomy YAML (default: labels/taxonomy.yaml)."),
) -> None:
    """Inter-annotator agreement: Cohen's kappa per label (averaged) and micro-F1, per dimension."""
    from policytag.data.dataset import agreement, disagreements, load_gold
    from policytag.data.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    if corpus or seeds:
        from policytag.data.gold import corpus_passes

        a, b = corpus_passes(taxonomy=tax, seeds=seeds)
    elif first is None or second is None:
        raise PolicytagError("give FIRST and SECOND pass files, or --corpus")
    else:
        a, b = load_gold(first, tax), load_gold(second, tax)
    res = agreement(a, b, tax)
    if as_json:
        out = dict(res)
        if show:
            out["disagreements"] = disagreements(a, b)
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2, default=float))
        return
    con = _console()
    con.print(f"{res['n']} clauses labeled in both passes")
    t = Table(title="Agreement per dimension")
    for col in ("dimension", "mean κ (per label)", "micro-F1", "exact match"):
        t.add_column(col, justify="left" if col == "dimension" else "right")
    for dim in ("themes", "measures"):
        d = res[dim]
        k = d["kappa_mean"]
        t.add_row(dim, "-" if k is None else f"{k:.3f}", f"{d['micro_f1']:.3f}", f"{d['exact']:.1%}")
    con.print(t)
    t = Table(title="Cohen's κ per label")
    for col in ("id", "pass 1", "pass 2", "κ"):
        t.add_column(col, justify="left" if col == "id" else "right")
    for dim in ("themes", "measures"):
        for lid, k in res[dim]["kappa"].items():
            s1, s2 = res[dim]["support"][lid]
            t.add_row(lid, str(s1), str(s2), "-" if k is None else f"{k:.3f}")
    con.print(t)
    if show:
        for d in disagreements(a, b):
            con.print(f"[bold]{d['clause_id']}[/bold] {d['context']} | {d['text']}")
            for dim in ("themes", "measures"):
                if dim in d:
                    con.print(f"   {dim}: pass1={d[dim]['pass1']} pass2={d[dim]['pass2']}")


@labels_app.command("build")
def build_cmd(
    output: Path = typer.Option(paths.GOLD_FILE, "--output", "-o", help="Gold file to write."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 if the chain does not reproduce OUTPUT."),
    partial: bool = typer.Option(False, "--partial", help="Leave out documents that have no decisions file yet."),
) -> None:
    """Rebuild the gold file from the sources, the segmenter and the decision/resolution files."""
    from policytag.clause import write_jsonl, read_jsonl
    from policytag.data.gold import build_gold

    con = _console()
    res = build_gold(only_decided=partial)
    for o in res.orphans[:20]:
        con.print(f"[red]decision for a clause the segmenter no longer produces:[/red] {o}")
    if res.undecided:
        con.print(f"[red]{len(res.undecided)} clause(s) without a decision[/red], first: {', '.join(res.undecided[:5])}")
    if not res.ok:
        raise typer.Exit(1)
    docs = len({c.doc_id for c in res.clauses})
    if check:
        current = [json.dumps(r, ensure_ascii=False, sort_keys=True) for _, r in read_jsonl(output)]
        built = [json.dumps(c.to_dict(), ensure_ascii=False, sort_keys=True) for c in res.clauses]
        if current != built:
            con.print(f"[red]{output} differs from the rebuilt chain[/red] ({len(current)} vs {len(built)} clauses); "
                      "run `policytag labels build`")
            raise typer.Exit(1)
        con.print(f"{output} is reproduced by the chain: {len(built)} clauses, {docs} documents")
        return
    write_jsonl(output, res.clauses)
    con.print(f"wrote {len(res.clauses)} gold clauses of {docs} documents to {output} "
              f"({res.relabeled} relabeled by resolutions)")


@labels_app.command("remap")
def remap_cmd(
    write: bool = typer.Option(False, "--write", help="Rewrite decision files, resolutions and snapshots."),
) -> None:
    """After a segmenter change: carry decisions to the new clauses by text (never by position)."""
    from policytag.data.gold import remap_all

    con = _console()
    res = remap_all(write=write)
    for r in res:
        con.print(f"{r.doc_id}: {len(r.decisions)} decisions kept ({r.moved} moved to a new id), "
                  f"{len(r.dropped)} dropped {r.dropped[:4]}, {len(r.new)} new clause(s) to label {r.new[:4]}")
    con.print(f"{len(res)} document(s) changed" + ("" if write else " (dry run: add --write)"))


@labels_app.command("split")
def split_cmd(
    output: Path = typer.Option(paths.SPLITS_FILE, "--output", "-o", help="Splits file to write."),
    test_share: float = typer.Option(0.2, "--test-share", help="Share of the documents held out as the fixed test set."),
    folds: int = typer.Option(10, "--folds", "-k", help="Cross-validation folds over the other documents."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the stratified draw."),
) -> None:
    """Draw the fixed test documents (stratified by genre family and level) and the CV folds."""
    from policytag.clause import atomic_write_text
    from policytag.data.dataset import load_gold, make_splits, splits_yaml

    gold = load_gold()
    sp = make_splits(gold, test_share, folds, seed)
    atomic_write_text(output, splits_yaml(sp, gold))
    _console().print(f"wrote {output}: {len(sp['test_docs'])} test documents, {len(sp['folds'])} folds")


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels")
