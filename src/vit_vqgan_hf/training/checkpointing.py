# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Checkpoint and resume helpers shared by the training scripts.

Checkpoints are `accelerator.save_state()` folders under `<output_dir>/checkpoints/checkpoint_<global_step>`, named
by accelerate (`ProjectConfiguration(automatic_checkpoint_naming=True)`); the counter of the automatic names is set to
the global step before each save, so a folder's name says which step it holds. The states this package adds (a
[`TrainingState`] with the step, the epoch and the position inside the epoch, so a resumed run continues with the
next batch; the EMA; the best validation loss) are saved beside accelerate's files as JSON and safetensors, never
pickled, and a checkpoint is checked before it is loaded ([`~training.checkpoint_files.check_checkpoint_files`]):
resuming from someone else's checkpoint runs none of their code.

A save can be interrupted at any point without losing the last complete checkpoint: accelerate writes straight into
the new folder, [`save_checkpoint`] then syncs its files to the disk and writes [`CHECKPOINT_COMPLETE_FILE`] last,
and only then deletes the checkpoints beyond `checkpoints_total_limit`. `"latest"` skips folders without the
marker, and saving the same step again replaces them.
"""

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..utils.file_writes import report_write_errors, sync_folder, sync_tree, write_text_atomically
from .checkpoint_files import check_checkpoint_files, load_training_states, save_training_states


logger = logging.getLogger(__name__)

CHECKPOINTS_FOLDER = "checkpoints"
# Written by the main process after every process has saved: a checkpoint folder without it is incomplete.
CHECKPOINT_COMPLETE_FILE = "checkpoint_complete.json"
_CHECKPOINT_NAME = re.compile(r"checkpoint_(\d+)")


@dataclass
class TrainingState:
    """
    Progress counters saved in every checkpoint (as JSON, with the states passed to [`save_checkpoint`]).

    Args:
        global_step (`int`, *optional*, defaults to 0):
            Optimizer steps done.
        epoch (`int`, *optional*, defaults to 0):
            Current epoch.
        batches_in_epoch (`int`, *optional*, defaults to 0):
            Micro-batches of `epoch` already consumed, per process.
        skipped_images (`int`, *optional*, defaults to 0):
            Reads of unreadable images skipped so far, summed over processes: a file counts once per epoch.
        nonfinite_steps (`int`, *optional*, defaults to 0):
            Optimizer steps that did not apply their gradients because of a non-finite loss or gradient norm.
        consecutive_nonfinite_steps (`int`, *optional*, defaults to 0):
            Such steps in a row, up to the last step.

    The training loop ([`~training.loop.TrainingLoop`]) adds the last three up on the device and into this state at
    logging and checkpoint steps, so a checkpoint holds them exactly.
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
        # Only the counters: the saved state is a checkpoint's JSON, which may come from someone else.
        if unknown := set(state_dict) - {field.name for field in fields(self)}:
            raise ValueError(f"The saved training state has entries this version does not know: {sorted(unknown)}.")
        for name, value in state_dict.items():
            setattr(self, name, value)


def list_checkpoints(output_dir: str, complete_only: bool = True) -> list[Path]:
    """
    The checkpoint folders of a run, oldest first.

    Args:
        output_dir (`str`):
            The run's output folder (accelerate's `project_dir`).
        complete_only (`bool`, *optional*, defaults to `True`):
            Leave out folders whose save did not finish (no [`CHECKPOINT_COMPLETE_FILE`]: a run killed while saving).

    Returns:
        `list[pathlib.Path]`: `<output_dir>/checkpoints/checkpoint_<step>` folders sorted by step.
    """
    folder = Path(output_dir, CHECKPOINTS_FOLDER)
    found = [
        (int(match.group(1)), path)
        for path in folder.glob("checkpoint_*")
        if (match := _CHECKPOINT_NAME.fullmatch(path.name)) and (is_complete(path) or not complete_only)
    ]
    return [path for _, path in sorted(found)]


def is_complete(checkpoint: Path) -> bool:
    """Whether a checkpoint folder's save finished: its [`CHECKPOINT_COMPLETE_FILE`] is written last."""
    return Path(checkpoint, CHECKPOINT_COMPLETE_FILE).is_file()


