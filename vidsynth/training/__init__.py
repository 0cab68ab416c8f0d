"""One-shot tuning (``python -m vidsynth.train``): the parts, one job per module.

``preflight`` checks a request (the quick part before torch is imported), ``devices`` starts the
run's Accelerator and settles the precision, ``encode`` caches the clip latents and the prompt,
``span`` picks the frames each step sees, ``step`` is the per-step loss and ``loop`` one optimizer
step, ``unet_setup`` selects what trains and stores the frozen rest (the layers:
``vidsynth.models.frozen_weights``), ``optimizer`` builds AdamW and its schedule, ``checkpoints``
saves and resumes small checkpoints, ``schedule`` says after which steps validation runs, ``header``
opens a run's log and ``result`` writes the tuned parameters. The run folder's layout is
:mod:`vidsynth.run_folder`; the validation edits are :mod:`vidsynth.editing.validation`. Only
``preflight``, ``span``, ``schedule`` and ``header`` load without torch.
"""
