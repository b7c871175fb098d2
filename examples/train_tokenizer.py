# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Train the ViT-VQGAN image tokenizer (stage 1 of Yu et al., "Vector-quantized Image Modeling with Improved VQGAN").

    accelerate launch examples/train_tokenizer.py --model_config ss --output_dir out/tokenizer

The generator loss is paper Sec. 3.3, `L_VQ + 0.1 L_adv + 0.1 L_perceptual + 0.1 L_logit-Laplace + 1.0 L_2`, against
a StyleGAN2 discriminator with the non-saturating loss and a lazy R1 penalty; AdamW (betas 0.9, 0.99, weight decay
1e-4) for both networks, linear warm-up then cosine decay from 1e-4 to 5e-5 (paper Sec. 5.1). The
discriminator and the adversarial term start after `--discriminator_start_step`. Step counts (`--max_train_steps`,
`--lr_warmup_steps`, `--discriminator_start_step`, ...) count optimizer steps. By default the warm-up and the
discriminator's start are fractions of the run (`--lr_warmup_ratio` 0.1, and 10%): the paper's 50k and 50k steps at
its 500k (global batch 256), and a schedule of the same shape for a run of any other length; the step flags override.

The output folder holds the tokenizer (`VitVqganModel.from_pretrained(output_dir)`; the EMA weights with
`--use_ema`), the discriminator in `discriminator/`, a model card `README.md` whose model-index holds the final
validation metrics, the same metrics with their protocol in `validation_results.json`, `train_results.json`, the last
validation grid `validation_reconstructions.png`, TensorBoard logs in `logs/` and `accelerate` checkpoints in
`checkpoints/checkpoint_<step>` (`--push_to_hub` uploads all but the logs and checkpoints). A run resumed with
`--resume_from_checkpoint latest` ends with the same weights as an uninterrupted run: the checkpoint restores both
networks, optimizers and schedulers, the EMA, the random states and the position in the data, and data order and
augmentation depend only on `(seed, epoch, example index)`.

