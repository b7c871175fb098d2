"""The training loop the two training scripts share (`vit_vqgan_hf.training.loop`): the guard against non-finite steps
works on the device, the counters are read only at logging and checkpoint steps, and a run of non-finite steps stops
training with a checkpoint."""

import argparse
from dataclasses import dataclass

import pytest
import torch
from torch.utils.data import DataLoader

from vit_vqgan_hf.training.checkpointing import list_checkpoints
from vit_vqgan_hf.training.loop import (
    TrainingLoop,
    TrainingStepOutput,
    clip_and_guard_gradients,
    not_finite,
    prepare_train_dataloader,
    read_logs,
)
from vit_vqgan_hf.training.run import TrainingData, TrainingRun, TrainingSchedule


# The calls that read a tensor's value back to the host (a host-device sync on an accelerator).
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__")


@pytest.fixture
def host_reads(monkeypatch) -> list:
    """The names of the host-reading tensor methods called from now on."""
    calls = []
    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counted(getattr(torch.Tensor, name), calls))
    return calls


def counted(method, calls: list):
    def read(self, *args, **kwargs):
        calls.append(method.__name__)
        return method(self, *args, **kwargs)

    return read


def training_args(tmp_path, **overrides) -> argparse.Namespace:
    flags = {
        "output_dir": str(tmp_path),
        "logging_dir": "logs",
        "checkpoints_total_limit": None,
        "gradient_accumulation_steps": 1,
        "mixed_precision": None,
        "report_to": "none",
        "seed": 0,
        "train_batch_size": 2,
        "streaming": False,
        "dataloader_num_workers": 0,
        "max_train_steps": 8,
        "num_train_epochs": 1,
        "lr_warmup_steps": 0,
        "lr_warmup_ratio": 0.1,
        "logging_steps": 4,
        "checkpointing_steps": None,
        "validation_steps": None,
        "max_nonfinite_steps": 2,
        "max_grad_norm": 1.0,
    }
    return argparse.Namespace(**{**flags, **overrides})


@dataclass
class Parts:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_dataset: list
    train_dataloader: DataLoader


def collate(examples: list[torch.Tensor]) -> dict:
    return {"inputs": torch.stack(examples), "skipped": 1}


def training_run(args) -> TrainingRun:
    schedule = TrainingSchedule.resolve(args, num_batches=None, num_processes=1)
    data = TrainingData(resolution=1)
    return TrainingRun(
        output_dir=args.output_dir, seed=0, mixed_precision=None, schedule=schedule, data=data, arguments=vars(args)
    )


def linear_dataloader(args, accelerator, dataset) -> DataLoader:
    return prepare_train_dataloader(accelerator, dataset, collate, args.train_batch_size, True, 0, args.seed)


class LinearLoop(TrainingLoop):
    """Least squares with SGD (a zero-gradient step changes nothing); the steps in `nonfinite_steps` get a NaN loss.
    Records the weights and the host reads of each optimizer step."""

    def __init__(self, args, accelerator, parts, nonfinite_steps=(), host_reads=None):
        super().__init__(training_run(args), accelerator, parts, self.linear_step)
        self.nonfinite_steps = set(nonfinite_steps)
        self.host_reads = host_reads
        self.weights = []  # after each optimizer step
        self.step_reads = []  # host reads of each step, micro-batch and bookkeeping

    def linear_step(self, batch, global_step):
        reads = len(self.host_reads) if self.host_reads is not None else 0
        parts = self.parts
        loss = parts.model(batch["inputs"]).pow(2).mean()
        if global_step + 1 in self.nonfinite_steps:
            loss = loss * float("nan")
        self.accelerator.backward(loss)
        grad_norm, grad_nonfinite = clip_and_guard_gradients(self.accelerator, parts.model, 1.0)
        parts.optimizer.step()
        parts.optimizer.zero_grad(set_to_none=True)
        self.reads_before_bookkeeping = reads
        return TrainingStepOutput(
            not_finite(loss, grad_nonfinite), {"train/loss": loss.detach(), "train/grad_norm": grad_norm}
        )

    def after_optimizer_step(self, step_logs):
        super().after_optimizer_step(step_logs)
        self.weights.append(self.parts.model.weight.detach().clone())
        if self.host_reads is not None:
            self.step_reads.append(len(self.host_reads) - self.reads_before_bookkeeping)


