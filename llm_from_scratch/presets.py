"""Named recipes for ``python -m llm_from_scratch pretrain --preset NAME``: a model shape, a tokenizer,
and training settings, plus the data they train on.

| preset                 | tokenizer  | model (L, H, d, T)  | where            |
|------------------------|------------|---------------------|------------------|
| ``tiny-char``          | characters | 2, 2, 32, 32        | seconds on a CPU (tests, chapter 12's torchrun demo) |
| ``shakespeare-char-cpu`` | characters | 4, 4, 128, 64     | ~5 minutes on 2 CPU cores (``make demo``) |
| ``shakespeare-bpe-small``| BPE 4096   | 6, 6, 384, 256      | minutes on a GPU |
| ``shakespeare-bpe-cpu``  | BPE 2000   | 4, 4, 128, 128      | ~10 minutes on 2 CPU cores (chapter 15) |
| ``gpt2-124m``          | BPE 50304  | 12, 12, 768, 1024   | an A100/H100: bf16, torch.compile |

``shakespeare-char-cpu`` starts from nanoGPT's CPU recipe for Shakespeare (n_layer=4, n_head=4,
n_embd=128, block 64, batch 12, lr 1e-3, dropout 0), with twice the batch and twice the learning
rate (24, 2e-3): it reaches a validation loss well below 1.9 nats per character on the held-out
plays within the demo's time (benchmarks/RESULTS.md, "time to the validation target", has the run).

The data is the course's Shakespeare corpus split by work (``data.split_works``): the model trains on
the training plays and is evaluated on the validation plays, which it never sees. ``--text FILE``
trains on any text file instead (the first 90% trains, the last 10% validates).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from llm_from_scratch.tokenizer import tokenizer_info  # noqa: F401 (its home is tokenizer.py)
from llm_from_scratch.train import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    tokenizer: str  # "char" or "bpe"
    model: dict  # GPTConfig fields except vocab_size, which comes from the tokenizer
    train: TrainConfig = field(default_factory=TrainConfig)
    bpe_vocab_size: int | None = None  # for tokenizer == "bpe"
    pad_vocab_to: int = 1  # round the model's vocabulary up to a multiple (64: faster matmuls on GPUs)
    eval_batches: int = 20  # validation batches per evaluation during training (None: all)

    def vocab_size(self, tokenizer_vocab: int) -> int:
        m = self.pad_vocab_to
        return (tokenizer_vocab + m - 1) // m * m

    def with_overrides(self, **train_overrides) -> Preset:
        """A copy with some TrainConfig fields replaced (the ones given as not None)."""
        changes = {k: v for k, v in train_overrides.items() if v is not None}
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **changes))


PRESETS: dict[str, Preset] = {}


def _register(p: Preset) -> Preset:
    PRESETS[p.name] = p
    return p


_register(Preset(
    name="tiny-char",
    description="a 2-layer character model for tests and quick demos (seconds on a CPU)",
    tokenizer="char",
    model=dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0),
    train=TrainConfig(max_steps=50, batch_size=8, lr=3e-3, warmup_steps=5, eval_every=25, betas=(0.9, 0.99)),
    eval_batches=4,
))

_register(Preset(
    name="shakespeare-char-cpu",
    description="a 0.8M-parameter character model: val loss < 1.9 in ~4 minutes on 2 CPU cores",
    tokenizer="char",
    model=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
    # nanoGPT's CPU recipe with twice the batch and twice the lr (the time-to-target run in
    # benchmarks/RESULTS.md, produced by bench_train.py --time-to-target).
    train=TrainConfig(max_steps=2000, batch_size=24, lr=2e-3, min_lr=2e-4, warmup_steps=100,
                      eval_every=250, weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0),
    eval_batches=20,
))

_register(Preset(
    name="shakespeare-bpe-small",
    description="a 6-layer, 11M-parameter GPT on 4096 BPE tokens (minutes on a GPU)",
    tokenizer="bpe",
    bpe_vocab_size=4096,
    pad_vocab_to=64,
    model=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
    train=TrainConfig(max_steps=3000, batch_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=100,
                      eval_every=250, weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0),
    eval_batches=20,
))

_register(Preset(
    name="gpt2-124m",
    description="GPT-2 small (124M) on an A100/H100: bf16 autocast, torch.compile, ~0.5M tokens per step",
    tokenizer="bpe",
    bpe_vocab_size=50257,
    pad_vocab_to=64,  # 50257 -> 50304 = 64 * 786: the output matmul tiles evenly
    model=dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0),
    # 32 sequences x 1024 tokens x 16 micro-steps = 524,288 tokens per step (GPT-3 small's batch);
    # 21.7 GiB, so it fits a 40 GB A100. On an 80 GB GPU --batch-size 64 --grad-accum 8 is ~2% faster.
    train=TrainConfig(max_steps=2000, batch_size=32, grad_accum=16, lr=6e-4, min_lr=6e-5, warmup_steps=100,
                      eval_every=200, weight_decay=0.1, betas=(0.9, 0.95), grad_clip=1.0, compile=True),
    eval_batches=20,
))


_register(Preset(
    name="shakespeare-bpe-cpu",
    description="a 4-layer BPE GPT for chapter 15 (about 10 minutes on 2 CPU cores)",
    tokenizer="bpe",
    # 2000 tokens padded to 2048 rows: the chat template's special tokens (chapter 15) take padding
    # rows, so adding them does not grow the model.
    bpe_vocab_size=2000,
    pad_vocab_to=64,
    model=dict(n_layer=4, n_head=4, n_embd=128, block_size=128, dropout=0.0),
    train=TrainConfig(max_steps=2000, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100,
                      eval_every=250, weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0),
    eval_batches=10,
))


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a ValueError that lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


# ----------------------------------------------------------------------------------------------
# The data a preset trains on


@dataclass
class PresetData:
    """Token streams and the tokenizer for a preset."""

    train: torch.Tensor  # 1-D LongTensor
    val: torch.Tensor
    tokenizer: object
    tokenizer_info: dict  # recorded in config.json; a resumed run must have the same
    source: dict  # where the text came from (recorded in config.json, used by `eval`)


def source_texts(source: dict, progress: bool, everything: bool = False, split: str | None = None):
    """(train texts, validation texts) of a data source; with ``everything``, also all its texts
    (for a character vocabulary that covers the test plays and poems too). With ``split``
    ("train", "validation" or "test"), that part's texts only (a text file has no test part)."""
    if source["kind"] == "text":
        from pathlib import Path

        path = Path(source["path"])
        if not path.is_file():
            raise FileNotFoundError(f"--text {path}: no such file")
        if source.get("sha256"):
            import hashlib

            if hashlib.sha256(path.read_bytes()).hexdigest() != source["sha256"]:
                raise ValueError(f"the text file {path} changed since the run was trained on it (its sha256 "
                                 "differs): its validation part is no longer the run's")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"--text {path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8") from None
        cut = int(len(text) * 0.9)
        if cut < 2 or len(text) - cut < 2:
            raise ValueError(f"--text {path} is too short to split into training and validation text")
        if split is not None:
            if split not in ("train", "validation"):
                raise ValueError(f"a --text run has no {split} part (90% train / 10% validation)")
            return [text[:cut]] if split == "train" else [text[cut:]]
        return ([text[:cut]], [text[cut:]], [text]) if everything else ([text[:cut]], [text[cut:]])
    from llm_from_scratch.data import load_shakespeare, split_works

    works = load_shakespeare(progress=progress)
    splits = split_works(works)
    if split is not None:
        return [w.text for w in splits[split]]
    train, val = [w.text for w in splits["train"]], [w.text for w in splits["validation"]]
    return (train, val, [w.text for w in works]) if everything else (train, val)


