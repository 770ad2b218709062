"""How fast the corrections store writes and imports (no model involved).

    python benchmarks/corrections_store.py [--n 2000]

Prints: single add() calls per second (one transaction each, as the app saves), one
transaction for n corrections (add_many), importing an n-row XLSX written like
`policytag predict -o x.xlsx` (with p_* columns and thresholds, all rows edited), and two
processes adding n/2 corrections each at the same time (rows lost must be 0).
Runs in a temporary directory; the figures depend on the disk.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path


def _rows(n: int, tax) -> list[dict]:
    base = {f"p_{lid}": 0.1 for lid in tax.label_ids}
    return [{"doc_id": "bench", "clause_id": f"bench#{i}", "context": "二、重点任务",
             "text": f"第{i}条:加强科普基础设施建设,推动科技馆免费开放。", "themes": "infrastructure",
             "measures": "facility_building", **base, "model_version": "bench"} for i in range(n)]


def _writer(path: str, prefix: str, n: int) -> None:
    from policytag.data.corrections import CorrectionStore

    s = CorrectionStore(path)
    for i in range(n):
        s.add(f"{prefix}-{i}:开展科普活动。", [], ["activities"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    n = ap.parse_args().n
    import pandas as pd

    from policytag.data.corrections import CorrectionStore, import_corrections

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        store = CorrectionStore(d / "a.sqlite")
        k = min(n, 500)
        t0 = time.perf_counter()
        for i in range(k):
            store.add(f"单条{i}:开展科普活动。", [], ["activities"])
        dt = time.perf_counter() - t0
        print(f"add(): {k} single saves in {dt:.2f} s = {k / dt:.0f} saves/s (one transaction each)")

        items = [store.prepare(f"批量{i}:开展科普活动。", [], ["activities"]) for i in range(n)]
        t0 = time.perf_counter()
        store.add_many(items)
        dt = time.perf_counter() - t0
        print(f"add_many(): {n} corrections in one transaction in {dt:.2f} s")

        tax = store.taxonomy
        path = d / "edited.xlsx"
        pd.DataFrame(_rows(n, tax)).to_excel(path, index=False)
        th = {lid: 0.5 for lid in tax.label_ids}
        t0 = time.perf_counter()
        rep = import_corrections(CorrectionStore(d / "b.sqlite"), path, thresholds=th)
        dt = time.perf_counter() - t0
        print(f"import: {n}-row XLSX, {len(rep.accepted)} accepted, in {dt:.2f} s (read + validate + one transaction)")

        path_c = str(d / "c.sqlite")
        CorrectionStore(path_c)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_writer, args=(path_c, p, n // 2)) for p in ("A", "B")]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        dt = time.perf_counter() - t0
        got = CorrectionStore(path_c).count()
        print(f"two processes: {2 * (n // 2)} single saves at once in {dt:.2f} s (incl. start-up), "
              f"{got} rows stored, {2 * (n // 2) - got} lost")


if __name__ == "__main__":
    main()
