# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The resolved description of a training run: what the loop, the outputs, the model card and `train_results.json`
read once the command line is parsed and the data is loaded.

A training script parses its flags once; everything it derives from them afterwards (the number of optimizer steps
from the epochs, the warm-up and other schedule steps from their ratios, the data's source and image size, the loss
terms, the quantizer's options) goes into one frozen [`TrainingRun`] (or a subclass for one model), never back into the
parsed arguments. The arguments themselves are kept, read-only, for the model card's table of training arguments,
which shows them with the resolved values in place of the flags that left them unset.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from accelerate.logging import get_logger


logger = get_logger(__name__, log_level="INFO")


def steps_from_ratio(steps: int | None, ratio: float, max_train_steps: int) -> int:
    """
    A schedule's step count: `steps` when given (an explicit setting), else `ratio` of the run's `max_train_steps`,
    rounded. The scripts' defaults are the paper's steps divided by the paper's run length, so the paper's command
    gets the paper's steps and a run of any other length gets the same shape of schedule.
    """
    return steps if steps is not None else round(ratio * max_train_steps)


@dataclass(frozen=True, kw_only=True)
class TrainingSchedule:
    """
    How long a run trains and how often it logs, validates and checkpoints; every count in optimizer steps.

    Args:
        max_train_steps (`int`):
            Optimizer steps of the run.
        lr_warmup_steps (`int`):
            Steps of the learning rate's linear warm-up.
        train_batch_size (`int`):
            Examples per process and micro-batch.
        gradient_accumulation_steps (`int`):
            Micro-batches per optimizer step.
        num_processes (`int`):
            Processes training together.
        logging_steps (`int`):
            Steps between two logs (the step counters are read then).
        checkpointing_steps (`int`, *optional*):
            Steps between two checkpoints; `None`: no checkpoint.
        checkpoints_total_limit (`int`, *optional*):
            Checkpoints kept; `None`: all.
        validation_steps (`int`, *optional*):
            Steps between two validations (besides the one at the end); `None`: only at the end.
        max_nonfinite_steps (`int`):
            Non-finite steps in a row after which the run stops.
        max_grad_norm (`float`, *optional*):
            Gradient clipping norm; `None` or 0: no clipping.
    """

    max_train_steps: int
    lr_warmup_steps: int
    train_batch_size: int
    gradient_accumulation_steps: int
    num_processes: int
    logging_steps: int
    checkpointing_steps: int | None
    checkpoints_total_limit: int | None
    validation_steps: int | None
    max_nonfinite_steps: int
    max_grad_norm: float | None

    @classmethod
    def resolve(cls, args, num_batches: int | None, num_processes: int) -> "TrainingSchedule":
        """
        The schedule of a run: `args.max_train_steps`, or when unset `args.num_train_epochs` epochs of `num_batches`
        micro-batches; `args.lr_warmup_steps`, or when unset `args.lr_warmup_ratio` of the run ([`steps_from_ratio`]).

        Args:
            args (`argparse.Namespace`):
                Read, never written: with the fields of this class (but `num_processes`), `num_train_epochs` and
                `lr_warmup_ratio`.
            num_batches (`int`, *optional*):
                Micro-batches of one epoch in each process (`len` of the prepared data loader); `None` for a stream,
                which needs `max_train_steps`.
            num_processes (`int`):
                Processes training together.

        Raises:
            `ValueError`: when the run counts epochs of an empty data set, or of a stream.
        """
        max_train_steps = args.max_train_steps
        if max_train_steps is None:
            if num_batches is None:
                raise ValueError("A data set without a length needs `max_train_steps`: epochs cannot be counted.")
            if num_batches == 0:
                raise ValueError("The training dataset is empty.")
            max_train_steps = args.num_train_epochs * math.ceil(num_batches / args.gradient_accumulation_steps)
        lr_warmup_steps = steps_from_ratio(args.lr_warmup_steps, args.lr_warmup_ratio, max_train_steps)
        if lr_warmup_steps > max_train_steps:
            logger.warning(f"The {lr_warmup_steps} warm-up steps exceed the {max_train_steps} training steps.")
        return cls(
            max_train_steps=max_train_steps,
            lr_warmup_steps=lr_warmup_steps,
            num_processes=num_processes,
            **{
                field.name: getattr(args, field.name)
                for field in fields(cls)
                if field.name not in ("max_train_steps", "lr_warmup_steps", "num_processes")
            },
        )


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    """
    What a run trains on, as its outputs describe it.

    Args:
        resolution (`int`):
            Image size of the training images (the tokenizer's).
        source (`str`, *optional*):
            The Hub dataset, image folder or token folder the examples come from.
        hub_id (`str`, *optional*):
            The Hub dataset behind the examples, for a model card's metadata; `None` for local data.
        description (`str`, *optional*):
            One phrase on the examples for the model card.
        validation (`str`, *optional*):
            What the validation metrics are computed on (e.g. "held-out images").
    """

    resolution: int
    source: str | None = None
    hub_id: str | None = None
    description: str | None = None
    validation: str | None = None


@dataclass(frozen=True, kw_only=True)
class TrainingRun:
    """
    One training run, resolved: read by the training loop, the outputs, the model card and `train_results.json`.

    Args:
        output_dir (`str`):
            The run's folder.
        seed (`int`):
            The seed of initialization, data order, augmentation and dropout.
        mixed_precision (`str`, *optional*):
            `"bf16"`, `"fp16"`, `"no"` or `None` (accelerate's default).
        schedule ([`TrainingSchedule`]):
            The run's length and its logging, validation and checkpoint steps.
        data ([`TrainingData`]):
            What it trains on.
        arguments (`Mapping`):
            The command line as parsed (kept read-only): the rest of the card's table of training arguments.
    """

    output_dir: str
    seed: int
    mixed_precision: str | None
    schedule: TrainingSchedule
    data: TrainingData
    arguments: Mapping[str, Any]

    def __post_init__(self):
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))

    def schedule_steps(self) -> dict[str, int | None]:
        """The step counts of the schedule as they ran (`train_results.json`'s `schedule`)."""
        return {"max_train_steps": self.schedule.max_train_steps, "lr_warmup_steps": self.schedule.lr_warmup_steps}

    def resolved_arguments(self) -> dict[str, Any]:
        """The values the run resolved, under the names of the arguments they stand for or add to."""
        return {
            **self.schedule_steps(),
            "num_processes": self.schedule.num_processes,
            "resolution": self.data.resolution,
        }

    def card_arguments(self) -> dict[str, Any]:
        """The model card's table of training arguments: the command line, with the resolved values in place."""
        return {**self.arguments, **self.resolved_arguments()}


