# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The command line of the training scripts, `train_tokenizer.py` and `train_vim.py`: the flag groups they share, the
checks of those flags, the start of a run before any data is read, and the push of its output folder.
"""

import argparse
import logging

from accelerate.utils import DistributedType

from ..hub.uploads import push_folder_to_hub
from ..training.checkpointing import resolve_checkpoint
from ..training.loop import build_accelerator
from .common import add_hub_args, check_flag, check_hub_repo, check_launch, prepare_output_dir


logger = logging.getLogger(__name__)

# What a failed write of a run's final outputs leaves: `OutputWriteError`'s note in the training scripts.
FINAL_OUTPUTS_PARTIAL = "The checkpoints are intact: free some space and resume with --resume_from_checkpoint latest."


def add_image_data_args(parser: argparse.ArgumentParser, validation_help: str, description: str | None = None):
    """
    Add the data flags of the training scripts (the image dataset, its splits and columns, streaming, crops, flips,
    data-loader workers) to a "data" group with `description`, and return the group for the script's own data flags.
    `validation_help` is the help of `--validation_split`, which each script uses its own way.
    """
    group = parser.add_argument_group("data", description)
    group.add_argument(
        "--dataset_name", default="ILSVRC/imagenet-1k", help="Hub image dataset (ignored with --train_data_dir)."
    )
    group.add_argument("--dataset_config_name", default=None, help="Configuration of the Hub dataset.")
    group.add_argument("--train_data_dir", default=None, help="Image folder to train on instead of a Hub dataset.")
    group.add_argument("--train_split", default="train", help="Split to train on.")
    group.add_argument("--validation_split", default="validation", help=validation_help)
    group.add_argument("--image_column", default="image", help="Column holding the images.")
    group.add_argument("--label_column", default="label", help="Column of class labels.")
    group.add_argument("--streaming", action="store_true", help="Stream the images (needs --max_train_steps).")
    group.add_argument("--shuffle_buffer_size", type=int, default=10_000, help="Shuffle buffer of a streamed dataset.")
    group.add_argument("--cache_dir", default=None, help="Cache directory of `datasets`.")
    group.add_argument("--resolution", type=int, default=None, help="Image size; default: the tokenizer's.")
    crop = group.add_mutually_exclusive_group()
    crop.add_argument("--center_crop", action="store_true", help="Resize and center-crop (the default).")
    crop.add_argument("--random_crop", action="store_true", help="Random resized crops instead of center crops.")
    group.add_argument(
        "--random_crop_scale", type=float, nargs=2, default=(0.5, 1.0), help="Area range of the random crops."
    )
    group.add_argument("--random_flip", action="store_true", help="Mirror half of the training images.")
    group.add_argument("--dataloader_num_workers", type=int, default=0, help="Dataloader worker processes.")
    return group


def add_optimization_args(parser: argparse.ArgumentParser, examples: str):
    """
    Add the optimization flags of the training scripts to an "optimization" group and return it; `examples` (e.g.
    "Images") names what a batch holds. Each script sets the defaults that differ (the paper's tokenizer and VIM
    recipes: `--num_train_epochs`, `--learning_rate`, `--lr_warmup_ratio`, `--lr_end`, `--adam_beta2`,
    `--adam_weight_decay`, `--max_grad_norm`) with `parser.set_defaults`.
    """
    group = parser.add_argument_group("optimization")
    group.add_argument("--train_batch_size", type=int, default=8, help=f"{examples} per process and micro-batch.")
    group.add_argument("--max_train_steps", type=int, default=None, help="Optimizer steps; overrides epochs.")
    group.add_argument("--num_train_epochs", type=int, help="Epochs when --max_train_steps is unset: %(default)s.")
    group.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per step.")
    group.add_argument("--learning_rate", type=float, help="Peak learning rate: %(default)s.")
    group.add_argument(
        "--lr_warmup_ratio",
        type=float,
        help="Linear warm-up over this fraction of the run's optimizer steps (the paper's steps at the paper's length): "
        "%(default).4g.",
    )
    group.add_argument(
        "--lr_warmup_steps", type=int, default=None, help="Linear warm-up steps; overrides --lr_warmup_ratio."
    )
    group.add_argument("--lr_end", type=float, help="Final learning rate of the decay: %(default)s.")
    group.add_argument("--adam_beta1", type=float, default=0.9, help="Adam beta1 (also Adafactor's).")
    group.add_argument("--adam_beta2", type=float, help="Adam beta2: %(default)s.")
    group.add_argument("--adam_weight_decay", type=float, help="Decoupled weight decay: %(default)s.")
    group.add_argument("--adam_epsilon", type=float, default=1e-8, help="Adam epsilon.")
    group.add_argument("--max_grad_norm", type=float, help="Gradient clipping norm (0, None: off): %(default)s.")
    group.add_argument("--mixed_precision", default=None, choices=["no", "bf16", "fp16"], help="Autocast precision.")
    group.add_argument(
        "--max_nonfinite_steps",
        type=int,
        default=10,
        help=(
            "Stop, saving a checkpoint, after this many optimizer steps in a row with a non-finite loss or gradient "
            "norm (their gradients are zeroed on the device; fp16: the scaler skips them). Read at logging steps."
        ),
    )
    group.add_argument("--seed", type=int, default=0, help="Seed of initialization, data, augmentation, dropout.")
    return group


def add_output_args(parser: argparse.ArgumentParser):
    """
    Add the output, logging, checkpoint and validation-schedule flags of the training scripts and the Hub flags
    ([`add_hub_args`]); return the group of the former. Each script sets the defaults of `--output_dir` and
    `--num_validation_images` with `parser.set_defaults`.
    """
    group = parser.add_argument_group("outputs, logging and checkpoints")
    group.add_argument("--output_dir", help="Where the trained model and the checkpoints go: %(default)s.")
    group.add_argument("--checkpointing_steps", type=int, default=5000, help="Save a training state every N steps.")
    group.add_argument(
        "--checkpoints_total_limit",
        type=int,
        default=None,
        help="Keep at most this many checkpoints; an old one is deleted only once the new one is complete.",
    )
    group.add_argument("--resume_from_checkpoint", default=None, help="`latest` or a checkpoint folder.")
    group.add_argument("--validation_steps", type=int, default=5000, help="Validate every N steps (and at the end).")
    group.add_argument("--num_validation_images", type=int, help="Validation images (VIM: per class): %(default)s.")
    group.add_argument("--logging_steps", type=int, default=50, help="Log training statistics every N steps.")
    group.add_argument("--report_to", default="tensorboard", help="Tracker: tensorboard, wandb, all or none.")
    group.add_argument("--logging_dir", default="logs", help="Tracker directory, relative to --output_dir.")
    add_hub_args(parser)
    return group


def check_shared_training_args(args: argparse.Namespace):
    """
    Check the data, optimization, logging and validation flags that `train_tokenizer.py` and `train_vim.py` share, so
    that a meaningless value fails at startup with the flag's name instead of silently (zero epochs train nothing; a
    negative warm-up is a learning-rate jump) or deep inside torch's optimizer or DataLoader. Also records the default
    crop (`args.center_crop`) and drops `--dataset_name` when `--train_data_dir` is given.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments of a training script.

    Raises:
        `ValueError`: naming the first flag out of its range, its value and the range.
    """
    args.center_crop = not args.random_crop  # the default crop, recorded as such in the model card
    if args.train_data_dir is not None:
        args.dataset_name = None
    if args.streaming and args.max_train_steps is None:
        raise ValueError("--streaming datasets have no length: set --max_train_steps.")
    for name in ("num_train_epochs", "train_batch_size", "gradient_accumulation_steps", "shuffle_buffer_size"):
        check_flag(args, name, getattr(args, name) >= 1, "at least 1")
    for name in ("num_validation_images", "logging_steps", "max_nonfinite_steps"):
        check_flag(args, name, getattr(args, name) >= 1, "at least 1")
    for name in ("max_train_steps", "checkpointing_steps", "validation_steps", "checkpoints_total_limit"):
        check_flag(args, name, getattr(args, name) is None or getattr(args, name) >= 1, "at least 1 when given")
    check_flag(args, "dataloader_num_workers", args.dataloader_num_workers >= 0, "at least 0")
    check_flag(args, "lr_warmup_steps", args.lr_warmup_steps is None or args.lr_warmup_steps >= 0, "at least 0")
    check_flag(args, "lr_warmup_ratio", 0 <= args.lr_warmup_ratio <= 1, "in [0, 1]")
    for name in ("learning_rate", "adam_epsilon"):
        check_flag(args, name, getattr(args, name) > 0, "positive")
    check_flag(args, "adam_weight_decay", args.adam_weight_decay >= 0, "at least 0")
    for name in ("adam_beta1", "adam_beta2"):
        check_flag(args, name, 0 <= getattr(args, name) < 1, "in [0, 1)")
    check_flag(
        args, "max_grad_norm", args.max_grad_norm is None or args.max_grad_norm >= 0, "at least 0 (0: no clipping)"
    )
    low, high = args.random_crop_scale
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"--random_crop_scale must satisfy 0 < min <= max <= 1, got {low} {high}.")


def start_training_run(args: argparse.Namespace, fsdp_refusal: str | None = None):
    """
    Start a training script before any data is read: logging, the accelerator (`training.loop.build_accelerator`), the
    launch check, the output folder, the Hub repository and the checkpoint to resume from; returns the accelerator and
    that checkpoint (or `None`). A script that cannot train under FSDP passes the error to raise as `fsdp_refusal`.
    """
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    accelerator = build_accelerator(args)
    check_launch(accelerator)
    if fsdp_refusal is not None and accelerator.distributed_type == DistributedType.FSDP:
        raise ValueError(fsdp_refusal)
    prepare_output_dir(args.output_dir)
    check_hub_repo(args, accelerator)
    # Before any compute: a conflict with the checkpoints already in --output_dir fails here.
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
    return accelerator, checkpoint


def push_training_outputs(args: argparse.Namespace, accelerator, commit_message: str) -> str | None:
    """
    With `--push_to_hub`, upload `--output_dir` (without its checkpoints and logs) to `--hub_model_id` from the main
    process, and return the repository's id (`None` elsewhere); rerunning the script's push resumes an interrupted one.
    """
    if not args.push_to_hub or not accelerator.is_main_process:
        return None
    repo_id = push_folder_to_hub(
        args.output_dir,
        args.hub_model_id,
        private=args.hub_private,
        token=args.hub_token,
        commit_message=commit_message,
    )
    logger.info(f"Pushed {args.output_dir} to https://huggingface.co/{repo_id}.")
    return repo_id


__all__ = [
    "FINAL_OUTPUTS_PARTIAL",
    "add_image_data_args",
    "add_optimization_args",
    "add_output_args",
    "check_shared_training_args",
    "push_training_outputs",
    "start_training_run",
]
