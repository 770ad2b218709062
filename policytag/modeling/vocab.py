"""A vocabulary sized for Chinese policy text: trim a tokenizer and its embedding table.

The bundled multilingual-e5-small has a 250k-piece XLM-R vocabulary; its word-embedding
table is 82% of the model's parameters, and Chinese policy text uses a few thousand of
those pieces. :func:`plan_trim` chooses the pieces to keep, :func:`trim_tokenizer_json`
rebuilds the tokenizer over them (same normalizer, pre-tokenizer, post-processor and
scores; ids renumbered in the original order) and :func:`trim_embeddings` slices the table
the same way, so that tokenizer and model stay consistent. What is kept:

* every piece whose characters (the ``▁`` word marker and the WordPiece ``##`` aside) are
  all in :func:`in_charset` (CJK ideographs + Ext A + compatibility ideographs, CJK
  punctuation, full-width and half-width forms, bopomofo, ASCII, pinyin tone letters,
  common symbols: punctuation, letterlike, number forms, arrows, maths, enclosed
  numbers, box drawing, geometric shapes) or in the text sample, **and** that holds no
  Latin letter: numbers, punctuation, CJK words, CJK mixed with digits;
* of the pieces with Latin letters, every piece of at most ``latin_max_chars`` (2)
  characters (so any Latin word can still be spelled out: never ``<unk>``), the
  ``latin_top`` most probable ones (Unigram score; XLM-R has 83k ASCII word pieces,
  125 MB of embeddings, that Chinese text almost never produces), and every one the text
  sample produces;
* every special token (``<s> <pad> </s> <unk> <mask>``, added tokens).

The text sample (:func:`sample_texts`) is every shipped clause the model could be asked
about: the gold clauses (``labels/clauses.jsonl``) and every clause of every shipped
source and corpus document (``labels/sources/**``), text and context, with and without
the E5 ``query:`` prefix. Its characters join the character set and the pieces it
produces are kept, so on the sample the trimmed tokenizer gives exactly the original
token strings; with the embedding rows sliced in the same order, the encoder computes
exactly the same numbers (``benchmarks/vocab_trim.py`` checks both on the real model,
``tests/test_vocab.py`` on a tiny one). Text outside the sample tokenizes the same unless
it has a character outside the set (that character becomes ``<unk>``) or an English word
whose piece was dropped (it is spelled with shorter pieces).

A trimmed directory says so in ``policytag_base.json`` (bases) or ``policytag.json``
(``vocab_trim``: original and kept size, rule, a hash of the kept piece list); untrimmed
directories load as before.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

TRIM_VERSION = 1
LATIN_TOP = 1500
LATIN_MAX_CHARS = 2
SAMPLE_PREFIXES = ("", "query: ", "passage: ")

# (first, last) code points kept (inclusive)
CHAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # ASCII printable
    (0x00A0, 0x00BF),  # Latin-1 symbols: nbsp ¥ § ° ± · ...
    (0x00D7, 0x00D7), (0x00F7, 0x00F7),  # × ÷
    (0x02C7, 0x02C7), (0x02C9, 0x02CB), (0x02D9, 0x02D9),  # bopomofo tone marks ˇ ˉ ˊ ˋ ˙
    (0x2000, 0x206F),  # general punctuation — … ‰ • “ ”
    (0x2070, 0x209F),  # super- and subscripts
    (0x20A0, 0x20CF),  # currency
    (0x2100, 0x214F),  # letterlike ℃ №
    (0x2150, 0x218F),  # number forms Ⅰ Ⅱ
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators ≥ ≤
    (0x2300, 0x23FF),  # miscellaneous technical
    (0x2460, 0x24FF),  # enclosed alphanumerics ① ⑴ ⒈
    (0x2500, 0x257F),  # box drawing
    (0x2580, 0x259F),  # block elements (U+2581 is the sentencepiece word marker)
    (0x25A0, 0x25FF),  # geometric shapes ■ □ ▲ ● ○ ◆
    (0x2600, 0x26FF),  # miscellaneous symbols ★ ☆
    (0x2700, 0x27BF),  # dingbats ✓
    (0x2E80, 0x2EFF),  # CJK radicals supplement
    (0x2F00, 0x2FDF),  # Kangxi radicals
    (0x2FF0, 0x2FFF),  # ideographic description
    (0x3000, 0x303F),  # CJK symbols and punctuation 、。〈〉《》「」【】〔〕
    (0x3100, 0x312F), (0x31A0, 0x31BF),  # bopomofo
    (0x31C0, 0x31EF),  # CJK strokes
    (0x3200, 0x32FF),  # enclosed CJK ㈠ ㊀
    (0x3300, 0x33FF),  # CJK compatibility ㎡ ㎏
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFE50, 0xFE6F),  # small form variants
    (0xFF00, 0xFFEF),  # half-width and full-width forms
)
# pinyin with tone marks (and ü): Chinese documents carry it in names and glosses
PINYIN = "āáǎàēéěèīíǐìōóǒòūúǔùüǖǘǚǜńňǹḿ"
PINYIN = PINYIN + PINYIN.upper()
LATIN_LETTERS = frozenset(string.ascii_letters + PINYIN)

_starts = np.array([a for a, _ in CHAR_RANGES])
_ends = np.array([b for _, b in CHAR_RANGES])


def in_charset(ch: str) -> bool:
    """Is ``ch`` one of the characters Chinese policy text is made of (see the module docstring)?"""
    if ch in LATIN_LETTERS:
        return True
    o = ord(ch)
    i = int(np.searchsorted(_starts, o, side="right")) - 1
    return i >= 0 and o <= int(_ends[i])


# --------------------------------------------------------------------------- the text sample


def sample_texts() -> list[str]:
    """Every shipped text the model tags: gold clauses + every clause of every shipped source and
    corpus document (text and context, each once), from ``labels/``."""
    from policytag import paths
    from policytag.errors import PolicytagError

    texts: list[str] = []
    try:
        from policytag.clause import load_clauses

        if paths.GOLD_FILE.exists():
            for c in load_clauses(paths.GOLD_FILE):
                texts += [c.text, c.context or ""]
    except PolicytagError:
        pass
    try:
        from policytag.text.ingestion import load_source
        from policytag.text.segmentation import segment
    except ImportError:  # pragma: no cover - the text layer is part of the package
        return _unique(texts)
    sources = sorted(paths.SOURCES_DIR.glob("*.txt"))
    corpus = paths.SOURCES_DIR / "corpus"
    if corpus.is_dir():
        sources += sorted(p for p in corpus.iterdir() if p.is_dir())
    for p in sources:
        try:
            doc = load_source(p)
        except PolicytagError:
            continue
        texts.append(doc.text)
        for c in segment(doc):
            texts += [c.text, c.context or ""]
    return _unique(texts)


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t))


# --------------------------------------------------------------------------- planning


@dataclass
class TrimPlan:
    kept: np.ndarray                     # original ids kept, ascending (new id = position)
    original_size: int
    counts: dict[str, int] = field(default_factory=dict)   # why pieces were kept
    sample_chars_outside: list[str] = field(default_factory=list)  # sample characters the ranges lack
    sample_pieces: int = 0               # distinct pieces the sample produces
    rule: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(len(self.kept))

    def info(self, pieces: Sequence[str] | None = None) -> dict:
        out = {"trim_version": TRIM_VERSION, "original_vocab_size": self.original_size, "vocab_size": self.size,
               "kept_by_rule": dict(self.counts), "sample_pieces": self.sample_pieces,
               "sample_chars_outside_ranges": "".join(self.sample_chars_outside), "rule": dict(self.rule)}
        if pieces is not None:
            out["kept_pieces_sha256"] = hashlib.sha256("\n".join(pieces).encode("utf-8")).hexdigest()
        return out


def _model_pieces(tj: dict) -> tuple[str, list[str], str]:
    """(model type, pieces by id, word-marker prefix to strip) of a tokenizer.json dict."""
    model = tj["model"]
    kind = model["type"]
    if kind == "Unigram":
        return kind, [p for p, _ in model["vocab"]], "▁"
    if kind == "WordPiece":
        vocab = model["vocab"]
        pieces = [""] * len(vocab)
        for p, i in vocab.items():
            pieces[i] = p
        return kind, pieces, model.get("continuing_subword_prefix", "##")
    raise ValueError(f"vocabulary trimming supports Unigram and WordPiece tokenizers, not {kind}")


def _special_ids(tj: dict) -> set[int]:
    ids = {int(t["id"]) for t in tj.get("added_tokens") or []}
    model = tj["model"]
    if model["type"] == "Unigram" and model.get("unk_id") is not None:
        ids.add(int(model["unk_id"]))
    elif model["type"] == "WordPiece" and model.get("unk_token") in model["vocab"]:
        ids.add(int(model["vocab"][model["unk_token"]]))
    return ids


def sample_ids(tokenizer_json: dict | str, texts: Sequence[str], prefixes: Sequence[str] = SAMPLE_PREFIXES) -> set[int]:
    """Every piece id the tokenizer produces on ``texts`` (each alone, with each prefix)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json if isinstance(tokenizer_json, str) else json.dumps(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()
    used: set[int] = set()
    for pre in prefixes:
        for enc in tok.encode_batch([pre + t for t in texts], add_special_tokens=False):
            used.update(enc.ids)
    return used


def plan_trim(tokenizer_json: dict, sample: Sequence[str] | None = None, *, latin_top: int = LATIN_TOP,
              latin_max_chars: int = LATIN_MAX_CHARS) -> TrimPlan:
    """Choose the pieces to keep (module docstring). ``sample``: texts whose tokens must not change
    (default: :func:`sample_texts`; pass ``[]`` for none)."""
    tj = tokenizer_json
    kind, pieces, marker = _model_pieces(tj)
    texts = sample_texts() if sample is None else list(sample)
    norm_chars: set[str] = set()
    if texts:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(json.dumps(tj))
        normalizer = tok.normalizer
        for t in texts:
            norm_chars.update(normalizer.normalize_str(t) if normalizer is not None else t)
    outside = sorted(c for c in norm_chars if not c.isspace() and not in_charset(c))
    extra = set(outside)
    used = sample_ids(tj, texts) if texts else set()

    specials = _special_ids(tj)
    scores = [s for _, s in tj["model"]["vocab"]] if kind == "Unigram" else None
    counts = {"special": 0, "no_latin_letter": 0, f"latin_<={latin_max_chars}_chars": 0, "latin_top": 0,
              "sample": 0}
    keep = np.zeros(len(pieces), dtype=bool)
    latin: list[int] = []
    for i, p in enumerate(pieces):
        if i in specials:
            keep[i] = True
            counts["special"] += 1
            continue
        core = p[len(marker):] if marker and p.startswith(marker) else p
        if kind == "Unigram":
            core = core.replace(marker, "")
        if not core:  # the bare word marker
            keep[i] = True
            counts["no_latin_letter"] += 1
            continue
        if not all(in_charset(c) or c in extra for c in core):
            continue
        if not any(c in LATIN_LETTERS for c in core):
            keep[i] = True
            counts["no_latin_letter"] += 1
        elif len(core) <= latin_max_chars:
            keep[i] = True
            counts[f"latin_<={latin_max_chars}_chars"] += 1
        else:
            latin.append(i)
    if latin_top and latin:
        if scores is not None:  # most probable first (Unigram log-probabilities)
            latin.sort(key=lambda i: (-scores[i], i))
        for i in latin[:latin_top]:
            keep[i] = True
            counts["latin_top"] += 1
    for i in sorted(used):
        if not keep[i]:
            keep[i] = True
            counts["sample"] += 1
    rule = {"char_ranges": [f"U+{a:04X}-U+{b:04X}" for a, b in CHAR_RANGES], "pinyin": PINYIN,
            "latin_top": latin_top, "latin_max_chars": latin_max_chars, "sample_texts": len(texts)}
    return TrimPlan(kept=np.flatnonzero(keep), original_size=len(pieces), counts=counts,
                    sample_chars_outside=outside, sample_pieces=len(used), rule=rule)


# --------------------------------------------------------------------------- applying


def id_map(kept: np.ndarray, original_size: int) -> np.ndarray:
    """``old id -> new id`` (-1 for dropped ids)."""
    m = np.full(original_size, -1, dtype=np.int64)
    m[np.asarray(kept)] = np.arange(len(kept))
    return m


def trim_tokenizer_json(tokenizer_json: dict, kept: np.ndarray) -> dict:
    """The same tokenizer over the kept pieces only, ids renumbered (module docstring)."""
    tj = copy.deepcopy(tokenizer_json)
    kind, pieces, _ = _model_pieces(tj)
    kept = np.asarray(kept)
    remap = id_map(kept, len(pieces))
    model = tj["model"]
    if kind == "Unigram":
        vocab = model["vocab"]
        model["vocab"] = [vocab[int(i)] for i in kept]
        if model.get("unk_id") is not None:
            new = int(remap[int(model["unk_id"])])
            if new < 0:
                raise ValueError("the unknown token must be kept")
            model["unk_id"] = new
    else:
        model["vocab"] = {pieces[int(i)]: n for n, i in enumerate(kept)}
        if model.get("unk_token") not in model["vocab"]:
            raise ValueError("the unknown token must be kept")

    def new_id(old: int) -> int:
        n = int(remap[int(old)]) if 0 <= int(old) < len(remap) else -1
        if n < 0:
            raise ValueError(f"special token id {old} is not kept")
        return n

    for t in tj.get("added_tokens") or []:
        t["id"] = new_id(t["id"])
    _remap_post_processor(tj.get("post_processor"), new_id)
    return tj


def _remap_post_processor(pp, new_id) -> None:
    if not isinstance(pp, dict):
        return
    if pp.get("type") == "Sequence":
        for p in pp.get("processors") or []:
            _remap_post_processor(p, new_id)
        return
    if pp.get("type") == "TemplateProcessing":
        for spec in (pp.get("special_tokens") or {}).values():
            spec["ids"] = [new_id(i) for i in spec.get("ids", [])]
        return
    for key in ("sep", "cls"):  # BertProcessing / RobertaProcessing: [token, id]
        if isinstance(pp.get(key), list) and len(pp[key]) == 2:
            pp[key] = [pp[key][0], new_id(pp[key][1])]


def trim_embeddings(weight, kept: np.ndarray):
    """Rows ``kept`` of a ``[vocab, hidden]`` table (numpy array or torch tensor), in that order."""
    idx = np.asarray(kept, dtype=np.int64)
    if hasattr(weight, "index_select"):  # torch
        import torch

        return weight.detach().index_select(0, torch.as_tensor(idx)).contiguous().clone()
    return np.ascontiguousarray(np.asarray(weight)[idx])


def trim_config_dict(cfg: dict, kept: np.ndarray, original_size: int) -> dict:
    """``config.json`` with the new ``vocab_size`` and remapped special ids."""
    cfg = dict(cfg)
    remap = id_map(kept, original_size)
    cfg["vocab_size"] = int(len(kept))
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "unk_token_id"):
        v = cfg.get(key)
        if isinstance(v, int) and 0 <= v < original_size:
            cfg[key] = int(remap[v]) if remap[v] >= 0 else None
    return cfg


