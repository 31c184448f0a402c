"""The encoder–decoder against torch.nn.Transformer, and its decoders against each other."""

import pytest
import torch
import torch.nn as nn

from llm_from_scratch.seq2seq import EncoderDecoder, Seq2SeqConfig, beam_search, greedy_decode, load_into_torch_transformer


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(src_vocab_size=13, tgt_vocab_size=11, block_size=16, n_layer=2, n_head=4, n_embd=32)
    cfg.update(kw)
    return EncoderDecoder(Seq2SeqConfig(**cfg))


def _perturb(model):
    # LayerNorms start at (1, 0) and biases at 0: make every parameter count in the comparison
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("train", [False, True])
def test_decoder_hidden_states_equal_torch_transformer(activation, train):
    model = _model(activation=activation, n_decoder_layer=3)
    _perturb(model)
    ref = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=128,
                         dropout=0.0, activation=activation, batch_first=True, norm_first=True)
    load_into_torch_transformer(model, ref)
    model.train(train), ref.train(train)
    src = torch.randint(1, 13, (3, 7))
    tgt = torch.randint(1, 11, (3, 5))
    src_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5]).bool()  # padding on the source...
    tgt_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]]).bool()  # ...and on the target
    xs, xt = model.embed_src(src), model.embed_tgt(tgt)
    mine = model.decode_embedded(xt, model.encode_embedded(xs, src_mask), src_mask, tgt_mask)
    theirs = ref(xs, xt, tgt_mask=ref.generate_square_subsequent_mask(5, dtype=torch.bool),
                 src_key_padding_mask=~src_mask, tgt_key_padding_mask=~tgt_mask, memory_key_padding_mask=~src_mask,
                 tgt_is_causal=True)
    real = tgt_mask  # torch's fast path may zero padded query rows; the real positions must agree
    assert torch.allclose(mine[real], theirs[real], atol=1e-5), (mine[real] - theirs[real]).abs().max()


def test_forward_shapes_loss_and_padding_invariance():
    model = _model(positions="learned").eval()
    src = torch.randint(1, 13, (2, 6))
    tgt = torch.randint(1, 11, (2, 4))
    logits, loss = model(src, tgt, targets=tgt)
    assert logits.shape == (2, 4, 11) and torch.isfinite(loss)
    assert torch.allclose(loss, nn.functional.cross_entropy(logits.reshape(-1, 11), tgt.reshape(-1)))
    # extra source padding, masked, changes nothing
    src_p = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(2, 6), torch.zeros(2, 3)], 1)
    logits_p, _ = model(src_p, tgt, src_mask=mask)
    assert torch.allclose(logits, logits_p, atol=1e-5)
    # the decoder is causal: changing a later target token leaves earlier logits alone
    tgt2 = tgt.clone()
    tgt2[:, -1] = (tgt2[:, -1] % 10) + 1
    assert torch.allclose(model(src, tgt2)[0][:, :-1], logits[:, :-1], atol=1e-6)


def test_shared_embeddings_need_equal_vocabularies():
    model = _model(src_vocab_size=11, shared_embeddings=True)
    assert model.src_emb is model.tgt_emb
    with pytest.raises(ValueError, match="shared_embeddings"):
        Seq2SeqConfig(13, 11, 16, 1, 2, 8, shared_embeddings=True)


def _reference_greedy(model, src, src_mask, n, bos, eos):
    """Greedy decoding written out one row at a time with the plain forward pass (no cache)."""
    rows = []
    for b in range(src.shape[0]):
        keep = src_mask[b].bool()
        s = src[b][keep][None]
        y = [bos]
        for _ in range(n):
            logits, _ = model(s, torch.tensor([y]))
            y.append(int(logits[0, -1].argmax()))
            if y[-1] == eos:
                break
        rows.append(y[1:])
    return rows


