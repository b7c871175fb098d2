# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""`evaluate` module: PSNR, SSIM (torchmetrics), l1 and l2 between reconstructed and original images."""

import datasets
import evaluate
import numpy as np
import torch

from vit_vqgan_hf.evaluation.reconstruction_metrics import per_image_psnr, per_image_ssim


_DESCRIPTION = """
Reconstruction quality of an image tokenizer or autoencoder: PSNR and SSIM (torchmetrics, data range 1), l1 and l2
(mean absolute and squared error on the [0, 1] scale, the convention of the ViT-VQGAN paper's Table 4), each computed
per image and averaged over images.
"""

_CITATION = """
@article{wang2004image,
  title={Image quality assessment: from error visibility to structural similarity},
  author={Wang, Zhou and Bovik, Alan C and Sheikh, Hamid R and Simoncelli, Eero P},
  journal={IEEE Transactions on Image Processing}, volume={13}, number={4}, pages={600--612}, year={2004}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: reconstructed images, (N, 3, H, W) in [0, 1] (floats) or [0, 255] (uint8, recognised by values
        above 1), as arrays or nested lists.
    references: the original images, same shape and range.
    Other keyword arguments (meant for other modules of an `evaluate.combine`) are ignored.
Returns:
    psnr (`float`, dB; `inf` when all images are identical), ssim (`float`), l1 (`float`), l2 (`float`).
Examples:
    >>> reconstruction = evaluate.load("path/to/reconstruction")
    >>> images = np.full((1, 3, 16, 16), 0.5, dtype=np.float32)
    >>> round(reconstruction.compute(predictions=images + 0.1, references=images)["psnr"], 2)
    20.0
"""


def _as_unit_images(images) -> torch.Tensor:
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"Images must have shape (N, 3, H, W), got {array.shape}.")
    tensor = torch.from_numpy(array).float()
    # The inputs are stored as float32 by arrow, so uint8 images are recognised by values above 1.
    return tensor / 255 if tensor.numel() and tensor.max() > 1 else tensor


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Reconstruction(evaluate.Metric):
    def _info(self):
        image = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float32"))))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": image, "references": image}),
            reference_urls=["https://lightning.ai/docs/torchmetrics/stable/image/peak_signal_noise_ratio.html"],
        )

    def _compute(self, predictions, references, **other_modules_kwargs):
        reconstruction, original = _as_unit_images(predictions), _as_unit_images(references)
        if reconstruction.shape != original.shape:
            raise ValueError(f"Shapes differ: {tuple(reconstruction.shape)} vs {tuple(original.shape)}.")
        difference = reconstruction - original
        return {
            "psnr": float(per_image_psnr(reconstruction, original).mean()),
            "ssim": float(per_image_ssim(reconstruction, original).mean()),
            "l1": float(difference.abs().mean()),
            "l2": float(difference.pow(2).mean()),
        }