WORD_EMBEDDING_SUFFIX = "word_embeddings.weight"


def word_embedding_key(state: dict, vocab_rows: int | None = None) -> str:
    keys = [k for k in state if k.endswith(WORD_EMBEDDING_SUFFIX)]
    if vocab_rows is not None:
        keys = [k for k in keys if state[k].shape[0] == vocab_rows]
    if len(keys) != 1:
        raise ValueError(f"expected one word-embedding table in the weights, found {keys}")
    return keys[0]


def tokenizer_dir_files(src: Path, dst: Path, tj_new: dict, kept: np.ndarray, original_size: int) -> None:
    """Write the trimmed tokenizer files of ``src`` into ``dst`` (tokenizer.json + the small json files)."""
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "tokenizer.json").write_text(json.dumps(tj_new, ensure_ascii=False), encoding="utf-8")
    remap = id_map(kept, original_size)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        p = src / name
        if not p.exists():
            continue
        data = json.loads(p.read_text(encoding="utf-8"))
        dec = data.get("added_tokens_decoder")
        if isinstance(dec, dict):
            data["added_tokens_decoder"] = {str(int(remap[int(k)])): v for k, v in dec.items() if remap[int(k)] >= 0}
        (dst / name).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    # slow-tokenizer vocab files would disagree with the new ids: they are not copied
    # (every policytag tokenizer is a fast one read from tokenizer.json)


