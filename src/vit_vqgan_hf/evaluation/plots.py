# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Plots of evaluation results."""

import os
from pathlib import Path

import numpy as np
import torch

from .reconstruction_metrics import describe_code_counts


def plot_code_usage(code_counts: torch.Tensor, path: str | os.PathLike, title: str | None = None) -> str:
    """
    Save a plot of codebook usage: code frequencies sorted by rank (log scale), and the histogram of per-code counts.

    Args:
        code_counts (`torch.Tensor` of shape `(codebook_size,)`):
            How often each code was used.
        path (`str` or `os.PathLike`):
            Output image file (`.png`).
        title (`str`, *optional*, defaults to `None`):
            Figure title.

    Returns:
        `str`: the path written.
    """
    # matplotlib comes with the `training` extra; a `Figure` draws without pyplot's global state or a display.
    from matplotlib.figure import Figure

    counts = code_counts.detach().cpu().double().numpy()
    frequencies = np.sort(counts)[::-1] / max(counts.sum(), 1)
    statistics = describe_code_counts(code_counts)
    figure = Figure(figsize=(11, 4))
    rank_axis, histogram_axis = figure.subplots(1, 2)
    rank_axis.plot(np.arange(1, len(frequencies) + 1), np.where(frequencies > 0, frequencies, np.nan))
    rank_axis.set_yscale("log")
    rank_axis.axhline(1 / len(counts), color="gray", linestyle="--", label="uniform")
    rank_axis.set_xlabel("code rank")
    rank_axis.set_ylabel("frequency")
    rank_axis.legend()
    rank_axis.set_title(
        f"used {statistics['used_codes']}/{len(counts)} codes, perplexity {statistics['codebook_perplexity']:.0f}"
    )
    histogram_axis.hist(counts, bins=50)
    histogram_axis.set_xlabel("uses per code")
    histogram_axis.set_ylabel("codes")
    histogram_axis.set_title(f"{statistics['dead_codes']} dead codes")
    if title:
        figure.suptitle(title)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.85, wspace=0.25)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return str(path)


__all__ = ["plot_code_usage"]
