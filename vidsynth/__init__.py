"""VidSynth: text-driven video editing with a one-shot tuned, inflated Stable Diffusion UNet.

``VideoUNet`` is exported here because diffusers' pipeline loader imports a component's class
from the top-level package named in ``model_index.json``. It is resolved lazily so that the
command-line tools that need no model (frames, evaluate's argument checks) start fast.
"""

import vidsynth.quiet  # noqa: F401  (first: the libraries' start-up chatter off before they load)

__all__ = ["VideoUNet"]


def __getattr__(name: str):
    if name == "VideoUNet":
        from vidsynth.models import VideoUNet

        return VideoUNet
    raise AttributeError(f"module 'vidsynth' has no attribute {name!r}")