Non-finite steps (`vit_vqgan_hf.training.loop`): when the global gradient norm of a network is not finite, that
network's gradients of the step are replaced by zeros on the device (under fp16 the gradient scaler skips the step), so
a training step never waits for the device to check. Such steps, and steps with a non-finite loss, are counted on the
device and read at logging and checkpoint steps; after `--max_nonfinite_steps` of them in a row the run saves a
checkpoint and stops.
"""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader
from torchmetrics.functional.image import peak_signal_noise_ratio
from transformers import get_scheduler

from vit_vqgan_hf import VitVqganConfig, VitVqganModel, cli
from vit_vqgan_hf.evaluation import build_results, save_results
from vit_vqgan_hf.hub import create_model_card
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.models.vit_vqgan.configuration_vit_vqgan import QUANTIZER_GRADIENTS
from vit_vqgan_hf.models.vit_vqgan.modeling_vit_vqgan import codebook_statistics
from vit_vqgan_hf.training import (
    LPIPS_VGG16,
    VitVqganDiscriminator,
    VitVqganDiscriminatorConfig,
    VitVqganLossWeights,
    discriminator_step_loss,
    generator_loss,
    load_lpips,
)
from vit_vqgan_hf.training.checkpointing import TrainingState
from vit_vqgan_hf.training.codebook import kmeans_codes, lookup_latents, restart_dead_codes, set_codes
from vit_vqgan_hf.training.data import (
    augmented_images,
    collate_images,
    held_out_images,
    load_image_dataset,
    load_training_images,
)
from vit_vqgan_hf.training.loop import (
    TrainingLoop,
    TrainingStepOutput,
    clip_and_guard_gradients,
    not_finite,
    prepare_train_dataloader,
    save_train_results,
)
from vit_vqgan_hf.training.run import (
    QuantizerOptions,
    TokenizerTrainingRun,
    TrainingData,
    TrainingSchedule,
    steps_from_ratio,
)
from vit_vqgan_hf.utils.file_writes import report_write_errors


logger = get_logger(__name__, log_level="INFO")

MODEL_PRESETS = ("tiny", "ss", "bb", "sl")
DISCRIMINATOR_PRESETS = ("stylegan2", "tiny")
SCHEDULERS_WITH_MIN_LR = ("cosine_with_min_lr", "cosine_warmup_with_min_lr")
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
LR_SCHEDULERS += SCHEDULERS_WITH_MIN_LR
# The paper's run (Sec. 5.1): 500k steps, 50k of warm-up; the discriminator starts at 10% of the run, 50k steps.
PAPER_STEPS, PAPER_WARMUP_STEPS = 500_000, 50_000
DISCRIMINATOR_START_RATIO = 0.1
# The quantizer's training recipes (`--quantizer_recipe`): the paper's, and the default, the combination that kept the
# most codes in use, on every seed, at no cost in reconstruction on the small data sets of
# `benchmarks/reproduce_tokenizer_ablations.py` (README, Results): codes that are a learned linear map of frozen random
# codes (SimVQ) and an entropy penalty on the tokens' soft assignments to them (weight 0.01).
CODEBOOK_MAPS = ("none", "linear")
CODEBOOK_INITS = ("random", "kmeans")
QUANTIZER_RECIPES = {
    "paper": {
        "quantizer_gradient": "straight_through",
        "codebook_map": "none",
        "codebook_init": "random",
        "codebook_entropy_weight": 0.0,
    },
    "default": {
        "quantizer_gradient": "straight_through",
        "codebook_map": "linear",
        "codebook_init": "random",
        "codebook_entropy_weight": 0.01,
    },
}
# The final validation metrics and their protocol (`vit_vqgan_hf.evaluation.save_results`), also in the card.
VALIDATION_RESULTS_FILE = "validation_results.json"
# accelerate's FSDP2 takes one model per `prepare`, and this script trains two (tokenizer and discriminator).
FSDP_REFUSAL = (
    "train_tokenizer.py trains with DDP, not FSDP: launch it with a multi-GPU accelerate config. The largest preset "
    "(SL) fits 40-80 GB GPUs, or smaller ones with --gradient_checkpointing."
)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Train a ViT-VQGAN image tokenizer.")
    data = cli.add_image_data_args(
        parser,
        validation_help=(
            "Split for validation metrics; without it (and without --validation_data_dir) the first training images."
        ),
    )
    data.add_argument("--validation_data_dir", default=None, help="Image folder for validation metrics.")
    add_model_args(parser)
    optimization = cli.add_optimization_args(parser, examples="Images")
    add_tokenizer_optimization_args(optimization)
    add_codebook_args(parser)
    outputs = cli.add_output_args(parser)
    outputs.add_argument("--max_validation_samples", type=int, default=256, help="Validation images for the metrics.")
    # The paper's recipe (Sec. 5.1), without clipping; its 50k warm-up steps of 500k as a fraction of the run.
    parser.set_defaults(num_train_epochs=100, learning_rate=1e-4, lr_warmup_ratio=PAPER_WARMUP_STEPS / PAPER_STEPS)
    parser.set_defaults(lr_end=5e-5)
    parser.set_defaults(adam_beta2=0.99, adam_weight_decay=1e-4, max_grad_norm=None)
    parser.set_defaults(output_dir="vit-vqgan-tokenizer", num_validation_images=8)
    args = parser.parse_args(input_args)
    check_args(args)
    return args


def add_model_args(parser):
    """The models and their losses."""
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
        "--perceptual_model",
        default=LPIPS_VGG16,
        help=f"LPIPS-VGG16 weights: {LPIPS_VGG16} (the VGG16 trunk of timm/vgg16.tv_in1k, downloaded once, and the "
        "heads of `pip install --no-deps lpips`), or a path or Hub id of your own (see `load_lpips`).",
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


def add_tokenizer_optimization_args(optimization):
    """The discriminator's learning rate, the schedule, the EMA and dead-code restarts."""
    optimization.add_argument(
        "--discriminator_learning_rate", type=float, default=None, help="Default: --learning_rate."
    )
    optimization.add_argument(
        "--lr_scheduler", default="cosine_with_min_lr", choices=LR_SCHEDULERS, help="LR schedule."
    )
    optimization.add_argument(
        "--use_ema", action="store_true", help="Keep and export an EMA of the tokenizer weights."
    )
    optimization.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay.")


