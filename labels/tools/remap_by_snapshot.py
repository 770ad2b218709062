"""Carry a file keyed by clause id (resolutions, second-pass decisions) from the clause ids of an
older labeling snapshot to the current ones, by clause text (never by position).

    python labels/tools/remap_by_snapshot.py OLD_COMMIT FILE.tsv [FILE.tsv ...]

OLD_COMMIT is the git commit whose labels/work/**/<doc>.unlabeled.jsonl snapshots the ids in the
files refer to. Lines whose clause the segmenter no longer produces are kept as comments.
"""

import json
import subprocess
import sys
from pathlib import Path

from policytag.data.gold import _norm

ROOT = Path(__file__).resolve().parents[2]


def snapshot(commit: str | None, doc: str) -> list[dict]:
    for rel in (f"labels/work/corpus/{doc}.unlabeled.jsonl", f"labels/work/{doc}.unlabeled.jsonl"):
        if commit is None:
            p = ROOT / rel
            if p.exists():
                return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
            continue
        r = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, capture_output=True, text=True)
        if r.returncode == 0:
            return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    return []


def main(commit: str, *files: str) -> None:
    for f in files:
        path = Path(f)
        out, moved, lost = [], 0, 0
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                out.append(line)
                continue
            cid = line.split("\t", 1)[0]
            doc = cid.split("/", 1)[0]
            old = {r["clause_id"]: r["text"] for r in snapshot(commit, doc)}
            new = snapshot(None, doc)
            text = old.get(cid)
            now_text = {r["clause_id"]: r["text"] for r in new}
            if text is not None and now_text.get(cid) == text:
                out.append(line)
                continue
            hit = [r["clause_id"] for r in new if text is not None and (r["text"] == text or _norm(r["text"]) == _norm(text))]
            if hit:
                out.append(hit[0] + line[len(cid):])
                moved += 1
            elif text is None and cid in now_text:
                out.append(line)  # written against the current ids already
            else:
                out.append("# dropped (clause no longer produced by the segmenter): " + line)
                lost += 1
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        print(f"{f}: {moved} moved, {lost} dropped")


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:])
