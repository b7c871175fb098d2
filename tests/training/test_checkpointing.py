"""The checkpoint folder rules of `vit_vqgan_hf.training.checkpointing` (saving itself runs in the example tests)."""

import json

import pytest

from vit_vqgan_hf.training.checkpointing import (
    CHECKPOINT_COMPLETE_FILE,
    is_complete,
    list_checkpoints,
    resolve_checkpoint,
)


def make_checkpoints(output_dir, complete_steps, partial_steps=()):
    for step in (*complete_steps, *partial_steps):
        folder = output_dir / "checkpoints" / f"checkpoint_{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"")
        if step in complete_steps:
            (folder / CHECKPOINT_COMPLETE_FILE).write_text(json.dumps({"global_step": step}))
    (output_dir / "checkpoints" / "checkpoint_notes").mkdir()  # not a checkpoint name: ignored


def test_latest_is_the_newest_complete_checkpoint(tmp_path):
    make_checkpoints(tmp_path, complete_steps=(20, 100), partial_steps=(300,))
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint_20", "checkpoint_100"]
    assert len(list_checkpoints(tmp_path, complete_only=False)) == 3
    assert not is_complete(tmp_path / "checkpoints" / "checkpoint_300")
    # Steps sort as numbers, not as text ("100" < "20"), and the partial save of step 300 is skipped.
    assert resolve_checkpoint("latest", tmp_path) == tmp_path / "checkpoints" / "checkpoint_100"
    assert resolve_checkpoint("latest", tmp_path / "empty") is None  # nothing yet: a fresh start
    assert resolve_checkpoint(None, tmp_path / "empty") is None


def test_an_explicit_checkpoint_must_exist_and_be_complete(tmp_path):
    make_checkpoints(tmp_path, complete_steps=(2,), partial_steps=(4,))
    assert resolve_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_2"), tmp_path).name == "checkpoint_2"
    with pytest.raises(ValueError, match="is not a folder; pass `latest` or one of .*checkpoint_2"):
        resolve_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_3"), tmp_path)
    with pytest.raises(ValueError, match="checkpoint_4' is incomplete: it has no checkpoint_complete.json"):
        resolve_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_4"), tmp_path)


def test_a_new_run_never_mixes_with_the_checkpoints_of_another(tmp_path):
    make_checkpoints(tmp_path, complete_steps=(2, 4, 6), partial_steps=(8,))
    # A fresh start over an earlier run's checkpoints: `latest` would later resume the earlier run.
    with pytest.raises(
        ValueError, match="earlier run .checkpoint_6 is the newest.: continue it with `resume_from_checkpoint=latest`"
    ):
        resolve_checkpoint(None, tmp_path)
    # Resuming an older checkpoint of the same folder would leave newer ones of the abandoned continuation behind.
    with pytest.raises(ValueError, match="holds checkpoints newer than checkpoint_2 .checkpoint_4, checkpoint_6.: "):
        resolve_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_2"), tmp_path)
    assert resolve_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_6"), tmp_path).name == "checkpoint_6"
    # The same checkpoint resumed into another folder is fine: the new run's folder has no checkpoints of its own.
    other = tmp_path / "other"
    assert resolve_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_2"), other).name == "checkpoint_2"
    # Only partial saves left: nothing to resume or to mix with.
    only_partial = tmp_path / "partial"
    make_checkpoints(only_partial, complete_steps=(), partial_steps=(5,))
    assert resolve_checkpoint(None, only_partial) is None
