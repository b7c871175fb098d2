from .configuration_vim import VimConfig
from .modeling_vim import VimForCausalLM, VimModel, VimPreTrainedModel


__all__ = ["VimConfig", "VimForCausalLM", "VimModel", "VimPreTrainedModel"]
