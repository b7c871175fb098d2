# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Fréchet distances between feature sets (FID, Heusel et al. 2017, and rFID) and the reference statistics they are
measured against: features accumulated in dataset order, their mean and covariance, and `.npz` statistics tied to the
feature network that computed them."""

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..utils.weight_files import sha256_of_file
from .inception import state_dict_sha256


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
        pytorch-fid's save-stats option), which then has no metadata and fails
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
                "([`ReferenceStatistics`] of this package's feature network), or accept them explicitly "
                "(`allow_unverified=True`)."
            )
        same_name = recorded.get("name") == feature_network.get("name")
        if not same_name or recorded.get("weights_sha256") != feature_network.get("weights_sha256"):
            raise ValueError(
                f"{source!r} was computed with the feature network {recorded.get('name')!r} (weights sha256 "
                f"{recorded.get('weights_sha256')}), but this evaluation uses {feature_network.get('name')!r} (weights "
                f"sha256 {feature_network.get('weights_sha256')}). Distances between features of different networks "
                "are meaningless: recompute the reference statistics with the same feature network "
                "(`feature_network`)."
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


__all__ = [
    "FeatureAccumulator",
    "ReferenceStatistics",
    "describe_feature_network",
    "fid_from_features",
    "frechet_distance",
]
