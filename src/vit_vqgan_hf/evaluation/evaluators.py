# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Accumulating evaluators for the tokenizer and for generated samples, across any number of accelerate processes.

Every process runs the networks on its own batches; the per-image results (metric values, token ids, features,
logits, labels) are gathered in dataset order with `accelerator.gather_for_metrics`, which also drops the samples
that accelerate repeats to even out the last batch. Only the main process accumulates them, so 1 and N processes
give the same numbers, including the per-256-images codebook usage, whose groups follow the dataset order.

torchmetrics' stateful metrics would sync their states over `torch.distributed` on their own, but they would count
the repeated samples of the last batch and could not follow the dataset order; they are used here through their
functional forms on per-image values.
"""

import torch
from torch import nn

from ..utils.pixel_losses import l2_loss, logit_laplace_loss
from .frechet import FeatureAccumulator, ReferenceStatistics, describe_feature_network, fid_from_features
from .generation_metrics import generation_metrics, inception_score
from .image_sets import class_balance
from .reconstruction_metrics import USAGE_GROUP_SIZE, CodebookUsageAccumulator, per_image_psnr, per_image_ssim


def to_uint8_images(pixel_values: torch.Tensor) -> torch.Tensor:
    """Images in `[-1, 1]` -> `uint8` in `[0, 255]`, rounded as when saving a PNG."""
    return ((pixel_values.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def extract_features(network: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    Features and (when the network has a classifier) logits of a batch of images.

    A feature network maps `uint8` images `(batch, 3, H, W)` to features `(batch, num_features)` (the contract of
    torchmetrics' `feature=` networks); networks with a `features_and_logits` method, such as [`FidInceptionV3`],
    also give classifier logits for the Inception Score.

    Args:
        network (`nn.Module`):
            The feature network.
        images (`torch.ByteTensor` of shape `(batch_size, 3, height, width)`):
            Images in `[0, 255]`.

    Returns:
        `tuple(torch.FloatTensor, torch.FloatTensor | None)`.
    """
    if hasattr(network, "features_and_logits"):
        features, logits = network.features_and_logits(images)
    else:
        features, logits = network(images), None
    if features.ndim != 2 or features.shape[0] != images.shape[0]:
        raise ValueError(
            f"The feature network must return (batch_size, num_features) features, got {tuple(features.shape)}."
        )
    return features.float(), None if logits is None else logits.float()


