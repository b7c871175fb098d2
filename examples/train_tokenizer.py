# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Train the ViT-VQGAN image tokenizer (stage 1 of Yu et al., "Vector-quantized Image Modeling with Improved VQGAN").

    accelerate launch examples/train_tokenizer.py --model_config ss --output_dir out/tokenizer

The generator loss is paper Sec. 3.3, `L_VQ + 0.1 L_adv + 0.1 L_perceptual + 0.1 L_logit-Laplace + 1.0 L_2`, against
a StyleGAN2 discriminator with the non-saturating loss and a lazy R1 penalty; AdamW (betas 0.9, 0.99, weight decay
1e-4) for both networks, linear warm-up then cosine decay from 1e-4 to 5e-5 (paper Sec. 5.1). The
discriminator and the adversarial term start after `--discriminator_start_step`. Step counts (`--max_train_steps`,
`--lr_warmup_steps`, `--discriminator_start_step`, ...) count optimizer steps; the paper's values are for a global
batch of 256 over 500k steps, so scale them together when you change the batch or the length of the run.

The output folder holds the tokenizer (`VitVqganModel.from_pretrained(output_dir)`; the EMA weights with
`--use_ema`), the discriminator in `discriminator/`, a model card `README.md` whose model-index holds the final
validation metrics, the same metrics with their protocol in `validation_results.json`, `train_results.json`, the last
validation grid `validation_reconstructions.png`, TensorBoard logs in `logs/` and `accelerate` checkpoints in
`checkpoints/checkpoint_<step>` (`--push_to_hub` uploads all but the logs and checkpoints). A run resumed with
`--resume_from_checkpoint latest` ends with the same weights as an uninterrupted run: the checkpoint restores both
networks, optimizers and schedulers, the EMA, the random states and the position in the data, and data order and
augmentation depend only on `(seed, epoch, example index)`.
"""

import argparse
import gc
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, DistributedType, ProjectConfiguration, set_seed
from datasets import Dataset
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader
from torchmetrics.functional.image import peak_signal_noise_ratio
from tqdm.auto import tqdm
from transformers import get_scheduler

from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.cli import (
    add_hub_args,
    check_hub_repo,
    check_launch,
    check_shared_training_args,
    load_pretrained,
    prepare_output_dir,
)
from vit_vqgan_hf.evaluation import build_results, save_results
from vit_vqgan_hf.hub import create_model_card, push_folder_to_hub
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.training import (
    VitVqganDiscriminator,
    VitVqganDiscriminatorConfig,
    VitVqganLossWeights,
    discriminator_step_loss,
    generator_loss,
    load_lpips,
)
from vit_vqgan_hf.training.checkpointing import (
    CHECKPOINTS_FOLDER,
    TrainingState,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from vit_vqgan_hf.training.codebook import lookup_latents, restart_dead_codes
from vit_vqgan_hf.training.data import (
    ImageStreamingDataset,
    ImageTrainingDataset,
    ImageTransform,
    collate_images,
    load_image_dataset,
)


logger = get_logger(__name__, log_level="INFO")

MODEL_PRESETS = ("tiny", "ss", "bb", "sl")
DISCRIMINATOR_PRESETS = ("stylegan2", "tiny")
SCHEDULERS_WITH_MIN_LR = ("cosine_with_min_lr", "cosine_warmup_with_min_lr")
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
LR_SCHEDULERS += SCHEDULERS_WITH_MIN_LR
# The final validation metrics and their protocol (`vit_vqgan_hf.evaluation.save_results`), also in the card.
VALIDATION_RESULTS_FILE = "validation_results.json"


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Train a ViT-VQGAN image tokenizer.")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset_name", default="ILSVRC/imagenet-1k", help="Hub dataset (ignored with --train_data_dir)."
    )
    data.add_argument("--dataset_config_name", default=None, help="Configuration of the Hub dataset.")
    data.add_argument("--train_data_dir", default=None, help="Image folder to train on instead of a Hub dataset.")
    data.add_argument("--train_split", default="train", help="Split to train on.")
    data.add_argument("--validation_data_dir", default=None, help="Image folder for validation metrics.")
    data.add_argument(
        "--validation_split",
        default="validation",
        help="Split for validation metrics; without it (and without --validation_data_dir) the first training images.",
    )
    data.add_argument("--image_column", default="image", help="Column holding the images.")
    data.add_argument("--label_column", default="label", help="Column of class labels, passed through when present.")
    data.add_argument("--streaming", action="store_true", help="Stream the dataset (needs --max_train_steps).")
    data.add_argument("--shuffle_buffer_size", type=int, default=10_000, help="Shuffle buffer of a streamed dataset.")
    data.add_argument("--cache_dir", default=None, help="Cache directory of `datasets`.")
    data.add_argument("--resolution", type=int, default=None, help="Training image size; default: the model's.")
    crop = data.add_mutually_exclusive_group()
    crop.add_argument("--center_crop", action="store_true", help="Resize and center-crop (the default).")
    crop.add_argument("--random_crop", action="store_true", help="Random resized crops instead of center crops.")
    data.add_argument(
        "--random_crop_scale", type=float, nargs=2, default=(0.5, 1.0), help="Area range of the random crops."
    )
    data.add_argument("--random_flip", action="store_true", help="Mirror half of the training images.")
    data.add_argument("--dataloader_num_workers", type=int, default=0, help="Dataloader worker processes.")

    model = parser.add_argument_group("models and losses")
    model.add_argument("--model_config", default="ss", help=f"{'|'.join(MODEL_PRESETS)} or a path to a config.json.")
    model.add_argument(
        "--discriminator_config", default="stylegan2", help=f"{'|'.join(DISCRIMINATOR_PRESETS)} or a config path."
    )
    model.add_argument("--l2_weight", type=float, default=1.0, help="Weight of the l2 loss.")
    model.add_argument("--logit_laplace_weight", type=float, default=0.1, help="Weight of the logit-Laplace loss.")
    model.add_argument("--perceptual_weight", type=float, default=0.1, help="Weight of the LPIPS-VGG loss.")
    model.add_argument("--adversarial_weight", type=float, default=0.1, help="Weight of the generator GAN loss.")
    model.add_argument("--commitment_cost", type=float, default=0.25, help="Beta of the VQ loss (overrides config).")
    model.add_argument(
        "--perceptual_model", default=None, help="LPIPS-VGG16 weights (path or Hub id; see `load_lpips`)."
    )
    model.add_argument(
        "--discriminator_start_step",
        type=int,
        default=None,
        help="Step at which the discriminator and the adversarial term start; default: 10%% of the training steps.",
    )
    model.add_argument(
        "--gradient_checkpointing", action="store_true", help="Recompute the tokenizer's activations in backward."
    )
    model.add_argument("--r1_gamma", type=float, default=10.0, help="Weight of the R1 penalty.")
    model.add_argument("--r1_interval", type=int, default=16, help="Steps between lazy R1 penalties.")

    optim = parser.add_argument_group("optimization")
    optim.add_argument("--train_batch_size", type=int, default=8, help="Images per process and micro-batch.")
    optim.add_argument("--max_train_steps", type=int, default=None, help="Optimizer steps; overrides epochs.")
    optim.add_argument("--num_train_epochs", type=int, default=100, help="Epochs when --max_train_steps is unset.")
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per step.")
    optim.add_argument("--learning_rate", type=float, default=1e-4, help="Peak learning rate of the tokenizer.")
    optim.add_argument("--discriminator_learning_rate", type=float, default=None, help="Default: --learning_rate.")
    optim.add_argument("--lr_scheduler", default="cosine_with_min_lr", choices=LR_SCHEDULERS, help="LR schedule.")
    optim.add_argument("--lr_warmup_steps", type=int, default=50_000, help="Linear warm-up steps.")
    optim.add_argument(
        "--lr_end", type=float, default=5e-5, help="Final learning rate of the *_with_min_lr schedules."
    )
    optim.add_argument("--adam_beta1", type=float, default=0.9, help="AdamW beta1.")
    optim.add_argument("--adam_beta2", type=float, default=0.99, help="AdamW beta2.")
    optim.add_argument("--adam_weight_decay", type=float, default=1e-4, help="Decoupled weight decay.")
    optim.add_argument("--adam_epsilon", type=float, default=1e-8, help="AdamW epsilon.")
    optim.add_argument("--max_grad_norm", type=float, default=None, help="Gradient clipping norm (off by default).")
    optim.add_argument("--mixed_precision", default=None, choices=["no", "bf16", "fp16"], help="Autocast precision.")
    optim.add_argument("--use_ema", action="store_true", help="Keep and export an EMA of the tokenizer weights.")
    optim.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay.")
    optim.add_argument(
        "--max_nonfinite_steps", type=int, default=10, help="Stop after this many non-finite steps in a row."
    )
    optim.add_argument("--seed", type=int, default=0, help="Seed of initialization, data order and augmentation.")
    optim.add_argument(
        "--codebook_restart_steps",
        type=int,
        default=None,
        help=(
            "Every N steps, move the codes no token picked in the last N steps onto latents of the current batch "
            "(dead-code restart). Off by default, as in the paper; turn it on when usage collapses on small or "
            "low-entropy data (see vit_vqgan_hf.training.codebook)."
        ),
    )

    run = parser.add_argument_group("outputs, logging and checkpoints")
    run.add_argument("--output_dir", default="vit-vqgan-tokenizer", help="Where the model and checkpoints go.")
    run.add_argument("--checkpointing_steps", type=int, default=5000, help="Save a training state every N steps.")
    run.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    run.add_argument("--resume_from_checkpoint", default=None, help="`latest` or a checkpoint folder.")
    run.add_argument("--validation_steps", type=int, default=5000, help="Validate every N steps (and at the end).")
    run.add_argument("--num_validation_images", type=int, default=8, help="Images in the logged validation grid.")
    run.add_argument("--max_validation_samples", type=int, default=256, help="Validation images for the metrics.")
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
    if args.train_data_dir is not None:
        args.dataset_name = None
    if args.dataset_name is None and args.train_data_dir is None:
        raise ValueError("Pass --dataset_name (a Hub dataset) or --train_data_dir (an image folder).")
    if args.perceptual_weight > 0 and not args.perceptual_model:
        raise ValueError(
            f"--perceptual_weight {args.perceptual_weight} needs --perceptual_model PATH_OR_HUB_ID (LPIPS-VGG16 "
            "weights: a torchvision vgg16 state dict plus the lpips package's vgg.pth heads, see "
            "`vit_vqgan_hf.training.load_lpips`), or pass --perceptual_weight 0 to train without the perceptual loss."
        )
    if args.streaming and args.max_train_steps is None:
        raise ValueError("--streaming datasets have no length: set --max_train_steps.")
    check_shared_training_args(args)
    for name in ("r1_interval", "max_nonfinite_steps", "logging_steps", "max_validation_samples"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    for name in (
        "max_train_steps",
        "checkpointing_steps",
        "validation_steps",
        "checkpoints_total_limit",
        "codebook_restart_steps",
    ):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 when given, got {getattr(args, name)}.")
    if args.lr_scheduler in SCHEDULERS_WITH_MIN_LR and not 0 <= args.lr_end <= args.learning_rate:
        raise ValueError(f"--lr_end ({args.lr_end}) must lie in [0, --learning_rate ({args.learning_rate})].")
    if not 0.0 < args.ema_decay < 1.0:
        raise ValueError(f"--ema_decay must lie in (0, 1), got {args.ema_decay}.")
    low, high = args.random_crop_scale
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"--random_crop_scale must satisfy 0 < min <= max <= 1, got {low} {high}.")
    if args.discriminator_learning_rate is None:
        args.discriminator_learning_rate = args.learning_rate


def load_configs(args) -> tuple[VitVqganConfig, VitVqganDiscriminatorConfig]:
    """Model configurations from presets or files, with the command line's overrides."""
    overrides = {"commitment_cost": args.commitment_cost}
    if args.resolution is not None:
        overrides["image_size"] = args.resolution
    if args.model_config in MODEL_PRESETS:
        config = VitVqganConfig.from_preset(args.model_config, **overrides)
    else:
        expected = f"a preset ({', '.join(MODEL_PRESETS)}), a config.json, a folder with one, or a Hub id"
        config = load_pretrained(VitVqganConfig.from_pretrained, args.model_config, expected=expected, **overrides)
        config.validate_architecture()
    if config.num_channels != 3:
        raise ValueError(
            f"--model_config has num_channels={config.num_channels}; this script trains on RGB images (3 channels)."
        )
    args.resolution = config.image_size
    if args.discriminator_config in DISCRIMINATOR_PRESETS:
        discriminator_config = VitVqganDiscriminatorConfig.from_preset(
            args.discriminator_config, image_size=args.resolution
        )
    else:
        discriminator_config = load_pretrained(
            VitVqganDiscriminatorConfig.from_pretrained,
            args.discriminator_config,
            expected=f"a preset ({', '.join(DISCRIMINATOR_PRESETS)}), a config.json, a folder with one, or a Hub id",
            image_size=args.resolution,
        )
        discriminator_config.validate_architecture()
    return config, discriminator_config


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


