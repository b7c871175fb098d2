# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Image tokens for VIM: the input sequences, the tokenizer fingerprint that pretokenized datasets carry, and the range
check of the ids a dataset brings.

A pretokenized dataset (`examples/pretokenize.py`) is only valid for the tokenizer that wrote it. It records
[`tokenizer_fingerprint`] (codebook size, token grid, sha256 of the config and of the weights) in its metadata file
`vim_tokens.json` and in the `description` of its `DatasetInfo`; `examples/train_vim.py` compares it with the
tokenizer it is given ([`check_tokenizer_fingerprint`]).
"""

import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc
import torch


TOKENS_METADATA_FILE = "vim_tokens.json"
TOKENS_FORMAT = "vit_vqgan_hf.vim_tokens/1"
# Config keys that do not change what a tokenizer computes.
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype")


def tokenizer_fingerprint(tokenizer) -> dict:
    """
    What identifies a tokenizer's token ids: its grid and codebook, and sha256 digests of its config and weights.

    The weights digest covers every tensor of the state dict in sorted key order (key, dtype, shape, bytes), so it
    does not depend on the file format the weights came from.

    Args:
        tokenizer ([`VitVqganModel`]):
            The image tokenizer.

    Returns:
        `dict` with `name_or_path`, `codebook_size`, `token_grid_size`, `image_size`, `patch_size`, `config_sha256`
        and `weights_sha256`.

    Example:

    ```python
    >>> from vit_vqgan_hf import VitVqganConfig, VitVqganModel
    >>> from vit_vqgan_hf.training.tokens import tokenizer_fingerprint

    >>> fingerprint = tokenizer_fingerprint(VitVqganModel(VitVqganConfig.from_preset("tiny")))
    >>> fingerprint["codebook_size"], fingerprint["token_grid_size"]
    (256, 8)
    ```
    """
    config = tokenizer.config
    config_dict = {key: value for key, value in config.to_dict().items() if key not in _VOLATILE_CONFIG_KEYS}
    weights = hashlib.sha256()
    state_dict = tokenizer.state_dict()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        weights.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        weights.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return {
        "name_or_path": getattr(tokenizer, "name_or_path", None) or None,
        "codebook_size": config.codebook_size,
        "token_grid_size": config.image_size // config.patch_size,
        "image_size": config.image_size,
        "patch_size": config.patch_size,
        "config_sha256": hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).hexdigest(),
        "weights_sha256": weights.hexdigest(),
    }


def check_tokenizer_fingerprint(recorded: dict, tokenizer, strict: bool = True) -> list[str]:
    """
    Compare the fingerprint recorded with pretokenized data to a tokenizer.

    A different codebook size or token grid always raises: the tokens could not even be modelled. Different config or
    weights digests mean the ids were produced by another tokenizer (another training run, say); that raises when
    `strict`, and is returned as a list of messages otherwise.

    Args:
        recorded (`dict`):
            The `tokenizer` entry of the dataset's metadata, as written by [`tokenizer_fingerprint`].
        tokenizer ([`VitVqganModel`]):
            The tokenizer training and sampling will use.
        strict (`bool`, *optional*, defaults to `True`):
            Raise on digest mismatches too.

    Returns:
        `list[str]`: the mismatches that were tolerated (empty when everything matches).

    Raises:
        `ValueError`: on a grid or codebook mismatch, or on a digest mismatch when `strict`.
    """
    current = tokenizer_fingerprint(tokenizer)
    for key in ("codebook_size", "token_grid_size"):
        if recorded.get(key) != current[key]:
            raise ValueError(
                f"The pretokenized dataset has {key}={recorded.get(key)} (tokenizer {recorded.get('name_or_path')!r}) "
                f"but the tokenizer has {key}={current[key]}: tokenize the images again with this tokenizer "
                "(examples/pretokenize.py) or pass the tokenizer that made them."
            )
    mismatches = [
        f"{key} differs: dataset {recorded.get(key)}, tokenizer {current[key]}"
        for key in ("config_sha256", "weights_sha256")
        if recorded.get(key) != current[key]
    ]
    if mismatches and strict:
        raise ValueError(
            f"The pretokenized dataset was made by tokenizer {recorded.get('name_or_path')!r}, not by the one given "
            f"({'; '.join(mismatches)}). Its token ids would decode to other images. Tokenize the images again with "
            "this tokenizer, or check with `strict=False` if you know the two are equivalent."
        )
    return mismatches


def vim_input_ids(image_tokens: torch.Tensor, prefix_ids: torch.Tensor) -> torch.LongTensor:
    """
    VIM training sequences `[prefix token, image tokens in raster order]`.

    Args:
        image_tokens (`torch.Tensor` of shape `(batch_size, height, width)` or `(batch_size, height * width)`):
            Token ids of the tokenizer (any integer dtype).
        prefix_ids (`torch.Tensor` of shape `(batch_size,)`):
            The prefix token of each sequence: `config.class_token_id(c)` or `config.null_class_token_id`.

    Returns:
        `torch.LongTensor` of shape `(batch_size, 1 + height * width)`.
    """
    image_tokens = image_tokens.reshape(image_tokens.shape[0], -1).long()
    return torch.cat([prefix_ids.reshape(-1, 1).long().to(image_tokens.device), image_tokens], dim=1)


def check_value_range(dataset, column: str, num_values: int, source: str, expected: str):
    """
    Refuse a dataset whose `column` holds a value outside `[0, num_values)`: token ids beyond the codebook, labels
    beyond the classes. Run once where the data is loaded, so that training steps need no check: Arrow's min/max over
    the (memory-mapped) column, nested lists flattened, reads each value once without converting it to Python.

    Args:
        dataset (`datasets.Dataset`):
            A map-style dataset (its whole table is checked, whatever selection it carries).
        column (`str`):
            The column to check: integers, or (nested) lists of integers.
        num_values (`int`):
            The number of valid ids.
        source (`str`):
            What the dataset is, for the error message (e.g. "'tokens', split 'train'").
        expected (`str`):
            What the values should be and how to get there, for the error message.

    Raises:
        `ValueError`: naming the dataset, the column, the bad value and the valid range.
    """
    chunks = []
    for chunk in dataset.data.column(column).chunks:
        while isinstance(chunk.type, pa.ExtensionType) or _is_list(chunk.type):
            chunk = chunk.storage if isinstance(chunk.type, pa.ExtensionType) else chunk.flatten()
        chunks.append(chunk)
    extremes = pc.min_max(pa.chunked_array(chunks)) if chunks else {}
    low, high = (extremes[name].as_py() if chunks else None for name in ("min", "max"))
    bad = low if low is not None and low < 0 else high if high is not None and high >= num_values else None
    if bad is not None:
        raise ValueError(
            f"{source}: the column {column!r} holds the value {bad}, outside [0, {num_values}). Expected {expected}."
        )


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type) or pa.types.is_fixed_size_list(data_type)


__all__ = [
    "TOKENS_FORMAT",
    "TOKENS_METADATA_FILE",
    "check_value_range",
    "check_tokenizer_fingerprint",
    "tokenizer_fingerprint",
    "vim_input_ids",
]
