"""Encode speed with the codebook as a learned linear map of frozen codes (`use_codebook_linear_map`, SimVQ) against
plain codes, measured side by side in one process.

The map is kept as a layer rather than folded into plain codes on save, so every encode multiplies the frozen codes
by it (`codebook_size x codebook_dim x codebook_dim` multiply-adds, 8.4M for the paper's 8192 x 32) before the lookup.
This prints images/s of `encode` for both and their ratio; the weights are the same but for the map.

    python benchmarks/bench_codebook_map.py [--preset ss] [--batch_size 2] [--repeats 5] [--device cpu]
"""

import argparse
import time

import torch

from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.utils.errors import command_line_errors


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ss", help="ViT-VQGAN preset to measure.")
    parser.add_argument("--batch_size", type=int, default=2, help="Images per encode call.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed calls per model, interleaved.")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    args = parser.parse_args()
    if args.batch_size < 1 or args.repeats < 1:
        parser.error("--batch_size and --repeats must be at least 1.")
    return args


def encode_seconds(model: VitVqganModel, pixel_values: torch.Tensor) -> float:
    if pixel_values.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.encode(pixel_values)
    if pixel_values.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@torch.no_grad()
def main(args):
    torch.manual_seed(0)
    models = {"plain codes": VitVqganModel(VitVqganConfig.from_preset(args.preset)).eval().to(args.device)}
    mapped = VitVqganModel(VitVqganConfig.from_preset(args.preset, use_codebook_linear_map=True))
    mapped.load_state_dict(models["plain codes"].state_dict(), strict=False)  # all but the map
    models["linear map (SimVQ)"] = mapped.eval().to(args.device)
    size = models["plain codes"].config.image_size
    pixel_values = torch.rand(args.batch_size, 3, size, size, device=args.device) * 2 - 1
    times = {name: [] for name in models}
    for model in models.values():
        encode_seconds(model, pixel_values)  # warm-up
    for _ in range(args.repeats):
        for name, model in models.items():
            times[name].append(encode_seconds(model, pixel_values))
    best = {name: min(values) for name, values in times.items()}
    for name, seconds in best.items():
        print(f"{name:>20}: {args.batch_size / seconds:8.2f} images/s (best of {args.repeats})")
    print(f"ratio linear map / plain: {best['plain codes'] / best['linear map (SimVQ)']:.3f}")


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
