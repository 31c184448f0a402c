"""BERT: the encoder and the masked-LM head against transformers (weights loaded from its
checkpoints), padding handled like running each sequence alone, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

import transformers
from transformers import BertConfig as HFBertConfig
from transformers import BertForMaskedLM as HFBertForMaskedLM
from transformers import BertForPreTraining as HFBertForPreTraining
from transformers import BertModel as HFBertModel

from llm_from_scratch.bert import BertConfig, BertForMaskedLM, BertModel

transformers.logging.set_verbosity_error()




def hf_config(**kw):
    return HFBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, **kw)


def perturb_layernorms(model):
    # Fresh LayerNorms are (1, 0) everywhere: randomise them so a mix-up between two would show.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def padded_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0  # [PAD]
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return ids, mask, types


@pytest.fixture(scope="module")
def hf_mlm_dir(tmp_path_factory):
    torch.manual_seed(0)
    hf = perturb_layernorms(HFBertForMaskedLM(hf_config())).eval()
    path = tmp_path_factory.mktemp("hf_bert_mlm")
    hf.save_pretrained(path)
    return hf, path


def test_masked_lm_logits_equal_transformers_with_padding(hf_mlm_dir):
    hf, path = hf_mlm_dir
    ours = BertForMaskedLM.from_hf_bert(path).eval()
    assert ours.config.hidden_size == 32 and ours.config.num_attention_heads == 2
    ids, mask, types = padded_batch()
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types).logits
        logits = ours(ids, attention_mask=mask, token_type_ids=types)
    assert logits.shape == (3, 12, 100)
    real = mask.bool()
    torch.testing.assert_close(logits[real], ref[real], atol=1e-5, rtol=0)
    assert ours.decoder.weight is ours.bert.embeddings.word_embeddings.weight


def test_encoder_and_pooler_equal_transformers(tmp_path):
    torch.manual_seed(1)
    hf = perturb_layernorms(HFBertModel(hf_config())).eval()
    hf.save_pretrained(tmp_path)
    ours = BertModel.from_hf_bert(tmp_path).eval()
    ids, mask, types = padded_batch()
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types)
        seq = ours(ids, mask, types)
        pooled = ours.pool(seq)
    real = mask.bool()
    torch.testing.assert_close(seq[real], ref.last_hidden_state[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled, ref.pooler_output, atol=1e-5, rtol=0)


def test_pretraining_checkpoint_with_tf_names_loads_into_both(hf_mlm_dir):
    # bert-base-uncased is a BertForPreTraining checkpoint (with the next-sentence head), and old
    # checkpoints name LayerNorm parameters gamma / beta.
    torch.manual_seed(2)
    hf = perturb_layernorms(HFBertForPreTraining(hf_config())).eval()
    sd = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
          for k, v in hf.state_dict().items()}
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    mlm = BertForMaskedLM.from_hf_bert(sd, config=config).eval()
    enc = BertModel.from_hf_bert(sd, config=config).eval()
    ids, mask, types = padded_batch()
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types)
        hidden = hf.bert(ids, attention_mask=mask, token_type_ids=types)
        real = mask.bool()
        torch.testing.assert_close(mlm(ids, mask, types)[real], ref.prediction_logits[real], atol=1e-5, rtol=0)
        torch.testing.assert_close(enc.pool(enc(ids, mask, types)), hidden.pooler_output, atol=1e-5, rtol=0)


def test_padding_changes_nothing_at_real_positions():
    # Brute-force reference: each sequence run alone, unpadded.
    torch.manual_seed(3)
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=64, max_position_embeddings=32)).eval()
    lengths = [10, 6, 3]
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(1, 50, (n,), generator=g) for n in lengths]
    ids = torch.zeros(3, 10, dtype=torch.long)
    mask = torch.zeros(3, 10, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    with torch.no_grad():
        batched = model(ids, attention_mask=mask)
        for i, s in enumerate(seqs):
            alone = model(s[None])
            torch.testing.assert_close(batched[i, : len(s)], alone[0], atol=1e-5, rtol=0)
    assert torch.isfinite(batched).all()


def test_mismatches_are_reported_by_name(hf_mlm_dir):
    hf, path = hf_mlm_dir
    sd = dict(hf.state_dict())
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    no_bias = {k: v for k, v in sd.items() if k != "bert.encoder.layer.1.output.dense.bias"}
    with pytest.raises(ValueError, match=r"missing.*bert\.layers\.1\.mlp\.c_proj\.bias"):
        BertForMaskedLM.from_hf_bert(no_bias, config=config)
    no_key = {k: v for k, v in sd.items() if k != "bert.encoder.layer.0.attention.self.key.weight"}
    with pytest.raises(ValueError, match=r"layer 0 .*key"):
        BertForMaskedLM.from_hf_bert(no_key, config=config)
    wide = BertConfig(**{**config.to_dict(), "intermediate_size": 128})
    with pytest.raises(ValueError, match=r"shape mismatch.*intermediate\.dense\.weight"):
        BertForMaskedLM.from_hf_bert(sd, config=wide)
    encoder_only = {k: v for k, v in sd.items() if not k.startswith("cls.")}
    with pytest.raises(ValueError, match=r"missing.*transform\.weight"):
        BertForMaskedLM.from_hf_bert(encoder_only, config=config)
    # An MLM checkpoint has no pooler: the encoder loads, and the untrained pooler is warned about.
    with pytest.warns(UserWarning, match="no pooler"):
        BertModel.from_hf_bert(path)


def test_config_round_trip_and_errors():
    cfg = BertConfig(vocab_size=120, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=256, max_position_embeddings=128)
    assert BertConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig.from_dict({**cfg.to_dict(), "hidden_act": "gelu"})
    assert BertConfig.from_dict({**cfg.to_dict(), "hidden_act": "gelu"}, strict=False) == cfg
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    model = BertModel(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=8))
    with pytest.raises(ValueError, match="max_position_embeddings=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.zeros(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))


def test_parameter_count_matches_transformers():
    hf = HFBertForMaskedLM(hf_config())
    ours = BertForMaskedLM.from_hf_bert(hf)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())
