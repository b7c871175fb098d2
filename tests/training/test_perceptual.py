import importlib.util

import huggingface_hub
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from vit_vqgan_hf.training import LpipsVgg16, load_lpips


# Thin VGG16 widths so that the random test networks stay tiny.
CHANNELS = (4, 8, 8, 12, 12)
# Convs of each block, by their index in torchvision's `vgg16().features`.
BLOCK_CONV_INDICES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))


def random_images(seed: int, batch_size: int = 2) -> torch.Tensor:
    return torch.rand(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def torchvision_style_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the names of torchvision's `vgg16().state_dict()`, classifier included."""
    generator = torch.Generator().manual_seed(seed)
    state_dict, in_channels = {}, 3
    for width, conv_indices in zip(CHANNELS, BLOCK_CONV_INDICES):
        for index in conv_indices:
            state_dict[f"features.{index}.weight"] = torch.randn(width, in_channels, 3, 3, generator=generator) * 0.3
            state_dict[f"features.{index}.bias"] = torch.randn(width, generator=generator) * 0.1
            in_channels = width
    state_dict["classifier.0.weight"] = torch.randn(7, 3)
    state_dict["classifier.0.bias"] = torch.randn(7)
    return state_dict


def lpips_heads_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    """Random non-negative heads under the names of the lpips package's `weights/v0.1/vgg.pth`."""
    generator = torch.Generator().manual_seed(seed)
    return {
        f"lin{index}.model.1.weight": torch.rand(1, width, 1, 1, generator=generator)
        for index, width in enumerate(CHANNELS)
    }


def reference_lpips(trunk, heads, input, target):
    """LPIPS written out from the paper and the lpips package's constants, on the raw state dicts."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def relu_features(images):
        hidden_states, features = (images - shift) / scale, []
        for block, conv_indices in enumerate(BLOCK_CONV_INDICES):
            if block > 0:
                hidden_states = F.max_pool2d(hidden_states, 2)
            for index in conv_indices:
                weight, bias = trunk[f"features.{index}.weight"], trunk[f"features.{index}.bias"]
                hidden_states = F.relu(F.conv2d(hidden_states, weight, bias, padding=1))
            features.append(hidden_states / (hidden_states.norm(dim=1, keepdim=True) + 1e-10))
        return features

    distance = 0
    for index, (input_features, target_features) in enumerate(zip(relu_features(input), relu_features(target))):
        weighted = F.conv2d((input_features - target_features) ** 2, heads[f"lin{index}.model.1.weight"])
        distance = distance + weighted.mean(dim=(1, 2, 3))
    return distance


def write_torchvision_and_lpips_files(folder):
    folder.mkdir()
    torch.save(torchvision_style_state_dict(), folder / "vgg16.pth")
    torch.save(lpips_heads_state_dict(), folder / "lpips_vgg.pth")
    return folder


def test_distance_is_zero_for_identical_images_symmetric_and_positive():
    torch.manual_seed(0)
    lpips = LpipsVgg16(channels=CHANNELS).requires_grad_(False)
    images, other_images = random_images(0), random_images(1)
    torch.testing.assert_close(lpips(images, images), torch.zeros(2))
    distance = lpips(images, other_images)
    assert distance.shape == (2,)
    assert (distance > 0).all()
    torch.testing.assert_close(distance, lpips(other_images, images))


def test_loader_accepts_torchvision_and_lpips_names_and_matches_reference(tmp_path):
    folder = write_torchvision_and_lpips_files(tmp_path / "lpips_vgg16")
    lpips = load_lpips(folder)
    assert not any(parameter.requires_grad for parameter in lpips.parameters())

    input, target = random_images(0).requires_grad_(True), random_images(1)
    distance = lpips(input, target)
    expected = reference_lpips(torchvision_style_state_dict(), lpips_heads_state_dict(), input.detach(), target)
    torch.testing.assert_close(distance, expected, rtol=1e-4, atol=1e-6)
    distance.sum().backward()  # frozen weights, but the images still get gradients
    assert input.grad is not None and input.grad.abs().sum() > 0


def test_loader_reads_a_merged_safetensors_file_and_lpips_full_state_dict(tmp_path):
    reference = load_lpips(write_torchvision_and_lpips_files(tmp_path / "parts"))
    merged = tmp_path / "lpips_vgg16.safetensors"
    save_file(reference.state_dict(), merged)
    images, other_images = random_images(0), random_images(1)
    torch.testing.assert_close(load_lpips(merged)(images, other_images), reference(images, other_images))

    # The layout of `lpips.LPIPS(net="vgg").state_dict()`: trunk slices keep torchvision's indices.
    slice_of_index = {index: block + 1 for block, indices in enumerate(BLOCK_CONV_INDICES) for index in indices}
    lpips_state_dict = {
        name.replace("features.", f"net.slice{slice_of_index[int(name.split('.')[1])]}."): tensor
        for name, tensor in torchvision_style_state_dict().items()
        if name.startswith("features.")
    }
    lpips_state_dict.update(lpips_heads_state_dict())
    lpips_state_dict["scaling_layer.shift"] = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    torch.save(lpips_state_dict, tmp_path / "lpips_full.pth")
    loaded = load_lpips([tmp_path / "lpips_full.pth"])
    torch.testing.assert_close(loaded(images, other_images), reference(images, other_images))


def test_loader_rejects_unknown_and_missing_keys(tmp_path):
    folder = write_torchvision_and_lpips_files(tmp_path / "lpips_vgg16")
    torch.save({"fc.weight": torch.zeros(1)}, folder / "extra.pth")
    with pytest.raises(ValueError, match=r"Unexpected: \['fc.weight'\]"):
        load_lpips(folder)

    heads = lpips_heads_state_dict()
    del heads["lin4.model.1.weight"]
    torch.save(heads, folder / "lpips_vgg.pth")
    (folder / "extra.pth").unlink()
    with pytest.raises(ValueError, match=r"Missing: \['heads.4.weight'\]"):
        load_lpips(folder)


def test_loader_reports_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="VGG16 trunk"):
        load_lpips(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No weight files"):
        load_lpips(tmp_path / "empty")


def test_loader_reports_an_unreachable_hub_repository(monkeypatch):
    # Offline mode refuses the download before anything is sent, as an unreachable Hub would fail it.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="not a local path, and downloading it from the Hugging Face Hub failed"):
        load_lpips("someone/lpips-vgg16")


def timm_vgg16_state_dict() -> dict[str, torch.Tensor]:
    """The key names of timm's `vgg16.tv_in1k` `model.safetensors`: torchvision's `features.*`, then timm's
    classifier (`pre_logits.fc1`, `pre_logits.fc2` as convs, `head.fc`)."""
    state_dict = {key: value for key, value in torchvision_style_state_dict().items() if key.startswith("features.")}
    state_dict |= {
        "pre_logits.fc1.weight": torch.randn(6, CHANNELS[-1], 7, 7),
        "pre_logits.fc1.bias": torch.randn(6),
        "pre_logits.fc2.weight": torch.randn(6, 6, 1, 1),
        "pre_logits.fc2.bias": torch.randn(6),
        "head.fc.weight": torch.randn(10, 6),
        "head.fc.bias": torch.randn(10),
    }
    return state_dict


@pytest.fixture
def lpips_vgg16_sources(tmp_path, monkeypatch):
    """The two public sources of `lpips-vgg16`, built locally in their exact layouts: an installed `lpips` package
    (its `weights/v0.1/vgg.pth`, never imported) and a huggingface_hub cache holding `timm/vgg16.tv_in1k`."""
    package = tmp_path / "site-packages" / "lpips"
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('lpips imports torchvision; it must not be imported')\n")
    torch.save(lpips_heads_state_dict(), package / "weights" / "v0.1" / "vgg.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site-packages"))
    commit = "1" * 40
    snapshot = tmp_path / "hub" / "models--timm--vgg16.tv_in1k" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(timm_vgg16_state_dict(), snapshot / "model.safetensors")
    (tmp_path / "hub" / "models--timm--vgg16.tv_in1k" / "refs").mkdir()
    (tmp_path / "hub" / "models--timm--vgg16.tv_in1k" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return snapshot / "model.safetensors", package / "weights" / "v0.1" / "vgg.pth"


def test_the_named_lpips_vgg16_assembles_its_public_sources(lpips_vgg16_sources):
    trunk_file, heads_file = lpips_vgg16_sources
    lpips = load_lpips("lpips-vgg16")
    images, other_images = random_images(0), random_images(1)
    expected = reference_lpips(timm_vgg16_state_dict(), lpips_heads_state_dict(), images, other_images)
    torch.testing.assert_close(lpips(images, other_images), expected)
    assert lpips.source == "lpips-vgg16"
    assert [entry["path"] for entry in lpips.weights_files] == [str(trunk_file), str(heads_file)]
    assert "snapshots/" + "1" * 40 in lpips.weights_files[0]["path"]  # the trunk's commit is recorded


def test_the_named_lpips_vgg16_says_what_is_missing(lpips_vgg16_sources):
    trunk_file, _ = lpips_vgg16_sources
    trunk_file.unlink()  # not in the cache, and offline
    with pytest.raises(OSError, match=r"timm/vgg16.tv_in1k \(model.safetensors\).*offline mode is on"):
        load_lpips("lpips-vgg16")


@pytest.mark.skipif(importlib.util.find_spec("lpips") is not None, reason="the lpips package is installed here")
def test_the_named_lpips_vgg16_without_the_lpips_package():
    with pytest.raises(
        FileNotFoundError, match=r"`lpips` package, which is not installed.*pip install lpips. with pip's no-deps"
    ):
        load_lpips("lpips-vgg16")
