import io

import numpy as np
import PIL.Image
import pytest
import torch
from datasets import IterableDataset

from tests.testing_utils import striped_image, write_image_folder
from vit_vqgan_hf.training.data import (
    ImageStreamingDataset,
    ImageTrainingDataset,
    ImageTransform,
    collate_images,
    horizontal_flip,
    load_image_dataset,
    random_resized_crop,
)
from vit_vqgan_hf.training.image_decoding import decode_image


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def png_bytes(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# Decoding


def test_decode_image_sources(tmp_path):
    image = PIL.Image.new("RGB", (5, 4), (10, 20, 30))
    path = tmp_path / "image.png"
    image.save(path)
    data = png_bytes(image)
    for value in (data, str(path), {"bytes": data, "path": None}, {"bytes": None, "path": str(path)}, image):
        decoded = decode_image(value)
        assert decoded.mode == "RGB" and decoded.size == (5, 4) and decoded.getpixel((0, 0)) == (10, 20, 30)


def test_decode_image_rejects_truncated_and_garbage_files():
    data = png_bytes(PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(OSError):
        decode_image(data[: len(data) // 2])
    with pytest.raises(PIL.UnidentifiedImageError):
        decode_image(b"\x89PNG\r\n\x1a\nnot an image")


# Geometry


def test_random_resized_crop_is_reproducible_and_varies_with_the_seed():
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    crops = [np.asarray(random_resized_crop(image, 24, seeded(seed), scale=(0.2, 1.0))) for seed in (0, 0, 1)]
    assert crops[0].shape == (24, 24, 3)
    np.testing.assert_array_equal(crops[0], crops[1])
    assert not np.array_equal(crops[0], crops[2])
    # With the whole area and a square ratio on a square image, the crop is the plain resize.
    square = image.crop((0, 0, 48, 48))
    full = random_resized_crop(square, 24, seeded(3), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_array_equal(np.asarray(full), np.asarray(square.resize((24, 24), PIL.Image.Resampling.BICUBIC)))


def test_random_resized_crop_falls_back_to_a_central_crop():
    # No crop of at least 90% of a 400x4 strip has an aspect ratio within [3/4, 4/3]: the fallback clamps the ratio.
    pixels = np.zeros((4, 400, 3), dtype=np.uint8)
    pixels[:, 190:210, 1] = 255  # a green band in the middle of a black strip
    crop = random_resized_crop(
        PIL.Image.fromarray(pixels), 8, seeded(0), scale=(0.9, 1.0), resample=PIL.Image.Resampling.NEAREST
    )
    assert crop.size == (8, 8)
    assert (np.asarray(crop)[..., 1] == 255).all()


def test_horizontal_flip():
    image = striped_image(6, 2)
    flipped = np.asarray(horizontal_flip(image, seeded(0), probability=1.0))
    np.testing.assert_array_equal(flipped, np.asarray(image)[:, ::-1])
    assert horizontal_flip(image, seeded(0), probability=0.0) is image
    outcomes = {horizontal_flip(image, seeded(seed)) is image for seed in range(16)}
    assert outcomes == {True, False}


# Datasets


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """8 images of 40x36 in `cat` and `dog` and one corrupt file in `cat` (half the shared `image_folder`)."""
    sizes = [(40, 36)] * 4
    return write_image_folder(tmp_path_factory.mktemp("images"), {"cat": sizes, "dog": sizes}, corrupt=True)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def test_load_image_dataset_image_folder(image_folder, cache_dir):
    dataset = load_image_dataset(train_data_dir=str(image_folder), cache_dir=cache_dir)
    assert len(dataset) == 9 and not dataset.features["image"].decode
    assert dataset.features["label"].names == ["cat", "dog"]
    assert set(dataset[0]["image"]) == {"bytes", "path"}
    assert list(load_image_dataset(train_data_dir=str(image_folder), split=None, cache_dir=cache_dir)) == ["train"]
    with pytest.raises(ValueError, match=r"no split 'validation'; available splits: \['train'\]"):
        load_image_dataset(train_data_dir=str(image_folder), split="validation", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="no image column 'picture'"):
        load_image_dataset(train_data_dir=str(image_folder), cache_dir=cache_dir, image_column="picture")
    with pytest.raises(ValueError, match="exactly one"):
        load_image_dataset(dataset_name="some/dataset", train_data_dir=str(image_folder))
    with pytest.raises(ValueError, match="'.*no-such-folder' does not exist or is not a folder"):
        load_image_dataset(train_data_dir=str(image_folder / "no-such-folder"), cache_dir=cache_dir)


def test_training_dataset_replaces_and_counts_unreadable_images(image_folder, cache_dir):
    dataset = load_image_dataset(train_data_dir=str(image_folder), cache_dir=cache_dir)
    broken = next(index for index, example in enumerate(dataset) if example["image"]["path"].endswith("broken.png"))
    images = ImageTrainingDataset(dataset, ImageTransform(16), label_column="label")
    items = [images[index] for index in range(len(images))]
    assert [item["skipped"] for item in items] == [int(index == broken) for index in range(len(images))]
    # The broken example is replaced by the next one, label included.
    replacement = (broken + 1) % len(images)
    torch.testing.assert_close(items[broken]["pixel_values"], items[replacement]["pixel_values"])
    assert items[broken]["label"] == items[replacement]["label"]

    batch = collate_images(items)
    assert batch["pixel_values"].shape == (9, 3, 16, 16) and batch["skipped"] == 1
    assert batch["pixel_values"].min() >= -1 and batch["pixel_values"].max() <= 1
    expected_labels = list(dataset["label"])
    expected_labels[broken] = expected_labels[replacement]
    assert batch["labels"].tolist() == expected_labels
    assert "labels" not in collate_images([ImageTrainingDataset(dataset, ImageTransform(16))[0]])


def test_training_dataset_gives_up_on_an_unreadable_dataset(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.png").write_bytes(b"garbage")
    dataset = load_image_dataset(train_data_dir=str(folder), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="could not be decoded"):
        ImageTrainingDataset(dataset, ImageTransform(8))[0]


def test_augmentation_depends_on_seed_epoch_and_index_only(image_folder, cache_dir):
    dataset = load_image_dataset(train_data_dir=str(image_folder), cache_dir=cache_dir)
    transform = ImageTransform(16, random_crop=True, random_flip=True, crop_scale=(0.1, 0.5))
    images = ImageTrainingDataset(dataset, transform, seed=7)
    first = images[2]["pixel_values"]
    images[5]  # other examples do not move any shared random state
    torch.testing.assert_close(images[2]["pixel_values"], first)
    torch.testing.assert_close(ImageTrainingDataset(dataset, transform, seed=7)[2]["pixel_values"], first)
    images.set_epoch(1)
    assert not torch.equal(images[2]["pixel_values"], first)
    assert not torch.equal(ImageTrainingDataset(dataset, transform, seed=8)[2]["pixel_values"], first)


def test_streaming_dataset_drops_and_counts_unreadable_images(image_folder, cache_dir):
    stream = load_image_dataset(train_data_dir=str(image_folder), streaming=True, cache_dir=cache_dir)
    assert isinstance(stream, IterableDataset)
    images = ImageStreamingDataset(stream, ImageTransform(16, random_crop=True), label_column="label", seed=3)
    items = list(images)
    assert len(items) == 8 and sum(item["skipped"] for item in items) == 1
    assert {item["label"] for item in items} == {0, 1}
    again = list(images)
    for item, repeated in zip(items, again):
        torch.testing.assert_close(item["pixel_values"], repeated["pixel_values"])
    images.set_epoch(1)
    assert not torch.equal(next(iter(images))["pixel_values"], items[0]["pixel_values"])
