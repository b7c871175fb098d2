import torch
import torch.nn.functional as F

from tests.testing_utils import tiny_tokenizer
from vit_vqgan_hf.training.codebook import lookup_latents, restart_dead_codes


# A small codebook: 16 codes of dimension 4.
CODEBOOK = {"codebook_size": 16, "codebook_dim": 4}


def test_lookup_latents_are_what_the_quantizer_matches():
    model = tiny_tokenizer(**CODEBOOK)
    pixel_values = torch.rand(2, 3, 32, 32) * 2 - 1
    latents = lookup_latents(model, pixel_values)
    assert latents.shape == (2 * 8 * 8, 4)
    torch.testing.assert_close(latents.norm(dim=-1), torch.ones(len(latents)))
    nearest = (latents @ model.quantizer.codebook().T).argmax(-1)
    assert torch.equal(nearest, model.encode(pixel_values).image_tokens.flatten())


def test_only_dead_codes_move_onto_latents_and_their_adam_moments_reset():
    model = tiny_tokenizer(**CODEBOOK)
    weight = model.quantizer.embedding.weight
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 3, 32, 32) * 2 - 1).vq_loss.backward()
    optimizer.step()
    before = weight.detach().clone()
    code_counts = torch.ones(16, dtype=torch.long)
    code_counts[[3, 7]] = 0
    latents = F.normalize(torch.randn(5, 4), dim=-1)

    restarted = restart_dead_codes(model, code_counts, latents, torch.Generator().manual_seed(0), optimizer)

    assert restarted.tolist() == [3, 7]
    alive = code_counts > 0
    assert torch.equal(weight[alive], before[alive])
    # Each restarted code points at one of the latents, at the stored codes' mean norm.
    cosine = F.normalize(weight[restarted].detach(), dim=-1) @ latents.T
    torch.testing.assert_close(cosine.max(-1).values, torch.ones(2))
    torch.testing.assert_close(weight[restarted].detach().norm(dim=-1), before.norm(dim=-1).mean().expand(2))
    state = optimizer.state[weight]
    assert state["exp_avg"][restarted].abs().sum() == 0 and state["exp_avg_sq"][restarted].abs().sum() == 0
    assert state["exp_avg_sq"][alive].abs().sum() > 0


def test_restarts_are_reproducible_across_processes_and_a_no_op_without_dead_codes():
    latents = F.normalize(torch.randn(32, 4), dim=-1)
    code_counts = torch.zeros(16, dtype=torch.long)
    code_counts[:4] = 5
    first, second = tiny_tokenizer(**CODEBOOK), tiny_tokenizer(**CODEBOOK)
    restart_dead_codes(first, code_counts, latents, torch.Generator().manual_seed(3))
    restart_dead_codes(second, code_counts, latents, torch.Generator().manual_seed(3))
    assert torch.equal(first.quantizer.embedding.weight, second.quantizer.embedding.weight)

    before = first.quantizer.embedding.weight.detach().clone()
    restarted = restart_dead_codes(first, torch.ones(16, dtype=torch.long), latents, torch.Generator())
    assert restarted.numel() == 0 and torch.equal(first.quantizer.embedding.weight, before)
