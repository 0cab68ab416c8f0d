"""VidSynth: text-driven video editing with a one-shot tuned, inflated Stable Diffusion UNet.

``VideoUNet`` is exported here because diffusers' pipeline loader imports a component's class
from the top-level package named in ``model_index.json``.
"""

from vidsynth.models import VideoUNet

__all__ = ["VideoUNet"]
