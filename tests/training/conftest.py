import pytest
from accelerate.state import AcceleratorState

from vit_vqgan_hf.training.loop import build_accelerator


@pytest.fixture
def accelerator_for():
    """Builds the training loop's accelerator for some arguments, and resets accelerate's global state afterwards."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield build_accelerator
    AcceleratorState._reset_state(reset_partial_state=True)
