"""examples/demo.py end to end with a few steps per stage: every output is written, and a rerun reuses the stages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest

from tests.testing_utils import load_script
from vit_vqgan_hf import VimPipeline, VitVqganModel


DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def run_demo(output_dir, hf_home):
    command = [sys.executable, str(DEMO), "--output_dir", str(output_dir), "--tokenizer_steps", "2"]
    command += ["--vim_steps", "2", "--null_token_steps", "2"]
    command += ["--samples_per_class", "2", "--completions_per_class", "3"]
    # One process per stage: the scripts' two-process runs are tested on their own (test_train_*.py), and here a second
    # process per stage would only double the interpreters started on a 2-core machine.
    command += ["--num_processes", "1"]
    env = {**os.environ, "HF_HOME": str(hf_home), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    return result.stdout


def test_demo_writes_every_output_and_reuses_finished_stages(tmp_path):
    output_dir = tmp_path / "demo"
    first = run_demo(output_dir, tmp_path / "hf_home")
    assert "reusing" not in first
    assert "samples assigned to the requested class" in first

    metrics = json.loads((output_dir / "metrics.json").read_text())
    for sampling in ("paper_sampling", "guided"):
        assert set(metrics["generation"][sampling]["per_class"]) == {
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"
        }  # fmt: skip
        assert 0 <= metrics["generation"][sampling]["class_accuracy"] <= 1
    # The printed accuracies say when they miss the 90% target.
    accuracies = [metrics["generation"][sampling]["class_accuracy"] for sampling in ("paper_sampling", "guided")]
    assert first.count("(below the target)") == sum(accuracy < 0.9 for accuracy in accuracies)
    assert metrics["reconstruction (validation split)"]["psnr"] > 0
    # Validated every step here (--validation_steps is a sixth of the run), parsed back from the stage's log.
    assert metrics["tokenizer_validation_by_step"]["1"]["codebook_usage"] > 0
    # The VIM's held-out loss: the pretokenized validation split, at every validation step and at the end.
    losses = metrics["vim_loss (nats per image token)"]
    assert set(losses["validation_loss_by_step"]) == {"1", "2"} and losses["final_validation_loss"] > 0
    # The pipeline holds the transformer of the lowest of those losses (--save_best_model).
    by_step = losses["validation_loss_by_step"]
    assert by_step[str(losses["saved_step"])] == pytest.approx(min(by_step.values()), abs=1e-4)
    # 10 rows of 16x16 samples and a 1-pixel separator, upscaled 4 times.
    assert PIL.Image.open(output_dir / "samples.png").height == 10 * 17 * 4
    assert PIL.Image.open(output_dir / "samples_guided.png").size == PIL.Image.open(output_dir / "samples.png").size
    assert PIL.Image.open(output_dir / "reconstructions.png").height == 20 * 17 * 4
    # Completions: for each class, 3 validation images' top halves above their completions, and the share of
    # completions the classifier assigns to the input's class.
    assert PIL.Image.open(output_dir / "completions.png").size == (3 * 17 * 4 + 56, 20 * 17 * 4)
    completion = metrics["completion"]
    assert set(completion["per_class"]) == set(metrics["generation"]["paper_sampling"]["per_class"])
    assert 0 <= completion["class_accuracy"] <= 1 and completion["images_per_class"] == 3
    assert completion["kept"] == "top 4 of 8 rows of tokens"
    assert "completions that stay the input's digit" in first
    assert VitVqganModel.from_pretrained(output_dir / "tokenizer").config.patch_size == 2
    pipeline = VimPipeline.from_pretrained(output_dir / "pipeline")
    assert pipeline.get_label_ids("seven") == [pipeline.transformer.config.label2id["seven"]]
    for card in (output_dir / "tokenizer" / "README.md", output_dir / "pipeline" / "README.md"):
        assert card.read_text().startswith("---")

    # Each stage's marker names the results it was made from, which is what a rerun compares (see the next test).
    markers = {
        folder: json.loads((output_dir / folder / ".demo_stage.json").read_text())
        for folder in ("tokenizer", "tokenizer_evaluation", "tokens", "pipeline")
    }
    assert markers["tokenizer"]["inputs"] == []
    assert markers["tokenizer_evaluation"]["inputs"] == markers["tokens"]["inputs"] == [markers["tokenizer"]]
    assert markers["pipeline"]["inputs"] == [markers["tokens"]]

    # A rerun reuses every finished stage and still writes the figures, read back from the stages' logs; which
    # changes redo a stage is tested below with commands that cost nothing, as each demo stage starts an interpreter.
    second = run_demo(output_dir, tmp_path / "hf_home")
    for stage in ("train_tokenizer", "evaluate_tokenizer", "pretokenize", "train_vim"):
        assert f"[{stage}] done in an earlier run" in second
    rerun = json.loads((output_dir / "metrics.json").read_text())
    assert rerun["tokenizer_validation_by_step"] == metrics["tokenizer_validation_by_step"]
    assert rerun["vim_loss (nats per image token)"] == losses


def test_a_stage_is_redone_when_its_command_or_an_upstream_stage_changes(tmp_path, capsys):
    demo = load_script(DEMO)
    runs = tmp_path / "runs.txt"

    def stage(name, text, inputs=()):
        """A stage whose command appends `text` to runs.txt, run in tmp_path/name."""
        command = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write({text!r})"]
        (tmp_path / name).mkdir(exist_ok=True)
        demo.run_stage(name, command, tmp_path / name, tmp_path / "logs", {}, inputs=inputs)

    def run_both(upstream_text="a", downstream_text="b"):
        stage("upstream", upstream_text)
        stage("downstream", downstream_text, inputs=(tmp_path / "upstream",))

    run_both()
    run_both()  # the same commands on the same upstream result: both reused
    assert runs.read_text() == "ab"
    assert "[downstream] done in an earlier run" in capsys.readouterr().out
    run_both(downstream_text="c")  # a changed command redoes its stage only
    assert runs.read_text() == "abc"
    run_both(upstream_text="d", downstream_text="c")  # a redone upstream stage redoes the stages that read it
    assert runs.read_text() == "abcdc"
    (tmp_path / "upstream" / demo.STAGE_MARKER).unlink()  # an unfinished upstream stage too
    run_both(upstream_text="d", downstream_text="c")
    assert runs.read_text() == "abcdcdc"

    # A failed stage stops the demo with its log's path, and leaves no marker: the next run redoes it.
    with pytest.raises(SystemExit, match="failing.*failed.*logs"):
        demo.run_stage("failing", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, tmp_path / "logs", {})
    assert not (tmp_path / demo.STAGE_MARKER).exists()
