"""The resolved description of a training run (`vit_vqgan_hf.training.run`): steps from epochs and ratios, read-only
once built, and the card's arguments with the resolved values in place."""

import argparse
import dataclasses

import pytest

from vit_vqgan_hf.training.run import QuantizerOptions, TokenizerTrainingRun, TrainingData, TrainingSchedule


def schedule_args(**overrides) -> argparse.Namespace:
    flags = {
        "max_train_steps": None,
        "num_train_epochs": 2,
        "lr_warmup_steps": None,
        "lr_warmup_ratio": 0.1,
        "train_batch_size": 4,
        "gradient_accumulation_steps": 3,
        "logging_steps": 1,
        "checkpointing_steps": None,
        "checkpoints_total_limit": None,
        "validation_steps": None,
        "max_nonfinite_steps": 10,
        "max_grad_norm": None,
    }
    return argparse.Namespace(**{**flags, **overrides})


def test_the_schedule_counts_optimizer_steps_of_the_epochs_and_leaves_the_arguments_alone():
    args = schedule_args()
    before = dict(vars(args))
    # 10 micro-batches per epoch, 3 per optimizer step: 4 steps per epoch (the last one shorter), 2 epochs.
    schedule = TrainingSchedule.resolve(args, num_batches=10, num_processes=2)
    assert (schedule.max_train_steps, schedule.lr_warmup_steps, schedule.num_processes) == (8, 1, 2)
    assert vars(args) == before
    # Explicit steps win over epochs and ratios.
    schedule = TrainingSchedule.resolve(schedule_args(max_train_steps=50, lr_warmup_steps=7), None, 1)
    assert (schedule.max_train_steps, schedule.lr_warmup_steps) == (50, 7)
    with pytest.raises(ValueError, match="The training dataset is empty"):
        TrainingSchedule.resolve(args, num_batches=0, num_processes=1)
    with pytest.raises(ValueError, match="needs `max_train_steps`"):
        TrainingSchedule.resolve(args, num_batches=None, num_processes=1)


def test_a_run_is_read_only_and_its_card_shows_the_resolved_values():
    args = schedule_args(learning_rate=1e-4)
    schedule = TrainingSchedule.resolve(args, num_batches=10, num_processes=1)
    quantizer = QuantizerOptions(
        recipe="paper", gradient="straight_through", codebook_map="none", codebook_init="random", entropy_weight=0.0,
        restart_steps=None, restart_until=1.0,
    )  # fmt: skip
    run = TokenizerTrainingRun(
        output_dir="out",
        seed=0,
        mixed_precision=None,
        schedule=schedule,
        data=TrainingData(resolution=32, validation="held-out images"),
        arguments=vars(args),
        loss_terms={"vq": 1.0, "l2": 1.0, "adversarial": None},
        quantizer=quantizer,
        discriminator_start_step=None,
        discriminator_learning_rate=1e-4,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.discriminator_start_step = 3
    with pytest.raises(TypeError):
        run.arguments["max_train_steps"] = 3
    with pytest.raises(TypeError):
        run.loss_terms["l2"] = 0.5
    card = run.card_arguments()
    assert card["max_train_steps"] == 8 and card["resolution"] == 32 and card["learning_rate"] == 1e-4
    assert card["loss_terms"] == "vq 1.0, l2 1.0, adversarial off" and "codebook_restart_until" not in card
    assert run.schedule_steps() == {"max_train_steps": 8, "lr_warmup_steps": 1, "discriminator_start_step": None}
