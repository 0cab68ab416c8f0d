"""The editing pipeline: DDIM inversion and video sampling with the inflated UNet, and its one loader."""

from vidsynth.pipelines.loading import ModelSource, load_pipeline
from vidsynth.pipelines.pipeline_tuneavideo import TuneAVideoPipeline, TuneAVideoPipelineOutput

__all__ = ["ModelSource", "TuneAVideoPipeline", "TuneAVideoPipelineOutput", "load_pipeline"]
