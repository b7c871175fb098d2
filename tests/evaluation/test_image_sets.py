import numpy as np
import pytest
import torch
from PIL import Image

from tests.testing_utils import write_image_folder
from vit_vqgan_hf.evaluation import DatasetImageSet, ImageFolderSet, NpzImageSet, open_image_set


def test_folder_with_class_subfolders(tmp_path):
    write_image_folder(tmp_path, {"cat": [(12, 10)] * 2, "dog": [(12, 10)] * 3})
    images = ImageFolderSet(tmp_path)
    assert len(images) == 5
    item = images[4]
    assert item["images"].dtype == torch.uint8 and item["images"].shape == (3, 10, 12) and item["labels"] == 1
    description = images.describe()
    assert description["class_balance"]["images_per_class"] == {"cat": 2, "dog": 3}
    assert not description["class_balance"]["balanced"]
    # Resizing: shorter side to 8, then a center crop.
    assert ImageFolderSet(tmp_path, resolution=8)[0]["images"].shape == (3, 8, 8)


def test_empty_and_missing_folders_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderSet(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="No images in"):
        ImageFolderSet(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a folder of images nor an .npz"):
        open_image_set(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="samples.npz' does not exist; expected a folder of images or an .npz"):
        open_image_set(tmp_path / "samples.npz")


def test_mixed_sizes_need_a_resolution(tmp_path):
    write_image_folder(tmp_path, {"a": [(16, 16), (16, 16), (20, 12)]})
    with pytest.raises(ValueError, match=r"2 different sizes \(16x16: 2 images.*20x12: 1 images.*`resolution`"):
        ImageFolderSet(tmp_path)
    assert len(ImageFolderSet(tmp_path, resolution=8)) == 3


def test_unreadable_images_are_listed_or_skipped_and_recorded(tmp_path):
    write_image_folder(tmp_path, {"a": [(8, 8)] * 2})
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"2 of 4 files .* cannot be read as images: a/broken.png .*a/empty.jpg"):
        ImageFolderSet(tmp_path)
    images = ImageFolderSet(tmp_path, skip_unreadable_images=True)
    assert len(images) == 2
    description = images.describe()
    assert description["unreadable_images_skipped"] == 2
    assert description["unreadable_image_names"] == ["a/broken.png", "a/empty.jpg"]


def test_npz_images_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 10, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", arr_0=images, arr_1=np.array([0, 0, 1, 1]))
    samples = open_image_set(tmp_path / "samples.npz")
    assert isinstance(samples, NpzImageSet) and len(samples) == 4
    torch.testing.assert_close(samples[1]["images"], torch.from_numpy(images[1]).permute(2, 0, 1))
    assert samples.describe()["class_balance"]["images_per_class"] == {"0": 2, "1": 2}
    assert isinstance(samples.images, np.memmap)  # uncompressed: memory-mapped, not read into memory
    np.savez_compressed(tmp_path / "compressed.npz", arr_0=images)
    torch.testing.assert_close(NpzImageSet(tmp_path / "compressed.npz")[3]["images"], samples[3]["images"])
    np.savez(tmp_path / "wrong.npz", arr_0=images.astype(np.float32))
    with pytest.raises(ValueError, match="must hold uint8 RGB images"):
        NpzImageSet(tmp_path / "wrong.npz")


def test_dataset_split_with_mixed_sizes():
    datasets = pytest.importorskip("datasets")
    rows = [Image.new("RGB", size) for size in ((8, 8), (8, 8), (6, 9))]
    dataset = datasets.Dataset.from_dict({"image": rows, "label": [0, 1, 1]})
    images = DatasetImageSet(dataset, name="toy", split="test")
    assert images[1]["images"].shape == (3, 8, 8) and images.describe()["class_balance"]["num_classes"] == 2
    with pytest.raises(ValueError, match="different sizes"):
        images[2]
    assert DatasetImageSet(dataset, resolution=4)[2]["images"].shape == (3, 4, 4)


def test_squash_resizes_both_sides_bilinearly_as_enhancing_transformers(tmp_path):
    # torchvision's `Resize((8, 8))` on a PIL image is PIL's bilinear resize of both sides.
    write_image_folder(tmp_path, {"a": [(36, 20)]})
    path = next((tmp_path / "a").iterdir())
    squashed = ImageFolderSet(tmp_path, resolution=8, resize="squash")
    expected = np.asarray(Image.open(path).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    assert torch.equal(squashed[0]["images"], torch.from_numpy(expected.copy()).permute(2, 0, 1))
    assert not torch.equal(squashed[0]["images"], ImageFolderSet(tmp_path, resolution=8)[0]["images"])
    assert "bilinear" in squashed.describe()["resize"] and "aspect ratio not kept" in squashed.describe()["resize"]
    with pytest.raises(ValueError, match=r"`resize` must be one of \('center_crop', 'squash'\)"):
        ImageFolderSet(tmp_path, resolution=8, resize="stretch")[0]
