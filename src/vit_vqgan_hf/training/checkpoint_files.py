# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The files of a checkpoint folder, read without running code that came with them.

Checkpoints travel between people and machines, so resuming treats a checkpoint folder as untrusted:

- The states this package adds to accelerate's (the progress counters, the best validation loss, the EMA of the
  weights) are saved by [`save_training_states`] as `<name>.json` (numbers, strings, lists) and `<name>.safetensors`
  (their tensors), never pickled; [`load_training_states`] reads them back.
- accelerate's own files are pickles that accelerate loads with `torch.load(weights_only=True)`, which refuses any
  object but tensors, numbers and containers; [`check_checkpoint_files`] loads each of them that way first (memory-
  mapped, so without reading the tensors), because accelerate swallows a failure to load the random states.
- An FSDP distributed checkpoint's `.metadata` is read with a plain `pickle.load` by torch, and its non-tensor entries
  with `torch.load(weights_only=False)`: the metadata is first unpickled with an allowlist of the checkpoint classes,
  and every non-tensor entry loaded with `weights_only=True`.
- Any other pickle in the folder (`*.pkl`, `*.bin`, `*.pt`, `*.pth`, `*.ckpt`, `*.pickle`, or a file starting like
  one) is refused, naming the file: e.g. the `custom_checkpoint_<i>.pkl` that accelerate unpickles with
  `weights_only=False`.
