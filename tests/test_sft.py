"""SFT: the chat template and its tokens, loss masking, batching, the shifted loss, embeddings, HF path."""

import pytest
import torch
import torch.nn.functional as F

from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.losses import IGNORE_INDEX
from llm_from_scratch.sft import (ASSISTANT, CHAT_TOKENS, END, USER, add_chat_tokens, encode_conversation,
                                  encode_hf_conversation, encode_prompt, format_chat, pad_batch,
                                  resize_token_embeddings, sft_batches, sft_loss, truncate)
from llm_from_scratch.tokenizer import BPETokenizer

TEXT = ("First Citizen: Before we proceed any further, hear me speak.\nAll: Speak, speak.\n"
        "First Citizen: You are all resolved rather to die than to famish?\nAll: Resolved. resolved.\n") * 4


@pytest.fixture(scope="module")
def base_tok():
    return BPETokenizer.train_fast([TEXT], 300)


@pytest.fixture(scope="module")
def tok(base_tok):
    return add_chat_tokens(base_tok)


CONV = [{"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Who speaks first?"},
        {"role": "assistant", "content": "First Citizen"},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": "All speak."}]


def test_add_chat_tokens_appends_keeps_ids_and_is_idempotent(base_tok, tok):
    n = base_tok.vocab_size
    assert [tok.vocab[t] for t in CHAT_TOKENS] == list(range(n, n + 4))
    assert all(tok.vocab[t] == i for t, i in base_tok.vocab.items())
    assert add_chat_tokens(tok) is tok
    assert tok.encode(TEXT) == base_tok.encode(TEXT)


def test_format_chat_spells_the_template():
    msgs = CONV[1:3]
    assert format_chat(msgs) == "<|user|>\nWho speaks first?<|end|>\n<|assistant|>\nFirst Citizen<|end|>\n"
    assert format_chat(msgs[:1], add_generation_prompt=True) == "<|user|>\nWho speaks first?<|end|>\n<|assistant|>\n"


def test_single_turn_labels_hold_the_answer_and_its_end_only(tok):
    msgs = CONV[1:3]
    ids, labels = encode_conversation(tok, msgs)
    assert ids.dtype == labels.dtype == torch.long and ids.shape == labels.shape
    # The ids are the text of the template, markers as single control tokens.
    assert tok.decode(ids.tolist()) == format_chat(msgs)
    assert ids.tolist() == tok.encode(format_chat(msgs))  # this text: piecewise == whole
    kept = labels != IGNORE_INDEX
    assert torch.equal(labels[kept], ids[kept])
    assert tok.decode(labels[kept].tolist()) == "First Citizen" + END
    # The labelled tokens are one contiguous run ending with <|end|>.
    pos = kept.nonzero().squeeze(-1)
    assert pos.tolist() == list(range(int(pos[0]), int(pos[-1]) + 1))
    assert ids[pos[-1]] == tok.vocab[END] and ids[pos[0] - 2] == tok.vocab[ASSISTANT]


def test_multi_turn_masks_every_non_assistant_turn(tok):
    ids, labels = encode_conversation(tok, CONV)
    kept = labels != IGNORE_INDEX
    learned = tok.decode(labels[kept].tolist())
    assert learned == "First Citizen" + END + "All speak." + END
    for m in CONV:
        if m["role"] != "assistant":
            assert m["content"] not in learned
    masked = tok.decode(ids[~kept].tolist())
    assert "Who speaks first?" in masked and "And then?" in masked and "Answer briefly." in masked
    assert masked.count(END) == 3  # the system's and the users' ends are not learned


def test_a_typed_marker_is_text_not_a_control_token(tok):
    ids, labels = encode_conversation(tok, [{"role": "user", "content": "say <|end|> now"},
                                            {"role": "assistant", "content": "ok"}])
    end_id = tok.vocab[END]
    assert ids.tolist().count(end_id) == 2  # the user's and the assistant's turn ends, not the typed one
    assert "say <|end|> now" in tok.decode(ids.tolist())


def test_bad_messages_are_clear_errors(tok):
    with pytest.raises(ValueError, match="role"):
        format_chat([{"role": "bot", "content": "x"}])
    with pytest.raises(ValueError, match="add_chat_tokens"):
        encode_conversation(BPETokenizer.train_fast([TEXT], 280), CONV[1:3])


def test_loss_at_position_t_scores_token_t_plus_1(tok):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))
    ids, labels = encode_conversation(tok, CONV[1:3])
    loss = sft_loss(model, (ids[None], labels[None]))
    logits = model(ids[None])[0][0]
    logp = torch.log_softmax(logits, -1)
    terms = [-logp[t, ids[t + 1]] for t in range(len(ids) - 1) if labels[t + 1] != IGNORE_INDEX]
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-6)
    # and equal to torch's cross entropy with the transformers-style shift
    ref = F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
    assert torch.allclose(loss, ref, atol=1e-6)


