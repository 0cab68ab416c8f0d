"""Edit a clip with new prompts: one MP4 per prompt (with the source's sound) and a GIF grid.

    python inference.py --run outputs/man-skiing --prompt "spider man is skiing on the beach, cartoon style"
    python inference.py --base checkpoints/stable-diffusion-v1-4 --video clip.mp4 --prompt "..."   # zero-shot
    python inference.py --pipeline path/to/tuneavideo-pipeline --video clip.mp4 --prompt "..."
    python inference.py --method img2img --base checkpoints/stable-diffusion-v1-4 --video clip.mp4 --prompt "..."
    python inference.py --compare --run outputs/man-skiing --prompt "..."   # source | img2img | tuned
    python inference.py --run outputs/man-skiing --prompt "..." --control canny   # keeps the source's edges
    python inference.py --run outputs/lora-run --prompt "..." --lora style.safetensors:0.8   # + a style LoRA
    python inference.py --run outputs/man-skiing --prompt "..." --region "man"   # only where "man" is
    python inference.py --base ... --video clip.mp4 --prompt "..." --segment person --background "#00ff00"

``--run`` is the output folder of ``train.py`` (the trained parameters plus the base model and clip
its config names) or a folder saved by the original Tune-A-Video; ``--pipeline`` a full pipeline
folder. Every option is a key of :class:`vidsynth.config.inference.InferenceConfig`; ``--profile
NAME`` (``configs/NAME.yaml``), ``--config FILE`` and trailing ``key=value`` entries set them in
layers, explicit flags last. The request is resolved and checked before a model loads
(:mod:`vidsynth.editing.request`); the results appear in the output folder only once all are written.

This file is the command line only: parse, resolve (:mod:`vidsynth.editing.request`), edit
(:mod:`vidsynth.editing.run`: read, render, write). The libraries are imported after the arguments
are parsed, so ``--help`` and usage errors are instant.
"""

import argparse
from pathlib import Path


