"""`vit_vqgan_hf.evaluation.classifier`: the classifier of rejection sampling, its preprocessing against the real
image processors and its loading errors."""

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from transformers import (
    BitImageProcessorPil,
    ConvNextImageProcessorPil,
    EfficientNetImageProcessorPil,
    LevitImageProcessorPil,
    ResNetForImageClassification,
    ViTImageProcessorPil,
)

from vit_vqgan_hf.cli import load_image_classifier
from vit_vqgan_hf.evaluation import ImageClassifier
from vit_vqgan_hf.evaluation.classifier import check_classifier_labels

from .helpers import CLASSIFIER_PROCESSOR, save_tiny_classifier


def smooth_images(height, width, seed=0):
    """Two smooth uint8 images `(2, height, width, 3)`: without sharp edges, PIL's 8-bit resize (clamped between its
    horizontal and vertical passes) and torch's agree up to rounding."""
    coarse = np.random.default_rng(seed).integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    resized = [PIL.Image.fromarray(image).resize((width, height), PIL.Image.Resampling.BILINEAR) for image in coarse]
    return np.stack([np.asarray(image) for image in resized])


@pytest.mark.parametrize(
    "image_processor",
    [
        ConvNextImageProcessorPil(**CLASSIFIER_PROCESSOR),
        BitImageProcessorPil(size={"shortest_edge": 14}, crop_size={"height": 12, "width": 10}, image_mean=[0.3] * 3),
        ViTImageProcessorPil(size={"height": 10, "width": 14}, resample=PIL.Image.Resampling.BILINEAR),
    ],
    ids=["convnext-crop-pct", "bit-shortest-edge-and-crop", "vit-height-width"],
)
def test_classifier_preprocesses_like_its_image_processor(image_processor, tmp_path):
    classifier = load_image_classifier(save_tiny_classifier(tmp_path / "classifier", image_processor=image_processor))
    images = smooth_images(16, 20)
    pixel_values = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    expected = image_processor([PIL.Image.fromarray(image) for image in images], return_tensors="pt").pixel_values
    ours = classifier.preprocess(pixel_values)
    assert ours.shape == expected.shape
    # PIL resizes 8-bit images: the inputs differ by their rounding, at most about one level in 255.
    tolerance = 1.5 / 255 / min(image_processor.image_std)
    torch.testing.assert_close(ours, expected, rtol=0, atol=tolerance)


def test_classifier_maps_pixels_to_logits_of_the_model(tmp_path):
    folder = save_tiny_classifier(tmp_path / "classifier")
    classifier = load_image_classifier(folder)
    model = ResNetForImageClassification.from_pretrained(folder).eval()
    pixel_values = torch.from_numpy(smooth_images(16, 20)).permute(0, 3, 1, 2).float() / 127.5 - 1
    # int(12 / 0.875) = 13 pixels on the shorter side, bicubic with antialiasing, then the central 12x12.
    resized = F.interpolate((pixel_values + 1) / 2, size=(13, 16), mode="bicubic", antialias=True).clamp(0, 1)
    mean, std = (torch.tensor(CLASSIFIER_PROCESSOR[key])[:, None, None] for key in ("image_mean", "image_std"))
    with torch.no_grad():
        expected = model(pixel_values=(resized[..., :12, 2:14] - mean) / std).logits
        torch.testing.assert_close(classifier(pixel_values), expected)
        # [-1, 1] is [0, 1] for the processor: black and white images normalize to -mean / std and (1 - mean) / std.
        extremes = classifier.preprocess(torch.tensor([-1.0, 1.0])[:, None, None, None].expand(2, 3, 16, 16))
    torch.testing.assert_close(extremes[:, :, 0, 0], torch.stack([-mean / std, (1 - mean) / std])[..., 0, 0])
    assert isinstance(classifier, ImageClassifier) and classifier.num_labels == 3 and not classifier.training
    assert classifier.describe()["num_labels"] == 3 and "12x12 center crop" in classifier.describe()["preprocessing"]


def test_classifier_loading_and_label_errors(tmp_path):
    with pytest.raises(ValueError, match="is no local file or folder.*Expected a transformers image-classification"):
        load_image_classifier(tmp_path / "missing")
    folder = tmp_path / "without_processor"
    save_tiny_classifier(folder)
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(ValueError, match="has no image processor"):
        load_image_classifier(folder)
    classifier = load_image_classifier(save_tiny_classifier(tmp_path / "four", num_labels=4))
    with pytest.raises(ValueError, match="has 4 labels, but the VIM's transformer has 3 classes"):
        check_classifier_labels(classifier, 3)
    with pytest.raises(ValueError, match="unconditional"):
        check_classifier_labels(classifier, 0)
    check_classifier_labels(classifier, 4)


@pytest.mark.parametrize(
    "image_processor, message",
    [
        (ViTImageProcessorPil(resample=PIL.Image.Resampling.LANCZOS), "resamples with"),
        (EfficientNetImageProcessorPil(rescale_offset=True), "does not imitate"),
        (LevitImageProcessorPil(), "does not imitate"),
    ],
    ids=["lanczos", "efficientnet-offset", "levit"],
)
def test_processors_the_wrapper_would_imitate_wrongly_are_refused(image_processor, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        load_image_classifier(save_tiny_classifier(tmp_path / "classifier", image_processor=image_processor))
