"""What "watch it generate" costs: sampled tokens/s of `VimPipeline` alone against the app's streaming
(examples/app: previews of the tokens so far decoded from `callback_on_step_end`, handed to the request's thread,
masked, and PNG-encoded as the page's gallery does), measured side by side in one process, interleaved. The app makes
no preview in the last 0.1 s of a generation (it would not stay on screen), so small batches of tiny models get one
preview or none.

Both run the pipeline on a worker thread, as the app does, with the same model, batch and generators, so the only
difference is the streaming. Printed per model and batch: tokens per wall-clock second (best run and median) and
per CPU second of the whole process (all threads: sampling, previews, the request's thread), their ratios to the
pipeline alone (the target: streaming costs at most 10%, ratio >= 0.90), the previews made and the time to the first
update shown; and, for reference, a preview every token row (a fixed interval that ignores the cost). On a machine
shared with other work the wall-clock figures swing by more than the streaming costs; the CPU-time ratio, with
`--threads 1` (no spinning worker threads), is the stable one.

    python benchmarks/bench_app_streaming.py [--models demo medium] [--batch_sizes 4 16] [--repeats 15] [--threads 2]
        [--pipeline PATH]

- `demo`: random weights of `make demo`'s sizes (examples/demo.py: 16x16 images, patch 2: 8x8 = 64 tokens; VIM d 128,
  4 layers);
- `medium`: a larger random model (128x128 images, patch 8: 16x16 = 256 tokens of 1024 codes; tokenizer d 256, 4+4
  layers; VIM d 512, 8 layers), where a decode costs far more than a token step;
- `--pipeline PATH`: a saved pipeline as well (e.g. outputs/demo/pipeline, the trained demo).

Absolute numbers vary with the machine and its load; the ratio is the figure to read.
"""

import argparse
import io
import statistics
import sys
import threading
import time
from pathlib import Path

import torch


EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
sys.path[:0] = [str(EXAMPLES_DIR / "app"), str(EXAMPLES_DIR)]

from vim_app.generation import check_request, stream_generation  # noqa: E402

import demo  # noqa: E402  (examples/demo.py: the sizes `make demo` trains)
from vit_vqgan_hf import VimConfig, VimForCausalLM, VimPipeline, VitVqganConfig, VitVqganModel  # noqa: E402
from vit_vqgan_hf.utils.errors import command_line_errors  # noqa: E402


def without_model_type(config: dict) -> dict:
    return {key: value for key, value in config.items() if key != "model_type"}


MODELS = {
    "demo": (without_model_type(demo.TOKENIZER_CONFIG), without_model_type(demo.VIM_CONFIG)),
    "medium": (
        {"image_size": 128, "patch_size": 8, "codebook_size": 1024, "codebook_dim": 32, "encoder_hidden_size": 256,
         "encoder_num_hidden_layers": 4, "encoder_num_attention_heads": 4, "encoder_intermediate_size": 1024,
         "decoder_hidden_size": 256, "decoder_num_hidden_layers": 4, "decoder_num_attention_heads": 4,
         "decoder_intermediate_size": 1024},
        {"hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8, "intermediate_size": 2048,
         "class_dropout_prob": 0.1},
    ),
}  # fmt: skip


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["demo", "medium"], choices=sorted(MODELS))
    parser.add_argument("--pipeline", default=None, help="A saved VimPipeline to measure as well.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[4, 16], help="Images per request.")
    parser.add_argument("--repeats", type=int, default=15, help="Timed runs of each, interleaved (after a warm-up).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    return parser.parse_args()


def random_pipeline(name: str) -> VimPipeline:
    tokenizer_sizes, vim_sizes = MODELS[name]
    torch.manual_seed(0)
    tokenizer = VitVqganModel(VitVqganConfig.from_preset("tiny", **tokenizer_sizes)).eval()
    grid = tokenizer_sizes["image_size"] // tokenizer_sizes["patch_size"]
    vim_config = VimConfig.from_preset(
        "tiny", codebook_size=tokenizer_sizes["codebook_size"], token_grid_size=grid, num_classes=10, **vim_sizes,
    )  # fmt: skip
    return VimPipeline(vqgan=tokenizer, transformer=VimForCausalLM(vim_config).eval())


def on_worker_thread(function):
    """Run `function` on a new thread, as the app runs the pipeline, and return its result."""
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("value", function()))
    worker.start()
    worker.join()
    return result["value"]


def encode_like_the_gallery(images) -> None:
    """What the page's gallery does with each update: one PNG per image."""
    for image in images:
        image.save(io.BytesIO(), format="png")


def run_alone(pipeline, request) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    on_worker_thread(lambda: pipeline(**request.pipeline_kwargs()))
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def run_streaming(pipeline, request, preview_every) -> dict:
    """Wall and CPU seconds, the previews made, and the seconds to the first update shown."""
    wall, cpu, first, previews = time.perf_counter(), time.process_time(), None, 0
    for update in stream_generation(pipeline, request, threading.Event(), preview_every=preview_every):
        first = first or time.perf_counter() - wall
        encode_like_the_gallery(update.images)
        previews = update.num_previews
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "previews": previews, "first": first}


def measure(name: str, pipeline: VimPipeline, batch_size: int, args) -> float:
    pipeline.set_progress_bar_config(disable=True)
    request = check_request(pipeline, "0", batch_size, 0, 1.0, 1.0, 0, 1.0, max_images=batch_size)
    grid = pipeline.token_grid_size
    tokens = batch_size * grid * grid
    arms = {"alone": lambda: run_alone(pipeline, request)}
    arms["streaming (app)"] = lambda: run_streaming(pipeline, request, None)
    arms["preview every row"] = lambda: run_streaming(pipeline, request, grid)
    runs = {label: [] for label in arms}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for label, run in arms.items():
            result = run()
            if repeat:
                runs[label].append(result)

    def rate(label, key, pick):
        return tokens / pick(result[key] for result in runs[label])

    print(f"\n{name}: batch {batch_size}, {grid}x{grid} tokens, {args.repeats} runs each")
    print("  tokens/s per wall second (best, median) and per CPU second of the process (median), ratios to alone")
    for label in arms:
        line = f"  {label:<18} wall {rate(label, 'wall', min):8.1f} {rate(label, 'wall', statistics.median):8.1f}"
        line += f"  cpu {rate(label, 'cpu', statistics.median):8.1f}"
        if label != "alone":
            ratios = [rate(label, key, pick) / rate("alone", key, pick) for key, pick in
                      (("wall", min), ("wall", statistics.median), ("cpu", statistics.median))]  # fmt: skip
            previews = statistics.median(result["previews"] for result in runs[label])
            first = statistics.median(result["first"] for result in runs[label])
            line += f"  ratios {ratios[0]:.3f} {ratios[1]:.3f} {ratios[2]:.3f}  previews {previews:.0f}"
            line += f"  first update {first:.2f} s"
        print(line)
    return rate("streaming (app)", "cpu", statistics.median) / rate("alone", "cpu", statistics.median)


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    pipelines = {name: random_pipeline(name) for name in args.models}
    if args.pipeline:
        pipelines[args.pipeline] = VimPipeline.from_pretrained(args.pipeline)
    ratios = {
        f"{name} batch {batch_size}": measure(name, pipeline, batch_size, args)
        for name, pipeline in pipelines.items()
        for batch_size in args.batch_sizes
    }
    print(
        "\nstreaming / alone, tokens per CPU second (target >= 0.90): "
        + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
    )


if __name__ == "__main__":
    with command_line_errors():
        main()
