"""Chapter 15 experiment (issue 15): exact match after SFT against the number of training conversations
and SFT steps, from the base model ``runs/shakespeare-bpe-cpu`` (``python -m llm_from_scratch pretrain
--preset shakespeare-bpe-cpu --out runs/shakespeare-bpe-cpu``). The test questions are the chapter's
(20 per task and test play); PER_TASK sets how many training conversations are built per task and play.

    OMP_NUM_THREADS=1 python -m benchmarks.sft_steps PER_TASK STEPS [LR [renamed]]   # e.g. 80 1600 1e-3
    (renamed: add copies of the passage questions with random speaker names, instruct_data.with_random_speakers)
"""
import copy, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from llm_from_scratch import instruct_data as I, sft as S
from llm_from_scratch.checkpoint import load_gpt_checkpoint
from llm_from_scratch.data import load_shakespeare
from llm_from_scratch.presets import get_preset
from llm_from_scratch.train import TrainConfig, train
from llm_from_scratch.utils import seed_everything
per_task, steps = int(sys.argv[1]), int(sys.argv[2])
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
augment = len(sys.argv) > 4 and sys.argv[4] == "renamed"  # add copies with random speaker names
seed_everything(0)
preset = get_preset("shakespeare-bpe-cpu")
base, base_tok, _ = load_gpt_checkpoint(Path("runs/shakespeare-bpe-cpu"))
tok = S.add_chat_tokens(base_tok)
S.resize_token_embeddings(base, tok.vocab_size, base_tok.vocab_size, pad_vocab_to=preset.pad_vocab_to)
works = load_shakespeare(progress=False)
ex = I.build_examples(works, per_task=per_task, seed=0)
test = I.build_examples(works, per_task=20, seed=0)["test"]
block = base.config.block_size
train_ex = ex["train"]
if augment:
    names = {n for e in ex["train"] if e.task == "second_speaker" for n in (e.answer, e.rejected)}
    train_ex = train_ex + I.with_random_speakers(ex["train"], sorted(names), seed=0)
train_data = [x for x in I.encode_examples(tok, train_ex) if len(x[0]) <= block]
print(len(train_data), "train convs")
pad = tok.eos_id
m = copy.deepcopy(base)
cfg = TrainConfig(max_steps=steps, batch_size=16, lr=lr, min_lr=lr / 10, warmup_steps=min(50, steps // 5), eval_every=10**9,
                  weight_decay=0.0, betas=(0.9, 0.99), progress=False, device="cpu")
t0 = time.perf_counter()
train(m, S.sft_batches(train_data, 16, pad), config=cfg, loss_fn=S.sft_loss)
m.eval()
prior = I.score([(p, True) for p in I.prior_predictions(test)], test)
r = I.score(I.generate_answers(m, tok, test), test)
print(f"per_task={per_task} steps={steps} lr={lr} renamed={augment} {time.perf_counter()-t0:.0f}s prior {prior['exact_match']:.3f} SFT {r['exact_match']:.3f}",
      {k: round(v, 2) for k, v in r.items() if k.startswith("exact_match/")}, "format", r["format"])