def save_checkpoint(accelerator, global_step: int, states: dict | None = None, total_limit: int | None = None) -> Path:
    """
    `accelerator.save_state()` into `<project_dir>/checkpoints/checkpoint_<global_step>` with `states` saved beside
    it as JSON and safetensors; then, once every process has saved, the files are synced to the disk,
    [`CHECKPOINT_COMPLETE_FILE`] is written (a folder without it is the remains of an interrupted save, which
    `"latest"` skips), and only then are older checkpoints beyond `total_limit` deleted: a crash at any point leaves
    the last complete checkpoint in place. Call it on every process (each saves its random states; FSDP gathers
    shards). A folder of the same step that is already there (an interrupted save, or a step of the run's abandoned
    continuation) is replaced.

    Args:
        accelerator (`accelerate.Accelerator`):
            An accelerator built with `ProjectConfiguration(automatic_checkpoint_naming=True, total_limit=None)`
            (accelerate's own `total_limit` deletes old checkpoints before the new one is written).
        global_step (`int`):
            The step the checkpoint holds; it names the folder.
        states (`dict`, *optional*, defaults to `None`):
            Name -> an object with `state_dict()` (see
            [`~training.checkpoint_files.save_training_states`]), saved by the main process.
        total_limit (`int`, *optional*, defaults to `None`):
            Keep at most this many complete checkpoints; `None` keeps all.

    Returns:
        `pathlib.Path`: the checkpoint folder.

    Raises:
        [`~utils.file_writes.OutputWriteError`]: when a write fails (a full disk), naming the folder and the free space.
    """
    path = Path(accelerator.project_dir, CHECKPOINTS_FOLDER, f"checkpoint_{global_step}")
    if accelerator.is_main_process and path.exists():
        shutil.rmtree(path)
    # Unconditional: a process that looked after the removal would otherwise skip the barrier the others wait at.
    accelerator.wait_for_everyone()
    accelerator.project_configuration.iteration = global_step
    partial = f"The incomplete folder {path} has no {CHECKPOINT_COMPLETE_FILE}, so `latest` skips it."
    with report_write_errors(path, "the checkpoint", partial):
        accelerator.save_state()
        if accelerator.is_main_process:
            save_training_states(path, states or {})
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with report_write_errors(path, "the checkpoint", partial):
            sync_tree(path)
            write_text_atomically(path / CHECKPOINT_COMPLETE_FILE, json.dumps({"global_step": global_step}) + "\n")
        if total_limit is not None:
            remove_old_checkpoints(accelerator.project_dir, total_limit)
    return path


def remove_old_checkpoints(output_dir: str, total_limit: int):
    """
    Delete the oldest complete checkpoints of `output_dir` beyond the newest `total_limit`, and the incomplete
    folders older than the newest complete one (remains of interrupted saves). A folder's completion marker is removed
    (and the removal synced) before the rest, so a deletion cut short leaves an incomplete folder, never a damaged
    checkpoint that looks complete.
    """
    complete = list_checkpoints(output_dir)
    if not complete:
        return
    newest = _step(complete[-1])
    doomed = complete[: max(len(complete) - total_limit, 0)]
    doomed += [path for path in list_checkpoints(output_dir, complete_only=False) if not is_complete(path)]
    for path in sorted(doomed, key=_step):
        if _step(path) >= newest:
            continue
        marker = path / CHECKPOINT_COMPLETE_FILE
        if marker.exists():
            marker.unlink()
            sync_folder(path)
        shutil.rmtree(path)


