import huggingface_hub
import pytest
import torch
from safetensors.torch import save_file

from vit_vqgan_hf.evaluation import FidInceptionV3, load_fid_inception
from vit_vqgan_hf.evaluation import inception as inception_module
from vit_vqgan_hf.evaluation.inception import state_dict_sha256

from .helpers import pytorch_fid_name


# pytorch-fid's `fid_inception_v3()`: torchvision's Inception3 without the auxiliary head, with a 1008-way classifier.
NUM_PARAMETERS = 23_850_960


def test_architecture_on_the_meta_device():
    with torch.device("meta"):
        model = FidInceptionV3()
        features = model.forward_features(torch.zeros(2, 3, 299, 299))
    assert features.shape == (2, 2048)
    assert sum(parameter.numel() for parameter in model.parameters()) == NUM_PARAMETERS
    names = {pytorch_fid_name(key) for key in model.state_dict()}
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Mixed_5b.branch_pool.bn.running_var",
        "Mixed_7c.branch3x3dbl_3b.conv.weight",
    ):
        assert key in names
    assert model.state_dict()["fc.weight"].shape == (1008, 2048)


def test_loads_pytorch_fid_names_and_matches_in_memory_weights(pytorch_fid_weights_file, random_inception_state_dict):
    model = load_fid_inception(pytorch_fid_weights_file)
    reference = FidInceptionV3()
    reference.load_state_dict(random_inception_state_dict)
    # The checksum ignores the file format and the names it was stored under.
    assert model.weights_sha256 == state_dict_sha256(reference)
    assert model.weights_files[0]["name"] == pytorch_fid_weights_file.name and not model.is_pytorch_fid_release
    images = torch.randint(0, 256, (1, 3, 24, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features, logits = model.features_and_logits(images)
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    assert torch.isfinite(features).all() and features.abs().sum() > 0
    torch.testing.assert_close(logits, features @ random_inception_state_dict["fc.weight"].t())
    # Float input in [0, 1] is the same image; [-1, 1] input is refused; training mode is ignored.
    model.train()
    assert not model.training and not model.mixed_5b.branch_pool.bn.training
    torch.testing.assert_close(model(images.float() / 255), features)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        model(images.float() / 127.5 - 1)


def test_wrapper_layout_without_classifier_and_torchmetrics(tmp_path, random_inception_state_dict):
    from torchmetrics.image.fid import FrechetInceptionDistance

    # pytorch-fid's `InceptionV3` wrapper: blocks.{0..3}.{i}, no classifier.
    blocks = inception_module._WRAPPER_BLOCKS
    renamed = {}
    for key, tensor in random_inception_state_dict.items():
        if key.startswith("fc."):
            continue
        top, rest = key.split(".", 1)
        block = next(index for index, names in enumerate(blocks) if top in names)
        renamed[f"blocks.{block}.{blocks[block].index(top)}.{rest}"] = tensor
    save_file({key: tensor.contiguous() for key, tensor in renamed.items()}, tmp_path / "wrapper.safetensors")
    model = load_fid_inception(tmp_path)
    assert not model.has_logits
    generator = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8, generator=generator)
    fake = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8, generator=generator)
    real_features, logits = model.features_and_logits(real)
    assert logits is None and real_features.shape == (2, 2048)

    # Usable as torchmetrics' `feature=` network: it declares `num_features`, so torchmetrics runs no probe image.
    torchmetrics_fid = FrechetInceptionDistance(feature=model)
    torchmetrics_fid.update(real, real=True)
    torchmetrics_fid.update(fake, real=False)
    torch.testing.assert_close(torchmetrics_fid.real_features_sum, real_features.double().sum(0))
    assert torch.isfinite(torchmetrics_fid.compute())


def test_rejects_missing_and_foreign_weights(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_fid_inception(tmp_path / "missing.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No weight files"):
        load_fid_inception(tmp_path / "empty")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="downloading it from the Hugging Face Hub failed.*FID InceptionV3 weights"):
        load_fid_inception("someone/fid-inception")

    with torch.device("meta"):
        shapes = {key: tensor.shape for key, tensor in FidInceptionV3().state_dict().items()}
    # torchvision's ImageNet Inception has a 1000-way classifier (and other weights): refused by shape.
    torchvision_like = {pytorch_fid_name(key): torch.zeros(shape) for key, shape in shapes.items()}
    torchvision_like["fc.weight"], torchvision_like["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    torch.save(torchvision_like, tmp_path / "torchvision.pth")
    with pytest.raises(ValueError, match="wrong shapes.*fc.weight"):
        load_fid_inception(tmp_path / "torchvision.pth")
    del torchvision_like["Mixed_7c.branch_pool.conv.weight"]
    torchvision_like["AuxLogits.fc.weight"] = torch.zeros(1)  # ignored
    torchvision_like["extra.weight"] = torch.zeros(1)
    torch.save(torchvision_like, tmp_path / "incomplete.pth")
    with pytest.raises(
        ValueError, match=r"Missing: \['mixed_7c.branch_pool.conv.weight'\].*Unexpected: \['extra.weight'\]"
    ):
        load_fid_inception(tmp_path / "incomplete.pth")
