"""Expected failures of the command-line tools end in one `error: <message>` line and exit status 2, without a
traceback (`vit_vqgan_hf.utils.errors.command_line_errors`); other exceptions, and every exception with `--debug` or
`VIT_VQGAN_HF_DEBUG=1`, keep their traceback."""

import ast
import os
import runpy
import subprocess
import sys

import pytest
from accelerate.state import AcceleratorState

from tests.testing_utils import REPO_ROOT, tiny_tokenizer
from vit_vqgan_hf.utils.errors import InputError, command_line_errors


SCRIPTS = sorted(
    path
    for folder in ("examples", "examples/app", "scripts", "benchmarks")
    for path in (REPO_ROOT / folder).glob("*.py")
    if "__main__" in path.read_text()
)


def run_expecting_exit(capsys, function):
    with pytest.raises(SystemExit) as exit, command_line_errors():
        function()
    assert exit.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "error",
    [ValueError("--batch_size must be at least 1,\n  got 0."), FileNotFoundError("No image folder"), InputError("x")],
)
def test_an_expected_failure_prints_one_error_line(capsys, monkeypatch, error):
    monkeypatch.delenv("VIT_VQGAN_HF_DEBUG", raising=False)

    def fail():
        raise error

    stderr = run_expecting_exit(capsys, fail)
    assert stderr == f"error: {' '.join(line.strip() for line in str(error).splitlines())}\n"


def test_an_unexpected_exception_keeps_its_traceback(monkeypatch):
    monkeypatch.delenv("VIT_VQGAN_HF_DEBUG", raising=False)
    with pytest.raises(KeyError), command_line_errors():
        {}["missing"]


def test_debug_shows_the_traceback_of_expected_failures(monkeypatch):
    monkeypatch.setenv("VIT_VQGAN_HF_DEBUG", "1")
    with pytest.raises(ValueError, match="bad value"), command_line_errors():
        raise ValueError("bad value")
    monkeypatch.delenv("VIT_VQGAN_HF_DEBUG")
    monkeypatch.setattr(sys, "argv", ["tool.py", "--debug", "--batch_size", "2"])
    with pytest.raises(ValueError, match="bad value"), command_line_errors():
        assert sys.argv == ["tool.py", "--batch_size", "2"]  # the tool's own parser never sees --debug
        raise ValueError("bad value")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_script_runs_its_entry_point_inside_the_helper(script):
    entry = [
        node
        for node in ast.parse(script.read_text()).body
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
    ]
    assert len(entry) == 1 and len(entry[0].body) == 1 and isinstance(entry[0].body[0], ast.With), script
    assert ast.unparse(entry[0].body[0].items[0].context_expr).endswith("command_line_errors()"), script


def run_script(capsys, monkeypatch, script: str, *arguments) -> str:
    """Run a script as `python script ...` runs it (`__main__`), in this process; its stderr."""
    monkeypatch.delenv("VIT_VQGAN_HF_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", [script, *map(str, arguments)])
    capsys.readouterr()
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        with pytest.raises(SystemExit) as exit:
            runpy.run_path(str(REPO_ROOT / script), run_name="__main__")
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert exit.value.code == 2
    return capsys.readouterr().err


def test_a_bad_flag_value_prints_one_error_line(capsys, monkeypatch, tmp_path):
    stderr = run_script(
        capsys, monkeypatch, "examples/evaluate_tokenizer.py", "--tokenizer", "t", "--train_data_dir", tmp_path,
        "--output_dir", tmp_path / "out", "--batch_size", "0",
    )  # fmt: skip
    assert stderr == "error: --batch_size must be at least 1, got 0.\n"


def test_a_missing_data_directory_prints_one_error_line(capsys, monkeypatch, tmp_path):
    tiny_tokenizer().save_pretrained(tmp_path / "tokenizer")
    stderr = run_script(
        capsys, monkeypatch, "examples/evaluate_tokenizer.py", "--tokenizer", tmp_path / "tokenizer",
        "--train_data_dir", tmp_path / "no-such-folder", "--output_dir", tmp_path / "out", "--mixed_precision", "no",
    )  # fmt: skip
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1] == f"error: Image folder {str(tmp_path / 'no-such-folder')!r} does not exist or is not a folder."
    assert "Traceback" not in stderr and sum(line.startswith("error:") for line in lines) == 1, stderr


def test_an_offline_conversion_prints_one_error_line(tmp_path):
    # As a new user runs it, in a process of its own: offline, a Hub checkpoint cannot be downloaded.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    env.pop("VIT_VQGAN_HF_DEBUG", None)
    command = [sys.executable, str(REPO_ROOT / "scripts" / "convert_enhancing_transformers_to_hf.py")]
    command += ["--checkpoint", "thuanz123/vitvqgan-imagenet-base", "--output_dir", str(tmp_path / "out")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "error: --checkpoint 'thuanz123/vitvqgan-imagenet-base' is no local"
    )
    assert "offline mode is on" in lines[0]
