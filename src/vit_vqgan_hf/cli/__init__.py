# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""What the command-line scripts (`examples/`, `scripts/`) share, all run before any compute. The top layer of the
package: nothing in it imports this.

- `cli.common`: the Hub flags, output folders, the entry points' error reporting (one `error:` line, exit status 2),
  loading a model or data set named on the command line with an error that says what was expected, and checks of
  flags, of the device, of the `accelerate launch` setup and of the Hub repository.
- `cli.sampling`: the sampling flags of `sample.py` and `evaluate_generation.py`, their sampling engine, and the
  classifier of rejection sampling.
- `cli.training`: the shared flag groups and checks of `train_tokenizer.py` and `train_vim.py`, the start of a
  training run and the push of its outputs.
"""

from .common import (
    InputError,
    add_hub_args,
    check_device,
    check_hub_repo,
    check_launch,
    command_line_errors,
    in_flag_terms,
    load_pretrained,
    prepare_output_dir,
)
from .sampling import (
    EXPECTED_CLASSIFIER,
    add_sampling_args,
    check_rejection_flags,
    check_sampling_args,
    load_image_classifier,
    load_sampling_engine,
    sampling_config,
    sampling_settings,
)
from .training import (
    FINAL_OUTPUTS_PARTIAL,
    add_image_data_args,
    add_optimization_args,
    add_output_args,
    check_shared_training_args,
    push_training_outputs,
    start_training_run,
)


__all__ = [
    "EXPECTED_CLASSIFIER",
    "FINAL_OUTPUTS_PARTIAL",
    "InputError",
    "add_hub_args",
    "add_image_data_args",
    "add_optimization_args",
    "add_output_args",
    "add_sampling_args",
    "check_device",
    "check_hub_repo",
    "check_launch",
    "check_rejection_flags",
    "check_sampling_args",
    "check_shared_training_args",
    "command_line_errors",
    "in_flag_terms",
    "load_image_classifier",
    "load_pretrained",
    "load_sampling_engine",
    "prepare_output_dir",
    "push_training_outputs",
    "sampling_config",
    "sampling_settings",
    "start_training_run",
]
