# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""End-to-end quality check on real images that ship with scikit-learn: the demo, plus the linear probes.

    python benchmarks/quality_digits.py --output_dir outputs/quality_digits

1. `examples/demo.py` with the same flags: the digits written as an image folder, a small ViT-VQGAN and a small
   class-conditional VIM trained through the example scripts, class-conditional samples (paper sampling: temperature
   1, no top-k/top-p, no guidance) scored by an RBF SVM trained on the real training images (`metrics.json`);
2. the ceiling of that score: the same classifier on the tokenizer's reconstructions of the validation images;
3. `examples/linear_probe.py` on every block of the trained VIM, of a randomly initialized VIM of the same shape, and
   on raw pixels (8x8, the digits' native resolution), validation split.

Outputs, beside the demo's: `quality_digits.json` (all figures), `quality_digits.png` (probe accuracy against block)
and the probe folders.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from vit_vqgan_hf import VitVqganModel
from vit_vqgan_hf.utils.errors import command_line_errors


EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))
import demo  # noqa: E402  (examples/demo.py: the pipeline this check extends)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/quality_digits", help="Where everything is written.")
    parser.add_argument("--tokenizer_steps", type=int, default=600, help="Tokenizer training steps (batch 64).")
    parser.add_argument("--vim_steps", type=int, default=1000, help="VIM training steps (batch 64).")
    parser.add_argument("--samples_per_class", type=int, default=50, help="Samples per class to classify.")
    parser.add_argument(
        "--num_processes",
        type=int,
        default=demo.default_num_processes(),
        help="Processes of each `accelerate launch`.",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split, the trainings and the samples.")
    return parser.parse_args(argv)


@torch.no_grad()
def reconstruction_accuracy(tokenizer_dir: Path, validation: tuple, classifier) -> float:
    """The classifier's accuracy on the tokenizer's reconstructions of the validation images (the samples' ceiling)."""
    tokenizer = VitVqganModel.from_pretrained(tokenizer_dir).eval()
    pixels, labels = validation
    pixel_values = torch.tensor(pixels, dtype=torch.float32).reshape(-1, 1, demo.RESOLUTION, demo.RESOLUTION)
    reconstruction = tokenizer(pixel_values.repeat(1, 3, 1, 1) * 2 - 1).reconstruction.clamp(-1, 1)
    features = ((reconstruction.mean(dim=1) + 1) / 2).reshape(len(labels), -1).numpy()
    return float(classifier.score(features, labels))


def run_probes(args, output_dir: Path, timings: dict) -> dict:
    """Per-block top-1 of the trained VIM, a random-init VIM of the same shape, and raw pixels."""
    data = ["--train_data_dir", output_dir / "digits", "--cache_dir", output_dir / "cache"]
    probes = {}
    for name, extra, upstream in (
        ("trained", ["--pipeline", output_dir / "pipeline"], "pipeline"),
        ("random_init", ["--pipeline", output_dir / "pipeline", "--random_init"], "pipeline"),
        ("raw_pixels", ["--tokenizer", output_dir / "tokenizer", "--raw_pixels"], "tokenizer"),
    ):
        command = [sys.executable, str(EXAMPLES_DIR / "linear_probe.py"), *map(str, [
            *data, *extra, "--block", "all", "--output_dir", output_dir / f"probe_{name}", "--device", "cpu",
            "--weight_decay", 1e-4, 1e-3, 1e-2, 1e-1, "--seed", args.seed])]  # fmt: skip
        # A retrained pipeline (or tokenizer) redoes its probes.
        stage_dir, upstream_dir = output_dir / f"probe_{name}", output_dir / upstream
        demo.run_stage(
            f"linear_probe_{name}", command, stage_dir, output_dir / "logs", timings, inputs=(upstream_dir,)
        )
        results = json.loads((output_dir / f"probe_{name}" / "linear_probe.json").read_text())
        probes[name] = results["details"]["per_block_top1_accuracy"]
    return probes


def probe_plot(path: Path, probes: dict):
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    blocks = sorted(int(block) for block in probes["trained"])
    for name, marker in (("trained", "o"), ("random_init", "s")):
        accuracies = [100 * probes[name][str(block)] for block in blocks]
        axes.plot(blocks, accuracies, marker=marker, label=f"{name.replace('_', '-')} VIM")
    axes.axhline(100 * probes["raw_pixels"]["0"], color="gray", linestyle="--", label="raw pixels 8x8")
    axes.set_xlabel("block")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_xticks(blocks)
    axes.set_title("Linear probe on the digits validation split")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(args):
    output_dir = Path(args.output_dir)
    demo_args = demo.parse_args([
        "--output_dir", str(output_dir), "--tokenizer_steps", str(args.tokenizer_steps),
        "--vim_steps", str(args.vim_steps), "--samples_per_class", str(args.samples_per_class),
        "--num_processes", str(args.num_processes), "--threads", str(args.threads), "--seed", str(args.seed)])  # fmt: skip
    metrics = demo.main(demo_args)

    start, timings = time.perf_counter(), {}
    splits = demo.write_digits(output_dir / "digits", args.seed)
    classifier, real_accuracy = demo.fit_classifier(splits)
    ceiling = reconstruction_accuracy(output_dir / "tokenizer", splits["validation"], classifier)
    probes = run_probes(args, output_dir, timings)
    probe_plot(output_dir / "quality_digits.png", probes)
    timings["total_after_demo"] = round(time.perf_counter() - start, 1)

    summary = {
        "sample_class_accuracy": {
            name: metrics["generation"][name]["class_accuracy"] for name in ("paper_sampling", "guided")
        },
        "sample_class_accuracy_per_class": {
            name: metrics["generation"][name]["per_class"] for name in ("paper_sampling", "guided")
        },
        "classifier_accuracy_on_real_validation_images": real_accuracy,
        "classifier_accuracy_on_validation_reconstructions": ceiling,
        "tokenizer_validation_by_step": metrics["tokenizer_validation_by_step"],
        "reconstruction (validation split)": metrics["reconstruction (validation split)"],
        "linear_probe_top1_per_block": probes,
        "settings": metrics["settings"],
        "timings_seconds": {**metrics["timings_seconds (stages run now)"], **timings},
    }
    (output_dir / "quality_digits.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({key: value for key, value in summary.items() if key != "settings"}, indent=2))
    return summary


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
