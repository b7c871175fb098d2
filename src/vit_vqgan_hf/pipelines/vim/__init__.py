from .pipeline_vim import VimPipeline, VimPipelineOutput


__all__ = ["VimPipeline", "VimPipelineOutput"]
