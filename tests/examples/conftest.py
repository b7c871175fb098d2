import contextlib
import copy
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import datasets
import huggingface_hub
import pytest
from accelerate.state import AcceleratorState, GradientState

from tests.testing_utils import load_script, tiny_tokenizer, write_image_folder
from vit_vqgan_hf.cli import in_flag_terms


# VIM examples (pretokenize.py, train_vim.py, linear_probe.py): one image folder, tokenizer and pretokenized dataset
# per session, shared by tests/examples/test_{pretokenize,train_vim,linear_probe}.py.

VIM_CLASSES = ("cat", "dog", "fish")
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def run_example(script, arguments, hf_home, num_processes=1):
    """Run `examples/<script>` offline on the CPU, in one process or with `accelerate launch` on two."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(hf_home),
        "OMP_NUM_THREADS": "1",
    }
    if num_processes == 1:
        command = [sys.executable, str(EXAMPLES_DIR / script), *map(str, arguments)]
    else:
        env["ACCELERATE_USE_CPU"] = "true"
        launch = ["--multi_gpu", "--num_processes", str(num_processes), "--num_cpu_threads_per_process", "1"]
        launch += [
            "--main_process_port",
            "0",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, str(EXAMPLES_DIR / script)]
        command += [str(argument) for argument in arguments]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"
    return result


def load_example(script):
    """Import `examples/<script>` as a module (for its functions and `main(parse_args([...]))`)."""
    return load_script(EXAMPLES_DIR / script)


@pytest.fixture(scope="session")
def vim_data(tmp_path_factory):
    """12 images of 16x16 in three class folders (plus one corrupt file), a tiny tokenizer (16x16 -> 4x4 tokens of 24
    codes) and the folder's tokens from `pretokenize.py` with two augmented copies."""
    root = tmp_path_factory.mktemp("vim_data")
    sizes = {name: [(16, 16)] * 4 for name in VIM_CLASSES}
    image_folder = write_image_folder(root / "images", sizes, corrupt=True)
    tokenizer = tiny_tokenizer(
        image_size=16,
        patch_size=4,
        encoder_hidden_size=32,
        encoder_num_hidden_layers=1,
        encoder_num_attention_heads=2,
        encoder_intermediate_size=37,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=37,
        codebook_size=24,
        codebook_dim=4,
    )
    tokenizer.save_pretrained(root / "tokenizer")
    data = SimpleNamespace(
        root=root,
        image_folder=image_folder,
        tokenizer=root / "tokenizer",
        tokens=root / "tokens",
        cache_dir=root / "cache",
        hf_home=root / "hf_home",
    )
    arguments = ["--tokenizer", data.tokenizer, "--train_data_dir", image_folder, "--cache_dir", data.cache_dir]
    arguments += ["--output_dir", data.tokens, "--num_augmented_copies", 2, "--batch_size", 5, "--device", "cpu"]
    run_example("pretokenize.py", arguments, data.hf_home)
    return data


def reset_accelerate():
    """Forget accelerate's process-wide state (distributed setup, gradient accumulation) between in-process runs."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture
def run_in_process(monkeypatch):
    """Runs `main(parse_args(arguments))` of `examples/<script>` in this process, offline, with accelerate's global
    state reset before and after; returns the parsed arguments and a deep copy of them taken before `main`. Faster than
    a subprocess (no interpreter to start and no libraries to import again), for the runs of one process. With
    `flag_terms=True`, `main` runs under `cli.in_flag_terms`, as the scripts' entry points run it: errors name the
    flags instead of the library's arguments."""

    def run(script, arguments, flag_terms=False):
        # The libraries read these when imported: their constants are set too.
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        module = load_example(script)
        args = module.parse_args([str(argument) for argument in arguments])
        parsed = copy.deepcopy(vars(args))
        reset_accelerate()
        try:
            with in_flag_terms(args) if flag_terms else contextlib.nullcontext():
                module.main(args)
        finally:
            reset_accelerate()
        return args, parsed

    return run
