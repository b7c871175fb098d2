"""Tokenizer training speed: images/s, peak memory and share of the matmul peak of one ViT-VQGAN training step.

One step is what `examples/train_tokenizer.py` does per batch once the discriminator is on: the generator loss
(VQ + l2 + logit-Laplace + adversarial) forward and backward with the discriminator frozen, an AdamW step of the
tokenizer, then the discriminator's logistic loss on real and detached reconstructed images, its backward and its
AdamW step. Printed for each preset in float32 and under bf16 autocast:

- images/s of the whole step and of its generator half (forward, backward and optimizer step of the tokenizer);
- peak memory: the growth of the process's peak resident set (`VmHWM`, reset through `/proc/self/clear_refs`)
  over the resident set before the first step, i.e. what the models' gradients, optimizer states and activations
  add on top of the weights;
- the share of the machine's matmul peak (best FLOP/s of a large square matmul of that precision, measured in the
  same run) that the generator half reaches, from its FLOPs counted by `torch.utils.flop_counter.FlopCounterMode`.

    python benchmarks/bench_train_tokenizer.py [--presets tiny ss] [--batch_size 2] [--repeats 1] [--max_seconds 150] [--r1]
        [--weight_zero_presets tiny] [--weight_zero_steps 20]

Then, for `--weight_zero_presets`, what a loss of weight 0 costs in `examples/train_tokenizer.py` itself: the script's
own training step (`TokenizerTrainer.training_step`, forward, backward, gradient guard and AdamW step) with
`--adversarial_weight 0 --perceptual_weight 0` and the discriminator due from step 0, against a step built here
without those parts (the tokenizer, its l2 + logit-Laplace + VQ loss, the same gradient guard and AdamW), timed
alternately on the same batch, best of `--weight_zero_steps`; the ratio should be 1 within noise. The script's step with
the adversarial term on (weight 0.1, the default StyleGAN2 discriminator) shows what it costs when it is on.

The perceptual (LPIPS-VGG) term is left out: its weights are not available offline; with it the step costs one VGG16
forward and backward more per image. `--r1` adds the R1 penalty to every timed step (the script applies it every
`--r1_interval` steps). A preset and precision whose timed steps would take longer than `--max_seconds` at the
measured matmul peak is skipped, with the estimate (bf16 of "ss" on CPUs without bf16 matmul kernels). Absolute
numbers depend on the machine and its load; the project's target is a generator step of "ss" at >= 40% of the measured
fp32 matmul peak.
"""

import argparse
import contextlib
import importlib.util
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.training import (
    VitVqganDiscriminator,
    VitVqganDiscriminatorConfig,
    VitVqganLossWeights,
    discriminator_step_loss,
    generator_loss,
)
from vit_vqgan_hf.training.loop import build_accelerator, clip_and_guard_gradients
from vit_vqgan_hf.utils.errors import command_line_errors


SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_tokenizer.py"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "ss"], help="ViT-VQGAN presets to measure.")
    parser.add_argument("--discriminator", default="stylegan2", help="Discriminator preset (at the model's size).")
    parser.add_argument("--batch_size", type=int, default=2, help="Images per training step.")
    parser.add_argument("--repeats", type=int, default=1, help="Timed steps per preset and precision (best kept).")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--r1", action="store_true", help="Apply the R1 penalty in every timed step.")
    parser.add_argument("--matmul_size", type=int, default=2048, help="Largest side of the peak's square matmul.")
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=150.0,
        help="Skip a preset and precision whose steps would take longer, estimated from its FLOPs and matmul peak.",
    )
    parser.add_argument(
        "--weight_zero_presets", nargs="*", default=["tiny"], help="Presets of the weight-0 comparison (none: skip)."
    )
    parser.add_argument("--weight_zero_steps", type=int, default=20, help="Timed steps of each weight-0 variant.")
    return parser.parse_args()


def precision_context(precision: str):
    if precision == "bf16":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def matmul_peak(dtype: torch.dtype, max_size: int, repeats: int = 3) -> tuple[float, int]:
    """Best FLOP/s of a square matmul (the machine's practical peak for this precision) and the side used: sides
    double from 256 to `max_size` while one product takes under 0.2 s, so a precision without fast kernels (bf16 on
    CPUs without AVX512-BF16 or AMX) is measured in seconds, not minutes."""
    size = 256
    while True:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        start = time.perf_counter()
        a @ b
        if time.perf_counter() - start > 0.2 or 2 * size > max_size:
            break
        size *= 2
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best, size


