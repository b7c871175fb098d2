"""Sampling throughput: VimPipeline's token loop against transformers' `GPT2LMHeadModel.generate`, side by side.

Builds a VIM of the given size (default d 512, 8 layers, 8 heads, MLP 2048, 8192 codes + 1000 classes + null,
1024 tokens = a 32x32 grid) with random weights and a GPT-2 of the same width, depth, heads, MLP, vocabulary
(codebook + prefix tokens) and length, then prints, for every batch size:

- sampled tokens/s of `VimPipeline(..., output_type="tokens")` (full softmax, temperature 1) and of
  `GPT2LMHeadModel.generate(do_sample=True, top_k=0)` over the same number of tokens, and their ratio;
- image completion beside it: the bottom half of each image written after its top half (with the class token) is
  prefilled into the key/value cache in one transformer call (`VimPipeline(image=..., num_prefix_rows=grid // 2)`,
  encoding included): sampled tokens/s, and whole/half, the time of a whole image over the time of a completion;
- the cost of classifier-free guidance (`guidance_scale=2`, which doubles the transformer's batch) as a time ratio;
- peak memory during sampling against the weights and the key/value cache (process RSS high-water mark on a CPU,
  `torch.cuda.max_memory_allocated` on a GPU);
- the floor of one token step: the VIM's linear layers alone (every weight matrix read once, for a batch of single
  tokens, with torch's kernels), and the largest ratio any loop over these layers could reach against `generate`
  (generate's time per step / the floor). At small batches on a CPU, a step streams all the weights from memory, so
  this bound, not the loop, decides the ratio.

Then, at batch 1, the cached loop against recomputing the whole prefix at every step (no cache): the no-cache cost is
measured at a few prefix lengths, fitted by `a + b L + c L^2` and summed over all steps (an extrapolation, printed as
such), because running it for 1024 steps takes hours on a CPU.

    python benchmarks/bench_sampling.py [--batch_sizes 1 4 16] [--num_tokens 1024] [--num_threads 2] [--device cpu]
        [--compile] [--cache_implementation static] [--repeats 3] [--cpu_time]

`--compile` compiles the pipeline's transformer (`pipe.transformer.compile(fullgraph=True)`, with
`mode="reduce-overhead"`, i.e. CUDA graphs, on a GPU), which makes the pipeline use the static cache; every batch size
is warmed up (compiled) before it is timed, and `generate` stays uncompiled, as a user calls it by default. The same
run then also times the uncompiled pipeline (preallocated cache) and prints the compiled / uncompiled speed-up. The no-cache
comparison always runs the transformer uncompiled.

On a slow or loaded CPU, `--max_steps N` times only the first N of the `--num_tokens` steps of every sampling run
(the same model, sequence length and cache size; the pipeline is stopped from its step callback and `generate` gets
`max_new_tokens=N`); the tokens/s and ratios are then those of the first N steps, printed as such. Early steps attend
over a shorter prefix, so they are faster than the average step of a full run, for both sides alike. Completions are
timed in full runs only (a completion's steps are the later, longer ones).

Absolute numbers are not comparable across machines or runs; the ratios are the figures to read. On a CPU shared
with other jobs, `--num_threads 1 --cpu_time` times this process's CPU time instead of wall time (time spent waiting
for a core does not count). Every time is the best of `--repeats` (default 3) alternated runs: the pipeline, generate
and the floor (timed over as many steps as a run, 128 at most), and whole images against completions. The project's
targets: pipeline / generate >= 2.0 at every batch size, the pipeline at >= 80% of the bound (`of bound` = floor / the
pipeline's time per step), cached / no-cache >= 20 at 1024 tokens, guidance <= 2.2x, whole/half >= 1.8 (the bottom half
takes half the steps, but its steps attend over longer prefixes and the prefill costs one batched pass over the top
half).
"""

import argparse
import math
import time
from functools import partial

