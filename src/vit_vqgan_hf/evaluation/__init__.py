# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of ViT-VQGAN tokenizers and VIM samples, with the protocol recorded in every results file.

- `inception`: the FID InceptionV3 (pytorch-fid's TensorFlow-compatible variant) in plain PyTorch, loaded from a
  file or a Hub repository.
- `frechet`: FID and rFID, features accumulated in dataset order, reference statistics that refuse another feature
  network.
- `generation_metrics`: IS, KID, precision/recall, and all generation metrics against reference statistics.
- `reconstruction_metrics`: PSNR/SSIM and codebook usage by the paper's 256-image protocol.
- `plots`: the codebook-usage plot.
- `evaluators`: batch-by-batch accumulation across accelerate processes.
- `image_sets`: image folders, `.npz` files and `datasets` splits as `uint8` tensors, with clear errors.
- `results`: results files and their model-card `model-index` entries.
- `classifier`: the image classifier of classifier rejection sampling (`acceptance_rate`, `classifier`).
- `sampling`: the sampling engine of examples/sample.py and examples/evaluate_generation.py (plan, seeds, calls).
- `evaluate_metrics/`: `evaluate` modules (`codebook_usage`, `reconstruction`, `fid`), see [`evaluate_metric_path`].

Nothing in the layers below (models, pipelines, training) imports it.
"""

from pathlib import Path

from .classifier import ImageClassifier
from .evaluators import GenerationEvaluator, TokenizerEvaluator
from .frechet import FeatureAccumulator, ReferenceStatistics, fid_from_features, frechet_distance
from .generation_metrics import (
    generation_metrics,
    inception_score,
    kernel_inception_distance,
    manifold_precision_recall,
)
from .image_sets import DatasetImageSet, ImageFolderSet, NpzImageSet, open_image_set
from .inception import FidInceptionV3, load_fid_inception
from .plots import plot_code_usage
from .reconstruction_metrics import USAGE_GROUP_SIZE, CodebookUsageAccumulator, per_image_psnr, per_image_ssim
from .results import build_results, load_results, results_to_model_index, save_results
from .sampling import SamplingConfig, SamplingEngine


EVALUATE_METRICS = ("codebook_usage", "reconstruction", "fid")


def evaluate_metric_path(name: str) -> str:
    """
    Folder of one of the package's `evaluate` modules, for `evaluate.load` (works offline).

    Args:
        name (`str`):
            `"codebook_usage"`, `"reconstruction"` (PSNR, SSIM, l1, l2) or `"fid"`.

    Returns:
        `str`: the module's folder.

    Example:

    ```python
    >>> import evaluate
    >>> from vit_vqgan_hf.evaluation import evaluate_metric_path

    >>> usage = evaluate.load(evaluate_metric_path("codebook_usage"))
    >>> usage.compute(predictions=[[0, 1], [1, 1]], codebook_size=4)["codebook_usage"]
    0.5
    ```
    """
    if name not in EVALUATE_METRICS:
        raise ValueError(f"Unknown evaluate module {name!r}; choose from {EVALUATE_METRICS}.")
    return str(Path(__file__).parent / "evaluate_metrics" / name)


__all__ = [
    "EVALUATE_METRICS",
    "USAGE_GROUP_SIZE",
    "CodebookUsageAccumulator",
    "DatasetImageSet",
    "FeatureAccumulator",
    "FidInceptionV3",
    "GenerationEvaluator",
    "ImageClassifier",
    "ImageFolderSet",
    "NpzImageSet",
    "ReferenceStatistics",
    "SamplingConfig",
    "SamplingEngine",
    "TokenizerEvaluator",
    "build_results",
    "evaluate_metric_path",
    "fid_from_features",
    "frechet_distance",
    "generation_metrics",
    "inception_score",
    "kernel_inception_distance",
    "load_fid_inception",
    "load_results",
    "manifold_precision_recall",
    "open_image_set",
    "per_image_psnr",
    "per_image_ssim",
    "plot_code_usage",
    "results_to_model_index",
    "save_results",
]
