"""Tests of examples/pretokenize.py on a generated image folder with a tiny tokenizer, offline, on CPU."""

import json
import os
import subprocess
import sys

import pytest
import torch
from datasets import ClassLabel, load_from_disk

from vit_vqgan_hf import VitVqganModel
from vit_vqgan_hf.training.data import ImageTransform, augmentation_generator, load_image_dataset
from vit_vqgan_hf.training.tokens import TOKENS_METADATA_FILE, check_tokenizer_fingerprint, tokenizer_fingerprint

from .conftest import EXAMPLES_DIR, VIM_CLASSES, load_example


def test_tokens_labels_and_metadata(vim_data):
    tokens = load_from_disk(str(vim_data.tokens))["train"]
    # 12 readable images x (center crop + 2 augmented copies); the corrupt file is dropped.
    assert len(tokens) == 36
    assert tokens.features["label"] == ClassLabel(names=list(VIM_CLASSES))
    assert tokens.features["image_tokens"].feature.dtype == "int16"
    rows = tokens.with_format("torch")[:]
    assert rows["image_tokens"].shape == (36, 16)
    assert rows["augmentation"].tolist() == [0, 1, 2] * 12
    assert sorted(rows["label"].tolist()) == sorted([0, 1, 2] * 12)

    metadata = json.loads((vim_data.tokens / TOKENS_METADATA_FILE).read_text())
    tokenizer = VitVqganModel.from_pretrained(vim_data.tokenizer).eval()
    fingerprint = {**tokenizer_fingerprint(tokenizer), "name_or_path": str(vim_data.tokenizer)}
    assert metadata["tokenizer"] == fingerprint
    assert metadata["splits"]["train"] == {"rows": 36, "skipped_images": 1}
    assert json.loads(tokens.info.description) == metadata


def test_center_crop_tokens_match_tokenizer_encode(vim_data):
    tokens = load_from_disk(str(vim_data.tokens))["train"].with_format("torch")
    centered = tokens.filter(lambda row: row["augmentation"] == 0)[:]
    images = load_image_dataset(train_data_dir=str(vim_data.image_folder), cache_dir=str(vim_data.cache_dir))
    transform = ImageTransform(16)
    pixel_values, labels = [], []
    for example in images:
        try:
            pixel_values.append(transform(example["image"], None))
        except Exception:  # the corrupt file
            continue
        labels.append(example["label"])
    tokenizer = VitVqganModel.from_pretrained(vim_data.tokenizer).eval()
    with torch.no_grad():
        expected = tokenizer.encode(torch.stack(pixel_values)).image_tokens.flatten(1)
    assert torch.equal(centered["image_tokens"].long(), expected)
    assert centered["label"].tolist() == labels