def add_codebook_args(parser):
    """How the codebook trains: the recipe and its parts, and dead-code restarts."""
    codebook = parser.add_argument_group("codebook")
    codebook.add_argument(
        "--quantizer_recipe",
        default="default",
        choices=sorted(QUANTIZER_RECIPES),
        help=(
            "Defaults of the four flags below. 'paper': straight-through gradient, free codes, random init, no entropy "
            "penalty (paper Sec. 3.2), which collapses to a few %% of the codes on small data sets; 'default': "
            + ", ".join(f"{name} {value}" for name, value in QUANTIZER_RECIPES["default"].items())
            + ", which kept the most codes in use on the small data sets this repository measured (README, Results)."
        ),
    )
    codebook.add_argument(
        "--quantizer_gradient", default=None, choices=QUANTIZER_GRADIENTS, help="Default: from --quantizer_recipe."
    )
    codebook.add_argument(
        "--codebook_map",
        default=None,
        choices=CODEBOOK_MAPS,
        help="'linear': the codes are a learned linear map of frozen random codes (SimVQ). Default: from the recipe.",
    )
    codebook.add_argument(
        "--codebook_init",
        default=None,
        choices=CODEBOOK_INITS,
        help="'kmeans': the codes start on k-means++ centers of the encoder's latents of the first batch (all "
        "processes). Default: from the recipe.",
    )
    codebook.add_argument(
        "--codebook_entropy_weight",
        type=float,
        default=None,
        help="Weight of the entropy penalty that spreads each batch's tokens over the codes "
        "(`VitVqganConfig.codebook_entropy_weight`; 0: the paper's VQ loss). Default: from the recipe.",
    )
    codebook.add_argument(
        "--codebook_restart_steps",
        type=int,
        default=None,
        help=(
            "Every N steps, move the codes no token picked in the last N steps onto latents of the current batch "
            "(dead-code restart). Off by default, as in the paper (see vit_vqgan_hf.training.codebook)."
        ),
    )
    codebook.add_argument(
        "--codebook_restart_until",
        type=float,
        default=1.0,
        help="Fraction of the run after which restarts stop, so the last steps train every code they placed.",
    )


