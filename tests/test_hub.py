"""Tests of the Hub flags and folder uploads of `vit_vqgan_hf.hub`; nothing here reaches the network."""

import argparse

import huggingface_hub
import numpy as np
import PIL.Image
import pytest
import torch
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects, httpx
from transformers import AutoImageProcessor

from vit_vqgan_hf import VitVqganConfig, VitVqganModel, hub
from vit_vqgan_hf.training.data import ImageTransform


FILES = [
    "README.md",
    "config.json",
    "model.safetensors",
    "modeling_vit_vqgan.py",
    "discriminator/config.json",
    "checkpoints/checkpoint_3/optimizer.bin",
    "checkpoint-500/model.safetensors",
    "logs/train_tokenizer/events.out.tfevents.1",
    "runs/events",
    "imagenet_vitvq_base.ckpt",
    ".git/HEAD",
    "vqgan/.cache/huggingface/upload/config.json.lock",
    "samples/grid.png",
]


@pytest.fixture
def folder(tmp_path):
    for name in FILES:
        path = tmp_path / "run" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return tmp_path / "run"


def test_hub_flags():
    parser = hub.add_hub_args(argparse.ArgumentParser())
    defaults = parser.parse_args([])
    assert (defaults.push_to_hub, defaults.hub_model_id, defaults.hub_private, defaults.hub_token) == (
        False,
        None,
        False,
        None,
    )
    args = parser.parse_args(["--push_to_hub", "--hub_model_id", "me/model", "--hub_private", "--hub_token", "hf_x"])
    assert (args.push_to_hub, args.hub_model_id, args.hub_private, args.hub_token) == (True, "me/model", True, "hf_x")


def test_prepare_upload_folder_leaves_out_training_leftovers(folder):
    assert hub.prepare_upload_folder(folder) == [
        "README.md",
        "config.json",
        "discriminator/config.json",
        "model.safetensors",
        "modeling_vit_vqgan.py",
        "samples/grid.png",
    ]
    assert "samples/grid.png" not in hub.prepare_upload_folder(folder, ignore_patterns=["samples/"])
    with pytest.raises(ValueError, match="is not a folder"):
        hub.prepare_upload_folder(folder / "README.md")


class RecordingHfApi:
    """Stands in for `huggingface_hub.HfApi`, recording the calls instead of sending them."""

    calls = []
    role = "write"

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return type("RepoUrl", (), {"repo_id": repo_id if "/" in repo_id else f"someone/{repo_id}"})()

    def whoami(self):
        self.calls.append(("whoami", {}))
        return {"name": "someone", "auth": {"type": "access_token", "accessToken": {"role": self.role}}}

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def test_push_folder_to_hub_creates_the_repository_and_uploads_what_prepare_lists(folder, monkeypatch):
    RecordingHfApi.calls = []
    monkeypatch.setattr(hub, "HfApi", RecordingHfApi)
    assert hub.push_folder_to_hub(folder, private=True, token="hf_x", ignore_patterns=["samples/"]) == "someone/run"
    (_, init), (_, create), (_, _), (_, init_upload), (_, upload) = RecordingHfApi.calls
    assert init == init_upload == {"token": "hf_x"}
    assert create == {"repo_id": "run", "private": True, "exist_ok": True, "repo_type": "model"}
    assert upload["repo_id"] == "someone/run" and upload["folder_path"] == folder
    # `upload_folder` adds huggingface_hub's own patterns and filters the folder's files with `filter_repo_objects`.
    every_file = sorted(path.relative_to(folder).as_posix() for path in folder.glob("**/*") if path.is_file())
    uploaded = list(
        filter_repo_objects(every_file, ignore_patterns=upload["ignore_patterns"] + DEFAULT_IGNORE_PATTERNS)
    )
    assert uploaded == hub.prepare_upload_folder(folder, ignore_patterns=["samples/"])

    RecordingHfApi.calls = []
    hub.push_folder_to_hub(folder, "me/tokenizer")
    expected = {"repo_id": "me/tokenizer", "private": None, "exist_ok": True, "repo_type": "model"}
    assert RecordingHfApi.calls[1] == ("create_repo", expected)
    with pytest.raises(ValueError, match="is not a folder"):
        hub.push_folder_to_hub(folder / "missing", "me/tokenizer")


