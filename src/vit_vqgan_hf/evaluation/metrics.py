# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Metrics of the ViT-VQGAN tokenizer and of VIM samples (Yu et al., "Vector-quantized Image Modeling with Improved
VQGAN", ICLR 2022, Tables 1 and 3-8).

Tokenizer: PSNR and SSIM (torchmetrics), LPIPS, l1, l2 and the logit-Laplace NLL (as the training losses), rFID
(reconstructions against the originals of the same split), and codebook usage by the paper's protocol (the fraction
of codes used within each group of 256 test images, averaged over the groups), with perplexity and dead codes over
the whole set.

Generation: FID (Heusel et al. 2017), Inception Score (Salimans et al. 2016), KID (Binkowski et al. 2018) and the
k-nearest-neighbour precision and recall of Kynkaanniemi et al. 2019, all on the features of one feature network,
against a reference image set or saved [`ReferenceStatistics`].

Everything here works on features and token ids that are already gathered in dataset order: the evaluators in
`evaluators.py` gather per-image values across processes with accelerate, so that any number of processes gives the
numbers of one.
"""

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .inception import sha256_of_file, state_dict_sha256


# Paper, Table 4 caption: "the percentage of codes used within a batch of 256 test images, averaged over the test set".
USAGE_GROUP_SIZE = 256
REFERENCE_STATISTICS_FORMAT = "vit_vqgan_hf.reference_statistics/1"


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""
    Frechet distance between the Gaussians `N(mu1, sigma1)` and `N(mu2, sigma2)`:

        ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    Computed in float64. `Tr((sigma1 sigma2)^(1/2))` is taken as `Tr((s1 sigma2 s1)^(1/2))` with `s1 = sigma1^(1/2)`,
    which has the same eigenvalues and is symmetric, so both square roots come from symmetric eigendecompositions
    (eigenvalues clamped at 0) rather than from a general matrix square root (pytorch-fid uses `scipy.linalg.sqrtm`;
    both give the same value up to round-off on well-conditioned covariances).

    Args:
        mu1, mu2 (`torch.Tensor` or `np.ndarray` of shape `(num_features,)`):
            Means.
        sigma1, sigma2 (`torch.Tensor` or `np.ndarray` of shape `(num_features, num_features)`):
            Covariances (symmetric positive semi-definite).

    Returns:
        `float`.
    """
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(value, dtype=torch.float64) for value in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(
            f"Statistics of different shapes: mu {tuple(mu1.shape)} vs {tuple(mu2.shape)}, sigma {tuple(sigma1.shape)} "
            f"vs {tuple(sigma2.shape)}; were they computed with the same feature network?"
        )
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = (sigma2 + sigma2.T) / 2
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma1)
    sqrt_sigma1 = (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    difference = mu1 - mu2
    return float(difference @ difference + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)


def mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Mean and unbiased covariance (`N - 1`, as `numpy.cov`) of features, in float64.

    Args:
        features (`torch.Tensor` of shape `(num_samples, num_features)`):
            At least two samples.

    Returns:
        `tuple(torch.DoubleTensor, torch.DoubleTensor)` of shapes `(num_features,)` and `(num_features, num_features)`.
    """
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"Need at least two feature vectors (num_samples, num_features), got {tuple(features.shape)}."
        )
    features = features.double()
    mu = features.mean(dim=0)
    centered = features - mu
    return mu, centered.T @ centered / (features.shape[0] - 1)


def fid_from_features(
    features: torch.Tensor,
    reference_features: torch.Tensor | None = None,
    reference_mu: torch.Tensor | None = None,
    reference_sigma: torch.Tensor | None = None,
) -> float:
    r"""
    FID of features against reference features or reference statistics, with the cheapest exact formula.

    The value is [`frechet_distance`] of the two Gaussians. When a set has fewer samples `n` than feature dimensions
    `d` (e.g. a quick validation of a few hundred images against 2048-d Inception features), `Tr((sigma1 sigma2)^(1/2))`
    is computed in the sample space instead of with `d x d` eigendecompositions: with `sigma = A^T A` for the centered
    features `A` scaled by `1 / sqrt(n - 1)`, the non-zero eigenvalues of `sigma1 sigma2` are those of
    `(A1 A2^T)(A1 A2^T)^T`, so the trace is the nuclear norm of `A1 A2^T` (`n1 x n2`), or, against statistics only,
    `sum(sqrt(eigvalsh(A1 sigma2 A1^T)))` (`n1 x n1`).

    Args:
        features (`torch.Tensor` of shape `(num_samples, num_features)`):
            Features of the evaluated images.
        reference_features (`torch.Tensor` of shape `(num_reference, num_features)`, *optional*, defaults to `None`):
            Features of the reference images.
        reference_mu (`torch.Tensor` of shape `(num_features,)`, *optional*, defaults to `None`):
            Reference mean, when `reference_features` is not given.
        reference_sigma (`torch.Tensor` of shape `(num_features, num_features)`, *optional*, defaults to `None`):
            Reference covariance, when `reference_features` is not given.

    Returns:
        `float`.
    """
    mu, _ = _centered(features)
    if reference_features is not None:
        reference_mu, _ = _centered(reference_features)
    elif reference_mu is None or reference_sigma is None:
        raise ValueError("Give `reference_features`, or `reference_mu` and `reference_sigma`.")
    num_features = features.shape[1]
    small = features.shape[0] < num_features
    if reference_features is not None:
        small = small or reference_features.shape[0] < num_features
    if not small:
        reference = (
            mean_and_covariance(reference_features)
            if reference_features is not None
            else (reference_mu, reference_sigma)
        )
        return frechet_distance(*mean_and_covariance(features), *reference)
    _, scaled = _centered(features)
    difference = mu - torch.as_tensor(reference_mu, dtype=torch.float64)
    if reference_features is not None:
        _, reference_scaled = _centered(reference_features)
        trace_sqrt = torch.linalg.svdvals(scaled @ reference_scaled.T).sum()
        reference_trace = reference_scaled.pow(2).sum()
    else:
        reference_sigma = torch.as_tensor(reference_sigma, dtype=torch.float64)
        middle = scaled @ reference_sigma @ scaled.T
        trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
        reference_trace = reference_sigma.trace()
    return float(difference @ difference + scaled.pow(2).sum() + reference_trace - 2 * trace_sqrt)


def _centered(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and the centered features divided by `sqrt(n - 1)` (so that `A^T A` is the covariance), in float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"Need at least two feature vectors (num_samples, num_features), got {tuple(features.shape)}."
        )
    features = features.double()
    mu = features.mean(dim=0)
    return mu, (features - mu) / math.sqrt(features.shape[0] - 1)


def kernel_inception_distance(
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    r"""
    Kernel Inception Distance: the unbiased MMD^2 with the polynomial kernel `k(x, y) = (gamma x.y + coef0)^degree`,
    averaged over random subsets, as in Binkowski et al. 2018 and torchmetrics/torch-fidelity (same defaults).

    The subsets are drawn without replacement with a `torch.Generator` seeded by `seed`, so the value is reproducible.
    When a set has fewer than `subset_size` samples, the subsets have the size of the smaller set.

    Args:
        real_features (`torch.Tensor` of shape `(num_real, num_features)`):
            Reference features.
        fake_features (`torch.Tensor` of shape `(num_fake, num_features)`):
            Sample features.
        num_subsets (`int`, *optional*, defaults to 100):
            Number of subsets.
        subset_size (`int`, *optional*, defaults to 1000):
            Samples per subset and set.
        degree (`int`, *optional*, defaults to 3):
            Degree of the polynomial kernel.
        gamma (`float`, *optional*, defaults to `None`):
            Kernel scale; `None` means `1 / num_features`.
        coef0 (`float`, *optional*, defaults to 1.0):
            Kernel offset.
        seed (`int`, *optional*, defaults to 0):
            Seed of the subset draws.

    Returns:
        `tuple(float, float)`: mean and standard deviation of MMD^2 over the subsets.
    """
    real_features, fake_features = real_features.double(), fake_features.double()
    size = min(subset_size, real_features.shape[0], fake_features.shape[0])
    if size < 2:
        raise ValueError("KID needs at least two real and two fake samples.")
    gamma = 1.0 / real_features.shape[1] if gamma is None else gamma
    generator = torch.Generator().manual_seed(seed)

    def kernel(first, second):
        return (first @ second.T * gamma + coef0) ** degree

    values = []
    for _ in range(num_subsets):
        real = real_features[torch.randperm(real_features.shape[0], generator=generator)[:size]]
        fake = fake_features[torch.randperm(fake_features.shape[0], generator=generator)[:size]]
        kernel_real, kernel_fake, kernel_cross = kernel(real, real), kernel(fake, fake), kernel(real, fake)
        within = (
            kernel_real.sum() - kernel_real.diagonal().sum() + kernel_fake.sum() - kernel_fake.diagonal().sum()
        ) / (size * (size - 1))
        values.append(within - 2 * kernel_cross.mean())
    values = torch.stack(values)
    std = values.std(unbiased=False) if len(values) > 1 else torch.zeros(())
    return float(values.mean()), float(std)


def inception_score(logits: torch.Tensor, num_splits: int = 10, seed: int = 0) -> tuple[float, float]:
    r"""
    Inception Score `exp(E_x KL(p(y|x) || p(y)))`, mean and standard deviation over `num_splits` splits.

    The samples are shuffled with a generator seeded by `seed` before they are split, so that a class-sorted set
    (e.g. 50 samples per class in class order) does not give splits of few classes.

    Args:
        logits (`torch.Tensor` of shape `(num_samples, num_classes)`):
            Classifier logits (for the FID Inception: the unbiased logits of
            [`FidInceptionV3.features_and_logits`]).
        num_splits (`int`, *optional*, defaults to 10):
            Number of splits, as in the original code.
        seed (`int`, *optional*, defaults to 0):
            Seed of the shuffle.

    Returns:
        `tuple(float, float)`.
    """
    num_samples = logits.shape[0]
    num_splits = max(1, min(num_splits, num_samples))
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    log_probabilities = F.log_softmax(logits.double()[order], dim=1)
    scores = []
    for split in torch.tensor_split(log_probabilities, num_splits):
        log_marginal = torch.logsumexp(split, dim=0) - math.log(split.shape[0])
        kl = (split.exp() * (split - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp())
    scores = torch.stack(scores)
    std = scores.std(unbiased=False) if len(scores) > 1 else torch.zeros(())
    return float(scores.mean()), float(std)


def _kth_neighbour_radii(features: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    """Distance of every point to its k-th nearest other point of the same set."""
    if features.shape[0] <= k:
        raise ValueError(f"Precision/recall with k={k} needs more than {k} samples per set, got {features.shape[0]}.")
    radii = []
    for chunk in features.split(chunk_size):
        distances = torch.cdist(chunk, features)
        # The smallest distance is the point to itself (0), so the k-th neighbour is the (k + 1)-th smallest.
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _fraction_inside(queries: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor, chunk_size: int) -> float:
    inside = 0
    for chunk in queries.split(chunk_size):
        inside += int((torch.cdist(chunk, centers) <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / queries.shape[0]


def manifold_precision_recall(
    real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3, chunk_size: int = 1024
) -> tuple[float, float]:
    """
    Improved precision and recall of Kynkaanniemi et al. 2019 ("Improved Precision and Recall Metric for Assessing
    Generative Models"): each set's manifold is the union of balls around its points with the radius of the k-th
    nearest neighbour; precision is the fraction of samples inside the reference manifold, recall the fraction of
    reference points inside the sample manifold.

    Distances are computed with `torch.cdist` in chunks of `chunk_size` rows, so memory stays at
    `chunk_size x max(num_real, num_fake)` distances.

    Args:
        real_features (`torch.Tensor` of shape `(num_real, num_features)`):
            Reference features.
        fake_features (`torch.Tensor` of shape `(num_fake, num_features)`):
            Sample features.
        k (`int`, *optional*, defaults to 3):
            Neighbourhood size (3 in the paper).
        chunk_size (`int`, *optional*, defaults to 1024):
            Rows of the distance matrix computed at once.

    Returns:
        `tuple(float, float)`: precision and recall in `[0, 1]`.
    """
    real_features, fake_features = real_features.float(), fake_features.float()
    real_radii = _kth_neighbour_radii(real_features, k, chunk_size)
    fake_radii = _kth_neighbour_radii(fake_features, k, chunk_size)
    precision = _fraction_inside(fake_features, real_features, real_radii, chunk_size)
    recall = _fraction_inside(real_features, fake_features, fake_radii, chunk_size)
    return precision, recall


def per_image_psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    PSNR of every image pair, with torchmetrics, on images in `[0, 1]` (data range 1).

    Args:
        reconstruction (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
            Images in `[0, 1]`.
        target (`torch.Tensor` of the same shape):
            Images in `[0, 1]`.

    Returns:
        `torch.DoubleTensor` of shape `(batch_size,)` in dB (`inf` for identical images), computed in float64.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio  # imported when used: it takes seconds

    return peak_signal_noise_ratio(
        reconstruction.double(), target.double(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    ).reshape(-1)


def per_image_ssim(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    SSIM of every image pair, with torchmetrics' defaults (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03), on
    images in `[0, 1]`.

    Args:
        reconstruction (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
            Images in `[0, 1]`.
        target (`torch.Tensor` of the same shape):
            Images in `[0, 1]`.

    Returns:
        `torch.DoubleTensor` of shape `(batch_size,)`, computed in float64.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    # float64: the local variances are differences of means of squares, which lose ~1e-4 of SSIM in float32.
    return structural_similarity_index_measure(
        reconstruction.double(), target.double(), data_range=1.0, reduction="none"
    ).reshape(-1)


def codebook_statistics(code_counts: torch.Tensor) -> dict:
    """
    Usage statistics of a codebook over a whole set, from the count of every code.

    Args:
        code_counts (`torch.Tensor` of shape `(codebook_size,)`):
            How often each code was used.

    Returns:
        `dict` with `codebook_perplexity` (`exp` of the entropy of the code distribution; `codebook_size` when all
        codes are equally used), `used_codes`, `dead_codes` (never used), `dead_code_fraction` and
        `codebook_usage_whole_set` (fraction of codes used at least once).
    """
    code_counts = code_counts.double()
    probabilities = code_counts / code_counts.sum().clamp(min=1)
    entropy = -(probabilities * probabilities.clamp(min=1e-30).log()).sum()
    used = int((code_counts > 0).sum())
    size = code_counts.numel()
    return {
        "codebook_perplexity": float(entropy.exp()),
        "used_codes": used,
        "dead_codes": size - used,
        "dead_code_fraction": (size - used) / size,
        "codebook_usage_whole_set": used / size,
    }


class CodebookUsageAccumulator:
    """
    Codebook usage by the paper's protocol: the fraction of codes used within each group of `group_size` consecutive
    images, averaged over the groups; plus the code counts of the whole set.

    Feed token ids of images in dataset order; batches of any size are split and joined into groups of exactly
    `group_size` images. Only full groups are averaged; the images of a last, partial group are counted in the
    whole-set statistics and reported (`images_in_partial_group`). A set smaller than one group is measured as one
    partial group, and `codebook_usage_protocol_complete` is then `False`.

    Args:
        codebook_size (`int`):
            Number of codes.
        group_size (`int`, *optional*, defaults to 256):
            Images per group (256 in the paper).

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf.evaluation import CodebookUsageAccumulator

    >>> usage = CodebookUsageAccumulator(codebook_size=4, group_size=2)
    >>> usage.update(torch.tensor([[0, 1], [0, 0], [2, 3], [3, 3]]))
    >>> usage.compute()["codebook_usage"]
    0.5
    ```
    """

    def __init__(self, codebook_size: int, group_size: int = USAGE_GROUP_SIZE):
        if group_size < 1:
            raise ValueError(f"`group_size` must be positive, got {group_size}.")
        self.codebook_size = codebook_size
        self.group_size = group_size
        self.code_counts = torch.zeros(codebook_size, dtype=torch.long)
        self.group_usages: list[float] = []
        self._group_counts = torch.zeros(codebook_size, dtype=torch.long)
        self._images_in_group = 0
        self.num_images = 0

    def update(self, image_tokens: torch.Tensor) -> None:
        """
        Add the token ids of a batch of images, in dataset order.

        Args:
            image_tokens (`torch.LongTensor` of shape `(batch_size, ...)`):
                Code ids of every image (any grid shape after the batch dimension).
        """
        image_tokens = image_tokens.detach().cpu().long().reshape(image_tokens.shape[0], -1)
        if image_tokens.numel() and (image_tokens.min() < 0 or image_tokens.max() >= self.codebook_size):
            raise ValueError(f"Token ids must lie in [0, {self.codebook_size}).")
        self.num_images += image_tokens.shape[0]
        start = 0
        while start < image_tokens.shape[0]:
            take = min(self.group_size - self._images_in_group, image_tokens.shape[0] - start)
            counts = torch.bincount(image_tokens[start : start + take].flatten(), minlength=self.codebook_size)
            self._group_counts += counts
            self.code_counts += counts
            self._images_in_group += take
            start += take
            if self._images_in_group == self.group_size:
                self.group_usages.append(float((self._group_counts > 0).double().mean()))
                self._group_counts.zero_()
                self._images_in_group = 0

    def compute(self) -> dict:
        """
        The usage statistics so far.

        Returns:
            `dict` with `codebook_usage` (mean over groups of the used fraction), `codebook_usage_std`,
            `usage_group_size`, `num_usage_groups`, `images_in_partial_group`, `codebook_usage_protocol_complete`,
            `group_usages` and the keys of [`codebook_statistics`].
        """
        if self.num_images == 0:
            raise ValueError("No tokens were added.")
        usages = list(self.group_usages)
        complete = bool(usages)
        if not usages:
            usages = [float((self._group_counts > 0).double().mean())]
        values = torch.tensor(usages, dtype=torch.float64)
        return {
            "codebook_usage": float(values.mean()),
            "codebook_usage_std": float(values.std(unbiased=False)) if len(values) > 1 else 0.0,
            "usage_group_size": self.group_size,
            "num_usage_groups": len(self.group_usages),
            "images_in_partial_group": self._images_in_group,
            "codebook_usage_protocol_complete": complete,
            "group_usages": usages,
            **codebook_statistics(self.code_counts),
        }


class FeatureAccumulator:
    """
    Collects features (and classifier logits) of a set of images, in order, for FID, KID, precision/recall and IS.

    FID needs the mean and covariance only; KID and precision/recall need the features themselves. By default every
    feature vector is kept (50k x 2048 float32 is 400 MB). With `max_features`, at most that many are kept, a uniform
    random subset drawn by reservoir sampling with a generator seeded by `seed` (so the subset depends on the dataset
    order only), and the mean and covariance come from running float64 sums over all features.

    Args:
        keep_features (`bool`, *optional*, defaults to `True`):
            Keep feature vectors; without them only the running sums are kept (enough for FID).
        max_features (`int`, *optional*, defaults to `None`):
            Keep at most this many feature vectors; `None` keeps all.
        seed (`int`, *optional*, defaults to 0):
            Seed of the reservoir sample.
    """

    def __init__(self, keep_features: bool = True, max_features: int | None = None, seed: int = 0):
        if max_features is not None and max_features < 2:
            raise ValueError(f"`max_features` must be at least 2, got {max_features}.")
        self.keep_features = keep_features
        self.max_features = max_features
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)
        self._features: list[torch.Tensor] = []
        self._reservoir = None
        self._logits: list[torch.Tensor] = []
        self._sum = None
        self._outer_sum = None
        self.num_samples = 0

    def update(self, features: torch.Tensor, logits: torch.Tensor | None = None) -> None:
        """
        Add the features `(batch_size, num_features)` and optional logits `(batch_size, num_classes)` of a batch.
        """
        features = features.detach().cpu().float()
        if not self.keep_features or self.max_features is not None:
            features64 = features.double()
            self._sum = features64.sum(0) if self._sum is None else self._sum + features64.sum(0)
            outer = features64.T @ features64
            self._outer_sum = outer if self._outer_sum is None else self._outer_sum + outer
        if self.keep_features:
            self._keep(features)
        if logits is not None:
            self._logits.append(logits.detach().cpu().float())
        self.num_samples += features.shape[0]

    def _keep(self, features: torch.Tensor) -> None:
        if self.max_features is None:
            self._features.append(features)
            return
        room = max(0, self.max_features - self.num_samples)
        if room:
            self._features.append(features[:room])
        rest = features[room:]
        if not len(rest):
            return
        if self._reservoir is None:
            self._reservoir = torch.cat(self._features)
            self._features = []
        # Algorithm R: the item of global index t replaces a random kept one with probability max_features / (t + 1).
        positions = torch.arange(len(rest), dtype=torch.float64) + self.num_samples + room
        draws = (torch.rand(len(rest), generator=self._generator, dtype=torch.float64) * (positions + 1)).long()
        for row in (draws < self.max_features).nonzero().flatten().tolist():
            self._reservoir[draws[row]] = rest[row]

    @property
    def all_features_kept(self) -> bool:
        """Whether [`FeatureAccumulator.features`] holds every feature vector added."""
        return self.keep_features and (self.max_features is None or self.num_samples <= self.max_features)

    @property
    def features(self) -> torch.Tensor | None:
        """The kept features `(num_kept, num_features)`, or `None` when none were kept."""
        if self._reservoir is not None:
            return self._reservoir
        return torch.cat(self._features) if self._features else None

    @property
    def logits(self) -> torch.Tensor | None:
        """All logits `(num_samples, num_classes)`, or `None` when none were given."""
        return torch.cat(self._logits) if self._logits else None

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance (`N - 1`) of all features added, in float64."""
        if self.all_features_kept:
            return mean_and_covariance(self.features)
        if self.num_samples < 2:
            raise ValueError("Need at least two feature vectors.")
        mu = self._sum / self.num_samples
        sigma = (self._outer_sum - self.num_samples * torch.outer(mu, mu)) / (self.num_samples - 1)
        return mu, sigma


def describe_feature_network(network: torch.nn.Module) -> dict:
    """
    Identity of a feature network for results files and reference statistics: its name, the sha256 of its weights
    ([`state_dict_sha256`], or the `weights_sha256` that [`load_fid_inception`] stored), its output size and input
    preprocessing, and where it was loaded from.

    Args:
        network (`nn.Module`):
            The feature network.

    Returns:
        `dict` with `name`, `weights_sha256`, `num_features`, `preprocessing`, `source`, `weights_files` and
        `is_pytorch_fid_release` (the last three `None` when unknown).
    """
    return {
        "name": getattr(network, "feature_network_name", type(network).__name__),
        "weights_sha256": getattr(network, "weights_sha256", None) or state_dict_sha256(network),
        "num_features": getattr(network, "num_features", None),
        "preprocessing": getattr(network, "preprocessing", None),
        "source": getattr(network, "source", None),
        "weights_files": getattr(network, "weights_files", None),
        "is_pytorch_fid_release": getattr(network, "is_pytorch_fid_release", None),
    }


def _json_array(value) -> np.ndarray:
    return np.array(json.dumps(value, sort_keys=True))


@dataclass
class ReferenceStatistics:
    """
    Features statistics of a reference set, saved to and loaded from `.npz`, tied to the feature network that made
    them.

    The file holds `mu` (float64), `sigma` (float64), `num_samples`, optionally `features` (float32, for KID and
    precision/recall) and `metadata`, a JSON string with `format`, `feature_network` (name and weights sha256, as
    [`describe_feature_network`]) and the description of the reference images (source, number, class balance,
    resizing). [`ReferenceStatistics.check_feature_network`] refuses statistics of another network.

    Args:
        mu (`torch.DoubleTensor` of shape `(num_features,)`):
            Mean of the features.
        sigma (`torch.DoubleTensor` of shape `(num_features, num_features)`):
            Covariance of the features.
        num_samples (`int`):
            Number of reference images.
        features (`torch.FloatTensor` of shape `(num_samples, num_features)`, *optional*, defaults to `None`):
            The features themselves.
        metadata (`dict`, *optional*, defaults to `{}`):
            `feature_network` and `reference` descriptions.
        path (`str`, *optional*, defaults to `None`):
            File the statistics were loaded from.
        file_sha256 (`str`, *optional*, defaults to `None`):
            sha256 of that file.
    """

    mu: torch.Tensor
    sigma: torch.Tensor
    num_samples: int
    features: torch.Tensor | None = None
    metadata: dict = field(default_factory=dict)
    path: str | None = None
    file_sha256: str | None = None

    @classmethod
    def from_features(
        cls, accumulator: FeatureAccumulator, feature_network: dict, reference: dict | None = None
    ) -> "ReferenceStatistics":
        """
        Statistics of the features in a [`FeatureAccumulator`].

        Args:
            accumulator ([`FeatureAccumulator`]):
                Features of the reference images.
            feature_network (`dict`):
                [`describe_feature_network`] of the network that computed them.
            reference (`dict`, *optional*, defaults to `None`):
                Description of the reference images (e.g. `ImageFolderSet.describe()`).
        """
        mu, sigma = accumulator.statistics()
        metadata = {"format": REFERENCE_STATISTICS_FORMAT, "feature_network": feature_network}
        metadata["reference"] = reference or {}
        if accumulator.features is not None and not accumulator.all_features_kept:
            metadata["features_subset"] = {
                "num_features_kept": accumulator.features.shape[0],
                "of": accumulator.num_samples,
                "method": "uniform reservoir sample in dataset order (KID and precision/recall); FID uses all",
                "seed": accumulator.seed,
            }
        return cls(
            mu=mu, sigma=sigma, num_samples=accumulator.num_samples, features=accumulator.features, metadata=metadata
        )

    def save(self, path: str | os.PathLike, include_features: bool = True) -> str:
        """
        Write the statistics to an `.npz` file.

        Args:
            path (`str` or `os.PathLike`):
                Target file; `.npz` is appended when missing.
            include_features (`bool`, *optional*, defaults to `True`):
                Also store the features, so that KID and precision/recall can be computed against the file.

        Returns:
            `str`: the sha256 of the written file.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "mu": self.mu.double().numpy(),
            "sigma": self.sigma.double().numpy(),
            "num_samples": np.array(self.num_samples, dtype=np.int64),
            "metadata": _json_array(self.metadata),
        }
        if include_features and self.features is not None:
            arrays["features"] = self.features.float().numpy()
        with open(path, "wb") as file:
            np.savez(file, **arrays)
        self.path = str(path)
        self.file_sha256 = sha256_of_file(path)
        return self.file_sha256

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReferenceStatistics":
        """
        Read statistics written by [`ReferenceStatistics.save`], or a foreign `.npz` with `mu` and `sigma` (e.g.
        pytorch-fid's `--save-stats`), which then has no metadata and fails
        [`ReferenceStatistics.check_feature_network`] unless unverified statistics are allowed.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No reference statistics at {str(path)!r}.")
        with np.load(path, allow_pickle=False) as archive:
            if "mu" not in archive.files or "sigma" not in archive.files:
                raise ValueError(f"{str(path)!r} has no `mu` and `sigma` arrays (arrays: {archive.files}).")
            mu = torch.from_numpy(archive["mu"].astype(np.float64))
            sigma = torch.from_numpy(archive["sigma"].astype(np.float64))
            features = (
                torch.from_numpy(archive["features"].astype(np.float32)) if "features" in archive.files else None
            )
            metadata = json.loads(str(archive["metadata"])) if "metadata" in archive.files else {}
            if "num_samples" in archive.files:
                num_samples = int(archive["num_samples"])
            else:
                num_samples = features.shape[0] if features is not None else -1
        return cls(mu, sigma, num_samples, features, metadata, path=str(path), file_sha256=sha256_of_file(path))

    def check_feature_network(self, feature_network: dict, allow_unverified: bool = False) -> None:
        """
        Refuse statistics that another feature network computed.

        Args:
            feature_network (`dict`):
                [`describe_feature_network`] of the network used now.
            allow_unverified (`bool`, *optional*, defaults to `False`):
                Accept statistics without metadata (foreign files). The results then record them as unverified.

        Raises:
            `ValueError`: when the names or weight checksums differ, or the metadata is missing and
            `allow_unverified` is False.
        """
        recorded = self.metadata.get("feature_network")
        source = self.path or "the reference statistics"
        if not recorded:
            if allow_unverified:
                return
            raise ValueError(
                f"{source!r} does not record which feature network computed it (no metadata), so FID against it may "
                "compare features of different networks. Recompute the statistics with this package "
                "(`--save_reference_stats`), or accept them explicitly (`--allow_unverified_reference_stats`, "
                "`allow_unverified=True`)."
            )
        same_name = recorded.get("name") == feature_network.get("name")
        if not same_name or recorded.get("weights_sha256") != feature_network.get("weights_sha256"):
            raise ValueError(
                f"{source!r} was computed with the feature network {recorded.get('name')!r} (weights sha256 "
                f"{recorded.get('weights_sha256')}), but this evaluation uses {feature_network.get('name')!r} (weights "
                f"sha256 {feature_network.get('weights_sha256')}). Distances between features of different networks "
                "are meaningless: recompute the reference statistics with the same feature network "
                "(`--save_reference_stats` with the same `--inception_model`)."
            )
        if self.mu.numel() != (feature_network.get("num_features") or self.mu.numel()):
            raise ValueError(
                f"{source!r} has {self.mu.numel()}-d statistics, but the feature network outputs "
                f"{feature_network.get('num_features')} features."
            )

    def statistics_sha256(self) -> str:
        """
        Hex sha256 of the mean and covariance (float64 bytes): the same for statistics computed from a reference
        image set and for a statistics file saved from them, so results of both forms can be matched.
        """
        digest = hashlib.sha256()
        for tensor in (self.mu, self.sigma):
            digest.update(tensor.detach().cpu().to(torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def describe(self) -> dict:
        """Path, checksums, sample count and provenance of the statistics, for results files."""
        return {
            "kind": "statistics",
            "path": self.path,
            "file_sha256": self.file_sha256,
            "statistics_sha256": self.statistics_sha256(),
            "num_samples": self.num_samples,
            "num_features_stored": 0 if self.features is None else self.features.shape[0],
            "verified_feature_network": bool(self.metadata.get("feature_network")),
            "reference": self.metadata.get("reference", {}),
        }


def generation_metrics(
    fake: FeatureAccumulator,
    reference: ReferenceStatistics,
    metrics: tuple[str, ...] = ("fid", "inception_score", "kid", "precision_recall"),
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    inception_score_splits: int = 10,
    precision_recall_k: int = 3,
    seed: int = 0,
) -> tuple[dict, dict]:
    """
    FID, Inception Score, KID and precision/recall of samples against reference statistics.

    Metrics that cannot be computed are skipped with a reason: KID and precision/recall without reference features
    (statistics saved without them) or sample features (`keep_features=False`), the Inception Score without
    classifier logits.

    Args:
        fake ([`FeatureAccumulator`]):
            Features (and logits) of the samples.
        reference ([`ReferenceStatistics`]):
            The reference set.
        metrics (`tuple[str, ...]`, *optional*, defaults to `("fid", "inception_score", "kid", "precision_recall")`):
            Which metrics to compute.
        kid_subsets (`int`, *optional*, defaults to 100):
            See [`kernel_inception_distance`].
        kid_subset_size (`int`, *optional*, defaults to 1000):
            See [`kernel_inception_distance`].
        inception_score_splits (`int`, *optional*, defaults to 10):
            See [`inception_score`].
        precision_recall_k (`int`, *optional*, defaults to 3):
            See [`manifold_precision_recall`].
        seed (`int`, *optional*, defaults to 0):
            Seed of the KID subsets and the IS shuffle.

    Returns:
        `tuple(dict, dict)`: metric values (`fid`, `inception_score`, `inception_score_std`, `kid`, `kid_std`,
        `precision`, `recall`) and skipped metrics with the reason.
    """
    unknown = set(metrics) - {"fid", "inception_score", "kid", "precision_recall"}
    if unknown:
        raise ValueError(
            f"Unknown metrics {sorted(unknown)}; choose from fid, inception_score, kid, precision_recall."
        )
    values, skipped = {}, {}
    if "fid" in metrics:
        reference_complete = reference.features is not None and reference.features.shape[0] == reference.num_samples
        if not fake.all_features_kept:
            values["fid"] = frechet_distance(*fake.statistics(), reference.mu, reference.sigma)
        elif reference_complete:
            values["fid"] = fid_from_features(fake.features, reference_features=reference.features)
        else:
            values["fid"] = fid_from_features(
                fake.features, reference_mu=reference.mu, reference_sigma=reference.sigma
            )
    if "inception_score" in metrics:
        if fake.logits is None:
            skipped["inception_score"] = "the feature network gives no classifier logits"
        else:
            values["inception_score"], values["inception_score_std"] = inception_score(
                fake.logits, num_splits=inception_score_splits, seed=seed
            )
    needs_features = [name for name in ("kid", "precision_recall") if name in metrics]
    for name in needs_features:
        if reference.features is None:
            skipped[name] = "the reference statistics hold no features (saved without them)"
        elif fake.features is None:
            skipped[name] = "sample features were not kept"
        elif name == "kid":
            values["kid"], values["kid_std"] = kernel_inception_distance(
                reference.features, fake.features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
            )
        else:
            values["precision"], values["recall"] = manifold_precision_recall(
                reference.features, fake.features, k=precision_recall_k
            )
    return values, skipped


def plot_code_usage(code_counts: torch.Tensor, path: str | os.PathLike, title: str | None = None) -> str:
    """
    Save a plot of codebook usage: code frequencies sorted by rank (log scale), and the histogram of per-code counts.

    Args:
        code_counts (`torch.Tensor` of shape `(codebook_size,)`):
            How often each code was used.
        path (`str` or `os.PathLike`):
            Output image file (`.png`).
        title (`str`, *optional*, defaults to `None`):
            Figure title.

    Returns:
        `str`: the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = code_counts.detach().cpu().double().numpy()
    frequencies = np.sort(counts)[::-1] / max(counts.sum(), 1)
    statistics = codebook_statistics(code_counts)
    figure, (rank_axis, histogram_axis) = plt.subplots(1, 2, figsize=(11, 4))
    rank_axis.plot(np.arange(1, len(frequencies) + 1), np.where(frequencies > 0, frequencies, np.nan))
    rank_axis.set_yscale("log")
    rank_axis.axhline(1 / len(counts), color="gray", linestyle="--", label="uniform")
    rank_axis.set_xlabel("code rank")
    rank_axis.set_ylabel("frequency")
    rank_axis.legend()
    rank_axis.set_title(
        f"used {statistics['used_codes']}/{len(counts)} codes, perplexity {statistics['codebook_perplexity']:.0f}"
    )
    histogram_axis.hist(counts, bins=50)
    histogram_axis.set_xlabel("uses per code")
    histogram_axis.set_ylabel("codes")
    histogram_axis.set_title(f"{statistics['dead_codes']} dead codes")
    if title:
        figure.suptitle(title)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.85, wspace=0.25)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


__all__ = [
    "CodebookUsageAccumulator",
    "FeatureAccumulator",
    "ReferenceStatistics",
    "codebook_statistics",
    "describe_feature_network",
    "fid_from_features",
    "frechet_distance",
    "generation_metrics",
    "inception_score",
    "kernel_inception_distance",
    "manifold_precision_recall",
    "mean_and_covariance",
    "per_image_psnr",
    "per_image_ssim",
    "plot_code_usage",
]