def check_args(args):
    """Sanity checks with messages that say which flag to change."""
    if args.train_data_dir is None and args.dataset_name is None:
        raise ValueError("Pass --dataset_name (a Hub dataset) or --train_data_dir (an image folder).")
    cli.check_shared_training_args(args)
    for name in ("r1_interval", "max_validation_samples"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.codebook_restart_steps is not None and args.codebook_restart_steps < 1:
        raise ValueError(f"--codebook_restart_steps must be at least 1 when given, got {args.codebook_restart_steps}.")
    if not 0.0 < args.codebook_restart_until <= 1.0:
        raise ValueError(f"--codebook_restart_until must lie in (0, 1], got {args.codebook_restart_until}.")
    for name, value in QUANTIZER_RECIPES[args.quantizer_recipe].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.codebook_entropy_weight < 0:
        raise ValueError(f"--codebook_entropy_weight must be at least 0, got {args.codebook_entropy_weight}.")
    if args.lr_scheduler in SCHEDULERS_WITH_MIN_LR and not 0 <= args.lr_end <= args.learning_rate:
        raise ValueError(f"--lr_end ({args.lr_end}) must lie in [0, --learning_rate ({args.learning_rate})].")
    if not 0.0 < args.ema_decay < 1.0:
        raise ValueError(f"--ema_decay must lie in (0, 1), got {args.ema_decay}.")
    if args.discriminator_learning_rate is None:
        args.discriminator_learning_rate = args.learning_rate


def load_configs(args) -> tuple[VitVqganConfig, VitVqganDiscriminatorConfig | None]:
    """Model configurations from presets or files, with the command line's overrides; no discriminator without the
    adversarial term."""
    overrides = {
        "commitment_cost": args.commitment_cost,
        "quantizer_gradient": args.quantizer_gradient,
        "use_codebook_linear_map": args.codebook_map == "linear",
        "codebook_entropy_weight": args.codebook_entropy_weight,
    }
    if args.logit_laplace_weight == 0:
        # Without the logit-Laplace loss nothing trains the decoder's scale outputs: it predicts pixels only.
        overrides["use_logit_laplace"] = False
    if args.resolution is not None:
        overrides["image_size"] = args.resolution
    if args.model_config in MODEL_PRESETS:
        config = VitVqganConfig.from_preset(args.model_config, **overrides)
    else:
        expected = f"a preset ({', '.join(MODEL_PRESETS)}), a config.json, a folder with one, or a Hub id"
        config = cli.load_pretrained(VitVqganConfig.from_pretrained, args.model_config, expected=expected, **overrides)
        config.validate_architecture()
    if config.num_channels != 3:
        raise ValueError(
            f"--model_config has num_channels={config.num_channels}; this script trains on RGB images (3 channels)."
        )
    if args.adversarial_weight == 0:
        return config, None
    if args.discriminator_config in DISCRIMINATOR_PRESETS:
        discriminator_config = VitVqganDiscriminatorConfig.from_preset(
            args.discriminator_config, image_size=config.image_size
        )
    else:
        discriminator_config = cli.load_pretrained(
            VitVqganDiscriminatorConfig.from_pretrained,
            args.discriminator_config,
            expected=f"a preset ({', '.join(DISCRIMINATOR_PRESETS)}), a config.json, a folder with one, or a Hub id",
            image_size=config.image_size,
        )
        discriminator_config.validate_architecture()
    return config, discriminator_config


def build_models(args, config, discriminator_config):
    """Tokenizer, discriminator (None without the adversarial term) and, with --use_ema, the EMA of the tokenizer's
    weights."""
    tokenizer = VitVqganModel(config)
    if args.gradient_checkpointing:
        tokenizer.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    discriminator = VitVqganDiscriminator(discriminator_config).train() if discriminator_config else None
    ema = EMAModel(tokenizer.parameters(), decay=args.ema_decay) if args.use_ema else None
    return tokenizer.train(), discriminator, ema


def build_datasets(args, accelerator, resolution: int):
    """Training dataset (augmented) and validation dataset (center crops, at most --max_validation_samples) at
    `resolution`, and what the validation images are."""
    splits = load_training_images(args, accelerator)
    validation = splits.get(args.validation_split)
    if args.validation_data_dir is not None:
        with accelerator.main_process_first():
            validation_splits = load_image_dataset(
                train_data_dir=args.validation_data_dir,
                split=None,
                streaming=args.streaming,
                cache_dir=args.cache_dir,
                image_column=args.image_column,
            )
        names = list(validation_splits)
        validation = validation_splits[args.validation_split if args.validation_split in names else names[0]]
    validation_source = "held-out images"
    if validation is None:
        logger.warning(
            f"No validation split {args.validation_split!r}: validation metrics use the first training images."
        )
        validation_source = "the first training images"
        validation = splits[args.train_split]
    train_dataset = augmented_images(args, splits[args.train_split], resolution)
    validation_dataset = held_out_images(args, validation, args.max_validation_samples, resolution)
    return train_dataset, validation_dataset, validation_source


def build_optimizers(args, run: TokenizerTrainingRun, accelerator, models):
    """AdamW and a warm-up + decay schedule for each network (the paper uses the same optimizer for both)."""
    optimizers, schedulers = [], []
    learning_rates = (args.learning_rate, run.discriminator_learning_rate)
    for model, learning_rate in zip(models, learning_rates):
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
            num_warmup_steps=run.schedule.lr_warmup_steps * accelerator.num_processes,
            num_training_steps=run.schedule.max_train_steps * accelerator.num_processes,
            scheduler_specific_kwargs=specific,
        )
        optimizers.append(optimizer)
        schedulers.append(scheduler)
    return optimizers, schedulers


def generator_forward_backward(args, accelerator, tokenizer, discriminator, perceptual, batch, adversarial_active):
    """Tokenizer loss of one micro-batch and its backward pass; the discriminator (while the adversarial term is
    active) is frozen and gets no gradient."""
    frozen_discriminator = (
        accelerator.unwrap_model(discriminator).requires_grad_(False) if adversarial_active else None
    )
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
            discriminator=frozen_discriminator,
            adversarial_active=adversarial_active,
            logit_laplace_eps=config.logit_laplace_eps,
        )
    accelerator.backward(loss)
    if frozen_discriminator is not None:
        frozen_discriminator.requires_grad_(True)
    return loss, logs, output


def discriminator_forward_backward(args, accelerator, discriminator, real, fake, apply_r1):
    """Discriminator loss of one micro-batch (detached reconstructions) and its backward pass."""
    with accelerator.autocast():
        loss, logs = discriminator_step_loss(discriminator, real, fake, apply_r1, args.r1_gamma, args.r1_interval)
    accelerator.backward(loss)
    return loss, logs