def build_models(args, config, discriminator_config):
    """Tokenizer, discriminator and, with --use_ema, the EMA of the tokenizer's weights."""
    tokenizer = VitVqganModel(config)
    if args.gradient_checkpointing:
        tokenizer.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    discriminator = VitVqganDiscriminator(discriminator_config)
    ema = EMAModel(tokenizer.parameters(), decay=args.ema_decay) if args.use_ema else None
    return tokenizer.train(), discriminator.train(), ema


def build_datasets(args, accelerator):
    """Training dataset (augmented) and validation dataset (center crops, at most --max_validation_samples)."""
    load = {"streaming": args.streaming, "cache_dir": args.cache_dir, "image_column": args.image_column}
    with accelerator.main_process_first():
        splits = load_image_dataset(args.dataset_name, args.train_data_dir, args.dataset_config_name, None, **load)
        if args.validation_data_dir is not None:
            validation_splits = load_image_dataset(train_data_dir=args.validation_data_dir, split=None, **load)
            names = list(validation_splits)
            validation = validation_splits[args.validation_split if args.validation_split in names else names[0]]
        else:
            validation = splits.get(args.validation_split)
    if args.train_split not in splits:
        raise ValueError(f"No split {args.train_split!r} to train on; available splits: {sorted(splits)}.")
    train = splits[args.train_split]
    args.validation_source = "held-out images"
    if validation is None:
        logger.warning(
            f"No validation split {args.validation_split!r}: validation metrics use the first training images."
        )
        args.validation_source = "the first training images"
        validation = train
    if args.streaming:
        # Materialize the few validation examples (still undecoded) so that every process can index them.
        validation = Dataset.from_list(
            list(validation.take(args.max_validation_samples)), features=validation.features
        )
        train = train.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
    else:
        validation = validation.select(range(min(len(validation), args.max_validation_samples)))
    transform = ImageTransform(args.resolution, args.random_crop, args.random_flip, tuple(args.random_crop_scale))
    dataset_class = ImageStreamingDataset if args.streaming else ImageTrainingDataset
    train_dataset = dataset_class(train, transform, args.image_column, args.label_column, seed=args.seed)
    validation_dataset = ImageTrainingDataset(
        validation, ImageTransform(args.resolution), args.image_column, args.label_column, seed=args.seed
    )
    return train_dataset, validation_dataset


