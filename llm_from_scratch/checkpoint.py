"""Checkpoints that survive a crash, refuse what they should not load, and never run code.

A checkpoint is a directory::

    DIR/model.safetensors   the weights (safetensors: raw tensors + a JSON header, nothing executable)
    DIR/state.pt            optimizer, grad scaler, RNG, data position, step
                            (torch.save; read back with torch.load(weights_only=True))
    DIR/config.json         model config + training config + tokenizer info + the step
    DIR/tokenizer/          the tokenizer, so that ``sample`` can turn ids back into text

Three promises, each tested in ``tests/test_checkpoint.py``:

1. **Atomic.** A save writes every file under a temporary name in the same directory and fsyncs it,
   then writes a small ``COMMIT`` file atomically (temp file, fsync, ``os.replace``, fsync the
   directory): that rename is the moment the new checkpoint exists. Only then are the temporary
   files renamed over the old ones. A process killed before the commit leaves the previous
   checkpoint untouched; one killed after it is finished by the writer's next save (or
   :func:`recover`, which ``train(resume=True)`` calls). All files carry the same random
   ``checkpoint_id``, so a mix of two saves can never load silently.
   **Readers change nothing.** ``sample`` or ``eval`` may read a run folder while ``pretrain`` saves
   into it: a reader reads every file of one save (from its temporary name while a committed save
   is being moved into place), checks that the ids agree, and reads again if a save got in between
   (:func:`read_checkpoint`). Before the first save it says, in one line, that there is none yet.
2. **Refusing.** :func:`check_compatible` compares the saved model config and tokenizer with the
   current ones and names the first field that differs.
3. **Safe.** Anything wrong with a file (missing, truncated, corrupt, or a pickle that tries to call
   a function such as ``os.system``) raises :class:`CheckpointError` with one clear message, never a
   pickle traceback; ``weights_only=True`` refuses to unpickle anything but tensors and plain
   containers, so a crafted file is refused *before* it can run.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
COMMIT_FILE = "COMMIT"
ID_FILE = "checkpoint_id"  # inside tokenizer/: which save wrote it
TMP_SUFFIX = ".tmp"
FORMAT = "llm-from-scratch-checkpoint"


class CheckpointError(Exception):
    """A checkpoint that cannot be used: missing, corrupt, unsafe, or from another configuration."""


# ----------------------------------------------------------------------------------------------
# Durable writes: a file is not on disk until it is fsynced, and a rename is not on disk until
# the directory that holds it is fsynced.


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open a directory; rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and force it to disk. (Tests replace this to simulate a crash.)"""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file, never half."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    _write_bytes(tmp, data)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ----------------------------------------------------------------------------------------------
# Serialising the pieces.


