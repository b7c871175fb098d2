import json

import pytest
from huggingface_hub import ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from vit_vqgan_hf.evaluation import build_results, load_results, results_to_model_index, save_results
from vit_vqgan_hf.evaluation.results import PROTOCOL_FIELDS, linear_probe_results


def generation_results():
    return build_results(
        "class-conditional-image-generation",
        {"fid": 4.17, "inception_score": 175.1, "inception_score_std": 2.0, "precision": 0.7, "psnr": float("inf")},
        num_samples=50000,
        class_balance={"labelled": True, "num_classes": 1000, "min_images_per_class": 50, "max_images_per_class": 50},
        image_size=256,
        resize="none",
        feature_network={"name": "pytorch-fid InceptionV3", "weights_sha256": "ab" * 32},
        reference={
            "kind": "statistics",
            "path": "stats.npz",
            "file_sha256": "cd" * 32,
            "statistics_sha256": "ef" * 32,
            "num_samples": 1281167,
        },
        seeds={"seed": 0},
        sampling={"temperature": 1.0, "top_k": None, "images_per_class": 50},
        data={"source": {"kind": "pipeline", "path": "vim"}},
    )


def test_results_record_the_protocol(tmp_path):
    results = generation_results()
    assert set(PROTOCOL_FIELDS) <= results["protocol"].keys()
    assert results["protocol"]["library_versions"]["torchmetrics"]
    assert "vit_vqgan_hf.evaluation.fid_from_features" in results["protocol"]["implementations"]["fid"]
    assert results["metrics"]["psnr"] is None  # JSON has no inf
    path = save_results(results, tmp_path / "out" / "results.json")
    assert load_results(path) == json.loads(json.dumps(results))
    with pytest.raises(ValueError, match="missing protocol fields"):
        save_results({"format": results["format"], "protocol": {}}, tmp_path / "bad.json")


def test_results_to_model_index_reads_back_as_eval_results(tmp_path):
    path = save_results(generation_results(), tmp_path / "results.json")
    model_index = results_to_model_index(path, "vim-large", dataset={"name": "ImageNet", "type": "ILSVRC/imagenet-1k"})
    assert len(model_index) == 1 and model_index[0]["name"] == "vim-large"
    entry = model_index[0]["results"][0]
    assert entry["task"] == {
        "type": "class-conditional-image-generation",
        "name": "Class-conditional image generation",
    }
    metrics = {metric["type"]: metric for metric in entry["metrics"]}
    assert set(metrics) == {"fid", "inception_score", "precision"}  # std into args, inf PSNR left out
    assert metrics["fid"]["args"]["reference_sha256"] == "cd" * 32
    assert metrics["fid"]["args"]["reference_statistics_sha256"] == "ef" * 32
    assert metrics["inception_score"]["args"]["std"] == 2.0
    name, eval_results = model_index_to_eval_results(model_index)
    assert name == "vim-large" and {result.metric_type for result in eval_results} == set(metrics)
    assert eval_results[0].dataset_type == "ILSVRC/imagenet-1k"
    card = ModelCardData(model_name=name, eval_results=eval_results).to_dict()
    assert card["model-index"][0]["results"][0]["metrics"][0]["value"] == 4.17


def test_linear_probe_results_use_the_same_format():
    results = linear_probe_results(
        {10: 0.61, 15: 0.732, 30: 0.55}, dataset="ILSVRC/imagenet-1k", split="validation", num_eval_images=50000
    )
    assert results["task"] == "image-classification" and results["metrics"] == {"top1_accuracy": 0.732}
    assert results["details"]["reported_block"] == 15 and set(PROTOCOL_FIELDS) <= results["protocol"].keys()
    entry = results_to_model_index(results, "vim-large")[0]["results"][0]
    assert entry["dataset"] == {"name": "ILSVRC/imagenet-1k", "type": "ILSVRC/imagenet-1k", "split": "validation"}
    assert entry["metrics"][0]["type"] == "accuracy"
    with pytest.raises(ValueError, match="divide percentages by 100"):
        linear_probe_results({15: 73.2})
