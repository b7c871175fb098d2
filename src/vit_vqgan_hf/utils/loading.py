# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Loading a model or data set that a user named, with an error that says what was expected, and checking a device
before any data is read: shared by the command-line scripts (`vit_vqgan_hf.cli` re-exports both) and the app, which
needs neither accelerate nor the scripts' helpers."""

import os

import torch
from huggingface_hub.utils import httpx


# What a Hub call raises when the Hub cannot be reached or refuses: huggingface_hub's own errors (OSError subclasses,
# ValueError for invalid ids) and the transport errors of its HTTP client (httpx2), which derive from neither.
HUB_ERRORS = (OSError, ValueError, httpx.HTTPError)


def load_pretrained(loader, name_or_path: str | os.PathLike, *, expected: str | None = None, **kwargs):
    """
    `loader(name_or_path, **kwargs)` (a `from_pretrained`, `load_dataset`, ...), with an error that says what was
    expected when `name_or_path` is no local path and does not load as a Hub id either: a mistyped local folder
    otherwise surfaces as a Hub connection or repository-id error.

    Args:
        loader (`Callable`):
            The loading function, e.g. `VitVqganModel.from_pretrained` or `VimPipeline.from_pretrained`.
        name_or_path (`str` or `os.PathLike`):
            A local folder or file, or a Hub id.
        expected (`str`, *optional*, defaults to `None`):
            What the argument may be, for the error message (e.g. "a preset (ss, bb), a config.json or a Hub id");
            by default "a saved <class> folder or a Hub id", from the class whose `from_pretrained` is `loader`.
        **kwargs:
            Passed to `loader`.

    Returns:
        Whatever `loader` returns.

    Raises:
        `ValueError`: when `name_or_path` does not exist locally and loading it from the Hub (or the offline cache)
        failed; the Hub's error is chained.

    Example:

    ```python
    >>> from vit_vqgan_hf import VitVqganModel
    >>> from vit_vqgan_hf.utils import load_pretrained

    >>> load_pretrained(VitVqganModel.from_pretrained, "outputs/no-such-tokenizer")  # doctest: +SKIP
    ValueError: 'outputs/no-such-tokenizer' is no local file or folder, and it does not load as a Hub id ...
    ```
    """
    try:
        return loader(name_or_path, **kwargs)
    except HUB_ERRORS as error:
        if os.path.exists(name_or_path):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if expected is None:
            owner = getattr(loader, "__self__", None)
            expected = f"a saved {owner.__name__} folder or a Hub id" if owner else "a local folder or a Hub id"
        raise ValueError(
            f"{str(name_or_path)!r} is no local file or folder, and it does not load as a Hub id either ({reason}). "
            f"Expected {expected}."
        ) from error


def check_device(device: str, flag: str = "--device"):
    """
    Refuse a device that this machine cannot run, before any data is loaded: otherwise a missing CUDA surfaces from
    inside torch after the dataset has been read.

    Args:
        device (`str`):
            A torch device string: `cpu`, `cuda`, `cuda:N` or `mps`.
        flag (`str`, *optional*, defaults to `"--device"`):
            The command-line flag that named it, for the error message.

    Raises:
        `ValueError`: when `device` is not a torch device, or this machine does not have it.
    """
    try:
        device_type = torch.device(device).type
    except RuntimeError as error:
        raise ValueError(f"{flag} {device!r} is not a torch device. Expected cpu, cuda, cuda:N or mps.") from error
    if device_type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {device!r}: CUDA is not available on this machine; pass {flag} cpu.")
    if device_type == "cuda" and (torch.device(device).index or 0) >= torch.cuda.device_count():
        raise ValueError(f"{flag} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    if device_type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag} {device!r}: MPS is not available on this machine; pass {flag} cpu.")


__all__ = ["HUB_ERRORS", "check_device", "load_pretrained"]