def trim_base_dir(src: str | os.PathLike, dst: str | os.PathLike, plan: TrimPlan | None = None,
                  sample: Sequence[str] | None = None, **plan_kw) -> dict:
    """Write a trimmed copy of a transformers model directory (config, weights, tokenizer).

    Returns the trim info (also merged into ``policytag_base.json`` of ``dst``)."""
    from safetensors.numpy import load_file, save_file

    from policytag.modeling.classifier import write_dir_atomic

    src = Path(src)
    tj = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    if plan is None:
        plan = plan_trim(tj, sample, **plan_kw)
    tj_new = trim_tokenizer_json(tj, plan.kept)
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    state = load_file(str(src / "model.safetensors"))
    key = word_embedding_key(state, int(cfg.get("vocab_size") or 0) or None)
    rows = state[key].shape[0]
    if rows < plan.original_size:
        raise ValueError(f"{src}: the embedding table has {rows} rows for {plan.original_size} pieces")
    state[key] = trim_embeddings(state[key], plan.kept)
    _kind, pieces, _ = _model_pieces(tj)
    info = plan.info([pieces[int(i)] for i in plan.kept])
    info["embedding_rows_before"] = int(rows)

    def fill(tmp: Path) -> None:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(trim_config_dict(cfg, plan.kept, rows), indent=2),
                                         encoding="utf-8")
        tokenizer_dir_files(src, tmp, tj_new, plan.kept, plan.original_size)
        base = src / "policytag_base.json"
        meta = json.loads(base.read_text(encoding="utf-8")) if base.exists() else {}
        meta["vocab_trim"] = info
        (tmp / "policytag_base.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")

    write_dir_atomic(dst, fill)
    return info