def test_padding_and_batching(tok):
    a = encode_conversation(tok, CONV[1:3])
    b = encode_conversation(tok, CONV)
    ids, labels = pad_batch([a, b], pad_id=tok.eos_id)
    assert ids.shape == labels.shape == (2, len(b[0]))
    assert torch.equal(ids[0, :len(a[0])], a[0]) and (ids[0, len(a[0]):] == tok.eos_id).all()
    assert (labels[0, len(a[0]):] == IGNORE_INDEX).all() and torch.equal(labels[1], b[1])
    # Right padding leaves the loss of each conversation unchanged (causal attention).
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))
    lp = torch.log_softmax(model(ids)[0], -1)
    lp_a = torch.log_softmax(model(a[0][None])[0], -1)
    assert torch.allclose(lp[0, :len(a[0])], lp_a[0], atol=1e-5)
    batches = sft_batches([a, b, a, b], batch_size=2, pad_id=tok.eos_id)
    x, y = batches(0)
    assert x.shape[0] == 2 and x.shape == y.shape


def test_truncation_never_cuts_an_answer_silently(tok):
    ids, labels = encode_conversation(tok, CONV[1:3] + [CONV[3]])  # ends with a user turn
    answer_end = int((labels != IGNORE_INDEX).nonzero()[-1])
    x, y = truncate(ids, labels, answer_end + 1)  # cuts only the trailing user turn
    assert len(x) == answer_end + 1 and torch.equal(y, labels[:answer_end + 1])
    with pytest.raises(ValueError, match="would cut an assistant answer"):
        truncate(ids, labels, answer_end)
    with pytest.warns(UserWarning, match="dropped 1 of 2"):
        short = encode_conversation(tok, [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
        assert len(short[0]) < answer_end
        batches = sft_batches([(ids, labels), short], 1, 0, max_len=answer_end)
    assert torch.equal(batches(0)[0][0], short[0])  # the one that fits is kept whole


def test_resize_embeddings_mean_rows_tied_and_padded(base_tok, tok):
    torch.manual_seed(0)
    n = base_tok.vocab_size  # 300: padded to 320 rows by the presets' rule
    model = GPT(GPTConfig(vocab_size=320, block_size=32, n_layer=1, n_head=2, n_embd=16))
    old = model.transformer.wte.weight.detach().clone()
    resize_token_embeddings(model, tok.vocab_size, n, pad_vocab_to=64)  # fits in the padding rows
    w = model.transformer.wte.weight
    assert w.shape[0] == 320 and model.lm_head.weight is w
    assert torch.equal(w[:n], old[:n]) and torch.allclose(w[n:tok.vocab_size], old[:n].mean(0).expand(4, -1))
    model2 = GPT(GPTConfig(vocab_size=n, block_size=32, n_layer=1, n_head=2, n_embd=16))
    old2 = model2.transformer.wte.weight.detach().clone()
    resize_token_embeddings(model2, tok.vocab_size, n, pad_vocab_to=64)  # grows to the next multiple
    w2 = model2.transformer.wte.weight
    assert w2.shape[0] == 320 and model2.config.vocab_size == 320 and model2.lm_head.weight is w2
    assert torch.equal(w2[:n], old2) and torch.allclose(w2[n:], old2.mean(0).expand(20, -1))
    # A mean row's logit is the mean of the old logits: the new tokens start no likelier than average.
    x = torch.tensor([[1, 2, 3]])
    logits = model2(x)[0][0, -1]
    assert torch.allclose(logits[n], logits[:n].mean(), atol=1e-5)
    assert logits[n] < logits[:n].logsumexp(0) - torch.log(torch.tensor(float(n))) + 1e-5


def test_hf_chat_template_gives_the_same_ids_and_mask(tok):
    from transformers import PreTrainedTokenizerFast

    template = ("{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")
    hf = PreTrainedTokenizerFast(tokenizer_object=tok.to_hf(), eos_token=END)
    hf.chat_template = template
    for msgs in (CONV[1:3], CONV):
        ids, labels = encode_hf_conversation(hf, msgs)
        ours_ids, ours_labels = encode_conversation(tok, msgs)
        assert ids.tolist() == ours_ids.tolist() and labels.tolist() == ours_labels.tolist()
    prompt = hf.apply_chat_template(CONV[1:2], tokenize=True, add_generation_prompt=True)
    prompt = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    assert list(prompt) == encode_prompt(tok, CONV[1:2]).tolist()


def test_hf_template_with_a_trailing_newline_after_the_end_token(tok):
    """A template whose end-of-turn is followed by other tokens: those stay masked."""
    from transformers import PreTrainedTokenizerFast

    template = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>\n\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")
    hf = PreTrainedTokenizerFast(tokenizer_object=tok.to_hf(), eos_token=END)
    hf.chat_template = template
    ids, labels = encode_hf_conversation(hf, CONV)
    kept = labels != IGNORE_INDEX
    assert tok.decode(labels[kept].tolist()) == "First Citizen<|end|>All speak.<|end|>"
    assert USER in tok.decode(ids[~kept].tolist())


def test_sft_through_the_training_loop_lowers_the_loss(tok):
    from llm_from_scratch.train import TrainConfig, train

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32))
    data = [encode_conversation(tok, CONV[1:3]), encode_conversation(tok, CONV)]
    batches = sft_batches(data, batch_size=2, pad_id=tok.eos_id)
    before = sft_loss(model, batches(0)).item()
    train(model, batches, config=TrainConfig(max_steps=30, lr=1e-2, warmup_steps=0, eval_every=30,
                                             progress=False, device="cpu"), loss_fn=sft_loss)
    model.eval()
    after = sft_loss(model, batches(0)).item()
    assert after < 0.5 * before


