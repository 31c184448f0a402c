"""The hub versions of the fine-tuning tasks (Colab): SST-2 (classification), STS-B (regression) and
CoNLL-2003 (tagging), read with ``datasets.load_dataset`` and mapped to the same ``tasks.Task`` as
the Shakespeare tasks, so every fine-tuning function works on both."""

from __future__ import annotations

import random
from collections.abc import Sequence

from llm_from_scratch.tasks import TaggedExample, Task, TextExample

__all__ = ["HUB_TASKS", "load_hub_task"]

# name -> (path, config) for datasets.load_dataset. The GLUE test labels are hidden (-1): the hub's
# validation split becomes our test split and a slice of train becomes our validation split.
HUB_TASKS = {
    "sst2": ("nyu-mll/glue", "sst2"),
    "stsb": ("nyu-mll/glue", "stsb"),
    "conll2003": ("eriktks/conll2003", None),
}


def _hub_splits(dataset, has_test_labels: bool, validation_fraction: float, seed: int):
    """(train, validation, test) datasets from a DatasetDict."""
    missing = [s for s in ("train", "validation") if s not in dataset]
    if missing:
        raise ValueError(f"the dataset has no {missing} split(s); it has {list(dataset)}")
    if has_test_labels and "test" in dataset:
        return dataset["train"], dataset["validation"], dataset["test"]
    n = len(dataset["train"])
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(n * validation_fraction))
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    return dataset["train"].select(train_idx), dataset["train"].select(val_idx), dataset["validation"]


def _check_columns(ds, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ValueError(f"{name}: the dataset lacks the column(s) {missing}; it has {ds.column_names} "
                         f"(expected the hub's schema of {HUB_TASKS[name][0]})")


def load_hub_task(name: str, dataset=None, max_examples: int | None = None, validation_fraction: float = 0.05,
                  seed: int = 0) -> Task:
    """SST-2, STS-B or CoNLL-2003 as a :class:`Task` (Colab; needs the network the first time).

    ``dataset``: a ``datasets.DatasetDict`` in the hub's schema to use instead of downloading (tests
    build small ones). ``max_examples`` caps each split (quick runs).

    - sst2: ``sentence``, ``label`` (0 negative, 1 positive) -> classification
    - stsb: ``sentence1``, ``sentence2``, ``label`` (similarity 0-5) -> regression on the pair
    - conll2003: ``tokens``, ``ner_tags`` (ClassLabel ids) -> tagging with the dataset's tag names
    """
    if name not in HUB_TASKS:
        raise ValueError(f"unknown hub task {name!r}; choose one of {sorted(HUB_TASKS)}")
    if dataset is None:
        import datasets

        path, config = HUB_TASKS[name]
        dataset = datasets.load_dataset(path, config) if config else datasets.load_dataset(path)
    train, val, test = _hub_splits(dataset, has_test_labels=(name == "conll2003"),
                                   validation_fraction=validation_fraction, seed=seed)

    def cap(ds):
        return ds if max_examples is None or len(ds) <= max_examples else ds.select(range(max_examples))

    train, val, test = cap(train), cap(val), cap(test)
    if name == "sst2":
        for ds in (train, val, test):
            _check_columns(ds, ["sentence", "label"], name)
        feature = train.features["label"]
        labels = tuple(feature.names) if hasattr(feature, "names") else ("negative", "positive")

        def conv(ds, part):
            return [TextExample(s, int(y), part) for s, y in zip(ds["sentence"], ds["label"])]

        return Task("sst2", "classification", conv(train, "train"), conv(val, "validation"), conv(test, "test"),
                    labels, {"hub": HUB_TASKS[name]})
    if name == "stsb":
        for ds in (train, val, test):
            _check_columns(ds, ["sentence1", "sentence2", "label"], name)

        def conv(ds, part):
            return [TextExample(a, float(y), part, text_pair=b)
                    for a, b, y in zip(ds["sentence1"], ds["sentence2"], ds["label"])]

        return Task("stsb", "regression", conv(train, "train"), conv(val, "validation"), conv(test, "test"),
                    (), {"hub": HUB_TASKS[name]})
    # conll2003
    for ds in (train, val, test):
        _check_columns(ds, ["tokens", "ner_tags"], name)
    feature = train.features["ner_tags"].feature
    if not hasattr(feature, "names"):
        raise ValueError("conll2003: ner_tags must be a Sequence(ClassLabel(names=[...])) so the tag names are known")
    names = tuple(feature.names)

    def conv(ds, part):
        return [TaggedExample(tuple(t), tuple(names[i] for i in g), part)
                for t, g in zip(ds["tokens"], ds["ner_tags"]) if len(t) > 0]

    return Task("conll2003", "tagging", conv(train, "train"), conv(val, "validation"), conv(test, "test"),
                names, {"hub": HUB_TASKS[name]})
