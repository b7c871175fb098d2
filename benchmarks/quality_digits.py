# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""End-to-end quality check on real images that ship with scikit-learn: the 8x8 handwritten digits.

    python benchmarks/quality_digits.py --output_dir outputs/quality_digits

The whole two-stage recipe, through the example scripts' command lines, on CPU in minutes:

1. the 1797 digits of `sklearn.datasets.load_digits`, upscaled (bilinear) to 16x16 RGB, are written as an image folder
   with `train/` and `validation/` splits (stratified 80/20) and class folders `zero` .. `nine`;
2. `examples/train_tokenizer.py` trains a small ViT-VQGAN (patch 2: 8x8 tokens; l2 + logit-Laplace + VQ losses, no
   perceptual or adversarial term, which need pretrained networks or many more steps);
3. `examples/pretokenize.py` encodes both splits;
4. `examples/train_vim.py` trains a small class-conditional VIM on the training tokens;
5. class-conditional samples (paper sampling: temperature 1, no top-k/top-p, no guidance) are classified by an RBF
   SVM (and a logistic regression) trained on the real training images; the figure of merit is the share of samples
   assigned to the class they were drawn for. The classifiers' accuracy on real validation images and on their
   tokenizer reconstructions are the reference and the ceiling;
6. `examples/linear_probe.py` probes every block of the trained VIM, of a randomly initialized VIM of the same shape,
   and raw pixels (8x8, i.e. the digits' native resolution) on the validation split.

Everything runs in float32 with one thread per step: for models this small, bf16 autocast on the CPU is about ten
times slower than float32 and a second thread only adds overhead.

Outputs: `quality_digits.json` (all figures), `quality_digits.png` (probe accuracy against block), `samples.png`
(one row per class) and the intermediate folders (tokenizer, tokens, VIM pipeline, probes).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from vit_vqgan_hf import VimPipeline


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RESOLUTION = 16

TOKENIZER_CONFIG = {
    "model_type": "vit_vqgan",
    "image_size": RESOLUTION,
    "patch_size": 2,
    "encoder_hidden_size": 64,
    "encoder_num_hidden_layers": 2,
    "encoder_num_attention_heads": 4,
    "encoder_intermediate_size": 128,
    "decoder_hidden_size": 64,
    "decoder_num_hidden_layers": 2,
    "decoder_num_attention_heads": 4,
    "decoder_intermediate_size": 128,
    "codebook_size": 128,
    "codebook_dim": 8,
}
VIM_CONFIG = {
    "model_type": "vim",
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 512,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/quality_digits", help="Where everything is written.")
    parser.add_argument("--tokenizer_steps", type=int, default=1000, help="Tokenizer training steps (batch 64).")
    parser.add_argument("--vim_steps", type=int, default=1500, help="VIM training steps (batch 64).")
    parser.add_argument("--samples_per_class", type=int, default=50, help="Samples per class to classify.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split, the trainings and the samples.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each step.")
    return parser.parse_args()


def write_digits(root: Path, seed: int) -> dict:
    """The digits as 16x16 RGB PNGs in `root/{train,validation}/<class name>/`; returns the arrays of both splits."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=RESOLUTION, mode="bilinear", align_corners=False).clamp(0, 1)
    pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    indices = np.arange(len(pixels))
    train_indices, validation_indices = train_test_split(
        indices, test_size=0.2, random_state=seed, stratify=digits.target
    )
    splits = {}
    for split, chosen in (("train", train_indices), ("validation", validation_indices)):
        for index in chosen:
            folder = root / split / CLASS_NAMES[digits.target[index]]
            folder.mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(pixels[index]).convert("RGB").save(folder / f"{index:04d}.png")
        splits[split] = (pixels[chosen].reshape(len(chosen), -1) / 255.0, digits.target[chosen])
    return splits


def run(script: str, arguments: list, log: Path, threads: int):
    """Run one example script (one process), logging to a file; raise with the log's tail on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    with open(log, "w") as handle:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script), *map(str, arguments)], env=env, stdout=handle, stderr=handle
        )
    if result.returncode:
        raise RuntimeError(f"{script} failed:\n" + "".join(open(log).readlines()[-40:]))
    elapsed = time.perf_counter() - start
    print(f"{script}: {elapsed:.0f} s", flush=True)
    return elapsed


@torch.no_grad()
def sample_accuracy(
    pipeline_dir: Path, classifiers: dict, samples_per_class: int, seed: int, output_dir: Path
) -> dict:
    """Share of class-conditional samples that each classifier assigns to the requested class."""
    pipe = VimPipeline.from_pretrained(pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), samples_per_class)
    generator = [torch.Generator().manual_seed(seed * 100_000 + index) for index in range(len(labels))]
    images = pipe(
        class_labels=list(range(len(CLASS_NAMES))),
        num_images_per_label=samples_per_class,
        generator=generator,
        output_type="np",
        max_batch_size=100,
    ).images
    # The generated images are gray (equal channels up to the tokenizer's errors): classify their channel mean.
    features = np.asarray(images).mean(axis=-1).reshape(len(labels), -1)
    rows = np.asarray(images).reshape(len(CLASS_NAMES), samples_per_class, RESOLUTION, RESOLUTION, 3)[:, :10]
    grid = (rows.transpose(0, 2, 1, 3, 4).reshape(len(CLASS_NAMES) * RESOLUTION, -1, 3) * 255).round()
    PIL.Image.fromarray(grid.astype(np.uint8)).resize((grid.shape[1] * 4, grid.shape[0] * 4), 0).save(
        output_dir / "samples.png"
    )
    results = {}
    for name, classifier in classifiers.items():
        predictions = classifier.predict(features)
        results[name] = {
            "accuracy": float((predictions == labels).mean()),
            "per_class": {
                CLASS_NAMES[label]: float((predictions[labels == label] == label).mean())
                for label in range(len(CLASS_NAMES))
            },
        }
    return results


