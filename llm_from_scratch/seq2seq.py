"""The encoder–decoder Transformer (Vaswani et al., 2017), pre-LayerNorm, and how to decode with it.

    memory = Encoder(src)                         every source position sees every real source position
    h      = Decoder(tgt, memory)                 per block, with x the decoder stream:
               x = x + SelfAttn_causal(LN₁(x))             target position t sees targets 0..t
               x = x + CrossAttn(LN₂(x), memory)           queries from x, keys/values from memory
               x = x + FFN(LN₃(x))
    logits = LN_f(h) W_out                        p(yₜ₊₁ | y₀..yₜ, src) = softmax(logits)ₜ

Cross-attention is ``attention.MultiHeadAttention(cross=True)``: Q = X W_q (decoder), K = M W_k,
V = M W_v (encoder output M), softmax(Q Kᵀ / √d + source padding mask) V.

Shapes: B batch, S source length, T target length, d = n_embd, V vocabulary.
Masks mark real tokens with True/1 and padding with False/0 (``transformers``' ``attention_mask``);
``torch.nn.Transformer`` marks *padding* with True: convert with ``~mask``.

Three masks: the source padding mask (B, S) in the encoder's self-attention, the target causal mask
(T, T) (and the target padding mask (B, T)) in the decoder's self-attention, and the memory padding
mask = the source padding mask (B, S) in cross-attention.

Training uses teacher forcing: ``tgt_ids`` = [BOS, y₁, ..., y_{n-1}], ``targets`` = [y₁, ..., yₙ=EOS]
(the caller shifts, as for the GPT; target -100 is ignored). Decoding (:func:`greedy_decode`,
:func:`beam_search`) feeds the model its own outputs and caches the encoder output, the
cross-attention keys/values (projected once) and the decoder's self-attention keys/values.

Mapping to ``torch.nn.Transformer(norm_first=True)``: :func:`load_into_torch_transformer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import LearnedPositionalEmbedding, MultiHeadAttention, SinusoidalPositionalEncoding

__all__ = ["Seq2SeqConfig", "EncoderBlock", "DecoderBlock", "EncoderDecoder", "greedy_decode", "beam_search",
           "load_into_torch_transformer"]


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    block_size: int  # the longest source or target sequence (positions 0..block_size-1)
    n_layer: int  # encoder blocks (and decoder blocks unless n_decoder_layer is given)
    n_head: int
    n_embd: int
    dropout: float = 0.0
    n_decoder_layer: int | None = None
    ffn_mult: int = 4  # FFN hidden size = ffn_mult * n_embd
    activation: str = "gelu"  # "gelu" or "relu" (nn.Transformer's default)
    positions: str = "sinusoidal"  # or "learned"
    shared_embeddings: bool = False  # one token table for source and target (needs equal vocabularies)
    bias: bool = True
    pad_id: int = 0  # what the decoders write after the end token

    def __post_init__(self):
        if self.positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {self.positions!r}")
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {self.activation!r}")
        if self.shared_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"shared_embeddings needs src_vocab_size == tgt_vocab_size, got "
                             f"{self.src_vocab_size} and {self.tgt_vocab_size}")
        if self.n_decoder_layer is None:
            self.n_decoder_layer = self.n_layer


class FeedForward(nn.Module):
    """FFN(x) = W₂ dropout(act(W₁ x + b₁)) + b₂, hidden size ffn_mult·d (torch's linear1/linear2)."""

    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.fc1 = nn.Linear(c.n_embd, c.ffn_mult * c.n_embd, bias=c.bias)
        self.fc2 = nn.Linear(c.ffn_mult * c.n_embd, c.n_embd, bias=c.bias)
        self.act = nn.GELU() if c.activation == "gelu" else nn.ReLU()
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


class EncoderBlock(nn.Module):
    """x = x + drop(SelfAttn(LN₁(x), src_mask));  x = x + drop(FFN(LN₂(x)))."""

    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.n_embd)
        self.attn = MultiHeadAttention(c.n_embd, c.n_head, c.dropout, c.bias)
        self.ln2 = nn.LayerNorm(c.n_embd)
        self.ffn = FeedForward(c)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, src_mask=None):
        x = x + self.drop(self.attn(self.ln1(x), mask=src_mask))
        return x + self.drop(self.ffn(self.ln2(x)))


