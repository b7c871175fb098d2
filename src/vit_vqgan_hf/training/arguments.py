# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Range checks of the command-line flags that both training scripts share, run before any compute."""

import argparse


def check_shared_training_args(args: argparse.Namespace):
    """
    Check the data, optimization and validation flags that `train_tokenizer.py` and `train_vim.py` share, so that a
    meaningless value fails at startup with the flag's name instead of silently (zero epochs train nothing; a negative
    warm-up is a learning-rate jump) or deep inside torch's optimizer or DataLoader.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments of a training script.

    Raises:
        `ValueError`: naming the first flag out of its range, its value and the range.
    """
    for name in ("num_train_epochs", "train_batch_size", "gradient_accumulation_steps", "shuffle_buffer_size"):
        _check(args, name, getattr(args, name) >= 1, "at least 1")
    _check(args, "num_validation_images", args.num_validation_images >= 1, "at least 1")
    for name in ("lr_warmup_steps", "dataloader_num_workers"):
        _check(args, name, getattr(args, name) >= 0, "at least 0")
    for name in ("learning_rate", "adam_epsilon"):
        _check(args, name, getattr(args, name) > 0, "positive")
    _check(args, "adam_weight_decay", args.adam_weight_decay >= 0, "at least 0")
    for name in ("adam_beta1", "adam_beta2"):
        _check(args, name, 0 <= getattr(args, name) < 1, "in [0, 1)")
    _check(args, "max_grad_norm", args.max_grad_norm is None or args.max_grad_norm >= 0, "at least 0 (0: no clipping)")


def _check(args: argparse.Namespace, name: str, valid: bool, expected: str):
    if not valid:
        raise ValueError(f"--{name} must be {expected}, got {getattr(args, name)}.")


__all__ = ["check_shared_training_args"]
