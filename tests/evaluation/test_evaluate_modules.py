import evaluate
import numpy as np
import pytest
import torch

from vit_vqgan_hf.evaluation import GenerationEvaluator, evaluate_metric_path

from .helpers import TinyFeatureNetwork


def test_evaluate_modules_load_offline_and_combine(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    usage = evaluate.load(evaluate_metric_path("codebook_usage"))
    result = usage.compute(predictions=[[0, 1], [2, 2], [3, 3], [3, 0]], codebook_size=8, group_size=2)
    assert result["codebook_usage"] == pytest.approx((3 / 8 + 2 / 8) / 2) and result["dead_codes"] == 4

    images = np.full((2, 3, 16, 16), 0.5, dtype=np.float32)
    reconstruction = evaluate.load(evaluate_metric_path("reconstruction"))
    result = reconstruction.compute(predictions=images + 0.1, references=images)
    assert result["psnr"] == pytest.approx(20.0, abs=1e-4) and result["l1"] == pytest.approx(0.1)

    generator = np.random.default_rng(0)
    samples = generator.integers(0, 256, (6, 3, 12, 12), dtype=np.uint8)
    network = TinyFeatureNetwork()
    combined = evaluate.combine([evaluate_metric_path("reconstruction"), evaluate_metric_path("fid")])
    result = combined.compute(
        predictions=samples, references=samples, reference_images=samples, feature_network=network
    )
    assert result["ssim"] == pytest.approx(1.0) and abs(result["fid"]) < 1e-6

    # Against saved statistics, which must come from the same network.
    evaluator = GenerationEvaluator(network)
    evaluator.update(torch.from_numpy(samples), real=True)
    evaluator.reference_statistics().save(tmp_path / "stats.npz")
    fid = evaluate.load(evaluate_metric_path("fid"))
    result = fid.compute(
        predictions=samples, feature_network=network, reference_statistics=str(tmp_path / "stats.npz")
    )
    assert abs(result["fid"]) < 1e-6 and result["num_references"] == 6
    with pytest.raises(ValueError, match="was computed with the feature network"):
        fid.compute(
            predictions=samples,
            feature_network=TinyFeatureNetwork(seed=3),
            reference_statistics=str(tmp_path / "stats.npz"),
        )
    with pytest.raises(ValueError, match="`feature_network` is required"):
        fid.compute(predictions=samples, reference_images=samples)
    with pytest.raises(ValueError, match="Give `reference_images` or `reference_statistics`"):
        fid.compute(predictions=samples, feature_network=network)
