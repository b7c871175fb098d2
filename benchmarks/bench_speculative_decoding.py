# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Speculative Jacobi decoding against sequential decoding, side by side, on a trained VIM pipeline.

    python benchmarks/bench_speculative_decoding.py --pipeline outputs/demo/pipeline [--batch_sizes 1 4 16]
        [--windows 4 8 16] [--repeats 3] [--num_threads 2] [--device cpu] [--compile] [--guidance_scale 2]
        [--digits_accuracy 50]

Random weights say nothing about acceptance: pass a trained pipeline (`make demo` writes one). For every batch size,
the sequential loop and each window of `VimPipeline(..., decoding="speculative_jacobi", jacobi_window=W)` sample the
same classes with the same per-image seeds, alternated `--repeats` times so that a shared machine slows both alike;
printed per row (a markdown table):

- calls: transformer calls per batch (the batch waits for its slowest image);
- tokens/call: sampled tokens per call, averaged over images, each counted until its own last token (what one image
  alone would get);
- seconds: the median wall-clock time of a batch, and the speed-up, sequential time / this time, from the medians;
- call cost: the time of one call (seconds / calls) over that of one sequential step. The speed-up is the calls saved
  over this cost, so it shows what limits a decoding on the machine: where a call of a window costs what a one-token
  step does (the weights streamed once), the speed-up is the calls saved; where its matrix products grow with its
  tokens, or the acceptance bookkeeping weighs, less.

`--digits_accuracy N` (the digits demo's pipeline only) also samples N images per class with each decoding, for the
seeds `--seed` and `--seed + 1`, and prints the share that the demo's classifier (an RBF SVM on the real training
digits) assigns to the requested class: the two decodings follow one distribution, so the accuracies should agree
within sampling noise.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.utils.errors import command_line_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="A trained VimPipeline folder.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4, 16], help="Images sampled at once.")
    parser.add_argument("--windows", type=int, nargs="+", default=[8], help="Speculative windows to measure.")
    parser.add_argument(
        "--branches",
        type=int,
        nargs="+",
        default=[0, 7],
        help="Branches of the first draft to measure with every window (`jacobi_branches`; 0: plain speculative "
        "Jacobi decoding, the pipeline's default).",
    )
    parser.add_argument("--repeats", type=int, default=3, help="Alternated runs of every decoding per batch size.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (the paper's: 1).")
    parser.add_argument("--top_k", type=int, default=None, help="Top-k sampling (default: the full softmax).")
    parser.add_argument(
        "--guidance_scale",
        type=float,
        default=1.0,
        help="Classifier-free guidance (default 1: none, the paper's sampling; the digits demo's guided samples use 2).",
    )
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument(
        "--compile", action="store_true", help="Compile the transformer (static cache; CUDA graphs on a GPU)."
    )
    parser.add_argument(
        "--digits_accuracy", type=int, default=0, help="Samples per class for the digits demo's class accuracy."
    )
    parser.add_argument("--seed", type=int, default=0, help="Base seed of the samples.")
    return parser.parse_args(argv)


