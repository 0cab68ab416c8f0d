"""Video diffusion models trained from scratch on a user's own footage."""
