"""`vit_vqgan_hf.training.arguments`: checks of the training scripts' setup that run before any compute."""

import argparse

import huggingface_hub
import pytest
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from vit_vqgan_hf import hub
from vit_vqgan_hf.training.arguments import check_hub_repo


@pytest.fixture
def accelerator():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


def hub_args(**overrides) -> argparse.Namespace:
    flags = {"push_to_hub": True, "hub_model_id": "me/vim", "hub_private": False, "hub_token": None}
    return argparse.Namespace(output_dir="out/vim", **{**flags, **overrides})


def test_a_push_that_cannot_reach_the_hub_fails_before_training(accelerator, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match=r"model repository 'me/vim' could not be created.*OfflineModeIsEnabled"):
        check_hub_repo(hub_args(), accelerator)
    # Without --push_to_hub the Hub is not contacted at all.
    args = hub_args(push_to_hub=False)
    check_hub_repo(args, accelerator)
    assert args.hub_model_id == "me/vim"


class HubApi:
    """Answers like the Hub for a write token: the repository exists (or is created) under the token's account."""

    def __init__(self, token=None):
        pass

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id if "/" in repo_id else f"someone/{repo_id}"})()

    def whoami(self):
        return {"auth": {"accessToken": {"role": "write"}}}


def test_the_repository_id_is_resolved_before_training(accelerator, monkeypatch):
    monkeypatch.setattr(hub, "HfApi", HubApi)
    args = hub_args(hub_model_id=None)
    check_hub_repo(args, accelerator)
    # The model card and the final push use the full id; by default the name of --output_dir.
    assert args.hub_model_id == "someone/vim"
