# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Hub repositories and uploads: create (or find) the repository before a long run, then upload a folder without
its training leftovers. `HfApi.upload_folder` resumes an interrupted upload when it is run again."""

import os
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from ..utils.loading import HUB_ERRORS


# Training leftovers that never belong in a model repository: accelerate checkpoints, logs, raw Lightning files, the
# best-so-far copy of `train_vim.py --save_best_model`.
UPLOAD_IGNORE_PATTERNS = [
    "checkpoints/", "checkpoint-*/", "checkpoint_*/", "logs/", "runs/", "*.ckpt", "best_transformer/"
]  # fmt: skip


def _upload_ignore_patterns(ignore_patterns: list[str] | None) -> list[str]:
    return [*UPLOAD_IGNORE_PATTERNS, *(ignore_patterns or [])]


def prepare_upload_folder(folder: str | os.PathLike, ignore_patterns: list[str] | None = None) -> list[str]:
    """
    The files [`push_folder_to_hub`] uploads from `folder` (a dry run, no network).

    Args:
        folder (`str` or `os.PathLike`):
            Folder to upload.
        ignore_patterns (`list[str]`, *optional*):
            Glob patterns of further files to leave out, on top of `UPLOAD_IGNORE_PATTERNS` (training checkpoints,
            logs, `*.ckpt`) and huggingface_hub's own (`.git`, `.cache/huggingface`).

    Returns:
        `list[str]`: paths relative to `folder`, with `/` separators, sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder.")
    paths = sorted(path.relative_to(folder).as_posix() for path in folder.glob("**/*") if path.is_file())
    patterns = _upload_ignore_patterns(ignore_patterns) + DEFAULT_IGNORE_PATTERNS
    return list(filter_repo_objects(paths, ignore_patterns=patterns))


def create_hub_repo(
    folder: str | os.PathLike,
    repo_id: str | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
    repo_type: str = "model",
) -> str:
    """
    Create the Hub repository that `folder` will be pushed to, or find it, so that a script with `--push_to_hub` can
    fail at its start, not after hours of work, when the Hub is unreachable, there is no login, the token is
    read-only or the name is invalid. (A fine-grained token without write access to an existing repository still
    fails only at the upload: the Hub does not say so in advance.)

    Args:
        folder (`str` or `os.PathLike`):
            The folder that will be uploaded; its name is the default repository name.
        repo_id (`str`, *optional*):
            `namespace/name` or `name` (under the token's account).
        private (`bool`, *optional*):
            Visibility of a newly created repository (an existing one keeps its own).
        token (`str`, *optional*):
            Hub token; defaults to the stored login or `HF_TOKEN`.
        repo_type (`str`, *optional*, defaults to `"model"`):
            `"model"`, or `"dataset"` for token datasets.

    Returns:
        `str`: the repository's full id.

    Raises:
        `ValueError`: saying which repository could not be created and what to change.
    """
    name = repo_id or Path(folder).resolve().name
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(name, private=private, exist_ok=True, repo_type=repo_type).repo_id
        # `create_repo(exist_ok=True)` succeeds for an existing repository whatever the token may do with it.
        role = api.whoami().get("auth", {}).get("accessToken", {}).get("role")
    except HUB_ERRORS as error:
        raise ValueError(
            f"--push_to_hub: the Hub {repo_type} repository {name!r} could not be created or found "
            f"({type(error).__name__}: {error}). Log in (`hf auth login`) or pass --hub_token, check --hub_model_id "
            "and the network, or drop --push_to_hub."
        ) from error
    if role == "read":
        raise ValueError(
            f"--push_to_hub: the Hub token is read-only, so nothing can be uploaded to {repo_id!r}. Pass a token with "
            "write access (--hub_token, or `hf auth login`), or drop --push_to_hub."
        )
    return repo_id


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload with vit-vqgan-hf",
    ignore_patterns: list[str] | None = None,
) -> str:
    """
    Create the model repository if it is missing and upload `folder` to it.

    `HfApi.upload_folder` of huggingface_hub 2.x streams the files through `hf_xet` and commits large folders in
    several batches; running the same call again after an interruption skips what was already committed and
    deduplicates what was already uploaded, so a failed push resumes by rerunning the script's push.

    Args:
        folder (`str` or `os.PathLike`):
            Folder to upload, e.g. a `save_pretrained` folder with its `README.md`.
        repo_id (`str`, *optional*):
            `namespace/name` or `name` (under the token's account); defaults to the folder's name.
        private (`bool`, *optional*):
            Visibility of a newly created repository (an existing one keeps its own).
        token (`str`, *optional*):
            Hub token; defaults to the stored login or `HF_TOKEN`.
        commit_message (`str`, *optional*, defaults to `"Upload with vit-vqgan-hf"`):
            Message of the commit(s).
        ignore_patterns (`list[str]`, *optional*):
            Further files to leave out; see [`prepare_upload_folder`], which lists what is uploaded.

    Returns:
        `str`: the full id of the repository pushed to.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder.")
    repo_id = create_hub_repo(folder, repo_id, private=private, token=token)
    HfApi(token=token).upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        commit_message=commit_message,
        ignore_patterns=_upload_ignore_patterns(ignore_patterns),
    )
    return repo_id


__all__ = ["HUB_ERRORS", "UPLOAD_IGNORE_PATTERNS", "create_hub_repo", "prepare_upload_folder", "push_folder_to_hub"]