def build_optimizers(args, accelerator, tokenizer, discriminator, max_train_steps):
    """AdamW and a warm-up + decay schedule for each network (the paper uses the same optimizer for both)."""
    optimizers, schedulers = [], []
    for model, learning_rate in ((tokenizer, args.learning_rate), (discriminator, args.discriminator_learning_rate)):
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            weight_decay=args.adam_weight_decay,
            eps=args.adam_epsilon,
        )
        specific = (
            {"min_lr_rate": args.lr_end / args.learning_rate} if args.lr_scheduler in SCHEDULERS_WITH_MIN_LR else None
        )
        # The prepared scheduler advances once per process at every optimizer step (accelerate's convention).
        scheduler = get_scheduler(
            args.lr_scheduler,
            optimizer,
            num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
            num_training_steps=max_train_steps * accelerator.num_processes,
            scheduler_specific_kwargs=specific,
        )
        optimizers.append(optimizer)
        schedulers.append(scheduler)
    return optimizers, schedulers


def generator_forward_backward(args, accelerator, tokenizer, discriminator, perceptual, batch, adversarial_active):
    """Tokenizer loss of one micro-batch and its backward pass; the discriminator is frozen and gets no gradient."""
    frozen_discriminator = accelerator.unwrap_model(discriminator).requires_grad_(False)
    weights = VitVqganLossWeights(
        args.l2_weight, args.logit_laplace_weight, args.perceptual_weight, args.adversarial_weight
    )
    config = accelerator.unwrap_model(tokenizer).config
    with accelerator.autocast():
        output = tokenizer(batch["pixel_values"])
        loss, logs = generator_loss(
            batch["pixel_values"],
            output,
            weights,
            perceptual=perceptual,
            discriminator=frozen_discriminator if adversarial_active else None,
            adversarial_active=adversarial_active,
            logit_laplace_eps=config.logit_laplace_eps,
        )
    accelerator.backward(loss)
    frozen_discriminator.requires_grad_(True)
    return loss, logs, output


