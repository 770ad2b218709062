"""Precision / recall of the quantified-target extractor on the hand-checked fixture.

    python benchmarks/targets_eval.py                      # dev, held-out and all
    python benchmarks/targets_eval.py --split dev -v       # list every error of one part
    python benchmarks/targets_eval.py --fixture FILE.jsonl

A target is correct when quantity + unit match an expected one and the indicators overlap
(longest common substring >= 60% of the shorter one). The fixture
(``tests/fixtures/targets_gold.jsonl``) was written by hand before the extractor; the
``heldout`` part (30 clauses, whole documents) was not looked at while tuning it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policytag.analysis.target_eval import evaluate, load_fixture  # noqa: E402

DEFAULT_FIXTURE = ROOT / "tests" / "fixtures" / "targets_gold.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    ap.add_argument("--split", choices=["dev", "heldout", "all"], default=None,
                    help="one part only (default: dev, heldout and all)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every false positive and false negative")
    args = ap.parse_args(argv)
    rows = load_fixture(args.fixture)
    splits = [args.split] if args.split else ["dev", "heldout", "all"]
    for s in splits:
        res = evaluate(rows, None if s == "all" else s)
        print(res.summary())
        if args.verbose:
            for fp in res.false_positives:
                t = fp["target"]
                print(f"  FP {fp['id']}: {t['text']} -> {t['quantity']} {t['unit']!r} [{t['indicator']}]")
            for fn in res.false_negatives:
                g = fn["expected"]
                print(f"  FN {fn['id']}: {g['quantity']} {g['unit']!r} [{g['indicator']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