def _weights_bytes(state_dict: dict[str, torch.Tensor], checkpoint_id: str) -> bytes:
    """safetensors bytes of a state dict. Tied weights (two names, one storage: GPT's token
    embedding and output layer) are stored once; the other name is recorded as an alias."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in state_dict.items():
        t = t.detach()
        key = (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
               tuple(t.stride()), t.dtype)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.to("cpu").contiguous()
    metadata = {"format": FORMAT, "checkpoint_id": checkpoint_id, "aliases": json.dumps(aliases)}
    return safetensors_save(tensors, metadata=metadata)


def _state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------
# Save: write temporaries, commit, apply.


def _tokenizer_files(tokenizer: Any, target: Path, checkpoint_id: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if not hasattr(tokenizer, "save"):
        raise TypeError(f"cannot save a tokenizer of type {type(tokenizer).__name__}: it has no save(dir) method")
    tokenizer.save(target)
    (target / ID_FILE).write_text(checkpoint_id)
    for p in target.rglob("*"):
        if p.is_file():
            with open(p, "rb+") as f:
                os.fsync(f.fileno())
    _fsync_dir(target)


def save_checkpoint(directory: str | os.PathLike, *, weights: dict[str, torch.Tensor] | torch.nn.Module,
                    config: dict, state: dict, tokenizer: Any = None) -> Path:
    """Save a checkpoint into ``directory`` atomically (see the module docstring); return its path.

    weights:   a module (its ``state_dict()`` is saved) or a state dict of tensors
    config:    JSON-serialisable: ``{"model": {...}, "train": {...}, "tokenizer": {...}, ...}``
    state:     anything ``torch.load(weights_only=True)`` accepts: tensors, numbers, strings,
               lists, tuples, dicts (optimizer / scaler ``state_dict()``s, RNG states, the step)
    tokenizer: an object with ``save(dir)`` (written to ``DIR/tokenizer/``), or None
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recover(directory)  # the writer finishes (or discards) its own earlier interrupted save first
    if isinstance(weights, torch.nn.Module):
        weights = weights.state_dict()
    checkpoint_id = uuid.uuid4().hex
    config = {**config, "format": FORMAT, "checkpoint_id": checkpoint_id}
    state = {**state, "checkpoint_id": checkpoint_id}
    try:
        config_bytes = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    except TypeError as e:
        raise TypeError(f"the checkpoint config must be JSON-serialisable: {e}") from None

    # Phase 1: temporaries. A crash here leaves the previous checkpoint as it was.
    names = [MODEL_FILE, STATE_FILE, CONFIG_FILE]
    _write_bytes(directory / (MODEL_FILE + TMP_SUFFIX), _weights_bytes(weights, checkpoint_id))
    _write_bytes(directory / (STATE_FILE + TMP_SUFFIX), _state_bytes(state))
    _write_bytes(directory / (CONFIG_FILE + TMP_SUFFIX), config_bytes)
    if tokenizer is not None:
        _tokenizer_files(tokenizer, directory / (TOKENIZER_DIR + TMP_SUFFIX), checkpoint_id)
        names.append(TOKENIZER_DIR)
    _fsync_dir(directory)

    # Phase 2: the commit point. From here on the new checkpoint is the one that loads.
    atomic_write_bytes(directory / COMMIT_FILE, json.dumps({"checkpoint_id": checkpoint_id, "files": names}).encode())

    # Phase 3: move the temporaries into place (repeated by recover() if we die half-way).
    _apply_commit(directory)
    return directory


