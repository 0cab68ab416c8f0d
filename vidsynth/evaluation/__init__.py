"""Evaluation: the CLIP metrics and flicker of an edit (``metrics``), and scoring whole output folders
(``evaluate``)."""
