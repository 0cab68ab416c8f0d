"""Evaluation: the CLIP metrics and flicker of an edit (``metrics``), and scoring whole output folders
(``evaluate``).

The default CLIP model is named here, where configs read it without importing torch."""

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
