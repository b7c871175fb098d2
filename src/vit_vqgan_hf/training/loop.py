# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The training loop of `examples/train_tokenizer.py` and `examples/train_vim.py`.

[`TrainingLoop`] runs optimizer steps until the last step of the run's schedule (`training.run.TrainingSchedule`): it
seeds each epoch, resumes inside an epoch with `accelerator.skip_first_batches`, counts skipped images and non-finite
steps, logs, validates and checkpoints when due, stops a run whose steps stay non-finite, and ends the run. The model's
own work is a plain function of the script, its training step: one micro-batch's forward and backward and, when
gradients sync, the optimizer steps, top to bottom in one place ([`TrainingStepOutput`]); the statistics of its logging
window and its validation are plain functions too.

A training step reads nothing back from the device. What the steps count (examples and skipped images, from the data
loader, on the host; whether each step was non-finite, and the scripts' sums, on the device) is read at logging steps,
at checkpoint steps (so that a checkpoint holds exact counters) and at the last step, all processes together.

Non-finite steps are handled on the device ([`clip_and_guard_gradients`]):

- Outside fp16, when the global norm of a step's gradients (after their all-reduce, so the same on every process) is
  not finite, the gradients are replaced by zeros after clipping: the batch contributes nothing. The optimizer still
  steps, so AdamW's moments decay and its momentum and weight decay apply; a finite step is computed exactly as
  without the guard.
- Under fp16, the gradient scaler skips a step with non-finite gradients by itself and needs to see them to lower its
  scale: the gradients are left as they are.
- A step counts as non-finite when a loss of one of its micro-batches (on any process) or, outside fp16, its gradient
  norm was not finite ([`not_finite`]). When the counters are read and `max_nonfinite_steps` steps in a row were
  non-finite, the run saves a checkpoint and stops with a `RuntimeError`, at most `logging_steps - 1` steps after the
  limit was reached.
"""

import dataclasses
import gc
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoint_files import state_name
from .checkpointing import CHECKPOINTS_FOLDER, TrainingState, load_checkpoint, save_checkpoint


logger = get_logger(__name__, log_level="INFO")


def build_accelerator(args) -> Accelerator:
    """
    The accelerator of a training run, configured from the script's flags.

    Args:
        args (`argparse.Namespace`):
            With `output_dir`, `logging_dir`, `checkpoints_total_limit`, `gradient_accumulation_steps`,
            `mixed_precision`, `report_to` and `seed`.

    Returns:
        `accelerate.Accelerator`: automatic checkpoint naming under `output_dir` (see
        [`~training.checkpointing.save_checkpoint`]), trackers logging to `output_dir/logging_dir`, and data loaders
        whose epoch `e` is shuffled with `seed + e` in every process.
    """
    # No `total_limit`: accelerate would delete old checkpoints before writing the new one, so a crash while saving
    # could leave none; `save_checkpoint` applies `checkpoints_total_limit` once the new one is complete.
    project_config = ProjectConfiguration(
        project_dir=args.output_dir,
        logging_dir=os.path.join(args.output_dir, args.logging_dir),
        automatic_checkpoint_naming=True,
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


def prepare_train_dataloader(
    accelerator, dataset, collate_fn, batch_size: int, shuffle: bool, num_workers: int, seed: int
) -> DataLoader:
    """
    The prepared training data loader.

    The loader has its own generator, seeded with `seed`: starting an epoch's iterator draws a base seed from the
    loader's generator, and drawing it from the global one (whose state a checkpoint restores, and which dropout, label
    dropout and dead-code restarts may use) would make a resumed run draw once more than the uninterrupted one.

    Args:
        accelerator (`accelerate.Accelerator`):
            The run's accelerator.
        dataset (`torch.utils.data.Dataset`):
            The training examples.
        collate_fn (`Callable`):
            Makes a batch, with a `skipped` count, of a list of examples.
        batch_size (`int`):
            Examples per process and micro-batch.
        shuffle (`bool`):
            Whether to shuffle (not a streamed dataset, which shuffles itself).
        num_workers (`int`):
            Data-loader worker processes.
        seed (`int`):
            The seed of the loader's generator.

    Returns:
        `torch.utils.data.DataLoader`: prepared by accelerate.
    """
    dataloader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )
    return accelerator.prepare(dataloader)


def clip_and_guard_gradients(
    accelerator, model: torch.nn.Module, max_grad_norm: float | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    Clip a model's gradients to a global norm and, outside fp16, replace them by zeros when that norm is not finite,
    on the device: no value is read back to the host. Call it once per optimizer step, when gradients sync.

    Args:
        accelerator (`accelerate.Accelerator`):
            The run's accelerator (its `clip_grad_norm_` unscales fp16 gradients and handles FSDP).
        model (`torch.nn.Module`):
            The prepared model.
        max_grad_norm (`float`, *optional*, defaults to `None`):
            The clipping norm; `None` or 0 computes the norm without clipping.

    Returns:
        `tuple[torch.Tensor, torch.Tensor | None]`: the global gradient norm before clipping, and whether it was not
        finite (a 0-dim boolean tensor), or `None` when the gradients were left as they are: under fp16, whose
        gradient scaler skips non-finite steps itself, or when the model has no gradients.
    """
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm or math.inf)
    gradients = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    if accelerator.scaler is not None or not gradients:
        return grad_norm, None
    nonfinite = ~torch.isfinite(grad_norm)
    for gradient in gradients:
        gradient.masked_fill_(nonfinite, 0.0)
    return grad_norm, nonfinite


