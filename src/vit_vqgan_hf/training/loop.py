# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The training loop of `examples/train_tokenizer.py` and `examples/train_vim.py`.

[`TrainingLoop`] runs optimizer steps until `--max_train_steps`: it seeds each epoch, resumes inside an epoch with
`accelerator.skip_first_batches`, counts skipped images and non-finite steps, logs, validates and checkpoints when
due, stops a run whose steps stay non-finite, and ends the run. A script subclasses it with its micro-batch step
(forward, backward and, when gradients sync, the optimizer steps), the statistics of its logging window and its
validation.

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
  norm was not finite. When the counters are read and `--max_nonfinite_steps` steps in a row were non-finite, the run
  saves a checkpoint and stops with a `RuntimeError`, at most `--logging_steps - 1` steps after the limit was reached.
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

# What a failed write of a run's final outputs leaves: `OutputWriteError`'s note in the training scripts.
FINAL_OUTPUTS_PARTIAL = "The checkpoints are intact: free some space and resume with --resume_from_checkpoint latest."


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
    # could leave none; `save_checkpoint` applies `--checkpoints_total_limit` once the new one is complete.
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


def prepare_train_dataloader(args, accelerator, dataset, collate_fn) -> DataLoader:
    """
    The prepared training data loader; fills in `args.max_train_steps` from `args.num_train_epochs` when unset, and
    `args.lr_warmup_steps` from `args.lr_warmup_ratio` ([`steps_from_ratio`]).

    The loader has its own generator, seeded with `args.seed`: starting an epoch's iterator draws a base seed from the
    loader's generator, and drawing it from the global one (whose state a checkpoint restores, and which dropout, label
    dropout and dead-code restarts may use) would make a resumed run draw once more than the uninterrupted one.

    Args:
        args (`argparse.Namespace`):
            With `train_batch_size`, `streaming`, `dataloader_num_workers`, `max_train_steps`, `num_train_epochs`,
            `gradient_accumulation_steps`, `lr_warmup_steps`, `lr_warmup_ratio` and `seed`.
        accelerator (`accelerate.Accelerator`):
            The run's accelerator.
        dataset (`torch.utils.data.Dataset`):
            The training examples (shuffled unless streamed).
        collate_fn (`Callable`):
            Makes a batch, with a `skipped` count, of a list of examples.

    Returns:
        `torch.utils.data.DataLoader`: prepared by accelerate.

    Raises:
        `ValueError`: when the dataset is empty and the run counts epochs.
    """
    dataloader = DataLoader(
        dataset,
        batch_size=args.train_batch_size,
        shuffle=not args.streaming,
        collate_fn=collate_fn,
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    dataloader = accelerator.prepare(dataloader)
    if args.max_train_steps is None:
        if len(dataloader) == 0:
            raise ValueError("The training dataset is empty.")
        args.max_train_steps = args.num_train_epochs * math.ceil(len(dataloader) / args.gradient_accumulation_steps)
    args.lr_warmup_steps = steps_from_ratio(args.lr_warmup_steps, args.lr_warmup_ratio, args.max_train_steps)
    if args.lr_warmup_steps > args.max_train_steps:
        logger.warning(f"--lr_warmup_steps {args.lr_warmup_steps} exceeds the {args.max_train_steps} training steps.")
    return dataloader


def steps_from_ratio(steps: int | None, ratio: float, max_train_steps: int) -> int:
    """
    A schedule's step count: `steps` when given (an explicit flag), else `ratio` of the run's `max_train_steps`,
    rounded. The scripts' defaults are the paper's steps divided by the paper's run length, so the paper's command
    gets the paper's steps and a run of any other length gets the same shape of schedule.
    """
    return steps if steps is not None else round(ratio * max_train_steps)


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


class TrainingLoop:
    """
    The optimizer-step loop of a training script, subclassed by each script with [`~TrainingLoop.train_micro_batch`],
    and optionally [`~TrainingLoop.window_logs`] and [`~TrainingLoop.validate`]. Register the states to checkpoint and
    resume with [`~TrainingLoop.start`], then call [`~TrainingLoop.train`] and, after the outputs are saved,
    [`~TrainingLoop.end_training`].

    Args:
        args (`argparse.Namespace`):
            The script's arguments: `max_train_steps`, `train_batch_size`, `gradient_accumulation_steps`,
            `logging_steps`, `checkpointing_steps`, `validation_steps`, `max_nonfinite_steps`, `max_grad_norm` and
            `output_dir`.
        accelerator (`accelerate.Accelerator`):
            From [`build_accelerator`].
        parts (`dataclass`):
            The prepared objects of the run, among them `train_dataset` and `train_dataloader` (from
            [`prepare_train_dataloader`]); [`~TrainingLoop.end_training`] releases them all.
    """

    # The name of the examples in the throughput log `train/<examples_name>_per_second`.
    examples_name = "examples"
    # Progress-bar entries: short name -> log name.
    progress_logs = {"loss": "train/loss"}

    def __init__(self, args, accelerator, parts):
        self.args = args
        self.accelerator = accelerator
        self.parts = parts
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
        trackers with the arguments as their config, and resume from `checkpoint` (`None`: a fresh start).
        """
        for state in (self.state, *states):
            if state is not None:
                name = state_name(state)
                if name in self.checkpoint_states:
                    raise ValueError(f"Two checkpoint states of the same class {type(state).__name__}.")
                self.checkpoint_states[name] = state
        config = {
            name: value if isinstance(value, (int, float, str, bool)) else str(value)
            for name, value in vars(self.args).items()
        }
        self.accelerator.init_trackers(project_name, config=config)
        if checkpoint is not None:
            load_checkpoint(self.accelerator, checkpoint, self.state, self.checkpoint_states)

    def train_micro_batch(self, batch: dict) -> dict | None:
        """
        Forward and backward of one micro-batch inside `accelerator.accumulate`; when gradients sync, clip them with
        [`~TrainingLoop.clip_gradients`] and step the optimizers. Pass each loss to [`~TrainingLoop.record_loss`].
        Returns the logs of the optimizer step it ended (tensors stay on the device), or `None`.
        """
        raise NotImplementedError

    def window_logs(self, examples: int) -> dict:
        """
        The script's statistics of the logging window, summed over the processes (every process calls it at a logging
        step); `examples` is the window's number of examples over all processes. Tensors are read by the caller.
        """
        return {}

    def validate(self):
        """Validate at `state.global_step` (every process calls it every `--validation_steps` steps but the last)."""

    def record_loss(self, loss: torch.Tensor):
        """Count the current optimizer step as non-finite if `loss` is not finite (on the device)."""
        self.counters.add_nonfinite(~torch.isfinite(loss.detach()))

    def clip_gradients(self, model: torch.nn.Module) -> torch.Tensor:
        """[`clip_and_guard_gradients`] with `--max_grad_norm`, counting a non-finite norm; returns the norm."""
        grad_norm, nonfinite = clip_and_guard_gradients(self.accelerator, model, self.args.max_grad_norm)
        if nonfinite is not None:
            self.counters.add_nonfinite(nonfinite)
        return grad_norm

    def train(self):
        """Run optimizer steps until `--max_train_steps`, resuming inside an epoch where the checkpoint left off."""
        args, accelerator, state, parts = self.args, self.accelerator, self.state, self.parts
        self.progress = tqdm(
            total=args.max_train_steps,
            initial=state.global_step,
            desc="steps",
            disable=not accelerator.is_main_process,
        )
        logger.info(
            f"Training {args.max_train_steps} optimizer steps of {args.train_batch_size} {self.examples_name} x "
            f"{accelerator.num_processes} processes x {args.gradient_accumulation_steps} accumulated micro-batches"
            + (f", from step {state.global_step}." if state.global_step else ".")
        )
        self.window = LoggingWindow()
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
                self.counters.examples += next(value for value in batch.values() if torch.is_tensor(value)).shape[0]
                self.counters.skipped_images += batch["skipped"]
                step_logs = self.train_micro_batch(batch)
                if accelerator.sync_gradients:
                    self.after_optimizer_step(step_logs)
                    if state.global_step >= args.max_train_steps:
                        break
            else:
                state.epoch += 1
                state.batches_in_epoch = 0
        self.progress.close()

    def after_optimizer_step(self, step_logs: dict):
        """Count the step; read the counters, log, validate and checkpoint when due."""
        args, state = self.args, self.state
        state.global_step += 1
        self.progress.update(1)
        self.counters.end_step(self.accelerator.device)
        last = state.global_step >= args.max_train_steps
        logging_due = state.global_step % args.logging_steps == 0 or last
        checkpoint_due = bool(args.checkpointing_steps) and state.global_step % args.checkpointing_steps == 0
        if logging_due or checkpoint_due:
            self.read_counters()
        if logging_due:
            self.log(step_logs)
        # Validation first: the checkpoint of the same step then holds what it changed (random states, the best loss so
        # far), which a run resumed from that checkpoint would not compute again. The last step is validated after.
        if args.validation_steps and state.global_step % args.validation_steps == 0 and not last:
            self.validate()
        if checkpoint_due:
            self.save_checkpoint()

    def save_checkpoint(self):
        """Checkpoint the run at its current step, keeping at most `--checkpoints_total_limit` checkpoints."""
        limit = self.args.checkpoints_total_limit
        save_checkpoint(self.accelerator, self.state.global_step, self.checkpoint_states, limit)

    def read_counters(self):
        """Add every process's counters to the training state; stop when too many steps in a row were non-finite."""
        args, state = self.args, self.state
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
        if streak >= args.max_nonfinite_steps:
            self.save_checkpoint()
            self.end_training()
            raise RuntimeError(
                f"{streak} optimizer steps in a row (up to step {streak_end}) had a non-finite loss or gradient, so "
                f"training stopped at step {state.global_step} (--max_nonfinite_steps {args.max_nonfinite_steps}, "
                f"checked at logging steps). Its checkpoint is in "
                f"{os.path.join(args.output_dir, CHECKPOINTS_FOLDER)}; lower --learning_rate, clip with "
                "--max_grad_norm, or use --mixed_precision bf16 instead of fp16 before resuming."
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


def save_train_results(args, state, results: dict, schedule: tuple[str, ...], saved: str):
    """
    Write `train_results.json` into `args.output_dir`: the run's counters (`state.state_dict()`), `results`, and under
    `schedule` the resolved step counts of the `args` it names; then log what was saved (`saved`) and how many reads
    of unreadable images were skipped.
    """
    record = {**state.state_dict(), **results, "schedule": {name: getattr(args, name) for name in schedule}}
    Path(args.output_dir, "train_results.json").write_text(json.dumps(record, indent=2) + "\n")
    logger.info(
        f"Saved {saved} to {args.output_dir}; {state.skipped_images} reads of unreadable images skipped (once per "
        "epoch for each such file)."
    )


__all__ = [
    "FINAL_OUTPUTS_PARTIAL",
    "StepCounters",
    "TrainingLoop",
    "build_accelerator",
    "clip_and_guard_gradients",
    "prepare_train_dataloader",
    "read_logs",
    "save_train_results",
    "steps_from_ratio",
]
