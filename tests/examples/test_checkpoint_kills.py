"""SIGKILL inside checkpoint saves of examples/train_tokenizer.py: whatever the moment of the kill, `--resume_from_checkpoint
latest` continues from the last complete step, and the run ends with the weights of an uninterrupted one.

The kills are aimed by an audit hook (`sys.addaudithook`) in the training process: it counts the writes, renames and
deletions under `<output_dir>/checkpoints` (every one of them happens inside a save) and sends itself SIGKILL before
the n-th; different n land before the new folder exists, after accelerate's files, before and after the completion
marker, and in the middle of the rotation that deletes the previous checkpoint.
"""

import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.examples.test_train_tokenizer import SCRIPT, assert_success, run_script, tiny_args
from vit_vqgan_hf.training.checkpoint_files import check_checkpoint_files
from vit_vqgan_hf.training.checkpointing import list_checkpoints, resolve_checkpoint


KILL_SHIM = """
import os, runpy, signal, sys

script, kill_at, watched = sys.argv[1], int(sys.argv[2]), os.path.abspath(sys.argv[3])
count = 0


def kill_in_save(event, args):
    global count
    if event not in ("open", "os.mkdir", "os.rename", "os.remove", "shutil.rmtree") or not args:
        return
    path = args[0]
    if not isinstance(path, (str, os.PathLike)) or not os.path.abspath(path).startswith(watched):
        return
    if event == "open" and (args[1] or "r").startswith("r") and not (args[2] or 0) & (os.O_WRONLY | os.O_RDWR):
        return  # a read
    count += 1
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


sys.addaudithook(kill_in_save)
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


def run_killed(arguments, output_dir, kill_at, tmp_path):
    shim = tmp_path / "kill_in_save.py"
    shim.write_text(KILL_SHIM)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, str(shim), str(SCRIPT), str(kill_at), str(output_dir / "checkpoints"), *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def assert_same_weights(first_dir, second_dir):
    for name in ("model.safetensors", "discriminator/model.safetensors"):
        first, second = load_file(first_dir / name), load_file(second_dir / name)
        assert first.keys() == second.keys()
        for key in first:
            assert torch.equal(first[key], second[key]), f"{name}: {key}"


@pytest.mark.slow  # 9 short training runs (~90 s on 2 cores)
@pytest.mark.parametrize(
    "total_limit, kill_points",
    # The first run's first save (5 events) must finish: with no complete checkpoint, `latest` refuses to start over.
    [(1, [8, 3, 10, 5, 12, 7]), (None, [9, 4])],
)
def test_sigkill_during_saves_always_resumes_from_the_last_complete_step(
    total_limit, kill_points, image_folder, tmp_path
):
    extra = ["--max_train_steps", "10", "--checkpointing_steps", "1"]
    if total_limit is not None:
        extra += ["--checkpoints_total_limit", str(total_limit)]
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    assert_success(run_script(tiny_args(image_folder, reference_dir, tmp_path / "cache", *extra), tmp_path))

    arguments = tiny_args(image_folder, killed_dir, tmp_path / "cache", *extra, "--resume_from_checkpoint", "latest")
    last_step = 0
    for kill_at in kill_points:
        result = run_killed(arguments, killed_dir, kill_at, tmp_path)
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        if last_step:
            assert f"checkpoint_{last_step} at step {last_step}" in result.stderr  # resumed where the last left off
        latest = resolve_checkpoint("latest", str(killed_dir))
        assert latest is not None, [path.name for path in list_checkpoints(killed_dir, complete_only=False)]
        step = int(latest.name.removeprefix("checkpoint_"))
        assert step >= last_step
        check_checkpoint_files(latest)
        assert f'"global_step": {step},' in (latest / "training_state.json").read_text()
        if total_limit is not None:
            assert len(list_checkpoints(killed_dir)) <= total_limit + 1  # the new one, the old one not yet deleted
        last_step = step

    result = run_script(arguments, tmp_path)
    assert_success(result)
    assert f"checkpoint_{last_step} at step {last_step}" in result.stderr
    assert_same_weights(reference_dir, killed_dir)
    if total_limit is not None:
        assert [path.name for path in list_checkpoints(killed_dir, complete_only=False)] == ["checkpoint_10"]