def test_full_setting_path_on_a_tiny_local_hf_model_with_lora(tok, tmp_path):
    """The Colab path offline: a transformers tokenizer with a template, a conversation file, a tiny
    Llama from transformers with LoRA adapters, SFT through the course's loop."""
    import json

    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from llm_from_scratch.lora import apply_lora, lora_parameters
    from llm_from_scratch.train import TrainConfig, train

    path = tmp_path / "conversations.jsonl"
    path.write_text("\n".join(json.dumps({"messages": m}) for m in (CONV, CONV[1:3], CONV[1:])) + "\n")
    hf = PreTrainedTokenizerFast(tokenizer_object=tok.to_hf(), eos_token=END)
    hf.chat_template = ("{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}"
                        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")
    convs = [encode_hf_conversation(hf, json.loads(line)["messages"]) for line in path.read_text().splitlines()]
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64))
    apply_lora(model, r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    assert lora_parameters(model) and all(not p.requires_grad for n, p in model.named_parameters() if "lora" not in n)
    batches = sft_batches(convs, batch_size=3, pad_id=tok.eos_id)
    # sft_loss on the HF model equals transformers' own shifted loss with the same labels
    x, y = batches(0)
    assert torch.allclose(sft_loss(model, (x, y)), model(input_ids=x, labels=y).loss, atol=1e-5)
    before = sft_loss(model, batches(0)).item()
    train(model, batches, config=TrainConfig(max_steps=25, lr=1e-2, warmup_steps=0, eval_every=25,
                                             progress=False, device="cpu"), loss_fn=sft_loss)
    assert sft_loss(model, batches(0)).item() < before
