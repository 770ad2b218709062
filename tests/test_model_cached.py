"""Fine-tuning only the top blocks from cached lower-block states is the same function as the full net."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.mark.parametrize("pooling", ["mean", "cls", "mean_text"])
def test_forward_from_hidden_matches_full_forward(pooling):
    from transformers import BertConfig, BertModel

    from policytag.modeling.classifier import build_net, first_segment_mask

    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                               intermediate_size=32), add_pooling_layer=False)
    net = build_net(enc, 17, pooling=pooling, dropout=0.0, sep_token_id=3).eval()
    ids = torch.randint(5, 60, (3, 9))
    ids[:, 4] = 3  # a separator: tokens 0-3 are the clause segment
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        full = net(input_ids=ids, attention_mask=mask)["logits"]
        hs = enc(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for start in range(4):
            tm = first_segment_mask(ids, 3)
            assert tm[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0]
            part = net.forward_from_hidden(hs[start], mask, start, text_mask=tm)["logits"]
            torch.testing.assert_close(part, full, atol=1e-5, rtol=1e-5)


def test_train_top_layers_with_cache(mini_gold, tmp_path):
    from policytag.config import load_config
    from policytag.data.dataset import label_matrix
    from policytag.modeling.classifier import PolicyClassifier
    from policytag.training.trainer import fit_classifier

    cfg = load_config("tiny", ["model.train_layers=1", "thresholds.inner_folds=0", "training.epochs=4",
                               "model.pooling=mean_text"])
    fitted = fit_classifier(mini_gold, label_matrix(mini_gold), cfg)
    assert fitted._from_hidden is not None
    in_process = fitted.predict_proba(mini_gold)  # from the cached lower-block states
    out = fitted.save_pretrained(tmp_path / "m")
    m = PolicyClassifier.from_pretrained(out)
    np.testing.assert_allclose(m.predict_proba(mini_gold), in_process, atol=1e-5)  # full forward pass
    assert m.metadata["training"]["trained_layers"] == "top 1 of 2"
    assert m.metadata["head"]["pooling"] == "mean_text"
    assert m.metadata["training"]["cached_frozen_layers"] is True
    assert m.metadata["training"]["trainable_params"] < m.metadata["training"]["total_params"]
    p = m.predict_proba(mini_gold[:5])
    assert p.shape == (5, 17) and np.isfinite(p).all()
    assert m.thresholds.tolist() == pytest.approx([0.5] * 17)
