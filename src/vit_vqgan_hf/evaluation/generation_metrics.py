# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Metrics of generated samples beyond FID: Inception Score (Salimans et al. 2016), KID (Binkowski et al. 2018) and
the k-nearest-neighbour precision and recall of Kynkaanniemi et al. 2019, all on the features of one feature network,
and [`generation_metrics`], which computes them with FID against [`ReferenceStatistics`]."""

import math

import torch
import torch.nn.functional as F

from .frechet import FeatureAccumulator, ReferenceStatistics, fid_from_features, frechet_distance


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
    # Split i holds samples [i * N // splits, (i + 1) * N // splits), as in the improved-GAN code and torch-fidelity
    # (`torch.tensor_split` would put the larger splits first and change the score).
    boundaries = [index * num_samples // num_splits for index in range(num_splits + 1)]
    for start, end in zip(boundaries[:-1], boundaries[1:]):
        split = log_probabilities[start:end]
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


__all__ = ["generation_metrics", "inception_score", "kernel_inception_distance", "manifold_precision_recall"]
