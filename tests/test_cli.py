"""`vit_vqgan_hf.cli`: the command-line scripts' shared flags, loading with clear errors, and the checks that run
before any compute; nothing here reaches the network."""

import argparse

import huggingface_hub
import pytest
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from tests.testing_utils import tiny_tokenizer
from vit_vqgan_hf import VitVqganModel, cli
from vit_vqgan_hf.hub import uploads


def test_hub_flags():
    parser = cli.add_hub_args(argparse.ArgumentParser())
    defaults = parser.parse_args([])
    assert (defaults.push_to_hub, defaults.hub_model_id, defaults.hub_private, defaults.hub_token) == (
        False,
        None,
        False,
        None,
    )
    args = parser.parse_args(["--push_to_hub", "--hub_model_id", "me/model", "--hub_private", "--hub_token", "hf_x"])
    assert (args.push_to_hub, args.hub_model_id, args.hub_private, args.hub_token) == (True, "me/model", True, "hf_x")


def test_load_pretrained_explains_a_missing_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(ValueError, match="no local file or folder.*Expected a tokenizer folder") as error:
        cli.load_pretrained(VitVqganModel.from_pretrained, str(missing), expected="a tokenizer folder")
    assert error.value.__cause__ is not None  # the Hub's own error stays chained
    with pytest.raises(ValueError, match="Expected a saved VitVqganModel folder or a Hub id"):
        cli.load_pretrained(VitVqganModel.from_pretrained, str(missing))  # the default names the loader's class
    # An existing folder that fails to load keeps its own error: the message would be wrong there.
    missing.mkdir()
    with pytest.raises(OSError):
        cli.load_pretrained(VitVqganModel.from_pretrained, str(missing))
    model = tiny_tokenizer()
    model.save_pretrained(tmp_path / "tokenizer")
    loaded = cli.load_pretrained(VitVqganModel.from_pretrained, tmp_path / "tokenizer")
    assert loaded.config.codebook_size == model.config.codebook_size


def test_prepare_output_dir_creates_folders_and_names_a_file_in_the_way(tmp_path):
    assert cli.prepare_output_dir(tmp_path / "a" / "b").is_dir()
    assert cli.prepare_output_dir(tmp_path / "a") == tmp_path / "a"  # an existing folder is fine
    (tmp_path / "results.json").write_text("{}")
    for path in (tmp_path / "results.json", tmp_path / "results.json" / "run"):
        with pytest.raises(ValueError, match=r"--samples_dir .* cannot be a folder: '.*results\.json' is a file"):
            cli.prepare_output_dir(path, flag="--samples_dir")


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
        cli.check_hub_repo(hub_args(), accelerator)
    # Without --push_to_hub the Hub is not contacted at all.
    args = hub_args(push_to_hub=False)
    cli.check_hub_repo(args, accelerator)
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
    monkeypatch.setattr(uploads, "HfApi", HubApi)
    args = hub_args(hub_model_id=None)
    cli.check_hub_repo(args, accelerator)
    # The model card and the final push use the full id; by default the name of --output_dir.
    assert args.hub_model_id == "someone/vim"


def test_library_errors_name_the_flags_of_the_script():
    args = argparse.Namespace(resume_from_checkpoint=None, output_dir="out", skip_unreadable_images=False)
    with pytest.raises(ValueError) as raised:
        with cli.in_flag_terms(args, {"strict=False": "--ignore_tokenizer_mismatch"}):
            raise ValueError(
                "Continue it with `resume_from_checkpoint=latest`, or choose a new `output_dir`; `lpips` stays; "
                "or check with `strict=False`; or skip them (`skip_unreadable_images=True`)."
            )
    assert str(raised.value) == (
        "Continue it with --resume_from_checkpoint latest, or choose a new --output_dir; `lpips` stays; "
        "or check with --ignore_tokenizer_mismatch; or skip them (--skip_unreadable_images)."
    )