def discriminator_forward_backward(args, accelerator, discriminator, real, fake, apply_r1):
    """Discriminator loss of one micro-batch (detached reconstructions) and its backward pass."""
    with accelerator.autocast():
        loss, logs = discriminator_step_loss(discriminator, real, fake, apply_r1, args.r1_gamma, args.r1_interval)
    accelerator.backward(loss)
    return loss, logs


def optimizer_step(args, accelerator, model, optimizer, scheduler, nonfinite_loss):
    """Clip, then step unless a loss or (outside fp16, whose scaler skips by itself) the gradient is not finite."""
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm or math.inf)
    nonfinite = nonfinite_loss or (args.mixed_precision != "fp16" and not torch.isfinite(grad_norm).item())
    if not nonfinite:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return grad_norm, nonfinite


def export_tokenizer(accelerator, tokenizer, ema) -> VitVqganModel:
    """The tokenizer to evaluate and save: the trained model, or a copy holding the EMA weights."""
    model = accelerator.unwrap_model(tokenizer)
    if ema is None:
        return model
    copy = VitVqganModel(model.config).to(accelerator.device)
    ema.copy_to(copy.parameters())
    return copy


@torch.no_grad()
def validate(args, accelerator, model, validation_dataset) -> tuple[dict, np.ndarray]:
    """
    PSNR (mean over images) and codebook usage / perplexity over the readable validation images, split over
    processes; also their number and the number of unreadable ones.
    """
    was_training = model.training
    model.eval()
    indices = list(range(accelerator.process_index, len(validation_dataset), accelerator.num_processes))
    shard = torch.utils.data.Subset(validation_dataset, indices)
    loader = DataLoader(shard, batch_size=args.train_batch_size, collate_fn=collate_validation_images)
    psnr_sum = torch.zeros((), device=accelerator.device, dtype=torch.float64)
    counts = torch.zeros(2, device=accelerator.device, dtype=torch.long)  # readable, unreadable images
    code_counts = torch.zeros(model.config.codebook_size, device=accelerator.device, dtype=torch.long)
    grid_rows = []
    for batch in loader:
        # An unreadable image was replaced by its neighbour, which would count twice: it stays out of the metrics.
        readable = batch["readable"].to(accelerator.device)
        pixel_values = batch["pixel_values"].to(accelerator.device)[readable]
        counts += torch.stack([readable.sum(), (~readable).sum()])
        if not len(pixel_values):
            continue
        with accelerator.autocast():
            output = model(pixel_values)
        reconstruction = output.reconstruction.float()
        psnr = peak_signal_noise_ratio(
            (reconstruction + 1) / 2, (pixel_values + 1) / 2, data_range=1.0, reduction="none", dim=(1, 2, 3)
        )
        psnr_sum += psnr.sum()
        code_counts += output.code_counts
        if sum(len(rows) for rows in grid_rows) < args.num_validation_images:
            grid_rows.append(torch.cat([pixel_values, reconstruction], dim=-1)[: args.num_validation_images])
    model.train(was_training)
    psnr_sum, counts = accelerator.reduce(psnr_sum, "sum"), accelerator.reduce(counts, "sum")
    code_counts = accelerator.reduce(code_counts, "sum")
    usage, perplexity = codebook_statistics(code_counts)
    metrics = {"validation/psnr": (psnr_sum / counts[0].clamp(min=1)).item(), "validation/codebook_usage": usage}
    metrics["validation/codebook_perplexity"] = perplexity
    metrics.update(num_images=int(counts[0]), unreadable_images=int(counts[1]))
    grid = torch.cat(grid_rows)[: args.num_validation_images] if grid_rows else torch.zeros(0, 3, 1, 2)
    grid = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return metrics, grid


