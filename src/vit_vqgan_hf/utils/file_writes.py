# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Writing outputs so that a failure says where and why, and a finished write survives a crash.

A full disk surfaces from `torch.save` as `basic_ios::clear: iostream error` or `unexpected pos`, and from safetensors
as a `SafetensorError`, naming neither the file nor the cause: [`report_write_errors`] turns any error of a write
into an [`OutputWriteError`] that names the output and the free space left where it goes. [`sync_tree`] flushes a
folder's files to the disk, so that a completion marker written after it is never on disk before the data it vouches
for.
"""

import os
import shutil
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path


class OutputWriteError(OSError):
    """Writing an output failed; the message names the output, its path and the free bytes of its file system."""


def free_bytes(path: str | os.PathLike) -> int | None:
    """The free bytes of the file system holding `path` (or its nearest existing parent); `None` when unknown."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


@contextmanager
def report_write_errors(
    path: str | os.PathLike, what: str, partial: str = "", remove: Iterable[str | os.PathLike] = ()
):
    """
    Run a write of `what` to `path`; any error it raises comes out as an [`OutputWriteError`] that names `what`, the
    path, the error's last line and the free bytes left there, with the original error as its cause.

    Args:
        path (`str` or `os.PathLike`):
            The file or folder being written.
        what (`str`):
            What is written, for the message ("the checkpoint", "the model card").
        partial (`str`, *optional*, defaults to `""`):
            What became of the partial output, appended to the message.
        remove (`Iterable[str | os.PathLike]`, *optional*, defaults to `()`):
            Files or folders the write may have left half-written, removed after a failure (and named in the message).
    """
    try:
        yield
    except OutputWriteError:
        raise
    except Exception as error:  # torch (RuntimeError), safetensors (SafetensorError) and the OS (OSError) all differ
        lines = str(error).strip().splitlines()
        reason = lines[-1].strip() if lines else type(error).__name__
        removed = [str(item) for item in remove if _remove(item)]
        if removed:
            partial = f"{partial} Removed the partial {', '.join(removed)}.".strip()
        free = free_bytes(path)
        space = f"{free} bytes ({free / 2**20:.1f} MiB) free" if free is not None else "free space unknown"
        raise OutputWriteError(
            f"Writing {what} to {path} failed ({type(error).__name__}: {reason}); {space} on its file system. "
            f"{partial + ' ' if partial else ''}Free some space or write to another folder, then run again."
        ) from error


def _remove(path: str | os.PathLike) -> bool:
    """Remove a file or folder if it exists; whether it did."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return True
    if path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
        return True
    return False


def sync_tree(folder: str | os.PathLike):
    """`fsync` every file and folder under `folder` (and `folder` itself), so their contents are on the disk."""
    folder = Path(folder)
    for root, _folders, files in os.walk(folder):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        sync_folder(root)


def sync_folder(folder: str | os.PathLike):
    """`fsync` a folder, so the names created, renamed or removed in it are on the disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text_atomically(path: str | os.PathLike, text: str):
    """Write `text` to a temporary file beside `path`, `fsync` it and rename it to `path`: the file is either absent or
    whole, even after a crash."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    sync_folder(path.parent)


__all__ = [
    "OutputWriteError",
    "free_bytes",
    "report_write_errors",
    "sync_folder",
    "sync_tree",
    "write_text_atomically",
]
