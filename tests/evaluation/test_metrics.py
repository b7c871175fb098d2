import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.testing_utils import tiny_tokenizer
from vit_vqgan_hf.evaluation import (
    CodebookUsageAccumulator,
    FeatureAccumulator,
    GenerationEvaluator,
    ReferenceStatistics,
    TokenizerEvaluator,
    fid_from_features,
    frechet_distance,
    generation_metrics,
    inception_score,
    kernel_inception_distance,
    manifold_precision_recall,
    per_image_psnr,
    per_image_ssim,
    plot_code_usage,
)
from vit_vqgan_hf.evaluation.frechet import describe_feature_network, mean_and_covariance
from vit_vqgan_hf.evaluation.reconstruction_metrics import describe_code_counts
from vit_vqgan_hf.training import l2_loss, logit_laplace_loss

from .helpers import TinyFeatureNetwork


class IdentityFeatures(nn.Module):
    """Passes features through, so torchmetrics' FID/KID can be fed features directly."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features

    def forward(self, features):
        return features


def random_features(seed, num_samples=64, num_features=5, shift=0.0):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(num_features, num_features, generator=generator)
    return torch.randn(num_samples, num_features, generator=generator) @ mixing + shift


def test_fid_of_a_set_against_itself_is_zero():
    mu, sigma = mean_and_covariance(random_features(0, num_samples=200, num_features=8))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_fid_of_diagonal_gaussians_equals_the_closed_form():
    generator = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(6, generator=generator).double(), torch.randn(6, generator=generator).double()
    variance1 = torch.rand(6, generator=generator).double() + 0.1
    variance2 = torch.rand(6, generator=generator).double() + 0.1
    expected = ((mu1 - mu2) ** 2).sum() + (variance1 + variance2 - 2 * (variance1 * variance2).sqrt()).sum()
    value = frechet_distance(mu1, torch.diag(variance1), mu2, torch.diag(variance2))
    assert value == pytest.approx(float(expected), rel=1e-10)


def test_fid_matches_scipy_sqrtm_and_torchmetrics_on_full_covariances():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = random_features(1), random_features(2, shift=0.5)
    (mu1, sigma1), (mu2, sigma2) = mean_and_covariance(fake), mean_and_covariance(real)
    value = frechet_distance(mu1, sigma1, mu2, sigma2)
    # pytorch-fid's formula with scipy's general matrix square root.
    covmean = scipy_linalg.sqrtm(sigma1.numpy() @ sigma2.numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum()) + np.trace(sigma1.numpy() + sigma2.numpy() - 2 * covmean)
    assert value == pytest.approx(expected, rel=1e-7)

    torchmetrics_fid = FrechetInceptionDistance(feature=IdentityFeatures(5))
    torchmetrics_fid.update(real.double(), real=True)
    torchmetrics_fid.update(fake.double(), real=False)
    assert value == pytest.approx(float(torchmetrics_fid.compute()), rel=1e-6)


@pytest.mark.parametrize("num_samples", [4, 30])
def test_fid_from_features_in_the_sample_space_equals_the_covariance_formula(num_samples):
    real, fake = random_features(9, num_samples, num_features=10), random_features(10, num_samples + 3, 10, 0.4)
    (mu1, sigma1), (mu2, sigma2) = mean_and_covariance(fake), mean_and_covariance(real)
    expected = frechet_distance(mu1, sigma1, mu2, sigma2)
    # With fewer samples than dimensions the covariances are singular, and the square roots of their (numerically
    # not quite zero) null eigenvalues limit the covariance formula's precision.
    assert fid_from_features(fake, reference_features=real) == pytest.approx(expected, rel=1e-7)
    assert fid_from_features(fake, reference_mu=mu2, reference_sigma=sigma2) == pytest.approx(expected, rel=1e-7)
    assert fid_from_features(real, reference_features=real) == pytest.approx(0.0, abs=1e-9)


def test_kid_matches_torchmetrics_on_one_subset_of_all_samples():
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = random_features(3, num_samples=40), random_features(4, num_samples=40, shift=0.3)
    value, std = kernel_inception_distance(real, fake, num_subsets=1, subset_size=40)
    torchmetrics_kid = KernelInceptionDistance(feature=IdentityFeatures(5), subsets=1, subset_size=40)
    torchmetrics_kid.update(real.double(), real=True)
    torchmetrics_kid.update(fake.double(), real=False)
    expected_mean, _ = torchmetrics_kid.compute()
    assert value == pytest.approx(float(expected_mean), rel=1e-6)
    assert std == 0.0
    # Seeded subsets: the same seed gives the same value.
    assert kernel_inception_distance(real, fake, 5, 20, seed=1) == kernel_inception_distance(real, fake, 5, 20, seed=1)


def test_inception_score_of_confident_balanced_and_of_uniform_predictions():
    confident = 100 * torch.eye(10).repeat(5, 1)  # 50 samples, 5 per class, each certain of its class
    score, _ = inception_score(confident, num_splits=1)
    assert score == pytest.approx(10.0, rel=1e-6)
    uniform, _ = inception_score(torch.zeros(50, 10), num_splits=5)
    assert uniform == pytest.approx(1.0)


def improved_gan_inception_score(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """openai/improved-gan `inception_score/model.py` (and torch-fidelity's `isc`), on logits: split `i` holds samples
    `i * N // splits` to `(i + 1) * N // splits`."""
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    scores = []
    for index in range(splits):
        part = probabilities[index * len(logits) // splits : (index + 1) * len(logits) // splits]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_splits_as_the_reference_code():
    # 1005 samples in 10 splits: the reference cuts splits of 100 and 101 samples alternately; `tensor_split` would
    # put the five 101-sample splits first (7.6e-4 relative difference on these logits).
    logits = torch.randn(1005, 12, generator=torch.Generator().manual_seed(0)) * 3
    order = torch.randperm(1005, generator=torch.Generator().manual_seed(0))  # the shuffle of `seed=0`
    expected = improved_gan_inception_score(logits[order].double().numpy(), splits=10)
    assert inception_score(logits, num_splits=10, seed=0) == pytest.approx(expected, rel=1e-12)


def brute_force_precision_recall(real, fake, k):
    real, fake = real.numpy().astype(np.float64), fake.numpy().astype(np.float64)

    def radii(points):
        distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
        return np.sort(distances, axis=1)[:, k]

    def inside(queries, centers, center_radii):
        distances = np.linalg.norm(queries[:, None] - centers[None], axis=-1)
        return float((distances <= center_radii[None]).any(axis=1).mean())

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def test_precision_recall_on_constructed_clouds():
    real = random_features(5, num_samples=40)
    assert manifold_precision_recall(real, real.clone(), k=3) == (1.0, 1.0)
    assert manifold_precision_recall(real, real + 1000.0, k=3) == (0.0, 0.0)
    # Half of the samples copy reference points, half are far away: precision is exactly one half.
    half = torch.cat([real[:20], real[20:] + 1000.0])
    precision, _ = manifold_precision_recall(real, half, k=3)
    assert precision == 0.5
    fake = random_features(6, num_samples=30, shift=0.7)
    expected = brute_force_precision_recall(real, fake, k=3)
    for chunk_size in (7, 1024):
        assert manifold_precision_recall(real, fake, k=3, chunk_size=chunk_size) == pytest.approx(expected)


def test_psnr_and_ssim_on_constructed_images():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 240, (2, 3, 16, 16), generator=generator).float() / 255
    offset = images + 10 / 255
    torch.testing.assert_close(per_image_psnr(offset, images), torch.full((2,), 20 * math.log10(255 / 10)).double())
    torch.testing.assert_close(per_image_ssim(images, images), torch.ones(2).double())
    # A constant image and the same image shifted by c: contrast and structure are unchanged, so SSIM is the
    # luminance term (2 a (a + c) + C1) / (a^2 + (a + c)^2 + C1) with C1 = (0.01 * data_range)^2.
    level, shift, c1 = 128 / 255, 26 / 255, 0.01**2
    constant = torch.full((1, 3, 16, 16), level, dtype=torch.float64)
    expected = (2 * level * (level + shift) + c1) / (level**2 + (level + shift) ** 2 + c1)
    assert float(per_image_ssim(constant + shift, constant)) == pytest.approx(expected, rel=1e-9)


def test_codebook_usage_follows_the_per_group_protocol_whatever_the_batches():
    # Codebook of 8, groups of 4 images of 2 tokens. Group 1 uses codes {0, 1, 2, 3}, group 2 uses {4, 5}; the last
    # 2 images form a partial group.
    tokens = torch.tensor([[0, 1], [2, 3], [0, 0], [1, 1], [4, 4], [5, 4], [4, 5], [5, 5], [6, 7], [6, 6]])
    expected_usage = (4 / 8 + 2 / 8) / 2
    for batch_size in (1, 3, 10):
        usage = CodebookUsageAccumulator(codebook_size=8, group_size=4)
        for batch in tokens.split(batch_size):
            usage.update(batch)
        result = usage.compute()
        assert result["codebook_usage"] == pytest.approx(expected_usage)
        assert result["group_usages"] == [0.5, 0.25]
        assert result["num_usage_groups"] == 2 and result["images_in_partial_group"] == 2
        assert result["codebook_usage_protocol_complete"]
        assert result["dead_codes"] == 0 and result["used_codes"] == 8
    # Fewer images than a group: one partial group, flagged.
    small = CodebookUsageAccumulator(codebook_size=8, group_size=256)
    small.update(tokens[:2])
    result = small.compute()
    assert result["codebook_usage"] == 0.5 and not result["codebook_usage_protocol_complete"]
    assert result["dead_codes"] == 4


def test_perplexity_and_dead_codes():
    uniform = describe_code_counts(torch.full((16,), 7))
    assert uniform["codebook_perplexity"] == pytest.approx(16.0)
    assert uniform["dead_codes"] == 0
    two_codes = describe_code_counts(torch.tensor([5, 5, 0, 0]))
    assert two_codes["codebook_perplexity"] == pytest.approx(2.0)
    assert two_codes["dead_codes"] == 2 and two_codes["dead_code_fraction"] == 0.5


def test_code_usage_plot(tmp_path):
    path = plot_code_usage(torch.tensor([5, 0, 3, 1]), tmp_path / "usage.png", title="tiny")
    assert (tmp_path / "usage.png").stat().st_size > 1000 and path.endswith("usage.png")


def test_tokenizer_evaluator_matches_the_training_losses_and_counts_codes():
    model = tiny_tokenizer()
    pixel_values = torch.rand(5, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        output = model(pixel_values)
    evaluator = TokenizerEvaluator(
        model.config.codebook_size,
        feature_network=TinyFeatureNetwork(),
        logit_laplace_eps=model.config.logit_laplace_eps,
        usage_group_size=2,
    )
    for start in range(0, 5, 2):
        with torch.no_grad():
            evaluator.update(pixel_values[start : start + 2], model(pixel_values[start : start + 2]))
    result = evaluator.compute()
    metrics = result["metrics"]
    assert metrics["l2"] == pytest.approx(float(l2_loss(pixel_values, output.reconstruction)), rel=1e-5)
    expected_nll = logit_laplace_loss(
        pixel_values, output.logit_laplace_loc, output.logit_laplace_log_scale, eps=model.config.logit_laplace_eps
    )
    assert metrics["logit_laplace"] == pytest.approx(float(expected_nll), rel=1e-5)
    assert int(result["code_counts"].sum()) == 5 * 8 * 8
    torch.testing.assert_close(result["code_counts"], output.code_counts)
    assert result["codebook_usage"]["num_usage_groups"] == 2
    assert {"rfid", "inception_score", "psnr", "ssim"} <= metrics.keys()
    assert set(result["skipped"]) == {"lpips"}


def test_reference_statistics_round_trip_and_refuse_another_feature_network(tmp_path):
    network, other_network = TinyFeatureNetwork(seed=0), TinyFeatureNetwork(seed=1)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=generator)
    evaluator = GenerationEvaluator(network)
    evaluator.update(images, real=True)
    evaluator.update(images)
    statistics = evaluator.reference_statistics({"source": {"kind": "test"}})
    checksum = statistics.save(tmp_path / "stats.npz")
    loaded = ReferenceStatistics.load(tmp_path / "stats.npz")
    assert loaded.file_sha256 == checksum and loaded.num_samples == 12
    # The mean and covariance checksum is the same for computed and saved statistics, and changes with the images.
    assert loaded.statistics_sha256() == statistics.statistics_sha256() == loaded.describe()["statistics_sha256"]
    evaluator.update(images[:2], real=True)
    assert evaluator.reference_statistics({}).statistics_sha256() != statistics.statistics_sha256()
    torch.testing.assert_close(loaded.sigma, statistics.sigma)
    values, skipped = evaluator.compute(loaded)
    assert abs(values["fid"]) < 1e-6 and values["precision"] == values["recall"] == 1.0 and not skipped
    assert loaded.metadata["feature_network"]["weights_sha256"] == describe_feature_network(network)["weights_sha256"]

    with pytest.raises(
        ValueError, match="was computed with the feature network .* recompute the reference statistics"
    ):
        GenerationEvaluator(other_network).compute(loaded)
    with pytest.raises(ValueError, match="different shapes"):
        frechet_distance(loaded.mu, loaded.sigma, torch.zeros(3), torch.eye(3))

    # Statistics without metadata (e.g. pytorch-fid's) are refused unless explicitly allowed.
    np.savez(tmp_path / "foreign.npz", mu=statistics.mu.numpy(), sigma=statistics.sigma.numpy())
    foreign = ReferenceStatistics.load(tmp_path / "foreign.npz")
    with pytest.raises(ValueError, match="does not record which feature network"):
        evaluator.compute(foreign)
    values, skipped = evaluator.compute(foreign, allow_unverified_reference=True)
    assert abs(values["fid"]) < 1e-6
    assert set(skipped) == {"kid", "precision_recall"}


def test_feature_subset_of_a_large_reference_set():
    features = random_features(11, num_samples=50)
    subsets = []
    for batch_size in (7, 50):
        accumulator = FeatureAccumulator(max_features=10, seed=3)
        for batch in features.split(batch_size):
            accumulator.update(batch)
        assert not accumulator.all_features_kept and accumulator.features.shape == (10, 5)
        mu, sigma = accumulator.statistics()  # from running sums over all 50
        expected_mu, expected_sigma = mean_and_covariance(features)
        torch.testing.assert_close(mu, expected_mu)
        torch.testing.assert_close(sigma, expected_sigma)
        subsets.append(accumulator.features)
    # The subset depends on the seed and the dataset order only, not on the batches; it holds distinct input rows.
    torch.testing.assert_close(subsets[0], subsets[1])
    assert len({tuple(row.tolist()) for row in subsets[0]}) == 10
    assert all((features == row).all(dim=1).any() for row in subsets[0])
    statistics = ReferenceStatistics.from_features(accumulator, {"name": "test", "weights_sha256": "0"})
    assert statistics.metadata["features_subset"]["of"] == 50 and statistics.describe()["num_features_stored"] == 10


def test_generation_metrics_skip_what_cannot_be_computed():
    samples = FeatureAccumulator(keep_features=False)
    samples.update(random_features(7, num_samples=10))
    reference = ReferenceStatistics(*mean_and_covariance(random_features(8, num_samples=10)), num_samples=10)
    values, skipped = generation_metrics(samples, reference)
    assert set(values) == {"fid"}
    assert set(skipped) == {"inception_score", "kid", "precision_recall"}
    with pytest.raises(ValueError, match="Unknown metrics"):
        generation_metrics(samples, reference, metrics=("fdi",))
