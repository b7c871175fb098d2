# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The codebook ablations of paper Table 4 (Yu et al. 2022) at CPU scale, on real images shipped inside the dependencies,
and the remedies for codebook collapse beside them.

    python benchmarks/reproduce_tokenizer_ablations.py --output_dir outputs/tokenizer_ablations
    python benchmarks/reproduce_tokenizer_ablations.py --quick --output_dir /tmp/ablations   # smoke run, ~1 minute

The default run trains 24 tokenizers (9 rows on digits and on photos, `paper` and `default` at two seeds, and two
rows on the 64x64 tiles). The README's table adds the two reference rows and a second seed of `entropy` (`--rows` with
every row, `--multi_seed_rows paper entropy default`): 30 trainings, measured in one invocation with `--skip_trained`
over 14 trainings of identical settings from an earlier invocation of the same code; 6457 CPU-seconds in all (3869 for
the 16 trainings and the 30 evaluations of that invocation, 2588 for the 14 reused trainings). The 24 trainings of the
default run took 5842 s of wall time side by side, two at a time (160-250 s each on digits and photos, up to 400 s
while the machine ran other jobs, 382 s and 628 s on the 64x64 tiles, where the entropy penalty scores 8192 tokens
against 1024 codes at every step): at that invocation's 0.85 CPU-seconds per training second, about 5000 CPU-seconds,
42 minutes of 2 cores (an estimate: the default set was not run alone).

Data (nothing is downloaded):

- `digits`: the 1797 handwritten digits of `sklearn.datasets.load_digits`, 16x16 RGB, split as `examples/demo.py`
  splits them (1437 training, 360 held-out images); the demo's tokenizer (patch 2, 8x8 tokens, 128 codes);
- `photos`: non-overlapping 32x32 tiles of the colour photos of `skimage.data` and
  `sklearn.datasets.load_sample_images()` (at their size, longest side at most 640, and at half of it): 2432 training
  and 512 held-out tiles, split at random; the `tiny` preset (patch 4, 8x8 tokens, 256 codes);
- `photos64`: 64x64 tiles of the same photos (at 1, 0.75 and 0.5 of their size), 256 held-out; the `tiny` preset at
  64x64 (16x16 tokens) with 1024 codes, batch 32: a setting of another kind, so that a conclusion is not an artefact of
  8x8 grids and 128-256 codes. Only `--photos64_rows` train on it.

Rows (`ROWS`): the paper's quantizer (`--quantizer_recipe paper`: straight-through, free codes, random init, no entropy
penalty), each remedy for collapse on top of it (the rotation trick, k-means initialization, a learned linear map of
frozen codes, the entropy penalty), the map with k-means, the shipped default (`--quantizer_recipe default`: the map
with the entropy penalty), dead-code restarts as a reference, and the paper's own ablations (no l2 normalization, no
factorization, a 4-d lookup) re-run with the default. `--multi_seed_rows` train once per seed of `--seeds` on digits and
photos. Every row trains with `examples/train_tokenizer.py` (one process, the same data, steps and schedule) from a
`config.json` that differs from the dataset's base configuration only in what the row ablates. Then the tokenizer is
evaluated on the whole held-out split with `vit_vqgan_hf.evaluation.TokenizerEvaluator`: codebook usage by the paper's
protocol (codes used per group of 256 images, averaged over the full groups), perplexity, PSNR, SSIM, l2 and the
logit-Laplace NLL. Training images/s is the median of the script's `train/images_per_second` logs. The usage over
training comes from the script's validations (the first 256 held-out images: one group of the paper's protocol), read
from its TensorBoard logs.

Deviations from the paper's recipe, for CPU and for the data at hand:

- no perceptual loss (`--perceptual_weight 0`): its LPIPS-VGG16 weights cannot be downloaded here;
- no adversarial loss (`--adversarial_weight 0`, discriminator start past the last step): a StyleGAN discriminator
  doubles the cost of a step and the paper starts it only after 10% of a 500k-step run; Table 4's codebook rows differ
  in the quantizer only, which the adversarial term does not touch directly;
