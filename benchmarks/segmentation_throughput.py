"""Segmentation throughput on the five seed documents repeated to ~10 MB (one core, no model).

    python benchmarks/segmentation_throughput.py [--mb 10] [--repeats 3]

Prints characters per second and MB/s (UTF-8) for
  - segmentation alone (clean text -> clauses, ``segment``), and
  - the whole text path (raw text -> normalization -> clauses, ``document_from_text`` + ``segment``).
The seeds are segmented as separate documents (copies with their own doc ids), the way a
batch of files is processed. The best of ``--repeats`` runs is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policytag.text.ingestion import decode_bytes, document_from_text  # noqa: E402
from policytag.text.segmentation import segment  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=10.0, help="total size of the raw input in MB (UTF-8)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    sources = sorted((ROOT / "labels" / "sources").glob("*.txt"))
    raw = [decode_bytes(p.read_bytes(), p.name)[0] for p in sources]
    seed_bytes = sum(len(t.encode("utf-8")) for t in raw)
    copies = max(1, round(args.mb * 1e6 / seed_bytes))
    raw_docs = [(f"{p.stem}-{i}", t) for i in range(copies) for p, t in zip(sources, raw)]
    raw_chars = sum(len(t) for _, t in raw_docs)
    raw_mb = sum(len(t.encode("utf-8")) for _, t in raw_docs) / 1e6

    clean_docs = [document_from_text(t, doc_id=d) for d, t in raw_docs[: len(sources)]]
    clean_docs = [(f"{d.doc_id}-{i}", d.text) for i in range(copies) for d in clean_docs]
    clean_chars = sum(len(t) for _, t in clean_docs)
    clean_mb = sum(len(t.encode("utf-8")) for _, t in clean_docs) / 1e6

    def run_segment():
        return sum(len(segment(doc)) for doc in clean_docs)

    def run_full():
        return sum(len(segment(document_from_text(t, doc_id=d))) for d, t in raw_docs)

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs visible, single process")
    print(f"input: {len(sources)} seed documents x {copies} copies = {len(raw_docs)} documents, "
          f"{raw_mb:.1f} MB raw / {clean_mb:.1f} MB clean")
    for name, fn, chars, mb in [("segment (clean text -> clauses)", run_segment, clean_chars, clean_mb),
                                ("normalize + segment (raw text -> clauses)", run_full, raw_chars, raw_mb)]:
        best, n = float("inf"), 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            n = fn()
            best = min(best, time.perf_counter() - t0)
        print(f"{name:44s} {chars / best / 1e6:6.2f} M chars/s  {mb / best:6.2f} MB/s  "
              f"({n} clauses in {best:.2f} s)")


if __name__ == "__main__":
    main()
