# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Weight files of the pretrained feature networks (LPIPS-VGG16, the FID InceptionV3): nothing ships with the package,
so the user names a file, a folder or a Hub repository, and anything missing fails with the layout that was expected.
"""

import hashlib
import os
import re
from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from safetensors.torch import load_file


WEIGHT_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def resolve_weight_files(
    path_or_hub_id: str | os.PathLike | list | tuple,
    expected_layout: str,
    revision: str | None = None,
    single: bool = False,
) -> list[Path]:
    """
    The weight files named by a file, a list of files, a folder (every file ending in one of `WEIGHT_FILE_SUFFIXES`)
    or a Hub repository id (downloaded through huggingface_hub, weight files only).

    Args:
        path_or_hub_id (`str`, `os.PathLike`, `list` or `tuple`):
            What the user passed.
        expected_layout (`str`):
            What the files must hold, for the error messages.
        revision (`str`, *optional*, defaults to `None`):
            Branch, tag or commit of a Hub repository.
        single (`bool`, *optional*, defaults to `False`):
            Require exactly one weight file.

    Returns:
        `list[pathlib.Path]`, sorted by name within a folder.

    Raises:
        `FileNotFoundError`: for a path that does not exist and is no Hub id, or a folder without (exactly one, with
        `single`) weight file.
        `OSError`: when a Hub id does not download (offline, unknown, gated).
    """
    if isinstance(path_or_hub_id, (list, tuple)):
        files = [Path(path) for path in path_or_hub_id]
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise FileNotFoundError(f"Weight files not found: {missing}. Expected {expected_layout}.")
        return files
    path = Path(path_or_hub_id)
    if not path.exists():
        if not (isinstance(path_or_hub_id, str) and _HUB_ID.fullmatch(path_or_hub_id)):
            raise FileNotFoundError(f"No weights at {str(path)!r}. Expected {expected_layout}.")
        try:
            path = Path(
                snapshot_download(
                    path_or_hub_id, revision=revision, allow_patterns=[f"*{suffix}" for suffix in WEIGHT_FILE_SUFFIXES]
                )
            )
        except Exception as error:  # offline, unknown repository, gated, ...: all mean "no weights here"
            raise OSError(
                f"{path_or_hub_id!r} is not a local path, and downloading it from the Hugging Face Hub failed "
                f"({type(error).__name__}: {error}). Expected {expected_layout}."
            ) from error
    if path.is_file():
        return [path]
    files = sorted(file for file in path.iterdir() if file.is_file() and file.name.endswith(WEIGHT_FILE_SUFFIXES))
    if not files or (single and len(files) > 1):
        found = "No weight files" if not files else f"Several weight files ({[file.name for file in files]})"
        wanted = "; expected exactly one" if single else ""
        raise FileNotFoundError(f"{found} in {str(path)!r}{wanted}. Expected {expected_layout}.")
    return files


def sha256_of_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(file: Path, expected_layout: str) -> dict[str, torch.Tensor]:
    """
    A flat state dict of tensors from a `.safetensors` file or a torch pickle (read with `weights_only=True`); a
    Lightning-style `{"state_dict": {...}}` is unwrapped.

    Raises:
        `ValueError`: when the file holds anything else.
    """
    if file.suffix == ".safetensors":
        return load_file(file)
    state_dict = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state_dict, dict) and isinstance(state_dict.get("state_dict"), dict):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, dict) or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise ValueError(f"{str(file)!r} does not hold a flat state dict of tensors. Expected {expected_layout}.")
    return state_dict


__all__ = ["WEIGHT_FILE_SUFFIXES", "read_state_dict", "resolve_weight_files", "sha256_of_file"]
