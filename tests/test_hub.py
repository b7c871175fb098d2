"""Tests of the Hub repositories and folder uploads of `vit_vqgan_hf.hub`; nothing here reaches the network."""

import huggingface_hub
import pytest
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects, httpx

from vit_vqgan_hf import hub
from vit_vqgan_hf.hub import uploads


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
    monkeypatch.setattr(uploads, "HfApi", RecordingHfApi)
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


def test_create_hub_repo_says_what_to_do_when_the_hub_cannot_be_reached(tmp_path, monkeypatch):
    # Offline mode refuses every request before it is sent, as an unreachable Hub or a bad token would fail it.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match=r"repository 'run' could not be created.*OfflineModeIsEnabled.*--hub_token"):
        hub.create_hub_repo(tmp_path / "run")
    with pytest.raises(ValueError, match=r"dataset repository 'me/tokens'"):
        hub.create_hub_repo(tmp_path / "run", "me/tokens", repo_type="dataset")


def test_create_hub_repo_refuses_a_read_only_token_and_explains_network_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "HfApi", RecordingHfApi)
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