def resolve_checkpoint(resume_from_checkpoint: str | None, output_dir: str) -> Path | None:
    """
    The checkpoint folder named by a `resume_from_checkpoint` value, checked before any compute. Its errors name
    the arguments in backticks (`cli.in_flag_terms` turns them into the flags of a script).

    Args:
        resume_from_checkpoint (`str`, *optional*):
            `"latest"` (the newest complete checkpoint of `output_dir`, or `None` when there is none: a fresh start),
            a checkpoint folder, or `None` (a fresh start).
        output_dir (`str`):
            The run's output folder.

    Returns:
        `pathlib.Path` or `None`.

    Raises:
        `ValueError`: when an explicit folder does not exist or its save did not finish; when `"latest"` finds only
        incomplete checkpoints (a run that made progress would silently start over); when a fresh start would
        write into an `output_dir` that holds checkpoints of an earlier run (a later `"latest"` would mix the two
        runs); when `output_dir` holds complete checkpoints newer than the one to resume from (the resumed run would
        replace them one by one, and `"latest"` would pick them after an interruption).
    """
    checkpoints = list_checkpoints(output_dir)
    if resume_from_checkpoint is None:
        if checkpoints:
            raise ValueError(
                f"{Path(output_dir, CHECKPOINTS_FOLDER)} holds checkpoints of an earlier run ({checkpoints[-1].name} "
                "is the newest): continue it with `resume_from_checkpoint=latest`, or choose a new `output_dir`."
            )
        return None
    if resume_from_checkpoint == "latest":
        partial = [path for path in list_checkpoints(output_dir, complete_only=False) if not is_complete(path)]
        if partial and not checkpoints:
            # The run made progress but never finished a save: a fresh start would silently redo it all.
            raise ValueError(
                f"`resume_from_checkpoint=latest`: {Path(output_dir, CHECKPOINTS_FOLDER)} holds only incomplete "
                f"checkpoints ({', '.join(path.name for path in partial)}: their saves did not finish), so the run "
                "reached that step but cannot resume from it. To start it over, delete those folders or choose a "
                "new `output_dir`."
            )
        for path in partial:
            if _step(path) > _step(checkpoints[-1]):
                logger.warning(f"Skipping {path}: its save did not finish (the run was stopped while saving).")
        if not checkpoints:
            logger.warning(
                f"Resuming from the latest checkpoint: none in {Path(output_dir, CHECKPOINTS_FOLDER)} yet, "
                "starting a new training run."
            )
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise ValueError(
            f"`resume_from_checkpoint` {resume_from_checkpoint!r} is not a folder; pass `latest` or one of "
            f"{[str(path) for path in checkpoints] or 'the checkpoint folders of a run'}."
        )
    if not is_complete(path):
        raise ValueError(
            f"`resume_from_checkpoint` {resume_from_checkpoint!r} is incomplete: it has no "
            f"{CHECKPOINT_COMPLETE_FILE}, so its save did not finish. Resume from an earlier checkpoint "
            f"({[str(path) for path in checkpoints] or 'none in `output_dir`'}) or with `latest`."
        )
    # A checkpoint of this run's own folder (one copied elsewhere, or named otherwise, has no newer ones to clash with).
    in_output_dir = path.resolve().parent == Path(output_dir, CHECKPOINTS_FOLDER).resolve()
    in_output_dir = in_output_dir and _CHECKPOINT_NAME.fullmatch(path.name) is not None
    newer = [checkpoint for checkpoint in checkpoints if in_output_dir and _step(checkpoint) > _step(path)]
    if newer:
        raise ValueError(
            f"`output_dir` {output_dir!r} holds checkpoints newer than {path.name} "
            f"({', '.join(checkpoint.name for checkpoint in newer)}): "
            "the resumed run would replace them one by one, and an interrupted one would resume from them with "
            "`latest`. Move or delete them, or copy the checkpoint into a new `output_dir` and resume there."
        )
    return path


def load_checkpoint(accelerator, checkpoint: Path, state: TrainingState, states: dict | None = None):
    """
    Check that `checkpoint` runs no code of its own when loaded
    ([`~training.checkpoint_files.check_checkpoint_files`]), `accelerator.load_state(checkpoint)`, restore `states`
    from their JSON and safetensors files, then log where the run resumes; with an error that says what went wrong
    when the checkpoint's model does not match the run's model (another model configuration), instead of the
    parameter-by-parameter size mismatches.

    Args:
        accelerator (`accelerate.Accelerator`):
            The run's accelerator, with the model, optimizer and schedulers prepared.
        checkpoint (`pathlib.Path`):
            A checkpoint folder from [`resolve_checkpoint`].
        state ([`TrainingState`]):
            The run's progress counters, which the checkpoint restores (also one of `states`).
        states (`dict`, *optional*, defaults to `None`):
            Name -> an object with `load_state_dict()`, as passed to [`save_checkpoint`].

    Raises:
        [`~training.checkpoint_files.UnsafeCheckpointError`]: naming a file that could run code when loaded.
        `ValueError`: when the saved weights do not fit the model, or a state is missing.
    """
    check_checkpoint_files(checkpoint)
    try:
        accelerator.load_state(str(checkpoint))
    except RuntimeError as error:
        if "size mismatch" not in str(error) and "Missing key" not in str(error):
            raise
        first_mismatch = str(error).strip().splitlines()[-1].strip()
        raise ValueError(
            f"{checkpoint} was saved from a model of another configuration ({first_mismatch}). Resume with the model "
            "configuration of the run that saved it, or start a new run in a new `output_dir`."
        ) from error
    load_training_states(checkpoint, states or {})
    if accelerator.is_main_process:
        logger.info(
            f"Resumed from {checkpoint} at step {state.global_step} (epoch {state.epoch}, batch "
            f"{state.batches_in_epoch} of it)."
        )


def _step(checkpoint: Path) -> int:
    return int(_CHECKPOINT_NAME.fullmatch(checkpoint.name).group(1))


__all__ = [
    "CHECKPOINTS_FOLDER",
    "CHECKPOINT_COMPLETE_FILE",
    "TrainingState",
    "list_checkpoints",
    "load_checkpoint",
    "remove_old_checkpoints",
    "resolve_checkpoint",
    "save_checkpoint",
]
