# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Image data for the training scripts: loading with `datasets`, augmentation and batching (decoding is in
`image_decoding`; the central crop and the pixel values are the tokenizer's, from `vit_vqgan_hf.models.vit_vqgan`).

Written with PIL and torch only (torchvision does not import next to the pinned torch). Randomness never comes from
a global generator: every random crop and flip draws from a `torch.Generator` seeded by `(seed, epoch, index)`, so an
example gets the same augmentation whatever process, worker or resumed run loads it. Images are decoded lazily, one at
a time, so that an unreadable or truncated file costs one skipped example, counted in the batch, and never a crash.

The crop follows torchvision's `RandomResizedCrop` (Szegedy et al. 2015, "Going Deeper with Convolutions"; the
sampling loop of `torchvision/transforms/transforms.py`), re-implemented here.
"""

import math
import os

import PIL.Image
import torch
from datasets import Dataset as ArrowDataset
from datasets import Image, load_dataset
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..models.vit_vqgan import pil_to_pixel_values, resize_center_crop
from .image_decoding import decode_image


# How many neighbouring examples a map-style dataset tries in place of an unreadable one before giving up.
MAX_REPLACEMENT_ATTEMPTS = 32


def load_image_dataset(
    dataset_name: str | None = None,
    train_data_dir: str | None = None,
    dataset_config_name: str | None = None,
    split: str | None = "train",
    streaming: bool = False,
    cache_dir: str | None = None,
    image_column: str = "image",
):
    """
    Load an image dataset from the Hugging Face Hub or from a local image folder, with images left undecoded.

    The image column is cast to `datasets.Image(decode=False)`, so each example holds the file's `bytes` and `path`
    and decoding happens one example at a time in [`ImageTrainingDataset`] or [`ImageStreamingDataset`], where a
    broken file can be skipped.

    Args:
        dataset_name (`str`, *optional*, defaults to `None`):
            Name of a dataset on the Hub or in the local cache, for example `"ILSVRC/imagenet-1k"`. Exactly one of
            `dataset_name` and `train_data_dir` must be given.
        train_data_dir (`str`, *optional*, defaults to `None`):
            A folder loaded with `load_dataset("imagefolder", data_dir=...)`: images in `<class>/` subfolders (which
            give a `label` column) or in `train/<class>/`, `validation/<class>/` (which give splits).
        dataset_config_name (`str`, *optional*, defaults to `None`):
            Configuration of the Hub dataset.
        split (`str`, *optional*, defaults to `"train"`):
            Split to return; `None` returns every split as a `DatasetDict` (or `IterableDatasetDict`).
        streaming (`bool`, *optional*, defaults to `False`):
            Stream the examples instead of downloading and preparing the whole dataset.
        cache_dir (`str`, *optional*, defaults to `None`):
            Cache directory of `datasets`.
        image_column (`str`, *optional*, defaults to `"image"`):
            Column holding the images.

    Returns:
        `datasets.Dataset`, `datasets.IterableDataset`, or a dictionary of them when `split` is `None`.

    Raises:
        `ValueError`: when both or neither source is given, when `train_data_dir` is not a folder, when `split` does
        not exist (the message lists the splits) or when the image column is missing.

    Example:

    ```python
    >>> from vit_vqgan_hf.training.data import load_image_dataset

    >>> dataset = load_image_dataset(train_data_dir="path/to/images")  # doctest: +SKIP
    >>> dataset.features["image"]  # doctest: +SKIP
    Image(mode=None, decode=False)
    ```
    """
    if (dataset_name is None) == (train_data_dir is None):
        raise ValueError("Pass exactly one of `dataset_name` (a Hub dataset) and `train_data_dir` (an image folder).")
    if train_data_dir is not None:
        if not os.path.isdir(train_data_dir):
            raise ValueError(f"The image folder {str(train_data_dir)!r} does not exist or is not a folder.")
        splits = load_dataset("imagefolder", data_dir=train_data_dir, streaming=streaming, cache_dir=cache_dir)
    else:
        splits = load_dataset(dataset_name, dataset_config_name, streaming=streaming, cache_dir=cache_dir)
    source = train_data_dir if train_data_dir is not None else dataset_name
    for name, dataset in splits.items():
        columns = dataset.column_names
        if columns is not None and image_column not in columns:
            raise ValueError(f"Split {name!r} of {source!r} has no image column {image_column!r}; columns: {columns}.")
    splits = splits.cast_column(image_column, Image(decode=False))
    if split is None:
        return splits
    if split not in splits:
        raise ValueError(f"{source!r} has no split {split!r}; available splits: {sorted(splits)}.")
    return splits[split]


def random_resized_crop(
    image: PIL.Image.Image,
    size: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    resample: PIL.Image.Resampling = PIL.Image.Resampling.BICUBIC,
) -> PIL.Image.Image:
    """
    Crop a random area and aspect ratio and resize it to `size x size` (torchvision's `RandomResizedCrop`).

    Up to ten times, draw an area fraction uniformly from `scale` and an aspect ratio log-uniformly from `ratio`, and
    keep the first box that fits; otherwise take the largest central box whose ratio lies in `ratio`.

    Args:
        image (`PIL.Image.Image`):
            Input image.
        size (`int`):
            Side of the output square.
        generator (`torch.Generator`):
            Source of randomness; the same seed gives the same crop.
        scale (`tuple[float, float]`, *optional*, defaults to `(0.08, 1.0)`):
            Range of the crop's area as a fraction of the image's.
        ratio (`tuple[float, float]`, *optional*, defaults to `(3 / 4, 4 / 3)`):
            Range of the crop's width / height.
        resample (`PIL.Image.Resampling`, *optional*, defaults to `PIL.Image.Resampling.BICUBIC`):
            Resampling filter.

    Returns:
        `PIL.Image.Image` of size `(size, size)`.

    Example:

    ```python
    >>> import PIL.Image, torch
    >>> from vit_vqgan_hf.training.data import random_resized_crop

    >>> image = PIL.Image.new("RGB", (64, 48))
    >>> random_resized_crop(image, 32, torch.Generator().manual_seed(0), scale=(0.5, 1.0)).size
    (32, 32)
    ```
    """
    width, height = image.size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        draws = torch.rand(4, generator=generator).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        aspect_ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * draws[1])
        crop_width = int(round(math.sqrt(target_area * aspect_ratio)))
        crop_height = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            left = int(draws[2] * (width - crop_width + 1))
            top = int(draws[3] * (height - crop_height + 1))
            break
    else:
        # Fallback of torchvision: a central crop with the aspect ratio clamped into `ratio`.
        if width / height < ratio[0]:
            crop_width, crop_height = width, int(round(width / ratio[0]))
        elif width / height > ratio[1]:
            crop_width, crop_height = int(round(height * ratio[1])), height
        else:
            crop_width, crop_height = width, height
        left, top = (width - crop_width) // 2, (height - crop_height) // 2
    box = (left, top, left + crop_width, top + crop_height)
    return image.resize((size, size), resample=resample, box=box)


def horizontal_flip(image: PIL.Image.Image, generator: torch.Generator, probability: float = 0.5) -> PIL.Image.Image:
    """
    Mirror the image left to right with the given probability.

    Args:
        image (`PIL.Image.Image`):
            Input image.
        generator (`torch.Generator`):
            Source of randomness.
        probability (`float`, *optional*, defaults to 0.5):
            Probability of the flip.

    Returns:
        `PIL.Image.Image`, flipped or not.
    """
    if torch.rand(1, generator=generator).item() < probability:
        return image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def augmentation_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A `torch.Generator` that depends only on `(seed, epoch, index)`: per-example, per-epoch randomness."""
    # A fixed odd multiplier per component keeps nearby tuples far apart in seed space (no collisions for
    # realistic epochs and dataset sizes below 2**40 examples).
    mixed = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index) % (2**63)
    return torch.Generator().manual_seed(mixed)


