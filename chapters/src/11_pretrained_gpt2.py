# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · GPT-2's weights in our model, and our model in Hugging Face's format
#
# The GPT you built in chapter 06 has the same layout as OpenAI's GPT-2, so it can run GPT-2's
# trained weights. In this chapter you open a Hugging Face checkpoint and look inside, map its
# tensor names and layouts onto ours (the transposed `Conv1D` weights and the fused query-key-value
# matrix are the two traps), prove the port correct by comparing logits with the `transformers`
# library, generate text, and export a model trained in this course back to the Hugging Face format
# so that anyone with `transformers` can load it. In Colab the real GPT-2 (124M parameters) is
# downloaded from the hub; offline and in CI a tiny randomly initialised GPT-2 stands in for it, and
# every check is the same.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/11_pretrained_gpt2.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import json
import tempfile
from pathlib import Path

import torch
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
seed_everything(0)
if SETTING != "full":
    torch.set_num_threads(1)  # the models here are tiny: a thread pool costs more than it saves


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can this machine reach the Hugging Face hub? (Never asked in the smoke setting: CI is offline.)"""
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


# The real GPT-2 (section 6) comes from the Hugging Face hub, where it can be reached; sections 1-5
# work on a GPT-2 of the same structure with random weights, the same everywhere.
USE_HUB = SETTING != "smoke" and hub_reachable()
import transformers
from transformers import GPT2Config, GPT2LMHeadModel
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()  # loading and saving bars: noise in a notebook
work = Path(tempfile.mkdtemp())  # scratch space for the checkpoints this chapter writes
print("USE_HUB =", USE_HUB)

# %% [markdown]
# ## 1. A checkpoint, opened
#
# A Hugging Face model folder (what `save_pretrained` writes and the hub serves) holds two things:
# `config.json`, the shape of the network, and `model.safetensors`, a flat table from tensor names to
# arrays. *safetensors* is a plain format (a JSON header, then raw numbers): unlike a pickle,
# loading it cannot run code, which matters for files downloaded from strangers.
#
# We make a GPT-2 with random weights and the same structure, two layers of width 32, and save it
# exactly as the hub's checkpoints are saved: every step below then works offline, and section 6 runs
# the same steps on the real GPT-2 where the hub can be reached.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
hf_model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
                                      bos_token_id=None, eos_token_id=None)).eval()
checkpoint = work / "tiny-gpt2"
hf_model.save_pretrained(checkpoint)
print(sorted(p.name for p in checkpoint.iterdir() if p.suffix in (".json", ".safetensors")))
cfg = hf_model.config
print({k: getattr(cfg, k) for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function")})

# %%
# NBVAL_CHECK_OUTPUT
state = hf_model.state_dict()
for name, tensor in state.items():
    if name.startswith("transformer.h.0.") or not name.startswith("transformer.h."):
        print(f"{name:40s} {tuple(tensor.shape)}")
print(f"... and the same for the other {cfg.n_layer - 1} blocks")

# %% [markdown]
# Two things stand out. The attention's query, key and value projections are **one** tensor,
# `c_attn`, of shape $(d, 3d)$. And every weight matrix is stored as (in, out): GPT-2 was written
# in TensorFlow, and Hugging Face keeps its layout with a `Conv1D` module that computes
#
# $$y = x W + b, \qquad W \in \mathbb{R}^{d_\text{in} \times d_\text{out}}$$
#
# whereas `nn.Linear` stores $W \in \mathbb{R}^{d_\text{out} \times d_\text{in}}$ and computes
# $y = x W^\top + b$. The same function, with transposed storage:

# %%
# NBVAL_CHECK_OUTPUT
conv = hf_model.transformer.h[0].mlp.c_fc
linear = torch.nn.Linear(conv.weight.shape[0], conv.weight.shape[1])
with torch.no_grad():
    linear.weight.copy_(conv.weight.T)
    linear.bias.copy_(conv.bias)
x = torch.randn(3, conv.weight.shape[0])
print("Conv1D weight", tuple(conv.weight.shape), "-> Linear weight", tuple(linear.weight.shape))
print("same output:", torch.allclose(conv(x), linear(x), atol=1e-6))

# %% [markdown]
# ## 2. Mapping names onto our model
#
# Our `GPT` uses nanoGPT's names, which are GPT-2's almost everywhere:
#
# | Hugging Face | ours | change |
# |---|---|---|
# | `transformer.wte`, `wpe`, `ln_f`, `h.i.ln_1`, `h.i.ln_2` | the same | none |
# | `h.i.attn.c_attn` $(d, 3d)$ | `h.i.attn.qkv` $(3d, d)$ | transpose; both are $[W_q; W_k; W_v]$ |
# | `h.i.attn.c_proj` | `h.i.attn.out_proj` | transpose |
# | `h.i.mlp.c_fc`, `h.i.mlp.c_proj` | the same | transpose |
# | `lm_head.weight` | (tied to `wte`) | not stored |
# | `h.i.attn.bias`, `masked_bias` (old files) | none | causal-mask buffers, not weights: ignored |
#
# The fused matrix splits the same way on both sides: after the transpose, rows $0..d-1$ are $W_q$,
# then $W_k$, then $W_v$, and inside each block head $h$ owns rows $h \cdot d_\text{head}$ to
# $(h+1) \cdot d_\text{head} - 1$. `GPT.from_hf_gpt2` does the whole mapping and checks that every
# tensor is used and has the right shape.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import GPT

model = GPT.from_hf_gpt2(checkpoint).eval()
print(model.config)
c_attn = state["transformer.h.0.attn.c_attn.weight"]
print("qkv.weight == c_attn.weight transposed:", torch.equal(model.transformer.h[0].attn.qkv.weight, c_attn.T))
print("parameters: ours", f"{model.num_parameters():,}", " transformers", f"{sum(p.numel() for p in hf_model.parameters()):,}")

# %% [markdown]
# A checkpoint that does not fit is refused with the names involved, instead of loading half of it
# or failing deep inside PyTorch. Here a config with one layer too many:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import GPTConfig

wrong = GPTConfig(vocab_size=cfg.vocab_size, block_size=cfg.n_positions, n_layer=cfg.n_layer + 1,
                  n_head=cfg.n_head, n_embd=cfg.n_embd)
try:
    GPT.from_hf_gpt2(state, config=wrong)
except ValueError as err:
    print(str(err)[:260], "...")

# %% [markdown]
# ## 3. Proving the port: the same logits as `transformers`
#
# Equal shapes are not proof. `c_proj` is square, $(d, d)$: forgetting its transpose loads without
# any error, and silently computes something else. The proof is numerical: on the same tokens, our
# logits must equal those of the reference implementation to float32 rounding.

# %%
# NBVAL_CHECK_OUTPUT
tokens = torch.randint(0, cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    ref = hf_model(tokens).logits
    ours, _ = model(tokens)
print("logits", tuple(ours.shape), " allclose(atol=1e-4):", torch.allclose(ours, ref, atol=1e-4))
assert torch.allclose(ours, ref, atol=1e-4)

# %%
# NBVAL_CHECK_OUTPUT
broken = GPT.from_hf_gpt2(checkpoint).eval()
with torch.no_grad():  # the mistake: c_proj copied without its transpose (the shapes still fit)
    broken.transformer.h[0].attn.out_proj.weight.copy_(state["transformer.h.0.attn.c_proj.weight"])
    wrong_logits, _ = broken(tokens)
print("without the transpose, allclose:", torch.allclose(wrong_logits, ref, atol=1e-4))
assert not torch.allclose(wrong_logits, ref, atol=1e-4)

# %% [markdown]
# ## 4. Generating
#
# With the weights in place, our `generate` (chapter 06) runs GPT-2. Greedy decoding is fully
# determined by the logits, so it must produce exactly the tokens of `transformers`' own
# `generate(do_sample=False)`. The random model has no tokenizer, so token ids stand in for text
# (section 6 decodes the real GPT-2's tokens).

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import generate

prompt = torch.tensor([[5, 17, 42, 8]])
n_new = 12
ours_greedy = generate(model, prompt, n_new, temperature=0)
with torch.no_grad():
    ref_greedy = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n_new,
                                   do_sample=False, pad_token_id=cfg.eos_token_id or 0)
print("greedy: ours == transformers:", torch.equal(ours_greedy, ref_greedy), " shape", tuple(ours_greedy.shape))
assert torch.equal(ours_greedy, ref_greedy)

# %%
# NBVAL_IGNORE_OUTPUT
show = lambda ids: " ".join(map(str, ids))  # noqa: E731
print("greedy :", show(ours_greedy[0].tolist()))
sampled = generate(model, prompt, n_new, temperature=0.8, top_p=0.95, generator=torch.Generator().manual_seed(0))
print("sampled:", show(sampled[0].tolist()))

# %% [markdown]
# ## 5. Exporting a course model to the Hugging Face format
#
# The other direction: `to_hf_gpt2(model, dir)` writes `config.json` and `model.safetensors` with
# GPT-2's names and layouts (transposing back into `Conv1D`'s (in, out), splitting nothing: `c_attn`
# is our `qkv` transposed). Outside the smoke setting, if chapter 07 (or `make demo`) has saved the
# course's own Shakespeare model in `runs/shakespeare-char-cpu`, that model is exported; otherwise a
# freshly initialised course GPT.

# %%
from llm_from_scratch.gpt import to_hf_gpt2

import llm_from_scratch

course_run = Path(llm_from_scratch.__file__).resolve().parents[1] / "runs" / "shakespeare-char-cpu"
char_tokenizer = None
if SETTING != "smoke" and (course_run / "model.safetensors").is_file():
    from llm_from_scratch.checkpoint import load_gpt_checkpoint
    course_model, char_tokenizer, _ = load_gpt_checkpoint(course_run)
else:
    seed_everything(0)
    course_model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=64)).eval()
export_dir = to_hf_gpt2(course_model, work / "course-gpt-hf")
print(sorted(p.name for p in export_dir.iterdir()))
exported = json.loads((export_dir / "config.json").read_text())
print({k: exported[k] for k in ("model_type", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function")})

# %% [markdown]
# The check is the same as in section 3, in the other direction: `transformers` opens the folder with
# its own code and must compute our logits, and generate our greedy tokens.

# %%
# NBVAL_CHECK_OUTPUT
reopened = GPT2LMHeadModel.from_pretrained(export_dir).eval()
V = course_model.config.vocab_size
tokens = torch.randint(0, V, (2, 32), generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    same = torch.allclose(reopened(tokens).logits, course_model(tokens)[0], atol=1e-4)
    hf_tokens = reopened.generate(tokens[:1, :8], attention_mask=torch.ones(1, 8, dtype=torch.long),
                                  max_new_tokens=20, do_sample=False, pad_token_id=0)
print("transformers on the exported folder == our model:", same)
print("greedy continuation identical:", torch.equal(hf_tokens, generate(course_model, tokens[:1, :8], 20, temperature=0)))
assert same and torch.equal(hf_tokens, generate(course_model, tokens[:1, :8], 20, temperature=0))

# %%
# NBVAL_IGNORE_OUTPUT
if char_tokenizer is not None:  # the course's Shakespeare model, now running inside transformers
    ids = torch.tensor([char_tokenizer.encode("ROMEO:\n")])
    with torch.no_grad():
        # GPT-2 has learned positions: it cannot write past its context (64 characters for this model)
        out = reopened.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                max_new_tokens=reopened.config.n_positions - ids.shape[1],
                                temperature=0.8, top_k=40, pad_token_id=0)
    print(char_tokenizer.decode(out[0].tolist()))

# %% [markdown]
# And back again: `GPT.from_hf_gpt2` on the exported folder gives the course model's weights, so a
# model can travel between the two worlds without loss.

# %%
# NBVAL_CHECK_OUTPUT
back = GPT.from_hf_gpt2(export_dir)
print("round trip, every tensor equal:",
      all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), course_model.state_dict().values())))

# %% [markdown]
# ## 6. The real GPT-2
#
# Everything above, on the 124M-parameter GPT-2 from the hub (500 MB, downloaded once): our model,
# loaded with `GPT.from_hf_gpt2("gpt2")`, must write exactly the greedy tokens of `transformers`'
# own GPT-2, and we read them through GPT-2's tokenizer. It runs where the hub can be reached (not in
# the smoke setting, which CI runs offline); elsewhere the cell says so.

# %%
# NBVAL_IGNORE_OUTPUT
if USE_HUB:
    from transformers import AutoTokenizer

    gpt2_tokenizer = AutoTokenizer.from_pretrained("gpt2")
    gpt2_hf = GPT2LMHeadModel.from_pretrained("gpt2").eval()
    gpt2_ours = GPT.from_hf_gpt2("gpt2").eval()
    text_prompt = torch.tensor([gpt2_tokenizer.encode("The meaning of life is")])
    ours_text = generate(gpt2_ours, text_prompt, 30, temperature=0)
    with torch.no_grad():
        ref_text = gpt2_hf.generate(text_prompt, attention_mask=torch.ones_like(text_prompt), max_new_tokens=30,
                                    do_sample=False, pad_token_id=gpt2_tokenizer.eos_token_id)
    print("greedy, ours == transformers:", torch.equal(ours_text, ref_text))
    print(gpt2_tokenizer.decode(ours_text[0].tolist()))
    sampled_text = generate(gpt2_ours, text_prompt, 40, temperature=0.8, top_p=0.95,
                            generator=torch.Generator().manual_seed(0))
    print("sampled:", gpt2_tokenizer.decode(sampled_text[0].tolist()))
    assert torch.equal(ours_text, ref_text)
else:
    print("The real GPT-2 is skipped here: " + ("the smoke setting runs offline." if SETTING == "smoke" else
          "the Hugging Face hub (huggingface.co) cannot be reached from this machine.") +
          " Run this chapter in Colab, or on a machine online, to see its text.")

# %% [markdown]
# ## What to try
#
# 1. In Colab, load `gpt2-medium` (355M) through `GPT.from_hf_gpt2("gpt2-medium")`. Which fields of
#    `GPTConfig` change? Check the parameter count against chapter 06's formula.
# 2. Fine-tune the loaded GPT-2 for a few hundred steps on the Shakespeare corpus (chapter 07's loop,
#    with GPT-2's tokenizer) and compare samples before and after.
# 3. Export your fine-tuned model with `to_hf_gpt2`, and load it with
#    `transformers.pipeline("text-generation", model=dir, tokenizer="gpt2")`.

# %% [markdown]
# ## Exercises
#
# Write each conversion from this chapter, then run its cell: `check` runs the exercise's tests and prints
# one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/11_pretrained_gpt2.ipynb`.

# %%
import math

import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **11.1 The Conv1D weight transpose.** GPT-2's `Conv1D` stores a weight of shape (in, out) and computes
# $xW + b$; `nn.Linear` stores (out, in) and computes $xW^\top + b$. Return the `nn.Linear` weight.

# %%
# NBVAL_CHECK_OUTPUT
def conv1d_to_linear(weight):
    ### BEGIN SOLUTION
    return weight.t().contiguous()
    ### END SOLUTION


check("11.1", conv1d_to_linear)

# %% [markdown]
# **11.2 Splitting GPT-2's fused q, k, v.** `c_attn` is one Conv1D of weight (d, 3d) and bias (3d,): its
# output columns are q, then k, then v. Return `((W_q, b_q), (W_k, b_k), (W_v, b_v))` with each $W$ in
# `nn.Linear`'s (out, in) = (d, d) layout.

# %%
# NBVAL_CHECK_OUTPUT
def split_qkv(c_attn_weight, c_attn_bias):
    ### BEGIN SOLUTION
    d = c_attn_weight.shape[0]
    return tuple((c_attn_weight[:, i * d:(i + 1) * d].t().contiguous(), c_attn_bias[i * d:(i + 1) * d])
                 for i in range(3))
    ### END SOLUTION


check("11.2", split_qkv)

# %% [markdown]
# **11.3 GPT-2's GELU.** GPT-2 was trained with the tanh approximation
# $\tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3)))$, not the exact $x\,\Phi(x)$; loading its weights
# into a model with the other one shifts every activation a little. Write it with `torch.tanh`.

# %%
# NBVAL_CHECK_OUTPUT
def gelu_tanh(x):
    ### BEGIN SOLUTION
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    ### END SOLUTION


check("11.3", gelu_tanh)
