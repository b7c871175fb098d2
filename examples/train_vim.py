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

Optimization (paper Sec. 5.2): Adam with betas (0.9, 0.96), no weight decay (the paper is silent),
learning rate warmed up linearly to 4.5e-4 over 5k steps, constant, then decayed exponentially from step 80k so that
it reaches 1e-5 at the last step (the paper gives the start and the end value, not the end step):

    lr(s) = lr * s / warmup                                              for s < warmup
    lr(s) = lr                                                           for warmup <= s < decay_start
    lr(s) = lr * (lr_end / lr) ** ((s - decay_start) / (max_steps - decay_start))   for s >= decay_start

Gradient clipping at norm 1.0 is our default (the paper does not say). `--optimizer adafactor` is transformers'
Adafactor with factored second moments and a first moment (beta1), the paper's memory-saving implementation of Adam
(without its int8 first moment; Adafactor's second-moment decay follows its own 1 - t^-0.8 schedule, not beta2).
`--use_ema` (not in the paper) keeps an exponential moving average of the weights (diffusers' `EMAModel`, decay
`--ema_decay`), which the validation, `--save_best_model` and the output then use.
Steps count optimizer steps; the paper's values are for a global batch of 1024 over 450k steps. The warm-up and the
decay's start default to those fractions of the run (`--lr_warmup_ratio`, `--lr_decay_start_ratio`): the paper's 5k
and 80k at 450k steps, and the same shape of schedule for a run of any other length; the step flags override.

The output folder is a `VimPipeline` (`model_index.json`, `vqgan/`, `transformer/`; load it with
`VimPipeline.from_pretrained(output_dir)`) with a model card `README.md`, `train_results.json`, the last validation
grid `validation_samples.png`, TensorBoard logs in `logs/` and `accelerate` checkpoints in
`checkpoints/checkpoint_<step>`. `--resume_from_checkpoint latest` restores the model, optimizer, scheduler, random
states, step and position in the data: the resumed run ends with the same weights as an uninterrupted one. It runs
unchanged on one CPU, on several processes (DDP) and with FSDP (see examples/README.md).

Checks run where the data enters, so that training steps need none: the ids of pretokenized data (every split) must
lie in the tokenizer's codebook and their labels among the classes (checked once per split when it is loaded), as
must the labels of image datasets (streamed ones batch by batch, on the CPU). Non-finite steps
(`vit_vqgan_hf.training.loop`): a step whose global gradient norm is not finite has its gradients replaced by zeros
on the device (under fp16 the gradient scaler skips it), so a training step never waits for the device to check;
such steps, and steps with a non-finite loss, are counted on the device and read at logging and checkpoint steps,
and after `--max_nonfinite_steps` of them in a row the run saves a checkpoint and stops.
"""

import argparse
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from accelerate.logging import get_logger
from accelerate.utils import DistributedType, send_to_device, set_seed
from datasets import ClassLabel, DatasetDict, load_dataset, load_from_disk
from diffusers.training_utils import EMAModel
from huggingface_hub import hf_hub_download
from torch.utils.data import DataLoader
from transformers import Adafactor

from vit_vqgan_hf import VimConfig, VimForCausalLM, VimPipeline, VitVqganModel, cli
from vit_vqgan_hf.hub import create_model_card
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.training.checkpointing import TrainingState
from vit_vqgan_hf.training.data import augmented_images, collate_images, held_out_images, load_training_images
from vit_vqgan_hf.training.loop import (
    TrainingLoop,
    TrainingStepOutput,
    clip_and_guard_gradients,
    not_finite,
    prepare_train_dataloader,
    save_train_results,
)
from vit_vqgan_hf.training.null_token import fit_null_token
from vit_vqgan_hf.training.run import TrainingData, TrainingSchedule, VimTrainingRun, steps_from_ratio
from vit_vqgan_hf.training.tokens import (
    TOKENS_METADATA_FILE,
    check_tokenizer_fingerprint,
    check_value_range,
    vim_input_ids,
)
from vit_vqgan_hf.utils.file_writes import report_write_errors


logger = get_logger(__name__, log_level="INFO")

MODEL_PRESETS = ("tiny", "base", "large")
# The paper's run (Sec. 5.2): 450k steps, 5k of warm-up, exponential decay from step 80k; the scripts' defaults are
# these as fractions of the run.
PAPER_STEPS, PAPER_WARMUP_STEPS, PAPER_DECAY_START = 450_000, 5_000, 80_000
# --save_best_model: the transformer of the lowest validation loss, and the record of its step and loss.
BEST_TRANSFORMER_FOLDER = "best_transformer"
BEST_VALIDATION_FILE = "best_validation.json"


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Train a VIM transformer over the tokens of a ViT-VQGAN tokenizer.")
    add_token_args(
        cli.add_image_data_args(
            parser,
            validation_help="Held-out split of the validation loss (tokens or images), used when the data has it.",
            description="Images are for --on_the_fly; pretokenized data is augmented by pretokenize.py.",
        )
    )
    add_model_args(parser)
    optimization = cli.add_optimization_args(parser, examples="Sequences")
    optimization.add_argument("--optimizer", default="adamw", choices=["adamw", "adafactor"], help="Optimizer.")
    optimization.add_argument(
        "--lr_decay_start_ratio",
        type=float,
        default=PAPER_DECAY_START / PAPER_STEPS,
        help="The exponential decay starts after this fraction of the run (the paper: 80k of 450k steps): %(default).4g.",
    )
    optimization.add_argument(
        "--lr_decay_start", type=int, default=None, help="Step where the decay starts; overrides the ratio."
    )
    optimization.add_argument(
        "--use_ema",
        action="store_true",
        help="Keep an EMA of the transformer's weights; validate, choose (--save_best_model) and export it.",
    )
    optimization.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay (with --use_ema).")
    add_validation_args(cli.add_output_args(parser))
    # The paper's recipe (Sec. 5.2: 450k steps of 1024 images, ~360 ImageNet epochs); clipping is ours.
    parser.set_defaults(num_train_epochs=360, learning_rate=4.5e-4, lr_warmup_ratio=PAPER_WARMUP_STEPS / PAPER_STEPS)
    parser.set_defaults(lr_end=1e-5)
    parser.set_defaults(adam_beta2=0.96, adam_weight_decay=0.0, max_grad_norm=1.0)
    parser.set_defaults(output_dir="vim", num_validation_images=4)
    args = parser.parse_args(input_args)
    check_args(args)
    return args


def add_token_args(data):
    """The frozen tokenizer and where the token ids come from."""
    data.add_argument("--tokenizer", required=True, help="The frozen ViT-VQGAN tokenizer (folder or Hub id).")
    data.add_argument(
        "--pretokenized_dataset", default=None, help="Token ids from examples/pretokenize.py (folder or Hub id)."
    )
    data.add_argument(
        "--on_the_fly",
        action="store_true",
        help="Augment and encode images in the training loop (the paper's way; the default without pretokenized data).",
    )
    data.add_argument(
        "--ignore_tokenizer_mismatch",
        action="store_true",
        help="Train on pretokenized ids whose recorded tokenizer weights/config differ from --tokenizer.",
    )


def add_model_args(parser):
    """The VIM configuration and its conditioning."""
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
        "--null_token_steps",
        type=int,
        default=0,
        help="After training, fit the null token alone (the transformer frozen) for this many steps, which enables "
        "guidance without label dropout (`fit_null_token`); 0: off.",
    )
    model.add_argument(
        "--null_token_learning_rate", type=float, default=1e-2, help="Adam's learning rate of --null_token_steps."
    )
    model.add_argument(
        "--dropout", type=float, default=None, help="Residual/attention dropout; default: the config's (0.1)."
    )
    model.add_argument("--gradient_checkpointing", action="store_true", help="Recompute activations in backward.")


def add_validation_args(outputs):
    """The held-out loss, the sample grid and the choice of the best transformer."""
    outputs.add_argument(
        "--validation_classes", nargs="+", default=None, help="Class ids or names to sample; default: the first 4."
    )
    outputs.add_argument(
        "--validation_guidance_scale", type=float, default=1.0, help="Guidance of validation samples."
    )
    outputs.add_argument(
        "--max_validation_sequences",
        type=int,
        default=1000,
        help="Held-out sequences of the validation loss, computed every --validation_steps steps.",
    )
    outputs.add_argument(
        "--save_best_model",
        action="store_true",
        help="Output the transformer of the lowest validation loss instead of the last one (needs a validation split).",
    )


def check_args(args):
    """Sanity checks with messages that say which flag to change."""
    if args.pretokenized_dataset is not None and args.on_the_fly:
        raise ValueError(
            "Pass one data source: --pretokenized_dataset PATH_OR_HUB_ID, or images (--dataset_name / "
            "--train_data_dir, encoded --on_the_fly)."
        )
    # Without token ids, the images of --dataset_name / --train_data_dir are encoded in the loop.
    args.on_the_fly = args.pretokenized_dataset is None
    if args.pretokenized_dataset is not None:
        args.dataset_name = None
        if args.streaming or args.random_crop or args.random_flip:
            raise ValueError(
                "--streaming, --random_crop and --random_flip apply to --on_the_fly; pretokenized data is augmented "
                "by `pretokenize.py --num_augmented_copies`."
            )
    if args.conditioning == "unconditional" and args.validation_classes is not None:
        raise ValueError(
            "--validation_classes names classes to sample, but --conditioning unconditional trains without classes: "
            "drop one of the two."
        )
    cli.check_shared_training_args(args)
    if args.max_validation_sequences < 1:
        raise ValueError(f"--max_validation_sequences must be at least 1, got {args.max_validation_sequences}.")
    if not 0 < args.lr_end <= args.learning_rate:
        raise ValueError(f"--lr_end ({args.lr_end}) must lie in (0, --learning_rate ({args.learning_rate})].")
    if args.lr_decay_start is not None and args.lr_decay_start < 0:
        raise ValueError(f"--lr_decay_start must be at least 0 when given, got {args.lr_decay_start}.")
    if not 0 <= args.lr_decay_start_ratio <= 1:
        raise ValueError(f"--lr_decay_start_ratio must lie in [0, 1], got {args.lr_decay_start_ratio}.")
    if not 0.0 < args.ema_decay < 1.0:
        raise ValueError(f"--ema_decay must lie in (0, 1), got {args.ema_decay}.")
    check_null_token_args(args)


def check_null_token_args(args):
    """--null_token_steps fits the null token of a class-conditional model trained without label dropout."""
    if args.null_token_steps < 0:
        raise ValueError(f"--null_token_steps must be at least 0 (0: off), got {args.null_token_steps}.")
    if not args.null_token_learning_rate > 0:
        raise ValueError(f"--null_token_learning_rate must be > 0, got {args.null_token_learning_rate}.")
    if args.null_token_steps and args.conditioning == "unconditional":
        raise ValueError(
            "--null_token_steps fits the null token of a class-conditional model; with --conditioning unconditional "
            "it is the only prefix and trains with the model: drop the flag."
        )


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
        splits = cli.load_pretrained(load_dataset, path, expected=expected, cache_dir=args.cache_dir)
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


def build_datasets(args, accelerator, tokenizer, resolution: int):
    """
    The training dataset (tokens or images at `resolution`), the held-out dataset of the validation loss (None without
    a --validation_split in the data), the collate function, the class names and the description of the data. Token
    ids and labels are checked here, once, so that training steps need not check them.
    """
    if args.pretokenized_dataset is not None:
        raw, dataset, validation, metadata = load_pretokenized(args, tokenizer)
        names = label_names(args, raw)
        check_pretokenized(args, tokenizer, names, {args.train_split: raw, args.validation_split: validation})
        source = metadata.get("source", {})
        data_source = source.get("dataset_name") or source.get("train_data_dir") or args.pretokenized_dataset
        copies = metadata["preprocessing"]["num_augmented_copies"]
        data = TrainingData(
            resolution=resolution,
            source=data_source,
            # The Hub dataset behind the tokens (for the card): the images' dataset, else a token dataset on the Hub.
            hub_id=source.get("dataset_name")
            or (None if os.path.isdir(args.pretokenized_dataset) else args.pretokenized_dataset),
            description=f"{len(raw)} token sequences pretokenized from {public_name(data_source)}"
            + (f" ({copies} augmented copies per image besides the center crop)" if copies else " (center crops)"),
        )
        collate_fn = partial(collate_tokens, label_column=args.label_column)
        return dataset, validation_or_none(args, validation), collate_fn, names, data
    data_source = args.dataset_name or args.train_data_dir
    splits = load_training_images(args, accelerator)
    raw = splits[args.train_split]
    names = label_names(args, raw)
    validation = splits.get(args.validation_split) if args.validation_split != args.train_split else None
    validation = validation_or_none(args, validation)
    collate_fn = collate_images
    if args.conditioning == "class" and names and args.streaming:
        # A stream cannot be checked when it is loaded: its labels are, batch by batch, in the data loader.
        collate_fn = partial(collate_labelled_images, num_classes=len(names), label_column=args.label_column)
    elif args.conditioning == "class" and names:
        for split, images in ((args.train_split, raw), (args.validation_split, validation)):
            if images is not None:
                check_labels(args, images, names, f"The images of {data_source!r}, split {split!r}")
    if validation is not None:
        # Center crops, as the pretokenized validation split.
        validation = held_out_images(args, validation, args.max_validation_sequences, resolution)
    dataset = augmented_images(args, raw, resolution)
    augmentation = "random resized crop" if args.random_crop else "center crop"
    augmentation += " + horizontal flip" if args.random_flip else ""
    data = TrainingData(
        resolution=resolution,
        source=data_source,
        hub_id=args.dataset_name,
        description=f"images of {public_name(data_source)} ({augmentation}, encoded on the fly)",
    )
    return dataset, validation, collate_fn, names, data


def check_pretokenized(args, tokenizer, names: list[str] | None, splits: dict):
    """Refuse token ids outside the tokenizer's codebook, and labels outside the classes, in every loaded split."""
    codebook_size = tokenizer.config.codebook_size
    for split, tokens in splits.items():
        if tokens is None:
            continue
        source = f"The pretokenized dataset {args.pretokenized_dataset!r}, split {split!r}"
        expected = f"ids of the tokenizer's {codebook_size} codes: tokenize the images again with this tokenizer"
        check_value_range(tokens, "image_tokens", codebook_size, source, expected)
        if args.conditioning == "class" and names and args.label_column in tokens.column_names:
            check_labels(args, tokens, names, source)


def check_labels(args, dataset, names: list[str], source: str):
    """Refuse labels outside the classes (-1, the label of unlabelled images, included)."""
    expected = f"one of the {len(names)} classes (-1 marks an unlabelled image: train on a labelled split)"
    check_value_range(dataset, args.label_column, len(names), source, expected)


def collate_labelled_images(examples: list[dict], num_classes: int, label_column: str) -> dict:
    """`collate_images`, refusing a batch with a label outside the classes (on the CPU, in the data loader)."""
    batch = collate_images(examples)
    labels = batch.get("labels")
    if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(
            f"The streamed column {label_column!r} holds the label {int(bad)}, outside [0, {num_classes}). Expected "
            f"one of the {num_classes} classes (-1 marks an unlabelled image: train on a labelled split)."
        )
    return batch


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
        "null_token_fitted": False,  # a new model's null token is untrained, whatever the config file says
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
        config = VimConfig.from_preset(args.model_config, **overrides)
    else:
        expected = f"a preset ({', '.join(MODEL_PRESETS)}), a config.json, a folder with one, or a Hub id"
        config = cli.load_pretrained(VimConfig.from_pretrained, args.model_config, expected=expected, **overrides)
        config.validate_architecture()
    if args.null_token_steps and config.class_dropout_prob > 0:
        raise ValueError(
            f"The model trains its null token by label dropout (class_dropout_prob {config.class_dropout_prob}), and "
            "--null_token_steps fits it after training instead: pass --class_dropout_prob 0 or drop --null_token_steps."
        )
    return config


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


def build_scheduler(args, run: VimTrainingRun, optimizer):
    """The paper's schedule ([`vim_lr_lambda`]) as a LambdaLR."""
    # A prepared scheduler advances `num_processes` times per optimizer step (accelerate's convention).
    end_ratio = args.lr_end / args.learning_rate
    schedule = run.schedule
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: vim_lr_lambda(
            step / schedule.num_processes,
            schedule.lr_warmup_steps,
            run.lr_decay_start,
            schedule.max_train_steps,
            end_ratio,
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
            "dropout: pass --class_dropout_prob 0.1 as well (the paper uses neither), or drop the flag (a null token "
            "fitted by --null_token_steps exists only after training)."
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


def save_model_card(
    args, run: VimTrainingRun, config: VimConfig, tokenizer_config, state: TrainingState, losses: dict
):
    """Write `README.md` with the package's VIM card template (`vit_vqgan_hf.hub.create_model_card`)."""
    # Only Hub ids go into the card's metadata: a local tokenizer or data folder says nothing to a reader.
    base_model = args.tokenizer if not os.path.isdir(args.tokenizer) else None
    card = create_model_card(
        config,
        # The run's arguments, plus how far it went: the training loss is not an evaluation, so no results file.
        {
            **run.card_arguments(),
            "trained_steps": state.global_step,
            "final_training_loss": losses["final_loss"],
            "final_validation_loss": losses["validation_loss"],
            **{name: losses[name] for name in ("best_step", "best_validation_loss") if name in losses},
        },
        tokenizer_config=tokenizer_config,
        repo_id=args.hub_model_id,
        base_model=base_model,
        dataset=run.data.hub_id,
    )
    card.save(os.path.join(run.output_dir, "README.md"))


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


def save_outputs(
    args, run: VimTrainingRun, accelerator, parts: "VimTrainingParts", collate_fn, state: TrainingState, losses: dict
):
    """
    The pipeline folder (model_index.json, vqgan/, transformer/), the model card and train_results.json; `losses`
    holds the last logged training loss (`final_loss`) and the final `validation_loss` (None without one). The
    transformer is the last one, or with --save_best_model the one of the lowest validation loss; with
    --null_token_steps, its null token is fitted first (`collate_fn` batches the training data for it).
    """
    tokenizer, best = parts.tokenizer, parts.best_validation
    transformer = export_transformer(accelerator, parts.model)  # on every process: FSDP gathers the shards
    if accelerator.is_main_process:
        if args.save_best_model and best.step is not None:
            transformer = best_transformer(args, best) or transformer
        if run.null_token_steps:
            losses["null_token_loss"] = fit_transformer_null_token(
                args, run, accelerator, transformer, parts, collate_fn
            )
        weights = [os.path.join(args.output_dir, name, "model.safetensors") for name in ("transformer", "vqgan")]
        with report_write_errors(args.output_dir, "the VIM pipeline", cli.FINAL_OUTPUTS_PARTIAL, remove=weights):
            VimPipeline(vqgan=tokenizer, transformer=transformer).save_pretrained(args.output_dir)
            create_image_processor(tokenizer.config).save_pretrained(os.path.join(args.output_dir, "vqgan"))
        card_path = os.path.join(args.output_dir, "README.md")
        with report_write_errors(card_path, "the model card", cli.FINAL_OUTPUTS_PARTIAL, remove=[card_path]):
            save_model_card(args, run, transformer.config, tokenizer.config, state, losses)
        save_train_results(run, state, losses, "the VIM pipeline")
    accelerator.wait_for_everyone()


def fit_transformer_null_token(
    args, run: VimTrainingRun, accelerator, transformer: VimForCausalLM, parts: "VimTrainingParts", collate_fn
) -> float:
    """
    --null_token_steps: fit the output transformer's null token on shuffled training batches ([`fit_null_token`]), in
    the main process alone (one embedding row: cheap next to the training). Returns the mean loss of its last steps.
    """
    shuffle = not args.streaming
    loader = DataLoader(
        parts.train_dataset,
        batch_size=args.train_batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(args.seed) if shuffle else None,
        collate_fn=collate_fn,
    )

    def image_token_batches():
        while True:  # as many passes over the data as the steps take
            empty = True
            for batch in loader:
                empty = False
                batch = send_to_device(batch, accelerator.device)
                yield batch_input_ids(batch, parts.tokenizer, transformer.config, accelerator)[:, 1:]
            if empty:  # no data: `fit_null_token` says so
                return

    steps = run.null_token_steps
    losses = fit_null_token(transformer, image_token_batches(), steps, args.null_token_learning_rate)
    first, last = losses[: max(1, steps // 10)].mean().item(), losses[-max(1, steps // 10) :].mean().item()
    logger.info(
        f"Fitted the null token in {steps} steps, the transformer frozen: unconditional loss {first:.4f} -> {last:.4f} "
        "nats per image token (means of the first and last tenth of the steps)."
    )
    return last


@dataclass
class VimTrainingParts:
    """What VIM's training loop works on (model, frozen tokenizer, optimizer, data), prepared by accelerate."""

    model: torch.nn.Module
    tokenizer: VitVqganModel
    config: VimConfig
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_dataset: torch.utils.data.Dataset
    train_dataloader: DataLoader
    validation_dataloader: DataLoader | None
    best_validation: BestValidation
    ema: EMAModel | None


def prepare_parts(
    args, run, accelerator, model, tokenizer, dataset, dataloader, validation_dataset, collate_fn
) -> VimTrainingParts:
    """The validation data loader, the optimizer and its schedule, prepared with the model (only `VimTrainingParts`
    holds the wrappers)."""
    validation_dataloader = build_validation_dataloader(args, accelerator, validation_dataset, collate_fn)
    optimizer = build_optimizer(args, model)
    scheduler = build_scheduler(args, run, optimizer)
    config = model.config
    ema = EMAModel(model.parameters(), decay=args.ema_decay) if args.use_ema else None
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if ema is not None:
        ema.to(accelerator.device)
    return VimTrainingParts(
        model,
        tokenizer,
        config,
        optimizer,
        scheduler,
        dataset,
        dataloader,
        validation_dataloader,
        BestValidation(),
        ema,
    )


@contextmanager
def exported_weights(accelerator, parts: VimTrainingParts):
    """
    Inside, the model holds the weights the run exports: with --use_ema the EMA's (diffusers' `store` / `copy_to` /
    `restore`, on every process alike), otherwise its own. Validation, --save_best_model and the output use them.
    """
    if parts.ema is None:
        yield
        return
    parameters = list(accelerator.unwrap_model(parts.model).parameters())
    parts.ema.store(parameters)
    parts.ema.copy_to(parameters)
    try:
        yield
    finally:
        parts.ema.restore(parameters)


class VimTrainer:
    """The VIM's part of the training loop ([`TrainingLoop`]): its training step, the mean loss of a logging window,
    and validation."""

    def __init__(self, args, run: VimTrainingRun, accelerator, parts: VimTrainingParts):
        self.args, self.run, self.accelerator, self.parts = args, run, accelerator, parts
        # The window's micro-batch losses, each times its number of sequences, on the device.
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)

    def training_step(self, batch: dict, global_step: int) -> TrainingStepOutput:
        """
        One micro-batch: the next-token loss of `[prefix, image tokens]` (images encoded now by the frozen tokenizer
        when not pretokenized) and its backward; when gradients sync, the clipped optimizer step (zeros when the
        gradient norm is not finite), the schedule and the EMA. Reads nothing back from the device.
        """
        accelerator, parts = self.accelerator, self.parts
        input_ids = batch_input_ids(batch, parts.tokenizer, parts.config, accelerator)
        with accelerator.accumulate(parts.model):
            with accelerator.autocast():
                loss = parts.model(input_ids=input_ids, labels=input_ids, use_cache=False).loss
            accelerator.backward(loss)
            self.loss_sum += loss.detach().double() * input_ids.shape[0]
            if not accelerator.sync_gradients:
                return TrainingStepOutput(not_finite(loss))
            grad_norm, grad_nonfinite = clip_and_guard_gradients(
                accelerator, parts.model, self.run.schedule.max_grad_norm
            )
            parts.optimizer.step()
            parts.optimizer.zero_grad(set_to_none=True)
            parts.scheduler.step()
            if parts.ema is not None:
                parts.ema.step(accelerator.unwrap_model(parts.model).parameters())
        logs = {"train/grad_norm": grad_norm, "train/learning_rate": parts.scheduler.get_last_lr()[0]}
        return TrainingStepOutput(not_finite(loss, grad_nonfinite), logs)

    def window_logs(self, examples: int) -> dict:
        """The mean next-token loss of the window's sequences (nats per image token), over all processes."""
        loss = self.accelerator.reduce(self.loss_sum, "sum") / max(examples, 1)
        self.loss_sum = torch.zeros_like(self.loss_sum)
        return {"train/loss": loss}

    def validate(self, global_step: int):
        """The validation loss (and, with --save_best_model, the best transformer) and the sample grid."""
        with exported_weights(self.accelerator, self.parts):
            log_validation_loss(self.args, self.accelerator, self.parts, global_step)
            log_validation(self.args, self.accelerator, self.parts.model, self.parts.tokenizer, global_step)


@torch.no_grad()
def validation_loss(accelerator, parts: VimTrainingParts) -> float | None:
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


def log_validation_loss(args, accelerator, parts: VimTrainingParts, global_step: int) -> float | None:
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


def load_tokenizer(args, device) -> VitVqganModel:
    """The frozen tokenizer, in eval mode on every process; --resolution must be its image size."""
    tokenizer = cli.load_pretrained(VitVqganModel.from_pretrained, args.tokenizer)
    tokenizer = tokenizer.eval().requires_grad_(False).to(device)
    if args.resolution is not None and args.resolution != tokenizer.config.image_size:
        raise ValueError(
            f"--resolution {args.resolution} differs from the tokenizer's image size {tokenizer.config.image_size}."
        )
    return tokenizer


def resolve_run(args, num_processes: int, num_batches: int | None, data: TrainingData) -> VimTrainingRun:
    """
    The run as it trains: the schedule (--max_train_steps from --num_train_epochs of `num_batches` micro-batches, the
    warm-up from --lr_warmup_ratio: 5k of 450k, the decay's start from --lr_decay_start_ratio unless --lr_decay_start
    sets it: at the paper's 450k steps, 80k) and the data.
    """
    schedule = TrainingSchedule.resolve(args, num_batches, num_processes)
    lr_decay_start = steps_from_ratio(args.lr_decay_start, args.lr_decay_start_ratio, schedule.max_train_steps)
    if lr_decay_start >= schedule.max_train_steps:
        logger.warning(
            f"--lr_decay_start {lr_decay_start} is not before the last step {schedule.max_train_steps}: the learning "
            "rate stays constant after the warm-up."
        )
    return VimTrainingRun(
        output_dir=args.output_dir,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        schedule=schedule,
        data=data,
        arguments=vars(args),
        lr_decay_start=lr_decay_start,
        on_the_fly=args.on_the_fly,
        null_token_steps=args.null_token_steps,
    )


def main(args):
    """Train the VIM on the tokenizer's tokens; save the pipeline and its card (pushed with --push_to_hub)."""
    fsdp_refusal = (
        "--use_ema keeps a full copy of the weights in every process, which FSDP shards: use DDP or drop it."
    )
    accelerator, checkpoint = cli.start_training_run(args, fsdp_refusal=fsdp_refusal if args.use_ema else None)
    tokenizer = load_tokenizer(args, accelerator.device)
    resolution = tokenizer.config.image_size
    dataset, validation_dataset, collate_fn, names, data = build_datasets(args, accelerator, tokenizer, resolution)
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
    dataloader = prepare_train_dataloader(
        accelerator,
        dataset,
        collate_fn,
        batch_size=args.train_batch_size,
        shuffle=not args.streaming,
        num_workers=args.dataloader_num_workers,
        seed=args.seed,
    )
    run = resolve_run(args, accelerator.num_processes, None if args.streaming else len(dataloader), data)
    parts = prepare_parts(
        args, run, accelerator, model, tokenizer, dataset, dataloader, validation_dataset, collate_fn
    )
    trainer = VimTrainer(args, run, accelerator, parts)
    loop = TrainingLoop(
        run,
        accelerator,
        parts,
        trainer.training_step,
        window_logs=trainer.window_logs,
        validate=trainer.validate,
        examples_name="sequences",
        progress_logs={"loss": "train/loss", "lr": "train/learning_rate"},
    )
    loop.start("train_vim", checkpoint, parts.best_validation, parts.ema)
    grid = f"{config.token_grid_size}x{config.token_grid_size}"
    logger.info(
        f"Training a {model.num_parameters() / 1e6:.1f}M-parameter VIM: {config.num_classes} classes, {grid} tokens "
        f"of {config.codebook_size} codes."
    )
    loop.train()
    accelerator.wait_for_everyone()
    with exported_weights(accelerator, parts):
        losses = {
            "final_loss": loop.last_logs.get("train/loss"),
            "validation_loss": log_validation_loss(args, accelerator, parts, loop.state.global_step),
        }
        if args.save_best_model:
            losses.update(best_step=parts.best_validation.step, best_validation_loss=parts.best_validation.loss)
        if args.validation_steps:
            log_validation(args, accelerator, parts.model, tokenizer, loop.state.global_step)
        save_outputs(args, run, accelerator, parts, collate_fn, loop.state, losses)
    cli.push_training_outputs(args, accelerator, f"VIM ({args.model_config}, {args.conditioning})")
    loop.end_training()


if __name__ == "__main__":
    with cli.command_line_errors():
        args = parse_args()
        # The library's errors name its arguments; the user reads the flags.
        with cli.in_flag_terms(args, {"strict=False": "--ignore_tokenizer_mismatch"}):
            main(args)
