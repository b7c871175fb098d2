# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The sampling engine of `examples/sample.py` and `examples/evaluate_generation.py`: which images a set holds, the
seed of each, the pipeline calls that sample them (with classifier rejection, whole classes per call) and how the calls
are shared out over processes, so that the same settings give the same images in both scripts.

An image is an item `(class_id, index)` (`class_id` None: unconditional) with its own `torch.Generator`, seeded from
`(seed, class_id, index)` by [`image_seed`]: an image does not depend on the number of processes, the batch size or
on being resumed. With rejection, candidate `j` of a class draws from image `(class_id, j)`'s generator, so the
candidates are the images of a run without rejection. A set of completions (`SamplingConfig.completion_images`) holds
items `(name, class_id, index)`: completion `index` of the input image `name` under `class_id`, seeded by
[`completion_seed`] and shared out over processes by the same rules.
"""

import collections
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from ..models.vit_vqgan import images_to_pixel_values
from ..pipelines import VimPipeline
from .image_sets import ImageFolderSet


# examples/sample.py writes it next to its images; examples/evaluate_generation.py records it with their metrics.
SETTINGS_FILE = "sample_settings.json"

Item = tuple[int | None, int]
CompletionItem = tuple[str, int | None, int]


def image_seed(seed: int, class_id: int | None, index: int) -> int:
    """
    The seed of image `(class_id, index)` of a set sampled with base seed `seed`, independent of sharding and
    batching: numpy's `SeedSequence([seed, class_id + 1, index])` (class 0 of the sequence: unconditional).

    Args:
        seed (`int`):
            The base seed, at least 0.
        class_id (`int`, *optional*):
            The image's class, or `None` for an unconditional image.
        index (`int`):
            The image's index within its class (or within the unconditional set).

    Returns:
        `int`: a 63-bit seed, which any `torch.Generator` takes.
    """
    return _seed_of([seed, 0 if class_id is None else class_id + 1, index])


def completion_seed(seed: int, name: str, class_id: int | None, index: int) -> int:
    """
    The seed of completion `index` of the input image `name` under `class_id`, independent of sharding, batching and
    of the other images in the folder: numpy's `SeedSequence([seed, class_id + 1, index, h])`, `h` the first 8 bytes
    of the SHA-256 of `name` (the image's path in its folder, without the suffix, with `/` separators).

    Args:
        seed (`int`):
            The base seed, at least 0.
        name (`str`):
            The input image's name.
        class_id (`int`, *optional*):
            The class it is completed under, or `None` for an unconditional completion.
        index (`int`):
            The completion's index among those of the image and class.

    Returns:
        `int`: a 63-bit seed, which any `torch.Generator` takes.
    """
    name_hash = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return _seed_of([seed, 0 if class_id is None else class_id + 1, index, name_hash])


def _seed_of(entropy: list[int]) -> int:
    high, low = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(high) << 31) | (int(low) >> 1)


@dataclass
class SamplingConfig:
    r"""
    What determines a sampled image set: its images, their seeds and the pipeline's sampling arguments. The fields
    are the sampling flags of the example scripts, under the same names.

    Args:
        num_images_per_class (`int`, *optional*, defaults to 50):
            Images of each class (the FID protocol: 50 of each of the 1000 ImageNet classes).
        class_ids (`list[int]`, *optional*, defaults to `None`):
            The classes to sample, in this order; `None` samples every class of the transformer.
        unconditional (`bool`, *optional*, defaults to `False`):
            Sample from the null class token instead of classes.
        num_images (`int`, *optional*, defaults to 50000):
            Images of an unconditional set.
        batch_size (`int`, *optional*, defaults to 16):
            Images per pipeline call and process (with rejection, candidates per batch of the pipeline).
        guidance_scale (`float`, *optional*, defaults to 1.0):
            Classifier-free guidance (1: none).
        temperature (`float`, *optional*, defaults to 1.0):
            Sampling temperature.
        top_k (`int`, *optional*, defaults to `None`):
            Sample among the `top_k` most likely tokens only.
        top_p (`float`, *optional*, defaults to `None`):
            Nucleus sampling threshold.
        acceptance_rate (`float`, *optional*, defaults to `None`):
            Classifier rejection sampling: each class gets `ceil(num_images_per_class / acceptance_rate)`
            candidates, of which the classifier's best `num_images_per_class` are kept; `None` or 1 keeps every image.
        seed (`int`, *optional*, defaults to 0):
            The base seed of [`image_seed`] (and [`completion_seed`]).
        completion_images (`str`, *optional*, defaults to `None`):
            A folder of images to complete instead of sampling whole images: each is completed
            `completions_per_image` times under each of its classes (see [`completion_plan`]). Rejection sampling
            does not apply to completions.
        num_prefix_rows (`int`, *optional*, defaults to `None`):
            Rows of tokens kept from each image to complete (`None`: the pipeline's default, half the grid).
        completions_per_image (`int`, *optional*, defaults to 1):
            Completions of each image under each of its classes.
        decoding (`str`, *optional*, defaults to `"sequential"`):
            The pipeline's token loop: `"sequential"` or `"speculative_jacobi"` (the same distribution, fewer
            transformer calls; other images for the same seeds).
        jacobi_window (`int`, *optional*, defaults to `None`):
            The window of speculative Jacobi decoding (`None`: the pipeline's default).
        jacobi_branches (`int`, *optional*, defaults to `None`):
            The branches of speculative Jacobi decoding's first draft (`None`: the pipeline's default).
    """

    num_images_per_class: int = 50
    class_ids: list[int] | None = None
    unconditional: bool = False
    num_images: int = 50_000
    batch_size: int = 16
    guidance_scale: float = 1.0
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    acceptance_rate: float | None = None
    seed: int = 0
    completion_images: str | None = None
    num_prefix_rows: int | None = None
    completions_per_image: int = 1
    decoding: str = "sequential"
    jacobi_window: int | None = None
    jacobi_branches: int | None = None

    @property
    def uses_rejection(self) -> bool:
        """Whether each class samples extra candidates and keeps the classifier's best (a rate of 1 keeps all)."""
        return self.acceptance_rate is not None and self.acceptance_rate < 1

    @property
    def num_candidates(self) -> int | None:
        """Candidates sampled per class with rejection (None without): the pipeline's rounding of N / rate."""
        if not self.uses_rejection:
            return None
        return VimPipeline.num_rejection_candidates(self.num_images_per_class, self.acceptance_rate)


def sampling_plan(config: SamplingConfig, num_classes: int) -> list[Item]:
    """
    Every image of a set as `(class_id, index)`, in class order (`class_id` None: unconditional).

    Args:
        config ([`SamplingConfig`]):
            The set.
        num_classes (`int`):
            The transformer's `config.num_classes` (0: unconditional).

    Returns:
        `list[tuple[int | None, int]]`

    Raises:
        `ValueError`: for classes of an unconditional transformer, or class ids out of its range.
    """
    if config.unconditional:
        return [(None, index) for index in range(config.num_images)]
    if num_classes == 0:
        hint = " (and no `acceptance_rate`: it ranks samples by their class)" if config.uses_rejection else ""
        raise ValueError(f"The pipeline's transformer is unconditional: pass `unconditional=True`{hint}.")
    class_ids = list(range(num_classes)) if config.class_ids is None else list(config.class_ids)
    unknown = [class_id for class_id in class_ids if not 0 <= class_id < num_classes]
    if unknown:
        raise ValueError(f"`class_ids` {unknown} are out of range: the transformer knows {num_classes} classes.")
    return [(class_id, index) for class_id in class_ids for index in range(config.num_images_per_class)]


@dataclass
class CompletionInputs:
    """
    The images of a completion set, each by its name: its path relative to the folder, without the suffix.

    Args:
        paths (`dict[str, Path]`):
            The file of each image.
        class_names (`dict[str, str | None]`):
            The class of each image: the name of its first-level subfolder in the `imagefolder` layout
            (`folder/<class name>/<image>`), else `None`.
        unreadable (`list[str]`):
            The files skipped because PIL cannot read them.
        folder (`Path`):
            The folder.
    """

    paths: dict[str, Path]
    class_names: dict[str, str | None]
    unreadable: list[str]
    folder: Path

    @classmethod
    def from_folder(cls, folder, image_size: int) -> "CompletionInputs":
        """
        The readable images under `folder`, as [`ImageFolderSet`] lists them (recursively, sorted). `image_size` is
        the tokenizer's: images of any size are accepted, as the pipeline resizes and crops them.
        """
        images = ImageFolderSet(folder, resolution=image_size, skip_unreadable_images=True)
        names = [path.relative_to(images.folder).with_suffix("").as_posix() for path in images.files]
        if repeated := sorted(name for name, count in collections.Counter(names).items() if count > 1):
            raise ValueError(f"Images that differ in their suffix only would share output names: {repeated[:20]}.")
        class_names = [images.class_names[label] if images.class_names else None for label in images.labels]
        return cls(dict(zip(names, images.files)), dict(zip(names, class_names)), images.unreadable, images.folder)

    def class_ids(self, pipeline: VimPipeline) -> dict[str, int]:
        """The class of every image: its class folder's name looked up in the transformer's `id2label`."""
        if None in self.class_names.values():
            raise ValueError(
                f"The images in {str(self.folder)!r} are not all in class folders (the imagefolder layout "
                "<folder>/<class name>/<image>): pass `class_ids` to complete them under those classes, or "
                "`unconditional=True`."
            )
        folders = sorted(set(self.class_names.values()))
        try:
            ids = dict(zip(folders, pipeline.get_label_ids(folders)))
        except ValueError as error:
            raise ValueError(
                f"The class folders of {str(self.folder)!r} must be class names of the transformer (`id2label`): "
                f"{error} Or pass `class_ids`, or `unconditional=True`."
            ) from error
        return {name: ids[class_name] for name, class_name in self.class_names.items()}


def completion_plan(config: SamplingConfig, inputs: CompletionInputs, pipeline: VimPipeline) -> list[CompletionItem]:
    """
    Every completion of a set as `(name, class_id, index)`, image by image in the folder's order: with
    `config.unconditional`, each image under the null token; with `config.class_ids`, under each of those classes;
    otherwise under its class folder's class. The class flags are checked as [`sampling_plan`] checks them.
    """
    one_of_each = dataclasses.replace(config, num_images_per_class=1, num_images=1)
    flagged = [class_id for class_id, _ in sampling_plan(one_of_each, pipeline.transformer.config.num_classes)]
    if config.unconditional or config.class_ids is not None:
        classes = {name: flagged for name in inputs.paths}
    else:
        classes = {name: [class_id] for name, class_id in inputs.class_ids(pipeline).items()}
    indices = range(config.completions_per_image)
    return [(name, class_id, index) for name in inputs.paths for class_id in classes[name] for index in indices]


def classes_per_call(num_candidates: int, batch_size: int, max_batches: int = 32) -> int:
    """
    How many whole classes one rejection-sampling call of `VimPipeline` should hold (a class's candidates are ranked
    together): the fewest whose candidates fill whole batches of `batch_size`, so that no batch runs part empty, but
    at most `max_batches` batches' worth (the call keeps all its candidates' pixels) and at least one class.
    """
    filling = batch_size // math.gcd(num_candidates, batch_size)
    return max(1, min(filling, max_batches * batch_size // num_candidates))


def _split_evenly(items: list, num_parts: int) -> list[list]:
    """`items` in `num_parts` consecutive parts whose sizes differ by one at most, the larger first."""
    size, larger = divmod(len(items), num_parts)
    bounds = [part * size + min(part, larger) for part in range(num_parts + 1)]
    return [items[start:end] for start, end in zip(bounds, bounds[1:])]


@dataclass
class SamplingCall:
    """
    One pipeline call of one process: the items it returns, in order, and with rejection the classes whose
    candidates it samples and ranks (a call without items is a process's turn to wait in a round).
    """

    items: list[Item]
    class_ids: list[int] | None = None


@dataclass
class SampledImages:
    """
    The images of a [`SamplingCall`]: `uint8` `(len(items), 3, height, width)`, with rejection their scores, and for
    completions the image each one completes, as the tokenizer sees it (`inputs`, `uint8`, the same shape).
    """

    items: list[Item | CompletionItem]
    images: torch.Tensor
    scores: torch.Tensor | None = None
    inputs: torch.Tensor | None = None

    @property
    def labels(self) -> torch.LongTensor:
        """The class of every image, -1 for unconditional ones."""
        return torch.tensor([-1 if item[-2] is None else item[-2] for item in self.items], dtype=torch.long)


class SamplingEngine:
    r"""
    Samples the images of a [`SamplingConfig`] from a `VimPipeline`, sharded over processes: `plan` lists the
    images (refusing classes the transformer lacks when it is built), [`calls`] gives each process its pipeline
    calls and [`sample`] runs one. With `config.completion_images`, the images are completions of the images of
    that folder (`inputs`, a [`CompletionInputs`]; `plan` by [`completion_plan`]).

    Without rejection, the images to sample are cut into rounds of `batch_size` images per process, and each round
    into one consecutive slice per process: the processes' calls of a round, in process order, hold the round's
    images in plan order. With rejection, a call holds whole classes (their candidates are ranked together), cut from
    the class list of the whole plan, so that a class meets the same calls whatever the processes or the resumed
    state; the calls go round robin over the processes.

    Args:
        pipeline ([`VimPipeline`]):
            The pipeline, on its device and in eval mode.
        config ([`SamplingConfig`]):
            The images and their sampling arguments.
        classifier (`torch.nn.Module`, *optional*, defaults to `None`):
            The classifier of rejection sampling (e.g. an [`ImageClassifier`]), required with
            `config.acceptance_rate < 1`.

    Example:

    ```python
    >>> from vit_vqgan_hf import VimPipeline
    >>> from vit_vqgan_hf.evaluation import SamplingConfig, SamplingEngine

    >>> pipe = VimPipeline.from_pretrained("outputs/demo/pipeline")  # doctest: +SKIP
    >>> engine = SamplingEngine(pipe, SamplingConfig(num_images_per_class=2, class_ids=[1, 3], batch_size=4))
    >>> for call in engine.calls():  # doctest: +SKIP
    ...     sampled = engine.sample(call)  # sampled.images: uint8 (4, 3, 32, 32); sampled.items: (class, index)
    ```
    """

    def __init__(self, pipeline: VimPipeline, config: SamplingConfig, classifier: torch.nn.Module | None = None):
        if config.uses_rejection and classifier is None:
            raise ValueError(f"Rejection sampling (acceptance rate {config.acceptance_rate}) needs a classifier.")
        if config.uses_rejection and config.completion_images is not None:
            raise ValueError("Rejection sampling (`acceptance_rate` < 1) does not apply to `completion_images`.")
        self.pipeline = pipeline
        self.config = config
        self.classifier = classifier if config.uses_rejection else None
        self.inputs = None
        if config.completion_images is None:
            self.plan = sampling_plan(config, pipeline.transformer.config.num_classes)
        else:
            grid = pipeline.token_grid_size
            if config.num_prefix_rows is not None and not 0 <= config.num_prefix_rows <= grid:
                raise ValueError(f"`num_prefix_rows` must lie in [0, {grid}] (the token grid is {grid}x{grid}).")
            self.inputs = CompletionInputs.from_folder(config.completion_images, pipeline.vqgan.config.image_size)
            self.plan = completion_plan(config, self.inputs, pipeline)

    def rounds(self, num_processes: int = 1, missing: list[Item] | None = None) -> list[list[SamplingCall]]:
        """
        The calls of every process, round by round: round `r` holds one call per process (some without items).

        Args:
            num_processes (`int`, *optional*, defaults to 1):
                How many processes share the work.
            missing (`list[tuple]`, *optional*, defaults to `None`):
                The items still to sample (resuming); `None` samples the whole `plan`. With rejection, the calls
                of classes with a missing item are sampled again whole.
        """
        plan = self.plan
        missing = plan if missing is None else missing
        if not self.config.uses_rejection:
            per_round = self.config.batch_size * num_processes
            return [
                [SamplingCall(part) for part in _split_evenly(missing[start : start + per_round], num_processes)]
                for start in range(0, len(missing), per_round)
            ]
        class_ids = list(dict.fromkeys(class_id for class_id, _ in plan))
        per_call = classes_per_call(self.config.num_candidates, self.config.batch_size)
        missing_classes = {class_id for class_id, _ in missing}
        calls = []
        for start in range(0, len(class_ids), per_call):
            call_class_ids = class_ids[start : start + per_call]
            if missing_classes.intersection(call_class_ids):
                items = [(c, index) for c in call_class_ids for index in range(self.config.num_images_per_class)]
                calls.append(SamplingCall(items, call_class_ids))
        calls += [SamplingCall([])] * (-len(calls) % num_processes)
        return [calls[start : start + num_processes] for start in range(0, len(calls), num_processes)]

    def calls(self, process_index: int = 0, num_processes: int = 1, missing: list[Item] | None = None):
        """
        The calls of process `process_index` of `num_processes`, one per round of [`rounds`] (some without items:
        every process takes part in every round, e.g. in a gather).

        Returns:
            `list[SamplingCall]`
        """
        return [calls[process_index] for calls in self.rounds(num_processes, missing)]

    def generators(self, call: SamplingCall) -> list[torch.Generator]:
        """
        One CPU generator per image the call samples (with rejection, per candidate), seeded by [`image_seed`] (or
        [`completion_seed`]).
        """
        seed = self.config.seed
        if call.class_ids is None:
            seed_of = image_seed if self.inputs is None else completion_seed
            return [torch.Generator().manual_seed(seed_of(seed, *item)) for item in call.items]
        candidates = range(self.config.num_candidates)
        return [torch.Generator().manual_seed(image_seed(seed, c, j)) for c in call.class_ids for j in candidates]

    def sample(self, call: SamplingCall) -> SampledImages:
        """
        Run one call: its images as `uint8` (rounded from the pipeline's pixels, as PNGs and PIL images are) on the
        pipeline's device, with their classifier scores under rejection; with rejection a class's kept images come
        best first (index 0 is its best candidate).
        """
        config = self.config
        size = self.pipeline.vqgan.config.image_size
        if not call.items:
            return SampledImages([], torch.zeros(0, 3, size, size, dtype=torch.uint8, device=self.pipeline.device))
        inputs = None
        if call.class_ids is not None:
            request = {"class_labels": call.class_ids, "num_images_per_label": config.num_images_per_class}
            request.update(acceptance_rate=config.acceptance_rate, classifier=self.classifier)
            request["max_batch_size"] = config.batch_size
        elif self.inputs is not None:
            pixel_values = self.input_pixel_values([name for name, _, _ in call.items])
            request = {"image": pixel_values, "num_prefix_rows": config.num_prefix_rows}
            request["class_labels"] = None if config.unconditional else [class_id for _, class_id, _ in call.items]
            inputs = ((pixel_values + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        elif config.unconditional:
            request = {"class_labels": None, "num_images_per_label": len(call.items)}
        else:
            request = {"class_labels": [class_id for class_id, _ in call.items]}
        output = self.pipeline(
            **request,
            generator=self.generators(call),
            guidance_scale=config.guidance_scale,
            temperature=config.temperature,
            top_k=config.top_k,
            top_p=config.top_p,
            decoding=config.decoding,
            jacobi_window=config.jacobi_window,
            jacobi_branches=config.jacobi_branches,
            output_type="pt",
        )
        images = (output.images.float() * 255).round().to(torch.uint8)
        return SampledImages(call.items, images, output.scores, inputs)

    def input_pixel_values(self, names: list[str]) -> torch.Tensor:
        """
        The images to complete of `names` (repeats allowed), as the pipeline prepares PIL images
        (`images_to_pixel_values`, the pixels of the tokenizer folder's image processor). Pixel values
        `(len(names), 3, H, W)` in [-1, 1], on the pipeline's device.
        """
        distinct = list(dict.fromkeys(names))
        images = []
        for name in distinct:
            with PIL.Image.open(self.inputs.paths[name]) as image:
                images.append(image.copy())
        pixel_values = images_to_pixel_values(images, self.pipeline.vqgan.config.image_size)
        return pixel_values[[distinct.index(name) for name in names]].to(self.pipeline.device)

    def describe_seeds(self) -> str:
        """The seed rule, for results files."""
        if self.inputs is not None:
            return (
                "completion (name, class_id, index) draws from torch.Generator().manual_seed(s), s from numpy's "
                f"SeedSequence([{self.config.seed}, class_id + 1, index, h]) (class_id + 1 = 0: unconditional; h: the "
                "first 8 bytes, little-endian, of the SHA-256 of the image's name)"
            )
        rule = (
            "image (class_id, index) draws from torch.Generator().manual_seed(s), s from numpy's "
            f"SeedSequence([{self.config.seed}, class_id + 1, index]) (class_id + 1 = 0: unconditional)"
        )
        if self.config.uses_rejection:
            rule += (
                f"; candidate j of a class ({self.config.num_candidates} per class) uses image (class_id, j)'s seed, "
                "so the candidates are the images of a run without rejection"
            )
        return rule


__all__ = [
    "SETTINGS_FILE",
    "CompletionInputs",
    "SampledImages",
    "SamplingCall",
    "SamplingConfig",
    "SamplingEngine",
    "completion_plan",
    "completion_seed",
    "image_seed",
    "sampling_plan",
]