"""

import io
import json
import pickle
import re
from pathlib import Path

import torch
from accelerate.utils import load as accelerate_load
from safetensors.torch import load_file, save_file


# accelerate's pickles, which it loads with `weights_only=True` (model weights fall back to `pytorch_model*.bin`).
ACCELERATE_PICKLE_NAME = re.compile(
    r"(optimizer|scheduler|sampler|dl_state_dict|pytorch_model|pytorch_model_fsdp)(_\d+)?\.bin|scaler\.pt"
    r"|random_states_\d+\.pkl"
)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt")
# Pickle protocols 2-5 start with PROTO (0x80); `torch.save` writes a zip archive holding a pickle.
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")
# What a distributed checkpoint's `.metadata` pickle may name: its own classes, tensor sizes, dtypes and layouts.
_DCP_METADATA_MODULE = "torch.distributed.checkpoint.metadata"
_DCP_METADATA_GLOBALS = {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("collections", "OrderedDict"),
}
_TENSOR_KEY = "__tensor__"


class UnsafeCheckpointError(ValueError):
    """A checkpoint folder holds a file that would run code, or could not be checked not to, when loaded."""


def state_name(obj) -> str:
    """The file name of a checkpoint state: its class name in snake case (`EMAModel` -> `ema_model`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", type(obj).__name__).lower()


def save_training_states(folder: str | Path, states: dict):
    """
    Save each object of `states` (name -> an object with `state_dict()`) as `<name>.json` and, when its state holds
    tensors, `<name>.safetensors`.

    Raises:
        `TypeError`: for a state holding something that is neither a tensor, a number, a string, `None`, nor a list,
        tuple or string-keyed dict of them.
    """
    for name, obj in states.items():
        tensors = {}
        document = _to_json(obj.state_dict(), tensors, name)
        if tensors:
            tensors = {key: tensor.detach().cpu().contiguous() for key, tensor in tensors.items()}
            save_file(tensors, Path(folder, f"{name}.safetensors"))
        Path(folder, f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")


def load_training_states(folder: str | Path, states: dict):
    """
    Restore each object of `states` (name -> an object with `load_state_dict()`) from the files of
    [`save_training_states`].

    Raises:
        `ValueError`: when the folder lacks the state of one of them (a checkpoint of a run with other options, or
        one that pickled its states).
    """
    folder = Path(folder)
    for name, obj in states.items():
        document_file, tensor_file = folder / f"{name}.json", folder / f"{name}.safetensors"
        if not document_file.is_file():
            pickled = sorted(path.name for path in folder.glob("custom_checkpoint_*.pkl"))
            raise ValueError(
                f"{folder} has no {document_file.name}, the saved {name.replace('_', ' ')} of this run"
                + (
                    f" (it has {', '.join(pickled)}: pickled states, which are never loaded because unpickling "
                    "can run any code)."
                    if pickled
                    else ": it was saved by a run with other options (e.g. without an EMA)."
                )
            )
        tensors = load_file(tensor_file) if tensor_file.is_file() else {}
        obj.load_state_dict(_from_json(json.loads(document_file.read_text()), tensors, document_file))


def check_checkpoint_files(folder: str | Path):
    """
    Check that loading the checkpoint `folder` runs no code that came with it (see the module's description).

    Raises:
        [`UnsafeCheckpointError`]: naming the first file that is an unexpected pickle or holds objects other than
        tensors, numbers and containers.
    """
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if ACCELERATE_PICKLE_NAME.fullmatch(name) and path.parent == folder:
            _check_weights_only(path)
        elif name == ".metadata" and path.parent != folder:
            _check_distributed_checkpoint(path.parent)
        elif path.suffix in (".json", ".safetensors", ".distcp"):
            continue
        elif path.suffix in PICKLE_SUFFIXES or _starts_like_a_pickle(path):
            raise UnsafeCheckpointError(
                f"{path} is a pickle that this package never writes into a checkpoint; unpickling it could run any "
                "code, so the checkpoint is not loaded. Remove the file if you trust the checkpoint otherwise."
            )


def _to_json(value, tensors: dict, key: str):
    """`value` with each tensor replaced by a reference to its entry `key` in `tensors`."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {_TENSOR_KEY: key}
    if isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            raise TypeError(f"The checkpoint state {key!r} has a dict with keys that are not strings.")
        return {name: _to_json(item, tensors, f"{key}.{name}") for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item, tensors, f"{key}.{index}") for index, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"The checkpoint state {key!r} holds a {type(value).__name__}; states are saved as JSON and safetensors, "
        "so they may hold tensors, numbers, strings, None, lists and string-keyed dicts only."
    )


def _from_json(value, tensors: dict, source: Path):
    if isinstance(value, dict):
        if set(value) == {_TENSOR_KEY}:
            if value[_TENSOR_KEY] not in tensors:
                raise ValueError(
                    f"{source} refers to the tensor {value[_TENSOR_KEY]!r}, which its .safetensors lacks."
                )
            return tensors[value[_TENSOR_KEY]]
        return {name: _from_json(item, tensors, source) for name, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item, tensors, source) for item in value]
    return value


def _starts_like_a_pickle(path: Path) -> bool:
    with open(path, "rb") as file:
        head = file.read(4)
    return head.startswith(_PICKLE_MAGIC)


def _check_weights_only(path: Path, data: bytes | None = None):
    """Load a pickle as accelerate does (`weights_only=True`, numpy's random state allowed), memory-mapped."""
    try:
        if data is None:
            accelerate_load(path, map_location="cpu", mmap=True)
        else:
            accelerate_load(io.BytesIO(data), map_location="cpu")
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsafeCheckpointError(
            f"{path} holds objects other than tensors, numbers and containers, or is damaged ({reason}); loading it "
            "could run any code, so the checkpoint is not loaded."
        ) from error


class _MetadataUnpickler(pickle.Unpickler):
    """Unpickles a distributed checkpoint's `.metadata`, refusing any global outside its classes."""

    def find_class(self, module: str, name: str):
        # The metadata module holds dataclasses and enums only.
        obj = super().find_class(module, name) if module == _DCP_METADATA_MODULE else None
        if isinstance(obj, type) or (module, name) in _DCP_METADATA_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"the global {module}.{name} is not allowed")


def _check_distributed_checkpoint(folder: Path):
    """Check a `torch.distributed.checkpoint` folder: its metadata, then every entry stored as pickled bytes."""
    from torch.distributed.checkpoint.metadata import BytesStorageMetadata

    metadata_file = folder / ".metadata"
    try:
        with open(metadata_file, "rb") as file:
            metadata = _MetadataUnpickler(file).load()
    except Exception as error:
        raise UnsafeCheckpointError(
            f"{metadata_file} is not the metadata of a distributed checkpoint ({error}); unpickling it could run "
            "any code, so the checkpoint is not loaded."
        ) from error
    for index, info in getattr(metadata, "storage_data", {}).items():
        entry = metadata.state_dict_metadata.get(index.fqn)
        if not isinstance(entry, BytesStorageMetadata):
            continue
        data_file = folder / str(info.relative_path)
        if getattr(info, "transform_descriptors", None) or data_file.resolve().parent != folder.resolve():
            raise UnsafeCheckpointError(f"{metadata_file}: the entry {index.fqn!r} cannot be checked safely.")
        with open(data_file, "rb") as file:
            file.seek(info.offset)
            _check_weights_only(data_file, file.read(info.length))


__all__ = [
    "ACCELERATE_PICKLE_NAME",
    "UnsafeCheckpointError",
    "check_checkpoint_files",
    "load_training_states",
    "save_training_states",
    "state_name",
]