def reset_peak_memory() -> int | None:
    """Reset the peak resident set of this process and return the current resident set in bytes (None off Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return read_status("VmRSS")
    except OSError:
        return None


def read_status(field: str) -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class TrainingStep:
    """The models, optimizers and losses of one preset; `generator_step` and `discriminator_step` as in the script."""

    def __init__(self, preset: str, discriminator_preset: str):
        self.tokenizer = VitVqganModel(VitVqganConfig.from_preset(preset)).train()
        resolution = self.tokenizer.config.image_size
        discriminator_config = VitVqganDiscriminatorConfig.from_preset(discriminator_preset, image_size=resolution)
        self.discriminator = VitVqganDiscriminator(discriminator_config).train()
        adamw = {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 1e-4}
        self.generator_optimizer = torch.optim.AdamW(self.tokenizer.parameters(), **adamw)
        self.discriminator_optimizer = torch.optim.AdamW(self.discriminator.parameters(), **adamw)
        self.weights = VitVqganLossWeights(1.0, 0.1, 0.0, 0.1)

    @property
    def resolution(self) -> int:
        return self.tokenizer.config.image_size

    def generator_loss_backward(self, pixel_values, precision: str):
        self.discriminator.requires_grad_(False)
        with precision_context(precision):
            output = self.tokenizer(pixel_values)
            loss, _ = generator_loss(
                pixel_values,
                output,
                self.weights,
                discriminator=self.discriminator,
                logit_laplace_eps=self.tokenizer.config.logit_laplace_eps,
            )
        loss.backward()
        self.discriminator.requires_grad_(True)
        return output.reconstruction

    def generator_step(self, pixel_values, precision: str):
        reconstruction = self.generator_loss_backward(pixel_values, precision)
        self.generator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        return reconstruction

    def discriminator_step(self, pixel_values, reconstruction, precision: str, apply_r1: bool):
        with precision_context(precision):
            loss, _ = discriminator_step_loss(self.discriminator, pixel_values, reconstruction, apply_r1, 10.0, 16)
        loss.backward()
        self.discriminator_optimizer.step()
        self.discriminator_optimizer.zero_grad(set_to_none=True)


def generator_flops_per_image(step: TrainingStep) -> float:
    """FLOPs of the generator's forward and backward for one image (the optimizer step is negligible)."""
    pixel_values = torch.rand(1, 3, step.resolution, step.resolution) * 2 - 1
    # The flop counter does not see inside fused attention kernels; count with the math backend instead.
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        step.generator_loss_backward(pixel_values, "fp32")
    step.tokenizer.zero_grad(set_to_none=True)
    step.discriminator.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def measure(step: TrainingStep, batch_size: int, repeats: int, precision: str, apply_r1: bool) -> dict:
    """Best step and generator-half times over `repeats` steps after one warm-up step, and the memory peak."""
    pixel_values = torch.rand(batch_size, 3, step.resolution, step.resolution) * 2 - 1
    baseline = reset_peak_memory()
    total_times, generator_times = [], []
    for index in range(repeats + 1):
        start = time.perf_counter()
        reconstruction = step.generator_step(pixel_values, precision)
        middle = time.perf_counter()
        step.discriminator_step(pixel_values, reconstruction.detach(), precision, apply_r1)
        end = time.perf_counter()
        if index:  # the first step is a warm-up (optimizer states, allocator)
            total_times.append(end - start)
            generator_times.append(middle - start)
    peak = read_status("VmHWM") - baseline if baseline is not None else None
    return {
        "images_per_second": batch_size / min(total_times),
        "generator_images_per_second": batch_size / min(generator_times),
        "peak_memory": peak,
    }


