"""Animate a still with Stable Video Diffusion, or continue a clip past its end: an MP4, a GIF grid, a sidecar.

    python -m vidsynth.animate --image still.png
    python -m vidsynth.animate --from-edit outputs/edits/<time>/a-panda-surfing.mp4 --seconds 6
    python -m vidsynth.animate --video clip.mp4 --end 3 --extend 2
    python -m vidsynth.animate --image still.png --profile animate-jetson

The frames are diffusers' ``StableVideoDiffusionPipeline``'s for the same settings; longer results are
made in segments, each started from the last one's final frame (:mod:`vidsynth.animation.plan`).
Every option is a key of :class:`vidsynth.config.animate.AnimateConfig`; ``--profile NAME``
(``configs/NAME.yaml``), ``--config FILE`` and trailing ``key=value`` entries (e.g. ``width=512``) set
them in layers, explicit flags last. The request is checked before the model loads, and the results
appear in the output folder only once all are written.
"""

import argparse
import logging

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    given = parser.add_argument_group("input (one of --image, --from-edit, --video with --extend)")
    given.add_argument("--image", help="a still: PNG, JPEG, ... (e.g. a frame from python -m vidsynth.frames extract)")
    given.add_argument("--from-edit", dest="from_edit", help="an edit's MP4: its first frame is animated")
    given.add_argument("--video", help="a clip (or an edit's MP4) to continue past its end")
    given.add_argument("--start", type=float, help="seconds into the --video clip where its kept part starts")
    given.add_argument("--end", type=float, help="seconds into the --video clip where it is continued (default: end)")
    given.add_argument("--extend", type=float, help="seconds generated after the --video clip")
    gen = parser.add_argument_group("generation (StableVideoDiffusionPipeline's settings)")
    gen.add_argument("--model", help="image-to-video folder or hub id, or tiny (default: checkpoints/"
                     "stable-video-diffusion-img2vid-xt)")  # fmt: skip
    gen.add_argument("--frames", type=int, dest="num_frames", help="frames in the result (default: the model's)")
    gen.add_argument("--seconds", type=float, help="the length in seconds instead of --frames")
    gen.add_argument("--fps", type=float, help="frame rate (default: 7, or the clip's with --extend)")
    gen.add_argument("--motion-bucket-id", type=int, dest="motion_bucket_id", help="more motion when higher (127)")
    gen.add_argument("--noise-aug-strength", type=float, dest="noise_aug_strength", help="noise on the still (0.02)")
    gen.add_argument("--steps", type=int, dest="num_inference_steps", help="denoising steps (default 25)")
    gen.add_argument("--seed", type=int, help="segment k is drawn with seed + k (default 33)")
    gen.add_argument("--decode-chunk-size", type=int, dest="decode_chunk_size", help="frames decoded at once")
    hardware = parser.add_argument_group("output and hardware")
    hardware.add_argument("--offload", help="none | model | sequential: models (or layers) on the GPU only in use")
    hardware.add_argument("--forward-chunking", action="store_const", const=True, dest="forward_chunking",
                          help="the UNet's feed-forward layers a frame at a time (less memory)")  # fmt: skip
    hardware.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    hardware.add_argument("--dtype", help="fp32 | fp16 | bf16")
    hardware.add_argument("--png", action="store_const", const=True, help="also write the frames as numbered PNGs")
    hardware.add_argument("--out", help="output folder (must be new or empty; default: outputs/animations/<time>)")
    layers = parser.add_argument_group("config layers (applied before the flags above)")
    layers.add_argument("--profile", help="a shipped profile: configs/NAME.yaml")
    layers.add_argument("--config", help="a YAML file with any AnimateConfig keys")
    layers.add_argument("overrides", nargs="*", metavar="key=value", help="config entries, e.g. width=512")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace):
    """Defaults, then the profile, the config file, ``key=value`` entries, and explicit flags; then the input."""
    from vidsynth.config import AnimateConfig, config_from_command

    if args.num_frames is None and (args.seconds is not None or args.extend is not None):
        args.overrides = [*args.overrides, "num_frames=null"]  # a length flag replaces a profile's frame count
    elif args.num_frames is not None:
        args.overrides = [*args.overrides, "seconds=null"]
    config = config_from_command(AnimateConfig, args)
    config.check_input()
    return config


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (default: the command line), resolve the request, generate, write, and say where it went."""
    config = resolve_config(parse_args(argv))  # a bad value fails here, before torch and diffusers load
    from vidsynth import events
    from vidsynth.animation.generate import generate
    from vidsynth.animation.outputs import write_results
    from vidsynth.animation.pipeline import load_animation_pipeline, place
    from vidsynth.animation.request import resolve_request

    request = resolve_request(config)
    memory = config.offload + " offload" if config.offload != "none" else "no offload"
    chunks = f", decoding {config.decode_chunk_size} frames at a time" if config.decode_chunk_size else ""
    logger.info(
        "Animating %d frames at %dx%d, %d fps, in %d segment(s) of %d steps on %s (%s, %s%s)",
        request.num_frames - (request.clip is not None),
        request.width,
        request.height,
        round(request.fps),
        len(request.segments),
        config.num_inference_steps,
        request.device,
        config.dtype,
        memory,
        chunks,
    )
    with events.stage("loading"):
        pipe = load_animation_pipeline(request.model, request.dtype)
        place(pipe, request.device, config.offload, config.forward_chunking)
    files = write_results(request, generate(pipe, request))
    print(f"animation of {request.stem} in {request.out}: {', '.join(files)}")
    events.emit("done", output=str(request.out))


if __name__ == "__main__":
    from vidsynth.cli import run_main

    run_main(main)