def read_logs(logs: dict) -> dict[str, float]:
    """
    Logs as numbers, reading their tensors with one device-to-host copy per device.

    Args:
        logs (`dict`):
            Names to numbers or 0-dim tensors.

    Returns:
        `dict[str, float]`: in the same order.
    """
    names_by_device = {}
    for name, value in logs.items():
        if isinstance(value, torch.Tensor):
            names_by_device.setdefault(value.device, []).append(name)
    values = {}
    for names in names_by_device.values():
        stacked = torch.stack([logs[name].detach().reshape(()).to(torch.float64) for name in names])
        values.update(zip(names, stacked.tolist()))
    return {name: values[name] if name in values else float(value) for name, value in logs.items()}


@dataclass
class StepCounters:
    """
    What this process's optimizer steps add up to until the counters are next read: examples and skipped images
    (numbers from the data loader, on the host) and, for each step, whether it was non-finite (on the device).

    Args:
        examples (`int`, *optional*, defaults to 0):
            Examples trained on.
        skipped_images (`int`, *optional*, defaults to 0):
            Unreadable images the batches replaced or dropped.
        nonfinite (`list[torch.Tensor]`, *optional*, defaults to `[]`):
            One 0-dim boolean tensor per finished optimizer step.
        step_nonfinite (`torch.Tensor`, *optional*, defaults to `None`):
            Whether the optimizer step being accumulated is non-finite so far.
    """

    examples: int = 0
    skipped_images: int = 0
    nonfinite: list[torch.Tensor] = field(default_factory=list)
    step_nonfinite: torch.Tensor | None = None

    def add_nonfinite(self, flag: torch.Tensor):
        """Mark the current step as non-finite where the 0-dim boolean `flag` is set."""
        self.step_nonfinite = flag if self.step_nonfinite is None else self.step_nonfinite | flag

    def end_step(self, device):
        """Close the current optimizer step."""
        flag = self.step_nonfinite
        self.nonfinite.append(flag if flag is not None else torch.zeros((), dtype=torch.bool, device=device))
        self.step_nonfinite = None

    def read(self, accelerator) -> tuple[int, int, list[bool]]:
        """
        Sum the counters over the processes with one gather and one device-to-host copy, and start again from zero.

        Returns:
            `tuple[int, int, list[bool]]`: the examples, the skipped images and, for each step since the last read,
            whether it was non-finite on any process.
        """
        numbers = torch.tensor([self.examples, self.skipped_images], device=accelerator.device)
        flags = torch.stack(self.nonfinite).long() if self.nonfinite else numbers.new_zeros(0)
        gathered = accelerator.gather(torch.cat([numbers, flags])).reshape(accelerator.num_processes, -1)
        values = torch.cat([gathered[:, :2].sum(dim=0), gathered[:, 2:].amax(dim=0)]).tolist()
        self.examples, self.skipped_images, self.nonfinite = 0, 0, []
        return values[0], values[1], [bool(flag) for flag in values[2:]]