class DecoderBlock(nn.Module):
    """x = x + SelfAttn_causal(LN₁(x)); x = x + CrossAttn(LN₂(x), memory); x = x + FFN(LN₃(x)).

    ``past`` = (self_kv, cross_kv) from an earlier call with ``use_cache``: self_kv grows by the new
    positions, cross_kv (the projected memory) is reused as it is."""

    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.n_embd)
        self.self_attn = MultiHeadAttention(c.n_embd, c.n_head, c.dropout, c.bias, causal=True)
        self.ln2 = nn.LayerNorm(c.n_embd)
        self.cross_attn = MultiHeadAttention(c.n_embd, c.n_head, c.dropout, c.bias, cross=True)
        self.ln3 = nn.LayerNorm(c.n_embd)
        self.ffn = FeedForward(c)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, memory, src_mask=None, tgt_mask=None, past=None, use_cache=False):
        self_kv, cross_kv = past if past is not None else (None, None)
        a = self.self_attn(self.ln1(x), mask=tgt_mask, past_kv=self_kv, use_cache=use_cache)
        a, self_kv = a if use_cache else (a, None)
        x = x + self.drop(a)
        c = self.cross_attn(self.ln2(x), mask=src_mask, past_kv=cross_kv, use_cache=use_cache,
                            context=None if cross_kv is not None else memory)
        c, cross_kv = c if use_cache else (c, None)
        x = x + self.drop(c)
        x = x + self.drop(self.ffn(self.ln3(x)))
        return (x, (self_kv, cross_kv)) if use_cache else x


def _bool_mask(mask, ids, name):
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(ids.shape):
        raise ValueError(f"{name} must have the shape of its ids {tuple(ids.shape)} (1 = real token), "
                         f"got {tuple(mask.shape)}")
    return mask.bool()


class EncoderDecoder(nn.Module):
    """The whole model: embeddings (token · √d + position), encoder, decoder, final norms, output layer."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = self.config = config
        self.src_emb = nn.Embedding(c.src_vocab_size, c.n_embd)
        self.tgt_emb = self.src_emb if c.shared_embeddings else nn.Embedding(c.tgt_vocab_size, c.n_embd)
        if c.positions == "sinusoidal":
            self.src_pos = self.tgt_pos = SinusoidalPositionalEncoding(c.n_embd, c.block_size)
        else:
            self.src_pos = LearnedPositionalEmbedding(c.block_size, c.n_embd)
            self.tgt_pos = LearnedPositionalEmbedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(c) for _ in range(c.n_layer))
        self.enc_norm = nn.LayerNorm(c.n_embd)
        self.decoder = nn.ModuleList(DecoderBlock(c) for _ in range(c.n_decoder_layer))
        self.dec_norm = nn.LayerNorm(c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.tgt_vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed_src(self, src_ids):
        return self.drop(self.src_pos(self.src_emb(src_ids) * math.sqrt(self.config.n_embd)))

    def embed_tgt(self, tgt_ids, offset: int = 0):
        return self.drop(self.tgt_pos(self.tgt_emb(tgt_ids) * math.sqrt(self.config.n_embd), offset))

    def encode_embedded(self, x, src_mask=None):
        """(B, S, d) embedded source -> memory (B, S, d) = LN(encoder blocks(x))."""
        for block in self.encoder:
            x = block(x, src_mask)
        return self.enc_norm(x)

    def encode(self, src_ids, src_mask=None):
        return self.encode_embedded(self.embed_src(src_ids), _bool_mask(src_mask, src_ids, "src_mask"))

    def decode_embedded(self, y, memory, src_mask=None, tgt_mask=None, past=None, use_cache=False):
        """(B, T, d) embedded target -> final hidden states LN(decoder blocks(y)) (B, T, d),
        and the new cache (one (self_kv, cross_kv) per block) with ``use_cache``."""
        new = []
        for i, block in enumerate(self.decoder):
            out = block(y, memory, src_mask, tgt_mask, None if past is None else past[i], use_cache)
            y, kv = out if use_cache else (out, None)
            new.append(kv)
        y = self.dec_norm(y)
        return (y, new) if use_cache else y

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None, targets=None):
        """src_ids (B, S), tgt_ids (B, T) starting with BOS; masks (B, S), (B, T), True/1 = real token;
        targets (B, T) aligned with the logits (-100 = ignore). Returns logits (B, T, V), loss or None."""
        src_mask = _bool_mask(src_mask, src_ids, "src_mask")
        tgt_mask = _bool_mask(tgt_mask, tgt_ids, "tgt_mask")
        memory = self.encode_embedded(self.embed_src(src_ids), src_mask)
        h = self.decode_embedded(self.embed_tgt(tgt_ids), memory, src_mask, tgt_mask)
        logits = self.lm_head(h)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-100)
        return logits, loss


# ------------------------------------------------------------------------------------ decoding


class _Stepper:
    """Next-token log-probabilities, one step at a time, with or without the caches."""

    def __init__(self, model, memory, src_mask, use_cache):
        self.model, self.memory, self.src_mask, self.use_cache = model, memory, src_mask, use_cache
        self.past = None

    def __call__(self, seqs):  # seqs (N, t): everything generated so far, BOS first
        m = self.model
        if self.use_cache:
            t = seqs.shape[1] - 1
            h, self.past = m.decode_embedded(m.embed_tgt(seqs[:, -1:], offset=t), self.memory, self.src_mask,
                                             past=self.past, use_cache=True)
        else:
            h = m.decode_embedded(m.embed_tgt(seqs), self.memory, self.src_mask)
        return F.log_softmax(m.lm_head(h[:, -1]).float(), dim=-1)

    def reorder(self, index):  # keep the caches of the chosen beams
        if self.past is not None:
            self.past = [((s[0][index], s[1][index]), (c[0][index], c[1][index])) for s, c in self.past]
        self.memory = self.memory[index]
        if self.src_mask is not None:
            self.src_mask = self.src_mask[index]


def _check_budget(model, max_new_tokens):
    if max_new_tokens < 1 or max_new_tokens + 1 > model.config.block_size:
        raise ValueError(f"max_new_tokens must be in 1..block_size-1 = {model.config.block_size - 1} "
                         f"(the start token takes a position), got {max_new_tokens}")


@torch.no_grad()
def greedy_decode(model, src_ids, max_new_tokens, bos_id, eos_id, src_mask=None, use_cache=True):
    """yₜ₊₁ = argmax p(· | y₀..yₜ, src) until EOS (kept) or max_new_tokens. Returns (B, T) ids without BOS,
    pad_id after each row's EOS. ``use_cache=False`` recomputes the whole decoder every step."""
    _check_budget(model, max_new_tokens)
    src_mask = _bool_mask(src_mask, src_ids, "src_mask")
    memory = model.encode(src_ids, src_mask)
    step = _Stepper(model, memory, src_mask, use_cache)
    B = src_ids.shape[0]
    seqs = torch.full((B, 1), bos_id, dtype=torch.long, device=src_ids.device)
    fed = seqs  # what the model reads: a finished row keeps reading its EOS (pad_id may be no token)
    done = torch.zeros(B, dtype=torch.bool, device=src_ids.device)
    for _ in range(max_new_tokens):
        nxt = step(fed).argmax(-1)
        fed = torch.cat([fed, torch.where(done, fed[:, -1], nxt)[:, None]], dim=1)
        nxt = torch.where(done, torch.full_like(nxt, model.config.pad_id), nxt)
        seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        done |= nxt == eos_id
        if done.all():
            break
    return seqs[:, 1:]


