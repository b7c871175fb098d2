# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""`evaluate` module: codebook usage of an image tokenizer by the protocol of Yu et al. 2022 (ViT-VQGAN, Table 4 caption)."""

import datasets
import evaluate
import torch

from vit_vqgan_hf.evaluation.reconstruction_metrics import USAGE_GROUP_SIZE, CodebookUsageAccumulator


_DESCRIPTION = """
Codebook usage of an image tokenizer: the fraction of the codebook used within each group of `group_size`
consecutive images (256 test images in "Vector-quantized Image Modeling with Improved VQGAN"), averaged over the full
groups; plus the perplexity, used and dead codes over the whole set. Images must be given in dataset order.
"""

_CITATION = """
@inproceedings{yu2022vectorquantized,
  title={Vector-quantized Image Modeling with Improved {VQGAN}},
  author={Jiahui Yu and Xin Li and Jing Yu Koh and Han Zhang and Ruoming Pang and James Qin and Alexander Ku and
          Yuanzhong Xu and Jason Baldridge and Yonghui Wu},
  booktitle={International Conference on Learning Representations},
  year={2022}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list[int]`): the code ids of every image (its token grid, flattened), in dataset order.
    codebook_size (`int`): number of codes of the tokenizer.
    group_size (`int`, *optional*, defaults to 256): images per usage group.
    Other keyword arguments (meant for other modules of an `evaluate.combine`) are ignored.
Returns:
    codebook_usage (`float`): mean fraction of codes used per group of `group_size` images.
    codebook_usage_std (`float`), num_usage_groups (`int`), images_in_partial_group (`int`),
    codebook_usage_protocol_complete (`bool`: at least one full group), codebook_perplexity (`float`),
    used_codes (`int`), dead_codes (`int`), dead_code_fraction (`float`), codebook_usage_whole_set (`float`).
Examples:
    >>> usage = evaluate.load("path/to/codebook_usage")
    >>> usage.compute(predictions=[[0, 1], [1, 1]], codebook_size=4)["codebook_usage"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CodebookUsage(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))}),
            reference_urls=["https://arxiv.org/abs/2110.04627"],
        )

    def _compute(self, predictions, codebook_size=None, group_size=USAGE_GROUP_SIZE, **other_modules_kwargs):
        if codebook_size is None:
            raise ValueError("`codebook_size` is required (the number of codes of the tokenizer).")
        lengths = {len(tokens) for tokens in predictions}
        if len(lengths) > 1:
            raise ValueError(f"Every image must have the same number of tokens, got lengths {sorted(lengths)}.")
        accumulator = CodebookUsageAccumulator(int(codebook_size), group_size=int(group_size))
        accumulator.update(torch.as_tensor([list(tokens) for tokens in predictions], dtype=torch.long))
        results = accumulator.compute()
        results.pop("group_usages")
        return results