def build_linear_loop(args, accelerator, **loop_kwargs) -> LinearLoop:
    """A `LinearLoop` over 16 random examples, its model and optimizer prepared, not started."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dataset = list(torch.randn(16, 3))
    dataloader = linear_dataloader(args, accelerator, dataset)
    model, optimizer = accelerator.prepare(model, optimizer)
    return LinearLoop(args, accelerator, Parts(model, optimizer, dataset, dataloader), **loop_kwargs)


def run_loop(args, accelerator, **loop_kwargs) -> LinearLoop:
    loop = build_linear_loop(args, accelerator, **loop_kwargs)
    loop.start("test", None)
    loop.train()
    return loop


def test_a_finite_step_keeps_its_gradients_and_a_nonfinite_one_gets_zeros_without_host_reads(
    tmp_path, accelerator_for, host_reads
):
    accelerator = accelerator_for(training_args(tmp_path))
    model = torch.nn.Linear(4, 2)
    model.weight.grad = torch.randn(2, 4)
    model.bias.grad = torch.randn(2)
    expected = [model.weight.grad.clone(), model.bias.grad.clone()]
    del host_reads[:]
    grad_norm, nonfinite = clip_and_guard_gradients(accelerator, model)
    assert host_reads == []
    assert not nonfinite
    # The same norm up to summation order (torch's clipping norms each tensor first).
    torch.testing.assert_close(grad_norm, torch.cat([grad.flatten() for grad in expected]).norm())
    assert torch.equal(model.weight.grad, expected[0]) and torch.equal(model.bias.grad, expected[1])

    model.bias.grad[0] = float("inf")
    del host_reads[:]
    grad_norm, nonfinite = clip_and_guard_gradients(accelerator, model, max_grad_norm=1.0)
    assert host_reads == []
    assert nonfinite and not torch.isfinite(grad_norm)
    assert not model.weight.grad.any() and not model.bias.grad.any()

    # A model without gradients (the discriminator before its start step) is left alone and never counted.
    assert clip_and_guard_gradients(accelerator, torch.nn.Linear(2, 2))[1] is None


def test_counters_are_read_at_logging_steps_only(tmp_path, accelerator_for, host_reads):
    args = training_args(tmp_path, logging_steps=4, max_nonfinite_steps=2)
    accelerator = accelerator_for(args)
    loop = run_loop(args, accelerator, nonfinite_steps=[2, 6], host_reads=host_reads)
    # Steps 4 and 8 log (and read the counters); the others read nothing back from the device.
    assert [reads > 0 for reads in loop.step_reads] == [False, False, False, True] * 2
    # The NaN batches of steps 2 and 6 contributed nothing: SGD left the weights as they were.
    assert torch.equal(loop.weights[1], loop.weights[0]) and torch.equal(loop.weights[5], loop.weights[4])
    assert not torch.equal(loop.weights[2], loop.weights[1])
    # 16 examples in 8 steps of 2, each batch with one skipped image; one non-finite step at a time never stops.
    assert (loop.state.skipped_images, loop.state.nonfinite_steps, loop.state.consecutive_nonfinite_steps) == (8, 2, 0)
    assert loop.last_logs["train/nonfinite_steps"] == 2 and loop.last_logs["train/examples_per_second"] > 0


def test_a_run_of_nonfinite_steps_stops_training_with_a_checkpoint_at_the_next_logging_step(tmp_path, accelerator_for):
    args = training_args(tmp_path, logging_steps=4, max_nonfinite_steps=2)
    accelerator = accelerator_for(args)
    with pytest.raises(RuntimeError, match=r"2 optimizer steps in a row \(up to step 3\) .* stopped at step 4"):
        run_loop(args, accelerator, nonfinite_steps=[2, 3])
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint_4"]


def test_the_training_data_loader_draws_nothing_from_the_global_generator(tmp_path, accelerator_for):
    # A checkpoint restores the global generator's state before the resumed run starts an epoch anew: the loader must
    # not draw from it (dropout and dead-code restarts would then differ from the uninterrupted run).
    args = training_args(tmp_path)
    dataloader = linear_dataloader(args, accelerator_for(args), list(torch.randn(16, 3)))
    orders = []
    for epoch in (0, 1, 0):
        dataloader.set_epoch(epoch)
        state = torch.get_rng_state()
        orders.append(torch.cat([batch["inputs"] for batch in dataloader]))
        assert torch.equal(torch.get_rng_state(), state)
    # Still shuffled, by epoch: epoch 1 has another order, epoch 0 the same one again.
    assert not torch.equal(orders[0], orders[1]) and torch.equal(orders[0], orders[2])


def test_logs_are_read_as_numbers():
    logs = {"loss": torch.tensor(0.25, dtype=torch.float64), "norm": torch.tensor([2.0]), "lr": 1e-4, "codes": 3}
    assert read_logs(logs) == {"loss": 0.25, "norm": 2.0, "lr": 1e-4, "codes": 3.0}
