# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Checkpoint and resume helpers shared by the training scripts.

Checkpoints are `accelerator.save_state()` folders under `<output_dir>/checkpoints/checkpoint_<global_step>`, named
and rotated by accelerate (`ProjectConfiguration(automatic_checkpoint_naming=True, total_limit=N)`); the counter of
the automatic names is set to the global step before each save, so a folder's name says which step it holds. A
[`TrainingState`] registered with `accelerator.register_for_checkpointing` carries the step, the epoch and the
position inside the epoch, so a resumed run continues with the next batch (`accelerator.skip_first_batches`).
"""

import re
from dataclasses import asdict, dataclass
from pathlib import Path


CHECKPOINTS_FOLDER = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"checkpoint_(\d+)")


@dataclass
class TrainingState:
    """
    Progress counters saved in every checkpoint (register it with `accelerator.register_for_checkpointing`).

    Args:
        global_step (`int`, *optional*, defaults to 0):
            Optimizer steps done.
        epoch (`int`, *optional*, defaults to 0):
            Current epoch.
        batches_in_epoch (`int`, *optional*, defaults to 0):
            Micro-batches of `epoch` already consumed, per process.
        skipped_images (`int`, *optional*, defaults to 0):
            Unreadable images skipped so far, summed over processes.
        nonfinite_steps (`int`, *optional*, defaults to 0):
            Optimizer steps skipped because of a non-finite loss or gradient.
        consecutive_nonfinite_steps (`int`, *optional*, defaults to 0):
            Such steps in a row, up to the last step.
    """

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    skipped_images: int = 0
    nonfinite_steps: int = 0
    consecutive_nonfinite_steps: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state_dict: dict):
        for name, value in state_dict.items():
            setattr(self, name, value)


def list_checkpoints(output_dir: str) -> list[Path]:
    """
    The checkpoint folders of a run, oldest first.

    Args:
        output_dir (`str`):
            The run's output folder (accelerate's `project_dir`).

    Returns:
        `list[pathlib.Path]`: `<output_dir>/checkpoints/checkpoint_<step>` folders sorted by step.
    """
    folder = Path(output_dir, CHECKPOINTS_FOLDER)
    found = [
        (int(match.group(1)), path)
        for path in folder.glob("checkpoint_*")
        if (match := _CHECKPOINT_NAME.fullmatch(path.name))
    ]
    return [path for _, path in sorted(found)]


def save_checkpoint(accelerator, global_step: int) -> Path:
    """
    `accelerator.save_state()` into `<project_dir>/checkpoints/checkpoint_<global_step>`, rotated by accelerate's
    `total_limit`. Call it on every process (each saves its random states; FSDP gathers shards). Saving the same step
    twice is a no-op.

    Args:
        accelerator (`accelerate.Accelerator`):
            An accelerator built with `ProjectConfiguration(automatic_checkpoint_naming=True, ...)`.
        global_step (`int`):
            The step the checkpoint holds; it names the folder.

    Returns:
        `pathlib.Path`: the checkpoint folder.
    """
    path = Path(accelerator.project_dir, CHECKPOINTS_FOLDER, f"checkpoint_{global_step}")
    if path.is_dir():
        return path
    accelerator.project_configuration.iteration = global_step
    accelerator.save_state()
    return path


def resolve_checkpoint(resume_from_checkpoint: str | None, output_dir: str) -> Path | None:
    """
    The checkpoint folder named by a `--resume_from_checkpoint` value.

    Args:
        resume_from_checkpoint (`str`, *optional*):
            `"latest"` (the newest checkpoint of `output_dir`, or `None` when there is none: a fresh start), a
            checkpoint folder, or `None`.
        output_dir (`str`):
            The run's output folder.

    Returns:
        `pathlib.Path` or `None`.

    Raises:
        `ValueError`: when an explicit folder does not exist.
    """
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise ValueError(
            f"--resume_from_checkpoint {resume_from_checkpoint!r} is not a folder; pass `latest` or one of "
            f"{[str(path) for path in list_checkpoints(output_dir)] or 'the checkpoint folders of a run'}."
        )
    return path


__all__ = ["CHECKPOINTS_FOLDER", "TrainingState", "list_checkpoints", "resolve_checkpoint", "save_checkpoint"]
