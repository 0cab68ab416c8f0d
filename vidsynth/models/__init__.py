"""The inflated video UNet and its parts."""

from vidsynth.models.unet import VideoUNet

__all__ = ["VideoUNet"]
