"""The editing pipeline: DDIM inversion and video sampling with the inflated UNet."""

from vidsynth.pipelines.pipeline_tuneavideo import TuneAVideoPipeline, TuneAVideoPipelineOutput

__all__ = ["TuneAVideoPipeline", "TuneAVideoPipelineOutput"]
