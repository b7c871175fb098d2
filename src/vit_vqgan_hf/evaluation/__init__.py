# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of ViT-VQGAN tokenizers and VIM samples, with the protocol recorded in every results file.

- `inception`: the FID InceptionV3 (pytorch-fid's TensorFlow-compatible variant) in plain PyTorch, loaded from a
  file or a Hub repository.
- `metrics`: FID, IS, KID, precision/recall, PSNR/SSIM, codebook usage by the paper's 256-image protocol,
  reference statistics that refuse another feature network.
- `evaluators`: batch-by-batch accumulation across accelerate processes.
- `image_sets`: image folders, `.npz` files and `datasets` splits as `uint8` tensors, with clear errors.
- `results`: results files and their model-card `model-index` entries.
- `classifier`: the image classifier of classifier rejection sampling (`--acceptance_rate`, `--classifier`).
- `evaluate_metrics/`: `evaluate` modules (`codebook_usage`, `reconstruction`, `fid`), see [`evaluate_metric_path`].

Imported by the example scripts and tests only; the models never import it.
"""

from pathlib import Path

from .classifier import (
    ImageClassifier,
    check_classifier_labels,
    check_rejection_flags,
    classes_per_call,
    load_image_classifier,
    load_rejection_classifier,
    num_rejection_candidates,
)
from .evaluators import GenerationEvaluator, TokenizerEvaluator, extract_features, to_uint8_images
from .image_sets import (
    DatasetImageSet,
    ImageFolderSet,
    NpzImageSet,
    class_balance,
    open_image_set,
    resize_description,
    to_uint8_tensor,
)
from .inception import FidInceptionV3, load_fid_inception, sha256_of_file, state_dict_sha256
from .metrics import (
    USAGE_GROUP_SIZE,
    CodebookUsageAccumulator,
    FeatureAccumulator,
    ReferenceStatistics,
    codebook_statistics,
    describe_feature_network,
    fid_from_features,
    frechet_distance,
    generation_metrics,
    inception_score,
    kernel_inception_distance,
    manifold_precision_recall,
    mean_and_covariance,
    per_image_psnr,
    per_image_ssim,
    plot_code_usage,
)
from .results import (
    PROTOCOL_FIELDS,
    build_results,
    library_versions,
    linear_probe_results,
    load_results,
    results_to_model_index,
    save_results,
)


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
    "PROTOCOL_FIELDS",
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
    "TokenizerEvaluator",
    "build_results",
    "check_classifier_labels",
    "check_rejection_flags",
    "class_balance",
    "classes_per_call",
    "codebook_statistics",
    "describe_feature_network",
    "evaluate_metric_path",
    "extract_features",
    "fid_from_features",
    "frechet_distance",
    "generation_metrics",
    "inception_score",
    "kernel_inception_distance",
    "library_versions",
    "linear_probe_results",
    "load_fid_inception",
    "load_image_classifier",
    "load_rejection_classifier",
    "load_results",
    "manifold_precision_recall",
    "mean_and_covariance",
    "num_rejection_candidates",
    "open_image_set",
    "per_image_psnr",
    "per_image_ssim",
    "plot_code_usage",
    "resize_description",
    "results_to_model_index",
    "save_results",
    "sha256_of_file",
    "state_dict_sha256",
    "to_uint8_images",
    "to_uint8_tensor",
]
