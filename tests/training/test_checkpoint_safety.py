"""Fault injection on checkpoints (`vit_vqgan_hf.training.checkpointing` and `.checkpoint_files`): planted pickle
payloads are refused before they can run, the states of this package are JSON and safetensors, rotation never deletes
the last complete checkpoint, and a full disk says where and how much space is left. The SIGKILL trials run the
training scripts: tests/examples/test_checkpoint_kills.py."""

import json
import logging
import pickle
import re
from pathlib import Path

import pytest
import torch
from diffusers.training_utils import EMAModel

from tests.conftest import fill_disk
from tests.training.test_loop import LinearLoop, build_linear_loop, training_args
from vit_vqgan_hf.training.checkpoint_files import UnsafeCheckpointError, check_checkpoint_files
from vit_vqgan_hf.training.checkpointing import (
    CHECKPOINT_COMPLETE_FILE,
    is_complete,
    list_checkpoints,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from vit_vqgan_hf.utils.file_writes import OutputWriteError


class MarkerPayload:
    """Unpickling it creates the file `marker`: the stand-in for any code a hostile checkpoint would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class Unserializable:
    def state_dict(self):
        return {"x": object()}


def build_loop(args, accelerator, ema_decay=0.5) -> LinearLoop:
    """The least-squares loop of test_loop.py, with an EMA of its weights as a second checkpoint state."""
    loop = build_linear_loop(args, accelerator)
    loop.ema = EMAModel(loop.parts.model.parameters(), decay=ema_decay)
    return loop


def train(args, accelerator, checkpoint=None) -> LinearLoop:
    loop = build_loop(args, accelerator)
    loop.start("test", checkpoint, loop.ema)
    loop.train()
    return loop


def test_checkpoints_hold_json_and_safetensors_states_that_resume_exactly(tmp_path, accelerator_for):
    args = training_args(tmp_path, max_train_steps=4, checkpointing_steps=2, logging_steps=2)
    loop = train(args, accelerator_for(args))
    checkpoint = tmp_path / "checkpoints" / "checkpoint_4"
    names = {path.name for path in checkpoint.iterdir()}
    assert {"training_state.json", "ema_model.json", "ema_model.safetensors", CHECKPOINT_COMPLETE_FILE} <= names
    # The only pickles are accelerate's own, which it loads with weights_only=True.
    assert {name for name in names if name.endswith((".pkl", ".bin"))} == {"random_states_0.pkl", "optimizer.bin"}
    assert json.loads((checkpoint / "training_state.json").read_text())["global_step"] == 4

    loop.ema.shadow_params[0].copy_(torch.randn(1, 3))  # something only a real restore brings back
    save_checkpoint(loop.accelerator, 5, loop.checkpoint_states)
    resumed = build_loop(args, accelerator_for(args), ema_decay=0.9)
    resumed.start("test", tmp_path / "checkpoints" / "checkpoint_5", resumed.ema)
    assert resumed.state == loop.state
    assert torch.equal(resumed.ema.shadow_params[0], loop.ema.shadow_params[0]) and resumed.ema.decay == 0.5
    assert torch.equal(resumed.parts.model.weight, loop.parts.model.weight)


@pytest.mark.parametrize(
    "planted",
    ["custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "notes.pt", "extra/state.pth"],
)
def test_a_planted_pickle_payload_is_refused_and_never_runs(planted, tmp_path, accelerator_for):
    args = training_args(tmp_path, max_train_steps=2, checkpointing_steps=2, logging_steps=2)
    train(args, accelerator_for(args))
    checkpoint = tmp_path / "checkpoints" / "checkpoint_2"
    marker = tmp_path / "payload_ran"
    target = checkpoint / planted
    target.parent.mkdir(exist_ok=True)
    if target.suffix == ".pkl" and planted.startswith("custom"):
        target.write_bytes(pickle.dumps({"global_step": MarkerPayload(marker)}))  # as accelerate would pickle it
    else:
        torch.save({"state": MarkerPayload(marker)}, target)
    assert resolve_checkpoint("latest", str(tmp_path)) == checkpoint  # complete: only loading finds it out

    loop = build_loop(args, accelerator_for(args))
    with pytest.raises(UnsafeCheckpointError, match=f"{re.escape(str(target))} .*could run any code"):
        loop.start("test", checkpoint, loop.ema)
    assert not marker.exists()
    assert loop.state.global_step == 0


def test_a_distributed_checkpoint_is_checked_entry_by_entry(tmp_path):
    import torch.distributed.checkpoint as dcp

    folder = tmp_path / "checkpoint_1" / "pytorch_model_fsdp_0"
    with pytest.warns(UserWarning, match="single process"):
        dcp.save({"model": {"weight": torch.ones(2, 2)}, "step": 3}, checkpoint_id=folder)
    check_checkpoint_files(folder.parent)  # tensors, and a number stored as pickled bytes

    marker = tmp_path / "payload_ran"
    hostile = tmp_path / "checkpoint_2" / "optimizer_0"
    with pytest.warns(UserWarning, match="single process"):
        dcp.save({"weight": torch.ones(2), "extra": MarkerPayload(marker)}, checkpoint_id=hostile)
    with pytest.raises(UnsafeCheckpointError, match="__0_0.distcp holds objects other than tensors"):
        check_checkpoint_files(hostile.parent)
    # torch reads `.metadata` with a plain pickle.load: one naming any other global is refused before that.
    (hostile / ".metadata").write_bytes(pickle.dumps(MarkerPayload(marker)))
    with pytest.raises(UnsafeCheckpointError, match=r"\.metadata is not the metadata of a distributed checkpoint"):
        check_checkpoint_files(hostile.parent)
    assert not marker.exists()


def test_a_checkpoint_that_pickled_its_states_is_refused_with_the_reason(tmp_path, accelerator_for):
    args = training_args(tmp_path, max_train_steps=2, checkpointing_steps=2, logging_steps=2)
    train(args, accelerator_for(args))
    checkpoint = tmp_path / "checkpoints" / "checkpoint_2"
    (checkpoint / "ema_model.json").unlink()
    loop = build_loop(args, accelerator_for(args))
    with pytest.raises(ValueError, match="has no ema_model.json, the saved ema model of this run: .*without an EMA"):
        loop.start("test", checkpoint, loop.ema)


def test_rotation_keeps_the_newest_complete_checkpoints_and_clears_interrupted_saves(tmp_path, accelerator_for):
    args = training_args(tmp_path, max_train_steps=8, checkpointing_steps=2, logging_steps=2)
    args.checkpoints_total_limit = 2
    # The remains of a save killed before this run (an older step): removed with the rotation.
    (tmp_path / "checkpoints" / "checkpoint_1").mkdir(parents=True)
    loop = train(args, accelerator_for(args))
    assert [path.name for path in list_checkpoints(tmp_path, complete_only=False)] == ["checkpoint_6", "checkpoint_8"]

    # A save that fails after accelerate wrote its files (a state that JSON cannot hold) deletes nothing.
    states = {**loop.checkpoint_states, "broken": Unserializable()}
    with pytest.raises(OutputWriteError, match="checkpoint_10 failed .TypeError: The checkpoint state 'broken.x'"):
        save_checkpoint(loop.accelerator, 10, states, total_limit=1)
    assert (tmp_path / "checkpoints" / "checkpoint_10" / "model.safetensors").is_file()
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint_6", "checkpoint_8"]


def test_latest_refuses_to_start_over_a_run_that_only_left_incomplete_saves(tmp_path, caplog):
    folder = tmp_path / "checkpoints" / "checkpoint_22"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="holds only incomplete checkpoints .checkpoint_22: their saves did not"):
        resolve_checkpoint("latest", str(tmp_path))
    # Nothing at all: a fresh start, said loudly.
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint("latest", str(tmp_path / "new")) is None
    assert "none in" in caplog.text and "starting a new training run" in caplog.text


def test_a_full_disk_names_the_checkpoint_and_the_free_space_and_keeps_the_last_checkpoint(
    small_tmpfs, accelerator_for
):
    args = training_args(small_tmpfs, max_train_steps=2, checkpointing_steps=2, logging_steps=2)
    args.checkpoints_total_limit = 1
    loop = train(args, accelerator_for(args))
    filler = fill_disk(small_tmpfs)  # the next save fails in its first large write
    new = small_tmpfs / "checkpoints" / "checkpoint_3"
    with pytest.raises(OutputWriteError, match=rf"Writing the checkpoint to {new} failed .*; \d+ bytes") as error:
        save_checkpoint(loop.accelerator, 3, loop.checkpoint_states, total_limit=1)
    assert "has no checkpoint_complete.json, so `latest` skips it" in str(error.value)
    assert not is_complete(new)
    filler.unlink()
    latest = resolve_checkpoint("latest", str(small_tmpfs))
    assert latest.name == "checkpoint_2"
    resumed = build_loop(args, accelerator_for(args))
    load_checkpoint(resumed.accelerator, latest, resumed.state, {"training_state": resumed.state})
    assert resumed.state.global_step == 2


def test_write_errors_of_any_output_name_it(tmp_path):
    from vit_vqgan_hf.utils.file_writes import report_write_errors

    target = tmp_path / "missing" / "model_card.md"
    with pytest.raises(OutputWriteError, match=f"Writing the model card to {target} failed .FileNotFoundError.*free"):
        with report_write_errors(target, "the model card"):
            Path(target).write_text("card")


def test_a_training_state_with_unknown_entries_is_refused(tmp_path, accelerator_for):
    args = training_args(tmp_path, max_train_steps=2, checkpointing_steps=2, logging_steps=2)
    train(args, accelerator_for(args))
    checkpoint = tmp_path / "checkpoints" / "checkpoint_2"
    state = json.loads((checkpoint / "training_state.json").read_text())
    (checkpoint / "training_state.json").write_text(json.dumps({**state, "load_state_dict": 0}))
    loop = build_loop(args, accelerator_for(args))
    with pytest.raises(ValueError, match=r"entries this version does not know: \['load_state_dict'\]"):
        loop.start("test", checkpoint, loop.ema)