def main(args):
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()} batch={args.batch_size} repeats={args.repeats} r1={args.r1}")
    peaks = {}
    for precision in args.precisions:
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        peaks[precision], size = matmul_peak(dtype, args.matmul_size)
        print(f"matmul peak {precision}: {peaks[precision] / 1e9:.1f} GFLOP/s ({size}x{size})")
    header = f"{'preset':>6} {'precision':>9} {'step img/s':>10} {'gen img/s':>9} {'peak MiB':>8} "
    print(header + f"{'gen GFLOP/img':>13} {'gen % fp32 peak':>15} {'gen % own peak':>14}")
    for preset in args.presets:
        step = TrainingStep(preset, args.discriminator)
        flops = generator_flops_per_image(step)
        for precision in args.precisions:
            # A training step costs about twice the generator's FLOPs; skip what would run for too long.
            estimate = 2 * flops * args.batch_size * (args.repeats + 1) / peaks[precision]
            if estimate > args.max_seconds:
                print(
                    f"{preset:>6} {precision:>9} skipped: {flops / 1e9:.2f} generator GFLOP/img, about {estimate:.0f} s "
                    f"at the {precision} matmul peak (--max_seconds {args.max_seconds:.0f})"
                )
                continue
            result = measure(step, args.batch_size, args.repeats, precision, args.r1)
            achieved = result["generator_images_per_second"] * flops
            memory = "n/a" if result["peak_memory"] is None else f"{result['peak_memory'] / 2**20:.0f}"
            fp32_share = f"{100 * achieved / peaks['fp32']:.1f}%" if "fp32" in peaks else "n/a"
            print(
                f"{preset:>6} {precision:>9} {result['images_per_second']:10.3f} "
                f"{result['generator_images_per_second']:9.3f} {memory:>8} {flops / 1e9:13.2f} {fp32_share:>15} "
                f"{100 * achieved / peaks[precision]:13.1f}%"
            )


def script_step(script, accelerator, preset: str, batch_size: int, adversarial_weight: float, output_dir: str):
    """`train_tokenizer.py`'s own training step for `preset` (`TokenizerTrainer.training_step` at step 0), built by its
    functions, without data."""
    flags = ["--train_data_dir", "unused", "--model_config", preset, "--perceptual_weight", "0"]
    flags += ["--adversarial_weight", str(adversarial_weight), "--discriminator_start_step", "0"]
    flags += ["--max_train_steps", "1000", "--train_batch_size", str(batch_size), "--output_dir", output_dir]
    args = script.parse_args([*flags, "--lr_warmup_steps", "100", "--report_to", "none"])
    config, discriminator_config = script.load_configs(args)
    run = script.resolve_run(args, 1, None, config.image_size, "held-out images")
    torch.manual_seed(0)
    parts = script.prepare_parts(args, run, accelerator, config, discriminator_config, None, None, None, None)
    trainer = script.TokenizerTrainer(args, run, accelerator, parts)
    return lambda batch: trainer.training_step(batch, 0)


def bare_step(accelerator, preset: str):
    """A step built without a discriminator or a perceptual network: the tokenizer's loss, guard and AdamW."""
    torch.manual_seed(0)
    tokenizer = VitVqganModel(VitVqganConfig.from_preset(preset)).train()
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-4)
    weights = VitVqganLossWeights(1.0, 0.1, 0.0, 0.0)

    def step(pixel_values):
        loss, _ = generator_loss(pixel_values, tokenizer(pixel_values), weights, adversarial_active=False)
        loss.backward()
        clip_and_guard_gradients(accelerator, tokenizer)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def compare_weight_zero(args):
    """Step time of the script with the adversarial and perceptual weights at 0, against a step without them."""
    spec = importlib.util.spec_from_file_location("train_tokenizer", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with tempfile.TemporaryDirectory() as output_dir:
        accelerator = build_accelerator(script.parse_args(["--train_data_dir", "unused", "--output_dir", output_dir]))
        for preset in args.weight_zero_presets:
            resolution = VitVqganConfig.from_preset(preset).image_size
            batch = {"pixel_values": torch.rand(args.batch_size, 3, resolution, resolution) * 2 - 1, "skipped": 0}
            variants = {
                "script, weight 0": script_step(script, accelerator, preset, args.batch_size, 0.0, output_dir),
                "built without": bare_step(accelerator, preset),
                "script, adversarial 0.1": script_step(script, accelerator, preset, args.batch_size, 0.1, output_dir),
            }
            times = {name: [] for name in variants}
            for _ in range(args.weight_zero_steps + 1):  # the first round warms up
                for name, variant in variants.items():
                    start = time.perf_counter()
                    variant(batch if name.startswith("script") else batch["pixel_values"])
                    times[name].append(time.perf_counter() - start)
            best = {name: min(values[1:]) for name, values in times.items()}
            print(
                f"{preset}, batch {args.batch_size}: "
                + ", ".join(f"{name} {1000 * seconds:.1f} ms" for name, seconds in best.items())
                + f"; weight 0 / built without = {best['script, weight 0'] / best['built without']:.3f}"
            )


if __name__ == "__main__":
    with command_line_errors():
        arguments = parse_args()
        main(arguments)
        if arguments.weight_zero_presets:
            compare_weight_zero(arguments)
