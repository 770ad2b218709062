"""Command-line inputs -> the files to read: the one expansion that ``segment``, ``predict``
and ``review-queue`` share.

An input is a file, a directory (searched recursively; hidden files and folders are
skipped) or a glob pattern (``docs/**/*.pdf``). A file named explicitly is always read
(ingestion says why when it cannot be); inside a directory, only the types policytag
reads are taken. A document type policytag cannot read (``.doc``, ``.wps``, ``.rtf``,
``.ofd``) is reported as a skip that says what to do; other files there (images,
spreadsheets, ...) are merely ignored (reported, not counted as failures).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from policytag.errors import OutputError
from policytag.fileio import same_file

CLAUSE_SUFFIXES = (".jsonl",)
#: document types that ingestion knows but cannot read: a skip that counts as a failure
UNREADABLE_DOCUMENTS = (".doc", ".wps", ".rtf", ".ofd")


@dataclass
class Skip:
    """An input that was not (fully) read, and why.

    ``failed`` is False for files merely ignored while walking a directory (hidden files,
    types policytag does not read) and for warnings; those do not change the exit code.
    ``warning`` marks an input that was read with something dropped (the reason says where).
    """

    path: str
    reason: str
    failed: bool = True
    warning: bool = False


@dataclass
class InputFile:
    path: Path
    kind: str  # "document" | "clauses"
    explicit: bool = True  # named on the command line (not found by walking a directory or a pattern)


def document_suffixes() -> tuple[str, ...]:
    from policytag.text.ingestion import SUPPORTED_SUFFIXES

    return tuple(sorted(SUPPORTED_SUFFIXES))


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def _unreadable_reason(suffix: str) -> str:
    from policytag.text.ingestion import _SUFFIX_HINTS

    return f"{suffix}: {_SUFFIX_HINTS.get(suffix, 'policytag cannot read this type')}"


def expand_inputs(inputs: Sequence[str | os.PathLike], *, clauses: bool = True) -> tuple[list[InputFile], list[Skip]]:
    """Files to read, in a stable order (directories and pattern matches sorted), without
    duplicates, and the skips. ``clauses``: ``.jsonl`` files are clause files to read
    (``predict``, ``review-queue``); without it they are not inputs (``segment``)."""
    doc_suffixes = set(document_suffixes())
    files: list[InputFile] = []
    skips: list[Skip] = []
    seen: set[Path] = set()

    def add_file(p: Path, explicit: bool) -> bool:
        rp = p.resolve()
        if rp in seen:
            return True
        suffix = p.suffix.lower()
        if clauses and suffix in CLAUSE_SUFFIXES:
            kind = "clauses"
        elif suffix in doc_suffixes or explicit:
            # an explicit file of an unknown type goes to ingestion, which says why it cannot read it
            kind = "document"
        elif suffix in UNREADABLE_DOCUMENTS:
            seen.add(rp)
            skips.append(Skip(str(p), _unreadable_reason(suffix)))
            return False
        else:
            seen.add(rp)
            skips.append(Skip(str(p), f"ignored: policytag does not read {suffix or 'files without an extension'}",
                              failed=False))
            return False
        seen.add(rp)
        files.append(InputFile(p, kind, explicit))
        return True

    def add_dir(d: Path) -> None:
        found = False
        for p in sorted(d.rglob("*")):
            rel = p.relative_to(d)
            if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                continue
            found = add_file(p, explicit=False) or found
        if not found:
            kinds = " ".join(sorted(doc_suffixes | (set(CLAUSE_SUFFIXES) if clauses else set())))
            skips.append(Skip(str(d), f"directory holds no files policytag reads ({kinds})"))

    for raw in inputs:
        raw = str(raw)
        p = Path(raw).expanduser()
        if p.is_dir():
            add_dir(p)
        elif p.is_file():
            add_file(p, explicit=True)
        elif _is_glob(raw):
            matches = sorted(glob.glob(os.path.expanduser(raw), recursive=True))
            if not matches:
                skips.append(Skip(raw, "no file matches this pattern"))
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    add_dir(mp)
                elif mp.is_file():
                    add_file(mp, explicit=False)
        elif p.exists():
            skips.append(Skip(raw, "not a regular file"))
        else:
            skips.append(Skip(raw, "file not found: no such file or directory"))
    return files, skips


def looks_like_earlier_output(path: Path) -> bool:
    """True for a JSON Lines file whose first record is a ``predict`` row (``model_version``
    and ``p_*`` fields), i.e. what the previous run wrote. A clause file (``clause_id``,
    ``text``) is a user's input, not that."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    break
            else:
                return True  # an empty file holds nothing to lose
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(obj, dict):
        return False
    return "model_version" in obj and any(k.startswith("p_") for k in obj)


def separate_outputs(files: list[InputFile], skips: list[Skip], outputs: Sequence[str | os.PathLike],
                     ) -> list[InputFile]:
    """``files`` without this run's ``outputs``; refuses (:class:`OutputError`) an output that
    is one of the inputs, before anything is written.

    A file found by walking a folder that is an output *and* reads as an earlier policytag
    output (the previous run's result, in the folder being tagged) is ignored instead (with
    a note in ``skips``): overwriting it loses nothing."""
    kept = []
    for f in files:
        out = next((o for o in outputs if same_file(f.path, o)), None)
        if out is None:
            kept.append(f)
            continue
        if not f.explicit and looks_like_earlier_output(f.path):
            skips.append(Skip(str(f.path), "ignored: this is the output of this run", failed=False))
            continue
        how = "is named as an input" if f.explicit else "is among the inputs (found in a folder or pattern given)"
        raise OutputError(f"output {out} {how}: writing it would destroy that input. "
                          "Choose another output file name")
    return kept