class _Gathering:
    """Gathers dicts of per-image tensors across processes, in dataset order."""

    def __init__(self, accelerator):
        self.accelerator = accelerator

    @property
    def is_main_process(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    @property
    def num_processes(self) -> int:
        return 1 if self.accelerator is None else self.accelerator.num_processes

    def __call__(self, batch: dict, variable_sizes: bool = False) -> dict:
        if self.num_processes == 1:
            return {key: value.cpu() for key, value in batch.items()}
        if not variable_sizes:
            return {key: value.cpu() for key, value in self.accelerator.gather_for_metrics(batch).items()}
        # Batches of different sizes per process (the sampling loop): gather objects in process order. accelerate
        # comes with the `training` extra, which only a run over several processes needs.
        from accelerate.utils import gather_object

        parts = gather_object([{key: value.cpu() for key, value in batch.items()}])
        keys = list(dict.fromkeys(key for part in parts for key in part))
        return {key: torch.cat([part[key] for part in parts if key in part]) for key in keys}


class TokenizerEvaluator:
    """
    Reconstruction metrics and codebook usage of a ViT-VQGAN tokenizer over a split, accumulated batch by batch.

    Per image: PSNR and SSIM (torchmetrics) and LPIPS on the reconstruction rounded to `uint8` (what a saved image
    holds), l1 and l2 on the `[0, 1]` scale and the logit-Laplace NLL on the model's float outputs (the training
    losses' conventions, so values compare with paper Tables 1 and 4). Over the set: rFID (reconstructions against the
    originals, both as `uint8`) and the Inception Score of the reconstructions when a feature network is given, and
    codebook usage by the paper's protocol ([`CodebookUsageAccumulator`]).

    Call [`TokenizerEvaluator.update`] on every batch of a dataloader prepared by `accelerator` (all processes), then
    [`TokenizerEvaluator.compute`]; only the main process accumulates and returns results.

    Args:
        codebook_size (`int`):
            Number of codes of the tokenizer.
        accelerator (`accelerate.Accelerator`, *optional*, defaults to `None`):
            Gathers across processes; `None` for a single process.
        feature_network (`nn.Module`, *optional*, defaults to `None`):
            Feature network for rFID and IS, e.g. [`load_fid_inception`]; both are skipped without it.
        lpips (`nn.Module`, *optional*, defaults to `None`):
            LPIPS network (`lpips(input, target) -> (batch,)` on `[-1, 1]` images, e.g. [`load_lpips`]); LPIPS is
            skipped without it.
        logit_laplace_eps (`float`, *optional*, defaults to 0.1):
            Squash margin of the logit-Laplace NLL; use the tokenizer's `config.logit_laplace_eps`.
        usage_group_size (`int`, *optional*, defaults to 256):
            Images per codebook-usage group.
        inception_score_splits (`int`, *optional*, defaults to 10):
            Splits of the Inception Score.
        seed (`int`, *optional*, defaults to 0):
            Seed of the Inception Score shuffle.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf import VitVqganConfig, VitVqganModel
    >>> from vit_vqgan_hf.evaluation import TokenizerEvaluator

    >>> model = VitVqganModel(VitVqganConfig.from_preset("tiny")).eval()
    >>> evaluator = TokenizerEvaluator(codebook_size=model.config.codebook_size)
    >>> pixel_values = torch.rand(4, 3, 32, 32) * 2 - 1
    >>> with torch.no_grad():
    ...     evaluator.update(pixel_values, model(pixel_values))
    >>> metrics = evaluator.compute()["metrics"]
    >>> sorted(name for name in metrics if not name.startswith("codebook"))
    ['dead_codes', 'l1', 'l2', 'logit_laplace', 'psnr', 'ssim', 'used_codes']
    ```
    """

    def __init__(
        self,
        codebook_size: int,
        accelerator=None,
        feature_network: nn.Module | None = None,
        lpips: nn.Module | None = None,
        logit_laplace_eps: float = 0.1,
        usage_group_size: int = USAGE_GROUP_SIZE,
        inception_score_splits: int = 10,
        seed: int = 0,
    ):
        self.gather = _Gathering(accelerator)
        self.feature_network = feature_network
        self.lpips = lpips
        self.logit_laplace_eps = logit_laplace_eps
        self.inception_score_splits = inception_score_splits
        self.seed = seed
        self.usage = CodebookUsageAccumulator(codebook_size, group_size=usage_group_size)
        # Features are kept (2 x 50k x 2048 float32 = 800 MB for ImageNet's validation split, on the main process):
        # for sets smaller than the feature dimension, FID is then computed in the sample space.
        self.originals = FeatureAccumulator(keep_features=True)
        self.reconstructions = FeatureAccumulator(keep_features=True)
        self._sums: dict[str, float] = {}
        self._labels: list[int] = []
        self.num_images = 0

    @torch.no_grad()
    def update(self, pixel_values: torch.Tensor, model_output, labels: torch.Tensor | None = None) -> None:
        """
        Add a batch.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
                The original images in `[-1, 1]`.
            model_output ([`VitVqganModelOutput`]):
                The tokenizer's forward output on `pixel_values` (`reconstruction`, `image_tokens`, and
                `logit_laplace_loc`/`logit_laplace_log_scale` when present are read).
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*, defaults to `None`):
                Class labels, for the class balance in the results.
        """
        reconstruction = model_output.reconstruction.detach().float()
        pixel_values = pixel_values.detach().float()
        original_uint8, reconstruction_uint8 = to_uint8_images(pixel_values), to_uint8_images(reconstruction)
        original_unit, reconstruction_unit = original_uint8.float() / 255, reconstruction_uint8.float() / 255
        batch_size = pixel_values.shape[0]
        batch = {
            "psnr": per_image_psnr(reconstruction_unit, original_unit),
            "ssim": per_image_ssim(reconstruction_unit, original_unit),
            # l1 and l2 on the [0, 1] scale, as `training.losses.l2_loss`.
            "l1": (reconstruction - pixel_values).abs().mean(dim=(1, 2, 3)) / 2,
            "l2": torch.stack(
                [l2_loss(pixel_values[i : i + 1], reconstruction[i : i + 1]) for i in range(batch_size)]
            ),
            "image_tokens": model_output.image_tokens.detach().reshape(batch_size, -1),
            "labels": (
                torch.full((batch_size,), -1, dtype=torch.long, device=pixel_values.device)
                if labels is None
                else labels.detach().long().reshape(batch_size)
            ),
        }
        if model_output.logit_laplace_loc is not None:
            batch["logit_laplace"] = torch.stack(
                [
                    logit_laplace_loss(
                        pixel_values[i : i + 1],
                        model_output.logit_laplace_loc[i : i + 1],
                        model_output.logit_laplace_log_scale[i : i + 1],
                        eps=self.logit_laplace_eps,
                    )
                    for i in range(batch_size)
                ]
            )
        if self.lpips is not None:
            batch["lpips"] = self.lpips(reconstruction_unit * 2 - 1, original_unit * 2 - 1).float().reshape(-1)
        if self.feature_network is not None:
            batch["original_features"], _ = extract_features(self.feature_network, original_uint8)
            batch["reconstruction_features"], logits = extract_features(self.feature_network, reconstruction_uint8)
            if logits is not None:
                batch["reconstruction_logits"] = logits

        gathered = self.gather({key: value.contiguous() for key, value in batch.items()})
        if not self.gather.is_main_process:
            return
        self.num_images += gathered["image_tokens"].shape[0]
        self.usage.update(gathered["image_tokens"])
        self._labels.extend(gathered["labels"].tolist())
        for name in ("psnr", "ssim", "l1", "l2", "logit_laplace", "lpips"):
            if name in gathered:
                self._sums[name] = self._sums.get(name, 0.0) + float(gathered[name].double().sum())
        if "original_features" in gathered:
            self.originals.update(gathered["original_features"])
            self.reconstructions.update(gathered["reconstruction_features"], gathered.get("reconstruction_logits"))

    def compute(self) -> dict | None:
        """
        The metrics over everything added.

        Returns:
            `None` on processes other than the main one; on the main process a `dict` with `metrics` (`psnr`, `ssim`,
            `lpips`, `l1`, `l2`, `logit_laplace`, `rfid`, `inception_score`, `inception_score_std`,
            `codebook_usage`, `codebook_usage_std`, `codebook_perplexity`, `dead_codes`, `used_codes`,
            `codebook_usage_whole_set`), `skipped` (metric -> reason), `codebook_usage` (the protocol details and
            per-group usages), `code_counts` (`torch.LongTensor`), `num_images` and `class_balance`.
        """
        if not self.gather.is_main_process:
            return None
        if self.num_images == 0:
            raise ValueError("No images were evaluated.")
        metrics = {name: total / self.num_images for name, total in self._sums.items()}
        skipped = {}
        if "lpips" not in metrics:
            skipped["lpips"] = "no LPIPS network given (`lpips`)"
        if "logit_laplace" not in metrics:
            skipped["logit_laplace"] = "the tokenizer has no logit-Laplace output (use_logit_laplace=False)"
        if self.feature_network is None:
            skipped["rfid"] = skipped["inception_score"] = "no feature network given (`feature_network`)"
        elif self.num_images < 2:
            skipped["rfid"] = skipped["inception_score"] = "fewer than two images"
        else:
            metrics["rfid"] = fid_from_features(
                self.reconstructions.features, reference_features=self.originals.features
            )
            if self.reconstructions.logits is None:
                skipped["inception_score"] = "the feature network gives no classifier logits"
            else:
                metrics["inception_score"], metrics["inception_score_std"] = inception_score(
                    self.reconstructions.logits, num_splits=self.inception_score_splits, seed=self.seed
                )
        usage = self.usage.compute()
        for name in (
            "codebook_usage",
            "codebook_usage_std",
            "codebook_perplexity",
            "dead_codes",
            "used_codes",
            "codebook_usage_whole_set",
        ):
            metrics[name] = usage[name]
        usage_protocol = {
            name: usage[name]
            for name in (
                "usage_group_size",
                "num_usage_groups",
                "images_in_partial_group",
                "codebook_usage_protocol_complete",
                "group_usages",
            )
        }
        return {
            "metrics": metrics,
            "skipped": skipped,
            "codebook_usage": usage_protocol,
            "code_counts": self.usage.code_counts.clone(),
            "num_images": self.num_images,
            "class_balance": class_balance(self._labels),
        }


class GenerationEvaluator:
    """
    Features of generated samples (and optionally of reference images) for FID, IS, KID and precision/recall.

    Call [`GenerationEvaluator.update`] on batches of samples (`real=False`) and, when the reference is a set of
    images rather than saved statistics, of reference images (`real=True`), on all processes; then
    [`GenerationEvaluator.reference_statistics`] and [`GenerationEvaluator.compute`] on the main process.

    Args:
        feature_network (`nn.Module`):
            The feature network (e.g. [`load_fid_inception`], or any module mapping `uint8` images to features).
        accelerator (`accelerate.Accelerator`, *optional*, defaults to `None`):
            Gathers across processes; `None` for a single process.
        keep_features (`bool`, *optional*, defaults to `True`):
            Keep the sample features (needed for KID and precision/recall).
        max_reference_features (`int`, *optional*, defaults to `None`):
            Keep at most this many reference features (a seeded uniform subset, for KID and precision/recall; FID
            always uses all reference images), e.g. 50000 for the 1.28M ImageNet training images.
        seed (`int`, *optional*, defaults to 0):
            Seed of that subset.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf.evaluation import GenerationEvaluator

    >>> class MeanColour(torch.nn.Module):  # a stand-in; use `load_fid_inception(...)` for real numbers
    ...     def forward(self, images):
    ...         return images.float().mean(dim=(2, 3)) / 255

    >>> evaluator = GenerationEvaluator(MeanColour())
    >>> images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    >>> evaluator.update(images, real=True)
    >>> evaluator.update(images)
    >>> values, skipped = evaluator.compute(evaluator.reference_statistics())
    >>> abs(values["fid"]) < 1e-9, skipped
    (True, {'inception_score': 'the feature network gives no classifier logits'})
    ```
    """

    def __init__(
        self,
        feature_network: nn.Module,
        accelerator=None,
        keep_features: bool = True,
        max_reference_features: int | None = None,
        seed: int = 0,
    ):
        self.feature_network = feature_network
        self.gather = _Gathering(accelerator)
        self.samples = FeatureAccumulator(keep_features=keep_features)
        self.references = FeatureAccumulator(keep_features=True, max_features=max_reference_features, seed=seed)
        self.sample_labels: list[int] = []
        self.reference_labels: list[int] = []

    @torch.no_grad()
    def update(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        real: bool = False,
        variable_batch_sizes: bool = False,
    ) -> None:
        """
        Add a batch of images.

        Args:
            images (`torch.ByteTensor` of shape `(batch_size, 3, height, width)`):
                Images in `[0, 255]`; `batch_size` may be 0 with `variable_batch_sizes`.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*, defaults to `None`):
                Class labels, for the class balance in the results.
            real (`bool`, *optional*, defaults to `False`):
                Whether the images are reference images rather than samples.
            variable_batch_sizes (`bool`, *optional*, defaults to `False`):
                Set when the batches do not come from a dataloader prepared by the accelerator (so processes may
                hold batches of different sizes, e.g. in a sampling loop); they are then gathered as objects, in
                process order.
        """
        if images.dtype != torch.uint8:
            raise ValueError(f"Images must be uint8 in [0, 255], got {images.dtype}.")
        batch_size = images.shape[0]
        batch = {
            "labels": (
                torch.full((batch_size,), -1, dtype=torch.long, device=images.device)
                if labels is None
                else labels.detach().long().reshape(batch_size).to(images.device)
            )
        }
        if batch_size:
            batch["features"], logits = extract_features(self.feature_network, images)
            if logits is not None:
                batch["logits"] = logits
        elif not variable_batch_sizes:
            return
        gathered = self.gather(
            {key: value.contiguous() for key, value in batch.items()}, variable_sizes=variable_batch_sizes
        )
        if not self.gather.is_main_process or "features" not in gathered:
            return
        accumulator = self.references if real else self.samples
        accumulator.update(gathered["features"], gathered.get("logits"))
        (self.reference_labels if real else self.sample_labels).extend(gathered["labels"].tolist())

    def reference_statistics(self, reference: dict | None = None) -> ReferenceStatistics:
        """
        Statistics of the reference images added with `real=True` (main process).

        Args:
            reference (`dict`, *optional*, defaults to `None`):
                Description of the reference images (e.g. `ImageFolderSet.describe()`), stored in the statistics.
        """
        if self.references.num_samples < 2:
            raise ValueError("Fewer than two reference images were added (`update(..., real=True)`).")
        description = dict(reference or {})
        description.setdefault("class_balance", class_balance(self.reference_labels))
        return ReferenceStatistics.from_features(
            self.references, describe_feature_network(self.feature_network), description
        )

    def compute(
        self, reference: ReferenceStatistics, allow_unverified_reference: bool = False, **metric_kwargs
    ) -> tuple[dict, dict]:
        """
        Metrics of the samples against `reference` (main process).

        Args:
            reference ([`ReferenceStatistics`]):
                The reference, from [`GenerationEvaluator.reference_statistics`] or [`ReferenceStatistics.load`].
            allow_unverified_reference (`bool`, *optional*, defaults to `False`):
                Accept statistics that do not record their feature network.
            **metric_kwargs:
                Passed to [`generation_metrics`] (`metrics`, `kid_subsets`, `kid_subset_size`,
                `inception_score_splits`, `precision_recall_k`, `seed`).

        Returns:
            `tuple(dict, dict)`: metric values and skipped metrics with the reason.
        """
        reference.check_feature_network(describe_feature_network(self.feature_network), allow_unverified_reference)
        if self.samples.num_samples < 2:
            raise ValueError("Fewer than two samples were added.")
        return generation_metrics(self.samples, reference, **metric_kwargs)


__all__ = ["GenerationEvaluator", "TokenizerEvaluator", "extract_features"]
