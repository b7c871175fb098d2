# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Loading the app's models once, at start, with messages that say what to do instead of tracebacks."""

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoImageProcessor

from vit_vqgan_hf import VimPipeline, VitVqganModel
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.utils import check_device, load_pretrained

from .errors import LoadError


logger = logging.getLogger(__name__)

DEMO_PIPELINE = "outputs/demo/pipeline"
DEMO_HINT = (
    "Run `make demo` first (it writes outputs/demo/), or pass --pipeline (or set VIM_PIPELINE) with a VimPipeline "
    "folder or Hub id."
)
PIPELINE_LAYOUT = (
    "a folder written by train_vim.py or VimPipeline.save_pretrained (model_index.json, vqgan/, transformer/)"
)


@dataclass
class LoadedTokenizer:
    """A tokenizer with the image processor that prepares its inputs."""

    model: VitVqganModel
    image_processor: object
    source: str
    processor_note: str | None = None  # set when the folder had no processor and the package's default is used


def resolve_device(device: str | None) -> torch.device:
    """`device`, or CUDA when there is a GPU and the CPU otherwise; refused with a message when unavailable."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        check_device(device)
    except ValueError as error:
        raise LoadError(str(error)) from None
    return torch.device(device)


def default_cpu_threads() -> int:
    """torch threads on the CPU: all cores the process may use but one, which is left to the server (requests,
    previews, image encoding). On a loaded machine, torch's worker threads spin while they wait for a busy core: a
    thread too many made the demo's sampling 10 to 40 times slower on 2 cores, in measurements with the app."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - 1)


def dtype_for(device: torch.device) -> torch.dtype:
    """bf16 on a GPU (the pipeline samples its logits in float32 anyway), float32 on the CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _describe_folder(folder: Path) -> str:
    config_path = folder / "config.json"
    if config_path.is_file():
        try:
            model_type = json.loads(config_path.read_text()).get("model_type")
        except (OSError, ValueError):
            model_type = None
        if model_type == "vit_vqgan":
            return " It holds a ViT-VQGAN tokenizer: pass it as --tokenizer, and a pipeline as --pipeline."
        if model_type:
            return f" It holds a {model_type!r} model."
    return ""


def load_pipeline(name_or_path: str, device: torch.device, dtype: torch.dtype) -> VimPipeline:
    """Load a `VimPipeline` from a folder or Hub id onto `device` in `dtype`, or raise `LoadError`."""
    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir():
            raise LoadError(f"--pipeline {name_or_path!r} is a file; expected {PIPELINE_LAYOUT}. {DEMO_HINT}")
        if not (path / "model_index.json").is_file():
            raise LoadError(
                f"{name_or_path!r} is not a VimPipeline folder: it has no model_index.json. Expected {PIPELINE_LAYOUT}."
                + _describe_folder(path)
                + f" {DEMO_HINT}"
            )
    elif str(name_or_path) == DEMO_PIPELINE:
        raise LoadError(f"There is no pipeline at {DEMO_PIPELINE}. {DEMO_HINT}")
    try:
        pipeline = load_pretrained(VimPipeline.from_pretrained, name_or_path, dtype=dtype)
    except Exception as error:  # any failure to load becomes the page's message; the log keeps the traceback
        logger.warning("Loading the pipeline %r failed", name_or_path, exc_info=True)
        raise LoadError(
            f"Could not load a VimPipeline from {name_or_path!r}: {_first_line(error)} {DEMO_HINT}"
        ) from None
    if not isinstance(pipeline, VimPipeline):
        raise LoadError(f"{name_or_path!r} holds a {type(pipeline).__name__}, not a VimPipeline. {DEMO_HINT}")
    pipeline = pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _load_image_processor(name_or_path: str, subfolder: str, config) -> tuple[object, str | None]:
    """The folder's own image processor, or the package's default one for `config` (with a note) if it has none."""
    local = Path(name_or_path, subfolder)
    if local.exists() and not (local / "preprocessor_config.json").is_file():
        processor = None
    else:
        try:
            processor = AutoImageProcessor.from_pretrained(name_or_path, subfolder=subfolder, backend="pil")
        except (OSError, ValueError):
            processor = None
    if processor is None:
        note = (
            "The tokenizer folder has no preprocessor_config.json; images are prepared by the package's default "
            f"processor for it (shorter side resized to {config.image_size} px, bicubic, center crop, [-1, 1])."
        )
        return create_image_processor(config), note
    return processor, None


def load_tokenizer(
    name_or_path: str | None, pipeline: VimPipeline | None, pipeline_source: str, device, dtype
) -> LoadedTokenizer:
    """
    The Tokenizer tab's model: `name_or_path` (a `VitVqganModel` folder or Hub id, or a pipeline folder, whose
    `vqgan/` is used), or, when it is `None`, the pipeline's own tokenizer (its processor from `vqgan/`).
    """
    if name_or_path is None:
        if pipeline is None:
            raise LoadError(
                "No tokenizer: the pipeline did not load. Pass --tokenizer with a tokenizer folder or Hub id."
            )
        processor, note = _load_image_processor(pipeline_source, "vqgan", pipeline.vqgan.config)
        return LoadedTokenizer(pipeline.vqgan, processor, f"{pipeline_source} (vqgan/)", note)
    path = Path(name_or_path)
    subfolder = "vqgan" if (path / "model_index.json").is_file() else ""
    if path.exists() and not (path / subfolder / "config.json").is_file():
        raise LoadError(
            f"{name_or_path!r} is not a tokenizer folder: it has no config.json. Expected a folder written by "
            "train_tokenizer.py, VitVqganModel.save_pretrained or scripts/convert_enhancing_transformers_to_hf.py."
        )
    try:
        model = load_pretrained(VitVqganModel.from_pretrained, name_or_path, subfolder=subfolder, dtype=dtype)
    except Exception as error:  # any failure to load becomes the page's message; the log keeps the traceback
        logger.warning("Loading the tokenizer %r failed", name_or_path, exc_info=True)
        raise LoadError(f"Could not load a VitVqganModel from {name_or_path!r}: {_first_line(error)}") from None
    processor, note = _load_image_processor(name_or_path, subfolder, model.config)
    return LoadedTokenizer(model.to(device).eval(), processor, str(name_or_path), note)