def collate_validation_images(examples: list[dict]) -> dict:
    """`collate_images`, plus which examples are the images of their own index (not replacements)."""
    return {**collate_images(examples), "readable": torch.tensor([not example["skipped"] for example in examples])}


def codebook_statistics(code_counts: torch.Tensor) -> tuple[float, float]:
    """Fraction of codes used and perplexity (exp of the entropy) of summed code counts."""
    probabilities = code_counts.double() / code_counts.sum().clamp(min=1)
    entropy = -(probabilities * probabilities.clamp(min=1e-30).log()).sum()
    return (code_counts > 0).double().mean().item(), entropy.exp().item()


def log_validation(args, accelerator, tokenizer, ema, validation_dataset, global_step) -> dict:
    """Validate, log metrics and the input | reconstruction grid to the trackers; returns the metrics."""
    metrics, grid = validate(args, accelerator, export_tokenizer(accelerator, tokenizer, ema), validation_dataset)
    logged = {name: value for name, value in metrics.items() if name.startswith("validation/")}
    accelerator.log(logged, step=global_step)
    if accelerator.is_main_process:
        logger.info(f"step {global_step}: " + ", ".join(f"{name} {value:.4f}" for name, value in logged.items()))
        if metrics["unreadable_images"]:
            logger.warning(f"{metrics['unreadable_images']} unreadable validation images left out of the metrics.")
        for tracker in accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_images("validation/input|reconstruction", grid, global_step, dataformats="NHWC")
            elif hasattr(tracker, "log_images"):
                tracker.log_images({"validation/input|reconstruction": list(grid)}, step=global_step)
        if len(grid):
            PIL.Image.fromarray(np.concatenate(list(grid), axis=0)).save(
                os.path.join(args.output_dir, "validation_reconstructions.png")
            )
    return metrics


def validation_results(args, config, metrics: dict, state: TrainingState) -> dict:
    """The final validation metrics as a results dict of `vit_vqgan_hf.evaluation` (for the file and the card)."""
    if args.validation_data_dir is not None or args.train_data_dir is not None:
        # The folder's name only: an absolute path would name the training machine in a public card.
        source = {"kind": "imagefolder", "path": Path(args.validation_data_dir or args.train_data_dir).name}
    else:
        source = {"kind": "hub", "name": args.dataset_name, "config": args.dataset_config_name}
    held_out = args.validation_source == "held-out images"
    source["split"] = args.validation_split if held_out else args.train_split
    return build_results(
        "image-reconstruction",
        {
            "psnr": metrics["validation/psnr"],
            "codebook_usage": metrics["validation/codebook_usage"],
            "codebook_perplexity": metrics["validation/codebook_perplexity"],
        },
        num_samples=metrics["num_images"],
        class_balance={"labelled": False},
        image_size=config.image_size,
        resize="shorter side resized to the resolution, then center-cropped",
        seeds={"seed": args.seed},
        model={"class": "VitVqganModel", "weights": "EMA" if args.use_ema else "trained", "step": state.global_step},
        data={
            "source": source,
            "images": args.validation_source,
            "unreadable_images_skipped": metrics["unreadable_images"],
        },
        codebook_usage={"scope": "code counts of the whole validation set, summed over processes"},
        distributed={"num_processes": args.num_processes},
        training={"global_step": state.global_step, "skipped_images": state.skipped_images},
    )


def save_outputs(args, accelerator, tokenizer, discriminator, ema, validation_dataset, state):
    """Final validation, then the tokenizer, the discriminator, the model card and train_results.json."""
    metrics = log_validation(args, accelerator, tokenizer, ema, validation_dataset, state.global_step)
    metrics["source"] = args.validation_source
    if accelerator.is_main_process:
        export = export_tokenizer(accelerator, tokenizer, ema)
        export.save_pretrained(args.output_dir)
        create_image_processor(export.config).save_pretrained(args.output_dir)
        accelerator.unwrap_model(discriminator).save_pretrained(os.path.join(args.output_dir, "discriminator"))
        results = validation_results(args, export.config, metrics, state)
        save_results(results, os.path.join(args.output_dir, VALIDATION_RESULTS_FILE))
        card = create_model_card(export.config, args, results=results, repo_id=args.hub_model_id)
        card.save(os.path.join(args.output_dir, "README.md"))
        results = {**state.state_dict(), **{name: value for name, value in metrics.items() if name != "source"}}
        Path(args.output_dir, "train_results.json").write_text(json.dumps(results, indent=2) + "\n")
        logger.info(
            f"Saved the tokenizer to {args.output_dir}; {state.skipped_images} reads of unreadable images skipped "
            "(once per epoch for each such file)."
        )
    return metrics