def synchronize(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class CallCounter:
    """Counts the transformer's calls (a forward pre-hook) and, from the step callback's `num_tokens`, the call at
    which each image got its last token."""

    def __init__(self, pipeline: VimPipeline):
        self.pipeline = pipeline
        self.calls = 0
        self.hook = pipeline.transformer.register_forward_pre_hook(self.count)

    def count(self, module, args, kwargs=None):
        self.calls += 1

    def reset(self):
        self.calls, self.finished_at = 0, None

    def callback(self, pipeline, step, timestep, callback_kwargs):
        num_tokens = callback_kwargs["num_tokens"]
        done = num_tokens >= pipeline.num_image_tokens
        if self.finished_at is None:
            self.finished_at = torch.zeros_like(num_tokens)
        self.finished_at = torch.where(done & (self.finished_at == 0), self.calls, self.finished_at)
        return {}


def sample(pipeline, counter: CallCounter, batch_size: int, seed: int, args, decoding: tuple):
    """One timed batch of a `(window, branches)` decoding (`()`: sequential): seconds, transformer calls, and the
    tokens per call of each image."""
    num_classes = max(pipeline.transformer.config.num_classes, 1)
    class_labels = [index % num_classes for index in range(batch_size)]
    generator = [torch.Generator().manual_seed(seed + index) for index in range(batch_size)]
    decoding = decoding_arguments(decoding)
    counter.reset()
    synchronize(args.device)
    start = time.perf_counter()
    pipeline(
        class_labels=class_labels if pipeline.transformer.config.num_classes else None,
        num_images_per_label=1 if pipeline.transformer.config.num_classes else batch_size,
        generator=generator,
        temperature=args.temperature,
        top_k=args.top_k,
        guidance_scale=args.guidance_scale,
        output_type="tokens",
        callback_on_step_end=counter.callback,
        callback_on_step_end_tensor_inputs=["num_tokens"],
        **decoding,
    )
    synchronize(args.device)
    seconds = time.perf_counter() - start
    tokens_per_call = pipeline.num_image_tokens / counter.finished_at.float()
    return seconds, counter.calls, float(tokens_per_call.mean())


def decoding_arguments(decoding: tuple) -> dict:
    """The pipeline's arguments of a `(window, branches)` decoding, `()` for sequential decoding."""
    if not decoding:
        return {}
    window, branches = decoding
    return {"decoding": "speculative_jacobi", "jacobi_window": window, "jacobi_branches": branches}


def decoding_name(decoding: tuple) -> str:
    if not decoding:
        return "sequential"
    window, branches = decoding
    return f"speculative_jacobi, window {window}, {branches} branches"


def measure(pipeline, args) -> list[dict]:
    counter = CallCounter(pipeline)
    # Branches need a window of 3 or more (a second draft).
    speculative = [(window, branches) for window in args.windows for branches in args.branches]
    decodings = [(), *dict.fromkeys((window, branches if window >= 3 else 0) for window, branches in speculative)]
    rows = []
    for batch_size in args.batch_sizes:
        for decoding in decodings:  # warm-up (and compilation) of every decoding at this batch size
            sample(pipeline, counter, batch_size, args.seed, args, decoding)
        results = {decoding: [] for decoding in decodings}
        for repeat in range(args.repeats):
            for decoding in decodings:
                results[decoding].append(
                    sample(pipeline, counter, batch_size, args.seed + 1000 * repeat, args, decoding)
                )
        sequential = statistics.median(seconds for seconds, _, _ in results[()])
        sequential_step = sequential / statistics.mean(calls for _, calls, _ in results[()])
        for decoding in decodings:
            seconds = statistics.median(result[0] for result in results[decoding])
            calls = statistics.mean(result[1] for result in results[decoding])
            rows.append(
                {
                    "batch": batch_size,
                    "decoding": decoding_name(decoding),
                    "calls": calls,
                    "tokens_per_call": statistics.mean(result[2] for result in results[decoding]),
                    "seconds": seconds,
                    "speedup": sequential / seconds,
                    "call_cost": seconds / calls / sequential_step,
                }
            )
            row = rows[-1]
            print(
                f"| {row['batch']} | {row['decoding']} | {row['calls']:.1f} | {row['tokens_per_call']:.2f} | "
                f"{row['seconds']:.3f} | {row['speedup']:.2f} | {row['call_cost']:.2f} |",
                flush=True,
            )
    counter.hook.remove()
    return rows


def digits_accuracy(args):
    """Class accuracy of samples of the digits demo's pipeline, sequential and speculative, for two seeds."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import demo  # examples/demo.py: the digits, and its classifier and scoring of the samples

    with tempfile.TemporaryDirectory() as folder:
        classifier, _ = demo.fit_classifier(demo.write_digits(Path(folder), args.seed))
        for seed in (args.seed, args.seed + 1):
            speculative = decoding_arguments((args.windows[0], args.branches[-1]))
            for decoding in ({}, speculative):
                start = time.perf_counter()
                image_path = Path(folder) / "samples.png"
                score = demo.sample_and_score(
                    args.pipeline, classifier, args.digits_accuracy, seed, image_path, **decoding
                )
                print(
                    f"seed {seed}, {decoding.get('decoding', 'sequential')}: class accuracy "
                    f"{100 * score['class_accuracy']:.1f}% of {10 * args.digits_accuracy} samples "
                    f"({time.perf_counter() - start:.1f} s)",
                    flush=True,
                )


def main(args):
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    pipeline = VimPipeline.from_pretrained(args.pipeline).to(args.device)
    pipeline.set_progress_bar_config(disable=True)
    if args.compile:
        mode = "reduce-overhead" if args.device.startswith("cuda") else "default"
        pipeline.transformer.compile(mode=mode, fullgraph=True)
    config = pipeline.transformer.config
    print(
        f"pipeline={args.pipeline} grid={config.token_grid_size}x{config.token_grid_size} codes={config.codebook_size} "
        f"d={config.hidden_size} layers={config.num_hidden_layers} threads={torch.get_num_threads()} "
        f"device={args.device} compiled={args.compile} temperature={args.temperature} top_k={args.top_k} "
        f"guidance_scale={args.guidance_scale} repeats={args.repeats}"
    )
    print(
        "| batch | decoding | calls per batch | tokens per call | seconds per batch | speed-up "
        "| call cost (x a sequential step) |"
    )
    print("|---|---|---|---|---|---|---|")
    measure(pipeline, args)
    if args.digits_accuracy:
        digits_accuracy(args)


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