@torch.no_grad()
def beam_search(model, src_ids, beam_size, max_new_tokens, bos_id, eos_id, length_penalty=1.0, src_mask=None,
                use_cache=True):
    """Keep the ``beam_size`` best prefixes; a hypothesis that ends with EOS is finished with
    score = Σ log p / length^length_penalty (length counts EOS). Stops at max_new_tokens, or when no
    live prefix can still beat the worst of ``beam_size`` finished ones. Returns the best hypothesis
    per row (B, T) without BOS, pad_id after EOS. With beam_size 1 and length_penalty 0 it is greedy."""
    _check_budget(model, max_new_tokens)
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    src_mask = _bool_mask(src_mask, src_ids, "src_mask")
    B, K, dev = src_ids.shape[0], beam_size, src_ids.device
    memory = model.encode(src_ids, src_mask)
    index = torch.arange(B, device=dev).repeat_interleave(K)  # each source K times
    step = _Stepper(model, memory[index], None if src_mask is None else src_mask[index], use_cache)
    seqs = torch.full((B * K, 1), bos_id, dtype=torch.long, device=dev)
    scores = torch.full((B, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # one live prefix at first (the K copies would give K equal beams)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
    done = [False] * B

    def norm(total, length):
        return total / length ** length_penalty

    for t in range(1, max_new_tokens + 1):
        logp = step(seqs).view(B, K, -1)
        V = logp.shape[-1]
        cand = (scores[:, :, None] + logp).view(B, K * V)
        top, idx = cand.topk(min(2 * K, K * V), dim=-1)  # 2K: enough to keep K alive after EOS endings
        new_scores = torch.full((B, K), float("-inf"), device=dev)
        new_beam = torch.zeros(B, K, dtype=torch.long, device=dev)
        new_tok = torch.full((B, K), bos_id, dtype=torch.long, device=dev)  # a valid token for dead beams
        for b in range(B):
            if done[b]:
                continue
            k = 0
            for rank, (s, j) in enumerate(zip(top[b].tolist(), idx[b].tolist())):
                if s == float("-inf") or k == K:
                    break
                beam, tok = divmod(j, V)
                if tok == eos_id:
                    if rank < K:  # an ending counts only if it is among the K best candidates
                        hyp = seqs[b * K + beam, 1:].tolist() + [eos_id]
                        finished[b].append((norm(s, t), hyp))
                    continue
                new_scores[b, k], new_beam[b, k], new_tok[b, k] = s, beam, tok
                k += 1
            finished[b] = sorted(finished[b], key=lambda x: -x[0])[:K]
            if len(finished[b]) == K:
                best_alive = new_scores[b].max().item()
                # Σ log p only falls; with length_penalty > 0 the divisor can still grow to max_new_tokens
                bound = norm(best_alive, max_new_tokens if length_penalty > 0 else t)
                done[b] = best_alive == float("-inf") or bound <= finished[b][-1][0]
        if all(done) or t == max_new_tokens:
            if t == max_new_tokens:
                for b in range(B):
                    if not done[b]:
                        for k in range(K):
                            if new_scores[b, k] > float("-inf"):
                                hyp = seqs[b * K + new_beam[b, k].item(), 1:].tolist() + [new_tok[b, k].item()]
                                finished[b].append((norm(new_scores[b, k].item(), t), hyp))
            break
        order = (torch.arange(B, device=dev)[:, None] * K + new_beam).view(-1)
        seqs = torch.cat([seqs[order], new_tok.view(-1, 1)], dim=1)
        step.reorder(order)
        scores = new_scores
    best = [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]
    T = max(1, max(len(h) for h in best))
    out = torch.full((B, T), model.config.pad_id, dtype=torch.long, device=dev)
    for b, h in enumerate(best):
        out[b, :len(h)] = torch.tensor(h, dtype=torch.long)
    return out


# ------------------------------------------------------------------------------------ torch mapping


@torch.no_grad()
def load_into_torch_transformer(model: EncoderDecoder, ref: nn.Transformer) -> nn.Transformer:
    """Copy the weights of ``model`` into ``torch.nn.Transformer(d_model=n_embd, nhead=n_head,
    num_encoder_layers=n_layer, num_decoder_layers=n_decoder_layer, dim_feedforward=ffn_mult·n_embd,
    norm_first=True, batch_first=True, activation=...)``. The mapping, per block:

        encoder.layers[i].self_attn.in_proj_*   <- encoder[i].attn.qkv        ([W_q; W_k; W_v])
        encoder.layers[i].self_attn.out_proj    <- encoder[i].attn.out_proj
        encoder.layers[i].norm1 / norm2         <- encoder[i].ln1 / ln2
        encoder.layers[i].linear1 / linear2     <- encoder[i].ffn.fc1 / fc2
        decoder.layers[i].self_attn.in_proj_*   <- decoder[i].self_attn.qkv
        decoder.layers[i].multihead_attn.in_proj_* <- cat(decoder[i].cross_attn.q_proj, .kv_proj)
        decoder.layers[i].norm1 / norm2 / norm3 <- decoder[i].ln1 / ln2 / ln3
        encoder.norm / decoder.norm             <- enc_norm / dec_norm

    Embeddings and the output layer are not part of ``nn.Transformer``: feed it ``model.embed_src``
    and ``model.embed_tgt`` and compare with ``model.decode_embedded``. Returns ``ref``."""

    def lin(dst, src):
        dst.weight.copy_(src.weight)
        if src.bias is not None:
            dst.bias.copy_(src.bias)

    def mha_self(dst, src):
        dst.in_proj_weight.copy_(src.qkv.weight)
        dst.in_proj_bias.copy_(src.qkv.bias)
        lin(dst.out_proj, src.out_proj)

    for mine, theirs in zip(model.encoder, ref.encoder.layers, strict=True):
        mha_self(theirs.self_attn, mine.attn)
        lin(theirs.norm1, mine.ln1), lin(theirs.norm2, mine.ln2)
        lin(theirs.linear1, mine.ffn.fc1), lin(theirs.linear2, mine.ffn.fc2)
    for mine, theirs in zip(model.decoder, ref.decoder.layers, strict=True):
        mha_self(theirs.self_attn, mine.self_attn)
        ca = mine.cross_attn
        theirs.multihead_attn.in_proj_weight.copy_(torch.cat([ca.q_proj.weight, ca.kv_proj.weight]))
        theirs.multihead_attn.in_proj_bias.copy_(torch.cat([ca.q_proj.bias, ca.kv_proj.bias]))
        lin(theirs.multihead_attn.out_proj, ca.out_proj)
        lin(theirs.norm1, mine.ln1), lin(theirs.norm2, mine.ln2), lin(theirs.norm3, mine.ln3)
        lin(theirs.linear1, mine.ffn.fc1), lin(theirs.linear2, mine.ffn.fc2)
    lin(ref.encoder.norm, model.enc_norm)
    lin(ref.decoder.norm, model.dec_norm)
    return ref
