"""llm_from_scratch: the tested package behind the course's notebooks.

One module per idea; each chapter in ``chapters/`` teaches one or two of them:

- ``device``     devices and mixed precision chosen by the hardware (chapter 00)
- ``data``       the Shakespeare corpus: fetch, verify, cache, split by work (chapter 02)
- ``tokenizer``  character and byte-level BPE tokenizers (chapter 02)
- ``lm_data``    token streams, language-model windows and the batch samplers (chapters 02, 07)
- ``attention``  scaled dot-product and multi-head attention, positions (chapter 03)
- ``optim``      Adam / AdamW and learning-rate schedules (chapter 04)
- ``mlm``        BERT masking and the MLM loss (chapter 05)
- ``gpt``        the GPT model and generation (chapters 06, 11)
- ``bert``       the BERT model (chapters 05, 08)
- ``train``, ``history``  the training loop, its config and evaluation; history.jsonl and the loss plot (chapter 07)
- ``checkpoint`` checkpoint files: atomic saves, safe loads, the GPT loader (chapter 07)
- ``distributed``, ``scaling``  process groups and FSDP; memory, FLOPs and MFU (chapter 12)
- ``tasks``, ``hub_data``  the Shakespeare fine-tuning tasks and their hub versions (chapters 08-10)
- ``heads``, ``encoding``, ``finetune``, ``backbones``  task heads and pooling, examples as batches,
  freezing / LoRA / the fine-tuning procedure, the pretrained GPT the chapters start from (08-10)
- ``losses``, ``crf``, ``lora``, ``metrics``  task losses, the CRF, LoRA, the scores (chapters 08-10)
- ``seq2seq``, ``spelling``  the encoder-decoder, greedy and beam search; First Folio -> modern spelling pairs (chapter 13)
- ``llama``      RMSNorm, RoPE, SwiGLU, grouped-query attention; Llama and Qwen3 weights (chapter 14)
- ``sft``, ``dpo``, ``instruct_data``  chat template and loss masking, DPO, instructions from the corpus (chapter 15)
- ``exercises``  the chapters' exercises and their checks; ``grade`` grades submitted notebooks (instructors)
- ``cli``, ``runs``  the command line (``python -m llm_from_scratch``) and its pretrain command
- ``utils``      seeding and the setting a chapter runs in (smoke / book / full)

Modules are imported on demand (``from llm_from_scratch.attention import ...``)
so that ``import llm_from_scratch`` stays cheap.
"""

__version__ = "0.1.0"