def trim_classifier(clf, plan: TrimPlan | None = None, sample: Sequence[str] | None = None, **plan_kw):
    """A trimmed copy of a (PyTorch) ``TransformerClassifier``, in memory: sliced embedding table,
    trimmed tokenizer, renumbered separator id; ``metadata["vocab_trim"]`` records it. Save it
    with ``save_pretrained``."""
    import tempfile

    import torch
    from transformers import AutoTokenizer

    from policytag.modeling.classifier import TransformerClassifier

    with tempfile.TemporaryDirectory(prefix="policytag-trim-") as tmp:
        tdir = Path(tmp) / "tok"
        clf.tokenizer.save_pretrained(tdir)
        tj = json.loads((tdir / "tokenizer.json").read_text(encoding="utf-8"))
        if plan is None:
            plan = plan_trim(tj, sample, **plan_kw)
        tj_new = trim_tokenizer_json(tj, plan.kept)
        out = Path(tmp) / "new"
        tokenizer_dir_files(tdir, out, tj_new, plan.kept, plan.original_size)
        tokenizer = AutoTokenizer.from_pretrained(out)
    net = copy.deepcopy(clf.net).to("cpu")
    emb = net.encoder.get_input_embeddings()
    rows = emb.weight.shape[0]
    new = torch.nn.Embedding(len(plan.kept), emb.weight.shape[1], padding_idx=None)
    new.weight = torch.nn.Parameter(trim_embeddings(emb.weight, plan.kept), requires_grad=emb.weight.requires_grad)
    remap = id_map(plan.kept, rows)
    if emb.padding_idx is not None and remap[emb.padding_idx] >= 0:
        new.padding_idx = int(remap[emb.padding_idx])
    net.encoder.set_input_embeddings(new)
    cfg = net.encoder.config
    for k, v in trim_config_dict(cfg.to_dict(), plan.kept, rows).items():
        if k == "vocab_size" or k.endswith("_token_id"):
            setattr(cfg, k, v)
    if net.sep_token_id is not None:
        net.sep_token_id = int(remap[int(net.sep_token_id)])
    meta = copy.deepcopy(clf.metadata)
    _kind, pieces, _ = _model_pieces(tj)
    meta["vocab_trim"] = {**plan.info([pieces[int(i)] for i in plan.kept]), "embedding_rows_before": int(rows)}
    trimmed = TransformerClassifier(net, tokenizer, clf.label_ids, clf.thresholds, meta, device="cpu")
    trimmed.companion = clf.companion  # the TF-IDF part of a blended model reads text, not token ids
    return trimmed


def trim_info(model_dir: str | os.PathLike) -> dict | None:
    """The ``vocab_trim`` record of a model directory (its own, or its base's), None when untrimmed."""
    d = Path(model_dir)
    for name, pick in (("policytag.json", lambda m: m.get("vocab_trim") or (m.get("base_model") or {}).get("vocab_trim")
                        if isinstance(m.get("base_model"), dict) else m.get("vocab_trim")),
                       ("policytag_base.json", lambda m: m.get("vocab_trim"))):
        p = d / name
        if p.exists():
            try:
                got = pick(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                got = None
            if got:
                return got
    return None
