# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""What every command-line script shares: the Hub flags, output folders, and checks of flags, of the `accelerate launch`
setup and of the Hub repository, all run before any compute. Loading a model or data set named on the command line
with an error that says what was expected (`load_pretrained`) and the device check (`check_device`) live in
`vit_vqgan_hf.utils.loading`, so that the app can use them without the scripts' dependencies, and the entry points'
error reporting (`command_line_errors`, `InputError`) in `vit_vqgan_hf.utils.errors`; all are re-exported here.
"""

import argparse
import logging
import os
import re
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from accelerate.utils import DistributedType, broadcast_object_list

from ..hub.uploads import create_hub_repo
from ..utils.errors import InputError, command_line_errors
from ..utils.loading import check_device, load_pretrained


logger = logging.getLogger(__name__)


def add_hub_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """
    Add the Hub flags every script shares: `--push_to_hub`, `--hub_model_id`, `--hub_private`, `--hub_token`.

    Args:
        parser (`argparse.ArgumentParser`):
            The script's parser.

    Returns:
        `argparse.ArgumentParser`: the same parser.
    """
    group = parser.add_argument_group("Hugging Face Hub")
    group.add_argument(
        "--push_to_hub",
        action="store_true",
        help="Upload the final folder (weights, configuration, modeling code, model card) to the Hub.",
    )
    group.add_argument(
        "--hub_model_id",
        type=str,
        default=None,
        help="Repository to push to (`namespace/name`); defaults to the name of --output_dir under your account.",
    )
    group.add_argument(
        "--hub_private", action="store_true", help="Create the repository as private if it does not exist yet."
    )
    group.add_argument(
        "--hub_token",
        type=str,
        default=None,
        help="Hub access token; defaults to the one stored by `hf auth login` or the HF_TOKEN variable.",
    )
    return parser


def prepare_output_dir(output_dir: str | os.PathLike, flag: str = "--output_dir") -> Path:
    """
    Create a script's output folder (and its parents) before any compute, with an error that names the flag when the
    path cannot be a folder: otherwise a mistyped path surfaces as a bare `FileExistsError` or `NotADirectoryError`,
    or only when the results are saved, after the whole run.

    Args:
        output_dir (`str` or `os.PathLike`):
            The folder to create; an existing folder is kept as it is.
        flag (`str`, *optional*, defaults to `"--output_dir"`):
            The command-line flag that named it, for the error message.

    Returns:
        `pathlib.Path`: the folder.

    Raises:
        `ValueError`: when the path or one of its parents is an existing file, or the folder cannot be created.
    """
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        file = next((parent for parent in (path, *path.parents) if parent.exists() and not parent.is_dir()), path)
        raise ValueError(
            f"{flag} {str(output_dir)!r} cannot be a folder: {str(file)!r} is a file. Expected a folder path."
        ) from error
    except OSError as error:
        raise ValueError(
            f"{flag} {str(output_dir)!r} cannot be created ({error.strerror}). Expected a writable folder path."
        ) from error
    return path


def check_launch(accelerator):
    """
    Fail when `accelerate launch` started processes that did not join one process group, and warn when an FSDP config
    was not applied. On a machine without GPUs, `accelerate launch --multi_gpu --num_processes 2` (without
    `ACCELERATE_USE_CPU=true`) starts two processes that each set up a single-process run: both would do the whole job
    and write the same files. And accelerate shards with FSDP only on GPUs: on CPUs an FSDP config runs DDP.

    Args:
        accelerator (`accelerate.Accelerator`):
            The script's accelerator, just built.

    Raises:
        `InputError`: when the launcher's process count (`WORLD_SIZE`) differs from the accelerator's.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size != accelerator.num_processes:
        raise InputError(
            f"`accelerate launch` started {world_size} processes, but each set up a run of "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): they would each do the whole job and write "
            "the same files. Without GPUs, launch with ACCELERATE_USE_CPU=true (and --multi_gpu, or a multi-process "
            "accelerate config; examples/README.md)."
        )
    use_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
    if use_fsdp and accelerator.distributed_type != DistributedType.FSDP and accelerator.is_main_process:
        logger.warning(
            f"The accelerate config asks for FSDP, but accelerate set up {accelerator.distributed_type}: it shards "
            "only on GPUs (and other accelerators), so this run keeps a full copy of the model in every process."
        )


def check_hub_repo(args: argparse.Namespace, accelerator):
    """
    With `--push_to_hub`, create (or find) the repository before training, on the main process, so that an unreachable
    Hub, a token that cannot write or an invalid `--hub_model_id` fails the run at its start on every process, and
    not when the trained model is pushed. `args.hub_model_id` becomes the repository's full id.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments of a training script (`push_to_hub`, `hub_model_id`, `hub_private`, `hub_token`,
            `output_dir`).
        accelerator (`accelerate.Accelerator`):
            The script's accelerator.

    Raises:
        `ValueError`: from [`~vit_vqgan_hf.hub.create_hub_repo`], on every process.
    """
    if not args.push_to_hub:
        return
    outcome = [None, args.hub_model_id]
    if accelerator.is_main_process:
        try:
            outcome[1] = create_hub_repo(
                args.output_dir, args.hub_model_id, private=args.hub_private, token=args.hub_token
            )
        except Exception as error:  # any failure must reach the broadcast, or the other processes wait in it forever
            outcome[0] = str(error) if isinstance(error, ValueError) else f"--push_to_hub: {error!r}"
    message, args.hub_model_id = broadcast_object_list(outcome)
    if message is not None:
        raise ValueError(message)


@contextmanager
def in_flag_terms(args: argparse.Namespace, terms: Mapping[str, str] | None = None):
    """
    Inside, an exception whose message names an argument of the library in backticks, as `` `name` `` or
    `` `name=value` `` where `name` is a flag of the script (a name in `args`), names the flag instead: `--name` (also
    for `name=True`, a switch) or `--name value`. The library (`vit_vqgan_hf.training`, `vit_vqgan_hf.evaluation`) speaks of its functions'
    arguments; a user of a script reads the flags they typed.

    Args:
        args (`argparse.Namespace`):
            The script's parsed arguments: their names are the flags mapped.
        terms (`Mapping[str, str]`, *optional*):
            More backticked terms and their flags, e.g. `{"strict=False": "--ignore_tokenizer_mismatch"}`.
    """
    flags = set(vars(args))
    terms = dict(terms or {})

    def flag(match: re.Match) -> str:
        term, name, value = match.group(0)[1:-1], match.group(1), match.group(2)
        if term in terms:
            return terms[term]
        if name not in flags:
            return match.group(0)
        value = None if value is None else value.strip("'\"")
        # `name=True` of a boolean argument is its switch.
        return f"--{name}" if value in (None, "True") else f"--{name} {value}"

    try:
        yield
    except Exception as error:
        if error.args and isinstance(error.args[0], str):
            error.args = (_BACKTICKED.sub(flag, error.args[0]), *error.args[1:])
        raise


# A backticked name or `name=value` in an error message.
_BACKTICKED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:=([^`]*))?`")


def check_flag(args: argparse.Namespace, name: str, valid: bool, expected: str):
    """Raise a `ValueError` naming `--name`, its value and what was `expected` unless `valid`."""
    if not valid:
        raise ValueError(f"--{name} must be {expected}, got {getattr(args, name)}.")


__all__ = [
    "InputError",
    "add_hub_args",
    "check_device",
    "check_flag",
    "check_hub_repo",
    "check_launch",
    "command_line_errors",
    "in_flag_terms",
    "load_pretrained",
    "prepare_output_dir",
]