@torch.no_grad()
def reconstruction_accuracy(pipeline_dir: Path, validation, classifiers: dict) -> dict:
    """Classifier accuracy on the tokenizer's reconstructions of the validation images (the ceiling for samples)."""
    tokenizer = VimPipeline.from_pretrained(pipeline_dir).vqgan.eval()
    pixels, labels = validation
    pixel_values = torch.tensor(pixels, dtype=torch.float32).reshape(-1, 1, RESOLUTION, RESOLUTION) * 2 - 1
    reconstruction = tokenizer.decode_tokens(tokenizer.encode(pixel_values.repeat(1, 3, 1, 1)).image_tokens)
    features = ((reconstruction.mean(dim=1) + 1) / 2).reshape(len(labels), -1).numpy()
    return {name: float(classifier.score(features, labels)) for name, classifier in classifiers.items()}


VALIDATION_LINE = re.compile(r"step (\d+): (validation/psnr .*)")


def tokenizer_history(log: Path) -> dict:
    """The tokenizer's validation figures (PSNR, codebook usage, perplexity) at every validation step of its log."""
    history = {}
    for line in log.read_text().replace("\r", "\n").splitlines():
        match = VALIDATION_LINE.search(line)
        if match:
            pairs = match.group(2).split(", ")
            history[int(match.group(1))] = {
                name.removeprefix("validation/"): float(value) for name, value in (pair.split(" ") for pair in pairs)
            }
    return dict(sorted(history.items()))