@dataclass
class LoggingWindow:
    """
    The optimizer steps since the last logging step.

    Args:
        start (`float`, *optional*):
            When the window started, in `time.perf_counter()` seconds; by default, now.
        examples (`int`, *optional*, defaults to 0):
            Examples of every process read from [`StepCounters`] since then.
    """

    start: float = field(default_factory=time.perf_counter)
    examples: int = 0


@dataclass
class TrainingStepOutput:
    """
    What one micro-batch step of a training script returns to [`TrainingLoop`].

    Args:
        nonfinite (`torch.Tensor`):
            0-dim boolean tensor, on the device: whether a loss or a gradient norm of the micro-batch was not finite.
        logs (`dict`, *optional*):
            The logs of the optimizer step the micro-batch ended (tensors stay on the device); `None` when gradients
            did not sync.
    """

    nonfinite: torch.Tensor
    logs: dict | None = None


def not_finite(*values: torch.Tensor | None) -> torch.Tensor:
    """Whether any of the tensors (losses, or flags of [`clip_and_guard_gradients`]; `None` skipped) is not finite, as a
    0-dim boolean tensor on their device: no value is read back to the host."""
    flags = [
        value if value.dtype == torch.bool else ~torch.isfinite(value.detach())
        for value in values
        if value is not None
    ]
    flag = flags[0].reshape(())
    for other in flags[1:]:
        flag = flag | other.reshape(())
    return flag