def encode_texts(tokenizer, texts: list[str]) -> torch.Tensor:
    """One stream of ids for a preset (``lm_data.encode_works``): each text ends in the tokenizer's
    ``<|endoftext|>`` when it has one (BPE), and follows the previous one directly otherwise (characters)."""
    from llm_from_scratch.lm_data import encode_works

    return encode_works(texts, tokenizer, eos_id=getattr(tokenizer, "eos_id", None))


def prepare_data(preset: Preset, text_file: str | None = None, progress: bool = True,
                 tokenizer=None) -> PresetData:
    """Load the preset's text (Shakespeare split by work, or ``text_file``), build its tokenizer
    (characters: fitted on all the text, so any line of the corpus can be a prompt; BPE: trained on the training text with HF ``tokenizers``,
    the fast path), and encode both splits. ``tokenizer``: use this one instead (e.g. a resumed run's)."""
    from pathlib import Path

    from llm_from_scratch.tokenizer import BPETokenizer, CharTokenizer

    if text_file:
        import hashlib

        path = Path(text_file).resolve()
        if not path.is_file():
            raise ValueError(f"--text {text_file}: no such file" if not path.exists() else
                             f"--text {text_file} is a folder: give a UTF-8 text file")
        source = {"kind": "text", "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    else:
        source = {"kind": "shakespeare", "split": "data.split_works: train plays / validation plays"}
    train_texts, val_texts, all_texts = source_texts(source, progress, everything=True)
    if tokenizer is None:
        if preset.tokenizer == "char":
            # The characters of all the text, held-out plays included: a character never seen in
            # training is still a valid input (its embedding just stays untrained), and a set of
            # characters says nothing about the text.
            tokenizer = CharTokenizer.fit("".join(all_texts))
        elif preset.tokenizer == "bpe":
            tokenizer = BPETokenizer.train_fast(train_texts, preset.bpe_vocab_size)
        else:
            raise ValueError(f"preset {preset.name}: unknown tokenizer {preset.tokenizer!r} (char or bpe)")
    return PresetData(train=encode_texts(tokenizer, train_texts), val=encode_texts(tokenizer, val_texts),
                      tokenizer=tokenizer, tokenizer_info=tokenizer_info(tokenizer), source=source)
