"""The page's names for the command line's words: a message about the page names the page's fields.

The app checks a request with the commands' own checks (:mod:`vidsynth.app.service`), so a problem
comes back in the command line's terms: config keys (``n_sample_frames``, ``config key
'guidance_scale'``, ``Set sample_end_idx=12``) and flags (``--frames``, ``Pass --prompt "..."``).
:func:`in_page_terms` rewrites them as the fields of the tab the request came from, and a file's
path on the server (an upload's temporary one, a kept clip's) as the file's name. Each tab's table
maps a field's label, as the page shows it, to the keys and flags it stands for.
"""

import re
from pathlib import Path

TUNE_FIELDS = {
    "start frame": ("sample_start_idx", "start_frame"),
    "end frame": ("sample_end_idx",),
    "stride": ("sample_frame_rate", "--stride"),
    "frames per step": ("n_sample_frames", "num_frames", "--frames"),
    "window sampling": ("window_sampling",),
    "prompt": ("train_data.prompt",),
    "steps": ("max_train_steps",),
    "learning rate": ("learning_rate",),
    "validation prompts": ("validation_data.prompts",),
    "validate every": ("validation_steps",),
    "validation DDIM steps": ("validation_data.num_inference_steps", "validation_data.num_inv_steps"),
    "LoRA rank": ("lora_rank",),
    "adapters on the temporal layers too": ("lora_temporal",),
}
EDIT_FIELDS = {
    "run": ("--run",),
    "prompts": ("--prompt",),
    "DDIM steps": ("num_inference_steps", "inversion_steps", "--steps", "--inversion-steps"),
    "guidance": ("guidance_scale", "--guidance"),
    "seed": ("--seed",),
    "method": ("--method",),
    "img2img strength": ("strength", "--strength"),
    "maps made from the clip": ("controls", "--control"),
    "control video": ("control_videos", "--control-video"),
    "ControlNets": ("controlnets", "--controlnet"),
    "ControlNet scales": ("control_scales", "--control-scale"),
    "style LoRAs": ("--lora",),  # not the key: "loras" is also the LoRA folder's name in a path
    "style LoRA scales": ("lora_scales",),
    "tuned LoRA scale": ("lora_scale", "--lora-scale"),
    "compare": ("--compare",),
    "region word": ("--region",),  # flags only: "region", "segment" and "background" are also plain words
    "segment": ("--segment",),
    "segment point": ("segment_point", "--segment-point"),
    "mask video": ("mask_video", "--mask-video"),
    "region edit": ("region_edit", "--edit-inside", "--edit-outside"),
    "background": ("--background",),
    "background prompt": ("background_prompt", "--background-prompt"),
}
ANIMATE_FIELDS = {
    "image": ("--image",),
    "model": ("--model",),
    "frames": ("num_frames", "--frames"),
    "seconds": ("--seconds",),
    "fps": ("fps", "--fps"),
    "motion bucket id": ("motion_bucket_id", "--motion-bucket-id"),
    "noise aug strength": ("noise_aug_strength", "--noise-aug-strength"),
    "steps": ("num_inference_steps", "--steps"),
    "seed": ("--seed",),
    "decode chunk size": ("decode_chunk_size", "--decode-chunk-size"),
}
QUEUE_FIELDS = {"job to cancel": ("job",)}

# Whole sentences of the command line's fixes, and how the page says them (before the names are replaced).
_PHRASES = (
    (
        r'Pass --prompt "\.\.\." \(repeat it for several edits\)',
        'Write each edit prompt on a line of its own in "prompts"',
    ),
    (r"\bnull for the clip's end", "blank for the clip's end"),
    (
        r"lora_temporal: true needs LoRA tuning\. Set lora_rank \(e\.g\. (\d+)\), or lora_temporal=false",
        r'the adapters on the temporal layers need LoRA tuning. Pick a "LoRA rank" (e.g. \1), or untick '
        r'"adapters on the temporal layers too"',
    ),
    (r'e\.g\. --prompt ("[^"]*")', r"e.g. \1"),
    (r"Add --control canny\|depth or --control-video FILE", "Tick canny or depth, or upload a control video"),
    (
        r"Leave out --prompt, or use --edit-outside",
        'Leave "prompts" blank, or clear "background prompt" and pick "edit outside the region"',
    ),
    (r"Leave out --no-inversion", 'Tick "start from the inverted clip"'),
    (r"\bPass (--[\w-]+)", r"Fill in \1"),
    (r"(not a video): Error reading [^)]*\)", r"\1)"),  # decord's reason only repeats the file's name
)


def _names(names: tuple[str, ...]) -> str:
    """A pattern for ``names``: flags, and keys also under a section (``train_data.n_sample_frames``)."""
    flags = [re.escape(name) for name in names if name.startswith("--")]
    keys = [re.escape(name) for name in names if not name.startswith("--")]
    return "|".join(flags + ([rf"(?:[a-z_]+\.)?(?:{'|'.join(keys)})"] if keys else []))


def in_page_terms(message: str, fields: dict[str, tuple[str, ...]], uploads: tuple = ()) -> str:
    """``message`` with ``fields``' keys and flags named by their labels and ``uploads`` by their file names."""
    for upload in uploads:
        if upload:
            for spelled in {str(upload), str(Path(upload).expanduser().absolute())}:
                message = message.replace(spelled, Path(upload).name)
    for pattern, page_words in _PHRASES:
        message = re.sub(pattern, page_words, message)
    for label, names in fields.items():
        name, quoted = _names(names), f'"{label}"'
        word = rf"(?<![\w.\-\"])(?:{name})(?![\w\-\"])"  # not a label already quoted
        message = re.sub(rf"config key '(?:{name})'", quoted, message)
        message = re.sub(rf"\bSet {word}=(\S+)", rf"Set {quoted} to \1", message)
        message = re.sub(rf"{word}=(\S+)", rf"{quoted} = \1", message)
        message = re.sub(word, quoted, message)
        message = re.sub(rf"{re.escape(quoted)}(?:, {re.escape(quoted)})+", quoted, message)  # "(key, --flag)"
    return message
