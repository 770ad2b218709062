"""Check the vocabulary trim on the real bundled multilingual-e5-small, and what it saves.

    python benchmarks/vocab_trim.py [MODEL_DIR] [--max-clauses 0] [--json out.json]

1. materializes the bundled base twice: full (250k pieces) and trimmed (the default);
2. on every gold clause (``labels/clauses.jsonl``) and every clause of every shipped
   source and corpus document, checks that the trimmed tokenizer gives the same token
   strings as the full one (each text and context alone, with and without ``query:``, and
   the (text, context) pairs exactly as the model encodes them);
3. runs both encoders on all those clauses and compares the input token embeddings and
   the last hidden states (max abs difference), and a classifier's probabilities: MODEL_DIR
   when given (an untrimmed model dir: it is trimmed in memory), else a classifier built on
   the full base with a seeded random head (the same head on both);
4. reports vocabulary size, directory size and load time (a fresh process each, best of 3)
   before and after, and the load average at start and end.

Exit status 1 when any token or value differs (tolerance 1e-5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TOL = 1e-5


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e6


def load_seconds(code: str, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


LOAD_BASE = ("import time; t=time.perf_counter(); from transformers import AutoModel, AutoTokenizer; "
             "t1=time.perf_counter(); AutoTokenizer.from_pretrained({p!r}); "
             "AutoModel.from_pretrained({p!r}, add_pooling_layer=False); print(time.perf_counter()-t1)")
LOAD_MODEL = ("import time; from policytag.modeling.classifier import PolicyClassifier; import torch, transformers; "
              "t1=time.perf_counter(); PolicyClassifier.from_pretrained({p!r}); print(time.perf_counter()-t1)")


def clauses_sample(max_clauses: int = 0):
    """Gold clauses + every clause of every shipped source/corpus document."""
    from policytag import paths
    from policytag.clause import load_clauses
    from policytag.text.ingestion import load_source
    from policytag.text.segmentation import segment

    out = list(load_clauses(paths.GOLD_FILE)) if paths.GOLD_FILE.exists() else []
    srcs = sorted(paths.SOURCES_DIR.glob("*.txt")) + sorted(p for p in (paths.SOURCES_DIR / "corpus").iterdir()
                                                             if p.is_dir())
    for p in srcs:
        out.extend(segment(load_source(p)))
    if max_clauses and len(out) > max_clauses:
        step = len(out) / max_clauses
        out = [out[int(i * step)] for i in range(max_clauses)]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", type=Path, help="an untrimmed model directory to compare (optional)")
    ap.add_argument("--max-clauses", type=int, default=0, help="compare values on an even sample of N clauses (0: all)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    la0 = os.getloadavg()
    print(f"load average at start: {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f} (figures under load are slower)")

    import torch
    from transformers import AutoModel, AutoTokenizer

    from policytag import paths
    from policytag.modeling import vocab
    from policytag.modeling.bundled import materialize_bundled
    from policytag.modeling.classifier import (PolicyClassifier, TransformerClassifier, build_net, encode_pairs,
                                               read_metadata)

    t = time.perf_counter()
    full_dir = materialize_bundled(paths.cache_dir(), trim=False)
    trim_dir = materialize_bundled(paths.cache_dir())
    print(f"bases: {full_dir} and {trim_dir} ({time.perf_counter() - t:.0f} s to materialize/check)")
    info = json.loads((trim_dir / "policytag_base.json").read_text(encoding="utf-8"))["vocab_trim"]
    print(f"vocabulary: {info['original_vocab_size']} pieces ({info['embedding_rows_before']} rows) -> "
          f"{info['vocab_size']}; kept by rule {info['kept_by_rule']}; sample characters outside the ranges: "
          f"{info['sample_chars_outside_ranges']!r}")

    tok_f = AutoTokenizer.from_pretrained(full_dir)
    tok_t = AutoTokenizer.from_pretrained(trim_dir)
    clauses = clauses_sample()
    texts = vocab.sample_texts()
    res: dict = {"load_average_start": la0[0], "vocab": info, "n_clauses": len(clauses), "n_texts": len(texts)}

    # ------------------------------------------------------------- token strings
    bad = 0
    n_tok = 0
    for pre in vocab.SAMPLE_PREFIXES:
        a = tok_f([pre + x for x in texts], add_special_tokens=True)["input_ids"]
        b = tok_t([pre + x for x in texts], add_special_tokens=True)["input_ids"]
        for x, y in zip(a, b):
            n_tok += len(x)
            if tok_f.convert_ids_to_tokens(x) != tok_t.convert_ids_to_tokens(y):
                bad += 1
    inp = {"use_context": True, "max_length": 512, "text_prefix": "query: ", "context_prefix": ""}
    pairs = [(c.text, c.context or "") for c in clauses]
    for i in range(0, len(pairs), 256):
        ea = encode_pairs(tok_f, pairs[i:i + 256], inp, padding=False, return_tensors=None)["input_ids"]
        eb = encode_pairs(tok_t, pairs[i:i + 256], inp, padding=False, return_tensors=None)["input_ids"]
        for x, y in zip(ea, eb):
            n_tok += len(x)
            if tok_f.convert_ids_to_tokens(x) != tok_t.convert_ids_to_tokens(y):
                bad += 1
    res["token_mismatches"] = bad
    print(f"token strings: {bad} mismatches over {len(texts)} texts x {len(vocab.SAMPLE_PREFIXES)} prefixes and "
          f"{len(pairs)} (text, context) clause pairs ({n_tok} tokens)")

    # ------------------------------------------------------------- values
    torch.manual_seed(0)
    if args.model_dir:
        ref = PolicyClassifier.from_pretrained(args.model_dir)
        if read_metadata(args.model_dir).get("vocab_trim") or vocab.trim_info(args.model_dir):
            print(f"note: {args.model_dir} is already trimmed; comparing it with a re-trim of itself")
    else:
        enc = AutoModel.from_pretrained(full_dir, add_pooling_layer=False)
        net = build_net(enc, 17, pooling="mean_text", dropout=0.0, sep_token_id=tok_f.sep_token_id)
        torch.nn.init.normal_(net.head.weight, std=0.5)
        meta = {"input": {"use_context": True, "max_length": 192, "text_prefix": "query: ", "context_prefix": ""},
                "version": "random-head"}
        ref = TransformerClassifier(net, tok_f, [f"l{i}" for i in range(17)], None, meta)
    trimmed = vocab.trim_classifier(ref, plan=vocab.TrimPlan(
        kept=np.asarray(json_kept(full_dir, trim_dir)), original_size=info["original_vocab_size"]))
    vc = clauses_sample(args.max_clauses)
    t = time.perf_counter()
    pa = ref.predict_proba(vc, batch_size=args.batch_size)
    pb = trimmed.predict_proba(vc, batch_size=args.batch_size)
    dp = float(np.abs(pa - pb).max())
    # token embeddings and hidden states on a spread of clauses
    de = dh = 0.0
    sub = vc[:: max(1, len(vc) // 400)]
    with torch.inference_mode():
        for i in range(0, len(sub), 16):
            ea = ref.encode(sub[i:i + 16])
            eb = trimmed.encode(sub[i:i + 16])
            assert torch.equal(ea["attention_mask"], eb["attention_mask"])
            xa = ref.net.encoder.get_input_embeddings()(ea["input_ids"])
            xb = trimmed.net.encoder.get_input_embeddings()(eb["input_ids"])
            de = max(de, float((xa - xb).abs().max()))
            ha = ref.net.encoder(**ea).last_hidden_state
            hb = trimmed.net.encoder(**eb).last_hidden_state
            dh = max(dh, float(((ha - hb).abs() * ea["attention_mask"][..., None]).max()))
    res.update(max_abs_prob_diff=dp, max_abs_token_embedding_diff=de, max_abs_hidden_diff=dh, n_value_clauses=len(vc))
    print(f"values on {len(vc)} clauses ({time.perf_counter() - t:.0f} s): probabilities max |diff| {dp:.2e}; on "
          f"{len(sub)} of them token embeddings {de:.2e}, last hidden states {dh:.2e} (tolerance {TOL:g})")

    # ------------------------------------------------------------- sizes and load times
    sizes = {"full base": dir_mb(full_dir), "trimmed base": dir_mb(trim_dir)}
    loads = {"full base": load_seconds(LOAD_BASE.format(p=str(full_dir))),
             "trimmed base": load_seconds(LOAD_BASE.format(p=str(trim_dir)))}
    if args.model_dir:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="policytag-trimmed-") as tmp:
            trimmed.save_pretrained(Path(tmp) / "m")
            sizes["model dir"] = dir_mb(args.model_dir)
            sizes["model dir trimmed"] = dir_mb(Path(tmp) / "m")
            loads["model dir"] = load_seconds(LOAD_MODEL.format(p=str(args.model_dir)))
            loads["model dir trimmed"] = load_seconds(LOAD_MODEL.format(p=str(Path(tmp) / "m")))
    res["sizes_mb"], res["load_s"] = sizes, loads
    print("\n| directory | vocabulary | size MB | load s (fresh process, best of 3) |")
    print("|---|---:|---:|---:|")
    for k in sizes:
        v = info["original_vocab_size"] if "trimmed" not in k else info["vocab_size"]
        print(f"| {k} | {v} | {sizes[k]:.1f} | {loads[k]:.2f} |")
    la1 = os.getloadavg()
    res["load_average_end"] = la1[0]
    print(f"load average at end: {la1[0]:.2f} {la1[1]:.2f} {la1[2]:.2f}")
    ok = bad == 0 and max(dp, de, dh) <= TOL
    print("OK: same tokens and values" if ok else "DIFFERENCES FOUND")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if ok else 1


def json_kept(full_dir: Path, trim_dir: Path) -> list[int]:
    """The original ids of the trimmed base's pieces (by piece string: pieces are unique)."""
    full = json.loads((full_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    kept = json.loads((trim_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    index = {p: i for i, (p, _) in enumerate(full)}
    return [index[p] for p, _ in kept]


if __name__ == "__main__":
    sys.exit(main())
