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
- ``cli``        the command line (``python -m llm_from_scratch``)

Modules are imported on demand (``from llm_from_scratch.attention import ...``)
so that ``import llm_from_scratch`` stays cheap.
"""

__version__ = "0.1.0"
