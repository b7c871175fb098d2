# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Dead-code restarts for the ViT-VQGAN codebook (an opt-in deviation from the paper).

The paper keeps ~96% of 8192 codes in use with l2-normalized, factorized codes alone (Table 4) and restarts nothing.
On small or low-entropy data (a few thousand images, large uniform backgrounds) the encoder's latents still collapse
onto a handful of codes within the first hundred steps, whatever the learning rate: a code that no latent picks gets
no gradient and stays unused for ever. Restarting such codes on latents of the current batch (as Jukebox and
SoundStream do) brings them back into play. `train_tokenizer.py --codebook_restart_steps N` turns it on.
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
    broadcast). With l2-normalized codes the new rows are scaled to the mean norm of the stored code vectors, so
    the optimizer moves restarted codes at the same relative speed as the others; their Adam moments are zeroed.

    Args:
        model ([`VitVqganModel`]):
            The tokenizer (unwrapped); its `quantizer.embedding.weight` is written in place.
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
    new_codes = latents[choice].float()
    if model.config.use_l2_normalized_codes:
        new_codes = F.normalize(new_codes, dim=-1) * weight.float().norm(dim=-1).mean()
    weight[dead] = new_codes.to(device=weight.device, dtype=weight.dtype)
    state = optimizer.state.get(weight, {}) if optimizer is not None else {}
    for name in ("exp_avg", "exp_avg_sq"):
        if name in state:
            state[name][dead] = 0
    return dead
