# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Train VIM, the autoregressive transformer over ViT-VQGAN tokens (stage 2 of Yu et al., "Vector-quantized Image
Modeling with Improved VQGAN").

    accelerate launch examples/train_vim.py --tokenizer out/tokenizer --pretokenized_dataset out/imagenet-tokens \
        --model_config large --conditioning class --output_dir out/vim
    accelerate launch examples/train_vim.py --tokenizer out/tokenizer --on_the_fly --random_crop --random_flip \
        --dataset_name ILSVRC/imagenet-1k --model_config large --output_dir out/vim

Data. Either token ids written by `examples/pretokenize.py` (`--pretokenized_dataset`, a folder or a Hub dataset; its
recorded tokenizer fingerprint must match `--tokenizer`), or images (`--dataset_name` / `--train_data_dir`) that are
augmented (`--random_crop --random_flip`) and encoded by the frozen tokenizer inside the training loop
(`--on_the_fly`, the default without `--pretokenized_dataset`; under `torch.no_grad`), which is what the paper does.
Each sequence is `[prefix, image tokens in raster order]`: the class token of the image's label (`--conditioning
class`) or the null token (`--conditioning unconditional`, a model with `num_classes=0`). The codebook size and
token grid come from the tokenizer, the classes and their names from the dataset's `ClassLabel` (image folder names,
ImageNet class names), so `VimPipeline.get_label_ids("name")` works on the result.

Validation. Every `--validation_steps` steps and at the end: the mean next-token loss (nats per image token, like
`train/loss`, but in eval mode) of up to `--max_validation_sequences` sequences of `--validation_split` (default
`validation`, used when the data has it: the held-out tokens of `pretokenize.py`, or center-cropped images encoded on
the fly), logged as `validation/loss`; a rising validation loss under a falling training loss is overfitting, which
the training loss alone cannot show. Then a grid of samples of a few classes (`validation_samples.png`). With
`--save_best_model` (transformers' `load_best_model_at_end`), each new lowest validation loss saves the transformer to
`best_transformer/`, and the output pipeline gets that transformer rather than the last one; `train_results.json` and
the model card say which step it is (`best_step`, `best_validation_loss`).

Optimization (paper Sec. 5.2 / spec 6.1): Adam with betas (0.9, 0.96), no weight decay (the paper is silent),
learning rate warmed up linearly to 4.5e-4 over 5k steps, constant, then decayed exponentially from step 80k so that
it reaches 1e-5 at the last step (the paper gives the start and the end value, not the end step):

    lr(s) = lr * s / warmup                                              for s < warmup
    lr(s) = lr                                                           for warmup <= s < decay_start
    lr(s) = lr * (lr_end / lr) ** ((s - decay_start) / (max_steps - decay_start))   for s >= decay_start

Gradient clipping at norm 1.0 is our default (the paper does not say). `--optimizer adafactor` is transformers'
Adafactor with factored second moments and a first moment (beta1), the paper's memory-saving implementation of Adam
(without its int8 first moment; Adafactor's second-moment decay follows its own 1 - t^-0.8 schedule, not beta2).
Steps count optimizer steps; the paper's values are for a global batch of 1024 over 450k steps.

The output folder is a `VimPipeline` (`model_index.json`, `vqgan/`, `transformer/`; load it with
`VimPipeline.from_pretrained(output_dir)`) with a model card `README.md`, `train_results.json`, the last validation
grid `validation_samples.png`, TensorBoard logs in `logs/` and `accelerate` checkpoints in
`checkpoints/checkpoint_<step>`. `--resume_from_checkpoint latest` restores the model, optimizer, scheduler, random
states, step and position in the data: the resumed run ends with the same weights as an uninterrupted one. It runs
unchanged on one CPU, on several processes (DDP) and with FSDP (see examples/README.md).
"""

import argparse
import gc
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, DistributedType, ProjectConfiguration, set_seed
from datasets import ClassLabel, Dataset, DatasetDict, load_dataset, load_from_disk
from huggingface_hub import hf_hub_download
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import Adafactor

from vit_vqgan_hf import VimConfig, VimForCausalLM, VimPipeline, VitVqganModel
from vit_vqgan_hf.cli import (
    add_hub_args,
    check_hub_repo,
    check_launch,
    check_shared_training_args,
    load_pretrained,
    prepare_output_dir,
)
from vit_vqgan_hf.hub import create_model_card, push_folder_to_hub
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.training.checkpointing import (
    CHECKPOINTS_FOLDER,
    TrainingState,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from vit_vqgan_hf.training.data import (
    ImageStreamingDataset,
    ImageTrainingDataset,
    ImageTransform,
    collate_images,
    load_image_dataset,
)
from vit_vqgan_hf.training.tokens import TOKENS_METADATA_FILE, check_tokenizer_fingerprint, vim_input_ids


logger = get_logger(__name__, log_level="INFO")

MODEL_PRESETS = ("tiny", "base", "large")
# --save_best_model: the transformer of the lowest validation loss, and the record of its step and loss.
BEST_TRANSFORMER_FOLDER = "best_transformer"
BEST_VALIDATION_FILE = "best_validation.json"


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Train a VIM transformer over the tokens of a ViT-VQGAN tokenizer.")
    data = parser.add_argument_group("data")
    data.add_argument("--tokenizer", required=True, help="The frozen ViT-VQGAN tokenizer (folder or Hub id).")
    data.add_argument(
        "--pretokenized_dataset", default=None, help="Token ids from examples/pretokenize.py (folder or Hub id)."
    )
    data.add_argument(
        "--on_the_fly",
        action="store_true",
        help="Augment and encode images in the training loop (the paper's way; the default without pretokenized data).",
    )
    data.add_argument("--dataset_name", default="ILSVRC/imagenet-1k", help="Hub image dataset (--on_the_fly).")
    data.add_argument("--dataset_config_name", default=None, help="Configuration of the Hub dataset.")
    data.add_argument("--train_data_dir", default=None, help="Image folder instead of a Hub dataset (--on_the_fly).")
    data.add_argument("--train_split", default="train", help="Split to train on.")
    data.add_argument(
        "--validation_split",
        default="validation",
        help="Held-out split of the validation loss (pretokenized or images), used when the data has it.",
    )
    data.add_argument("--image_column", default="image", help="Column holding the images (--on_the_fly).")
    data.add_argument("--label_column", default="label", help="Column of class labels.")
    data.add_argument("--streaming", action="store_true", help="Stream the images (--on_the_fly; needs max steps).")
    data.add_argument("--shuffle_buffer_size", type=int, default=10_000, help="Shuffle buffer of a streamed dataset.")
    data.add_argument("--cache_dir", default=None, help="Cache directory of `datasets`.")
    data.add_argument("--resolution", type=int, default=None, help="Image size (--on_the_fly); default: tokenizer's.")
    crop = data.add_mutually_exclusive_group()
    crop.add_argument("--center_crop", action="store_true", help="Resize and center-crop (the default).")
    crop.add_argument("--random_crop", action="store_true", help="Random resized crops (--on_the_fly).")
    data.add_argument(
        "--random_crop_scale", type=float, nargs=2, default=(0.5, 1.0), help="Area range of the random crops."
    )
    data.add_argument("--random_flip", action="store_true", help="Mirror half of the images (--on_the_fly).")
    data.add_argument("--dataloader_num_workers", type=int, default=0, help="Dataloader worker processes.")
    data.add_argument(
        "--ignore_tokenizer_mismatch",
        action="store_true",
        help="Train on pretokenized ids whose recorded tokenizer weights/config differ from --tokenizer.",
    )

    model = parser.add_argument_group("model")
    model.add_argument("--model_config", default="large", help=f"{'|'.join(MODEL_PRESETS)} or a config path.")
    model.add_argument(
        "--conditioning", default="class", choices=["class", "unconditional"], help="Class prefix or null prefix."
    )
    model.add_argument(
        "--class_dropout_prob",
        type=float,
        default=None,
        help="Label dropout to the null token; default: the config's (0, the paper). 0.1 enables guidance.",
    )
    model.add_argument(
        "--dropout", type=float, default=None, help="Residual/attention dropout; default: the config's (0.1)."
    )
    model.add_argument("--gradient_checkpointing", action="store_true", help="Recompute activations in backward.")

    optim = parser.add_argument_group("optimization")
    optim.add_argument("--train_batch_size", type=int, default=8, help="Sequences per process and micro-batch.")
    optim.add_argument("--max_train_steps", type=int, default=None, help="Optimizer steps; overrides epochs.")
    optim.add_argument(
        "--num_train_epochs",
        type=int,
        default=360,
        help="Epochs when --max_train_steps is unset (the paper: 450k steps of 1024 images, ~360 ImageNet epochs).",
    )
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per step.")
    optim.add_argument("--optimizer", default="adamw", choices=["adamw", "adafactor"], help="Optimizer.")
    optim.add_argument("--learning_rate", type=float, default=4.5e-4, help="Peak learning rate.")
    optim.add_argument("--lr_warmup_steps", type=int, default=5000, help="Linear warm-up steps.")
    optim.add_argument("--lr_decay_start", type=int, default=80_000, help="Step where the exponential decay starts.")
    optim.add_argument("--lr_end", type=float, default=1e-5, help="Learning rate at the last step.")
    optim.add_argument("--adam_beta1", type=float, default=0.9, help="Adam beta1 (also Adafactor's).")
    optim.add_argument("--adam_beta2", type=float, default=0.96, help="Adam beta2.")
    optim.add_argument("--adam_weight_decay", type=float, default=0.0, help="Decoupled weight decay.")
    optim.add_argument("--adam_epsilon", type=float, default=1e-8, help="Adam epsilon.")
    optim.add_argument(
        "--max_grad_norm", type=float, default=1.0, help="Gradient clipping norm (paper: not stated); 0 = off."
    )
    optim.add_argument("--mixed_precision", default=None, choices=["no", "bf16", "fp16"], help="Autocast precision.")
    optim.add_argument(
        "--max_nonfinite_steps", type=int, default=10, help="Stop after this many non-finite steps in a row."
    )
    optim.add_argument("--seed", type=int, default=0, help="Seed of initialization, data order and dropout.")

    run = parser.add_argument_group("outputs, logging and checkpoints")
    run.add_argument("--output_dir", default="vim", help="Where the pipeline and checkpoints go.")
    run.add_argument("--checkpointing_steps", type=int, default=5000, help="Save a training state every N steps.")
    run.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    run.add_argument("--resume_from_checkpoint", default=None, help="`latest` or a checkpoint folder.")
    run.add_argument(
        "--validation_steps", type=int, default=5000, help="Validation loss and sample grid every N steps."
    )
    run.add_argument(
        "--validation_classes", nargs="+", default=None, help="Class ids or names to sample; default: the first 4."
    )
    run.add_argument("--num_validation_images", type=int, default=4, help="Validation images per class.")
    run.add_argument("--validation_guidance_scale", type=float, default=1.0, help="Guidance of validation samples.")
    run.add_argument(
        "--max_validation_sequences",
        type=int,
        default=1000,
        help="Held-out sequences of the validation loss, computed every --validation_steps steps.",
    )
    run.add_argument(
        "--save_best_model",
        action="store_true",
        help="Output the transformer of the lowest validation loss instead of the last one (needs a validation split).",
    )
    run.add_argument("--logging_steps", type=int, default=50, help="Log training statistics every N steps.")
    run.add_argument("--report_to", default="tensorboard", help="Tracker: tensorboard, wandb, all or none.")
    run.add_argument("--logging_dir", default="logs", help="Tracker directory, relative to --output_dir.")
    add_hub_args(parser)

    args = parser.parse_args(input_args)
    args.center_crop = not args.random_crop  # the default crop, recorded as such in the model card
    check_args(args)
    return args


def check_args(args):
    """Sanity checks with messages that say which flag to change."""
    if args.pretokenized_dataset is not None and args.on_the_fly:
        raise ValueError(
            "Pass one data source: --pretokenized_dataset PATH_OR_HUB_ID, or images (--dataset_name / "
            "--train_data_dir, encoded --on_the_fly)."
        )
    # Without token ids, the images of --dataset_name / --train_data_dir are encoded in the loop.
    args.on_the_fly = args.pretokenized_dataset is None
    if args.train_data_dir is not None:
        args.dataset_name = None
    if args.pretokenized_dataset is not None:
        args.dataset_name = None
        if args.streaming or args.random_crop or args.random_flip:
            raise ValueError(
                "--streaming, --random_crop and --random_flip apply to --on_the_fly; pretokenized data is augmented "
                "by `pretokenize.py --num_augmented_copies`."
            )
    if args.streaming and args.max_train_steps is None:
        raise ValueError("--streaming datasets have no length: set --max_train_steps.")
    if args.conditioning == "unconditional" and args.validation_classes is not None:
        raise ValueError(
            "--validation_classes names classes to sample, but --conditioning unconditional trains without classes: "
            "drop one of the two."
        )
    check_shared_training_args(args)
    for name in ("logging_steps", "max_nonfinite_steps", "max_validation_sequences"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    for name in ("max_train_steps", "checkpointing_steps", "validation_steps", "checkpoints_total_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 when given, got {getattr(args, name)}.")
    if not 0 < args.lr_end <= args.learning_rate:
        raise ValueError(f"--lr_end ({args.lr_end}) must lie in (0, --learning_rate ({args.learning_rate})].")
    low, high = args.random_crop_scale
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"--random_crop_scale must satisfy 0 < min <= max <= 1, got {low} {high}.")


def vim_lr_lambda(step: float, warmup_steps: int, decay_start: int, total_steps: int, end_ratio: float) -> float:
    """
    Multiplier of the peak learning rate after `step` optimizer steps: linear warm-up, constant, then exponential
    decay from `decay_start` that reaches `end_ratio` (= lr_end / lr) at `total_steps` (formula in the module
    docstring). Without room for a decay (`decay_start >= total_steps`) the rate stays constant after warm-up.
    """
    if step < warmup_steps:
        return step / warmup_steps
    if step < decay_start or decay_start >= total_steps:
        return 1.0
    return end_ratio ** (min(step - decay_start, total_steps - decay_start) / (total_steps - decay_start))


def load_pretokenized(args, tokenizer):
    """
    The training split of a pretokenized dataset (raw and torch-formatted), its held-out split (torch-formatted, at
    most --max_validation_sequences; None without one), its metadata, and the tokenizer check.
    """
    path = args.pretokenized_dataset
    if os.path.isdir(path):
        splits = load_from_disk(path)
        metadata_file = Path(path, TOKENS_METADATA_FILE)
        metadata_text = metadata_file.read_text() if metadata_file.is_file() else None
    else:
        expected = "a folder written by examples/pretokenize.py or a Hub dataset id"
        splits = load_pretrained(load_dataset, path, expected=expected, cache_dir=args.cache_dir)
        metadata_text = Path(
            hf_hub_download(path, TOKENS_METADATA_FILE, repo_type="dataset", token=args.hub_token)
        ).read_text()
    validation = None
    if isinstance(splits, DatasetDict):
        if args.train_split not in splits:
            raise ValueError(f"{path!r} has no split {args.train_split!r}; available splits: {sorted(splits)}.")
        dataset = splits[args.train_split]
        if args.validation_split != args.train_split:
            validation = splits.get(args.validation_split)
    else:
        dataset = splits
    metadata_text = metadata_text or dataset.info.description
    if not metadata_text:
        raise ValueError(
            f"{path!r} has no {TOKENS_METADATA_FILE} nor tokenizer metadata in its description: it was not written by "
            "examples/pretokenize.py, so nothing says which tokenizer made its ids."
        )
    metadata = json.loads(metadata_text)
    mismatches = check_tokenizer_fingerprint(
        metadata["tokenizer"], tokenizer, strict=not args.ignore_tokenizer_mismatch
    )
    for mismatch in mismatches:
        logger.warning(f"Tokenizer mismatch tolerated (--ignore_tokenizer_mismatch): {mismatch}.")
    if "image_tokens" not in dataset.column_names:
        raise ValueError(f"{path!r} has no `image_tokens` column; columns: {dataset.column_names}.")
    columns = ["image_tokens"] + ([args.label_column] if args.label_column in dataset.column_names else [])
    if validation is not None:
        validation = validation.select(range(min(len(validation), args.max_validation_sequences)))
        validation = validation.with_format("torch", columns=columns)
    return dataset, dataset.with_format("torch", columns=columns), validation, metadata


def label_names(args, dataset) -> list[str] | None:
    """Class names from the label column's `ClassLabel` (or `"0"`, `"1"`, ... for plain integers); None without."""
    features = dataset.features or {}
    if args.label_column not in features:
        return None
    feature = features[args.label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    if args.streaming:
        raise ValueError(
            f"The label column {args.label_column!r} of a streamed dataset must be a ClassLabel, so that the number "
            "of classes is known without reading the whole stream."
        )
    num_classes = int(max(dataset[args.label_column])) + 1
    logger.warning(f"{args.label_column!r} is not a ClassLabel: classes are named '0' .. '{num_classes - 1}'.")
    return [str(label) for label in range(num_classes)]


def collate_tokens(examples: list[dict], label_column: str) -> dict:
    """Batch of pretokenized examples: `image_tokens` `(batch, grid**2)`, `labels` when present, `skipped` 0."""
    batch = {"image_tokens": torch.stack([example["image_tokens"] for example in examples]), "skipped": 0}
    if label_column in examples[0]:
        batch["labels"] = torch.stack([example[label_column] for example in examples]).long()
    return batch


def build_datasets(args, accelerator, tokenizer):
    """
    The training dataset (tokens or images), the held-out dataset of the validation loss (None without a
    --validation_split in the data), the collate function and the class names; sets the data description.
    """
    if args.pretokenized_dataset is not None:
        raw, dataset, validation, metadata = load_pretokenized(args, tokenizer)
        names = label_names(args, raw)
        source = metadata.get("source", {})
        args.data_source = source.get("dataset_name") or source.get("train_data_dir") or args.pretokenized_dataset
        # The Hub dataset behind the tokens (for the card): the images' dataset, else a token dataset on the Hub.
        args.data_hub_id = source.get("dataset_name") or (
            None if os.path.isdir(args.pretokenized_dataset) else args.pretokenized_dataset
        )
        copies = metadata["preprocessing"]["num_augmented_copies"]
        args.data_description = f"{len(raw)} token sequences pretokenized from {public_name(args.data_source)}" + (
            f" ({copies} augmented copies per image besides the center crop)" if copies else " (center crops)"
        )
        collate_fn = partial(collate_tokens, label_column=args.label_column)
        return dataset, validation_or_none(args, validation), collate_fn, names
    load = {"streaming": args.streaming, "cache_dir": args.cache_dir, "image_column": args.image_column}
    with accelerator.main_process_first():
        splits = load_image_dataset(args.dataset_name, args.train_data_dir, args.dataset_config_name, None, **load)
    if args.train_split not in splits:
        raise ValueError(f"No split {args.train_split!r} to train on; available splits: {sorted(splits)}.")
    raw = splits[args.train_split]
    names = label_names(args, raw)
    validation = splits.get(args.validation_split) if args.validation_split != args.train_split else None
    validation = validation_or_none(args, validation)
    if validation is not None:
        if args.streaming:
            # Materialize the held-out examples (still undecoded) so that every process can index them.
            validation = Dataset.from_list(
                list(validation.take(args.max_validation_sequences)), features=validation.features
            )
        else:
            validation = validation.select(range(min(len(validation), args.max_validation_sequences)))
        # Center crops, as the pretokenized validation split.
        validation = ImageTrainingDataset(
            validation, ImageTransform(args.resolution), args.image_column, args.label_column, seed=args.seed
        )
    if args.streaming:
        raw = raw.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
    transform = ImageTransform(args.resolution, args.random_crop, args.random_flip, tuple(args.random_crop_scale))
    dataset_class = ImageStreamingDataset if args.streaming else ImageTrainingDataset
    dataset = dataset_class(raw, transform, args.image_column, args.label_column, seed=args.seed)
    args.data_source = args.dataset_name or args.train_data_dir
    args.data_hub_id = args.dataset_name
    augmentation = "random resized crop" if args.random_crop else "center crop"
    augmentation += " + horizontal flip" if args.random_flip else ""
    args.data_description = f"images of {public_name(args.data_source)} ({augmentation}, encoded on the fly)"
    return dataset, validation, collate_images, names


def public_name(source: str) -> str:
    """A Hub id as is, a local folder by its name: the description goes into the public model card."""
    return Path(source).name if os.path.isdir(source) else source


def validation_or_none(args, validation):
    """The held-out dataset, or None (logged) when the data has no usable --validation_split."""
    if validation is None:
        logger.info(f"No split {args.validation_split!r} in the data: no validation loss.")
        return None
    columns = validation.column_names  # None for a stream of unknown features: tried, and failing loudly if so
    if args.conditioning == "class" and columns is not None and args.label_column not in columns:
        logger.warning(f"The split {args.validation_split!r} has no {args.label_column!r} column: no validation loss.")
        return None
    return validation


def build_config(args, tokenizer, names: list[str] | None) -> VimConfig:
    """The VIM config: preset or file, with the tokenizer's codebook and grid and the dataset's classes."""
    overrides = {
        "codebook_size": tokenizer.config.codebook_size,
        "token_grid_size": tokenizer.config.image_size // tokenizer.config.patch_size,
    }
    if args.conditioning == "class":
        if not names:
            raise ValueError(
                f"--conditioning class needs class labels, but the dataset has no column {args.label_column!r} "
                "(--label_column); use --conditioning unconditional for unlabelled images."
            )
        # Both maps: `from_pretrained` sets overrides as attributes, which would leave a stale generic `label2id`.
        overrides.update(
            num_classes=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
        )
    else:
        overrides.update(num_classes=0, id2label={}, label2id={})
    if args.class_dropout_prob is not None:
        overrides["class_dropout_prob"] = args.class_dropout_prob
    if args.dropout is not None:
        overrides.update(hidden_dropout_prob=args.dropout, attention_dropout=args.dropout)
    if args.model_config in MODEL_PRESETS:
        return VimConfig.from_preset(args.model_config, **overrides)
    expected = f"a preset ({', '.join(MODEL_PRESETS)}), a config.json, a folder with one, or a Hub id"
    config = load_pretrained(VimConfig.from_pretrained, args.model_config, expected=expected, **overrides)
    config.validate_architecture()
    return config


def build_accelerator(args) -> Accelerator:
    project_config = ProjectConfiguration(
        project_dir=args.output_dir,
        logging_dir=os.path.join(args.output_dir, args.logging_dir),
        automatic_checkpoint_naming=True,
        total_limit=args.checkpoints_total_limit,
    )
    return Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=project_config,
        # Epoch e is shuffled with seed + e in every process, so shards agree and a resumed run sees the same order;
        # streamed batches are built in each process (the default broadcast cannot carry the `skipped` counts).
        dataloader_config=DataLoaderConfiguration(
            use_seedable_sampler=True, data_seed=args.seed, dispatch_batches=False
        ),
    )


def build_dataloader(args, accelerator, dataset, collate_fn) -> DataLoader:
    """The prepared dataloader; also fills in --max_train_steps from --num_train_epochs."""
    dataloader = DataLoader(
        dataset,
        batch_size=args.train_batch_size,
        shuffle=not args.streaming,
        collate_fn=collate_fn,
        num_workers=args.dataloader_num_workers,
        # Its own generator: starting an epoch's iterator then draws nothing from the global RNG, whose state (label
        # dropout, dropout) the checkpoints restore; a resumed run would otherwise draw once more than the original.
        generator=torch.Generator().manual_seed(args.seed),
    )
    dataloader = accelerator.prepare(dataloader)
    if args.max_train_steps is None:
        if len(dataloader) == 0:
            raise ValueError("The training dataset is empty.")
        args.max_train_steps = args.num_train_epochs * math.ceil(len(dataloader) / args.gradient_accumulation_steps)
    if args.lr_warmup_steps > args.max_train_steps:
        logger.warning(f"--lr_warmup_steps {args.lr_warmup_steps} exceeds the {args.max_train_steps} training steps.")
    if args.lr_decay_start >= args.max_train_steps:
        logger.warning(
            f"--lr_decay_start {args.lr_decay_start} is not before the last step {args.max_train_steps}: the learning "
            "rate stays constant after the warm-up."
        )
    return dataloader


def build_validation_dataloader(args, accelerator, dataset, collate_fn) -> DataLoader | None:
    """The held-out sequences in order, sharded over the processes (every process gets as many batches)."""
    if dataset is None:
        return None
    dataloader = DataLoader(
        dataset,
        batch_size=args.train_batch_size,
        collate_fn=collate_fn,
        num_workers=args.dataloader_num_workers,
        # Starting an iterator draws a seed from the loader's generator: its own, so that validating draws nothing
        # from the global RNG of dropout and label dropout (a resumed run would diverge otherwise).
        generator=torch.Generator().manual_seed(args.seed),
    )
    return accelerator.prepare(dataloader)


def build_optimizer(args, model):
    """AdamW (the paper's Adam with betas (0.9, 0.96)) or transformers' Adafactor with an external schedule."""
    if args.optimizer == "adafactor":
        return Adafactor(
            model.parameters(),
            lr=args.learning_rate,
            beta1=args.adam_beta1,
            weight_decay=args.adam_weight_decay,
            scale_parameter=False,
            relative_step=False,
            warmup_init=False,
        )
    return torch.optim.AdamW(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )


def build_scheduler(args, optimizer, num_processes: int):
    """The paper's schedule ([`vim_lr_lambda`]) as a LambdaLR."""
    # A prepared scheduler advances `num_processes` times per optimizer step (accelerate's convention).
    end_ratio = args.lr_end / args.learning_rate
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: vim_lr_lambda(
            step / num_processes, args.lr_warmup_steps, args.lr_decay_start, args.max_train_steps, end_ratio
        ),
    )


@torch.no_grad()
def batch_input_ids(batch: dict, tokenizer, config: VimConfig, accelerator) -> torch.LongTensor:
    """`[prefix, image tokens]` of a batch: pretokenized ids, or images encoded now by the frozen tokenizer."""
    if "image_tokens" in batch:
        image_tokens = batch["image_tokens"]
    else:
        with accelerator.autocast():
            image_tokens = tokenizer.encode(batch["pixel_values"]).image_tokens
    if config.num_classes > 0:
        prefix_ids = config.codebook_size + batch["labels"]
    else:
        prefix_ids = torch.full((image_tokens.shape[0],), config.null_class_token_id, device=image_tokens.device)
    return vim_input_ids(image_tokens, prefix_ids)


def export_transformer(accelerator, model) -> VimForCausalLM | None:
    """
    The trained transformer with full weights on the main process (None elsewhere). Call it on every process: under
    FSDP the shards are gathered into a copy built on the meta device; otherwise it is the unwrapped model itself.
    """
    if accelerator.distributed_type == DistributedType.FSDP:
        state_dict = accelerator.get_state_dict(model)
        if not accelerator.is_main_process:
            return None
        config = accelerator.unwrap_model(model).config
        with torch.device("meta"):
            export = VimForCausalLM(config)
        export.load_state_dict(state_dict, assign=True)
        return export.to(accelerator.device)
    return accelerator.unwrap_model(model) if accelerator.is_main_process else None


def validation_class_ids(args, pipeline: VimPipeline) -> list[int] | None:
    """
    The classes of the validation grid: --validation_classes (ids or names), or the first four. Also checks that the
    grid can be sampled with --validation_guidance_scale.
    """
    config = pipeline.transformer.config
    if args.validation_guidance_scale > 1 and not pipeline.has_trained_null_class:
        raise ValueError(
            f"--validation_guidance_scale {args.validation_guidance_scale} needs a transformer trained with label "
            "dropout: pass --class_dropout_prob 0.1 as well (the paper uses neither), or drop the flag."
        )
    if args.validation_guidance_scale > 1 and config.num_classes == 0:
        raise ValueError("--validation_guidance_scale > 1 guides towards a class: it needs --conditioning class.")
    if config.num_classes == 0:
        return None
    if args.validation_classes is None:
        return list(range(min(4, config.num_classes)))
    class_ids = []
    for label in args.validation_classes:
        try:
            class_ids.append(int(label) if label.isdigit() else pipeline.get_label_ids(label)[0])
        except ValueError as error:
            names = ", ".join(repr(name) for name in list(config.id2label.values())[:10])
            raise ValueError(f"--validation_classes: {error} Class names of the data: {names}, ...") from error
        if class_ids[-1] >= config.num_classes:
            raise ValueError(
                f"--validation_classes: class id {label} is out of range for {config.num_classes} classes."
            )
    return class_ids


def log_validation(args, accelerator, model, tokenizer, global_step: int) -> np.ndarray | None:
    """Sample a grid (one row per validation class) on the main process, log it and save validation_samples.png."""
    transformer = export_transformer(accelerator, model)
    grid = None
    if accelerator.is_main_process:
        was_training = transformer.training
        pipeline = VimPipeline(vqgan=tokenizer, transformer=transformer.eval())
        pipeline.set_progress_bar_config(disable=True)
        class_ids = validation_class_ids(args, pipeline)
        num_rows = len(class_ids) if class_ids is not None else 1
        generator = [
            torch.Generator().manual_seed(args.seed + index) for index in range(num_rows * args.num_validation_images)
        ]
        with accelerator.autocast():
            images = pipeline(
                class_labels=class_ids,
                num_images_per_label=args.num_validation_images,
                guidance_scale=args.validation_guidance_scale,
                generator=generator,
                output_type="np",
            ).images
        transformer.train(was_training)
        images = (np.asarray(images) * 255).round().astype(np.uint8)
        height, width = images.shape[1:3]
        grid = images.reshape(num_rows, args.num_validation_images, height, width, 3)
        grid = grid.transpose(0, 2, 1, 3, 4).reshape(num_rows * height, args.num_validation_images * width, 3)
        for tracker in accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_image("validation/samples", grid, global_step, dataformats="HWC")
            elif hasattr(tracker, "log_images"):
                tracker.log_images({"validation/samples": [grid]}, step=global_step)
        PIL.Image.fromarray(grid).save(os.path.join(args.output_dir, "validation_samples.png"))
        of_classes = "" if class_ids is None else f" of classes {class_ids}"
        logger.info(f"step {global_step}: validation samples{of_classes} saved.")
    accelerator.wait_for_everyone()
    return grid


def save_model_card(args, output_dir: str, config: VimConfig, tokenizer_config, state: TrainingState, losses: dict):
    """Write `README.md` with the package's VIM card template (`vit_vqgan_hf.hub.create_model_card`)."""
    # Only Hub ids go into the card's metadata: a local tokenizer or data folder says nothing to a reader.
    base_model = args.tokenizer if not os.path.isdir(args.tokenizer) else None
    card = create_model_card(
        config,
        # The run's arguments, plus how far it went: the training loss is not an evaluation, so no results file.
        {
            **vars(args),
            "trained_steps": state.global_step,
            "final_training_loss": losses["final_loss"],
            "final_validation_loss": losses["validation_loss"],
            **{name: losses[name] for name in ("best_step", "best_validation_loss") if name in losses},
        },
        tokenizer_config=tokenizer_config,
        repo_id=args.hub_model_id,
        base_model=base_model,
        dataset=args.data_hub_id,
    )
    card.save(os.path.join(output_dir, "README.md"))


@dataclass
class BestValidation:
    """The lowest validation loss so far and its step (`--save_best_model`), saved in every checkpoint."""

    step: int | None = None
    loss: float | None = None

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state_dict: dict):
        self.step, self.loss = state_dict["step"], state_dict["loss"]


def best_transformer(args, best: BestValidation) -> VimForCausalLM | None:
    """The transformer saved at `best.step` by --save_best_model; None (and a warning) if the folder holds another."""
    folder = Path(args.output_dir, BEST_TRANSFORMER_FOLDER)
    record_file = folder / BEST_VALIDATION_FILE
    saved_step = json.loads(record_file.read_text())["step"] if record_file.is_file() else None
    if saved_step != best.step:
        # Only after resuming from a checkpoint older than the folder, in a run that then never did as well again.
        logger.warning(
            f"{folder} holds the transformer of step {saved_step}, not of the best step {best.step} of this run: "
            "saving the last transformer instead."
        )
        return None
    logger.info(f"Saving the transformer of step {best.step}, the lowest validation loss ({best.loss:.4f}).")
    return VimForCausalLM.from_pretrained(folder)


def save_outputs(args, accelerator, model, tokenizer, state: TrainingState, losses: dict, best: BestValidation):
    """
    The pipeline folder (model_index.json, vqgan/, transformer/), the model card and train_results.json; `losses`
    holds the last logged training loss (`final_loss`) and the final `validation_loss` (None without one). The
    transformer is the last one, or with --save_best_model the one of the lowest validation loss.
    """
    transformer = export_transformer(accelerator, model)  # on every process: FSDP gathers the shards
    if accelerator.is_main_process:
        if args.save_best_model and best.step is not None:
            transformer = best_transformer(args, best) or transformer
        VimPipeline(vqgan=tokenizer, transformer=transformer).save_pretrained(args.output_dir)
        create_image_processor(tokenizer.config).save_pretrained(os.path.join(args.output_dir, "vqgan"))
        save_model_card(args, args.output_dir, transformer.config, tokenizer.config, state, losses)
        results = {**state.state_dict(), **losses}
        Path(args.output_dir, "train_results.json").write_text(json.dumps(results, indent=2) + "\n")
        logger.info(
            f"Saved the VIM pipeline to {args.output_dir}; {state.skipped_images} reads of unreadable images skipped "
            "(once per epoch for each such file)."
        )
    accelerator.wait_for_everyone()


def push_to_hub(args) -> str:
    """Upload the output folder (without checkpoints and logs) to the Hub; rerunning resumes an interrupted push."""
    repo_id = push_folder_to_hub(
        args.output_dir,
        args.hub_model_id,
        private=args.hub_private,
        token=args.hub_token,
        commit_message=f"VIM ({args.model_config}, {args.conditioning})",
    )
    logger.info(f"Pushed {args.output_dir} to https://huggingface.co/{repo_id}.")
    return repo_id


@dataclass
class TrainingParts:
    """What the training loop works on, prepared by accelerate."""

    model: torch.nn.Module
    tokenizer: VitVqganModel
    config: VimConfig
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_dataset: torch.utils.data.Dataset
    train_dataloader: DataLoader
    validation_dataloader: DataLoader | None
    best_validation: BestValidation


@torch.no_grad()
def validation_loss(accelerator, parts: TrainingParts) -> float | None:
    """
    Mean next-token cross-entropy (nats per image token, as `train/loss`) of the held-out sequences, in eval mode
    (no dropout, no label dropout), over all processes; None without a validation split.
    """
    if parts.validation_dataloader is None:
        return None
    was_training = parts.model.training
    parts.model.eval()
    sequence_losses = []
    for batch in parts.validation_dataloader:
        input_ids = batch_input_ids(batch, parts.tokenizer, parts.config, accelerator)
        with accelerator.autocast():
            logits = parts.model(input_ids=input_ids, use_cache=False).logits
        token_losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none")
        # Per sequence, so that `gather_for_metrics` can drop the repeats that even out the last batch.
        sequence_losses.append(accelerator.gather_for_metrics(token_losses.mean(dim=1)))
    parts.model.train(was_training)
    return torch.cat(sequence_losses).mean().item()


def log_validation_loss(args, accelerator, parts: TrainingParts, global_step: int) -> float | None:
    """
    Compute, log and return the validation loss (every process takes part); with --save_best_model, a loss lower
    than any before saves the transformer to `best_transformer/`.
    """
    loss = validation_loss(accelerator, parts)
    if loss is None:
        return None
    accelerator.log({"validation/loss": loss}, step=global_step)
    logger.info(f"step {global_step}: validation loss {loss:.4f}")
    best = parts.best_validation
    if args.save_best_model and (best.loss is None or loss < best.loss):
        transformer = export_transformer(accelerator, parts.model)
        if accelerator.is_main_process:
            folder = Path(args.output_dir, BEST_TRANSFORMER_FOLDER)
            transformer.save_pretrained(folder)
            # Written last: a folder whose record names the step of `best` holds that step's weights in full.
            record = {"step": global_step, "validation_loss": loss}
            (folder / BEST_VALIDATION_FILE).write_text(json.dumps(record) + "\n")
        accelerator.wait_for_everyone()
        best.step, best.loss = global_step, loss
    return loss


def train_micro_batch(args, accelerator, parts: TrainingParts, batch) -> tuple[torch.Tensor, int, dict | None]:
    """Forward and backward of one micro-batch; clip and step (or skip a non-finite step) when gradients sync."""
    input_ids = batch_input_ids(batch, parts.tokenizer, parts.config, accelerator)
    with accelerator.accumulate(parts.model):
        with accelerator.autocast():
            loss = parts.model(input_ids=input_ids, labels=input_ids, use_cache=False).loss
        accelerator.backward(loss)
        step_logs = None
        if accelerator.sync_gradients:
            grad_norm = accelerator.clip_grad_norm_(parts.model.parameters(), args.max_grad_norm or math.inf)
            # The norm is global (after the gradient all-reduce), so every process takes the same decision.
            nonfinite = args.mixed_precision != "fp16" and not torch.isfinite(grad_norm).item()
            if not nonfinite:
                parts.optimizer.step()
            parts.optimizer.zero_grad(set_to_none=True)
            parts.scheduler.step()
            step_logs = {
                "train/grad_norm": grad_norm.item(),
                "train/learning_rate": parts.scheduler.get_last_lr()[0],
                "nonfinite": nonfinite,
            }
    return loss.detach(), input_ids.shape[0], step_logs


def after_optimizer_step(args, accelerator, parts, state: TrainingState, step_logs: dict, window: dict, progress):
    """Count the step, stop after too many non-finite steps, then log, checkpoint and validate when due."""
    state.global_step += 1
    progress.update(1)
    if step_logs.pop("nonfinite"):
        state.nonfinite_steps += 1
        state.consecutive_nonfinite_steps += 1
        logger.warning(f"Non-finite gradient at step {state.global_step}: the update was skipped.")
        if state.consecutive_nonfinite_steps >= args.max_nonfinite_steps:
            save_checkpoint(accelerator, state.global_step)
            raise RuntimeError(
                f"{state.consecutive_nonfinite_steps} optimizer steps in a row had a non-finite loss or gradient "
                f"(--max_nonfinite_steps {args.max_nonfinite_steps}); lower --learning_rate or use bf16 before "
                f"resuming from {os.path.join(args.output_dir, CHECKPOINTS_FOLDER)}."
            )
    else:
        state.consecutive_nonfinite_steps = 0
    if state.global_step % args.logging_steps == 0 or state.global_step == args.max_train_steps:
        totals = accelerator.reduce(torch.stack([window["loss_sum"], window["count"], window["skipped"]]), "sum")
        loss = (totals[0] / totals[1].clamp(min=1)).item()
        state.skipped_images += int(totals[2].item())
        elapsed = time.perf_counter() - window["start"]
        logs = {
            **step_logs,
            "train/loss": loss,
            "train/sequences_per_second": totals[1].item() / max(elapsed, 1e-9),
            "train/skipped_images": state.skipped_images,
            "train/nonfinite_steps": state.nonfinite_steps,
        }
        accelerator.log(logs, step=state.global_step)
        progress.set_postfix(loss=f"{loss:.4f}", lr=f"{logs['train/learning_rate']:.2e}")
        window.update(new_window(accelerator.device), last_loss=loss)
    # Validation first: a checkpoint of the same step then holds its loss in `parts.best_validation`, which a resumed
    # run, starting after that step, would not compute again. The last step is validated after the loop.
    if (
        args.validation_steps
        and state.global_step % args.validation_steps == 0
        and state.global_step < args.max_train_steps
    ):
        log_validation_loss(args, accelerator, parts, state.global_step)
        log_validation(args, accelerator, parts.model, parts.tokenizer, state.global_step)
    if args.checkpointing_steps and state.global_step % args.checkpointing_steps == 0:
        save_checkpoint(accelerator, state.global_step)


def new_window(device) -> dict:
    """Sums over the micro-batches between two logging steps (per process)."""
    zero = torch.zeros((), dtype=torch.float64, device=device)
    return {"loss_sum": zero.clone(), "count": zero.clone(), "skipped": zero.clone(), "start": time.perf_counter()}


def train(args, accelerator, parts: TrainingParts, state: TrainingState) -> float | None:
    """Run optimizer steps until --max_train_steps, resuming inside an epoch where the checkpoint left off."""
    progress = tqdm(
        total=args.max_train_steps, initial=state.global_step, desc="steps", disable=not accelerator.is_main_process
    )
    window = {**new_window(accelerator.device), "last_loss": None}
    while state.global_step < args.max_train_steps:
        # Order and augmentation of epoch e depend on (seed, e) only; both are set before the iterator starts.
        parts.train_dataloader.set_epoch(state.epoch)
        if hasattr(parts.train_dataset, "set_epoch"):
            parts.train_dataset.set_epoch(state.epoch)
        dataloader = parts.train_dataloader
        if state.batches_in_epoch:
            dataloader = accelerator.skip_first_batches(dataloader, state.batches_in_epoch)
        for batch in dataloader:
            state.batches_in_epoch += 1
            loss, num_sequences, step_logs = train_micro_batch(args, accelerator, parts, batch)
            window["loss_sum"] += loss.double() * num_sequences
            window["count"] += num_sequences
            window["skipped"] += batch["skipped"]
            if step_logs is not None:
                after_optimizer_step(args, accelerator, parts, state, step_logs, window, progress)
                if state.global_step >= args.max_train_steps:
                    break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    return window["last_loss"]


def load_tokenizer(args, device) -> VitVqganModel:
    """The frozen tokenizer, in eval mode on every process; --resolution must be its image size."""
    tokenizer = load_pretrained(VitVqganModel.from_pretrained, args.tokenizer)
    tokenizer = tokenizer.eval().requires_grad_(False).to(device)
    if args.resolution is None:
        args.resolution = tokenizer.config.image_size
    if args.resolution != tokenizer.config.image_size:
        raise ValueError(
            f"--resolution {args.resolution} differs from the tokenizer's image size {tokenizer.config.image_size}."
        )
    return tokenizer


def end_training(accelerator, parts: TrainingParts):
    """
    Release the prepared model before ending the trackers and destroying the process group: were the
    `DistributedDataParallel` wrapper freed after `destroy_process_group`, its reducer's destructor would join Gloo's
    threads while holding the GIL and can hang a process for ever (the full story is in train_tokenizer.py).
    """
    parts.model = parts.optimizer = parts.scheduler = None
    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()


def main(args):
    """Train the VIM on the tokenizer's tokens; save the pipeline and its card (pushed with --push_to_hub)."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    accelerator = build_accelerator(args)
    check_launch(accelerator)
    prepare_output_dir(args.output_dir)
    check_hub_repo(args, accelerator)
    # Before any compute: a conflict with the checkpoints already in --output_dir fails here.
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
    tokenizer = load_tokenizer(args, accelerator.device)
    dataset, validation_dataset, collate_fn, names = build_datasets(args, accelerator, tokenizer)
    if args.save_best_model and validation_dataset is None:
        raise ValueError(
            f"--save_best_model chooses by validation loss, but the data has no usable {args.validation_split!r} "
            "split: pass --validation_split SPLIT (pretokenize.py encodes every split of the images) or drop the flag."
        )
    config = build_config(args, tokenizer, names)
    # Same initial weights in every process, then a different dropout / label-dropout stream per process.
    set_seed(args.seed)
    model = VimForCausalLM(config).train()
    # Checked now rather than at the first validation, thousands of steps in.
    validation_class_ids(args, VimPipeline(vqgan=tokenizer, transformer=model))
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    set_seed(args.seed, device_specific=True)
    dataloader = build_dataloader(args, accelerator, dataset, collate_fn)
    validation_dataloader = build_validation_dataloader(args, accelerator, validation_dataset, collate_fn)
    optimizer = build_optimizer(args, model)
    scheduler = build_scheduler(args, optimizer, accelerator.num_processes)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    parts = TrainingParts(
        model, tokenizer, config, optimizer, scheduler, dataset, dataloader, validation_dataloader, BestValidation()
    )
    state = TrainingState()
    accelerator.register_for_checkpointing(state, parts.best_validation)
    tracker_config = {
        name: value if isinstance(value, (int, float, str, bool)) else str(value) for name, value in vars(args).items()
    }
    accelerator.init_trackers("train_vim", config=tracker_config)
    if checkpoint is not None:
        load_checkpoint(accelerator, checkpoint, state)
    num_parameters = sum(parameter.numel() for parameter in accelerator.unwrap_model(model).parameters())
    logger.info(
        f"Training a {num_parameters / 1e6:.1f}M-parameter VIM ({config.num_classes} classes, "
        f"{config.token_grid_size}x{config.token_grid_size} tokens of {config.codebook_size} codes) for "
        f"{args.max_train_steps} steps of {args.train_batch_size} x {accelerator.num_processes} processes x "
        f"{args.gradient_accumulation_steps} accumulation sequences."
    )
    final_loss = train(args, accelerator, parts, state)
    accelerator.wait_for_everyone()
    losses = {
        "final_loss": final_loss,
        "validation_loss": log_validation_loss(args, accelerator, parts, state.global_step),
    }
    if args.save_best_model:
        losses.update(best_step=parts.best_validation.step, best_validation_loss=parts.best_validation.loss)
    if args.validation_steps:
        log_validation(args, accelerator, model, tokenizer, state.global_step)
    save_outputs(args, accelerator, model, tokenizer, state, losses, parts.best_validation)
    if args.push_to_hub and accelerator.is_main_process:
        push_to_hub(args)
    del model, optimizer, scheduler
    end_training(accelerator, parts)


if __name__ == "__main__":
    main(parse_args())