def export_tokenizer(accelerator, tokenizer, ema) -> VitVqganModel:
    """The tokenizer to evaluate and save: the trained model, or a copy holding the EMA weights."""
    model = accelerator.unwrap_model(tokenizer)
    if ema is None:
        return model
    copy = VitVqganModel(model.config).to(accelerator.device)
    # The buffers too: the frozen codes under `use_codebook_linear_map` are the model's, not the EMA's.
    copy.load_state_dict(model.state_dict())
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
    usage, perplexity = codebook_statistics(code_counts, dtype=torch.float64)
    metrics = {
        "validation/psnr": (psnr_sum / counts[0].clamp(min=1)).item(),
        "validation/codebook_usage": usage.item(),
    }
    metrics["validation/codebook_perplexity"] = perplexity.item()
    metrics.update(num_images=int(counts[0]), unreadable_images=int(counts[1]))
    grid = torch.cat(grid_rows)[: args.num_validation_images] if grid_rows else torch.zeros(0, 3, 1, 2)
    grid = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return metrics, grid


def collate_validation_images(examples: list[dict]) -> dict:
    """`collate_images`, plus which examples are the images of their own index (not replacements)."""
    return {**collate_images(examples), "readable": torch.tensor([not example["skipped"] for example in examples])}


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


def validation_results(args, run: TokenizerTrainingRun, config, metrics: dict, state: TrainingState) -> dict:
    """The final validation metrics as a results dict of `vit_vqgan_hf.evaluation` (for the file and the card)."""
    if args.validation_data_dir is not None or args.train_data_dir is not None:
        # The folder's name only: an absolute path would name the training machine in a public card.
        source = {"kind": "imagefolder", "path": Path(args.validation_data_dir or args.train_data_dir).name}
    else:
        source = {"kind": "hub", "name": args.dataset_name, "config": args.dataset_config_name}
    held_out = run.data.validation == "held-out images"
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
            "images": run.data.validation,
            "unreadable_images_skipped": metrics["unreadable_images"],
        },
        codebook_usage={"scope": "code counts of the whole validation set, summed over processes"},
        distributed={"num_processes": run.schedule.num_processes},
        training={"global_step": state.global_step, "skipped_images": state.skipped_images},
    )


def save_outputs(args, run: TokenizerTrainingRun, accelerator, parts: "TokenizerTrainingParts", state):
    """Final validation, then the tokenizer, the discriminator, the model card and train_results.json."""
    tokenizer, discriminator, ema = parts.tokenizer, parts.discriminator, parts.ema
    metrics = log_validation(args, accelerator, tokenizer, ema, parts.validation_dataset, state.global_step)
    if accelerator.is_main_process:
        export = export_tokenizer(accelerator, tokenizer, ema)
        weights = [os.path.join(args.output_dir, name) for name in ("model.safetensors", "discriminator")]
        with report_write_errors(args.output_dir, "the tokenizer", cli.FINAL_OUTPUTS_PARTIAL, remove=weights):
            export.save_pretrained(args.output_dir)
            create_image_processor(export.config).save_pretrained(args.output_dir)
            if discriminator is not None:
                accelerator.unwrap_model(discriminator).save_pretrained(os.path.join(args.output_dir, "discriminator"))
        results = validation_results(args, run, export.config, metrics, state)
        card_path = os.path.join(args.output_dir, "README.md")
        with report_write_errors(card_path, "the model card", cli.FINAL_OUTPUTS_PARTIAL, remove=[card_path]):
            save_results(results, os.path.join(args.output_dir, VALIDATION_RESULTS_FILE))
            card = create_model_card(export.config, run.card_arguments(), results=results, repo_id=args.hub_model_id)
            card.save(card_path)
        results = {**metrics, "loss_terms": dict(run.loss_terms), "quantizer": run.quantizer.as_record()}
        save_train_results(run, state, results, "the tokenizer")
    return metrics


@dataclass
class TokenizerTrainingParts:
    """What the tokenizer's training loop works on (models, optimizers, data), prepared by accelerate."""

    tokenizer: torch.nn.Module
    discriminator: torch.nn.Module | None
    perceptual: torch.nn.Module | None
    ema: EMAModel | None
    optimizers: list
    schedulers: list
    train_dataset: torch.utils.data.Dataset
    train_dataloader: DataLoader
    validation_dataset: torch.utils.data.Dataset