def test_load_pretrained_explains_a_missing_path(tmp_path, monkeypatch):
    from vit_vqgan_hf import VitVqganConfig, VitVqganModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(ValueError, match="no local file or folder.*Expected a tokenizer folder") as error:
        hub.load_pretrained(VitVqganModel.from_pretrained, str(missing), expected="a tokenizer folder")
    assert error.value.__cause__ is not None  # the Hub's own error stays chained
    with pytest.raises(ValueError, match="Expected a saved VitVqganModel folder or a Hub id"):
        hub.load_pretrained(VitVqganModel.from_pretrained, str(missing))  # the default names the loader's class
    # An existing folder that fails to load keeps its own error: the message would be wrong there.
    missing.mkdir()
    with pytest.raises(OSError):
        hub.load_pretrained(VitVqganModel.from_pretrained, str(missing))
    model = VitVqganModel(VitVqganConfig.from_preset("tiny"))
    model.save_pretrained(tmp_path / "tokenizer")
    loaded = hub.load_pretrained(VitVqganModel.from_pretrained, tmp_path / "tokenizer")
    assert loaded.config.codebook_size == model.config.codebook_size


def test_prepare_output_dir_creates_folders_and_names_a_file_in_the_way(tmp_path):
    assert hub.prepare_output_dir(tmp_path / "a" / "b").is_dir()
    assert hub.prepare_output_dir(tmp_path / "a") == tmp_path / "a"  # an existing folder is fine
    (tmp_path / "results.json").write_text("{}")
    for path in (tmp_path / "results.json", tmp_path / "results.json" / "run"):
        with pytest.raises(ValueError, match=r"--samples_dir .* cannot be a folder: '.*results\.json' is a file"):
            hub.prepare_output_dir(path, flag="--samples_dir")


def smooth_image(width: int, height: int, mode: str = "RGB") -> PIL.Image.Image:
    """Upsampled noise: detail at every position, no edges sharper than the resampling filters."""
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return PIL.Image.fromarray(pixels).resize((width, height), PIL.Image.Resampling.BICUBIC).convert(mode)


def test_the_saved_image_processor_prepares_images_as_the_scripts_evaluate_them(tmp_path):
    config = VitVqganConfig.from_preset("tiny")
    hub.create_image_processor(config).save_pretrained(tmp_path)
    # A stock transformers class: the folder needs neither this package nor remote code to prepare images.
    image_processor = AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    transform = ImageTransform(config.image_size)

    def both(image):
        processed = image_processor(image, return_tensors="pt").pixel_values
        assert processed.shape == (1, 3, config.image_size, config.image_size)
        return processed[0], transform(image, generator=None)

    # Equal pixels, down- and upscaled, wide, tall, odd crop margins, greyscale.
    for width, height, mode in [(50, 50, "RGB"), (80, 50, "RGB"), (41, 97, "RGB"), (20, 27, "RGB"), (50, 61, "L")]:
        processed, expected = both(smooth_image(width, height, mode))
        assert torch.equal(processed, expected), (width, height, mode)

    pixel_values = image_processor([smooth_image(40, 70), smooth_image(90, 60)], return_tensors="pt").pixel_values
    assert pixel_values.min() >= -1 and pixel_values.max() <= 1
    assert VitVqganModel(config).encode(pixel_values).image_tokens.shape == (2, 8, 8)


def test_create_hub_repo_says_what_to_do_when_the_hub_cannot_be_reached(tmp_path, monkeypatch):
    # Offline mode refuses every request before it is sent, as an unreachable Hub or a bad token would fail it.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match=r"repository 'run' could not be created.*OfflineModeIsEnabled.*--hub_token"):
        hub.create_hub_repo(tmp_path / "run")
    with pytest.raises(ValueError, match=r"dataset repository 'me/tokens'"):
        hub.create_hub_repo(tmp_path / "run", "me/tokens", repo_type="dataset")


def test_create_hub_repo_refuses_a_read_only_token_and_explains_network_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "HfApi", RecordingHfApi)
    RecordingHfApi.calls = []
    assert hub.create_hub_repo(tmp_path / "run", token="hf_x") == "someone/run"
    monkeypatch.setattr(RecordingHfApi, "role", "read")
    with pytest.raises(ValueError, match="token is read-only, so nothing can be uploaded to 'someone/run'"):
        hub.create_hub_repo(tmp_path / "run")

    def unreachable(self, repo_id, **kwargs):
        raise httpx.ConnectError("[Errno 111] Connection refused")

    # The HTTP client's transport errors derive neither from OSError nor from ValueError.
    monkeypatch.setattr(RecordingHfApi, "create_repo", unreachable)
    with pytest.raises(ValueError, match="'me/run' could not be created or found \\(ConnectError: .*refused"):
        hub.create_hub_repo(tmp_path / "run", "me/run")
