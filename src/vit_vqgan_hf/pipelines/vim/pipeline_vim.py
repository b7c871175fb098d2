# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""VIM image generation pipeline.

Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ICLR 2022 (arXiv 2110.04627), stage 2 and its
sampling: a VIM transformer samples the ViT-VQGAN tokens of an image one by one in raster order after a class (or
null) prefix token, and the ViT-VQGAN decoder turns them into pixels; optionally, classifier rejection sampling (the
paper's "acceptance rate") keeps the samples a classifier finds most typical of their class. The pipeline follows diffusers'
`DiTPipeline` (`src/diffusers/pipelines/dit/pipeline_dit.py`) and aMUSEd (`.../amused/pipeline_amused.py`).
"""

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import is_compiled_module
from transformers import Cache, LogitsProcessorList, StaticCache
from transformers.generation import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
from transformers.utils import logging

from ...models import VimForCausalLM, VitVqganModel
from .preallocated_cache import PreallocatedCacheLayer


logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt", "tokens")
CACHE_IMPLEMENTATIONS = ("dynamic", "static")


@dataclass
class VimPipelineOutput(ImagePipelineOutput):
    """
    Output of [`VimPipeline`].

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray`, `torch.Tensor` or `torch.LongTensor`):
            The generated images, `num_images_per_label` per class label in the order of the labels: PIL images,
            an array `(batch_size, height, width, 3)` or a tensor `(batch_size, 3, height, width)` in `[0, 1]`, or,
            for `output_type="tokens"`, the image tokens `(batch_size, token_grid_size, token_grid_size)`.
        scores (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            With classifier rejection sampling only: the classifier's probability of each kept image's class.
    """

    scores: torch.Tensor | None = None


class VimPipeline(DiffusionPipeline):
    r"""
    Class-conditional or unconditional image generation with a VIM transformer and a ViT-VQGAN image tokenizer.

    Each image is one autoregressive pass: the transformer reads a prefix token (a class token, or the null token for
    unconditional samples) and samples the `token_grid_size ** 2` image tokens one at a time, reusing its key/value
    cache; the tokenizer decodes the tokens to pixels. Randomness comes only from the `generator`s passed in, one
    stream per image, so an image does not depend on the batch it is sampled in.

    This model inherits from [`~diffusers.DiffusionPipeline`]: see there for the generic methods (saving, loading,
    moving to a device, offloading). Load a saved pipeline with `VimPipeline.from_pretrained`, not
    `DiffusionPipeline.from_pretrained`: the components are classes of this package.

    Parameters:
        vqgan ([`VitVqganModel`]):
            The image tokenizer whose decoder turns image tokens into pixels.
        transformer ([`VimForCausalLM`]):
            The autoregressive transformer over the tokenizer's codes; its `codebook_size` and `token_grid_size` must
            match the tokenizer's.
    """

    vqgan: VitVqganModel
    transformer: VimForCausalLM

    model_cpu_offload_seq = "transformer->vqgan"
    _callback_tensor_inputs = ["image_tokens", "logits"]

    def __init__(self, vqgan: VitVqganModel, transformer: VimForCausalLM):
        super().__init__()
        self.register_modules(vqgan=vqgan, transformer=transformer)
        if vqgan is not None and transformer is not None:
            tokenizer_grid = vqgan.config.image_size // vqgan.config.patch_size
            if (vqgan.config.codebook_size, tokenizer_grid) != (
                transformer.config.codebook_size,
                transformer.config.token_grid_size,
            ):
                raise ValueError(
                    f"The transformer models {transformer.config.token_grid_size}x{transformer.config.token_grid_size} "
                    f"tokens of a {transformer.config.codebook_size}-code tokenizer, but `vqgan` makes "
                    f"{tokenizer_grid}x{tokenizer_grid} tokens of {vqgan.config.codebook_size} codes."
                )
        config = self.transformer.config if getattr(self, "transformer", None) is not None else None
        self.token_grid_size = getattr(config, "token_grid_size", 32)
        self.num_image_tokens = self.token_grid_size**2
        # The null token is trained only if the model is unconditional or was trained with label dropout.
        self.has_trained_null_class = config is not None and (config.num_classes == 0 or config.class_dropout_prob > 0)
        self.labels, self._ambiguous_labels = _label_maps(getattr(config, "id2label", None))
        self.image_processor = VaeImageProcessor(do_normalize=True)

    @property
    def transformer_is_compiled(self) -> bool:
        """Whether the transformer runs through `torch.compile`, as a wrapper or compiled in place."""
        # `nn.Module.compile()` keeps the module and stores the compiled call in `_compiled_call_impl`.
        transformer = self.transformer
        return is_compiled_module(transformer) or getattr(transformer, "_compiled_call_impl", None) is not None

    def get_label_ids(self, label: str | list[str]) -> list[int]:
        r"""
        Map class names to class ids through `transformer.config.id2label`.

        Every comma-separated synonym of an `id2label` entry names its class ("tench, Tinca tinca": "tench" and "Tinca
        tinca"); a name that is the first synonym of one class and a later synonym of others means the first
        (ImageNet "partridge" is 86, not 82). Matching is exact, then case-insensitive. `pipe.labels` lists the names.

        Args:
            label (`str` or `list[str]`):
                One class name or a list of them.

        Returns:
            `list[int]`: The class ids, one per name.

        Raises:
            `ValueError`: for an unknown name (the message suggests the closest names) or a name shared by several
            classes, like ImageNet's "crane" (134 and 517); pass the class id instead.
        """
        names = [label] if isinstance(label, str) else list(label)
        lowercase = {name.lower(): name for name in [*self.labels, *self._ambiguous_labels]}
        class_ids = []
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"Class names must be strings, got {name!r}.")
            key = name.strip()
            key = key if key in self.labels or key in self._ambiguous_labels else lowercase.get(key.lower(), key)
            if key in self._ambiguous_labels:
                candidates = ", ".join(
                    f"{class_id} ({self.transformer.config.id2label[class_id]!r})"
                    for class_id in self._ambiguous_labels[key]
                )
                raise ValueError(f"The class name {name!r} is ambiguous: it names classes {candidates}. Pass the id.")
            if key not in self.labels:
                suggestions = difflib.get_close_matches(key, [*self.labels, *self._ambiguous_labels], n=5)
                hint = f" Did you mean one of {suggestions}?" if suggestions else " See `pipe.labels` for the names."
                raise ValueError(f"Unknown class name {name!r}.{hint}")
            class_ids.append(self.labels[key])
        return class_ids

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
    ):
        """
        Raise a `ValueError` for an invalid value or combination of `__call__`'s arguments, before any computation. A
        number of the wrong type fails its comparison here with a `TypeError`.
        """
        self._check_class_labels(class_labels)
        # Counts are integers: a float would pass the comparison and fail later, in slicing or splitting.
        for name, value, optional in [
            ("num_images_per_label", num_images_per_label, False),
            ("top_k", top_k, True),
            ("max_batch_size", max_batch_size, True),
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
                "Classifier-free guidance needs a transformer trained with label dropout "
                "(`config.class_dropout_prob > 0`); this one never saw the null token."
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
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if cache_implementation not in (None, *CACHE_IMPLEMENTATIONS):
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
                    "transformer was not trained on (`config.class_dropout_prob == 0`)."
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

    def prepare_prefix_ids(self, class_labels, num_images: int, device: torch.device) -> torch.LongTensor:
        """
        The prefix token of every image, `(len(class_labels) * num_images,)`: each label's class token `num_images`
        times in a row, or `num_images` null tokens for `class_labels=None`.
        """
        config = self.transformer.config
        if class_labels is None:
            return torch.full((num_images,), config.null_class_token_id, device=device)
        labels = class_labels if isinstance(class_labels, (list, tuple)) else [class_labels]
        class_ids = [label if isinstance(label, int) else self.get_label_ids(label)[0] for label in labels]
        prefix_ids = torch.tensor([config.class_token_id(class_id) for class_id in class_ids], device=device)
        return prefix_ids.repeat_interleave(num_images)

    def prepare_noise(self, num_images: int, generator, device: torch.device) -> torch.Tensor:
        r"""
        Draw the randomness of each image up front: one uniform number in `[0, 1)` per image token, `(num_images,
        num_image_tokens)` in float32. With a list of generators, row `i` comes from `generator[i]` alone; with one
        generator, the rows are drawn from it in image order. Sampling then picks the token whose cumulative
        probability interval holds the number (inverse-CDF sampling), so an image's tokens depend on its own row only,
        not on the batch or chunk it is sampled in.
        """
        shape = (num_images, self.num_image_tokens)
        if isinstance(generator, list):
            if len(generator) != num_images:
                raise ValueError(
                    f"Got {len(generator)} generators for {num_images} sampled images; pass one per image "
                    "(with rejection sampling, one per candidate: see `acceptance_rate`) or a single generator."
                )
            rows = [torch.rand(shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in generator]
            return torch.stack(rows).to(device)
        generator_device = generator.device if generator is not None else device
        return torch.rand(shape, generator=generator, device=generator_device, dtype=torch.float32).to(device)

    @staticmethod
    def num_rejection_candidates(num_images_per_label: int, acceptance_rate: float) -> int:
        """
        The candidates sampled per label to keep `num_images_per_label` of them at `acceptance_rate` < 1,
        `ceil(num_images_per_label / acceptance_rate)`; a list of `generator`s has this many per label.
        """
        # Rounding first keeps e.g. 3 / 0.3 = 10.000000000000002 from asking for an 11th candidate.
        return math.ceil(round(num_images_per_label / acceptance_rate, 6))

    def prepare_cache(self, batch_size: int, cache_implementation: str, device: torch.device) -> Cache:
        """
        The key/value cache of one batch. `"dynamic"`: buffers sized for the whole sequence whose filled part the
        attention reads, so shapes grow by one token per step (the fastest uncompiled loop). `"static"`: transformers'
        `StaticCache`, where every step attends over the whole buffer under a mask, so every step has the same shapes
        and a compiled transformer compiles once per batch size (and can replay as a CUDA graph).
        """
        config = self.transformer.config
        max_length = config.max_position_embeddings
        if cache_implementation == "dynamic":
            return Cache(layers=[PreallocatedCacheLayer(max_length) for _ in range(config.num_hidden_layers)])
        cache = StaticCache(config=config, max_cache_len=max_length)
        # Allocated outside the compiled step: only buffers made before tracing get the static addresses that CUDA
        # graphs need.
        head_dim = config.hidden_size // config.num_attention_heads
        cache.early_initialization(batch_size, config.num_attention_heads, head_dim, self.transformer.dtype, device)
        return cache

    def generate_tokens(
        self,
        prefix_ids: torch.LongTensor,
        noise: torch.Tensor | None,
        guidance_scale: float,
        logits_processor: LogitsProcessorList,
        progress_bar,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("image_tokens",),
        cache_implementation="dynamic",
    ) -> torch.LongTensor:
        r"""
        Sample the image tokens of one batch, `(batch_size, num_image_tokens)` in raster order.

        One transformer call per token reuses the key/value cache, and keeps the logits of the last position only.
        With guidance, the batch is doubled with null-token rows and each step uses `uncond + guidance_scale * (cond -
        uncond)` of the two halves' logits (the same distribution as guiding log-probabilities, which differ from the
        logits by a constant per row). The logits are processed and sampled in float32. `noise=None` means greedy.
        """
        batch_size = prefix_ids.shape[0]
        use_guidance = guidance_scale > 1
        input_ids = prefix_ids[:, None]
        if use_guidance:
            null_ids = torch.full_like(input_ids, self.transformer.config.null_class_token_id)
            input_ids = torch.cat([input_ids, null_ids])
        image_tokens = torch.empty(batch_size, self.num_image_tokens, dtype=torch.long, device=prefix_ids.device)
        noise = noise.t().contiguous() if noise is not None else None  # row `step` holds every image's number
        cache = self.prepare_cache(len(input_ids), cache_implementation, input_ids.device)

        for step in range(self.num_image_tokens):
            logits = self.transformer(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1).logits
            logits = logits[:, -1].float()
            if use_guidance:
                conditional, unconditional = logits.chunk(2)
                logits = unconditional + guidance_scale * (conditional - unconditional)

            if noise is None:
                next_tokens = logits.argmax(dim=-1)
            else:
                scores = logits_processor(image_tokens[:, :step], logits)
                cumulative = scores.softmax(dim=-1).cumsum(dim=-1)
                # Dividing by the total makes the last entry exactly 1 > noise, so a token of zero probability (after
                # top-k / top-p, or at the end of a rounded sum) can never be chosen.
                cumulative = cumulative / cumulative[:, -1:]
                next_tokens = torch.searchsorted(cumulative, noise[step, :, None], right=True)[:, 0]
            image_tokens[:, step] = next_tokens

            if callback_on_step_end is not None:
                available = {"image_tokens": image_tokens[:, : step + 1], "logits": logits}
                callback_kwargs = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                callback_outputs = callback_on_step_end(self, step, step, callback_kwargs)
                if "image_tokens" in callback_outputs:
                    image_tokens[:, : step + 1] = callback_outputs["image_tokens"]
            progress_bar.update()

            input_ids = image_tokens[:, step : step + 1]
            if use_guidance:
                input_ids = torch.cat([input_ids, input_ids])
        return image_tokens

    def score_images(self, classifier, pixel_values: torch.Tensor, class_ids: torch.LongTensor) -> torch.Tensor:
        """The classifier's softmax probability of each image's class, `(batch_size,)` in float32."""
        output = classifier(pixel_values.float())
        logits = getattr(output, "logits", output).float()
        if logits.ndim != 2 or logits.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"The classifier must return logits of shape (batch_size, num_classes), got {tuple(logits.shape)}."
            )
        if int(class_ids.max()) >= logits.shape[1]:
            raise ValueError(
                f"The classifier has {logits.shape[1]} classes, fewer than the class id {int(class_ids.max())}."
            )
        probabilities = logits.softmax(dim=-1).gather(1, class_ids[:, None].to(logits.device))[:, 0]
        return probabilities.to(pixel_values.device)

    @torch.no_grad()
    def __call__(
        self,
        class_labels: int | str | list[int | str] | None = None,
        num_images_per_label: int = 1,
        guidance_scale: float = 1.0,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        do_sample: bool = True,
        generator: torch.Generator | list[torch.Generator] | None = None,
        acceptance_rate: float | None = None,
        classifier: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module | None = None,
        max_batch_size: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: tuple[str, ...] = ("image_tokens",),
        cache_implementation: str | None = None,
    ) -> VimPipelineOutput | tuple:
        r"""
        Generate images of the given classes (or unconditional images).

        The paper samples from the full softmax at temperature 1.0, without top-k, top-p or guidance: the defaults.

        Args:
            class_labels (`int`, `str`, `list[int | str]`, *optional*, defaults to `None`):
                Class ids or class names (see [`~VimPipeline.get_label_ids`]); `None` samples unconditional images
                from the null token (needs a transformer trained with label dropout, or an unconditional one).
            num_images_per_label (`int`, *optional*, defaults to 1):
                Images per class label (per call for `class_labels=None`). The output holds each label's images in a
                row, in the order of `class_labels`.
            guidance_scale (`float`, *optional*, defaults to 1.0):
                Classifier-free guidance scale `s`: the next-token logits are `uncond + s * (cond - uncond)`, with the
                null token as the unconditional prefix. 1 disables guidance; values > 1 trade diversity for class
                fidelity and double the transformer's batch. Needs `class_labels` and a transformer trained with label
                dropout (`config.class_dropout_prob > 0`).
            temperature (`float`, *optional*, defaults to 1.0):
                Softmax temperature (> 0). For greedy decoding use `do_sample=False`.
            top_k (`int`, *optional*, defaults to `None`):
                Sample among the `top_k` most likely tokens only.
            top_p (`float`, *optional*, defaults to `None`):
                Nucleus sampling: sample among the most likely tokens whose probabilities sum to `top_p` (in (0, 1]).
            do_sample (`bool`, *optional*, defaults to `True`):
                Sample the tokens; `False` takes the most likely token at every step (greedy decoding, the tokens of
                `transformer.generate(do_sample=False)`), which ignores `generator`, `temperature`, `top_k`, `top_p`.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*, defaults to `None`):
                Source of all randomness. A list gives one generator per sampled image, so that image `i` depends on
                `generator[i]` only: a batch of two equals two calls of one image each, and `max_batch_size` does not
                change the images. From a single generator, the images' random numbers are drawn up front in image
                order, so `max_batch_size` does not change them either. `None` uses torch's global generator.
            acceptance_rate (`float`, *optional*, defaults to `None`):
                Classifier rejection sampling (the paper's "acceptance rate"): sample
                `ceil(num_images_per_label / acceptance_rate)` candidates per label, score each by the `classifier`'s
                softmax probability of its label, and keep the `num_images_per_label` best of each label, best first. `None` or 1 disables it. With a list of
                generators, pass one per candidate.
            classifier (`Callable` or `torch.nn.Module`, *optional*, defaults to `None`):
                The classifier of rejection sampling: called with pixel values, a float32 tensor `(batch_size, 3,
                height, width)` in `[-1, 1]` on the pipeline's device, it returns class logits `(batch_size,
                num_classes)` (or an output with a `logits` field). Resizing and normalizing to what it expects are
                the caller's, e.g. in a wrapper function.
            max_batch_size (`int`, *optional*, defaults to `None`):
                Sample, decode and classify at most this many images at once (the transformer sees twice as many with
                guidance); `None` processes everything in one batch. With per-image generators it does not change the
                result.
            output_type (`str`, *optional*, defaults to `"pil"`):
                `"pil"` (list of `PIL.Image.Image`), `"np"` (`np.ndarray` `(batch_size, height, width, 3)` in [0, 1]),
                `"pt"` (`torch.Tensor` `(batch_size, 3, height, width)` in [0, 1]) or `"tokens"` (the image tokens,
                `torch.LongTensor` `(batch_size, token_grid_size, token_grid_size)`, without decoding).
            return_dict (`bool`, *optional*, defaults to `True`):
                Return a [`VimPipelineOutput`] instead of a tuple.
            callback_on_step_end (`Callable`, `PipelineCallback` or `MultiPipelineCallbacks`, *optional*, defaults to `None`):
                Called after every sampled token as `callback_on_step_end(pipeline, step, step, callback_kwargs)`,
                where `step` is the index of the image token just sampled (an autoregressive pipeline has no
                timesteps, so it is passed in both places) and `callback_kwargs` holds the tensors named in
                `callback_on_step_end_tensor_inputs`. It returns a dict; an `image_tokens` entry replaces the tokens
                so far (its last column is what the transformer reads next; earlier columns are already in the cache).
                They must be codes in `[0, codebook_size)`: no step reads them back to check.
            callback_on_step_end_tensor_inputs (`tuple[str, ...]`, *optional*, defaults to `("image_tokens",)`):
                Tensors passed to `callback_on_step_end`: `"image_tokens"` (`(batch_size, step + 1)`, the tokens
                sampled so far) and `"logits"` (`(batch_size, codebook_size)`, the guided float32 logits of this step).
            cache_implementation (`str`, *optional*, defaults to `None`):
                The key/value cache: `"dynamic"` (attention over the tokens so far; the fastest loop without
                compilation) or `"static"` (transformers' `StaticCache`: the same shapes at every step, so a compiled
                transformer compiles once per batch size). `None` picks `"static"` when the transformer was compiled
                (`pipe.transformer.compile(...)` or `torch.compile`), else `"dynamic"`. Both compute the same logits up
                to floating-point rounding.

        Examples:

        ```py
        >>> import torch
        >>> from vit_vqgan_hf import VimPipeline

        >>> pipe = VimPipeline.from_pretrained("path/to/vim-pipeline")  # a folder written by `save_pretrained`
        >>> class_ids = pipe.get_label_ids(["golden retriever", "volcano"])
        >>> generator = [torch.Generator().manual_seed(seed) for seed in range(4)]
        >>> output = pipe(class_labels=class_ids, num_images_per_label=2, generator=generator)
        >>> len(output.images)  # 2 golden retrievers, then 2 volcanoes
        4
        ```

        Returns:
            [`VimPipelineOutput`] or `tuple`: the images (and, with rejection sampling, their `scores`); as a tuple
            `(images,)` or `(images, scores)` when `return_dict` is False.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        # 1. Check inputs
        self.check_inputs(
            class_labels=class_labels,
            num_images_per_label=num_images_per_label,
            guidance_scale=guidance_scale,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            do_sample=do_sample,
            generator=generator,
            acceptance_rate=acceptance_rate,
            classifier=classifier,
            max_batch_size=max_batch_size,
            output_type=output_type,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            cache_implementation=cache_implementation,
        )
        if cache_implementation is None:
            cache_implementation = "static" if self.transformer_is_compiled else "dynamic"
        if self.transformer.training:
            logger.warning(
                "The transformer is in training mode: dropout and label dropout make the samples random beyond "
                "`generator`. Call `pipe.transformer.eval()` first."
            )
        device = self._execution_device
        use_rejection = acceptance_rate is not None and acceptance_rate < 1
        num_candidates = (
            self.num_rejection_candidates(num_images_per_label, acceptance_rate) if use_rejection else None
        )

        # 2. Prefix tokens and the randomness of every image
        prefix_ids = self.prepare_prefix_ids(class_labels, num_candidates or num_images_per_label, device)
        noise = self.prepare_noise(len(prefix_ids), generator, device) if do_sample else None
        logits_processor = LogitsProcessorList()
        if temperature != 1.0:
            logits_processor.append(TemperatureLogitsWarper(temperature))
        if top_k is not None:
            logits_processor.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            logits_processor.append(TopPLogitsWarper(top_p))

        # 3. Token loop, batch by batch
        batch_size = max_batch_size or len(prefix_ids)
        prefix_chunks = prefix_ids.split(batch_size)
        chunks = zip(prefix_chunks, noise.split(batch_size) if do_sample else [None] * len(prefix_chunks))
        with self.progress_bar(total=len(prefix_chunks) * self.num_image_tokens) as progress_bar:
            image_tokens = torch.cat(
                [
                    self.generate_tokens(
                        chunk_prefix_ids,
                        chunk_noise,
                        guidance_scale,
                        logits_processor,
                        progress_bar,
                        callback_on_step_end,
                        callback_on_step_end_tensor_inputs,
                        cache_implementation,
                    )
                    for chunk_prefix_ids, chunk_noise in chunks
                ]
            )
        image_tokens = image_tokens.view(-1, self.token_grid_size, self.token_grid_size)

        # 4. Decode, and keep the best candidates of each label
        images, scores = None, None
        if output_type != "tokens" or use_rejection:
            images = torch.cat([self.vqgan.decode_tokens(chunk) for chunk in image_tokens.split(batch_size)])
        if use_rejection:
            class_ids = prefix_ids - self.transformer.config.codebook_size
            scores = torch.cat(
                [
                    self.score_images(classifier, pixel_chunk, class_chunk)
                    for pixel_chunk, class_chunk in zip(images.split(batch_size), class_ids.split(batch_size))
                ]
            )
            # Candidates of one label are consecutive: rank within each row of (num_labels, num_candidates).
            ranked = scores.view(-1, num_candidates).argsort(dim=1, descending=True, stable=True)
            first_candidates = torch.arange(0, len(scores), num_candidates, device=scores.device)
            kept = (ranked[:, :num_images_per_label] + first_candidates[:, None]).flatten()
            image_tokens, images, scores = image_tokens[kept], images[kept], scores[kept]

        # 5. Post-process
        if output_type == "tokens":
            images = image_tokens
        else:
            images = self.image_processor.postprocess(images.float(), output_type=output_type)

        self.maybe_free_model_hooks()

        output = VimPipelineOutput(images=images, scores=scores)
        if not return_dict:
            return output.to_tuple()
        return output


def _label_maps(id2label: dict[int, str] | None) -> tuple[dict[str, int], dict[str, list[int]]]:
    """
    Map every synonym of every class name to its class id. A synonym of several classes goes to the class it is the
    first synonym of, if exactly one; otherwise it goes to the second map, of ambiguous names and their classes.
    """
    first_of, synonym_of = {}, {}
    for class_id, entry in sorted((id2label or {}).items()):
        synonyms = [synonym.strip() for synonym in entry.split(",") if synonym.strip()]
        for index, synonym in enumerate([entry.strip(), *synonyms]):
            synonym_of.setdefault(synonym, []).append(class_id)
            if index <= 1:  # the whole entry and its first synonym
                first_of.setdefault(synonym, []).append(class_id)
    labels, ambiguous = {}, {}
    for name, class_ids in synonym_of.items():
        class_ids = sorted(set(class_ids))
        primary = sorted(set(first_of.get(name, [])))
        if len(class_ids) == 1:
            labels[name] = class_ids[0]
        elif len(primary) == 1:
            labels[name] = primary[0]
        else:
            ambiguous[name] = class_ids
    return dict(sorted(labels.items())), ambiguous


__all__ = ["VimPipeline", "VimPipelineOutput"]
