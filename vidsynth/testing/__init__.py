"""Offline stand-ins for downloadable models, built from a seed (tests, the smoke run and the offline demo).

Nothing is imported here: :mod:`~vidsynth.testing.tiny_models` names them (``tiny``) for commands that
check their configs before torch loads; the builders (``tiny_sd``, ``tiny_clip``, ...) import torch.
"""
