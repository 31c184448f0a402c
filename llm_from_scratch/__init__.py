"""llm_from_scratch: the tested package behind the course's notebooks.

One module per idea; each chapter in ``chapters/`` teaches one or two of them:

- ``device``     devices and mixed precision chosen by the hardware (chapter 00)
- ``data``       the Shakespeare corpus: fetch, verify, cache, split by work (chapter 02)
- ``tokenizer``  character and byte-level BPE tokenizers (chapter 02)
- ``lm_data``    language-model windows over a token stream (chapter 02)
- ``attention``  scaled dot-product and multi-head attention, positions (chapter 03)
- ``optim``      Adam / AdamW and learning-rate schedules (chapter 04)
- ``mlm``        BERT masking and the MLM loss (chapter 05)
- ``gpt``        the GPT model and generation (chapters 06, 11)
- ``bert``       the BERT model (chapters 05, 08)
- ``train``      the training loop, checkpoints, distributed runs (chapters 07, 12)
- ``losses``, ``crf``, ``finetune``  task losses, the CRF, heads and LoRA (chapters 08-10)

Modules are imported on demand (``from llm_from_scratch.attention import ...``)
so that ``import llm_from_scratch`` stays cheap.
"""

__version__ = "0.1.0"