def prepare_parts(
    args,
    run,
    accelerator,
    config,
    discriminator_config,
    perceptual,
    train_dataset,
    train_dataloader,
    validation_dataset,
):
    """Build the models and optimizers and prepare them with accelerate (only `TokenizerTrainingParts` holds the wrappers)."""
    tokenizer, discriminator, ema = build_models(args, config, discriminator_config)
    models = [tokenizer] if discriminator is None else [tokenizer, discriminator]
    optimizers, schedulers = build_optimizers(args, run, accelerator, models)
    count = len(models)
    prepared = accelerator.prepare(*models, *optimizers, *schedulers)
    models, optimizers, schedulers = prepared[:count], prepared[count : 2 * count], prepared[2 * count :]
    if ema is not None:
        ema.to(accelerator.device)
    return TokenizerTrainingParts(
        models[0],
        models[1] if len(models) > 1 else None,
        perceptual,
        ema,
        list(optimizers),
        list(schedulers),
        train_dataset,
        train_dataloader,
        validation_dataset,
    )


@dataclass
class CodebookWindow:
    """Code counts of this process since the last dead-code restart (--codebook_restart_steps), and its step."""

    code_counts: torch.Tensor
    start_step: int


class TokenizerTrainer:
    """
    The tokenizer's part of the training loop ([`TrainingLoop`]): its training step, the codebook statistics of a
    logging window, and validation; also the codebook's k-means initialization and dead-code restarts.
    """

    def __init__(self, args, run: TokenizerTrainingRun, accelerator, parts: TokenizerTrainingParts):
        self.args, self.run, self.accelerator, self.parts = args, run, accelerator, parts
        codebook_size = accelerator.unwrap_model(parts.tokenizer).config.codebook_size
        # Code counts of the logging window, on the device.
        self.code_counts = torch.zeros(codebook_size, dtype=torch.long, device=accelerator.device)
        # Code counts since the last dead-code restart; started at the first step this process trains, so that after
        # a resume the first restart waits for a full window of counts.
        self.codebook_window = None
        # --codebook_init kmeans acts once, on the first batch of a fresh run; a resumed run has its codes already.
        self.codebook_init_pending = run.quantizer.codebook_init == "kmeans"

    def training_step(self, batch: dict, global_step: int) -> TrainingStepOutput:
        """
        One micro-batch at optimizer step `global_step`: the generator's forward and backward (the discriminator
        frozen), the discriminator's (once it started), and when gradients sync the clipped optimizer steps of both
        networks, their schedules, the EMA and a due dead-code restart. Reads nothing back from the device.
        """
        args, run, accelerator, parts = self.args, self.run, self.accelerator, self.parts
        pixel_values = batch["pixel_values"]
        if self.codebook_init_pending:
            if global_step == 0:
                self.initialize_codebook(pixel_values)
            self.codebook_init_pending = False
        if run.quantizer.restart_steps and self.codebook_window is None:
            self.codebook_window = CodebookWindow(torch.zeros_like(self.code_counts), global_step)
        adversarial_active = parts.discriminator is not None and global_step >= run.discriminator_start_step
        with accelerator.accumulate(*self.models):
            # The generator: VQ, pixel, perceptual and (once the discriminator started) adversarial terms.
            loss, generator_logs, output = generator_forward_backward(
                args, accelerator, parts.tokenizer, parts.discriminator, parts.perceptual, batch, adversarial_active
            )
            # What the step counts as non-finite: its losses and gradient norms (0-dim tensors, on the device).
            checked = [loss]
            logs = {f"train/{name}": value for name, value in generator_logs.items()}
            # The discriminator, on real and detached reconstructed images; the lazy R1 penalty every r1_interval steps.
            if adversarial_active:
                apply_r1 = global_step % args.r1_interval == 0
                loss, discriminator_logs = discriminator_forward_backward(
                    args, accelerator, parts.discriminator, pixel_values, output.reconstruction, apply_r1
                )
                checked.append(loss)
                logs.update({f"discriminator/{name}": value for name, value in discriminator_logs.items()})
            self.code_counts += output.code_counts
            if self.codebook_window is not None:
                self.codebook_window.code_counts += output.code_counts
            if not accelerator.sync_gradients:
                return TrainingStepOutput(not_finite(*checked))
            # The optimizer steps: each network's gradients clipped (zeros when their norm is not finite), then its
            # AdamW step and schedule. Before the discriminator's start it has no gradients and its step changes nothing.
            for prefix, model, optimizer, scheduler in zip(
                ("train", "discriminator"), self.models, parts.optimizers, parts.schedulers
            ):
                grad_norm, grad_nonfinite = clip_and_guard_gradients(accelerator, model, run.schedule.max_grad_norm)
                checked.append(grad_nonfinite)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                logs[f"{prefix}/grad_norm"] = grad_norm
                logs[f"{prefix}/learning_rate"] = scheduler.get_last_lr()[0]
            if parts.ema is not None:
                parts.ema.step(accelerator.unwrap_model(parts.tokenizer).parameters())
            if self.restart_due(global_step + 1):
                logs["train/restarted_codes"] = self.restart_codes(pixel_values, global_step + 1)
        return TrainingStepOutput(not_finite(*checked), logs)

    @property
    def models(self) -> list[torch.nn.Module]:
        """The tokenizer, and the discriminator when the adversarial term is on."""
        return [model for model in (self.parts.tokenizer, self.parts.discriminator) if model is not None]

    def restart_due(self, step: int) -> bool:
        """Whether optimizer step `step` ends a full dead-code restart window (never the last step: a code moved there
        would be exported without the decoder ever having seen it)."""
        max_train_steps = self.run.schedule.max_train_steps
        if self.codebook_window is None or step >= max_train_steps:
            return False
        if step > self.run.quantizer.restart_until * max_train_steps:
            return False
        every = self.run.quantizer.restart_steps
        return step % every == 0 and step - self.codebook_window.start_step >= every

    def restart_codes(self, pixel_values: torch.Tensor, step: int) -> int:
        """Dead-code restart at the end of optimizer step `step`: the codes no process picked since the last restart
        move onto latents of this step's batches, the same way on every process (same counts, same gathered latents,
        same seeded generator)."""
        accelerator = self.accelerator
        model = accelerator.unwrap_model(self.parts.tokenizer)
        code_counts = accelerator.reduce(self.codebook_window.code_counts.clone(), "sum")
        latents = lookup_latents(model, pixel_values)
        # Random draws come from generators seeded by the step, never from the global one (whose state a checkpoint
        # restores, before the resumed run draws from it anew): a resumed run restarts the same codes on the same
        # latents. At most `codebook_size` candidates per process keep the gather small at ImageNet scale.
        seed = self.args.seed + step
        candidates = torch.randperm(latents.shape[0], generator=torch.Generator().manual_seed(seed))
        latents = latents[candidates[: model.config.codebook_size].to(latents.device)]
        latents = accelerator.gather(latents.contiguous())
        # A fresh generator in the same state on every process, whatever each process drew for its candidates.
        generator = torch.Generator().manual_seed(seed)
        restarted = restart_dead_codes(model, code_counts, latents, generator, self.parts.optimizers[0])
        self.codebook_window = CodebookWindow(torch.zeros_like(code_counts), step)
        return restarted.numel()

    def initialize_codebook(self, pixel_values: torch.Tensor):
        """--codebook_init kmeans: every code moves onto a k-means++ center of the encoder's latents of this first
        batch, gathered from all processes; the same seeded generator on every process gives the same codes."""
        accelerator = self.accelerator
        model = accelerator.unwrap_model(self.parts.tokenizer)
        latents = accelerator.gather(lookup_latents(model, pixel_values).contiguous())
        generator = torch.Generator(latents.device).manual_seed(self.args.seed)
        codes = kmeans_codes(
            latents, model.config.codebook_size, generator, spherical=model.config.use_l2_normalized_codes
        )
        set_codes(model, torch.arange(model.config.codebook_size, device=codes.device), codes)
        if self.parts.ema is not None:
            # The EMA starts from the initialized codes, as it would have had they been there when it was built.
            for shadow, parameter in zip(self.parts.ema.shadow_params, model.parameters()):
                shadow.copy_(parameter.detach())
        logger.info(f"Codebook initialized on k-means++ centers of {latents.shape[0]} latents of the first batch.")

    def window_logs(self, examples: int) -> dict:
        """Codebook usage and perplexity of the window's code counts, summed over the processes."""
        usage, perplexity = codebook_statistics(self.accelerator.reduce(self.code_counts, "sum"), dtype=torch.float64)
        self.code_counts.zero_()
        return {"train/codebook_usage": usage, "train/codebook_perplexity": perplexity}

    def validate(self, global_step: int):
        """Validation metrics and the reconstruction grid at `global_step`."""
        parts = self.parts
        log_validation(self.args, self.accelerator, parts.tokenizer, parts.ema, parts.validation_dataset, global_step)