def test_augmented_copies_do_not_depend_on_batching(vim_data, tmp_path):
    pretokenize = load_example("pretokenize.py")
    arguments = ["--tokenizer", str(vim_data.tokenizer), "--train_data_dir", str(vim_data.image_folder)]
    # A fresh `datasets` cache, so that the map really runs again (with other batches) instead of loading the cache.
    arguments += ["--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "tokens"), "--device", "cpu"]
    rebatched = pretokenize.main(
        pretokenize.parse_args([*arguments, "--num_augmented_copies", "2", "--batch_size", "3"])
    )
    original = load_from_disk(str(vim_data.tokens))["train"]
    assert rebatched["train"]["image_tokens"] == original["image_tokens"]


def test_augmented_copies_without_flips(vim_data, tmp_path):
    pretokenize = load_example("pretokenize.py")
    arguments = ["--tokenizer", str(vim_data.tokenizer), "--train_data_dir", str(vim_data.image_folder)]
    arguments += ["--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "tokens"), "--device", "cpu"]
    arguments += ["--num_augmented_copies", "2", "--random_crop_scale", "0.8", "1.0", "--no_flip", "--seed", "3"]
    tokens = pretokenize.main(pretokenize.parse_args(arguments))["train"].with_format("torch")
    # Copy k of image i is the random resized crop drawn from the generator of (seed, k, i), never mirrored.
    images = load_image_dataset(train_data_dir=str(vim_data.image_folder), cache_dir=str(tmp_path / "cache"))
    crop = ImageTransform(16, random_crop=True, crop_scale=(0.8, 1.0))
    for index, example in enumerate(images):  # the first readable image (the corrupt file is dropped)
        try:
            copies = torch.stack([crop(example["image"], augmentation_generator(3, copy, index)) for copy in (1, 2)])
            break
        except Exception:
            continue
    tokenizer = VitVqganModel.from_pretrained(vim_data.tokenizer).eval()
    with torch.no_grad():
        expected = tokenizer.encode(copies).image_tokens.flatten(1)
    assert torch.equal(tokens[1:3]["image_tokens"].long(), expected)
    metadata = json.loads((tmp_path / "tokens" / TOKENS_METADATA_FILE).read_text())
    assert metadata["preprocessing"]["augmentation"] == "random resized crop (copies 1..N)"


def test_tokens_of_another_tokenizer_are_refused(vim_data):
    metadata = json.loads((vim_data.tokens / TOKENS_METADATA_FILE).read_text())["tokenizer"]
    tokenizer = VitVqganModel.from_pretrained(vim_data.tokenizer)
    assert check_tokenizer_fingerprint(metadata, tokenizer) == []

    torch.manual_seed(1)
    retrained = VitVqganModel(tokenizer.config)
    with pytest.raises(ValueError, match="weights_sha256 differs"):
        check_tokenizer_fingerprint(metadata, retrained)
    assert len(check_tokenizer_fingerprint(metadata, retrained, strict=False)) == 1

    other_grid = VitVqganModel(tokenizer.config.__class__(**{**tokenizer.config.to_dict(), "patch_size": 8}))
    with pytest.raises(ValueError, match="token_grid_size=4"):
        check_tokenizer_fingerprint(metadata, other_grid, strict=False)


def test_push_to_hub_that_cannot_reach_the_hub_fails_before_encoding(vim_data, tmp_path):
    # Offline, creating the dataset repository fails, as an unreachable Hub or a read-only token would: before the
    # tokenizer is loaded or an image is encoded, and not after hours of encoding.
    output_dir = tmp_path / "tokens"
    arguments = ["--tokenizer", vim_data.tokenizer, "--train_data_dir", vim_data.image_folder, "--device", "cpu"]
    arguments += ["--cache_dir", tmp_path / "cache", "--output_dir", output_dir, "--batch_size", 5]
    arguments += ["--push_to_hub", "--hub_model_id", "someone/digit-tokens", "--hub_private"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(vim_data.hf_home)}
    command = [sys.executable, str(EXAMPLES_DIR / "pretokenize.py"), *map(str, arguments)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    assert result.returncode != 0
    assert "dataset repository 'someone/digit-tokens' could not be created" in result.stderr
    assert "OfflineModeIsEnabled" in result.stderr and "--hub_token" in result.stderr
    assert not (output_dir / TOKENS_METADATA_FILE).exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--train_data_dir", "x"], "--output_dir, --push_to_hub, or both"),
        (["--train_data_dir", "x", "--push_to_hub"], "--push_to_hub needs --hub_model_id"),
        (["--train_data_dir", "x", "--dataset_name", "y", "--output_dir", "o"], "exactly one of"),
    ],
)
def test_invalid_arguments_are_reported(arguments, message, capsys):
    pretokenize = load_example("pretokenize.py")
    with pytest.raises(SystemExit):
        pretokenize.parse_args(["--tokenizer", "t", *arguments])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (["--max_samples", "0"], "--max_samples"),
        (["--max_samples", "-3"], "--max_samples"),
        (["--resolution", "0"], "--resolution"),
        (["--num_proc", "0"], "--num_proc"),
        (["--device", "gpu"], "--device 'gpu' is not a torch device"),
    ],
)
def test_invalid_values_are_refused_before_loading(arguments, flag):
    pretokenize = load_example("pretokenize.py")
    with pytest.raises(ValueError, match=flag):
        pretokenize.parse_args(["--tokenizer", "t", "--train_data_dir", "x", "--output_dir", "o", *arguments])


def test_unavailable_devices_are_refused_before_loading(monkeypatch):
    pretokenize = load_example("pretokenize.py")
    arguments = ["--tokenizer", "t", "--train_data_dir", "x", "--output_dir", "o", "--device"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device 'cuda': CUDA is not available on this machine; pass --device cpu"):
        pretokenize.parse_args([*arguments, "cuda"])
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device 'mps': MPS is not available"):
        pretokenize.parse_args([*arguments, "mps"])


@pytest.mark.parametrize("output_dir", ["file", "file/tokens"])
def test_output_dir_that_cannot_be_a_folder_fails_before_loading(output_dir, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    pretokenize = load_example("pretokenize.py")
    # Neither the tokenizer nor the images exist: the error must come from --output_dir, before they are loaded.
    arguments = ["--tokenizer", str(tmp_path / "missing"), "--train_data_dir", str(tmp_path / "missing_images")]
    args = pretokenize.parse_args([*arguments, "--output_dir", str(tmp_path / output_dir), "--device", "cpu"])
    with pytest.raises(ValueError, match="--output_dir .* is a file"):
        pretokenize.main(args)