class TrainingLoop:
    """
    The optimizer-step loop of a training script: epochs, resuming inside an epoch, the step counters, logging,
    validation, checkpoints and the stop after too many non-finite steps. The model's own work comes in as plain
    functions: `training_step` (one micro-batch: forward, backward and, when gradients sync, the optimizer steps),
    and optionally `window_logs` and `validate`. Register the states to checkpoint and resume with
    [`~TrainingLoop.start`], then call [`~TrainingLoop.train`] and, after the outputs are saved,
    [`~TrainingLoop.end_training`].

    Args:
        run ([`~training.run.TrainingRun`]):
            The resolved run: its `schedule` and `output_dir`.
        accelerator (`accelerate.Accelerator`):
            From [`build_accelerator`].
        parts (`dataclass`):
            The prepared objects of the run, among them `train_dataset` and `train_dataloader` (from
            [`prepare_train_dataloader`]); [`~TrainingLoop.end_training`] releases them all.
        training_step (`Callable[[dict, int], TrainingStepOutput]`):
            One micro-batch at optimizer step `global_step` (the steps done so far), inside `accelerator.accumulate`.
        window_logs (`Callable[[int], dict]`, *optional*):
            The statistics of the logging window, summed over the processes (every process calls it at a logging step),
            given the window's number of examples over all processes. Tensors are read by the loop.
        validate (`Callable[[int], None]`, *optional*):
            Validation at a step (every process calls it every `validation_steps` steps but the last).
        examples_name (`str`, *optional*, defaults to `"examples"`):
            The name of the examples in the throughput log `train/<examples_name>_per_second`.
        progress_logs (`dict[str, str]`, *optional*):
            Progress-bar entries: short name -> log name; by default the loss `train/loss`.
    """

    def __init__(
        self,
        run,
        accelerator,
        parts,
        training_step,
        window_logs=None,
        validate=None,
        examples_name: str = "examples",
        progress_logs: dict[str, str] | None = None,
    ):
        self.run = run
        self.schedule = run.schedule
        self.accelerator = accelerator
        self.parts = parts
        self.training_step = training_step
        self.window_logs = window_logs or (lambda examples: {})
        self.validate = validate
        self.examples_name = examples_name
        self.progress_logs = progress_logs if progress_logs is not None else {"loss": "train/loss"}
        self.state = TrainingState()
        self.counters = StepCounters()
        self.window = LoggingWindow()
        # The last logged values, as numbers.
        self.last_logs = {}
        self.progress = None
        # Name -> object with `state_dict()` / `load_state_dict()`: the states checkpoints hold besides accelerate's.
        self.checkpoint_states = {}

    def start(self, project_name: str, checkpoint: Path | None, *states):
        """
        Take the training state and `states` (`None` entries, optional states that are off, left out) into every
        checkpoint, each under its class name in snake case (saved as JSON and safetensors, never pickled), start the
        trackers with the run's arguments (resolved values in place) as their config, and resume from `checkpoint`
        (`None`: a fresh start).
        """
        for state in (self.state, *states):
            if state is not None:
                name = state_name(state)
                if name in self.checkpoint_states:
                    raise ValueError(f"Two checkpoint states of the same class {type(state).__name__}.")
                self.checkpoint_states[name] = state
        config = {
            name: value if isinstance(value, (int, float, str, bool)) else str(value)
            for name, value in self.run.card_arguments().items()
        }
        self.accelerator.init_trackers(project_name, config=config)
        if checkpoint is not None:
            load_checkpoint(self.accelerator, checkpoint, self.state, self.checkpoint_states)

    def train(self):
        """Run optimizer steps until the schedule's last, resuming inside an epoch where the checkpoint left off."""
        schedule, accelerator, state, parts = self.schedule, self.accelerator, self.state, self.parts
        self.progress = tqdm(
            total=schedule.max_train_steps,
            initial=state.global_step,
            desc="steps",
            disable=not accelerator.is_main_process,
        )
        logger.info(
            f"Training {schedule.max_train_steps} optimizer steps of {schedule.train_batch_size} {self.examples_name} x "
            f"{accelerator.num_processes} processes x {schedule.gradient_accumulation_steps} accumulated micro-batches"
            + (f", from step {state.global_step}." if state.global_step else ".")
        )
        self.window = LoggingWindow()
        while state.global_step < schedule.max_train_steps:
            # Order and augmentation of epoch e depend on (seed, e) only; both are set before the iterator starts.
            parts.train_dataloader.set_epoch(state.epoch)
            if hasattr(parts.train_dataset, "set_epoch"):
                parts.train_dataset.set_epoch(state.epoch)
            dataloader = parts.train_dataloader
            if state.batches_in_epoch:
                dataloader = accelerator.skip_first_batches(dataloader, state.batches_in_epoch)
            for batch in dataloader:
                state.batches_in_epoch += 1
                self.counters.examples += next(value for value in batch.values() if torch.is_tensor(value)).shape[0]
                self.counters.skipped_images += batch["skipped"]
                output = self.training_step(batch, state.global_step)
                self.counters.add_nonfinite(output.nonfinite)
                if accelerator.sync_gradients:
                    self.after_optimizer_step(output.logs)
                    if state.global_step >= schedule.max_train_steps:
                        break
            else:
                state.epoch += 1
                state.batches_in_epoch = 0
        self.progress.close()

    def after_optimizer_step(self, step_logs: dict):
        """Count the step; read the counters, log, validate and checkpoint when due."""
        schedule, state = self.schedule, self.state
        state.global_step += 1
        self.progress.update(1)
        self.counters.end_step(self.accelerator.device)
        last = state.global_step >= schedule.max_train_steps
        logging_due = state.global_step % schedule.logging_steps == 0 or last
        checkpoint_due = bool(schedule.checkpointing_steps) and state.global_step % schedule.checkpointing_steps == 0
        if logging_due or checkpoint_due:
            self.read_counters()
        if logging_due:
            self.log(step_logs)
        # Validation first: the checkpoint of the same step then holds what it changed (random states, the best loss so
        # far), which a run resumed from that checkpoint would not compute again. The last step is validated after.
        validation_due = schedule.validation_steps and state.global_step % schedule.validation_steps == 0
        if validation_due and not last and self.validate is not None:
            self.validate(state.global_step)
        if checkpoint_due:
            self.save_checkpoint()

    def save_checkpoint(self):
        """Checkpoint the run at its current step, keeping at most `checkpoints_total_limit` checkpoints."""
        limit = self.schedule.checkpoints_total_limit
        save_checkpoint(self.accelerator, self.state.global_step, self.checkpoint_states, limit)

    def read_counters(self):
        """Add every process's counters to the training state; stop when too many steps in a row were non-finite."""
        state = self.state
        examples, skipped_images, nonfinite = self.counters.read(self.accelerator)
        self.window.examples += examples
        state.skipped_images += skipped_images
        streak, streak_end = 0, None
        for step, step_nonfinite in enumerate(nonfinite, start=state.global_step - len(nonfinite) + 1):
            if not step_nonfinite:
                state.consecutive_nonfinite_steps = 0
                continue
            state.nonfinite_steps += 1
            state.consecutive_nonfinite_steps += 1
            logger.warning(f"Non-finite loss or gradient at step {step}: its gradients were not applied.")
            if state.consecutive_nonfinite_steps >= streak:
                streak, streak_end = state.consecutive_nonfinite_steps, step
        if streak >= self.schedule.max_nonfinite_steps:
            self.save_checkpoint()
            self.end_training()
            raise RuntimeError(
                f"{streak} optimizer steps in a row (up to step {streak_end}) had a non-finite loss or gradient, so "
                f"training stopped at step {state.global_step} (`max_nonfinite_steps={self.schedule.max_nonfinite_steps}`, "
                f"checked at logging steps). Its checkpoint is in "
                f"{os.path.join(self.run.output_dir, CHECKPOINTS_FOLDER)}; lower the `learning_rate`, clip the "
                "gradients (`max_grad_norm`), or train in `mixed_precision=bf16` instead of fp16 before resuming."
            )

    def log(self, step_logs: dict):
        """Log the step's logs, the window's statistics and the counters (every process takes part); a new window."""
        state = self.state
        logs = read_logs({**step_logs, **self.window_logs(self.window.examples)})
        elapsed = time.perf_counter() - self.window.start
        logs[f"train/{self.examples_name}_per_second"] = self.window.examples / max(elapsed, 1e-9)
        logs.update({"train/skipped_images": state.skipped_images, "train/nonfinite_steps": state.nonfinite_steps})
        self.accelerator.log(logs, step=state.global_step)
        self.progress.set_postfix({short: f"{logs[name]:.4g}" for short, name in self.progress_logs.items()})
        self.last_logs = logs
        self.window = LoggingWindow()

    def end_training(self):
        """Release the prepared objects, then end the trackers and destroy the process group."""
        # A DistributedDataParallel wrapper freed after `destroy_process_group` joins Gloo's threads in its reducer's
        # destructor while holding the GIL, which hangs a process whose Gloo worker still needs the GIL: free it first.
        for part in dataclasses.fields(self.parts):
            setattr(self.parts, part.name, None)
        self.accelerator.free_memory()
        gc.collect()
        self.accelerator.end_training()


def save_train_results(run, state, results: dict, saved: str):
    """
    Write `train_results.json` into the run's `output_dir`: the run's counters (`state.state_dict()`), `results`, and
    under `schedule` the step counts of the run's schedule as they ran; then log what was saved (`saved`) and how many
    reads of unreadable images were skipped.
    """
    record = {**state.state_dict(), **results, "schedule": run.schedule_steps()}
    Path(run.output_dir, "train_results.json").write_text(json.dumps(record, indent=2) + "\n")
    logger.info(
        f"Saved {saved} to {run.output_dir}; {state.skipped_images} reads of unreadable images skipped (once per "
        "epoch for each such file)."
    )


__all__ = [
    "StepCounters",
    "TrainingLoop",
    "TrainingStepOutput",
    "build_accelerator",
    "clip_and_guard_gradients",
    "not_finite",
    "prepare_train_dataloader",
    "read_logs",
    "save_train_results",
]
