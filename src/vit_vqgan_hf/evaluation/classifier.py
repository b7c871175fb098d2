# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The classifier of classifier rejection sampling (Yu et al. 2022, Table 6: a ResNet-101 trained on ImageNet).

[`ImageClassifier`] wraps any transformers image-classification model (e.g. `microsoft/resnet-101`, loaded from the
command line by `vit_vqgan_hf.cli.load_image_classifier`) with the settings of its image processor, the way
`VimPipeline(classifier=...)` calls it: pixel values in [-1, 1] in, logits out, resized, cropped and normalized in
torch on the pixels' device (no torchvision, no round trip through PIL).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.image_utils import PILImageResampling


def _size_entry(size, key: str):
    """An entry of a processor's `size` / `crop_size`: a `SizeDict` in transformers 5, a dict or an int before."""
    if size is None or isinstance(size, int):
        return size if key == "shortest_edge" else None
    return size.get(key)


class ImageClassifier(nn.Module):
    r"""
    An image-classification model behind its image processor's preprocessing, in torch: called with pixel values in
    `[-1, 1]` (what `VimPipeline` passes its `classifier`), it returns the model's logits.

    The preprocessing follows the processor's settings: the shorter side resized to `size["shortest_edge"]` (or the
    image resized to `size["height"] x size["width"]`) with bicubic interpolation and antialiasing (bilinear if the
    processor resamples bilinearly), clamped to the pixel range as PIL's 8-bit resize is, a central crop to
    `crop_size` where the processor crops, and `(pixels - image_mean) / image_std` on pixels in `[0, 1]`. ConvNeXT's
    processor (the one of transformers' ResNets) resizes the shorter side to `int(shortest_edge / crop_pct)` and crops
    `shortest_edge` squares below 384 pixels, and resizes to squares of `shortest_edge` from 384 on.

    Args:
        model ([`~transformers.PreTrainedModel`]):
            An image-classification model, e.g. from `AutoModelForImageClassification`; it is put in eval mode.
        image_processor ([`~transformers.image_processing_utils.BaseImageProcessor`]):
            The model's image processor; only its settings are read.
        name_or_path (`str`, *optional*, defaults to `None`):
            Where the model came from, for [`~ImageClassifier.describe`]; by default the model's `name_or_path`.

    Raises:
        `ValueError`: for a processor whose preprocessing is not one of the above and would be imitated wrongly: a
        `longest_edge` size, resampling other than bilinear or bicubic, EfficientNet's `rescale_offset`, or LeViT's
        scaled shorter side.
    """

    def __init__(self, model: nn.Module, image_processor, name_or_path: str | None = None):
        super().__init__()
        self.model = model
        self.name_or_path = name_or_path or getattr(model.config, "name_or_path", None)
        self.resize_to, self.crop_size = self._sizes(image_processor)
        self._check_supported(image_processor)
        bilinear = image_processor.resample in (PILImageResampling.BILINEAR, "bilinear")
        self.interpolation = "bilinear" if bilinear else "bicubic"
        # The processor sees 8-bit values v = 255 * x for x in [0, 1] and rescales them (or not) before normalizing.
        scale = 255 * getattr(image_processor, "rescale_factor", 1 / 255) if image_processor.do_rescale else 255.0
        mean, std = 0.0, 1.0
        if image_processor.do_normalize:
            mean, std = image_processor.image_mean, image_processor.image_std
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        self.register_buffer("scale", scale / std, persistent=False)
        self.register_buffer("shift", mean / std, persistent=False)
        self.eval()

    @staticmethod
    def _check_supported(image_processor):
        name = type(image_processor).__name__
        resample = image_processor.resample
        if image_processor.do_resize and resample not in (
            PILImageResampling.BILINEAR, PILImageResampling.BICUBIC, "bilinear", "bicubic"
        ):  # fmt: skip
            raise ValueError(
                f"{name} resamples with {resample!r}; the classifier wrapper does bilinear or bicubic only."
            )
        if getattr(image_processor, "rescale_offset", False) or name.startswith("Levit"):
            raise ValueError(
                f"{name} preprocesses in a way the classifier wrapper does not imitate (an offset rescale or a scaled "
                "shorter side); use a classifier whose processor resizes by `shortest_edge` or `height`/`width`, e.g. "
                "microsoft/resnet-101."
            )

    @staticmethod
    def _sizes(image_processor) -> tuple[tuple[str, int | tuple[int, int]] | None, tuple[int, int] | None]:
        """`(("shortest_edge", n) or ("size", (h, w)) or None, crop (h, w) or None)` from the processor's settings."""
        size = image_processor.size if image_processor.do_resize else None
        shortest_edge = _size_entry(size, "shortest_edge")
        height, width = _size_entry(size, "height"), _size_entry(size, "width")
        crop = image_processor.crop_size if image_processor.do_center_crop else None
        crop = (_size_entry(crop, "height"), _size_entry(crop, "width")) if crop is not None else None
        crop_pct = getattr(image_processor, "crop_pct", None)
        if size is None:
            return None, crop
        if shortest_edge is not None and crop_pct is not None:  # ConvNeXT's resize, which crops itself
            if shortest_edge >= 384:
                return ("size", (shortest_edge, shortest_edge)), crop
            return ("shortest_edge", int(shortest_edge / crop_pct)), (shortest_edge, shortest_edge)
        if shortest_edge is not None and _size_entry(size, "longest_edge") is None:
            return ("shortest_edge", shortest_edge), crop
        if height is not None and width is not None:
            return ("size", (height, width)), crop
        raise ValueError(
            f"The classifier's image processor resizes to {dict(size)}; rejection sampling supports a `shortest_edge` "
            "or a `height` and `width` size."
        )

    @property
    def num_labels(self) -> int:
        """The number of classes the model tells apart."""
        return self.model.config.num_labels

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """The resized `(height, width)` of a `height x width` image."""
        kind, target = self.resize_to
        if kind == "size":
            return tuple(target)
        # transformers' `get_resize_output_image_size`: the longer side scaled alike and truncated.
        long = int(target * max(height, width) / min(height, width))
        return (target, long) if height <= width else (long, target)

    def preprocess(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(batch_size, 3, height, width)` pixels in `[-1, 1]` -> the model's normalized input."""
        pixels = (pixel_values.float() + 1) / 2
        height, width = pixels.shape[-2:]
        if self.resize_to is not None and self.target_size(height, width) != (height, width):
            size = self.target_size(height, width)
            pixels = F.interpolate(pixels, size=size, mode=self.interpolation, antialias=True, align_corners=False)
            # PIL resizes 8-bit images, whose values cannot overshoot as bicubic interpolation does.
            pixels = pixels.clamp(0, 1)
            height, width = size
        if self.crop_size is not None:
            crop_height, crop_width = self.crop_size
            if crop_height > height or crop_width > width:
                raise ValueError(f"Cannot center-crop {height}x{width} images to {crop_height}x{crop_width}.")
            top, left = (height - crop_height) // 2, (width - crop_width) // 2
            pixels = pixels[..., top : top + crop_height, left : left + crop_width]
        return pixels * self.scale - self.shift

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model's logits `(batch_size, num_labels)` of pixel values `(batch_size, 3, height, width)` in [-1, 1]."""
        return self.model(pixel_values=self.preprocess(pixel_values)).logits

    def describe(self) -> dict:
        """The classifier and its preprocessing, for results files."""
        resize = "none"
        if self.resize_to is not None:
            kind, target = self.resize_to
            side = f"shorter side to {target}" if kind == "shortest_edge" else f"to {target[0]}x{target[1]}"
            resize = f"{side}, {self.interpolation} with antialiasing"
        crop = f"{self.crop_size[0]}x{self.crop_size[1]} center crop" if self.crop_size else "no crop"
        return {
            "name_or_path": str(self.name_or_path),
            "model_class": type(self.model).__name__,
            "num_labels": self.num_labels,
            "preprocessing": f"[-1, 1] -> [0, 1], resized ({resize}), {crop}, normalized by the processor's mean/std",
        }


def check_classifier_labels(classifier: ImageClassifier, num_classes: int) -> None:
    """
    Refuse a classifier that cannot score the VIM's classes: rejection sampling reads class `i`'s probability from the
    classifier's label `i`, so both must use the same class list.

    Args:
        classifier ([`ImageClassifier`]):
            The classifier.
        num_classes (`int`):
            The VIM's `transformer.config.num_classes` (0: unconditional).

    Raises:
        `ValueError`: for an unconditional VIM, or a classifier with another number of labels.
    """
    if num_classes == 0:
        raise ValueError(
            "Rejection sampling keeps the samples a classifier finds most typical of their class: it needs a "
            "class-conditional VIM, and this pipeline's transformer is unconditional (`num_classes=0`)."
        )
    if classifier.num_labels != num_classes:
        raise ValueError(
            f"The classifier {classifier.name_or_path!r} has {classifier.num_labels} labels, but the VIM's transformer "
            f"has {num_classes} classes (`transformer.config.num_classes`); rejection sampling reads class i's "
            "probability from label i, so both must use the same class list (ImageNet-1k: 1000 in the standard order)."
        )


__all__ = [
    "ImageClassifier",
    "check_classifier_labels",
]