@dataclass(frozen=True, kw_only=True)
class QuantizerOptions:
    """
    How a tokenizer's codebook trains.

    Args:
        recipe (`str`):
            The recipe the options default to.
        gradient (`str`):
            The quantizer's gradient (`VitVqganConfig.quantizer_gradient`).
        codebook_map (`str`):
            `"none"` (free codes) or `"linear"` (a learned linear map of frozen random codes).
        codebook_init (`str`):
            `"random"` or `"kmeans"` (k-means++ centers of the first batch's latents).
        entropy_weight (`float`):
            Weight of the codebook entropy penalty (`VitVqganConfig.codebook_entropy_weight`; 0: none).
        restart_steps (`int`, *optional*):
            Steps between dead-code restarts; `None`: no restart.
        restart_until (`float`):
            Fraction of the run after which restarts stop.
    """

    recipe: str
    gradient: str
    codebook_map: str
    codebook_init: str
    entropy_weight: float
    restart_steps: int | None
    restart_until: float

    def as_record(self) -> dict:
        """The options under their flag names (`train_results.json`'s `quantizer`); the end of restarts with them."""
        record = {
            "quantizer_recipe": self.recipe,
            "quantizer_gradient": self.gradient,
            "codebook_map": self.codebook_map,
            "codebook_init": self.codebook_init,
            "codebook_entropy_weight": self.entropy_weight,
            "codebook_restart_steps": self.restart_steps,
        }
        if self.restart_steps:
            record["codebook_restart_until"] = self.restart_until
        return record


@dataclass(frozen=True, kw_only=True)
class TokenizerTrainingRun(TrainingRun):
    """
    A [`TrainingRun`] of the ViT-VQGAN tokenizer.

    Args:
        loss_terms (`Mapping[str, float | None]`):
            The weight of every term of the generator loss; `None` for a term that is off (its network not built).
        quantizer ([`QuantizerOptions`]):
            How the codebook trains.
        discriminator_start_step (`int`, *optional*):
            The step at which the discriminator and the adversarial term start; `None` without them.
        discriminator_learning_rate (`float`):
            The discriminator's peak learning rate.
    """

    loss_terms: Mapping[str, float | None]
    quantizer: QuantizerOptions
    discriminator_start_step: int | None
    discriminator_learning_rate: float

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "loss_terms", MappingProxyType(dict(self.loss_terms)))

    def schedule_steps(self) -> dict[str, int | None]:
        return {**super().schedule_steps(), "discriminator_start_step": self.discriminator_start_step}

    def resolved_arguments(self) -> dict[str, Any]:
        # The loss terms as one row: which terms trained the model.
        terms = ", ".join(f"{name} {'off' if weight is None else weight}" for name, weight in self.loss_terms.items())
        return {
            **super().resolved_arguments(),
            **self.quantizer.as_record(),
            "discriminator_learning_rate": self.discriminator_learning_rate,
            "loss_terms": terms,
            "validation_source": self.data.validation,
        }


@dataclass(frozen=True, kw_only=True)
class VimTrainingRun(TrainingRun):
    """
    A [`TrainingRun`] of the VIM transformer.

    Args:
        lr_decay_start (`int`):
            The step at which the learning rate's exponential decay starts.
        on_the_fly (`bool`):
            Whether images are encoded by the frozen tokenizer in the loop (else: pretokenized ids).
        null_token_steps (`int`, *optional*, defaults to 0):
            Steps of fitting the null token after training, the transformer frozen ([`fit_null_token`]); 0: none.
    """

    lr_decay_start: int
    on_the_fly: bool
    null_token_steps: int = 0

    def schedule_steps(self) -> dict[str, int | None]:
        return {
            **super().schedule_steps(),
            "lr_decay_start": self.lr_decay_start,
            "null_token_steps": self.null_token_steps,
        }

    def resolved_arguments(self) -> dict[str, Any]:
        return {
            **super().resolved_arguments(),
            "on_the_fly": self.on_the_fly,
            "data_source": self.data.source,
            "data_hub_id": self.data.hub_id,
            "data_description": self.data.description,
        }


__all__ = [
    "QuantizerOptions",
    "TokenizerTrainingRun",
    "TrainingData",
    "TrainingRun",
    "TrainingSchedule",
    "VimTrainingRun",
    "steps_from_ratio",
]
