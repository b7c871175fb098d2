# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""VIM image generation pipeline.

Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ICLR 2022 (arXiv 2110.04627), stage 2 and its
sampling: a VIM transformer samples the ViT-VQGAN tokens of an image one by one in raster order after a class (or
null) prefix token, and the ViT-VQGAN decoder turns them into pixels; optionally, classifier rejection sampling (the
paper's "acceptance rate") keeps the samples a classifier finds most typical of their class. Given an image, the
pipeline completes it instead: the top rows of its tokens are kept and the transformer writes the rest (ImageGPT's
completions). The pipeline follows diffusers' `DiTPipeline` (`src/diffusers/pipelines/dit/pipeline_dit.py`) and aMUSEd
(`.../amused/pipeline_amused.py`).
"""

import functools
import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import PIL.Image
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import is_compiled_module
from transformers import Cache, LogitsProcessorList, StaticCache
from transformers.utils import logging

from ...models import VimForCausalLM, VitVqganModel
from ...models.vit_vqgan import create_image_processor, images_to_pixel_values
from .class_names import find_label_ids, label_maps
from .input_checks import VimInputChecksMixin
from .jacobi_decoding import DEFAULT_JACOBI_WINDOW, VimJacobiDecodingMixin
from .preallocated_cache import PreallocatedCacheLayer
from .token_sampling import VimTokenSamplingMixin


logger = logging.get_logger(__name__)


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


class VimPipeline(DiffusionPipeline, VimInputChecksMixin, VimTokenSamplingMixin, VimJacobiDecodingMixin):
    r"""
    Class-conditional or unconditional image generation with a VIM transformer and a ViT-VQGAN image tokenizer.

    Each image is one autoregressive pass: the transformer reads a prefix token (a class token, or the null token for
    unconditional samples) and samples the `token_grid_size ** 2` image tokens one at a time, reusing its key/value
    cache; the tokenizer decodes the tokens to pixels. Randomness comes only from the `generator`s passed in, one
    stream per image, so an image does not depend on the batch it is sampled in. Image completion (`image`,
    `num_prefix_rows`) encodes an image with the tokenizer, keeps the top rows of its tokens and samples the rest.

    This model inherits from [`~diffusers.DiffusionPipeline`]: see there for the generic methods (saving, loading,
    moving to a device, offloading). Load a saved pipeline with `VimPipeline.from_pretrained`, not
    `DiffusionPipeline.from_pretrained`: the components are classes of this package.

    Parameters:
        vqgan ([`VitVqganModel`]):
            The image tokenizer whose decoder turns image tokens into pixels (and whose encoder gives the tokens of
            the images to complete).
        transformer ([`VimForCausalLM`]):
            The autoregressive transformer over the tokenizer's codes; its `codebook_size` and `token_grid_size` must
            match the tokenizer's.
    """

    vqgan: VitVqganModel
    transformer: VimForCausalLM

    model_cpu_offload_seq = "transformer->vqgan"
    _callback_tensor_inputs = ["image_tokens", "logits", "num_tokens"]
    # Bounds of the work of one call (see `max_batch_size` and `max_images_per_call` in `__call__`).
    max_cache_bytes = 4 * 2**30
    max_default_batch_size = 256

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
        # The null token is trained only if the model is unconditional, was trained with label dropout or had it fitted.
        self.has_trained_null_class = config is not None and config.has_trained_null_token
        self.labels, self._ambiguous_labels = label_maps(getattr(config, "id2label", None))
        self.image_processor = VaeImageProcessor(do_normalize=True)
        # Prepares the PIL images to complete as the image processor saved in the tokenizer's folder does.
        self.vqgan_image_processor = create_image_processor(vqgan.config) if vqgan is not None else None
        self._interrupt = False

    @property
    def interrupt(self) -> bool:
        """Set by a `callback_on_step_end` (`pipeline._interrupt = True`) to stop sampling after the current token."""
        return self._interrupt

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
        return find_label_ids(names, self.labels, self._ambiguous_labels, self.transformer.config.id2label)

    def prepare_prefix_ids(
        self, class_labels, num_images: int, device: torch.device, num_prompt_images: int = 1
    ) -> torch.LongTensor:
        """
        The prefix token of every image, `(len(class_labels) * num_images,)`: each label's class token `num_images`
        times in a row, or `num_images` null tokens for `class_labels=None`. With `num_prompt_images` images to
        complete, a single label (or `None`) goes with each of them: `(num_prompt_images * num_images,)`.
        """
        config = self.transformer.config
        if class_labels is None:
            return torch.full((num_prompt_images * num_images,), config.null_class_token_id, device=device)
        labels = class_labels if isinstance(class_labels, (list, tuple)) else [class_labels]
        labels = list(labels) * num_prompt_images if len(labels) == 1 else labels
        class_ids = [label if isinstance(label, int) else self.get_label_ids(label)[0] for label in labels]
        prefix_ids = torch.tensor([config.class_token_id(class_id) for class_id in class_ids], device=device)
        return prefix_ids.repeat_interleave(num_images)

    def prepare_image_tokens(
        self, image, num_prefix_rows: int | None, num_images: int, batch_size: int, device: torch.device
    ) -> torch.LongTensor:
        """
        The kept tokens of every sampled image, `(num_images, num_prefix_rows * token_grid_size)` (no columns without
        `image`). PIL images are prepared by `images_to_pixel_values` (the pixels of the tokenizer folder's image
        processor), pixel values are used as they are; `vqgan.encode` (in eval mode, which refuses pixels outside [-1, 1]) encodes them
        `batch_size` at a time, and each image's first `num_prefix_rows` rows of tokens (half the grid for `None`) are
        repeated for its consecutive share of the `num_images` sampled images (all of them for a single image).
        """
        if image is None:
            return torch.empty(num_images, 0, dtype=torch.long, device=device)
        if isinstance(image, torch.Tensor):
            pixel_values = image.to(device)
        else:
            pixel_values = images_to_pixel_values(image, self.vqgan.config.image_size).to(device)
        num_prefix_rows = self.token_grid_size // 2 if num_prefix_rows is None else num_prefix_rows
        num_kept = num_prefix_rows * self.token_grid_size
        kept_tokens = torch.cat(
            [
                self.vqgan.encode(chunk).image_tokens.flatten(1)[:, :num_kept]
                for chunk in pixel_values.split(batch_size)
            ]
        )
        return kept_tokens.repeat_interleave(num_images // len(kept_tokens), dim=0)

    @staticmethod
    def num_rejection_candidates(num_images_per_label: int, acceptance_rate: float) -> int:
        """
        The candidates sampled per label to keep `num_images_per_label` of them at `acceptance_rate` < 1,
        `ceil(num_images_per_label / acceptance_rate)`; a list of `generator`s has this many per label.
        """
        # Rounding first keeps e.g. 3 / 0.3 = 10.000000000000002 from asking for an 11th candidate.
        return math.ceil(round(num_images_per_label / acceptance_rate, 6))

    def default_batch_size(self, guidance_scale: float) -> int:
        """
        The images sampled at once when `max_batch_size` is `None`: as many as keep the key/value cache, a batch's
        largest buffer, within `max_cache_bytes` (`2 * layers * sequence * hidden_size` values per image, twice that
        with guidance), from 1 to `max_default_batch_size`: VIM-Large in bfloat16 samples 14 images at once, 7 with guidance.
        """
        config = self.transformer.config
        per_image = 2 * config.num_hidden_layers * config.max_position_embeddings * config.hidden_size
        per_image *= self.transformer.dtype.itemsize * (2 if guidance_scale > 1 else 1)
        return max(1, min(self.max_default_batch_size, self.max_cache_bytes // per_image))

    def resolve_cache_implementation(self, cache_implementation: str | None) -> str:
        """`cache_implementation` as the token loops read it: `None` picks `"static"` for a compiled transformer, else
        `"preallocated"`; `"dynamic"`, its former name, still works with a `FutureWarning`."""
        if cache_implementation == "dynamic":
            warnings.warn(
                '`cache_implementation="dynamic"` is deprecated: the cache it names is preallocated, pass '
                '`cache_implementation="preallocated"`.',
                FutureWarning,
                stacklevel=3,
            )
            return "preallocated"
        if cache_implementation is None:
            return "static" if self.transformer_is_compiled else "preallocated"
        return cache_implementation

    def prepare_cache(self, batch_size: int, cache_implementation: str, device: torch.device) -> Cache:
        """
        The key/value cache of one batch of sequential decoding. `"preallocated"`: buffers sized for the whole sequence
        whose filled part the attention reads, so shapes grow by one token per step (the fastest uncompiled loop).
        `"static"`: transformers' `StaticCache`, where every step attends over the whole buffer under a mask, so every
        step has the same shapes and a compiled transformer compiles once per batch size (and can replay as a CUDA
        graph).
        """
        config = self.transformer.config
        max_length = config.max_position_embeddings
        if cache_implementation == "preallocated":
            return Cache(layers=[PreallocatedCacheLayer(max_length) for _ in range(config.num_hidden_layers)])
        cache = StaticCache(config=config, max_cache_len=max_length)
        # Allocated outside the compiled step: only buffers made before tracing get the static addresses that CUDA
        # graphs need.
        head_dim = config.hidden_size // config.num_attention_heads
        cache.early_initialization(batch_size, config.num_attention_heads, head_dim, self.transformer.dtype, device)
        return cache

    def prepare_prompt(
        self, prefix_ids, kept_tokens, use_guidance: bool, extra_columns: int = 0
    ) -> tuple[torch.LongTensor, torch.LongTensor]:
        """
        The image tokens of a batch, `(batch_size, num_image_tokens + extra_columns)` with the `kept_tokens` in front
        (zeros elsewhere), and the first input of the transformer: each prefix token and its kept tokens, followed,
        with guidance, by the same rows after the null token.
        """
        kept_tokens = prefix_ids.new_empty(len(prefix_ids), 0) if kept_tokens is None else kept_tokens
        batch_size, num_kept = prefix_ids.shape[0], kept_tokens.shape[1]
        image_tokens = prefix_ids.new_zeros(batch_size, self.num_image_tokens + extra_columns)
        image_tokens[:, :num_kept] = kept_tokens
        prefix_ids = prefix_ids[:, None]
        if use_guidance:
            null_ids = torch.full_like(prefix_ids, self.transformer.config.null_class_token_id)
            prefix_ids, kept_tokens = torch.cat([prefix_ids, null_ids]), torch.cat([kept_tokens, kept_tokens])
        return image_tokens, torch.cat([prefix_ids, kept_tokens], dim=1)

    def run_step_callback(self, callback, tensor_inputs, step: int, image_tokens, logits, num_tokens) -> None:
        """
        Call `callback_on_step_end` with the tensors it asked for: the image tokens `[:, :step + 1]` (every image has
        them), `logits` and `num_tokens`, the tokens each image has so far; an `image_tokens` it returns replaces them.
        """
        available = {"image_tokens": image_tokens[:, : step + 1], "logits": logits, "num_tokens": num_tokens}
        outputs = callback(self, step, step, {name: available[name] for name in tensor_inputs})
        if "image_tokens" in outputs:
            image_tokens[:, : step + 1] = outputs["image_tokens"]

    # Inference mode, not just no_grad: tensors without version counters or autograd metadata make every small op of a
    # token step cheaper (about 7% of a step of the digits demo's VIM on one CPU thread).
    @torch.inference_mode()
    def generate_tokens(
        self,
        prefix_ids: torch.LongTensor,
        noise: torch.Tensor | None,
        guidance_scale: float,
        logits_processor: LogitsProcessorList,
        progress_bar,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("image_tokens",),
        cache_implementation="preallocated",
        kept_tokens=None,
    ) -> torch.LongTensor:
        r"""
        Sample the image tokens of one batch, `(batch_size, num_image_tokens)` in raster order.

        One transformer call per token reuses the key/value cache, and keeps the logits of the last position only.
        For a completion, `kept_tokens` `(batch_size, num_kept)` are the first image tokens: the first call reads them
        with the prefix tokens (one prefill of the cache) and sampling starts at token `num_kept`, so there is one
        call per sampled token. With guidance, the batch is doubled with null-token rows (followed by the same kept
        tokens) and each step uses `uncond + guidance_scale * (cond - uncond)` of the two halves' logits (the same
        distribution as guiding log-probabilities, which differ from the logits by a constant per row). The logits are
        processed and sampled in float32. `noise=None` means greedy. Returns `None` when a callback interrupted the
        pipeline before the last token.
        """
        use_guidance = guidance_scale > 1
        image_tokens, input_ids = self.prepare_prompt(prefix_ids, kept_tokens, use_guidance)
        num_kept = input_ids.shape[1] - 1
        noise = noise.t().contiguous() if noise is not None else None  # row `step` holds every image's number
        cache = self.prepare_cache(len(input_ids), cache_implementation, input_ids.device)

        for step in range(num_kept, self.num_image_tokens):
            logits = self.transformer(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1).logits
            logits = self.guide(logits[:, -1].float(), guidance_scale)
            if noise is None:
                next_tokens = logits.argmax(dim=-1)
            else:
                probabilities = self.sampling_probabilities(logits_processor, image_tokens[:, :step], logits)
                next_tokens = self.sample_from(probabilities, noise[step])
            image_tokens[:, step] = next_tokens

            if callback_on_step_end is not None:
                num_tokens = image_tokens.new_full((len(image_tokens),), step + 1)
                self.run_step_callback(
                    callback_on_step_end, callback_on_step_end_tensor_inputs, step, image_tokens, logits, num_tokens
                )
            progress_bar.update()
            if self.interrupt and step + 1 < self.num_image_tokens:
                return None

            input_ids = image_tokens[:, step : step + 1]
            if use_guidance:
                input_ids = torch.cat([input_ids, input_ids])
        return image_tokens

    def sample_batches(
        self,
        chunks: list,
        guidance_scale: float,
        logits_processor: LogitsProcessorList,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        cache_implementation: str,
        jacobi_window: int | None = None,
        jacobi_branches: int = 0,
    ) -> list[torch.LongTensor]:
        """
        The image tokens of each `(prefix_ids, kept_tokens, noise)` batch of `chunks`, one [`generate_tokens`] each
        (with a `jacobi_window`, one [`generate_tokens_jacobi`] with `jacobi_branches`), under one progress bar; a
        callback's interrupt ends the list at the last batch whose tokens were all sampled.
        """
        generate = self.generate_tokens
        if jacobi_window is not None:
            generate = functools.partial(
                self.generate_tokens_jacobi, window=jacobi_window, num_branches=jacobi_branches
            )
        self._interrupt = False
        finished = []
        num_tokens = len(chunks) * (self.num_image_tokens - chunks[0][1].shape[1])
        with self.progress_bar(total=num_tokens) as progress_bar:
            for prefix_ids, kept_tokens, noise in chunks:
                if self.interrupt:
                    break
                image_tokens = generate(
                    prefix_ids,
                    noise,
                    guidance_scale,
                    logits_processor,
                    progress_bar,
                    callback_on_step_end,
                    callback_on_step_end_tensor_inputs,
                    cache_implementation,
                    kept_tokens,
                )
                if image_tokens is None:
                    break
                finished.append(image_tokens)
        return finished

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
        image: PIL.Image.Image | list[PIL.Image.Image] | torch.Tensor | None = None,
        num_prefix_rows: int | None = None,
        decoding: str = "sequential",
        jacobi_window: int | None = None,
        jacobi_branches: int | None = None,
    ) -> VimPipelineOutput | tuple:
        r"""
        Generate images of the given classes (or unconditional images), or complete the top rows of given images.

        The paper samples from the full softmax at temperature 1.0, without top-k, top-p or guidance: the defaults.

        Args:
            class_labels (`int`, `str`, `list[int | str]`, *optional*, defaults to `None`):
                Class ids or class names (see [`~VimPipeline.get_label_ids`]); `None` samples unconditional images
                from the null token (needs a transformer trained with label dropout, or an unconditional one). With
                `image`, see there how labels and images pair.
            num_images_per_label (`int`, *optional*, defaults to 1):
                Images per class label (per call for `class_labels=None`); with `image`, completions per image (per
                pair of image and label). The output holds each label's (pair's) images in a row, in order.
            guidance_scale (`float`, *optional*, defaults to 1.0):
                Classifier-free guidance scale `s`: the next-token logits are `uncond + s * (cond - uncond)`, with the
                null token as the unconditional prefix. 1 disables guidance; values > 1 trade diversity for class
                fidelity and double the transformer's batch. Needs `class_labels` and a transformer whose null token is
                trained: by label dropout (`config.class_dropout_prob > 0`) or fitted after training
                (`config.null_token_fitted`).
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
                Source of all randomness. A list gives one generator per sampled image (or completion), so that image
                `i` depends on `generator[i]` only: a batch of two equals two calls of one image each, and
                `max_batch_size` does not change the images. From a single generator, the images' random numbers are
                drawn up front in image order, so `max_batch_size` does not change them either. `None` uses torch's
                global generator. A completion draws the numbers of a whole image (those of its kept tokens go unused).
            acceptance_rate (`float`, *optional*, defaults to `None`):
                Classifier rejection sampling (the paper's "acceptance rate"): sample
                `ceil(num_images_per_label / acceptance_rate)` candidates per label, score each by the `classifier`'s
                softmax probability of its label, and keep the `num_images_per_label` best of each label, best first.
                `None` or 1 disables it. With a list of generators, pass one per candidate.
            classifier (`Callable` or `torch.nn.Module`, *optional*, defaults to `None`):
                The classifier of rejection sampling: called with pixel values, a float32 tensor `(batch_size, 3,
                height, width)` in `[-1, 1]` on the pipeline's device, it returns class logits `(batch_size,
                num_classes)` (or an output with a `logits` field). Resizing and normalizing to what it expects are
                the caller's, e.g. in a wrapper function.
            max_batch_size (`int`, *optional*, defaults to `None`):
                Sample, decode and classify at most this many images at once (the transformer sees twice as many with
                guidance); `None` picks as many as keep a batch's key/value cache within `pipe.max_cache_bytes` (4
                GiB; see [`~VimPipeline.default_batch_size`]). It does not change the images. The images of a call
                (and the candidates of rejection sampling) are at most `pipe.max_images_per_call` (10,000): their
                pixels are held at once, so sample more in a loop of calls.
            output_type (`str`, *optional*, defaults to `"pil"`):
                `"pil"` (list of `PIL.Image.Image`), `"np"` (`np.ndarray` `(batch_size, height, width, 3)` in [0, 1]),
                `"pt"` (`torch.Tensor` `(batch_size, 3, height, width)` in [0, 1]) or `"tokens"` (the image tokens,
                `torch.LongTensor` `(batch_size, token_grid_size, token_grid_size)`, without decoding).
            return_dict (`bool`, *optional*, defaults to `True`):
                Return a [`VimPipelineOutput`] instead of a tuple.
            callback_on_step_end (`Callable`, `PipelineCallback` or `MultiPipelineCallbacks`, *optional*, defaults to `None`):
                Called after every transformer call as `callback_on_step_end(pipeline, step, step, callback_kwargs)`,
                where `step` is the index of the image token just sampled (with speculative decoding, of the last
                token that every image of the batch has: it advances by one or more per call; an autoregressive pipeline has no
                timesteps, so it is passed in both places; a completion starts at `num_prefix_rows * token_grid_size`,
                the first token it does not keep) and `callback_kwargs` holds the tensors named in
                `callback_on_step_end_tensor_inputs`. It returns a dict; an `image_tokens` entry replaces the tokens
                so far (its last column is what the transformer reads next; earlier columns are already in the cache).
                They must be codes in `[0, codebook_size)`: no step reads them back to check. Setting
                `pipeline._interrupt = True` stops the sampling (see [`~VimPipeline.interrupt`]): the call then returns
                the images of the batches (`max_batch_size`) whose tokens were all sampled, none of an unfinished
                batch, and none at all with rejection sampling, whose candidates of a label are ranked together.
            callback_on_step_end_tensor_inputs (`tuple[str, ...]`, *optional*, defaults to `("image_tokens",)`):
                Tensors passed to `callback_on_step_end`: `"image_tokens"` (`(batch_size, step + 1)`, the tokens so
                far, kept ones included), `"logits"` (`(batch_size, codebook_size)`, the guided float32 logits of
                this step; `(batch_size, jacobi_window, codebook_size)`, those of the window, with speculative
                decoding) and `"num_tokens"` (`(batch_size,)`, the tokens each image has so far).
            cache_implementation (`str`, *optional*, defaults to `None`):
                The key/value cache: `"preallocated"` (buffers for the whole sequence, of which the attention reads
                the tokens so far; the fastest loop without compilation) or `"static"` (the attention reads the whole
                buffer under a mask, transformers' `StaticCache` in sequential decoding: the same shapes at every
                step, so a compiled transformer compiles once per batch size). `None` picks `"static"` when the
                transformer was compiled (`pipe.transformer.compile(...)` or `torch.compile`), else `"preallocated"`.
                Both compute the same logits up to floating-point rounding. `"dynamic"`, the former name of
                `"preallocated"`, is deprecated.
            image (`PIL.Image.Image`, `list[PIL.Image.Image]` or `torch.Tensor`, *optional*, defaults to `None`):
                Image completion: the images whose top rows of tokens are kept while the transformer writes the rest.
                PIL images are prepared like the tokenizer folder's image processor does (shorter side resized to the
                tokenizer's `image_size`, bicubic; central square crop; scaled to [-1, 1]); pixel values, a float
                tensor `(batch_size, 3, image_size, image_size)` in [-1, 1], are used as they are. `vqgan.encode`
                gives their tokens (in eval mode, which refuses pixels outside [-1, 1]; a tokenizer in training mode
                is refused: call `pipe.vqgan.eval()`). Images pair with `class_labels`: one label per image, one label
                (or `None`: unconditional) for every image, or one image completed under every label. Each pair gets
                `num_images_per_label` completions, and every other option applies as for whole images (the null
                rows of guidance see the same kept tokens). `None` generates whole images.
            num_prefix_rows (`int`, *optional*, defaults to `None`):
                Rows of the `token_grid_size x token_grid_size` token grid kept from the top of each `image`, in
                `[0, token_grid_size]`; `None` keeps half of them (`token_grid_size // 2`). Only with `image`. The
                kept tokens enter the key/value cache with the prefix token in one transformer call (one batched
                pass instead of a step per token), so there is one call per sampled token. With 0, the images are
                those of the same call without `image`.
            decoding (`str`, *optional*, defaults to `"sequential"`):
                `"sequential"`: one transformer call per image token. `"speculative_jacobi"`: speculative Jacobi
                decoding (Teng et al., 2024), several tokens per call with the distribution of sequential sampling:
                each call verifies a window of draft tokens over the cached prefix, accepts a draft drawn from `q`
                with probability `min(1, p / q)` under the processed distribution `p`, draws the token at the first
                rejection from the normalized `max(0, p - q)`, and drafts the rest of the window from the new
                predictions (see `jacobi_decoding.py`). Every option works with it; images differ from sequential
                ones of the same seed (they use their random numbers differently) but follow the same distribution,
                greedy decoding gives the same tokens, and an image still depends on its own generator only.
            jacobi_window (`int`, *optional*, defaults to `None`):
                With `decoding="speculative_jacobi"`: tokens read per transformer call, the last accepted one and
                `jacobi_window - 1` drafts, so at most `jacobi_window` tokens are accepted per call; `None` uses
                `DEFAULT_JACOBI_WINDOW` (8); 1 is sequential decoding.
            jacobi_branches (`int`, *optional*, defaults to `None`):
                With `decoding="speculative_jacobi"` and a window of 3 or more: alternatives of each call's first draft
                read in the same call (the most probable other tokens of its draft distribution, each after the last
                accepted token only). When the first draft is rejected and its replacement is one of them, the token
                after it is sampled from that branch's prediction too: fewer calls, each reading more tokens, and the
                same distribution. `None` uses `DEFAULT_JACOBI_BRANCHES` (0: none); at most `codebook_size - 1` are
                read. The number changes which images a seed gives.

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

        >>> # Image completion: keep the top 16 of the 32 rows of tokens of a photo, sample the rest 3 times
        >>> from PIL import Image

        >>> photo = Image.open("dog.jpg")  # resized and cropped like the tokenizer's image processor does
        >>> generator = [torch.Generator().manual_seed(seed) for seed in range(3)]
        >>> output = pipe(
        ...     class_labels="golden retriever", image=photo, num_prefix_rows=16, num_images_per_label=3,
        ...     generator=generator,
        ... )
        >>> len(output.images)  # 3 completions of the same top half
        3
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
            image=image,
            num_prefix_rows=num_prefix_rows,
            decoding=decoding,
            jacobi_window=jacobi_window,
            jacobi_branches=jacobi_branches,
        )
        cache_implementation = self.resolve_cache_implementation(cache_implementation)
        if decoding == "speculative_jacobi":
            jacobi_window = jacobi_window or DEFAULT_JACOBI_WINDOW
            codebook_size = self.transformer.config.codebook_size
            jacobi_branches = self.jacobi_num_branches(jacobi_window, jacobi_branches, codebook_size)
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

        # 2. Prefix tokens, the randomness of every image, and the kept tokens of the images to complete
        num_images = num_candidates or num_images_per_label
        prefix_ids = self.prepare_prefix_ids(class_labels, num_images, device, self.count_images(image))
        draws = self.jacobi_draws_per_token(jacobi_window) if jacobi_window else 1
        noise = self.prepare_noise(len(prefix_ids), generator, device, draws) if do_sample else None
        logits_processor = self.prepare_logits_processor(temperature, top_k, top_p)
        batch_size = max_batch_size or self.default_batch_size(guidance_scale)
        kept_tokens = self.prepare_image_tokens(image, num_prefix_rows, len(prefix_ids), batch_size, device)

        # 3. Token loop, batch by batch
        noise_chunks = noise.split(batch_size) if do_sample else itertools.repeat(None)
        chunks = list(zip(prefix_ids.split(batch_size), kept_tokens.split(batch_size), noise_chunks))
        finished = self.sample_batches(
            chunks,
            guidance_scale,
            logits_processor,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
            cache_implementation,
            jacobi_window,
            jacobi_branches,
        )
        if use_rejection and len(finished) < len(chunks):  # interrupted: the labels' candidates are incomplete
            finished, use_rejection = [], False
        image_tokens = torch.cat(finished) if finished else prefix_ids.new_empty(0, self.num_image_tokens)
        image_tokens = image_tokens.view(-1, self.token_grid_size, self.token_grid_size)

        # 4. Decode, and keep the best candidates of each label
        images, scores = None, None
        if (output_type != "tokens" or use_rejection) and len(image_tokens):
            images = torch.cat([self.vqgan.decode_tokens(chunk) for chunk in image_tokens.split(batch_size)])
        elif output_type != "tokens":  # interrupted before any batch finished
            config = self.vqgan.config
            images = torch.zeros(0, config.num_channels, config.image_size, config.image_size, device=device)
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


__all__ = ["VimPipeline", "VimPipelineOutput"]
