"""examples/train_vim.py under FSDP2 (the examples/README.md config) on two CPU processes, offline.

accelerate (1.15) never shards on the CPU: with `distributed_type: FSDP` and `ACCELERATE_USE_CPU=true` its
`AcceleratorState` sets up `MULTI_CPU` (DDP over Gloo) and only promotes the GPU-like distributed types to FSDP, so
the FSDP config alone silently trains with DDP. PyTorch's `fully_shard` itself runs on the CPU with Gloo, so these
tests launch the script through a small shim that makes that promotion for `MULTI_CPU` too (a no-op should accelerate
ever do it itself): the script then runs its FSDP code paths (sharded model and optimizer, `get_state_dict` gathers,
sharded checkpoints) exactly as it would on GPUs.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from vit_vqgan_hf import VimPipeline

from .conftest import EXAMPLES_DIR, run_example
from .test_train_tokenizer import tiny_args as tokenizer_args
from .test_train_vim import resume_scenario_arguments


FSDP_CONFIG = """\
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
mixed_precision: 'no'
num_machines: 1
num_processes: 2
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: VimDecoderLayer
  fsdp_reshard_after_forward: true
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
  fsdp_offload_params: false
"""

# Runs `sys.argv[1]` as __main__ with accelerate's CPU distributed state promoted to FSDP, as accelerate does for GPUs.
CPU_FSDP_SHIM = """\
import os, runpy, sys
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def __init__(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if self.distributed_type == DistributedType.MULTI_CPU and fsdp_plugin is not None:
        # Both shared dicts: later `AcceleratorState()` calls copy PartialState's over AcceleratorState's.
        self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin


AcceleratorState.__init__ = __init__
script, sys.argv = sys.argv[1], sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
"""


def run_fsdp(script, arguments, tmp_path, hf_home, expect_success=True):
    """`accelerate launch` of `examples/<script>` with the FSDP config on two CPU processes (Gloo), offline."""
    config, shim = tmp_path / "fsdp.yaml", tmp_path / "cpu_fsdp_shim.py"
    config.write_text(FSDP_CONFIG)
    shim.write_text(CPU_FSDP_SHIM)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(hf_home),
        "OMP_NUM_THREADS": "1",
        "ACCELERATE_USE_CPU": "true",
    }
    launch = ["--config_file", config, "--num_processes", 2, "--num_cpu_threads_per_process", 1]
    launch += ["--main_process_port", 0, "--dynamo_backend", "no"]
    command = [sys.executable, "-m", "accelerate.commands.launch", *launch, shim, EXAMPLES_DIR / script, *arguments]
    result = subprocess.run([str(part) for part in command], env=env, capture_output=True, text=True, timeout=600)
    if expect_success:
        assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"
    return result


def test_vim_trains_saves_and_resumes_under_fsdp(vim_data, tmp_path):
    # The resume scenario of test_train_vim.py: dropout and label dropout on, gradient accumulation and an epoch
    # boundary after the step-3 checkpoint, validation and --save_best_model (gathers on every process).
    output_dir = tmp_path / "vim"
    arguments = resume_scenario_arguments(vim_data, tmp_path, output_dir)
    result = run_fsdp("train_vim.py", arguments, tmp_path, vim_data.hf_home)

    # Really sharded: accelerate's FSDP save path, one distributed-checkpoint file per process.
    assert "Saving FSDP model" in result.stderr
    checkpoint = output_dir / "checkpoints" / "checkpoint_3"
    assert {path.name for path in (output_dir / "checkpoints").iterdir()} == {"checkpoint_3", "checkpoint_6"}
    assert {"__0_0.distcp", "__1_0.distcp"} <= {path.name for path in (checkpoint / "pytorch_model_fsdp_0").iterdir()}
    assert not (checkpoint / "model.safetensors").exists()

    # The gathered pipeline loads and samples.
    pipe = VimPipeline.from_pretrained(output_dir)
    images = pipe(class_labels=["fish"], generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert images.shape == (1, 3, 16, 16)
    expected = load_file(output_dir / "transformer" / "model.safetensors")
    assert expected.keys() == pipe.transformer.state_dict().keys()

    # Interrupted after its step-3 checkpoint, then resumed from the sharded checkpoint: the same final weights.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(checkpoint, resumed_dir / "checkpoints" / "checkpoint_3")
    shutil.copytree(output_dir / "best_transformer", resumed_dir / "best_transformer")
    resumed_arguments = [resumed_dir if argument == output_dir else argument for argument in arguments]
    result = run_fsdp(
        "train_vim.py", [*resumed_arguments, "--resume_from_checkpoint", "latest"], tmp_path, vim_data.hf_home
    )
    assert "Loading FSDP model" in result.stderr
    assert "Resumed from" in result.stderr and "at step 3" in result.stderr
    resumed = load_file(resumed_dir / "transformer" / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    results, resumed_results = (
        json.loads((path / "train_results.json").read_text()) for path in (output_dir, resumed_dir)
    )
    assert resumed_results == results


@pytest.mark.slow  # evidence (two more two-process runs): FSDP training itself is covered by the test above
def test_fsdp_and_ddp_end_with_the_same_weights_up_to_rounding(vim_data, tmp_path):
    # The same run with DDP ends with the same weights up to rounding: FSDP sums the squared gradient norm of the
    # clipping shard by shard, so the clipping factor can differ in its last bit (without clipping, --max_grad_norm 0,
    # the two runs agree bit for bit); an update of the learning rate's size is 1e5 times larger than the tolerance.
    output_dir = tmp_path / "vim"
    arguments = resume_scenario_arguments(vim_data, tmp_path, output_dir)
    run_fsdp("train_vim.py", arguments, tmp_path, vim_data.hf_home)
    expected = load_file(output_dir / "transformer" / "model.safetensors")
    results = json.loads((output_dir / "train_results.json").read_text())
    ddp_dir = tmp_path / "ddp"
    ddp_arguments = [ddp_dir if argument == output_dir else argument for argument in arguments]
    run_example("train_vim.py", ddp_arguments, vim_data.hf_home, num_processes=2)
    ddp = load_file(ddp_dir / "transformer" / "model.safetensors")
    assert ddp.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(expected[name], ddp[name], rtol=0, atol=1e-7, msg=name)
    assert json.loads((ddp_dir / "train_results.json").read_text())["best_step"] == results["best_step"]


def test_tokenizer_training_refuses_fsdp_before_compute(image_folder, tmp_path):
    # Two models (tokenizer and discriminator) in one `prepare`: accelerate's FSDP2 takes one. Said before any data.
    arguments = tokenizer_args(image_folder, tmp_path / "out", tmp_path / "cache", "--max_train_steps", 1)
    result = run_fsdp("train_tokenizer.py", arguments, tmp_path, tmp_path / "hf_home", expect_success=False)
    assert result.returncode != 0
    assert "train_tokenizer.py trains with DDP, not FSDP" in result.stderr
    assert not (tmp_path / "cache").exists()
