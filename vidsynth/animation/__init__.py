"""Image to video with Stable Video Diffusion: animate a still, an edit's first frame, or continue a clip."""