def test_greedy_cached_equals_uncached_and_the_plain_forward():
    model = _model(dropout=0.1).eval()
    _perturb(model)
    src = torch.randint(3, 13, (4, 8))
    src_mask = torch.ones(4, 8, dtype=torch.bool)
    src_mask[1, 5:] = False
    src_mask[3, 2:] = False
    cached = greedy_decode(model, src, 10, bos_id=1, eos_id=2, src_mask=src_mask)
    uncached = greedy_decode(model, src, 10, bos_id=1, eos_id=2, src_mask=src_mask, use_cache=False)
    assert torch.equal(cached, uncached)
    for b, row in enumerate(_reference_greedy(model, src, src_mask, 10, 1, 2)):
        assert cached[b, :len(row)].tolist() == row
        assert (cached[b, len(row):] == model.config.pad_id).all()


def test_greedy_keeps_eos_then_pads():
    model = _model().eval()
    _perturb(model)
    model.config.pad_id = 99  # outside the vocabulary: padding cannot be mistaken for a token
    src = torch.randint(3, 13, (4, 6))
    free = greedy_decode(model, src, 8, bos_id=1, eos_id=-1)  # no end token: 8 tokens per row
    eos = int(free[0, 1])  # make row 0's second token the end token
    out = greedy_decode(model, src, 8, bos_id=1, eos_id=eos)
    for b in range(4):
        row = free[b].tolist()
        n = row.index(eos) + 1 if eos in row else len(row)
        assert out[b, :n].tolist() == row[:n]
        assert (out[b, n:] == 99).all()
    assert out.shape[1] == max(free[b].tolist().index(eos) + 1 if eos in free[b].tolist() else 8 for b in range(4))


def test_beam_size_one_is_greedy_and_cached_equals_uncached():
    model = _model().eval()
    _perturb(model)
    src = torch.randint(3, 13, (5, 7))
    src_mask = torch.ones(5, 7, dtype=torch.bool)
    src_mask[2, 4:] = False
    g = greedy_decode(model, src, 12, 1, 2, src_mask=src_mask)
    b1 = beam_search(model, src, 1, 12, 1, 2, length_penalty=0.0, src_mask=src_mask)
    assert torch.equal(g, b1)
    b4 = beam_search(model, src, 4, 12, 1, 2, src_mask=src_mask)
    b4u = beam_search(model, src, 4, 12, 1, 2, src_mask=src_mask, use_cache=False)
    assert torch.equal(b4, b4u)


def _score(model, src, hyp, bos, lp):
    logits, _ = model(src[None], torch.tensor([[bos] + hyp[:-1]]))
    logp = logits.log_softmax(-1)[0, torch.arange(len(hyp)), torch.tensor(hyp)].sum().item()
    return logp / len(hyp) ** lp


def test_beam_search_finds_the_best_hypothesis_of_brute_force_on_a_tiny_vocabulary():
    # V = 4 tokens, at most 3 new tokens: every sequence ending in EOS (or of full length) is enumerable
    torch.manual_seed(1)
    model = EncoderDecoder(Seq2SeqConfig(5, 4, 8, 1, 2, 16)).eval()
    _perturb(model)
    bos, eos, n = 1, 2, 3
    import itertools
    for lp in (0.0, 1.0):
        for b in range(3):
            src = torch.randint(0, 5, (6,))
            hyps = []
            for L in range(1, n + 1):
                for seq in itertools.product(range(4), repeat=L):
                    if eos in seq[:-1] or (L < n and seq[-1] != eos):
                        continue
                    hyps.append(list(seq))
            best = max(hyps, key=lambda h: _score(model, src, h, bos, lp))
            out = beam_search(model, src[None], beam_size=16, max_new_tokens=n, bos_id=bos, eos_id=eos,
                              length_penalty=lp)[0].tolist()
            out = out[:out.index(eos) + 1] if eos in out else out
            assert abs(_score(model, src, out, bos, lp) - _score(model, src, best, bos, lp)) < 1e-5
