"""benchmarks/reproduce_tokenizer_ablations.py: the photo tiles, and a smoke run that writes the table and the plot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest

from tests.testing_utils import load_script


SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reproduce_tokenizer_ablations.py"


def test_photo_split_is_held_out_and_reproducible(tmp_path):
    benchmark = load_script(SCRIPT)
    tiles = benchmark.photo_tiles()
    assert len(tiles) > 2000 and all(tile.shape == (32, 32, 3) for tile in tiles)
    benchmark.write_photos(tmp_path / "a", num_validation=64, max_images=200, seed=0, tiles=tiles)
    benchmark.write_photos(tmp_path / "b", num_validation=64, max_images=200, seed=0, tiles=tiles)
    splits = {
        split: sorted(path.name for path in (tmp_path / "a" / split / "photo").iterdir())
        for split in ("train", "validation")
    }
    assert (len(splits["train"]), len(splits["validation"])) == (136, 64)
    assert not set(splits["train"]) & set(splits["validation"])
    assert sorted(path.name for path in (tmp_path / "b" / "validation" / "photo").iterdir()) == splits["validation"]


def test_larger_tiles_for_the_third_setting():
    tiles = load_script(SCRIPT).photo_tiles(64, factors=(1.0, 0.75, 0.5))
    assert len(tiles) > 1000 and all(tile.shape == (64, 64, 3) for tile in tiles)


@pytest.mark.slow  # three short trainings in subprocesses (~40 s); run with `pytest -m slow`
def test_quick_run_writes_the_rows_asked_for(tmp_path):
    benchmark = load_script(SCRIPT)
    output_dir = tmp_path / "ablations"
    # Both kinds of configuration change, a flag-only row, and a second seed for one of them; each training costs a
    # start-up.
    rows = ["no_l2", "no_factorization", "linear_map_kmeans"]
    command = [sys.executable, str(SCRIPT), "--quick", "--datasets", "digits", "--output_dir", str(output_dir)]
    command += ["--rows", *rows, "--seeds", "0", "1", "--multi_seed_rows", "no_l2"]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home")}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"

    table = (output_dir / "table.md").read_text()
    results = json.loads((output_dir / "results.json").read_text())["results"]["digits"]
    assert list(results) == ["linear_map_kmeans", "no_l2", "no_l2_seed1", "no_factorization"]
    assert results["no_l2_seed1"]["seed"] == 1 and "(seed 1)" in results["no_l2_seed1"]["row"]
    assert results["linear_map_kmeans"]["quantizer"] == {
        "quantizer_recipe": "paper",
        "quantizer_gradient": "straight_through",
        "codebook_map": "linear",
        "codebook_init": "kmeans",
        "codebook_entropy_weight": 0.0,
        "codebook_restart_steps": None,
    }
    # The paper's ablations train under the shipped default.
    assert results["no_l2"]["quantizer"]["quantizer_recipe"] == "default"
    assert results["no_l2"]["quantizer"]["codebook_entropy_weight"] > 0
    for row in (row for row in benchmark.ROWS if row.name in rows):
        assert f"| {row.description} |" in table
        result = results[row.name]
        assert 0 < result["codebook_usage"] <= 1 and result["psnr"] > 0 and result["images_per_second"] > 0
        assert 0 <= result["latent_mean_direction_length"] <= 1
        assert 1 <= result["latent_effective_dims"] <= result["codebook_dim"] + 1e-4
        # Validated every second step of the four, at the end included.
        assert [step for step, _ in result["usage_over_steps"]] == [2, 4]
    assert results["no_factorization"]["codebook_dim"] == 64 and not results["no_l2"]["use_l2_normalized_codes"]
    assert "| 2.0% |" in table and "| 4.0% |" in table  # the paper's usage beside ours
    assert PIL.Image.open(output_dir / "usage_over_steps.png").size[0] > 0
