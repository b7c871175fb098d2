# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The argument checks of `VimPipeline.__call__`: an invalid value or combination raises a `ValueError` that says what
was wrong and what was expected, before any computation."""

import math

import PIL.Image
import torch


OUTPUT_TYPES = ("pil", "np", "pt", "tokens")
# "dynamic", the former name of "preallocated", is still accepted (with a FutureWarning).
CACHE_IMPLEMENTATIONS = ("preallocated", "static")
DECODINGS = ("sequential", "speculative_jacobi")


class VimInputChecksMixin:
    """
    `check_inputs` and its helpers for [`VimPipeline`], which provides what they read: `transformer`, `vqgan`,
    `token_grid_size`, `has_trained_null_class`, `get_label_ids`, `num_rejection_candidates` and
    `_callback_tensor_inputs`.
    """

    # The images (rejection candidates included) one call samples: their pixels are held at once (10,000 images of
    # 256x256 are 7.9 GB in float32), so a larger request is refused before it allocates anything.
    max_images_per_call = 10_000

    def check_inputs(
        self,
        *,
        class_labels,
        num_images_per_label,
        guidance_scale,
        temperature,
        top_k,
        top_p,
        do_sample,
        generator,
        acceptance_rate,
        classifier,
        max_batch_size,
        output_type,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        cache_implementation,
        image=None,
        num_prefix_rows=None,
        decoding="sequential",
        jacobi_window=None,
        jacobi_branches=None,
    ):
        """
        Raise a `ValueError` for an invalid value or combination of `__call__`'s arguments, before any computation. A
        number of the wrong type fails its comparison here with a `TypeError`.
        """
        self._check_class_labels(class_labels)
        self._check_completion_inputs(image, num_prefix_rows, class_labels)
        # Counts are integers: a float would pass the comparison and fail later, in slicing or splitting.
        for name, value, optional in [
            ("num_images_per_label", num_images_per_label, False),
            ("top_k", top_k, True),
            ("max_batch_size", max_batch_size, True),
            ("jacobi_window", jacobi_window, True),
        ]:
            if (value is not None or not optional) and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"`{name}` must be a positive integer{' or None' if optional else ''}, got {value!r}."
                )
        if not math.isfinite(guidance_scale):  # NaN would pass every comparison below
            raise ValueError(f"`guidance_scale` must be a finite number >= 1, got {guidance_scale}.")
        if guidance_scale < 1:
            raise ValueError(f"`guidance_scale` must be >= 1 (1 disables guidance), got {guidance_scale}.")
        if guidance_scale > 1 and class_labels is None:
            raise ValueError("Classifier-free guidance (`guidance_scale > 1`) needs `class_labels`.")
        if guidance_scale > 1 and not self.has_trained_null_class:
            raise ValueError(
                "Classifier-free guidance needs a trained null token: a transformer trained with label dropout "
                "(`config.class_dropout_prob > 0`) or whose null token was fitted after training "
                "(`config.null_token_fitted`, see `fit_null_token`); this one never saw the null token."
            )
        if not temperature > 0:
            raise ValueError(
                f"`temperature` must be > 0, got {temperature}; for greedy decoding pass `do_sample=False`."
            )
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"`top_p` must be in (0, 1] or None, got {top_p}.")
        if do_sample not in (True, False):  # a string "False" would sample
            raise ValueError(f"`do_sample` must be True or False, got {type(do_sample).__name__} {do_sample!r}.")
        generators = generator if isinstance(generator, list) else [generator]
        wrong = [g for g in generators if not isinstance(g, torch.Generator)]
        if generator is not None and wrong:
            raise ValueError(
                "`generator` must be a torch.Generator, a list of them (one per image) or None, got "
                f"{type(wrong[0]).__name__} {wrong[0]!r}" + (" in the list." if generators is generator else ".")
            )
        # Called only after sampling: a wrong classifier would fail when its samples are done.
        for name, function in [("callback_on_step_end", callback_on_step_end), ("classifier", classifier)]:
            if function is not None and not callable(function):
                raise ValueError(f"`{name}` must be callable or None, got {type(function).__name__}.")
        if acceptance_rate is not None and not 0 < acceptance_rate <= 1:
            raise ValueError(f"`acceptance_rate` must be in (0, 1] or None, got {acceptance_rate}.")
        if acceptance_rate is not None and acceptance_rate < 1 and classifier is None:
            raise ValueError("Rejection sampling (`acceptance_rate < 1`) needs a `classifier`.")
        if acceptance_rate is not None and acceptance_rate < 1 and class_labels is None:
            raise ValueError("Rejection sampling scores the class of each image: it needs `class_labels`.")
        if acceptance_rate is None and classifier is not None:
            raise ValueError("A `classifier` is only used for rejection sampling: pass `acceptance_rate` as well.")
        self._check_request_size(class_labels, num_images_per_label, acceptance_rate, image)
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if decoding not in DECODINGS:
            raise ValueError(f"`decoding` must be one of {DECODINGS}, got {decoding!r}.")
        if jacobi_window is not None and decoding != "speculative_jacobi":
            raise ValueError(
                f'`jacobi_window={jacobi_window!r}` sizes the window of `decoding="speculative_jacobi"`; sequential '
                "decoding reads one token per call: pass that decoding, or no window."
            )
        if jacobi_branches is not None:
            if isinstance(jacobi_branches, bool) or not isinstance(jacobi_branches, int) or jacobi_branches < 0:
                raise ValueError(f"`jacobi_branches` must be a non-negative integer or None, got {jacobi_branches!r}.")
            if decoding != "speculative_jacobi":
                raise ValueError(
                    f'`jacobi_branches={jacobi_branches!r}` is an option of `decoding="speculative_jacobi"`; pass that '
                    "decoding, or no branches."
                )
            if jacobi_branches > 0 and jacobi_window is not None and jacobi_window < 3:
                raise ValueError(
                    f"`jacobi_branches={jacobi_branches}` needs a `jacobi_window` of 3 or more (a window with a second "
                    f"draft), got {jacobi_window}; pass `jacobi_branches=0` or a larger window."
                )
        if cache_implementation not in (None, "dynamic", *CACHE_IMPLEMENTATIONS):
            raise ValueError(
                f"`cache_implementation` must be one of {CACHE_IMPLEMENTATIONS} or None, got {cache_implementation!r}."
            )
        tensor_inputs = callback_on_step_end_tensor_inputs
        if not isinstance(tensor_inputs, (list, tuple)):  # a string would be read letter by letter
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` must be a list or tuple of tensor names, e.g. "
                f"{self._callback_tensor_inputs}, got {type(tensor_inputs).__name__} {tensor_inputs!r}."
            )
        if unknown := [name for name in tensor_inputs if name not in self._callback_tensor_inputs]:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` may only name {self._callback_tensor_inputs}, got {unknown}."
            )

    def _check_class_labels(self, class_labels):
        """Raise a `ValueError` for class labels that this transformer cannot condition on."""
        config = self.transformer.config
        if class_labels is None:
            if not self.has_trained_null_class:
                raise ValueError(
                    "Unconditional samples (`class_labels=None`) need the null token, which this class-conditional "
                    "transformer was not trained on (`config.class_dropout_prob == 0`, no `config.null_token_fitted`)."
                )
            return
        if config.num_classes == 0:
            raise ValueError("The transformer is unconditional (`num_classes=0`): pass `class_labels=None`.")
        labels = class_labels if isinstance(class_labels, (list, tuple)) else [class_labels]
        if not labels:
            raise ValueError("`class_labels` is empty; pass None for unconditional samples.")
        for label in labels:
            if isinstance(label, bool) or not isinstance(label, (int, str)):
                raise ValueError(f"`class_labels` must hold class ids (int) or names (str), got {label!r}.")
            if isinstance(label, int) and not 0 <= label < config.num_classes:
                raise ValueError(
                    f"Class label {label} is out of range: the transformer knows {config.num_classes} classes "
                    f"(0..{config.num_classes - 1})."
                )
        self.get_label_ids([label for label in labels if isinstance(label, str)])

    def _check_completion_inputs(self, image, num_prefix_rows, class_labels):
        """Raise a `ValueError` for images to complete, or rows to keep, that `__call__` cannot use."""
        if image is None:
            if num_prefix_rows is not None:
                raise ValueError(
                    f"`num_prefix_rows={num_prefix_rows!r}` keeps rows of the tokens of an `image`: pass the `image` "
                    "to complete, or no `num_prefix_rows` to generate whole images."
                )
            return
        grid, config = self.token_grid_size, self.vqgan.config
        if num_prefix_rows is not None and (
            isinstance(num_prefix_rows, bool)
            or not isinstance(num_prefix_rows, int)
            or not 0 <= num_prefix_rows <= grid
        ):
            raise ValueError(
                f"`num_prefix_rows` must be an integer in [0, {grid}] (rows of the {grid}x{grid} token grid to keep), "
                f"got {num_prefix_rows!r}."
            )
        if isinstance(image, torch.Tensor):
            shape = (config.num_channels, config.image_size, config.image_size)
            if image.ndim != 4 or not len(image) or image.shape[1:] != shape or not image.is_floating_point():
                raise ValueError(
                    f"`image` as pixel values must be a float tensor (batch_size, {', '.join(map(str, shape))}) in "
                    f"[-1, 1], the tokenizer's image size; got {image.dtype} of shape {tuple(image.shape)}. Pass PIL "
                    "images to have them resized and cropped like the tokenizer's image processor does."
                )
        elif not isinstance(image, PIL.Image.Image) and not (
            isinstance(image, list) and image and all(isinstance(item, PIL.Image.Image) for item in image)
        ):
            raise ValueError(
                "`image` must be a PIL image, a non-empty list of them, or pixel values (a tensor (batch_size, "
                f"{config.num_channels}, {config.image_size}, {config.image_size}) in [-1, 1]); got "
                f"{type(image).__name__}."
            )
        # In training mode the tokenizer's dropout would change the kept tokens, and it would not check the pixels.
        if self.vqgan.training:
            raise ValueError(
                "Image completion encodes with the tokenizer in eval mode: call `pipe.vqgan.eval()` first."
            )
        num_images = self.count_images(image)
        num_labels = len(class_labels) if isinstance(class_labels, (list, tuple)) else 1
        if num_images != num_labels and 1 not in (num_images, num_labels):
            raise ValueError(
                f"Got {num_images} images to complete and {num_labels} class labels: pass one label per image, one "
                "label (or None) for every image, or one image to complete under every label."
            )

    def _check_request_size(self, class_labels, num_images_per_label, acceptance_rate, image):
        """Raise a `ValueError` when the call would sample more than `max_images_per_call` images or candidates."""
        num_labels = len(class_labels) if isinstance(class_labels, (list, tuple)) else 1
        num_pairs = max(num_labels, self.count_images(image)) if image is not None else num_labels
        rejection = acceptance_rate is not None and acceptance_rate < 1
        per_pair = self.num_rejection_candidates(num_images_per_label, acceptance_rate) if rejection else None
        total = num_pairs * (per_pair or num_images_per_label)
        if total <= self.max_images_per_call:
            return
        what = f"{num_pairs} label{'s' if num_pairs > 1 else ''} x {num_images_per_label} images"
        if rejection:
            what += f" / acceptance_rate {acceptance_rate} = {total} candidates to sample and score"
        else:
            what += f" = {total} images"
        raise ValueError(
            f"The request asks for {what}, more than `pipe.max_images_per_call` ({self.max_images_per_call}): the "
            "pixels of a call are held in memory at once. Sample them in a loop of smaller calls"
            + (" or raise `acceptance_rate`" if rejection else "")
            + " (or raise `pipe.max_images_per_call` where memory allows)."
        )

    @staticmethod
    def count_images(image) -> int:
        """How many images `image` holds: each is completed under its label (1 for `None`: whole images)."""
        if isinstance(image, torch.Tensor):
            return image.shape[0]
        return len(image) if isinstance(image, list) else 1


__all__ = ["CACHE_IMPLEMENTATIONS", "DECODINGS", "OUTPUT_TYPES", "VimInputChecksMixin"]
