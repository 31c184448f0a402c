"""The pretrained GPT the fine-tuning chapters (08-10) start from: chapter 07's checkpoint, or a
small character GPT pretrained here in seconds (CI) when there is none."""

from __future__ import annotations

from pathlib import Path

__all__ = ["pretrain_small_gpt", "course_backbone", "chapter_backbone", "course_checkpoint_dir", "StopChapter"]


def pretrain_small_gpt(works=None, steps: int = 150, n_layer: int = 2, n_head: int = 4, n_embd: int = 64,
                       block_size: int = 128, batch_size: int = 16, lr: float = 3e-3, seed: int = 0,
                       progress: bool = False):
    """A character-level GPT pretrained for ``steps`` steps on the *training* plays only: a
    stand-in backbone (seconds on a CPU) when chapter 07's checkpoint is not there. Returns
    (GPT, CharTokenizer, final training loss)."""
    from llm_from_scratch.data import corpus_text, load_shakespeare, split_works
    from llm_from_scratch.gpt import GPT, GPTConfig
    from llm_from_scratch.tokenizer import CharTokenizer
    from llm_from_scratch.lm_data import encode_works, lm_batches
    from llm_from_scratch.train import TrainConfig, train
    from llm_from_scratch.utils import seed_everything

    works = load_shakespeare(progress=False) if works is None else works
    text = corpus_text(split_works(works)["train"])
    # The characters of every work, held-out plays included (as presets.prepare_data does): a test
    # passage never holds a character the tokenizer cannot encode.
    tok = CharTokenizer.fit(corpus_text(works))
    seed_everything(seed)
    gpt = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                        n_embd=n_embd, dropout=0.0))
    tokens = encode_works([text], tok)
    tc = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, warmup_steps=min(20, steps - 1),
                     eval_every=steps, seed=seed, progress=progress, weight_decay=0.1)
    result = train(gpt, lm_batches(tokens, block_size, batch_size, seed=seed), config=tc)
    return gpt, tok, result.last.get("train_loss")


def course_backbone(smoke: bool, checkpoint: str | Path | None = None, works=None, progress: bool = False):
    """The pretrained GPT the fine-tuning chapters start from: (GPT, tokenizer, where it came from).

    - ``smoke`` (CI): a 2-layer character GPT pretrained for 60 steps here (seconds; it has learned
      little, which is fine: CI checks that the pipeline runs);
    - otherwise chapter 07's checkpoint ``checkpoint`` (default ``runs/shakespeare-char-cpu``, looked
      up from the repository root) if it exists, else a 6-layer character GPT with a 256-character
      context pretrained here for 3000 steps on the training plays (minutes on a GPU).
    """
    if smoke:
        gpt, tok, _ = pretrain_small_gpt(works, steps=60, n_layer=2, n_head=4, n_embd=64, block_size=64,
                                         batch_size=16, lr=3e-3, progress=progress)
        return gpt, tok, "a 2-layer character GPT pretrained for 60 steps (CI size)"
    path = Path(checkpoint) if checkpoint is not None else course_checkpoint_dir()
    if (path / "config.json").exists():
        from llm_from_scratch.checkpoint import load_gpt_checkpoint

        gpt, tok, _ = load_gpt_checkpoint(path)
        return gpt.train(), tok, f"chapter 07's checkpoint {path.name}"
    gpt, tok, _ = pretrain_small_gpt(works, steps=3000, n_layer=6, n_head=6, n_embd=384, block_size=256,
                                     batch_size=64, lr=1e-3, progress=progress)
    return gpt, tok, "a 6-layer character GPT pretrained for 3000 steps (no checkpoint found)"


class StopChapter(Exception):
    """Stops a notebook with one line (IPython prints ``_render_traceback_`` instead of a traceback)."""

    def _render_traceback_(self):
        return [f"StopChapter: {self}"]


def course_checkpoint_dir() -> Path:
    """Where chapter 07 (book setting) and ``make demo`` save the course's pretrained GPT:
    ``runs/shakespeare-char-cpu`` in the repository."""
    return Path(__file__).resolve().parents[1] / "runs" / "shakespeare-char-cpu"


def chapter_backbone(setting: str):
    """The backbone of chapters 08-10 in ``setting`` (smoke / book / full): ``course_backbone``, with
    chapter 07's checkpoint where it exists. Outside smoke and without it, a CPU stops the chapter with
    one line (pretraining the larger fallback there would take hours: ``StopChapter``), and a GPU says
    that it pretrains the fallback first, with a progress bar."""
    import torch

    path = course_checkpoint_dir()
    if setting != "smoke" and not (path / "config.json").exists():
        if not torch.cuda.is_available():
            raise StopChapter(f"chapter 07's checkpoint {path} is missing: run chapter 07 first "
                              "(or `make demo`), then this chapter")
        print("No chapter 07 checkpoint: pretraining a 6-layer character GPT here first "
              "(3000 steps; several minutes on a GPU)")
    return course_backbone(setting == "smoke", checkpoint=path, progress=setting != "smoke")
