# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""`evaluate` module: Frechet distance between the features of two image sets, with a feature network passed in."""

import datasets
import evaluate
import numpy as np
import torch

from vit_vqgan_hf.evaluation.evaluators import extract_features
from vit_vqgan_hf.evaluation.frechet import (
    FeatureAccumulator,
    ReferenceStatistics,
    describe_feature_network,
    fid_from_features,
)


_DESCRIPTION = """
Frechet Inception Distance (FID) between generated (or reconstructed) images and reference images: the Frechet
distance between Gaussians fitted to the features of a feature network. The network is passed in
(`feature_network=`, e.g. `vit_vqgan_hf.evaluation.load_fid_inception(path)`), nothing is downloaded. The reference is
given as images (`reference_images=`) or as saved statistics (`reference_statistics=path`), which must come from the
same network; it is a keyword argument rather than `references` so that saved statistics need no images (pass it
alongside `references` in an `evaluate.combine`). Use at least a few thousand images per set for meaningful values
(50,000 samples is the usual protocol).
"""

_CITATION = """
@inproceedings{heusel2017gans,
  title={{GANs} Trained by a Two Time-Scale Update Rule Converge to a Local {Nash} Equilibrium},
  author={Heusel, Martin and Ramsauer, Hubert and Unterthiner, Thomas and Nessler, Bernhard and Hochreiter, Sepp},
  booktitle={Advances in Neural Information Processing Systems}, year={2017}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: images to evaluate, (N, 3, H, W), uint8 in [0, 255] or floats in [0, 1] (given to the feature
        network as uint8).
    feature_network (`torch.nn.Module`): maps a batch of images to (batch, num_features) features.
    reference_images (*optional*): reference images, same format as `predictions`.
    reference_statistics (`str`, *optional*): `.npz` written by `ReferenceStatistics.save` (instead of images).
    batch_size (`int`, *optional*, defaults to 50): images per feature-network call.
    Other keyword arguments (meant for other modules of an `evaluate.combine`) are ignored.
Returns:
    fid (`float`), num_predictions (`int`), num_references (`int`), feature_network (`str`),
    feature_network_sha256 (`str`).
Examples:
    >>> fid = evaluate.load("path/to/fid")
    >>> fid.compute(predictions=samples, reference_images=images, feature_network=inception)["fid"]  # doctest: +SKIP
"""


def _features(network, images, batch_size) -> FeatureAccumulator:
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"Images must have shape (N, 3, H, W), got {array.shape}.")
    tensor = torch.from_numpy(array).float()
    # The inputs are stored as float32 by arrow: values above 1 are [0, 255] images, others [0, 1]; both are given to
    # the feature network as uint8, rounded as when saving a PNG.
    scale = 1.0 if tensor.numel() and tensor.max() > 1 else 255.0
    tensor = (tensor * scale).round().clamp(0, 255).to(torch.uint8)
    accumulator = FeatureAccumulator(keep_features=True)
    with torch.no_grad():
        for batch in tensor.split(batch_size):
            accumulator.update(extract_features(network, batch)[0])
    return accumulator


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Fid(evaluate.Metric):
    def _info(self):
        image = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float32"))))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": image}),
            reference_urls=["https://arxiv.org/abs/1706.08500", "https://github.com/mseitzer/pytorch-fid"],
        )

    def _compute(
        self,
        predictions,
        feature_network=None,
        reference_images=None,
        reference_statistics=None,
        batch_size=50,
        **other_modules_kwargs,
    ):
        if feature_network is None:
            raise ValueError(
                "`feature_network` is required, e.g. `vit_vqgan_hf.evaluation.load_fid_inception(path_or_hub_id)`."
            )
        network = describe_feature_network(feature_network)
        samples = _features(feature_network, predictions, batch_size)
        if reference_statistics is not None:
            reference = ReferenceStatistics.load(reference_statistics)
            reference.check_feature_network(network)
            value = fid_from_features(samples.features, reference_mu=reference.mu, reference_sigma=reference.sigma)
            num_references = reference.num_samples
        else:
            if reference_images is None:
                raise ValueError("Give `reference_images` or `reference_statistics` (a saved .npz).")
            reference = _features(feature_network, reference_images, batch_size)
            value = fid_from_features(samples.features, reference_features=reference.features)
            num_references = reference.num_samples
        return {
            "fid": value,
            "num_predictions": samples.num_samples,
            "num_references": num_references,
            "feature_network": network["name"],
            "feature_network_sha256": network["weights_sha256"],
        }
