"""Experiments: many clips x prompts x settings, one results table, on this machine or a Ray cluster.

    python -m vidsynth.experiment configs/experiments/example.yaml [key=value ...] [--out DIR] [--ray local|auto]

The experiment file (:mod:`~vidsynth.experiment.config`) is resolved into jobs (:mod:`~.plan`), run
one at a time or as Ray tasks (:mod:`~.runner`, :mod:`~.ray_cluster`), each job being ``train.py``,
``inference.py`` or (for a still) ``vidsynth.animate``, plus :mod:`vidsynth.evaluation.evaluate` (:mod:`~.cells`),
and gathered into one table (:mod:`~.table`).
"""