class ImageTransform:
    """
    Decode, crop, flip and normalize one image, with randomness drawn from a given generator.

    Args:
        resolution (`int`):
            Side of the output images.
        random_crop (`bool`, *optional*, defaults to `False`):
            Use [`random_resized_crop`]; otherwise `vit_vqgan_hf.models.vit_vqgan.resize_center_crop`, the central crop
            of the tokenizer's image processor.
        random_flip (`bool`, *optional*, defaults to `False`):
            Mirror half of the images ([`horizontal_flip`]).
        crop_scale (`tuple[float, float]`, *optional*, defaults to `(0.08, 1.0)`):
            Area range of the random crop.
        crop_ratio (`tuple[float, float]`, *optional*, defaults to `(3 / 4, 4 / 3)`):
            Aspect-ratio range of the random crop.
    """

    def __init__(
        self,
        resolution: int,
        random_crop: bool = False,
        random_flip: bool = False,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ):
        self.resolution = resolution
        self.random_crop = random_crop
        self.random_flip = random_flip
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)

    def __call__(self, value, generator: torch.Generator) -> torch.Tensor:
        image = decode_image(value)
        if self.random_crop:
            image = random_resized_crop(image, self.resolution, generator, self.crop_scale, self.crop_ratio)
        else:
            image = resize_center_crop(image, self.resolution)
        if self.random_flip:
            image = horizontal_flip(image, generator)
        return pil_to_pixel_values(image)