def probe_plot(path: Path, trained: dict, random: dict, pixels: float):
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    blocks = sorted(int(block) for block in trained)
    axes.plot(blocks, [100 * trained[str(block)] for block in blocks], marker="o", label="trained VIM")
    axes.plot(blocks, [100 * random[str(block)] for block in blocks], marker="s", label="random-init VIM")
    axes.axhline(100 * pixels, color="gray", linestyle="--", label="raw pixels 8x8")
    axes.set_xlabel("block")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_xticks(blocks)
    axes.set_title("Linear probe on the digits validation split")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(args):
    torch.set_num_threads(args.threads)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = output_dir / "cache"
    splits = write_digits(output_dir / "digits", args.seed)
    (output_dir / "tokenizer_config").mkdir(exist_ok=True)
    (output_dir / "tokenizer_config" / "config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    (output_dir / "vim_config").mkdir(exist_ok=True)
    (output_dir / "vim_config" / "config.json").write_text(json.dumps(VIM_CONFIG))
    data = ["--train_data_dir", output_dir / "digits", "--cache_dir", cache_dir]
    timings = {}

    timings["train_tokenizer"] = run(
        "train_tokenizer.py",
        [*data, "--model_config", output_dir / "tokenizer_config", "--output_dir", output_dir / "tokenizer",
         "--perceptual_weight", 0, "--adversarial_weight", 0, "--discriminator_config", "tiny",
         "--discriminator_start_step", args.tokenizer_steps + 1, "--train_batch_size", 64,
         "--max_train_steps", args.tokenizer_steps, "--learning_rate", 1e-3, "--lr_warmup_steps", 50,
         "--lr_end", 1e-4, "--checkpointing_steps", args.tokenizer_steps, "--validation_steps", args.tokenizer_steps // 10,
         "--logging_steps", 100, "--seed", args.seed, "--report_to", "none"],
        output_dir / "train_tokenizer.log",
        args.threads,
    )  # fmt: skip
    timings["pretokenize"] = run(
        "pretokenize.py",
        [*data, "--tokenizer", output_dir / "tokenizer", "--output_dir", output_dir / "tokens",
         "--batch_size", 256, "--device", "cpu"],
        output_dir / "pretokenize.log",
        args.threads,
    )  # fmt: skip
    timings["train_vim"] = run(
        "train_vim.py",
        ["--tokenizer", output_dir / "tokenizer", "--pretokenized_dataset", output_dir / "tokens",
         "--model_config", output_dir / "vim_config", "--output_dir", output_dir / "vim", "--conditioning", "class",
         "--dropout", 0.0, "--train_batch_size", 64, "--max_train_steps", args.vim_steps, "--learning_rate", 1e-3,
         "--lr_warmup_steps", 100, "--lr_decay_start", args.vim_steps // 2, "--lr_end", 5e-5,
         "--checkpointing_steps", args.vim_steps, "--validation_steps", args.vim_steps,
         "--validation_classes", "zero", "three", "seven", "--logging_steps", 100, "--seed", args.seed,
         "--report_to", "none"],
        output_dir / "train_vim.log",
        args.threads,
    )  # fmt: skip

    train_pixels, train_labels = splits["train"]
    classifiers = {
        "svm_rbf": SVC().fit(train_pixels, train_labels),
        "logistic_regression": LogisticRegression(max_iter=3000).fit(train_pixels, train_labels),
    }
    validation_pixels, validation_labels = splits["validation"]
    real_accuracy = {name: float(c.score(validation_pixels, validation_labels)) for name, c in classifiers.items()}
    start = time.perf_counter()
    samples = sample_accuracy(output_dir / "vim", classifiers, args.samples_per_class, args.seed, output_dir)
    timings["sampling"] = time.perf_counter() - start
    reconstructions = reconstruction_accuracy(output_dir / "vim", splits["validation"], classifiers)

    probes = {}
    for name, extra in (
        ("trained", ["--pipeline", output_dir / "vim"]),
        ("random_init", ["--pipeline", output_dir / "vim", "--random_init"]),
        ("raw_pixels", ["--tokenizer", output_dir / "tokenizer", "--raw_pixels"]),
    ):
        timings[f"linear_probe_{name}"] = run(
            "linear_probe.py",
            [*data, *extra, "--block", "all", "--output_dir", output_dir / f"probe_{name}", "--device", "cpu",
             "--weight_decay", 1e-4, 1e-3, 1e-2, 1e-1, "--seed", args.seed],
            output_dir / f"linear_probe_{name}.log",
            args.threads,
        )  # fmt: skip
        results = json.loads((output_dir / f"probe_{name}" / "linear_probe.json").read_text())
        probes[name] = results["details"]["per_block_top1_accuracy"]
    probe_plot(output_dir / "quality_digits.png", probes["trained"], probes["random_init"], probes["raw_pixels"]["0"])

    history = tokenizer_history(output_dir / "train_tokenizer.log")
    first, last = min(history), max(history)
    summary = {
        "sample_class_accuracy": samples,
        "tokenizer_validation": {
            "early": {"step": first, **history[first]},
            "final": {"step": last, **history[last]},
            "history": history,
        },
        "classifier_accuracy_on_real_validation_images": real_accuracy,
        "classifier_accuracy_on_validation_reconstructions": reconstructions,
        "linear_probe_top1_per_block": probes,
        "settings": {
            "tokenizer_config": TOKENIZER_CONFIG,
            "vim_config": VIM_CONFIG,
            "tokenizer_steps": args.tokenizer_steps,
            "vim_steps": args.vim_steps,
            "samples_per_class": args.samples_per_class,
            "sampling": "temperature 1.0, no top-k / top-p, no guidance (paper Sec. 5)",
            "seed": args.seed,
        },
        "timings_seconds": {name: round(value, 1) for name, value in timings.items()},
    }
    (output_dir / "quality_digits.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({key: summary[key] for key in list(summary)[:5] if key != "tokenizer_validation"}, indent=2))
    print(json.dumps({key: summary["tokenizer_validation"][key] for key in ("early", "final")}))
    return summary


if __name__ == "__main__":
    main(parse_args())