@dataclass
class TrainingParts:
    """What the training loop works on, prepared by accelerate."""

    tokenizer: torch.nn.Module
    discriminator: torch.nn.Module
    perceptual: torch.nn.Module | None
    ema: EMAModel | None
    optimizers: list
    schedulers: list
    train_dataset: torch.utils.data.Dataset
    train_dataloader: DataLoader
    validation_dataset: torch.utils.data.Dataset
    # Code counts since the last dead-code restart and the step it happened at (--codebook_restart_steps).
    codebook_window: dict | None = None


def prepare_parts(
    args, accelerator, config, discriminator_config, perceptual, train_dataset, train_dataloader, validation_dataset
):
    """Build the models and optimizers and prepare them with accelerate (only `TrainingParts` holds the wrappers)."""
    tokenizer, discriminator, ema = build_models(args, config, discriminator_config)
    optimizers, schedulers = build_optimizers(args, accelerator, tokenizer, discriminator, args.max_train_steps)
    tokenizer, discriminator, *optimizers_and_schedulers = accelerator.prepare(
        tokenizer, discriminator, *optimizers, *schedulers
    )
    return TrainingParts(
        tokenizer,
        discriminator,
        perceptual,
        ema,
        optimizers_and_schedulers[:2],
        optimizers_and_schedulers[2:],
        train_dataset,
        train_dataloader,
        validation_dataset,
    )


def end_training(accelerator, parts: TrainingParts):
    """
    Release the prepared models, then end the trackers and destroy the process group.

    The order matters with several processes. A `DistributedDataParallel` wrapper's reducer holds a reference to the
    Gloo process group, and the reducer's destructor keeps the GIL. Were the wrappers released last (when `main`
    returns, after `destroy_process_group`), the process group would be destroyed inside that destructor, which joins
    Gloo's worker threads while holding the GIL; a worker still finishing the last collective (accelerate's `reduce`
    of a Python tensor) needs the GIL to free it, and the process hangs for ever (seen on the non-main process, which
    reaches the exit right after the final validation's reductions). Released first, the wrappers leave the process
    group to `destroy_process_group`, whose Python binding releases the GIL before joining the threads.
    """
    parts.tokenizer = parts.discriminator = None
    parts.optimizers, parts.schedulers = [], []
    accelerator.free_memory()  # accelerate's own references to the prepared objects; also runs the garbage collector
    gc.collect()
    accelerator.end_training()


def new_pending() -> dict:
    """Per-process counters of the micro-batches of the current optimizer step."""
    return {"generator_nonfinite": 0, "discriminator_nonfinite": 0, "skipped": 0, "images": 0}


def train_micro_batch(args, accelerator, parts: TrainingParts, state, batch, pending, window) -> dict:
    """Generator then discriminator forward/backward on one micro-batch; optimizer steps when gradients sync."""
    adversarial_active = state.global_step >= args.discriminator_start_step
    with accelerator.accumulate(parts.tokenizer, parts.discriminator):
        loss, generator_logs, output = generator_forward_backward(
            args, accelerator, parts.tokenizer, parts.discriminator, parts.perceptual, batch, adversarial_active
        )
        pending["generator_nonfinite"] += int(not torch.isfinite(loss).item())
        logs = {f"train/{name}": value for name, value in generator_logs.items()}
        if adversarial_active:
            apply_r1 = state.global_step % args.r1_interval == 0
            loss, discriminator_logs = discriminator_forward_backward(
                args, accelerator, parts.discriminator, batch["pixel_values"], output.reconstruction, apply_r1
            )
            pending["discriminator_nonfinite"] += int(not torch.isfinite(loss).item())
            logs.update({f"discriminator/{name}": value for name, value in discriminator_logs.items()})
        pending["skipped"] += batch["skipped"]
        pending["images"] += batch["pixel_values"].shape[0]
        window["code_counts"] += output.code_counts
        if parts.codebook_window is not None:
            parts.codebook_window["code_counts"] += output.code_counts
        if accelerator.sync_gradients:
            logs.update(step_optimizers(args, accelerator, parts, pending))
            if restart_due(args, parts, state.global_step + 1):
                logs["train/restarted_codes"] = restart_codes(
                    args, accelerator, parts, state.global_step + 1, batch["pixel_values"]
                )
    return logs


def restart_due(args, parts: TrainingParts, step: int) -> bool:
    """Whether optimizer step `step` ends a full dead-code restart window (never the last step: a code moved there
    would be exported without the decoder ever having seen it)."""
    if parts.codebook_window is None or step >= args.max_train_steps:
        return False
    every = args.codebook_restart_steps
    return step % every == 0 and step - parts.codebook_window["start_step"] >= every


def restart_codes(args, accelerator, parts: TrainingParts, step: int, pixel_values: torch.Tensor) -> int:
    """Dead-code restart: the codes no process picked since the last restart move onto latents of this step's
    batches, the same way on every process (same counts, same gathered latents, same seeded generator)."""
    model = accelerator.unwrap_model(parts.tokenizer)
    code_counts = accelerator.reduce(parts.codebook_window["code_counts"].clone(), "sum")
    latents = lookup_latents(model, pixel_values)
    # At most `codebook_size` candidates per process keep the gather small at ImageNet scale.
    latents = latents[torch.randperm(latents.shape[0], device=latents.device)[: model.config.codebook_size]]
    latents = accelerator.gather(latents.contiguous())
    generator = torch.Generator().manual_seed(args.seed + step)
    restarted = restart_dead_codes(model, code_counts, latents, generator, parts.optimizers[0])
    parts.codebook_window = new_codebook_window(code_counts, step)
    return restarted.numel()