def loss_terms(args) -> dict:
    """The weight of every term of the generator loss; `None` for a term that was off (its network not even built)."""
    weights = {
        "l2": args.l2_weight,
        "logit_laplace": args.logit_laplace_weight,
        "perceptual": args.perceptual_weight,
        "adversarial": args.adversarial_weight,
    }
    return {"vq": 1.0, **{name: weight or None for name, weight in weights.items()}}


def resolve_run(
    args, num_processes: int, num_batches: int | None, resolution: int, validation_source: str
) -> TokenizerTrainingRun:
    """
    The run as it trains: the schedule (--max_train_steps from --num_train_epochs of `num_batches` micro-batches, the
    warm-up from --lr_warmup_ratio, the discriminator's start from 10% of the run unless --discriminator_start_step
    sets it: at the paper's 500k steps, 50k), the data, the loss terms and the quantizer's options.
    """
    schedule = TrainingSchedule.resolve(args, num_batches, num_processes)
    discriminator_start_step = None  # no discriminator is built without the adversarial term
    if args.adversarial_weight != 0:
        discriminator_start_step = steps_from_ratio(
            args.discriminator_start_step, DISCRIMINATOR_START_RATIO, schedule.max_train_steps
        )
    quantizer = QuantizerOptions(
        recipe=args.quantizer_recipe,
        gradient=args.quantizer_gradient,
        codebook_map=args.codebook_map,
        codebook_init=args.codebook_init,
        entropy_weight=args.codebook_entropy_weight,
        restart_steps=args.codebook_restart_steps,
        restart_until=args.codebook_restart_until,
    )
    return TokenizerTrainingRun(
        output_dir=args.output_dir,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        schedule=schedule,
        data=TrainingData(
            resolution=resolution,
            source=args.dataset_name or args.train_data_dir,
            hub_id=args.dataset_name,
            validation=validation_source,
        ),
        arguments=vars(args),
        loss_terms=loss_terms(args),
        quantizer=quantizer,
        discriminator_start_step=discriminator_start_step,
        discriminator_learning_rate=args.discriminator_learning_rate,
    )


