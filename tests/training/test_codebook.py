import pytest
import torch
import torch.nn.functional as F

from tests.testing_utils import tiny_tokenizer
from vit_vqgan_hf.training.codebook import kmeans_codes, lookup_latents, restart_dead_codes, set_codes


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


def clustered_points(num_clusters=6, per_cluster=40, dim=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(num_clusters, dim, generator=generator), dim=-1)
    noise = 0.05 * torch.randn(num_clusters, per_cluster, dim, generator=generator)
    return F.normalize(centers[:, None] + noise, dim=-1).reshape(-1, dim), centers


@pytest.mark.parametrize("spherical", [True, False])
def test_kmeans_finds_the_clusters_and_is_deterministic_for_a_seed(spherical):
    points, centers = clustered_points()
    codes = kmeans_codes(points, 6, torch.Generator().manual_seed(0), spherical=spherical)
    assert codes.shape == (6, 4)
    if spherical:
        torch.testing.assert_close(codes.norm(dim=-1), torch.ones(6))
    # Every true cluster has a code within its spread, and every code sits on a cluster.
    cosine = F.normalize(codes, dim=-1) @ centers.T
    assert cosine.max(0).values.min() > 0.99 and cosine.max(1).values.min() > 0.99
    again = kmeans_codes(points, 6, torch.Generator().manual_seed(0), spherical=spherical)
    assert torch.equal(codes, again)
    other = kmeans_codes(points, 6, torch.Generator().manual_seed(1), spherical=spherical, iterations=0)
    assert not torch.equal(kmeans_codes(points, 6, torch.Generator().manual_seed(0), iterations=0), other)


def test_kmeans_with_fewer_latents_than_codes_keeps_every_latent():
    points, _ = clustered_points(num_clusters=2, per_cluster=3)
    codes = kmeans_codes(points, 10, torch.Generator().manual_seed(0))
    assert codes.shape == (10, 4)
    # The 6 points are all seeds (k-means++ never picks a point twice while others are farther away).
    assert ((codes[:6] @ points.T).max(-1).values > 1 - 1e-6).all()
    torch.testing.assert_close(codes.norm(dim=-1), torch.ones(10))


@pytest.mark.parametrize("use_codebook_linear_map", [False, True])
def test_set_codes_points_the_effective_codes_at_the_targets(use_codebook_linear_map):
    model = tiny_tokenizer(**CODEBOOK, use_codebook_linear_map=use_codebook_linear_map)
    if use_codebook_linear_map:
        with torch.no_grad():  # a trained, non-identity map
            model.quantizer.codebook_map.copy_(
                torch.eye(4) + 0.3 * torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
            )
    before = model.quantizer.codebook().clone()
    targets = F.normalize(torch.randn(3, 4), dim=-1)
    set_codes(model, torch.tensor([1, 5, 9]), targets)
    after = model.quantizer.codebook()
    torch.testing.assert_close(after[[1, 5, 9]], targets, rtol=1e-4, atol=1e-4)
    keep = torch.ones(16, dtype=torch.bool)
    keep[[1, 5, 9]] = False
    assert torch.equal(after[keep], before[keep])


def test_restarts_under_a_linear_map_write_the_frozen_codes():
    model = tiny_tokenizer(**CODEBOOK, use_codebook_linear_map=True)
    code_counts = torch.ones(16, dtype=torch.long)
    code_counts[[2, 4]] = 0
    latents = F.normalize(torch.randn(5, 4), dim=-1)
    optimizer = torch.optim.AdamW(model.parameters())
    restarted = restart_dead_codes(model, code_counts, latents, torch.Generator().manual_seed(0), optimizer)
    assert restarted.tolist() == [2, 4]
    cosine = model.quantizer.codebook()[restarted] @ latents.T
    torch.testing.assert_close(cosine.max(-1).values, torch.ones(2))