- `--steps` steps of batch 64 instead of 500k of 256; peak learning rate `--learning_rate` (the paper's 1e-4 barely
  moves a model this small in so few steps), warm-up over the first 10% of the run and cosine decay to half the peak,
  as in the paper.

Outputs in `--output_dir`: `table.md` (ours beside the paper's Table 4), `results.json` (every figure, the settings,
run times and the machine's load), `usage_over_steps.png`, and per dataset and row the run's folder
(`<dataset>/<row>/`: `config.json`, the trained tokenizer, `train.log`, TensorBoard logs).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from vit_vqgan_hf.utils.errors import command_line_errors


REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPO_ROOT / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))
import demo  # noqa: E402  (examples/demo.py: the digits and the tokenizer configuration of the demo)


# Paper Table 4 (ImageNet, ViT-VQGAN Base-Base, StyleGAN discriminator, 8192 codes): l2 in 1e-3, throughput in
# training images/s on 128 TPU v4 cores.
PAPER_TABLE4 = {
    "32-d (default)": {"usage": 0.96, "l2": 3.09, "logit_laplace": -2.54, "fid": 1.55, "throughput": 960},
    "32-d, not l2-normalized": {"usage": 0.02, "l2": 5.41, "logit_laplace": -2.20, "fid": 5.44, "throughput": 960},
    "256-d": {"usage": 0.04, "l2": 4.28, "logit_laplace": -2.38, "fid": 3.68, "throughput": 954},
    "16-d": {"usage": 0.95, "l2": 2.96, "logit_laplace": -2.54, "fid": 1.50, "throughput": 960},
    "8-d": {"usage": 0.96, "l2": 2.92, "logit_laplace": -2.55, "fid": 1.52, "throughput": 960},
}
USAGE_GROUP_SIZE = 256
DATASETS = ("digits", "photos", "photos64")


@dataclass(frozen=True)
class Row:
    """One ablation: what changes from the dataset's base configuration and training flags."""

    name: str
    description: str
    paper_row: str | None
    config: dict = field(default_factory=dict)
    flags: tuple = ()
    paper_note: str = "not in Table 4"
    # Trained only when `--rows` names it: references that do not decide the default, left out of the default run to
    # keep it within 45 minutes of 2 cores.
    extra: bool = False


PAPER = ("--quantizer_recipe", "paper")
DEFAULT = ("--quantizer_recipe", "default")
ROTATION, KMEANS = ("--quantizer_gradient", "rotation"), ("--codebook_init", "kmeans")
ENTROPY = ("--codebook_entropy_weight", 0.01)
LINEAR_MAP = PAPER + ("--codebook_map", "linear")
ROWS = (
    # The paper's quantizer (straight-through, free codes, random init), and each remedy for collapse on top of it.
    Row(
        "paper",
        "paper's recipe (`--quantizer_recipe paper`): l2-normalized, 8-d lookup",
        "32-d (default)",
        flags=PAPER,
    ),
    Row("rotation", "paper + rotation trick", None, flags=PAPER + ROTATION),
    Row("kmeans", "paper + k-means init", None, flags=PAPER + KMEANS),
    Row("linear_map", "paper + linear map of frozen codes (SimVQ)", None, flags=LINEAR_MAP),
    Row("entropy", "paper + entropy penalty (weight 0.01)", None, flags=PAPER + ENTROPY),
    Row("linear_map_kmeans", "linear map + k-means init", None, flags=LINEAR_MAP + KMEANS, extra=True),
    # The shipped default (`--quantizer_recipe default`): the linear map with the entropy penalty.
    Row("default", "linear map + entropy penalty: the shipped default", None, flags=DEFAULT),
    # Not a paper row: dead-code restarts, as a reference for how much usage the data allow.
    Row(
        "restarts",
        "paper + dead-code restarts (not in the paper)",
        None,
        flags=PAPER + ("--codebook_restart_steps", 50),
        extra=True,
    ),
    # The paper's own ablations, re-run with the shipped default.
    Row(
        "no_l2",
        "default, without l2 normalization",
        "32-d, not l2-normalized",
        {"use_l2_normalized_codes": False},
        DEFAULT,
    ),
    # The lookup dimension equal to the encoder width: `codebook_dim` is filled in per dataset.
    Row("no_factorization", "default, lookup dim = hidden size", "256-d", {"codebook_dim": None}, DEFAULT),
    Row("dim4", "default, 4-d lookup (half)", "16-d", {"codebook_dim": 4}, DEFAULT),
)


