from .vim import VimPipeline, VimPipelineOutput


__all__ = ["VimPipeline", "VimPipelineOutput"]
