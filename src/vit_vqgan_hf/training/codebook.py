# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Codebook initialization from encoder outputs and dead-code restarts for the ViT-VQGAN codebook (deviations from
the paper, each opt-in through `train_tokenizer.py`).

The paper keeps ~96% of 8192 codes in use with l2-normalized, factorized codes alone (Table 4) and restarts nothing.
On small or low-entropy data (a few thousand images, large uniform backgrounds) the encoder's latents still collapse
onto a handful of codes within the first hundred steps, whatever the learning rate: a code that no latent picks gets
no gradient and stays unused for ever. Two remedies act on the codes directly: placing them on the encoder's first
latents by k-means ([`kmeans_codes`]), and restarting unused codes on latents of the current batch, as
Jukebox and SoundStream do ([`restart_dead_codes`]). The model-side remedies (the rotation trick, a learned
linear map of the codes, the entropy penalty of `train_tokenizer.py`'s default recipe) are options of `VitVqganConfig`.
"""

import torch
import torch.nn.functional as F


@torch.no_grad()
def lookup_latents(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """
    The encoder's latents of `pixel_values` in the lookup space, as the quantizer compares them with the codes.

    Args:
        model ([`VitVqganModel`]):
            The tokenizer (unwrapped).
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Images in `[-1, 1]`.

    Returns:
        `torch.FloatTensor` of shape `(batch_size * num_tokens, codebook_dim)` in float32, l2-normalized when the
        codes are.
    """
    latents = model.quant_proj(model.encoder(pixel_values)).float()
    latents = latents.reshape(-1, latents.shape[-1])
    return F.normalize(latents, dim=-1) if model.config.use_l2_normalized_codes else latents


@torch.no_grad()
def kmeans_codes(
    latents: torch.Tensor, num_codes: int, generator: torch.Generator, spherical: bool = True, iterations: int = 10
) -> torch.Tensor:
    """
    k-means++ seeding followed by Lloyd iterations: `num_codes` centers of `latents`.

    Deterministic given its inputs and the generator's state, so every process that passes the same gathered latents
    and an equally seeded generator gets the same centers.

    Args:
        latents (`torch.FloatTensor` of shape `(num_latents, dim)`):
            The points, e.g. [`lookup_latents`] of the first training batches.
        num_codes (`int`):
            How many centers. With fewer latents than that, every latent becomes a center and the remaining rows are
            drawn from a standard normal distribution (the paper's initialization).
        generator (`torch.Generator`):
            A generator on the latents' device; it picks the seeds.
        spherical (`bool`, *optional*, defaults to `True`):
            Cosine k-means on unit vectors (for l2-normalized codes): squared distances `2 - 2 cos`, centers
            renormalized.
        iterations (`int`, *optional*, defaults to 10):
            Lloyd iterations after the seeding; a cluster that loses all its points keeps its center.

    Returns:
        `torch.FloatTensor` of shape `(num_codes, dim)` in float32 (unit rows when `spherical`).
    """
    points = latents.float()
    if spherical:
        points = F.normalize(points, dim=-1)
    num_seeded = min(num_codes, points.shape[0])
    first = torch.randint(points.shape[0], (1,), generator=generator, device=points.device)
    centers = [points[first]]
    nearest = _squared_distances(points, centers[0], spherical).squeeze(1)
    for _ in range(num_seeded - 1):
        # k-means++: the next seed is drawn with probability proportional to the squared distance to the nearest one.
        weights = nearest.clamp(min=0)
        weights = weights if weights.sum() > 0 else torch.ones_like(weights)
        choice = torch.multinomial(weights, 1, generator=generator)
        centers.append(points[choice])
        nearest = torch.minimum(nearest, _squared_distances(points, centers[-1], spherical).squeeze(1))
    centers = torch.cat(centers)
    for _ in range(iterations if num_seeded == num_codes else 0):
        assignment = _squared_distances(points, centers, spherical).argmin(dim=1)
        sums = torch.zeros_like(centers).index_add_(0, assignment, points)
        counts = torch.zeros(num_codes, device=points.device).index_add_(
            0, assignment, torch.ones_like(assignment, dtype=torch.float)
        )
        updated = F.normalize(sums, dim=-1) if spherical else sums / counts.clamp(min=1)[:, None]
        centers = torch.where(counts[:, None] > 0, updated, centers)
    if num_seeded < num_codes:
        extra = torch.randn(num_codes - num_seeded, points.shape[1], generator=generator, device=points.device)
        centers = torch.cat([centers, F.normalize(extra, dim=-1) if spherical else extra])
    return centers


def _squared_distances(points: torch.Tensor, centers: torch.Tensor, spherical: bool) -> torch.Tensor:
    """`(num_points, num_centers)` squared distances; on the unit sphere `2 - 2 cos`."""
    if spherical:
        return 2 - 2 * points @ centers.T
    return torch.cdist(points, centers).square()


@torch.no_grad()
def set_codes(model, rows: torch.Tensor, code_vectors: torch.Tensor):
    """
    Make the codes `rows` of `model` point at `code_vectors` `(len(rows), codebook_dim)` in the lookup space.

    Writes the stored codes (`quantizer.embedding.weight`). With l2-normalized codes the new rows are scaled to the
    mean norm of the stored ones, so the optimizer moves them at the same relative speed as the others; with a linear
    map of the codes (`config.use_codebook_linear_map`) the stored rows are solved for, so that the map carries them
    onto `code_vectors`.
    """
    quantizer = model.quantizer
    weight = quantizer.embedding.weight
    new_codes = code_vectors.float().to(weight.device)
    if quantizer.codebook_map is not None:
        # codes = stored @ map: solve map^T stored^T = new^T (LU: deterministic, unlike CPU least squares, and the
        # learned square map stays invertible in practice).
        new_codes = torch.linalg.solve(quantizer.codebook_map.detach().float().T, new_codes.T).T
    if model.config.use_l2_normalized_codes:
        new_codes = F.normalize(new_codes, dim=-1) * weight.float().norm(dim=-1).mean()
    weight[rows] = new_codes.to(dtype=weight.dtype)


@torch.no_grad()
def restart_dead_codes(
    model,
    code_counts: torch.Tensor,
    latents: torch.Tensor,
    generator: torch.Generator,
    optimizer: torch.optim.Optimizer | None = None,
) -> torch.Tensor:
    """
    Move every code that no token picked onto a latent drawn at random from `latents`.

    Deterministic given its inputs, so processes that pass the same reduced `code_counts`, the same gathered `latents`
    and generators in the same state restart the same codes identically (the weights stay in sync without a
    broadcast). The codes are written with [`set_codes`]; their Adam moments are zeroed.

    Args:
        model ([`VitVqganModel`]):
            The tokenizer (unwrapped); its stored codes are written in place.
        code_counts (`torch.LongTensor` of shape `(codebook_size,)`):
            How often each code was picked since the last restart, summed over processes.
        latents (`torch.FloatTensor` of shape `(num_latents, codebook_dim)`):
            Candidate positions, e.g. [`lookup_latents`] of recent batches gathered from all processes.
        generator (`torch.Generator`):
            A CPU generator that picks the latents.
        optimizer (`torch.optim.Optimizer`, *optional*, defaults to `None`):
            The tokenizer's optimizer; the moments of the restarted rows are reset when it holds any.

    Returns:
        `torch.LongTensor`: the indices of the restarted codes (empty when every code was used).
    """
    weight = model.quantizer.embedding.weight
    dead = (code_counts.to(weight.device) == 0).nonzero().flatten()
    if dead.numel() == 0 or latents.shape[0] == 0:
        return dead[:0]
    choice = torch.randint(latents.shape[0], (dead.numel(),), generator=generator).to(latents.device)
    set_codes(model, dead, latents[choice])
    state = optimizer.state.get(weight, {}) if optimizer is not None else {}
    for name in ("exp_avg", "exp_avg_sq"):
        if name in state:
            state[name][dead] = 0
    return dead
