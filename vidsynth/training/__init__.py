"""One-shot tuning (``train.py``): the parts, one job per module.

``preflight`` checks a request before any model loads, ``run_folder`` owns the output folder,
``encode`` caches the clip latents, ``span`` picks the frames each step sees, ``step`` is the
per-step loss, ``unet_setup`` selects what trains and stores the frozen rest (``precision``; the
layers: ``vidsynth.models.frozen_weights``), ``optimizer`` builds AdamW, ``checkpoints`` saves and
resumes small checkpoints, ``validation`` renders the validation edits and ``result`` writes the
tuned parameters.
"""