def _apply_commit(directory: Path) -> None:
    commit = json.loads((directory / COMMIT_FILE).read_text())
    for name in commit["files"]:
        tmp, final = directory / (name + TMP_SUFFIX), directory / name
        if not tmp.exists():  # already moved by an earlier, interrupted attempt
            continue
        if tmp.is_dir() and final.exists():
            # A non-empty directory cannot be renamed over: move the old one aside first, then drop it.
            # (A reader that looks in between finds no tokenizer/, sees the COMMIT file and retries.)
            old = directory / (name + ".old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
            continue
        os.replace(tmp, final)
    _fsync_dir(directory)
    os.remove(directory / COMMIT_FILE)
    _fsync_dir(directory)


def recover(directory: str | os.PathLike) -> None:
    """Bring ``directory`` to a consistent state after a crash during a save.

    With a ``COMMIT`` file the save had reached its commit point: finish it. Without one, any
    temporary files are leftovers of a save that never committed: delete them.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return
    commit = directory / COMMIT_FILE
    if commit.exists():
        try:
            _apply_commit(directory)
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointError(f"checkpoint {directory} has an unfinished save that could not be completed "
                                  f"({e}); delete the directory or its '{COMMIT_FILE}' file") from None
        return
    for p in [*directory.glob("*" + TMP_SUFFIX), *directory.glob("*.old")]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


# ----------------------------------------------------------------------------------------------
# Load: strictly read-only. Every failure becomes one CheckpointError that says what is wrong and
# what to do. A reader never finishes or cleans up a save (only the writer does, in save_checkpoint
# and recover): while a save is committed but not yet moved into place, the reader reads each file
# from its temporary name, so it sees the committed save whole, and changes nothing.

READ_ATTEMPTS = 200  # a reader that meets a save in progress retries this many times...
READ_WAIT_S = 0.05  # ...this long apart (10 s in all), then reports the last problem


class _SaveInProgress(Exception):
    pass


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """True when ``directory`` holds a committed checkpoint (possibly still being moved into place)."""
    directory = Path(directory)
    return (directory / CONFIG_FILE).exists() or (directory / COMMIT_FILE).exists()


def _committed_id(directory: Path) -> str | None:
    try:
        return json.loads((directory / COMMIT_FILE).read_text())["checkpoint_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _busy(directory: Path) -> bool:
    """A save is under way (or was interrupted): a COMMIT file or temporaries are there."""
    return (directory / COMMIT_FILE).exists() or any(directory.glob("*" + TMP_SUFFIX))


def _require(directory: Path, name: str) -> Path:
    """The path to read ``name`` from: its temporary while a committed save is being moved into place."""
    if not directory.is_dir():
        if directory.is_file():
            raise CheckpointError(f"{directory} is a file, not a checkpoint folder: give the folder that holds "
                                  f"{MODEL_FILE} and {CONFIG_FILE}")
        raise CheckpointError(f"no checkpoint directory at {directory}: check the path "
                              "(pretrain writes runs/<preset> unless --out says otherwise)")
    if _committed_id(directory) is not None and (directory / (name + TMP_SUFFIX)).exists():
        return directory / (name + TMP_SUFFIX)
    path = directory / name
    if not path.exists():
        if _busy(directory):
            raise _SaveInProgress(f"{directory}: {name} is being written")
        if not has_checkpoint(directory):
            raise CheckpointError(f"{directory} holds no checkpoint yet: a run saves its first one after "
                                  "--eval-every steps (or this is not a run folder)")
        raise CheckpointError(f"{directory} is not a complete checkpoint: {name} is missing")
    return path


def _config_from(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt (not valid JSON: {e}); the checkpoint cannot be used") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint written by llm_from_scratch (no '\"format\": \"{FORMAT}\"')")
    return config


def _state_from(path: Path, map_location) -> dict:
    """``torch.load(weights_only=True)``: tensors, numbers, strings and plain containers only. A pickle
    that names any other callable (``os.system``, ``eval``, a class with ``__reduce__``) is refused
    before that callable is ever looked up, let alone called."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
            raise CheckpointError(
                f"refused to load {path}: it contains Python objects other than tensors and plain containers, "
                "and unpickling them could run arbitrary code. Only load checkpoints you wrote yourself.") from None
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}); the checkpoint cannot be used") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OSError, UnicodeDecodeError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is corrupt or truncated ({reason}); the checkpoint cannot be used") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a training state (found {type(state).__name__}, expected a dict)")
    return state


def _safetensors_metadata(data: bytes) -> dict:
    """The ``__metadata__`` of safetensors bytes: 8 bytes (little-endian) giving the header's length N,
    then N bytes of JSON holding it (the format's specification)."""
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 or n > len(data) - 8:
        raise ValueError("the header is longer than the file")
    header = json.loads(data[8:8 + n])
    return header.get("__metadata__", {}) if isinstance(header, dict) else {}


def _weights_from(path: Path, device) -> tuple[dict[str, torch.Tensor], dict]:
    try:
        # One read of the file, then everything from those bytes: a save may rename the file away
        # right after it was opened, so opening it a second time (for the metadata) could fail.
        data = path.read_bytes()
        tensors = safetensors_load(data)
        metadata = _safetensors_metadata(data)
        aliases = json.loads(metadata.get("aliases", "{}"))
    except FileNotFoundError:
        raise
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({str(e)[:200] or type(e).__name__}); "
                              "the checkpoint cannot be used") from None
    for name, target in aliases.items():
        if target not in tensors:
            raise CheckpointError(f"{path} is corrupt: the alias {name!r} points to a missing tensor {target!r}")
        tensors[name] = tensors[target]
    if str(device) != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, metadata


def _tokenizer_from(tok_dir: Path, directory: Path):
    from llm_from_scratch.tokenizer import BPETokenizer, CharTokenizer  # here: checkpoint sits below its users

    if (tok_dir / CharTokenizer.FILE_NAME).is_file():
        cls = CharTokenizer
    elif (tok_dir / "vocab.json").is_file():
        cls = BPETokenizer
    else:
        raise CheckpointError(f"{directory} has no saved tokenizer (expected {tok_dir}/{CharTokenizer.FILE_NAME} "
                              "or vocab.json + merges.txt)")
    try:
        return cls.load(tok_dir)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{tok_dir} is corrupt ({e}); the checkpoint's tokenizer cannot be loaded") from None


