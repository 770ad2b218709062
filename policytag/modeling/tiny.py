"""A tiny randomly initialised BERT with a character vocabulary, for tests and smoke runs.

``model.base: tiny:bert`` in ``configs/tiny.yaml`` materialises it once into the cache
directory. Its vocabulary is every character of the shipped seed documents
(``labels/sources/*.txt``) plus ASCII, so it needs no download. It learns only what a
few training steps teach it: useful to test the full path, useless as a real model.
"""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path
from typing import Iterable

from policytag import paths

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_DEFAULTS = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 512, "seed": 0}


def char_vocab(texts: Iterable[str]) -> list[str]:
    chars: set[str] = set()
    for t in texts:
        chars.update(ch for ch in t if not ch.isspace())
    chars.update(string.ascii_lowercase + string.digits)
    base = sorted(chars)
    cont = ["##" + c for c in string.ascii_lowercase + string.digits]
    return SPECIALS + base + cont


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(paths.SOURCES_DIR.glob("*.txt"))]


def build_tiny_bert(out_dir: str | Path, texts: Iterable[str] | None = None, **options) -> Path:
    """Write a tiny BERT (config, random weights, WordPiece character tokenizer) to ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]  # an alias of BertTokenizer in transformers 5, missing from its typed exports

    from policytag.modeling.classifier import write_dir_atomic

    o = {**TINY_DEFAULTS, **options}
    vocab = char_vocab(seed_texts() if texts is None else texts)
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=False, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", model_max_length=o["max_positions"])
    config = BertConfig(vocab_size=len(vocab), hidden_size=o["hidden"], num_hidden_layers=o["layers"],
                        num_attention_heads=o["heads"], intermediate_size=o["intermediate"],
                        max_position_embeddings=o["max_positions"], pad_token_id=0)
    torch.manual_seed(o["seed"])
    model = BertModel(config, add_pooling_layer=False)

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        fast.save_pretrained(tmp)
        (tmp / "policytag_base.json").write_text(json.dumps({
            "name": "tiny:bert", "source": "randomly initialised by policytag.modeling.tiny (test model)",
            "original": None, "approximation": "random weights: for tests only", "options": o,
        }, indent=2), encoding="utf-8")

    return write_dir_atomic(out_dir, fill)


def materialize_tiny(cache_dir: str | Path | None = None, **options) -> Path:
    """The tiny BERT in the cache (built on first use); keyed by its options and vocabulary."""
    o = {**TINY_DEFAULTS, **options}
    texts = seed_texts()
    key = hashlib.sha256((json.dumps(o, sort_keys=True) + "".join(char_vocab(texts))).encode()).hexdigest()[:10]
    out = Path(cache_dir or paths.cache_dir()) / f"tiny-bert-{key}"
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    return build_tiny_bert(out, texts, **o)