import numpy as np
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from vit_vqgan_hf import VimConfig, VimForCausalLM, VimPipeline, VitVqganConfig, VitVqganModel
from vit_vqgan_hf.utils.errors import command_line_errors


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4, 16], help="Images sampled at once.")
    parser.add_argument("--num_tokens", type=int, default=1024, help="Image tokens per image (a square number).")
    parser.add_argument("--hidden_size", type=int, default=512, help="Width of both transformers.")
    parser.add_argument("--num_layers", type=int, default=8, help="Depth of both transformers.")
    parser.add_argument("--num_heads", type=int, default=8, help="Attention heads.")
    parser.add_argument("--intermediate_size", type=int, default=2048, help="MLP width.")
    parser.add_argument("--codebook_size", type=int, default=8192, help="Image tokens of the vocabulary.")
    parser.add_argument("--num_classes", type=int, default=1000, help="Class tokens of the vocabulary.")
    parser.add_argument(
        "--no_cache_lengths", type=int, default=5, help="Prefix lengths at which the no-cache step cost is measured."
    )
    parser.add_argument("--skip_guidance", action="store_true", help="Do not measure the cost of guidance.")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Alternated runs of the pipeline and generate (and of whole images and completions), best of each.",
    )
    parser.add_argument(
        "--max_steps",
        type=int,
        default=None,
        help="Time only the first N token steps of each sampling run (default: all --num_tokens).",
    )
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument(
        "--compile", action="store_true", help="Compile the pipeline's transformer (CUDA graphs on a GPU)."
    )
    parser.add_argument(
        "--cache_implementation",
        choices=["preallocated", "static"],
        default=None,
        help="The pipeline's key/value cache (default: the pipeline's choice, static when compiled).",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument(
        "--cpu_time",
        action="store_true",
        help="Time with this process's CPU time, not wall time: on a CPU shared with other jobs, waiting for a core "
        "then does not count (memory-bandwidth contention still does). For single-threaded CPU runs.",
    )
    return parser.parse_args()


def synchronize(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak_memory(device: str):
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    # Linux: writing 5 to clear_refs resets the resident-set high-water mark (VmHWM) of the process.
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")
    return resident_memory("VmRSS")


def peak_memory(device: str) -> int:
    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else resident_memory("VmHWM")


def resident_memory(field: str) -> int:
    with open("/proc/self/status") as file:
        line = next(line for line in file if line.startswith(field))
    return int(line.split()[1]) * 1024


# Wall time, or this process's CPU time from `use_cpu_time()` on (`--cpu_time`).
_clock = time.perf_counter


def use_cpu_time():
    """Time with this process's CPU time (user + system) from now on."""
    global _clock
    _clock = time.process_time


def timed(function, device: str):
    """Seconds of one call, and the peak memory above the memory at its start."""
    synchronize(device)
    start_memory = reset_peak_memory(device)
    start = _clock()
    function()
    synchronize(device)
    return _clock() - start, peak_memory(device) - start_memory


def build_pipeline(args, grid: int, device: str) -> VimPipeline:
    torch.manual_seed(0)
    transformer = VimForCausalLM(
        VimConfig(
            codebook_size=args.codebook_size,
            num_classes=args.num_classes,
            token_grid_size=grid,
            hidden_size=args.hidden_size,
            num_hidden_layers=args.num_layers,
            num_attention_heads=args.num_heads,
            intermediate_size=args.intermediate_size,
            class_dropout_prob=0.1,  # random weights either way; this lets the pipeline run guidance
        )
    )
    # The tokenizer only has to match the codebook and the grid: "tokens" output never decodes.
    tokenizer = VitVqganModel(
        VitVqganConfig.from_preset("tiny", image_size=4 * grid, patch_size=4, codebook_size=args.codebook_size)
    )
    pipeline = VimPipeline(vqgan=tokenizer.eval(), transformer=transformer.eval()).to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def build_gpt2(args, device: str) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=args.codebook_size + args.num_classes + 1,
        n_positions=args.num_tokens + 1,
        n_embd=args.hidden_size,
        n_layer=args.num_layers,
        n_head=args.num_heads,
        n_inner=args.intermediate_size,
        bos_token_id=None,
        eos_token_id=None,
    )
    return GPT2LMHeadModel(config).to(device).eval()


class StopSampling(Exception):
    """Raised from the pipeline's step callback to end a run after `--max_steps` steps."""


def step_callback(max_steps: int | None, times: list | None):
    """Ends a run after token index `max_steps - 1`; appends the time the first sampled token is done to `times`."""

    def callback(pipeline, step, timestep, callback_kwargs):
        if times is not None and len(times) == 1:
            synchronize(str(pipeline.device))
            times.append(_clock())
        if max_steps and step + 1 >= max_steps:
            raise StopSampling
        return {}

    return callback if max_steps or times is not None else None


def sample_with_pipeline(
    pipeline,
    batch_size: int,
    guidance_scale: float = 1.0,
    max_steps=None,
    cache=None,
    image=None,
    times=None,
):
    """
    Whole images, or with `image` completions of its bottom half; `max_steps` counts token indices, kept or not, and
    `times` (a list) receives the times of the call's start and of its first sampled token (for a completion: after
    encoding and the prefill).
    """
    generator = torch.Generator().manual_seed(0)
    if times is not None:
        times.append(_clock())
    callback = step_callback(max_steps, times)
    try:
        return pipeline(
            class_labels=[1] * batch_size,
            guidance_scale=guidance_scale,
            generator=generator,
            output_type="tokens",
            callback_on_step_end=callback,
            cache_implementation=cache,
            image=image,
        ).images
    except StopSampling:
        return None


@torch.no_grad()
def sample_with_generate(model, args, batch_size: int, device: str, num_tokens=None):
    num_tokens = num_tokens or args.num_tokens
    prefix = torch.full((batch_size, 1), args.codebook_size + 1, device=device)
    # top_k=0: the full softmax, like the pipeline (GenerationConfig's default is top_k=50).
    return model.generate(
        prefix, do_sample=True, top_k=0, max_new_tokens=num_tokens, min_new_tokens=num_tokens, pad_token_id=0
    )


@torch.no_grad()
def linear_floor_seconds(model: nn.Module, batch_size: int, device: str, num_steps: int) -> float:
    """
    Seconds per token step of the matrix products alone: every `nn.Linear` applied once to `batch_size` tokens,
    `num_steps` times over (a span of time like a sampling run's, so that the best of a few floors is not luckier than
    the best of as many runs).
    """
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    inputs = [torch.randn(batch_size, 1, linear.in_features, device=device, dtype=model.dtype) for linear in linears]

    def run_all():
        for _ in range(num_steps):
            for linear, hidden_states in zip(linears, inputs):
                linear(hidden_states)

    return timed(run_all, device)[0] / num_steps


@torch.no_grad()
def no_cache_total_seconds(pipeline, args, device: str) -> tuple[float, list[tuple[int, float]]]:
    """Estimated seconds of a no-cache loop at batch 1: step costs at a few lengths, fitted and summed."""
    transformer = pipeline.transformer
    lengths = np.unique(np.linspace(1, args.num_tokens, args.no_cache_lengths).round().astype(int))
    measured = []
    for length in lengths:
        input_ids = torch.randint(0, args.codebook_size, (1, int(length)), device=device)
        input_ids[:, 0] = transformer.config.class_token_id(1)
        # `forward` runs the module's eager code even when `--compile` compiled its calls.
        transformer.forward(input_ids, use_cache=False, logits_to_keep=1)  # warm-up at this shape
        seconds = min(
            timed(partial(transformer.forward, input_ids, use_cache=False, logits_to_keep=1), device)[0]
            for _ in range(2)
        )
        measured.append((int(length), seconds))
    x, y = np.array(measured, dtype=float).T
    coefficients = np.polyfit(x, y, deg=min(2, len(x) - 1))
    total = float(np.polyval(coefficients, np.arange(1, args.num_tokens + 1)).sum())
    return total, measured


def build_models(args):
    """The pipeline (compiled with `--compile`) and the GPT-2 of the same shape, on `--device`."""
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    grid = math.isqrt(args.num_tokens)
    if grid * grid != args.num_tokens:
        raise ValueError(f"--num_tokens must be a square number, got {args.num_tokens}.")
    pipeline = build_pipeline(args, grid, args.device)
    if args.compile:
        mode = "reduce-overhead" if args.device.startswith("cuda") else "default"
        pipeline.transformer.compile(mode=mode, fullgraph=True)
    return pipeline, build_gpt2(args, args.device)


def print_header(args, pipeline, steps: int):
    config = pipeline.transformer.config
    parameter_bytes = sum(p.numel() * p.element_size() for p in pipeline.transformer.parameters())
    print(
        f"threads={torch.get_num_threads()} device={args.device} tokens={args.num_tokens} "
        f"(grid {pipeline.token_grid_size}) d={args.hidden_size} layers={args.num_layers} heads={args.num_heads} "
        f"mlp={args.intermediate_size} vocabulary={config.vocab_size} VIM weights={parameter_bytes / 2**20:.0f} MiB "
        f"compiled={args.compile} cache={args.cache_implementation or ('static' if args.compile else 'preallocated')}"
    )
    if steps < args.num_tokens:
        print(
            f"PARTIAL RUNS (--max_steps {steps}): every sampling run below is timed over its first {steps} of "
            f"{args.num_tokens} token steps; tok/s and ratios are those of the first {steps} steps (no completions)."
        )
    header = f"{'batch':>5} {'pipeline tok/s':>14} {'generate tok/s':>14} {'ratio':>6} "
    header += f"{'completion tok/s':>16} {'whole/half x':>12} {'prefill s':>9} "
    if args.compile:
        header += f"{'uncompiled tok/s':>16} {'compile x':>9} "
    header += f"{'guidance x':>10} {'KV cache MiB':>12} {'pipeline peak MiB':>17} {'generate peak MiB':>17} "
    header += f"{'floor ms/step':>13} {'ratio bound':>11} {'of bound':>8}"
    print(header)


def time_completions(args, whole_seconds: float, sample_whole, complete) -> tuple[float, float, float]:
    """
    The best of `--repeats` completion runs, each after a whole-image run (the first whole run is the one timed
    already), so that both sides meet the same machine; returns the best whole and completion seconds and the
    completion's time up to its first sampled token.
    """
    completion_seconds = prefill_seconds = math.inf
    for repeat in range(args.repeats):
        if repeat:
            whole_seconds = min(whole_seconds, timed(sample_whole, args.device)[0])
        times = []
        seconds, _ = timed(partial(complete, times=times), args.device)
        if seconds < completion_seconds:
            completion_seconds, prefill_seconds = seconds, times[1] - times[0]
    return whole_seconds, completion_seconds, prefill_seconds


def measure_batch_size(args, pipeline, gpt2, batch_size: int, steps: int) -> float:
    """Time every sampling variant at one batch size, side by side, and print its row; returns the pipeline's time."""
    device, cache = args.device, args.cache_implementation
    tokens = batch_size * steps
    # Images to complete: random pixels at the tokenizer's size (the transformer's weights are random too).
    size = pipeline.vqgan.config.image_size
    image = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0), device=device) * 2 - 1
    complete = partial(sample_with_pipeline, pipeline, batch_size, cache=cache, image=image)
    # Two steps at this batch size first: compilation (with --compile) and first-call costs stay out of the timings.
    for guidance_scale in (1.0,) if args.skip_guidance else (1.0, 2.0):
        sample_with_pipeline(pipeline, batch_size, guidance_scale, max_steps=2, cache=cache)
    complete(max_steps=pipeline.token_grid_size // 2 * pipeline.token_grid_size + 2)
    sample_with_generate(gpt2, args, batch_size, device, num_tokens=2)
    floor_steps = min(steps, 128)
    linear_floor_seconds(pipeline.transformer, batch_size, device, num_steps=1)  # warm-up
    # Alternated runs, the best of each: a shared machine slows every side alike.
    pipeline_seconds = generate_seconds = floor_seconds = math.inf
    for _ in range(args.repeats):
        seconds = linear_floor_seconds(pipeline.transformer, batch_size, device, floor_steps)
        floor_seconds = min(floor_seconds, seconds)
        seconds, pipeline_peak = timed(
            partial(sample_with_pipeline, pipeline, batch_size, max_steps=steps, cache=cache), device
        )
        pipeline_seconds = min(pipeline_seconds, seconds)
        seconds, generate_peak = timed(
            partial(sample_with_generate, gpt2, args, batch_size, device, num_tokens=steps), device
        )
        generate_seconds = min(generate_seconds, seconds)
    completion = f"{'-':>16} {'-':>12} {'-':>9} "
    if steps == args.num_tokens:  # the bottom half of each image, after the one-call prefill of the top half
        whole = partial(sample_with_pipeline, pipeline, batch_size, cache=cache)
        whole_seconds, completion_seconds, prefill_seconds = time_completions(args, pipeline_seconds, whole, complete)
        sampled = batch_size * (args.num_tokens - pipeline.token_grid_size // 2 * pipeline.token_grid_size)
        completion = f"{sampled / completion_seconds:16.1f} {whole_seconds / completion_seconds:12.2f} "
        completion += f"{prefill_seconds:9.2f} "
    uncompiled = ""
    if args.compile:
        with torch.compiler.set_stance("force_eager"):  # the module's own code, as without --compile
            uncompiled_seconds, _ = timed(
                partial(sample_with_pipeline, pipeline, batch_size, max_steps=steps, cache="preallocated"), device
            )
        uncompiled = f"{tokens / uncompiled_seconds:16.1f} {uncompiled_seconds / pipeline_seconds:9.2f} "
    guidance = "-"
    if not args.skip_guidance:
        guided_seconds, _ = timed(
            partial(sample_with_pipeline, pipeline, batch_size, 2.0, max_steps=steps, cache=cache), device
        )
        guidance = f"{guided_seconds / pipeline_seconds:.2f}"
    # Keys and values of every layer for every position, in the model's dtype.
    cache_bytes = 2 * args.num_layers * batch_size * pipeline.transformer.config.max_position_embeddings
    cache_bytes *= args.hidden_size * pipeline.transformer.dtype.itemsize
    print(
        f"{batch_size:>5} {tokens / pipeline_seconds:14.1f} {tokens / generate_seconds:14.1f} "
        f"{generate_seconds / pipeline_seconds:6.2f} {completion}{uncompiled}{guidance:>10} "
        f"{cache_bytes / 2**20:12.1f} {pipeline_peak / 2**20:17.1f} {generate_peak / 2**20:17.1f} "
        f"{1000 * floor_seconds:13.2f} {generate_seconds / steps / floor_seconds:11.2f} "
        f"{floor_seconds * steps / pipeline_seconds:8.0%}"
    )
    return pipeline_seconds


def main(args):
    if args.cpu_time:
        use_cpu_time()
    pipeline, gpt2 = build_models(args)
    steps = min(args.max_steps or args.num_tokens, args.num_tokens)
    print_header(args, pipeline, steps)
    cached_seconds_batch_1 = None
    for batch_size in args.batch_sizes:
        pipeline_seconds = measure_batch_size(args, pipeline, gpt2, batch_size, steps)
        if batch_size == 1:
            cached_seconds_batch_1 = pipeline_seconds
    print(
        "completion = the bottom half of each image after its top half (and the class token) are prefilled into the "
        "key/value cache in one call, encoding included; completion tok/s counts the sampled tokens; whole/half = "
        f"time of a whole image / time of a completion, the best of {args.repeats} alternated runs each; prefill = "
        "the completion's time up to its first sampled token (encoding, the one-call prefill and one step)."
    )
    print("peak = memory above the weights (already loaded) during one sampling call; KV cache = 2 x layers x batch x")
    print(
        "(tokens + 1) x d x 4 bytes (twice that with guidance). On a CPU the peak is the process's resident-set high-water mark."
    )
    print(
        "floor = the VIM's linear layers alone for one token step (all weights read once); ratio bound = generate's time "
        "per step / floor, the largest ratio any sampling loop could reach with torch's matrix kernels; of bound = "
        "ratio / ratio bound = floor / the pipeline's time per step."
    )

    if cached_seconds_batch_1 is None or steps < args.num_tokens:
        # The speed-up compares whole loops: time a full cached run at batch 1.
        cache = args.cache_implementation
        cached_seconds_batch_1, _ = timed(partial(sample_with_pipeline, pipeline, 1, cache=cache), args.device)
    total, measured = no_cache_total_seconds(pipeline, args, args.device)
    steps = ", ".join(f"L={length}: {1000 * seconds:.1f} ms" for length, seconds in measured)
    print(f"no-cache step cost at batch 1 (measured): {steps}")
    print(
        f"no-cache loop over {args.num_tokens} tokens (quadratic fit of those, summed; extrapolated): {total:.1f} s; "
        f"cached pipeline loop (measured): {cached_seconds_batch_1:.1f} s; speed-up {total / cached_seconds_batch_1:.1f}x"
    )


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