def read_checkpoint(directory: str | os.PathLike, *, weights: bool = True, state: bool = False,
                    tokenizer: bool = False, map_location: str | torch.device = "cpu") -> dict:
    """One consistent snapshot of a checkpoint: ``{"config", "weights", "metadata", "state", "tokenizer"}``
    (the parts not asked for are None), every part from the same save.

    Read-only. Each file is replaced atomically by the writer, so a file read is always whole; the
    ``checkpoint_id`` that every file carries says whether they come from one save. If a save is in
    progress and the parts disagree (or one is being moved), the reader waits and reads again.
    """
    directory = Path(directory)
    last: Exception | None = None
    for _ in range(READ_ATTEMPTS):
        before = _current_id(directory)
        try:
            snap = _read_once(directory, weights, state, tokenizer, map_location)
        except (_SaveInProgress, FileNotFoundError, CheckpointError) as e:
            # A real problem stays the same when read again; one that a save caused does not.
            if isinstance(e, CheckpointError) and not _busy(directory) and _current_id(directory) == before:
                raise
            last = e
            time.sleep(READ_WAIT_S)
            continue
        return snap
    if isinstance(last, CheckpointError):
        raise last
    raise CheckpointError(f"{directory}: a save kept changing the checkpoint while it was read ({last}); "
                          "try again when the writer has finished its save")


def _moved(directory: Path, cid: str | None) -> bool:
    """A save is under way, or one finished since ``cid`` was read."""
    return _busy(directory) or _current_id(directory) != cid


def _current_id(directory: Path) -> str | None:
    try:
        return json.loads((directory / CONFIG_FILE).read_text()).get("checkpoint_id")
    except (OSError, ValueError, AttributeError):
        return None


def _read_once(directory: Path, weights: bool, state: bool, tokenizer: bool, map_location) -> dict:
    config = _config_from(_require(directory, CONFIG_FILE))
    cid = config.get("checkpoint_id")
    snap = {"config": config, "weights": None, "metadata": None, "state": None, "tokenizer": None}
    if weights:
        snap["weights"], snap["metadata"] = _weights_from(_require(directory, MODEL_FILE), map_location)
        if snap["metadata"].get("checkpoint_id") != cid:
            raise _SaveInProgress(f"{MODEL_FILE} and {CONFIG_FILE} come from different saves") if _moved(directory, cid) \
                else CheckpointError(f"{directory}: {MODEL_FILE} and {CONFIG_FILE} come from different saves "
                                     "(an interrupted copy?); the checkpoint cannot be used")
    if state:
        snap["state"] = _state_from(_require(directory, STATE_FILE), map_location)
        if snap["state"].get("checkpoint_id") != cid:
            raise _SaveInProgress(f"{STATE_FILE} is from another save") if _moved(directory, cid) \
                else CheckpointError(f"{directory}: {STATE_FILE} and {CONFIG_FILE} come from different saves")
    if tokenizer:
        tok_dir = _require(directory, TOKENIZER_DIR)
        saved_id = (tok_dir / ID_FILE).read_text().strip() if (tok_dir / ID_FILE).exists() else cid
        snap["tokenizer"] = _tokenizer_from(tok_dir, directory)
        if saved_id != cid:
            raise _SaveInProgress(f"{TOKENIZER_DIR} is from another save") if _moved(directory, cid) \
                else CheckpointError(f"{directory}: {TOKENIZER_DIR}/ and {CONFIG_FILE} come from different saves")
    # The config last: if a save moved it meanwhile, what was read may mix two saves.
    if _config_from(_require(directory, CONFIG_FILE)).get("checkpoint_id") != cid:
        raise _SaveInProgress("a save replaced the checkpoint while it was read")
    return snap


def load_config(directory: str | os.PathLike) -> dict:
    """The checkpoint's ``config.json`` as a dict."""
    return read_checkpoint(directory, weights=False)["config"]


