# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Checks of command-line flags and of the `accelerate launch` setup that several example scripts share, run before
any compute."""

import argparse
import logging
import os

import torch
from accelerate.utils import DistributedType, broadcast_object_list

from ..hub import create_hub_repo


logger = logging.getLogger(__name__)


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


def check_launch(accelerator):
    """
    Fail when `accelerate launch` started processes that did not join one process group, and warn when an FSDP config
    was not applied. On a machine without GPUs, `accelerate launch --multi_gpu --num_processes 2` (without
    `ACCELERATE_USE_CPU=true`) starts two processes that each set up a single-process run: both would do the whole job
    and write the same files. And accelerate shards with FSDP only on GPUs: on CPUs an FSDP config runs DDP.

    Args:
        accelerator (`accelerate.Accelerator`):
            The script's accelerator, just built.

    Raises:
        `RuntimeError`: when the launcher's process count (`WORLD_SIZE`) differs from the accelerator's.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size != accelerator.num_processes:
        raise RuntimeError(
            f"`accelerate launch` started {world_size} processes, but each set up a run of "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): they would each do the whole job and write "
            "the same files. Without GPUs, launch with ACCELERATE_USE_CPU=true (and --multi_gpu, or a multi-process "
            "accelerate config; examples/README.md)."
        )
    use_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
    if use_fsdp and accelerator.distributed_type != DistributedType.FSDP and accelerator.is_main_process:
        logger.warning(
            f"The accelerate config asks for FSDP, but accelerate set up {accelerator.distributed_type}: it shards "
            "only on GPUs (and other accelerators), so this run keeps a full copy of the model in every process."
        )


def check_hub_repo(args: argparse.Namespace, accelerator):
    """
    With `--push_to_hub`, create (or find) the repository before training, on the main process, so that an unreachable
    Hub, a token that cannot write or an invalid `--hub_model_id` fails the run at its start on every process, and
    not when the trained model is pushed. `args.hub_model_id` becomes the repository's full id.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments of a training script (`push_to_hub`, `hub_model_id`, `hub_private`, `hub_token`,
            `output_dir`).
        accelerator (`accelerate.Accelerator`):
            The script's accelerator.

    Raises:
        `ValueError`: from [`~vit_vqgan_hf.hub.create_hub_repo`], on every process.
    """
    if not args.push_to_hub:
        return
    outcome = [None, args.hub_model_id]
    if accelerator.is_main_process:
        try:
            outcome[1] = create_hub_repo(
                args.output_dir, args.hub_model_id, private=args.hub_private, token=args.hub_token
            )
        except Exception as error:  # any failure must reach the broadcast, or the other processes wait in it forever
            outcome[0] = str(error) if isinstance(error, ValueError) else f"--push_to_hub: {error!r}"
    message, args.hub_model_id = broadcast_object_list(outcome)
    if message is not None:
        raise ValueError(message)


def _check(args: argparse.Namespace, name: str, valid: bool, expected: str):
    if not valid:
        raise ValueError(f"--{name} must be {expected}, got {getattr(args, name)}.")


__all__ = ["check_device", "check_hub_repo", "check_launch", "check_shared_training_args"]
