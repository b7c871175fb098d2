"""Tokenizer throughput: ViT-VQGAN against the paper's "CNN x1" baseline, measured side by side in one process.

Prints encode+decode images/s of a ViT-VQGAN preset and of a taming-style CNN VQGAN (diffusers `VQModel`, channels
128-256-256-512, two layers per block, 8192 codes, f8 so the same 32x32 token grid at 256x256) in float32 and under
bf16 autocast, their ratio, and the share of the machine's measured matmul peak that the ViT reaches.

    python benchmarks/bench_tokenizer.py [--preset ss] [--batch_size 2] [--repeats 3] [--device cpu] [--precisions fp32]

Absolute numbers are not comparable across machines or runs; the ratios are the figures to read. The project's
targets: ratio >= 3.0 in both precisions, ViT at >= 70% of the measured matmul peak.
"""

import argparse
import contextlib
import time
from functools import partial

import torch
from diffusers import VQModel
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.utils.errors import command_line_errors


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ss", help="ViT-VQGAN preset to measure.")
    parser.add_argument("--batch_size", type=int, default=2, help="Images per encode+decode call.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed calls per model and precision.")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16"],
        help="Precisions to measure (CPUs without native bf16 matmul run bf16 tens of times slower than fp32).",
    )
    return parser.parse_args()


def build_cnn_baseline(resolution: int) -> VQModel:
    """The paper's CNN-VQGAN "channels x1" at f8 (taming-transformers layout) as a diffusers VQModel."""
    return VQModel(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 256, 512),
        layers_per_block=2,
        latent_channels=32,
        num_vq_embeddings=8192,
        sample_size=resolution,
    )


def vit_round_trip(model, pixel_values):
    return model.decode(model.encode(pixel_values).quantized)


def cnn_round_trip(model, pixel_values):
    return model.decode(model.encode(pixel_values).latents).sample


def precision_context(precision: str, device: str):
    if precision == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(function, device: str) -> float:
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def matmul_peak(dtype: torch.dtype, device: str, size: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of a square matmul, the machine's practical peak for this precision."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = min(time_call(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size**3 / best


@torch.no_grad()
def main(args):
    torch.manual_seed(0)
    device = args.device
    vit = VitVqganModel(VitVqganConfig.from_preset(args.preset)).to(device).eval()
    resolution = vit.config.image_size
    cnn = build_cnn_baseline(resolution).to(device).eval()
    pixel_values = torch.rand(args.batch_size, 3, resolution, resolution, device=device) * 2 - 1
    models = {"vit": (vit, vit_round_trip), "cnn": (cnn, cnn_round_trip)}

    # The flop counter does not see inside fused attention kernels; count with the math backend instead.
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        vit_round_trip(vit, pixel_values[:1])
    vit_flops_per_image = counter.get_total_flops()

    print(f"threads={torch.get_num_threads()} device={device} batch={args.batch_size} resolution={resolution}")
    print(f"ViT-VQGAN-{args.preset.upper()} encode+decode: {vit_flops_per_image / 1e9:.1f} GFLOP per image")
    print(
        f"{'precision':>9} {'vit img/s':>10} {'cnn img/s':>10} {'ratio':>6} {'matmul peak GF/s':>17} {'vit % peak':>10}"
    )
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    for precision in args.precisions:
        dtype = dtypes[precision]
        peak = matmul_peak(dtype, device)
        times = {name: [] for name in models}
        with precision_context(precision, device):
            for model, round_trip in models.values():
                round_trip(model, pixel_values)  # warm-up
            # Interleave the two models so that machine noise hits both alike.
            for _ in range(args.repeats):
                for name, (model, round_trip) in models.items():
                    times[name].append(time_call(partial(round_trip, model, pixel_values), device))
        vit_rate = args.batch_size / min(times["vit"])
        cnn_rate = args.batch_size / min(times["cnn"])
        share = vit_rate * vit_flops_per_image / peak
        print(
            f"{precision:>9} {vit_rate:10.3f} {cnn_rate:10.3f} {vit_rate / cnn_rate:6.2f} {peak / 1e9:17.1f} "
            f"{100 * share:9.1f}%"
        )


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
