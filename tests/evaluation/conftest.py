"""Shared fixtures of the evaluation tests: random FID Inception weights, under our names and pytorch-fid's."""

import pytest
import torch

from vit_vqgan_hf.evaluation import FidInceptionV3

from .helpers import pytorch_fid_name


@pytest.fixture(scope="session")
def random_inception_state_dict():
    """Random FID Inception weights under our names, with batch-norm statistics that keep activations finite."""
    torch.manual_seed(0)
    state_dict = FidInceptionV3().state_dict()
    generator = torch.Generator().manual_seed(1)
    for key, tensor in state_dict.items():
        if key.endswith("running_var"):
            state_dict[key] = 0.5 + torch.rand(tensor.shape, generator=generator)
        elif key.endswith(("running_mean", "bn.bias")):
            state_dict[key] = 0.1 * torch.randn(tensor.shape, generator=generator)
        elif key == "fc.weight":
            state_dict[key] = 0.05 * torch.randn(tensor.shape, generator=generator)
    return state_dict


@pytest.fixture(scope="session")
def pytorch_fid_weights_file(tmp_path_factory, random_inception_state_dict):
    """The random weights saved like pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`."""
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save({pytorch_fid_name(key): tensor for key, tensor in random_inception_state_dict.items()}, path)
    return path