def new_codebook_window(code_counts: torch.Tensor, step: int) -> dict:
    """Zeroed code counts of the next dead-code restart window, starting at `step`."""
    return {"code_counts": torch.zeros_like(code_counts), "start_step": step}


def step_optimizers(args, accelerator, parts: TrainingParts, pending) -> dict:
    """Agree across processes on non-finite losses, then step (or skip) both optimizers and the EMA."""
    counters = torch.tensor([pending[name] for name in new_pending()], device=accelerator.device)
    pending.update(zip(new_pending(), accelerator.reduce(counters, "sum").tolist()))
    (generator_optimizer, discriminator_optimizer), (generator_scheduler, discriminator_scheduler) = (
        parts.optimizers,
        parts.schedulers,
    )
    generator_norm, generator_skipped = optimizer_step(
        args,
        accelerator,
        parts.tokenizer,
        generator_optimizer,
        generator_scheduler,
        pending["generator_nonfinite"] > 0,
    )
    # Before --discriminator_start_step the discriminator has no gradients, and its step changes nothing.
    discriminator_norm, discriminator_skipped = optimizer_step(
        args,
        accelerator,
        parts.discriminator,
        discriminator_optimizer,
        discriminator_scheduler,
        pending["discriminator_nonfinite"] > 0,
    )
    if parts.ema is not None and not generator_skipped:
        parts.ema.step(accelerator.unwrap_model(parts.tokenizer).parameters())
    pending["nonfinite"] = generator_skipped or discriminator_skipped
    return {
        "train/grad_norm": generator_norm.item(),
        "discriminator/grad_norm": discriminator_norm.item(),
        "train/learning_rate": generator_scheduler.get_last_lr()[0],
        "discriminator/learning_rate": discriminator_scheduler.get_last_lr()[0],
    }


def log_training(args, accelerator, state, logs, window, progress):
    """Log the step's losses and the window's codebook statistics (all processes) and throughput."""
    code_counts = accelerator.reduce(window["code_counts"], "sum")
    usage, perplexity = codebook_statistics(code_counts)
    elapsed = time.perf_counter() - window["start"]
    logs = {name: float(value) for name, value in logs.items()}
    logs.update(
        {
            "train/codebook_usage": usage,
            "train/codebook_perplexity": perplexity,
            "train/images_per_second": window["images"] / max(elapsed, 1e-9),
            "train/skipped_images": state.skipped_images,
            "train/nonfinite_steps": state.nonfinite_steps,
        }
    )
    accelerator.log(logs, step=state.global_step)
    progress.set_postfix(loss=f"{logs['train/total']:.4f}", usage=f"{usage:.2f}")
    window.update(new_window(window["code_counts"]))


def new_window(code_counts: torch.Tensor) -> dict:
    """Statistics gathered between two logging steps."""
    return {"code_counts": torch.zeros_like(code_counts), "images": 0, "start": time.perf_counter()}


def after_optimizer_step(args, accelerator, parts: TrainingParts, state, logs, pending, window, progress):
    """Count the step, stop on too many non-finite steps in a row, then log, checkpoint and validate when due."""
    state.global_step += 1
    progress.update(1)
    state.skipped_images += pending["skipped"]
    window["images"] += pending["images"]
    if pending["nonfinite"]:
        state.nonfinite_steps += 1
        state.consecutive_nonfinite_steps += 1
        logger.warning(f"Non-finite loss or gradient at step {state.global_step}: the update was skipped.")
    else:
        state.consecutive_nonfinite_steps = 0
    pending.update(new_pending())
    if state.consecutive_nonfinite_steps >= args.max_nonfinite_steps:
        save_checkpoint(accelerator, state.global_step)
        end_training(accelerator, parts)
        raise RuntimeError(
            f"{state.consecutive_nonfinite_steps} optimizer steps in a row (up to step {state.global_step}) had a "
            f"non-finite loss or gradient, so training stopped (--max_nonfinite_steps {args.max_nonfinite_steps}). "
            f"The last finite weights are in {os.path.join(args.output_dir, CHECKPOINTS_FOLDER)}; lower --learning_rate, "
            "set --max_grad_norm, or use --mixed_precision bf16 instead of fp16 before resuming."
        )
    if state.global_step % args.logging_steps == 0:
        log_training(args, accelerator, state, logs, window, progress)
    if args.checkpointing_steps and state.global_step % args.checkpointing_steps == 0:
        save_checkpoint(accelerator, state.global_step)
    # The last step is validated by `save_outputs`.
    if (
        args.validation_steps
        and state.global_step % args.validation_steps == 0
        and state.global_step < args.max_train_steps
    ):
        log_validation(args, accelerator, parts.tokenizer, parts.ema, parts.validation_dataset, state.global_step)