def load_state(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The training state from ``state.pt``, read with ``torch.load(weights_only=True)``."""
    return read_checkpoint(directory, weights=False, state=True, map_location=map_location)["state"]


def load_weights(directory: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """The weights from ``model.safetensors`` as a state dict (tied names restored), and its metadata."""
    snap = read_checkpoint(directory, map_location=device)
    return snap["weights"], snap["metadata"]


def load_into(model: torch.nn.Module, directory: str | os.PathLike, snapshot: dict | None = None) -> dict:
    """Load the checkpoint's weights into ``model`` (strict: every name and shape must match).

    Returns the checkpoint's config. ``snapshot``: a :func:`read_checkpoint` result to use instead of reading.
    """
    snap = snapshot or read_checkpoint(directory)
    tensors = snap["weights"]
    own = model.state_dict()
    for name, tensor in tensors.items():
        if name in own and tuple(own[name].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{directory}: weight {name!r} has shape {tuple(tensor.shape)} in the checkpoint "
                                  f"but {tuple(own[name].shape)} in this model: it was trained with another configuration")
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{directory}: the checkpoint's weights do not fit this model "
                              f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})")
    model.load_state_dict(tensors, strict=True)
    return snap["config"]


def load_tokenizer(directory: str | os.PathLike):
    """The tokenizer saved beside the checkpoint in ``DIR/tokenizer/``: a ``CharTokenizer``
    (``char_tokenizer.json``) or a ``BPETokenizer`` (``vocab.json`` + ``merges.txt``)."""
    return read_checkpoint(directory, weights=False, tokenizer=True)["tokenizer"]


# ----------------------------------------------------------------------------------------------
# Refusing a checkpoint of another configuration.


def first_difference(saved: Any, current: Any, prefix: str) -> str | None:
    """The first field where two nested dicts differ, as a sentence; None when they are equal."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in saved:
                return f"{where} is missing in the checkpoint but is {current[key]!r} in this run"
            if key not in current:
                return f"{where} is {saved[key]!r} in the checkpoint but missing in this run"
            diff = first_difference(saved[key], current[key], where)
            if diff:
                return diff
        return None
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        saved, current = list(saved), list(current)
    if saved != current:
        return f"{prefix} is {saved!r} in the checkpoint but {current!r} in this run"
    return None


def check_compatible(directory: str | os.PathLike, saved_config: dict, *, model: dict | None = None,
                     tokenizer: dict | None = None) -> None:
    """Raise :class:`CheckpointError` naming the first field where the saved model config or tokenizer
    info differs from this run's (``model`` / ``tokenizer``: the current dicts; None skips a check)."""
    for section, current in (("model", model), ("tokenizer", tokenizer)):
        if current is None:
            continue
        saved = saved_config.get(section)
        if saved is None:
            raise CheckpointError(f"checkpoint {directory} records no {section} configuration; cannot check it fits this run")
        diff = first_difference(saved, json.loads(json.dumps(current)), section)
        if diff:
            raise CheckpointError(f"checkpoint {directory} was made with another configuration: {diff}. "
                                  "Resume with the settings it was trained with, or start a fresh run in another directory.")


# ----------------------------------------------------------------------------------------------
# Random-number state (for an exact resume: dropout masks continue where they stopped)


def rng_state(device: torch.device) -> dict:
    """The torch, Python, numpy (and CUDA) generator states, in types ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # numpy's state holds an ndarray, which weights_only loading refuses: store plain values
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)



# ----------------------------------------------------------------------------------------------
# A GPT from a run folder


def load_gpt_checkpoint(directory: str | os.PathLike, device: str | torch.device = "cpu"):
    """(model, tokenizer, config) from a checkpoint written by :func:`train` for a ``gpt.GPT``.

    The model is rebuilt from ``config["model"]`` (``GPTConfig.from_dict``), its weights loaded from
    ``model.safetensors``, and put in eval mode on ``device``. Errors are :class:`CheckpointError`.
    """
    from llm_from_scratch.gpt import GPT, GPTConfig

    snap = read_checkpoint(directory, tokenizer=True)
    config = snap["config"]
    try:
        model_config = GPTConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory}/config.json has no usable GPT configuration ({e})") from None
    model = GPT(model_config)
    load_into(model, directory, snap)
    return model.to(device).eval(), snap["tokenizer"], config
