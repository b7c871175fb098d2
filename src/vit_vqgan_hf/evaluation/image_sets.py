# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Image sets for evaluation: a folder of images, an `.npz` of images, or a `datasets` split, as `uint8` tensors.

Evaluation numbers depend on which images were read and how they were resized, so every set describes itself
([`describe`](ImageFolderSet.describe)): source, number of images, class balance, resizing, and skipped files.

Error policy (documented in examples/README.md):

- an empty folder, a missing path, or an `.npz` without images raise `ValueError`/`FileNotFoundError`;
- images that PIL cannot open are listed by name in a `ValueError`, unless `skip_unreadable_images=True`, in which
  case they are left out and their names and count are recorded in the description (and so in the results file);
- images of different sizes without a `resolution` to resize to raise a `ValueError` that lists the sizes found.
"""

import collections
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..models.vit_vqgan import convert_to_rgb, prepare_image


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
# How many file names an error message lists before it only counts.
_MAX_LISTED = 20


RESIZE_MODES = ("center_crop", "squash")


def resize_description(resolution: int | None, resize: str = "center_crop") -> str:
    """How [`to_uint8_tensor`] treats images for a given `resolution` and `resize` mode, for results files."""
    if resolution is None:
        return "none (images used at their stored size; all images must have the same size)"
    if resize == "squash":
        return (
            f"images not already {resolution}x{resolution}: resized to {resolution}x{resolution} with PIL bilinear "
            "(antialiased), aspect ratio not kept"
        )
    return (
        f"shorter side resized to {resolution} with PIL bicubic (antialiased; longer side truncated to an integer), "
        "then center-cropped (odd margins floored): the tokenizer's image processor"
    )


def to_uint8_tensor(image: Image.Image, resolution: int | None = None, resize: str = "center_crop") -> torch.Tensor:
    """
    A PIL image as a `uint8` tensor of shape `(3, height, width)`, optionally resized.

    Args:
        image (`PIL.Image.Image`):
            Any PIL image; it is converted to RGB as the tokenizer's image processor converts it
            (`vit_vqgan_hf.models.vit_vqgan.convert_to_rgb`: transparency composited on white).
        resolution (`int`, *optional*, defaults to `None`):
            Side of the square output; `None` keeps the stored size.
        resize (`str`, *optional*, defaults to `"center_crop"`):
            How an image becomes `resolution`x`resolution`: `"center_crop"` is
            `vit_vqgan_hf.models.vit_vqgan.prepare_image`, the pixels of the tokenizer's image processor and of the
            training scripts (shorter side resized with bicubic resampling, central crop); `"squash"` resizes both
            sides (bilinear, aspect ratio not kept), as the ImageNet validation of thuanz123/enhancing-transformers
            (torchvision's `Resize((256, 256))` on PIL images), whose published rFID used it.

    Returns:
        `torch.ByteTensor` of shape `(3, height, width)`.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"`resize` must be one of {RESIZE_MODES}, got {resize!r}.")
    if resolution is None:
        image = convert_to_rgb(image)
    elif resize == "squash":
        image = convert_to_rgb(image)
        if image.size != (resolution, resolution):
            image = image.resize((resolution, resolution), resample=Image.Resampling.BILINEAR)
    else:
        image = prepare_image(image, resolution)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def _list_names(items) -> str:
    items = [str(item) for item in items]
    listed = ", ".join(items[:_MAX_LISTED])
    return listed + (f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _check_sizes(sizes: list[tuple[int, int]], names: list[str], resolution: int | None, source: str) -> None:
    if resolution is not None or len(set(sizes)) <= 1:
        return
    counts = collections.Counter(sizes)
    examples = {}
    for size, name in zip(sizes, names):
        examples.setdefault(size, name)
    summary = "; ".join(
        f"{width}x{height}: {count} images (e.g. {examples[(width, height)]})"
        for (width, height), count in counts.most_common(5)
    )
    raise ValueError(
        f"The images in {source} have {len(counts)} different sizes ({summary}). Metrics compare images of one size: "
        "pass a resolution to resize them to (`resolution`)."
    )


def _single_size(sizes) -> int | str:
    """The side of square images, or `"WxH"`, of a set whose images all have one size."""
    width, height = sizes[0]
    return width if width == height else f"{width}x{height}"


def class_balance(labels, class_names: list[str] | None = None) -> dict:
    """
    Images per class of a set, for results files.

    Args:
        labels (sequence of `int`):
            Class id of every image; negative ids mean "no label".
        class_names (`list[str]`, *optional*, defaults to `None`):
            Names of the class ids, used as keys when given.

    Returns:
        `dict` with `labelled` (`bool`), and for labelled sets `num_classes`, `images_per_class` (name or id ->
        count, sorted by id), `min_images_per_class`, `max_images_per_class` and `balanced` (min == max).
    """
    labels = [int(label) for label in labels]
    if not labels or any(label < 0 for label in labels):
        return {"labelled": False}
    counts = collections.Counter(labels)
    if class_names is not None:
        per_class = {class_names[label]: counts[label] for label in sorted(counts)}
    else:
        per_class = {str(label): counts[label] for label in sorted(counts)}
    return {
        "labelled": True,
        "num_classes": len(counts),
        "images_per_class": per_class,
        "min_images_per_class": min(counts.values()),
        "max_images_per_class": max(counts.values()),
        "balanced": min(counts.values()) == max(counts.values()),
    }


class ImageFolderSet(torch.utils.data.Dataset):
    """
    The images of a folder (searched recursively, sorted by path) as `uint8` tensors.

    When every image sits in a first-level subfolder (the `imagefolder` layout `root/<class>/<image>`), the subfolder
    names are the classes, sorted; otherwise the images have no labels (`-1`). Every image is opened once when the set
    is built, to find unreadable files and mixed sizes before any model runs.

    Args:
        folder (`str` or `os.PathLike`):
            The folder.
        resolution (`int`, *optional*, defaults to `None`):
            Resize images to `resolution`x`resolution` ([`to_uint8_tensor`]); required when the images have different
            sizes.
        skip_unreadable_images (`bool`, *optional*, defaults to `False`):
            Leave out files PIL cannot open (and record them) instead of raising.
        resize (`str`, *optional*, defaults to `"center_crop"`):
            `"center_crop"` or `"squash"`, see [`to_uint8_tensor`].

    Each item is a dict with `images` (`uint8` `(3, H, W)`), `labels` (`int`, -1 without labels) and `indices`.

    Example:

    ```python
    >>> from vit_vqgan_hf.evaluation import ImageFolderSet

    >>> images = ImageFolderSet("path/to/val", resolution=256)  # doctest: +SKIP
    >>> images.describe()["num_images"]  # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        resolution: int | None = None,
        skip_unreadable_images: bool = False,
        resize: str = "center_crop",
    ):
        self.folder = Path(folder)
        self.resolution = resolution
        self.resize = resize
        if not self.folder.is_dir():
            raise FileNotFoundError(f"Image folder {str(self.folder)!r} does not exist or is not a folder.")
        candidates = sorted(
            path for path in self.folder.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not candidates:
            raise ValueError(
                f"No images in {str(self.folder)!r} (searched recursively for {', '.join(IMAGE_EXTENSIONS)})."
            )
        self.files, sizes, unreadable = [], [], []
        for path in candidates:
            try:
                with Image.open(path) as image:
                    size = image.size
                    image.verify()
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
                unreadable.append((path, error))
                continue
            self.files.append(path)
            sizes.append(size)
        self.unreadable = [str(path.relative_to(self.folder)) for path, _ in unreadable]
        if unreadable and not skip_unreadable_images:
            raise ValueError(
                f"{len(unreadable)} of {len(candidates)} files in {str(self.folder)!r} cannot be read as images: "
                f"{_list_names(f'{path.relative_to(self.folder)} ({type(error).__name__})' for path, error in unreadable)}"
                ". Remove them, or skip them and record their names in the results (`skip_unreadable_images=True`)."
            )
        if not self.files:
            raise ValueError(f"None of the {len(candidates)} files in {str(self.folder)!r} is a readable image.")
        names = [str(path.relative_to(self.folder)) for path in self.files]
        _check_sizes(sizes, names, resolution, repr(str(self.folder)))
        self.sizes = sizes

        relative_parts = [path.relative_to(self.folder).parts for path in self.files]
        if all(len(parts) >= 2 for parts in relative_parts):
            self.class_names = sorted({parts[0] for parts in relative_parts})
            class_ids = {name: index for index, name in enumerate(self.class_names)}
            self.labels = [class_ids[parts[0]] for parts in relative_parts]
        else:
            self.class_names = None
            self.labels = [-1] * len(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                pixels = to_uint8_tensor(image, self.resolution, self.resize)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
            raise ValueError(f"Cannot decode {str(path)!r} ({type(error).__name__}: {error}).") from error
        return {"images": pixels, "labels": self.labels[index], "indices": index}

    def describe(self) -> dict:
        """Source, size, class balance, resizing and skipped files of the set, for results files."""
        return {
            "source": {"kind": "image_folder", "path": str(self.folder)},
            "num_images": len(self.files),
            "stored_sizes": sorted({f"{width}x{height}" for width, height in self.sizes}),
            "image_size": self.resolution or _single_size(self.sizes),
            "resolution": self.resolution,
            "resize": resize_description(self.resolution, self.resize),
            "class_balance": class_balance(self.labels, self.class_names),
            "unreadable_images_skipped": len(self.unreadable),
            "unreadable_image_names": self.unreadable[:100],
        }


def _read_npz_array(path: Path, key: str) -> np.ndarray:
    """
    An array of an `.npz`, memory-mapped when it is stored uncompressed (`np.savez`, examples/sample.py), so that 50k
    samples of 256x256 (9.8 GB) are not read into memory; arrays of `np.savez_compressed` files are read whole.
    """
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path, allow_pickle=False) as loaded:
            return loaded[key]
    with open(path, "rb") as file:
        # The member's local header: 30 bytes, then the file name and an extra field of the lengths stored in it.
        file.seek(info.header_offset)
        local_header = file.read(30)
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        file.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
        offset = file.tell()
    if dtype.hasobject:
        raise ValueError(f"{str(path)!r}: {key!r} holds Python objects, not images.")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")


class NpzImageSet(torch.utils.data.Dataset):
    """
    Images stored in an `.npz` file as `arr_0`, `uint8` of shape `(N, H, W, 3)` (the format of the sampling scripts of
    ADM, LlamaGen and this repository's examples/sample.py); `(N, 3, H, W)` is accepted too. Class labels are read
    from `labels` or `arr_1` when one of them is an integer array of length `N`. Uncompressed files (`np.savez`) are
    memory-mapped, so sets larger than memory work.

    Args:
        path (`str` or `os.PathLike`):
            The `.npz` file.
        resolution (`int`, *optional*, defaults to `None`):
            Resize images of another size to `resolution`x`resolution`.
        key (`str`, *optional*, defaults to `"arr_0"`):
            Name of the image array.
        resize (`str`, *optional*, defaults to `"center_crop"`):
            `"center_crop"` or `"squash"`, see [`to_uint8_tensor`].
    """

    def __init__(
        self, path: str | os.PathLike, resolution: int | None = None, key: str = "arr_0", resize: str = "center_crop"
    ):
        self.resize = resize
        self.path = Path(path)
        self.resolution = resolution
        if not self.path.is_file():
            raise FileNotFoundError(f"No .npz file at {str(self.path)!r}.")
        with np.load(self.path, allow_pickle=False) as archive:
            if key not in archive.files:
                raise ValueError(f"{str(self.path)!r} has no array {key!r} of images (arrays: {archive.files}).")
            images = _read_npz_array(self.path, key)
            labels = None
            for label_key in ("labels", "arr_1"):
                if label_key in archive.files:
                    candidate = archive[label_key]
                    if candidate.ndim == 1 and len(candidate) == len(images) and candidate.dtype.kind in "iu":
                        labels = candidate.astype(np.int64)
                        break
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(
                f"{str(self.path)!r}: {key!r} must be a non-empty array of images (N, H, W, 3), got shape "
                f"{images.shape}."
            )
        if images.shape[-1] != 3 and images.shape[1] == 3:
            images = images.transpose(0, 2, 3, 1)  # a view: memory-mapped images stay on disk
        if images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{str(self.path)!r}: {key!r} must hold uint8 RGB images (N, H, W, 3), got {images.dtype} "
                f"{images.shape}."
            )
        self.images = images
        self.labels = labels.tolist() if labels is not None else [-1] * len(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]
        if self.resolution is not None and image.shape[:2] != (self.resolution, self.resolution):
            pixels = to_uint8_tensor(Image.fromarray(image), self.resolution, self.resize)
        else:
            pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)  # a copy off the memory map
        return {"images": pixels, "labels": self.labels[index], "indices": index}

    def describe(self) -> dict:
        """Source, size, class balance and resizing of the set, for results files."""
        height, width = self.images.shape[1:3]
        return {
            "source": {"kind": "npz", "path": str(self.path)},
            "num_images": len(self.images),
            "stored_sizes": [f"{width}x{height}"],
            "image_size": self.resolution or _single_size([(width, height)]),
            "resolution": self.resolution,
            "resize": resize_description(self.resolution, self.resize),
            "class_balance": class_balance(self.labels),
            "unreadable_images_skipped": 0,
            "unreadable_image_names": [],
        }


class DatasetImageSet(torch.utils.data.Dataset):
    """
    A split of a `datasets` image dataset (e.g. `load_dataset("ILSVRC/imagenet-1k", split="validation")`).

    Images are decoded when accessed; without a `resolution`, an image whose size differs from the first one raises
    the mixed-sizes error, and an image that cannot be decoded raises with its index.

    Args:
        dataset (`datasets.Dataset`):
            The split.
        image_column (`str`, *optional*, defaults to `"image"`):
            Column of PIL images.
        label_column (`str`, *optional*, defaults to `"label"`):
            Column of integer class labels; ignored when the dataset has no such column.
        resolution (`int`, *optional*, defaults to `None`):
            Resize images of another size to `resolution`x`resolution`.
        name (`str`, *optional*, defaults to `None`):
            Name of the dataset for results files.
        split (`str`, *optional*, defaults to `None`):
            Name of the split for results files.
        resize (`str`, *optional*, defaults to `"center_crop"`):
            `"center_crop"` or `"squash"`, see [`to_uint8_tensor`].
    """

    def __init__(
        self,
        dataset,
        image_column: str = "image",
        label_column: str = "label",
        resolution: int | None = None,
        name: str | None = None,
        split: str | None = None,
        resize: str = "center_crop",
    ):
        if len(dataset) == 0:
            raise ValueError(f"The dataset {name!r} split {split!r} has no rows.")
        if image_column not in dataset.column_names:
            raise ValueError(f"The dataset has no column {image_column!r}; its columns are {dataset.column_names}.")
        self.dataset = dataset
        self.image_column = image_column
        self.resolution = resolution
        self.resize = resize
        self.name, self.split = name, split
        if label_column in dataset.column_names:
            self.labels = [int(label) for label in dataset[label_column]]
            feature = dataset.features.get(label_column)
            self.class_names = list(feature.names) if hasattr(feature, "names") else None
        else:
            self.labels, self.class_names = [-1] * len(dataset), None
        self.expected_size = None if resolution is not None else self._load(0).size

    def _load(self, index: int) -> Image.Image:
        try:
            image = self.dataset[index][self.image_column]
        except Exception as error:  # any decoding failure of the underlying storage
            raise ValueError(
                f"Cannot decode image {index} of {self.name!r} ({type(error).__name__}: {error})."
            ) from error
        if not isinstance(image, Image.Image):
            raise ValueError(f"Column {self.image_column!r} must hold images, got {type(image).__name__}.")
        return image

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        image = self._load(index)
        if self.expected_size is not None and image.size != self.expected_size:
            _check_sizes([self.expected_size, image.size], ["image 0", f"image {index}"], None, repr(self.name))
        return {
            "images": to_uint8_tensor(image, self.resolution, self.resize),
            "labels": self.labels[index],
            "indices": index,
        }

    def describe(self) -> dict:
        """Source, size, class balance and resizing of the set, for results files."""
        return {
            "source": {"kind": "dataset", "name": self.name, "split": self.split},
            "num_images": len(self.dataset),
            "resolution": self.resolution,
            "resize": resize_description(self.resolution, self.resize),
            "class_balance": class_balance(self.labels, self.class_names),
            "unreadable_images_skipped": 0,
            "unreadable_image_names": [],
        }


def open_image_set(
    path: str | os.PathLike,
    resolution: int | None = None,
    skip_unreadable_images: bool = False,
    resize: str = "center_crop",
) -> ImageFolderSet | NpzImageSet:
    """
    An [`ImageFolderSet`] for a folder or an [`NpzImageSet`] for an `.npz` file.

    Args:
        path (`str` or `os.PathLike`):
            A folder of images or an `.npz` file with `arr_0`.
        resolution (`int`, *optional*, defaults to `None`):
            Resize images of another size to `resolution`x`resolution`.
        skip_unreadable_images (`bool`, *optional*, defaults to `False`):
            For folders: leave out (and record) files PIL cannot open instead of raising.
        resize (`str`, *optional*, defaults to `"center_crop"`):
            `"center_crop"` or `"squash"`, see [`to_uint8_tensor`].

    Returns:
        [`ImageFolderSet`] or [`NpzImageSet`].
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return NpzImageSet(path, resolution=resolution, resize=resize)
    if path.is_dir():
        return ImageFolderSet(path, resolution, skip_unreadable_images, resize)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist; expected a folder of images or an .npz file.")
    raise FileNotFoundError(f"{str(path)!r} is neither a folder of images nor an .npz file.")


__all__ = [
    "DatasetImageSet",
    "ImageFolderSet",
    "RESIZE_MODES",
    "NpzImageSet",
    "class_balance",
    "open_image_set",
    "resize_description",
    "to_uint8_tensor",
]
