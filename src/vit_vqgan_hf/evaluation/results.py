# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Results files that say how their numbers were computed, and their conversion to model-card `model-index` entries.

Published FIDs of image tokenizers and generators often fail to reproduce because the evaluator, the reference
statistics, the number of samples, the class balance or the seeds differ and are not stated. Every results file
written here therefore records, next to the numbers:

- the implementation of every metric and the versions of the libraries involved (torchmetrics, torch, ...);
- the feature network (name, sha256 of its weights, preprocessing) and the LPIPS network;
- the reference (images or statistics file, with its path and sha256);
- the sample count and the class balance (images per class);
- the seeds and sampling settings, the image size and the resizing.

[`results_to_model_index`] turns a results file into the `model-index` metadata of a Hub model card, and
[`linear_probe_results`] writes linear-probe accuracies in the same format.
"""

import datetime
import importlib.metadata
import json
import math
import os
import platform
from pathlib import Path


RESULTS_FORMAT = "vit_vqgan_hf.evaluation_results/1"

# Every results file has these protocol fields (None where they do not apply, e.g. `sampling` for a tokenizer).
PROTOCOL_FIELDS = (
    "implementations",
    "library_versions",
    "feature_network",
    "reference",
    "num_samples",
    "class_balance",
    "seeds",
    "sampling",
    "image_size",
    "resize",
)

IMPLEMENTATIONS = {
    "psnr": (
        "torchmetrics.functional.image.peak_signal_noise_ratio per image (data_range 1.0, float64) between the "
        "reconstruction rounded to uint8 and the original; mean over images"
    ),
    "ssim": (
        "torchmetrics.functional.image.structural_similarity_index_measure per image (Gaussian window 11, sigma 1.5, "
        "k1 0.01, k2 0.03, data_range 1.0, float64) on uint8-rounded reconstructions; mean over images"
    ),
    "lpips": (
        "vit_vqgan_hf.training.LpipsVgg16 (LPIPS v0.1, VGG16 trunk) between the uint8-rounded reconstruction and the "
        "original, both scaled to [-1, 1]; mean over images"
    ),
    "l1": "mean |reconstruction - original| on the [0, 1] pixel scale, float model output; mean over images",
    "l2": "vit_vqgan_hf.training.l2_loss (mean squared error on the [0, 1] scale), float model output; mean over images",
    "logit_laplace": (
        "vit_vqgan_hf.training.logit_laplace_loss (DALL-E logit-Laplace negative log-likelihood per pixel channel, "
        "squash eps from the tokenizer config); mean over images"
    ),
    "rfid": (
        "Frechet distance (vit_vqgan_hf.evaluation.fid_from_features: float64, exact; symmetric eigendecompositions, or "
        "the sample-space nuclear norm when a set has fewer images than feature dimensions) between the feature "
        "Gaussians of the uint8-rounded reconstructions and of the originals of the same split"
    ),
    "fid": (
        "Frechet distance (vit_vqgan_hf.evaluation.fid_from_features / frechet_distance: float64, exact; symmetric "
        "eigendecompositions, or the sample-space nuclear norm when a set has fewer images than feature dimensions) "
        "between the feature Gaussians of the samples and of the reference"
    ),
    "inception_score": (
        "vit_vqgan_hf.evaluation.inception_score: exp(E KL(p(y|x) || p(y))) on the feature network's unbiased "
        "logits, mean and std over splits of a seeded shuffle"
    ),
    "kid": (
        "vit_vqgan_hf.evaluation.kernel_inception_distance: unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean and "
        "std over seeded random subsets"
    ),
    "precision": (
        "vit_vqgan_hf.evaluation.manifold_precision_recall (Kynkaanniemi et al. 2019): fraction of samples inside "
        "the k-nearest-neighbour balls of the reference features"
    ),
    "recall": (
        "vit_vqgan_hf.evaluation.manifold_precision_recall (Kynkaanniemi et al. 2019): fraction of reference "
        "features inside the k-nearest-neighbour balls of the samples"
    ),
    "codebook_usage": (
        "vit_vqgan_hf.evaluation.CodebookUsageAccumulator: fraction of the codebook used within each group of "
        "consecutive test images (paper Table 4 caption: 256), mean over the full groups"
    ),
    "codebook_perplexity": "exp(entropy) of the code frequencies over the whole set",
    "dead_codes": "number of codes never used over the whole set",
    "top1_accuracy": "top-1 accuracy of a linear classifier on frozen, average-pooled block features (paper Sec. 5.3)",
}

# Metrics reported in model cards: results key -> (model-index metric type, display name).
MODEL_INDEX_METRICS = {
    "fid": ("fid", "FID"),
    "rfid": ("fid", "rFID"),
    "inception_score": ("inception_score", "Inception Score"),
    "kid": ("kid", "KID"),
    "precision": ("precision", "Precision (k-NN)"),
    "recall": ("recall", "Recall (k-NN)"),
    "psnr": ("psnr", "PSNR"),
    "ssim": ("ssim", "SSIM"),
    "lpips": ("lpips", "LPIPS"),
    "l1": ("l1", "l1 loss"),
    "l2": ("l2", "l2 loss"),
    "logit_laplace": ("logit_laplace_nll", "Logit-Laplace NLL"),
    "codebook_usage": ("codebook_usage", "Codebook usage"),
    "codebook_perplexity": ("perplexity", "Codebook perplexity"),
    "dead_codes": ("dead_codes", "Dead codes"),
    "top1_accuracy": ("accuracy", "Top-1 accuracy"),
}

TASK_NAMES = {
    "image-reconstruction": "Image reconstruction (tokenizer)",
    "unconditional-image-generation": "Unconditional image generation",
    "class-conditional-image-generation": "Class-conditional image generation",
    "image-classification": "Linear probe",
}

_LIBRARIES = (
    "vit-vqgan-hf",
    "torch",
    "torchmetrics",
    "numpy",
    "transformers",
    "diffusers",
    "accelerate",
    "datasets",
    "evaluate",
    "Pillow",
    "safetensors",
    "huggingface_hub",
)


def library_versions() -> dict:
    """Versions of Python and of the libraries that take part in an evaluation (`None` when not installed)."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _json_safe(value):
    """Non-finite floats become `None` (JSON has no `inf`/`nan`); tensors and numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_results(
    task: str,
    metrics: dict,
    *,
    num_samples: int,
    class_balance: dict,
    image_size: int | None,
    resize: str | None,
    feature_network: dict | None = None,
    reference: dict | None = None,
    seeds: dict | None = None,
    sampling: dict | None = None,
    skipped: dict | None = None,
    model: dict | None = None,
    details: dict | None = None,
    **protocol,
) -> dict:
    """
    A results dict with the metrics and the protocol that produced them.

    Args:
        task (`str`):
            `"image-reconstruction"`, `"unconditional-image-generation"`, `"class-conditional-image-generation"` or
            `"image-classification"` (linear probe); other strings are kept as they are.
        metrics (`dict[str, float]`):
            Metric values; non-finite values are stored as `null`.
        num_samples (`int`):
            Number of images (or samples) evaluated.
        class_balance (`dict`):
            Images per class ([`class_balance`]); `{"labelled": False}` for unlabelled sets.
        image_size (`int` or `None`):
            Side of the evaluated images.
        resize (`str` or `None`):
            How images were resized before evaluation.
        feature_network (`dict`, *optional*, defaults to `None`):
            [`describe_feature_network`] of the feature network (FID, IS, KID, precision/recall), `None` without one.
        reference (`dict`, *optional*, defaults to `None`):
            The reference images or statistics (path, sha256, sample count, ...).
        seeds (`dict`, *optional*, defaults to `None`):
            Every seed used and how it was used.
        sampling (`dict`, *optional*, defaults to `None`):
            Sampling settings of generated images (temperature, top-k, guidance, images per class, ...).
        skipped (`dict`, *optional*, defaults to `None`):
            Metrics that were not computed, with the reason.
        model (`dict`, *optional*, defaults to `None`):
            What was evaluated (path, class, ...).
        details (`dict`, *optional*, defaults to `None`):
            Further values that are not headline metrics (per-group usages, per-block accuracies, ...).
        **protocol:
            Further protocol fields (e.g. `data`, `settings`, `distributed`, `lpips_network`).

    Returns:
        `dict` with `format`, `task`, `model`, `metrics`, `skipped`, `protocol` and `details`.
    """
    protocol_fields = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "implementations": {name: IMPLEMENTATIONS[name] for name in metrics if name in IMPLEMENTATIONS},
        "library_versions": library_versions(),
        "feature_network": feature_network,
        "reference": reference,
        "num_samples": num_samples,
        "class_balance": class_balance,
        "seeds": seeds,
        "sampling": sampling,
        "image_size": image_size,
        "resize": resize,
        **protocol,
    }
    return _json_safe(
        {
            "format": RESULTS_FORMAT,
            "task": task,
            "model": model or {},
            "metrics": metrics,
            "skipped": skipped or {},
            "protocol": protocol_fields,
            "details": details or {},
        }
    )


def save_results(results: dict, path: str | os.PathLike) -> str:
    """
    Write a results dict as JSON (indented, keys in insertion order).

    Args:
        results (`dict`):
            From [`build_results`] or [`linear_probe_results`].
        path (`str` or `os.PathLike`):
            Target file; parent folders are created.

    Returns:
        `str`: the path written.
    """
    missing = [name for name in PROTOCOL_FIELDS if name not in results.get("protocol", {})]
    if results.get("format") != RESULTS_FORMAT or missing:
        raise ValueError(f"Not a results dict of {RESULTS_FORMAT} (missing protocol fields: {missing}).")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(results), indent=2, allow_nan=False) + "\n")
    return str(path)


def load_results(path: str | os.PathLike) -> dict:
    """Read a results file written by [`save_results`]."""
    results = json.loads(Path(path).read_text())
    if results.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{str(path)!r} is not a results file of {RESULTS_FORMAT}.")
    return results


def _metric_args(name: str, results: dict) -> dict:
    protocol = results.get("protocol", {})
    args = {"num_samples": protocol.get("num_samples")}
    metrics = results.get("metrics", {})
    if f"{name}_std" in metrics:
        args["std"] = metrics[f"{name}_std"]
    if name in ("fid", "rfid", "inception_score", "kid", "precision", "recall"):
        network = protocol.get("feature_network") or {}
        args["feature_network"] = network.get("name")
        args["feature_network_sha256"] = network.get("weights_sha256")
    if name in ("fid", "kid", "precision", "recall"):
        reference = protocol.get("reference") or {}
        source = reference.get("source")
        if isinstance(source, dict):
            source = source.get("path") or source.get("name")
        args["reference"] = reference.get("path") or source
        args["reference_sha256"] = reference.get("file_sha256")
        args["reference_statistics_sha256"] = reference.get("statistics_sha256")
        args["reference_num_samples"] = reference.get("num_samples")
    if name == "codebook_usage":
        usage = protocol.get("codebook_usage") or {}
        args["usage_group_size"] = usage.get("usage_group_size")
    return {key: value for key, value in args.items() if value is not None}


def results_to_model_index(
    results: dict | str | os.PathLike,
    model_name: str,
    task: str | dict | None = None,
    dataset: str | dict | None = None,
) -> list[dict]:
    """
    The `model-index` entry of a Hub model card for a results file.

    The returned list is the value of the `model-index` key of the card's YAML metadata, e.g.
    `ModelCardData(..., **{"model-index": entries})` or `yaml.safe_dump({"model-index": entries})`; huggingface_hub's
    `model_index_to_eval_results` reads it back into `EvalResult` objects. Each metric entry carries `args` with the
    sample count, the feature network and its checksum, and the reference statistics, so the card states how the
    number was computed. Only headline metrics are listed (see `MODEL_INDEX_METRICS`); standard deviations go into
    `args`.

    Args:
        results (`dict`, `str` or `os.PathLike`):
            A results dict or the path of a results file.
        model_name (`str`):
            Name of the model in the card.
        task (`str` or `dict`, *optional*, defaults to `None`):
            Task type (e.g. `"class-conditional-image-generation"`) or a `{"type", "name"}` dict; defaults to the
            results' task.
        dataset (`str` or `dict`, *optional*, defaults to `None`):
            Dataset name (e.g. `"ILSVRC/imagenet-1k"`) or a `{"name", "type", "split", "config", "revision"}` dict;
            defaults to the data source recorded in the results.

    Returns:
        `list[dict]`: `[{"name": model_name, "results": [{"task": ..., "dataset": ..., "metrics": [...]}]}]`.

    Example:

    ```python
    >>> from vit_vqgan_hf.evaluation import linear_probe_results, results_to_model_index

    >>> results = linear_probe_results({10: 0.61, 15: 0.73}, dataset="ILSVRC/imagenet-1k", split="validation")
    >>> results_to_model_index(results, "vim-large")[0]["results"][0]["metrics"][0]["value"]
    0.73
    ```
    """
    if not isinstance(results, dict):
        results = load_results(results)
    task = task or results.get("task")
    if isinstance(task, str):
        task = {"type": task, "name": TASK_NAMES.get(task, task)}
    if dataset is None:
        source = (results.get("protocol", {}).get("data") or {}).get("source") or {}
        dataset = {
            "name": source.get("name") or source.get("path") or "unknown",
            "type": source.get("name") or source.get("kind") or "unknown",
        }
        if source.get("split"):
            dataset["split"] = source["split"]
    elif isinstance(dataset, str):
        dataset = {"name": dataset, "type": dataset}
        split = ((results.get("protocol", {}).get("data") or {}).get("source") or {}).get("split")
        if split:
            dataset["split"] = split
    else:
        dataset = {"type": dataset.get("name"), **dataset}
    metrics = []
    for name, value in results.get("metrics", {}).items():
        if name not in MODEL_INDEX_METRICS or value is None:
            continue
        metric_type, display_name = MODEL_INDEX_METRICS[name]
        metrics.append(
            {"type": metric_type, "value": value, "name": display_name, "args": _metric_args(name, results)}
        )
    if not metrics:
        raise ValueError(f"The results hold none of the reportable metrics {sorted(MODEL_INDEX_METRICS)}.")
    return [{"name": model_name, "results": [{"task": task, "dataset": dataset, "metrics": metrics}]}]


def linear_probe_results(
    per_block_accuracy: dict,
    *,
    dataset: str | None = None,
    split: str | None = None,
    best_block: int | None = None,
    num_train_images: int | None = None,
    num_eval_images: int | None = None,
    class_balance: dict | None = None,
    image_size: int | None = None,
    resize: str | None = None,
    seeds: dict | None = None,
    classifier: dict | None = None,
    model: dict | None = None,
) -> dict:
    """
    Linear-probe accuracies (paper Sec. 5.3, Table 7) as a results dict of the same format as the other evaluations.

    The headline `top1_accuracy` is the accuracy of `best_block` (by default the best one); the accuracies of all
    probed blocks are kept under `details.per_block_top1_accuracy`.

    Args:
        per_block_accuracy (`dict[int, float]`):
            Top-1 accuracy, as a fraction in `[0, 1]`, of the probe on each block's average-pooled features.
        dataset (`str`, *optional*, defaults to `None`):
            Dataset name, e.g. `"ILSVRC/imagenet-1k"`.
        split (`str`, *optional*, defaults to `None`):
            Split the accuracy is measured on.
        best_block (`int`, *optional*, defaults to `None`):
            Block to report; `None` picks the most accurate.
        num_train_images (`int`, *optional*, defaults to `None`):
            Images the classifier was trained on.
        num_eval_images (`int`, *optional*, defaults to `None`):
            Images the accuracy is measured on.
        class_balance (`dict`, *optional*, defaults to `None`):
            Images per class of the evaluation split.
        image_size (`int`, *optional*, defaults to `None`):
            Side of the images fed to the tokenizer.
        resize (`str`, *optional*, defaults to `None`):
            Resizing and cropping of the images.
        seeds (`dict`, *optional*, defaults to `None`):
            Seeds of the classifier training.
        classifier (`dict`, *optional*, defaults to `None`):
            Classifier settings (optimizer, learning rate, epochs, augmentation, normalization before pooling,
            block indexing base, ...).
        model (`dict`, *optional*, defaults to `None`):
            What was evaluated.

    Returns:
        `dict`: a results dict ([`build_results`]) with task `"image-classification"`.
    """
    if not per_block_accuracy:
        raise ValueError("`per_block_accuracy` is empty.")
    accuracies = {int(block): float(value) for block, value in per_block_accuracy.items()}
    if any(not 0.0 <= value <= 1.0 for value in accuracies.values()):
        raise ValueError("Accuracies must be fractions in [0, 1]; divide percentages by 100.")
    if best_block is None:
        best_block = max(accuracies, key=accuracies.get)
    if best_block not in accuracies:
        raise ValueError(f"`best_block` {best_block} is not among the probed blocks {sorted(accuracies)}.")
    return build_results(
        "image-classification",
        {"top1_accuracy": accuracies[best_block]},
        num_samples=num_eval_images,
        class_balance=class_balance or {"labelled": True},
        image_size=image_size,
        resize=resize,
        seeds=seeds,
        model=model,
        data={"source": {"kind": "dataset", "name": dataset, "split": split}},
        settings={"classifier": classifier or {}, "num_train_images": num_train_images},
        details={
            "reported_block": best_block,
            "per_block_top1_accuracy": {str(block): accuracies[block] for block in sorted(accuracies)},
        },
    )


__all__ = [
    "IMPLEMENTATIONS",
    "RESULTS_FORMAT",
    "build_results",
    "library_versions",
    "linear_probe_results",
    "load_results",
    "results_to_model_index",
    "save_results",
]