class ImageTrainingDataset(Dataset):
    """
    Map-style dataset of augmented images in `[-1, 1]` over a `datasets.Dataset` with undecoded images.

    Example `index` of epoch `epoch` is augmented with a generator seeded by `(seed, epoch, index)`; call
    [`ImageTrainingDataset.set_epoch`] before each epoch (before creating the dataloader's iterator, so that
    non-persistent workers receive it). An image that cannot be decoded is replaced by the next readable example
    (`index + 1`, `index + 2`, ...), so batches keep their size in every process, and the replacement sets the
    example's `skipped` field to 1: over a pass, each unreadable image counts once.

    Args:
        dataset (`datasets.Dataset`):
            Source examples, e.g. from [`load_image_dataset`].
        transform ([`ImageTransform`]):
            Decoding and augmentation.
        image_column (`str`, *optional*, defaults to `"image"`):
            Column holding the images.
        label_column (`str`, *optional*, defaults to `None`):
            Column of class labels, returned as `label` when given and present in the dataset.
        seed (`int`, *optional*, defaults to 0):
            Seed of the augmentation.

    Example:

    ```python
    >>> from torch.utils.data import DataLoader
    >>> from vit_vqgan_hf.training.data import ImageTrainingDataset, ImageTransform, collate_images

    >>> images = ImageTrainingDataset(dataset, ImageTransform(32, random_crop=True), label_column="label")  # doctest: +SKIP
    >>> batch = next(iter(DataLoader(images, batch_size=4, collate_fn=collate_images)))  # doctest: +SKIP
    >>> batch["pixel_values"].shape, batch["skipped"]  # doctest: +SKIP
    (torch.Size([4, 3, 32, 32]), 0)
    ```
    """

    def __init__(
        self,
        dataset,
        transform: ImageTransform,
        image_column: str = "image",
        label_column: str | None = None,
        seed: int = 0,
    ):
        self.dataset = dataset
        self.transform = transform
        self.image_column = image_column
        self.label_column = label_column if label_column in (dataset.column_names or []) else None
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int):
        """Set the epoch that seeds the augmentation of the following examples."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        attempts = min(len(self.dataset), MAX_REPLACEMENT_ATTEMPTS)
        for skipped in range(attempts):
            position = (index + skipped) % len(self.dataset)
            example = self.dataset[position]
            try:
                generator = augmentation_generator(self.seed, self.epoch, position)
                pixel_values = self.transform(example[self.image_column], generator)
            except Exception:  # unreadable, truncated or unsupported file: any decoding error skips the example
                continue
            # The unreadable image counts once per pass, where its own index is read, not again each time it is
            # passed over in place of an earlier unreadable one.
            item = {"pixel_values": pixel_values, "skipped": int(skipped > 0)}
            if self.label_column is not None:
                item["label"] = example[self.label_column]
            return item
        raise RuntimeError(
            f"{attempts} consecutive examples starting at index {index} could not be decoded as images; check the "
            f"dataset's `{self.image_column}` column."
        )


class ImageStreamingDataset(IterableDataset):
    """
    Iterable dataset of augmented images in `[-1, 1]` over a streamed `datasets.IterableDataset`.

    Unreadable images are dropped and counted in the `skipped` field of the next example (drops after the last
    readable example of a stream go uncounted). With several dataloader workers, a `datasets.IterableDataset` splits
    its shards among the workers by itself; the `i`-th example that worker `w` of `n` reads is augmented with a
    generator seeded by `(seed, epoch, i * n + w)`, so the augmentation is reproducible for a fixed number of workers.
    [`ImageStreamingDataset.set_epoch`] also sets the epoch of the source, which reshuffles a shuffled stream.

    Args:
        dataset (`datasets.IterableDataset`):
            Source examples, e.g. from [`load_image_dataset`] with `streaming=True`.
        transform ([`ImageTransform`]):
            Decoding and augmentation.
        image_column (`str`, *optional*, defaults to `"image"`):
            Column holding the images.
        label_column (`str`, *optional*, defaults to `None`):
            Column of class labels, returned as `label` when given.
        seed (`int`, *optional*, defaults to 0):
            Seed of the augmentation.
    """

    def __init__(
        self,
        dataset,
        transform: ImageTransform,
        image_column: str = "image",
        label_column: str | None = None,
        seed: int = 0,
    ):
        self.dataset = dataset
        self.transform = transform
        self.image_column = image_column
        columns = dataset.column_names
        self.label_column = label_column if columns is None or label_column in columns else None
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int):
        """Set the epoch that seeds the augmentation (and the shuffling of the source)."""
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        skipped = 0
        for position, example in enumerate(self.dataset):
            try:
                generator = augmentation_generator(self.seed, self.epoch, position * num_workers + worker_id)
                pixel_values = self.transform(example[self.image_column], generator)
            except Exception:  # unreadable, truncated or unsupported file: any decoding error skips the example
                skipped += 1
                continue
            item = {"pixel_values": pixel_values, "skipped": skipped}
            if self.label_column is not None and self.label_column in example:
                item["label"] = example[self.label_column]
            skipped = 0
            yield item


def collate_images(examples: list[dict]) -> dict:
    """
    Stack examples of [`ImageTrainingDataset`] or [`ImageStreamingDataset`] into a batch.

    Args:
        examples (`list[dict]`):
            Items with `pixel_values`, `skipped` and optionally `label`.

    Returns:
        `dict` with `pixel_values` (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`), `skipped` (`int`,
        the number of unreadable images this batch replaced or dropped; sum it over batches and processes) and, when
        the examples have labels, `labels` (`torch.LongTensor` of shape `(batch_size,)`).
    """
    batch = {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "skipped": sum(example["skipped"] for example in examples),
    }
    if examples and "label" in examples[0]:
        batch["labels"] = torch.tensor([example["label"] for example in examples], dtype=torch.long)
    return batch


def load_training_images(args, accelerator) -> dict:
    """
    Every split of the training script's `args.dataset_name` or `args.train_data_dir` ([`load_image_dataset`], images
    undecoded, with `args.streaming`, `args.cache_dir`, `args.image_column`), loaded by the main process first so that
    the others read its cache; refuses data without the split `args.train_split`.
    """
    with accelerator.main_process_first():
        splits = load_image_dataset(
            args.dataset_name,
            args.train_data_dir,
            args.dataset_config_name,
            None,
            streaming=args.streaming,
            cache_dir=args.cache_dir,
            image_column=args.image_column,
        )
    if args.train_split not in splits:
        raise ValueError(f"No split {args.train_split!r} to train on; available splits: {sorted(splits)}.")
    return splits


def augmented_images(args, dataset, resolution: int) -> ImageTrainingDataset | ImageStreamingDataset:
    """The training images of a split at `resolution`, augmented as the script's arguments say; a stream is shuffled in
    a buffer."""
    transform = ImageTransform(resolution, args.random_crop, args.random_flip, tuple(args.random_crop_scale))
    if args.streaming:
        dataset = dataset.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
        return ImageStreamingDataset(dataset, transform, args.image_column, args.label_column, seed=args.seed)
    return ImageTrainingDataset(dataset, transform, args.image_column, args.label_column, seed=args.seed)


def held_out_images(args, dataset, num_images: int, resolution: int) -> ImageTrainingDataset:
    """The first `num_images` images of a split, center-cropped to `resolution`; a stream's are materialized (still undecoded) so that
    every process can index them."""
    if args.streaming:
        dataset = ArrowDataset.from_list(list(dataset.take(num_images)), features=dataset.features)
    else:
        dataset = dataset.select(range(min(len(dataset), num_images)))
    return ImageTrainingDataset(
        dataset, ImageTransform(resolution), args.image_column, args.label_column, seed=args.seed
    )


__all__ = [
    "ImageStreamingDataset",
    "ImageTrainingDataset",
    "ImageTransform",
    "augmentation_generator",
    "augmented_images",
    "collate_images",
    "held_out_images",
    "horizontal_flip",
    "load_image_dataset",
    "load_training_images",
    "random_resized_crop",
]
