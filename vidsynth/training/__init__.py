"""One-shot tuning (``python -m vidsynth.train``): the parts, one job per module.

``preflight`` checks a request before any model loads, ``encode`` caches the clip latents, ``span``
picks the frames each step sees, ``step`` is the per-step loss, ``unet_setup`` selects what trains,
stores the frozen rest and settles the precision (the layers: ``vidsynth.models.frozen_weights``),
``optimizer`` builds AdamW, ``checkpoints`` saves and resumes small checkpoints and ``result`` writes
the tuned parameters. The run folder's layout is :mod:`vidsynth.run_folder`; the validation edits are
:mod:`vidsynth.editing.validation`.
"""