@dataclass(frozen=True)
class Dataset:
    """A data set, the base configuration of its tokenizer and its number of training steps."""

    name: str
    description: str
    config: dict
    steps: int
    batch_size: int = 64


def photo_tiles(tile: int = 32, factors: tuple[float, ...] = (1.0, 0.5)) -> list[np.ndarray]:
    """Non-overlapping `tile`x`tile` RGB tiles of the colour photos in scikit-image and scikit-learn, each photo at
    `factors` of its size (longest side at most 640 pixels)."""
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError(
            "The photo tiles come from scikit-image (`pip install scikit-image`, in the package's `test` extra); "
            "without it, pass `--datasets digits`."
        ) from error
    from sklearn.datasets import load_sample_images

    photos = [getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")]
    photos += [getattr(data, name)() for name in ("hubble_deep_field", "immunohistochemistry", "retina")]
    photos += list(load_sample_images().images)
    tiles = []
    for photo in photos:
        image = PIL.Image.fromarray(photo)
        scale = min(1.0, 640 / max(image.size))
        for factor in (scale * factor for factor in factors):
            size = (round(image.width * factor), round(image.height * factor))
            pixels = np.asarray(image.resize(size, PIL.Image.Resampling.BICUBIC) if size != image.size else image)
            for top in range(0, pixels.shape[0] - tile + 1, tile):
                for left in range(0, pixels.shape[1] - tile + 1, tile):
                    tiles.append(pixels[top : top + tile, left : left + tile])
    return tiles


def write_photos(root: Path, num_validation: int, max_images: int | None, seed: int, tiles: list[np.ndarray]):
    """The tiles as `root/{train,validation}/photo/<index>.png`, split at random (a class folder: `datasets` gives
    images directly in `train/` a label of `None`, which the training script's collate cannot batch)."""
    order = np.random.default_rng(seed).permutation(len(tiles))[:max_images]
    for position, index in enumerate(order):
        split = "validation" if position < num_validation else "train"
        path = root / split / "photo" / f"{index:05d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(tiles[index]).save(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/tokenizer_ablations", help="Where everything is written.")
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS), help="The data sets (see above)."
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        default=[row.name for row in ROWS if not row.extra],
        choices=[row.name for row in ROWS],
        help="The rows to train; default: all but the references `linear_map_kmeans` and `restarts`.",
    )
    parser.add_argument("--digits_steps", type=int, default=1000, help="Training steps on the digits (batch 64).")
    parser.add_argument("--photos_steps", type=int, default=750, help="Training steps on the photo tiles (batch 64).")
    parser.add_argument(
        "--photos64_steps", type=int, default=500, help="Training steps on the 64x64 photo tiles (batch 32)."
    )
    parser.add_argument(
        "--photos64_rows",
        nargs="+",
        default=["paper", "default"],
        help="The rows trained on the 64x64 tiles (each costs about 1.4 photo rows).",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1],
        help="Training seeds of --multi_seed_rows (the first: all rows).",
    )
    parser.add_argument(
        "--multi_seed_rows",
        nargs="+",
        default=["paper", "default"],
        help="Rows trained once per seed of --seeds, on digits and photos: those that decide the default.",
    )
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="Peak learning rate (the paper: 1e-4).")
    parser.add_argument("--validation_steps", type=int, default=50, help="Steps between the usage measurements.")
    parser.add_argument("--jobs", type=int, default=2, help="Trainings run side by side.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each training.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data splits.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: a few steps on a few images.")
    parser.add_argument(
        "--skip_trained",
        action="store_true",
        help="Evaluate, without training again, the runs whose folder in --output_dir holds a finished training "
        "(`train_results.json`), e.g. after an interrupted run; the others train.",
    )
    args = parser.parse_args(argv)
    for name in ("digits_steps", "photos_steps", "photos64_steps", "validation_steps", "jobs", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.quick:
        args.digits_steps = args.photos_steps = args.photos64_steps = 4
        args.validation_steps = 2
    return args


def prepare_data(args, output_dir: Path) -> dict[str, Dataset]:
    """Write the image folders and return the data sets with their base tokenizer configurations."""
    datasets = {}
    if "digits" in args.datasets:
        demo.write_digits(output_dir / "data" / "digits", args.seed)
        config = {name: value for name, value in demo.TOKENIZER_CONFIG.items() if name != "model_type"}
        datasets["digits"] = Dataset(
            "digits", "scikit-learn digits, 16x16 (1437 training / 360 held-out)", config, args.digits_steps
        )
    if "photos" in args.datasets:
        from vit_vqgan_hf.models.vit_vqgan.configuration_vit_vqgan import PRESETS

        max_images = 320 if args.quick else None
        num_validation = 64 if args.quick else 512
        write_photos(output_dir / "data" / "photos", num_validation, max_images, args.seed, photo_tiles())
        num_train = len(list((output_dir / "data" / "photos" / "train").rglob("*.png")))
        description = f"photo tiles, 32x32 ({num_train} training / {num_validation} held-out)"
        datasets["photos"] = Dataset("photos", description, dict(PRESETS["tiny"]), args.photos_steps)
    if "photos64" in args.datasets:
        from vit_vqgan_hf.models.vit_vqgan.configuration_vit_vqgan import PRESETS

        # Another kind of setting: larger tiles, a 16x16 token grid and 1024 codes, so that a conclusion drawn on 8x8
        # grids of 128-256 codes is checked against 4x the tokens per image and 4-8x the codes.
        tiles = photo_tiles(64, factors=(1.0, 0.75, 0.5))
        num_validation = 64 if args.quick else USAGE_GROUP_SIZE
        write_photos(output_dir / "data" / "photos64", num_validation, 320 if args.quick else None, args.seed, tiles)
        num_train = len(list((output_dir / "data" / "photos64" / "train").rglob("*.png")))
        description = (
            f"photo tiles, 64x64, 16x16 tokens, 1024 codes ({num_train} training / {num_validation} held-out)"
        )
        config = {**PRESETS["tiny"], "image_size": 64, "codebook_size": 1024}
        datasets["photos64"] = Dataset("photos64", description, config, args.photos64_steps, batch_size=32)
    return datasets


def row_config(dataset: Dataset, row: Row):
    """The row's tokenizer configuration: the dataset's base one with the row's changes."""
    from vit_vqgan_hf import VitVqganConfig

    changes = dict(row.config)
    if "codebook_dim" in changes and changes["codebook_dim"] is None:
        changes["codebook_dim"] = dataset.config["encoder_hidden_size"]
    return VitVqganConfig(**{**dataset.config, **changes})


def run_name(args, row: Row, seed: int) -> str:
    """The folder and results key of a row trained with `seed`: the row's name for the first seed."""
    return row.name if seed == args.seeds[0] else f"{row.name}_seed{seed}"


def train_command(args, dataset: Dataset, row: Row, seed: int, data_dir: Path, run_dir: Path) -> list[str]:
    """`examples/train_tokenizer.py` for one row: one process, the paper's schedule shape, no restarts."""
    steps = dataset.steps
    flags = [
        "--train_data_dir", data_dir, "--cache_dir", data_dir.parent / "cache", "--model_config", run_dir,
        "--output_dir", run_dir, "--perceptual_weight", 0, "--adversarial_weight", 0,
        "--discriminator_config", "tiny", "--discriminator_start_step", steps + 1,
        "--train_batch_size", dataset.batch_size, "--max_train_steps", steps, "--learning_rate", args.learning_rate,
        "--lr_warmup_steps", max(steps // 10, 1), "--lr_end", args.learning_rate / 2,
        "--validation_steps", args.validation_steps, "--max_validation_samples", USAGE_GROUP_SIZE,
        "--logging_steps", min(args.validation_steps, 25), "--checkpointing_steps", steps + 1,
        "--report_to", "tensorboard", "--seed", seed, *row.flags,
    ]  # fmt: skip
    return [sys.executable, str(EXAMPLES_DIR / "train_tokenizer.py"), *map(str, flags)]


def train(args, dataset: Dataset, row: Row, seed: int, output_dir: Path) -> dict:
    """Train one row in a subprocess (its output in `train.log`); returns its wall time."""
    run_dir = output_dir / dataset.name / run_name(args, row, seed)
    if args.skip_trained and (run_dir / "train_results.json").is_file():
        print(f"[{dataset.name}/{run_dir.name}] trained before, not again", flush=True)
        return {"train_seconds": None}
    shutil.rmtree(run_dir, ignore_errors=True)  # the script refuses to start over an earlier run's checkpoints
    run_dir.mkdir(parents=True)
    row_config(dataset, row).save_pretrained(run_dir)
    command = train_command(args, dataset, row, seed, output_dir / "data" / dataset.name, run_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    with open(run_dir / "train.log", "w") as log:
        returncode = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if returncode:
        raise RuntimeError(f"{run_dir} failed (exit code {returncode}); see {run_dir / 'train.log'}.")
    seconds = time.perf_counter() - start
    print(f"[{dataset.name}/{run_dir.name}] trained in {seconds:.0f} s", flush=True)
    return {"train_seconds": round(seconds, 1)}


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files under `log_dir`, as `name -> [(step, value), ...]`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = {}
    for events in sorted(log_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
    return {tag: sorted(values) for tag, values in scalars.items()}


def latent_spread(latents: torch.Tensor) -> dict:
    """How much of the lookup space the encoder's latents fill: the length of their mean direction (0 when spread
    over the sphere, 1 when all point one way) and the participation ratio of their covariance spectrum (the number of
    dimensions they effectively vary in, at most the lookup dimension)."""
    directions = torch.nn.functional.normalize(latents, dim=-1)
    variances = torch.linalg.svdvals(latents - latents.mean(0)).square()
    return {
        "latent_mean_direction_length": directions.mean(0).norm().item(),
        "latent_effective_dims": (variances.sum().square() / variances.square().sum()).item(),
    }


@torch.no_grad()
def evaluate(run_dir: Path, validation_dir: Path) -> dict:
    """Reconstruction metrics and codebook usage (the paper's per-256-images protocol) on the whole held-out split."""
    from vit_vqgan_hf import VitVqganModel
    from vit_vqgan_hf.evaluation import ImageFolderSet, TokenizerEvaluator
    from vit_vqgan_hf.training.codebook import lookup_latents

    model = VitVqganModel.from_pretrained(run_dir).eval()
    images = ImageFolderSet(validation_dir, model.config.image_size)
    evaluator = TokenizerEvaluator(
        model.config.codebook_size,
        logit_laplace_eps=model.config.logit_laplace_eps,
        usage_group_size=USAGE_GROUP_SIZE,
    )
    latents = []
    for batch in torch.utils.data.DataLoader(images, batch_size=USAGE_GROUP_SIZE):
        pixel_values = batch["images"].float() / 127.5 - 1
        evaluator.update(pixel_values, model(pixel_values))
        latents.append(lookup_latents(model, pixel_values))
    output = evaluator.compute()
    names = ("codebook_usage", "codebook_perplexity", "used_codes", "psnr", "ssim", "l2", "logit_laplace")
    metrics = {name: output["metrics"].get(name) for name in names}
    metrics["usage_groups"] = len(output["codebook_usage"]["group_usages"])
    metrics["codebook_size"] = model.config.codebook_size
    return {**metrics, **latent_spread(torch.cat(latents))}


def collect(args, dataset: Dataset, row: Row, seed: int, output_dir: Path, timing: dict) -> dict:
    """The row's held-out metrics, its usage over training and its training throughput."""
    run_dir = output_dir / dataset.name / run_name(args, row, seed)
    scalars = read_scalars(run_dir / "logs")
    # The first logging window holds the start-up (data loading, first steps): left out of the throughput.
    throughput = [value for _, value in scalars.get("train/images_per_second", [])][1:]
    config = json.loads((run_dir / "config.json").read_text())
    return {
        "row": row.description if seed == args.seeds[0] else f"{row.description} (seed {seed})",
        "seed": seed,
        "quantizer": json.loads((run_dir / "train_results.json").read_text())["quantizer"],
        "paper_row": row.paper_row,
        "paper_note": row.paper_note,
        "codebook_dim": config["codebook_dim"],
        "use_l2_normalized_codes": config["use_l2_normalized_codes"],
        **evaluate(run_dir, output_dir / "data" / dataset.name / "validation"),
        "images_per_second": statistics.median(throughput) if throughput else None,
        "usage_over_steps": scalars.get("validation/codebook_usage", []),
        "psnr_over_steps": scalars.get("validation/psnr", []),
        **timing,
    }


def percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def number(value, digits: int = 2, scale: float = 1.0) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def markdown_table(dataset: Dataset, results: dict) -> str:
    """One dataset's rows, ours beside the paper's Table 4 row they correspond to."""
    lines = [
        f"**{dataset.description}, {dataset.steps} steps of {dataset.batch_size} images**",
        "",
        "| ablation | lookup dim | usage | perplexity | PSNR (dB) | SSIM | l2 (1e-3) | images/s "
        "| latent dims | mean direction "
        "| paper row | paper usage | paper l2 (1e-3) | paper FID | paper images/s |",
        "|" + " --- |" * 15,
    ]
    for result in results.values():
        paper = PAPER_TABLE4.get(result["paper_row"], {})
        size = result["codebook_size"]
        usage = f"{percent(result['codebook_usage'])} ({result['used_codes']}/{size} in all)"
        ours = [
            result["row"], str(result["codebook_dim"]), usage, number(result["codebook_perplexity"], 1),
            number(result["psnr"]), number(result["ssim"], 3), number(result["l2"], 2, 1e3),
            number(result["images_per_second"], 0), number(result["latent_effective_dims"], 1),
            number(result["latent_mean_direction_length"]),
        ]  # fmt: skip
        theirs = [
            result["paper_row"] or result["paper_note"], percent(paper.get("usage")),
            number(paper.get("l2")), number(paper.get("fid")), number(paper.get("throughput"), 0),
        ]  # fmt: skip
        lines.append("| " + " | ".join(ours + theirs) + " |")
    return "\n".join(lines)


def plot_usage(datasets: dict[str, Dataset], results: dict, path: Path):
    """Codebook usage on the first 256 held-out images against the training step, one panel per dataset; a row keeps
    its colour in every panel, and its later seeds are dashed."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    def base_row(result: dict) -> str:  # the row's description without the " (seed N)" of a later seed
        return result["row"].removesuffix(f" (seed {result['seed']})")

    rows = list(dict.fromkeys(base_row(result) for name in datasets for result in results[name].values()))
    colors = {row: colormaps["tab20"](index % 20) for index, row in enumerate(rows)}
    figure = Figure(figsize=(6 * len(datasets), 6))
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    handles = {}
    for axis, (name, dataset) in zip(axes, datasets.items()):
        for result in results[name].values():
            steps, usage = zip(*result["usage_over_steps"]) if result["usage_over_steps"] else ((), ())
            row = base_row(result)
            style = "--" if result["row"] != row else "-"
            (line,) = axis.plot(
                steps, [100 * value for value in usage], style, marker=".", color=colors[row], label=result["row"]
            )
            handles.setdefault(result["row"], line)
        handles.setdefault("paper, default (ImageNet)", axis.axhline(96, color="gray", linestyle=":", linewidth=1))
        axis.set_title(dataset.description, fontsize=9)
        axis.set_xlabel("training step")
        axis.set_ylabel("codes used per 256 held-out images (%)")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=7)
    figure.tight_layout(rect=(0, 0.25, 1, 1))
    figure.savefig(path, dpi=100)


def run_all(args, datasets: dict[str, Dataset], rows: list[Row], output_dir: Path) -> dict:
    """Train every (dataset, row) pair, `--jobs` at a time; evaluate each once all have trained."""
    from vit_vqgan_hf.training.data import load_image_dataset

    for dataset in datasets.values():
        # Prepare each `datasets` cache once, before the trainings share it.
        load_image_dataset(
            train_data_dir=str(output_dir / "data" / dataset.name), split=None, cache_dir=output_dir / "data" / "cache"
        )
    runs = []
    for dataset in datasets.values():
        for row in rows:
            if dataset.name == "photos64" and row.name not in args.photos64_rows:
                continue
            multi_seed = row.name in args.multi_seed_rows and dataset.name != "photos64"
            runs.extend((dataset, row, seed) for seed in (args.seeds if multi_seed else args.seeds[:1]))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        timings = list(pool.map(lambda run: train(args, *run, output_dir), runs))
    results = {name: {} for name in datasets}
    for (dataset, row, seed), timing in zip(runs, timings):
        results[dataset.name][run_name(args, row, seed)] = collect(args, dataset, row, seed, output_dir, timing)
    return results


def main(args):
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.jobs * args.threads)
    start, load_before = time.perf_counter(), os.getloadavg()
    datasets = prepare_data(args, output_dir)
    rows = [row for row in ROWS if row.name in args.rows]
    results = run_all(args, datasets, rows, output_dir)
    seconds = time.perf_counter() - start
    children = os.times()
    run = {
        "wall_seconds": round(seconds, 1),
        "cpu_seconds_of_trainings": round(children.children_user + children.children_system, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpu_cores": os.cpu_count(),
    }
    tables = "\n\n".join(markdown_table(datasets[name], results[name]) for name in datasets)
    header = (
        "Paper Table 4 (ImageNet 256x256, ViT-VQGAN Base-Base, 8192 codes, 500k steps) beside ours: "
        "codebook usage by the paper's protocol (codes used per group of 256 held-out images, averaged; in "
        "parentheses, codes used over the whole held-out split), PSNR, SSIM and l2 on the held-out split, training "
        f"images/s of one process with {args.threads} thread(s), {args.jobs} trainings side by side; how the held-out "
        "latents fill the lookup space (latent dims: participation ratio of their covariance spectrum; mean direction: "
        "length of their mean unit vector, 0 when spread over the sphere, 1 when all point one way). No perceptual or "
        "adversarial loss, no codebook restarts but in the restarts row; peak learning rate "
        f"{args.learning_rate:g}, 10% warm-up, cosine decay to half of it.\n\n"
    )
    (output_dir / "table.md").write_text(header + tables + "\n")
    plot_usage(datasets, results, output_dir / "usage_over_steps.png")
    settings = {name: value for name, value in vars(args).items()}
    payload = {"settings": settings, "run": run, "paper_table4": PAPER_TABLE4, "results": results}
    (output_dir / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(header + tables)
    print(f"\n{sum(map(len, results.values()))} trainings in {seconds / 60:.1f} min (load average {load_before[0]:.1f} "
          f"before, {run['load_average_after'][0]:.1f} after); outputs in {output_dir}")  # fmt: skip


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