def _frame_count(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames or 'all', got {text!r}") from None


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _add_region_flags(parser: argparse.ArgumentParser) -> None:
    region = parser.add_argument_group("region (edit part of the frame)")
    region.add_argument("--region", help="a word/phrase of the source or an edit prompt: the mask from its attention")
    region.add_argument("--segment", help="what to segment (e.g. person, face): the mask from a segmentation model")
    region.add_argument(
        "--segment-point", type=_numbers, dest="segment_point", metavar="X,Y", help="a point on the first frame"
    )
    region.add_argument(
        "--segment-box", type=_numbers, dest="segment_box", metavar="X0,Y0,X1,Y1", help="a box on the first frame"
    )
    region.add_argument("--mask-video", dest="mask_video", help="a black-and-white video, one frame per edited frame")
    region.add_argument("--region-from", dest="region_from", help="word | segment | mask-video (when several)")
    where = region.add_mutually_exclusive_group()
    where.add_argument(
        "--edit-inside", action="store_const", const="inside", dest="region_edit", help="edit the region (default)"
    )
    where.add_argument(
        "--edit-outside", action="store_const", const="outside", dest="region_edit", help="edit all but the region"
    )
    region.add_argument("--background", metavar="IMAGE|VIDEO|#RRGGBB|blur", help="the region over a new background")
    region.add_argument("--harmonize", type=float, help="after --background: a light edit of strength in [0, 1)")
    region.add_argument("--background-prompt", dest="background_prompt", help="generate the background, subject kept")
    region.add_argument("--segment-model", dest="segment_model", help="SAM 2 video model: hub id, folder or tiny")
    region.add_argument("--segment-text-model", dest="segment_text_model", help="CLIPSeg model: hub id, folder or tiny")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = parser.add_argument_group("model (one of --run, --pipeline, --base)")
    model.add_argument("--run", help="output folder of train.py (or of the original Tune-A-Video)")
    model.add_argument("--pipeline", help="a saved pipeline folder (VidSynth's or the original Tune-A-Video's)")
    model.add_argument(
        "--base", help="SD-1.x folder, hub id, or tiny (offline, random): zero-shot editing (with --video)"
    )
    clip = parser.add_argument_group("clip (default: the run's)")
    clip.add_argument("--video", help="the clip to edit")
    clip.add_argument("--start", type=float, help="seconds into the clip where the edit starts")
    clip.add_argument("--end", type=float, help="seconds into the clip where the edit ends (default: the clip's end)")
    clip.add_argument("--frames", type=_frame_count, dest="num_frames", help="frames to edit, or all (the whole span)")
    clip.add_argument("--stride", type=int, help="source frames between edited frames (1: the source's frame rate)")
    clip.add_argument("--width", type=int, help="multiple of 8 (default: the run's, else 512 on the long side)")
    clip.add_argument("--height", type=int, help="multiple of 8 (default: the run's, else the clip's aspect ratio)")
    clip.add_argument("--window", type=int, help="frames the UNet sees at once (default: the run's n_sample_frames)")
    clip.add_argument("--window-overlap", type=int, help="frames windows share (default: window / 4, max 4)")
    edit = parser.add_argument_group("edit")
    edit.add_argument("--method", help="tuneavideo (default) | img2img: per-frame SD img2img (needs a base)")
    edit.add_argument("--compare", action="store_const", const=True, help="run both methods; add side-by-side grids")
    edit.add_argument("--prompt", action="append", dest="prompts", help="an edit prompt; repeat for several")
    edit.add_argument("--negative-prompt", dest="negative_prompt")
    edit.add_argument("--steps", type=int, dest="num_inference_steps", help="DDIM sampling steps (default 50)")
    edit.add_argument("--guidance", type=float, dest="guidance_scale", help="guidance scale, >= 0 (default 12.5)")
    edit.add_argument("--seed", type=int)
    edit.add_argument("--inversion-steps", type=int, dest="inversion_steps", help="DDIM inversion steps (default 50)")
    edit.add_argument("--no-inversion", action="store_const", const=False, dest="inversion", help="start from noise")
    edit.add_argument("--strength", type=float, help="img2img: how far each frame is noised, in (0, 1] (default 0.5)")
    edit.add_argument("--batch-size", type=int, dest="batch_size", help="img2img: frames per batch (default 4)")
    lora = parser.add_argument_group("LoRA")
    lora.add_argument(
        "--lora-scale", type=float, dest="lora_scale", help="a LoRA run's adapters: 0 = base, 1 = as tuned (default)"
    )
    lora.add_argument(
        "--lora", action="append", dest="loras", metavar="PATH_OR_ID[:SCALE]", help="an SD-1.x LoRA on top; repeatable"
    )
    control = parser.add_argument_group("structure guidance (ControlNet; each flag repeatable, one per control)")
    control.add_argument("--control", action="append", dest="controls", help="maps made from the clip: canny | depth")
    control.add_argument("--control-video", action="append", dest="control_videos", help="maps made elsewhere")
    control.add_argument(
        "--controlnet",
        action="append",
        dest="controlnets",
        help="ControlNet (hub id, folder or tiny) per control: the --control ones, then the --control-video ones "
        "(default for canny and depth: the SD-1.5 ControlNets)",
    )
    control.add_argument(
        "--control-scale", type=float, action="append", dest="control_scales", help="per control (default 1.0)"
    )
    _add_region_flags(parser)
    output = parser.add_argument_group("output and hardware")
    output.add_argument("--out", help="output folder (must be new or empty)")
    output.add_argument("--format", dest="formats", help="comma-separated: mp4,gif (default both)")
    output.add_argument("--no-audio", action="store_const", const=False, dest="audio", help="leave the MP4s silent")
    output.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    output.add_argument("--dtype", help="fp32 | fp16 | bf16")
    layers = parser.add_argument_group("config layers (applied before the flags above)")
    layers.add_argument("--profile", help="a shipped profile: configs/NAME.yaml")
    layers.add_argument("--config", help="a YAML file with any InferenceConfig keys")
    layers.add_argument("overrides", nargs="*", metavar="key=value", help="config entries, e.g. start_frame=10")
    args = parser.parse_args(argv)
    if args.formats is not None:
        args.formats = [fmt.strip() for fmt in args.formats.split(",") if fmt.strip()]
    return args


def resolve_config(args: argparse.Namespace):
    """Defaults, then the profile, the config file, ``key=value`` entries, and explicit flags."""
    from vidsynth.config import InferenceConfig, config_from_command

    return config_from_command(InferenceConfig, args)


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (default: the command line), resolve the request, run the edit and say where it went."""
    args = parse_args(argv)
    config = resolve_config(args)  # a bad value fails here, before torch and diffusers load
    from vidsynth import events
    from vidsynth.editing.request import resolve_request
    from vidsynth.editing.run import run_edit

    request = resolve_request(config)
    files = run_edit(request)
    methods, clip = " vs. ".join(request.methods), Path(request.clip.path).name
    print(f"{methods} edit(s) of {clip} in {request.out}: {', '.join(files)}")
    events.emit("done", output=str(request.out))


if __name__ == "__main__":
    from vidsynth.cli import run_main

    run_main(main)