def main(args):
    """Train the tokenizer (and its discriminator), then save it with its model card and optionally push it."""
    accelerator, checkpoint = cli.start_training_run(args, fsdp_refusal=FSDP_REFUSAL)
    set_seed(args.seed)
    # The perceptual network first: a wrong --perceptual_model fails before the data is read.
    perceptual = load_lpips(args.perceptual_model).to(accelerator.device) if args.perceptual_weight > 0 else None
    config, discriminator_config = load_configs(args)
    train_dataset, validation_dataset, validation_source = build_datasets(args, accelerator, config.image_size)
    train_dataloader = prepare_train_dataloader(
        accelerator,
        train_dataset,
        collate_images,
        batch_size=args.train_batch_size,
        shuffle=not args.streaming,
        num_workers=args.dataloader_num_workers,
        seed=args.seed,
    )
    num_batches = None if args.streaming else len(train_dataloader)
    run = resolve_run(args, accelerator.num_processes, num_batches, config.image_size, validation_source)
    parts = prepare_parts(
        args,
        run,
        accelerator,
        config,
        discriminator_config,
        perceptual,
        train_dataset,
        train_dataloader,
        validation_dataset,
    )
    trainer = TokenizerTrainer(args, run, accelerator, parts)
    loop = TrainingLoop(
        run,
        accelerator,
        parts,
        trainer.training_step,
        window_logs=trainer.window_logs,
        validate=trainer.validate,
        examples_name="images",
        progress_logs={"loss": "train/total", "usage": "train/codebook_usage"},
    )
    loop.start("train_tokenizer", checkpoint, parts.ema)
    terms = run.card_arguments()["loss_terms"]
    logger.info(f"Loss terms: {terms}; the adversarial term from step {run.discriminator_start_step}.")
    loop.train()
    accelerator.wait_for_everyone()
    save_outputs(args, run, accelerator, parts, loop.state)
    # Creates the repository when missing; checkpoints and logs stay local (`hub.UPLOAD_IGNORE_PATTERNS`).
    cli.push_training_outputs(
        args, accelerator, f"ViT-VQGAN tokenizer ({args.model_config}), {loop.state.global_step} steps"
    )
    loop.end_training()


if __name__ == "__main__":
    with cli.command_line_errors():
        args = parse_args()
        # The library's errors name its arguments; the user reads the flags.
        with cli.in_flag_terms(args):
            main(args)