def train(args, accelerator, parts: TrainingParts, state: TrainingState):
    """Run optimizer steps until --max_train_steps, resuming inside an epoch where the checkpoint left off."""
    progress = tqdm(
        total=args.max_train_steps, initial=state.global_step, desc="steps", disable=not accelerator.is_main_process
    )
    codebook_size = accelerator.unwrap_model(parts.tokenizer).config.codebook_size
    window = new_window(torch.zeros(codebook_size, dtype=torch.long, device=accelerator.device))
    if args.codebook_restart_steps:
        # After a resume the first restart waits for a full window of counts.
        parts.codebook_window = new_codebook_window(window["code_counts"], state.global_step)
    pending = new_pending()
    while state.global_step < args.max_train_steps:
        # Order and augmentation of epoch e depend on (seed, e) only; both are set before the iterator starts.
        parts.train_dataset.set_epoch(state.epoch)
        parts.train_dataloader.set_epoch(state.epoch)
        dataloader = parts.train_dataloader
        if state.batches_in_epoch:
            dataloader = accelerator.skip_first_batches(dataloader, state.batches_in_epoch)
        for batch in dataloader:
            state.batches_in_epoch += 1
            logs = train_micro_batch(args, accelerator, parts, state, batch, pending, window)
            if accelerator.sync_gradients:
                after_optimizer_step(args, accelerator, parts, state, logs, pending, window, progress)
                if state.global_step >= args.max_train_steps:
                    break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()


def build_dataloader(args, accelerator, train_dataset) -> DataLoader:
    """The prepared training dataloader; also fills in --max_train_steps and --discriminator_start_step."""
    dataloader = DataLoader(
        train_dataset,
        batch_size=args.train_batch_size,
        shuffle=not args.streaming,
        collate_fn=collate_images,
        num_workers=args.dataloader_num_workers,
    )
    dataloader = accelerator.prepare(dataloader)
    if args.max_train_steps is None:
        if len(dataloader) == 0:
            raise ValueError("The training dataset is empty.")
        args.max_train_steps = args.num_train_epochs * math.ceil(len(dataloader) / args.gradient_accumulation_steps)
    if args.discriminator_start_step is None:
        args.discriminator_start_step = args.max_train_steps // 10
    if args.lr_warmup_steps > args.max_train_steps:
        logger.warning(f"--lr_warmup_steps {args.lr_warmup_steps} exceeds the {args.max_train_steps} training steps.")
    return dataloader


def main(args):
    """Train the tokenizer (and its discriminator), then save it with its model card and optionally push it."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    accelerator = build_accelerator(args)
    check_launch(accelerator)
    if accelerator.distributed_type == DistributedType.FSDP:
        # accelerate's FSDP2 takes one model per `prepare`, and this script trains two (tokenizer and discriminator).
        raise ValueError(
            "train_tokenizer.py trains with DDP, not FSDP: launch it with a multi-GPU accelerate config. The largest "
            "preset (SL) fits 40-80 GB GPUs, or smaller ones with --gradient_checkpointing."
        )
    prepare_output_dir(args.output_dir)
    check_hub_repo(args, accelerator)
    # Before any compute: a conflict with the checkpoints already in --output_dir fails here.
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
    args.num_processes = accelerator.num_processes
    set_seed(args.seed)
    # The perceptual network first: a wrong --perceptual_model fails before the data is read.
    perceptual = load_lpips(args.perceptual_model).to(accelerator.device) if args.perceptual_weight > 0 else None
    config, discriminator_config = load_configs(args)
    train_dataset, validation_dataset = build_datasets(args, accelerator)
    train_dataloader = build_dataloader(args, accelerator, train_dataset)
    parts = prepare_parts(
        args,
        accelerator,
        config,
        discriminator_config,
        perceptual,
        train_dataset,
        train_dataloader,
        validation_dataset,
    )
    ema = parts.ema
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    if ema is not None:
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    tracker_config = {
        name: value if isinstance(value, (int, float, str, bool)) else str(value) for name, value in vars(args).items()
    }
    accelerator.init_trackers("train_tokenizer", config=tracker_config)
    if checkpoint is not None:
        load_checkpoint(accelerator, checkpoint, state)
    logger.info(
        f"Training {args.max_train_steps} steps of {args.train_batch_size} x {accelerator.num_processes} processes x "
        f"{args.gradient_accumulation_steps} accumulation images; discriminator from step {args.discriminator_start_step}."
    )
    train(args, accelerator, parts, state)
    accelerator.wait_for_everyone()
    save_outputs(args, accelerator, parts.tokenizer, parts.discriminator, ema, validation_dataset, state)
    if args.push_to_hub and accelerator.is_main_process:
        # Creates the repository when missing; checkpoints and logs stay local (`hub.UPLOAD_IGNORE_PATTERNS`).
        repo_id = push_folder_to_hub(
            args.output_dir,
            args.hub_model_id,
            private=args.hub_private,
            token=args.hub_token,
            commit_message=f"ViT-VQGAN tokenizer ({args.model_config}), {state.global_step} steps",
        )
        logger.info(f"Pushed {args.output_dir} to https://huggingface.co/{repo_id}")
    end_training(accelerator, parts)


if __name__ == "__main__":
    main(parse_args())
