"""The Animate tab: a still (an uploaded image, or a frame of a clip or an edit the app lists), Stable Video
Diffusion's settings, then the animation's MP4, GIF grid, settings and metrics.

Laid out here as the other tabs are in :mod:`vidsynth.app.ui`; what its controls do is
:meth:`~vidsynth.app.handlers.PageHandlers.animate` and :meth:`~vidsynth.app.handlers.PageHandlers.show_animation`
(the page's API: ``/animate``, ``/show_animation``).
"""

from pathlib import Path

import gradio as gr

from vidsynth.app.animations import ANIMATION_COLUMNS
from vidsynth.app.handlers import AnimationShown, PageHandlers
from vidsynth.app.service import Studio
from vidsynth.config import AnimateConfig
from vidsynth.config.animate import STILL_FPS
from vidsynth.testing.tiny_models import TINY


def animation_updates(shown: AnimationShown) -> tuple:
    """The Animate tab's results: MP4, GIF grid, note, metrics, files."""
    if shown.problem:
        return (gr.skip(), gr.skip(), shown.problem, gr.skip(), gr.skip())
    return (
        gr.Video(str(shown.video) if shown.video else None, visible=shown.video is not None),
        gr.Image(str(shown.grid) if shown.grid else None, visible=shown.grid is not None),
        shown.note,
        {"headers": list(ANIMATION_COLUMNS), "data": shown.metrics},
        shown.files,
    )


def _still_fields(studio: Studio) -> list:
    """The still: an uploaded image, or a frame of one of the app's clips or edits."""
    image = gr.Image(
        type="filepath", image_mode=None, sources=["upload"], label="image", height=220, elem_id="animate-image"
    )  # image_mode None: the file as uploaded, so animate flattens transparency as on the command line
    with gr.Row():
        video = gr.Dropdown(
            studio.frame_sources(), value=None, label="or a frame of", info="a clip (clips/) or an edit (<run>/edits/)",
            allow_custom_value=True,
        )  # fmt: skip
        frame = gr.Number(0, label="frame", info="0: the first", precision=0)
    return [image, video, frame]


def _settings_fields(studio: Studio) -> list:
    """The model and StableVideoDiffusionPipeline's settings (animate's flags in the hints), its defaults shown."""
    defaults = AnimateConfig()
    models = [("tiny (random weights)" if ref == TINY else Path(ref).name, ref) for ref in studio.models.animators]
    model = gr.Dropdown(models, value=models[0][1], label="model", info="image-to-video folders of checkpoints/")
    with gr.Row():
        frames = gr.Number(None, label="frames", info="blank: the model's", precision=0, elem_id="animate-frames")
        seconds = gr.Number(None, label="seconds", info="instead of frames")
        fps = gr.Number(None, label="fps", info=f"blank: {STILL_FPS:g}")
    with gr.Row():
        motion = gr.Number(defaults.motion_bucket_id, label="motion bucket id", info="more motion: higher", precision=0)
        noise = gr.Number(defaults.noise_aug_strength, label="noise aug strength")
        steps = gr.Number(defaults.num_inference_steps, label="steps", precision=0, elem_id="animate-steps")
    with gr.Row():
        seed = gr.Number(defaults.seed, label="seed", precision=0)
        chunk = gr.Number(None, label="decode chunk size", info="blank: all frames at once", precision=0)
    return [model, frames, seconds, fps, motion, noise, steps, seed, chunk]


def _results(studio: Studio) -> tuple:
    """The right column: the animation list and the chosen one's MP4, grid, note, metrics and files."""
    names = studio.animations()
    animation = gr.Dropdown(
        names, value=names[0] if names else None, label="animation", info="animations/<time>", allow_custom_value=True
    )
    video = gr.Video(label="MP4", interactive=False, visible=False, elem_id="animation-video")
    grid = gr.Image(label="GIF grid: the input beside the frames", type="filepath", interactive=False, visible=False)
    note = gr.Markdown(elem_id="animation-note")
    metrics = gr.Dataframe(
        headers=list(ANIMATION_COLUMNS),
        interactive=False,
        label="metrics (python -m vidsynth.evaluate)",
        elem_id="animation-metrics",
    )
    files = gr.File(label="files", file_count="multiple", interactive=False)
    return animation, [video, grid, note, metrics, files]


def animate_tab(handlers: PageHandlers) -> tuple:
    """The Animate tab; returns its video list, animation list, redraw signal and progress bar (refreshed every
    second)."""
    studio = handlers.studio
    with gr.Tab("Animate", id="animate"):
        if studio.models.animator_notice:
            gr.Markdown(f"⚠️ {studio.models.animator_notice}", elem_classes="vs-notice", elem_id="animate-notice")
        with gr.Row():
            with gr.Column(scale=1):
                still = _still_fields(studio)
                settings = _settings_fields(studio)
                button = gr.Button("Animate", variant="primary", elem_id="animate-button")
                status = gr.Markdown(elem_id="animate-status")
                progress = gr.HTML(elem_id="animate-progress")
            with gr.Column(scale=2):
                animation, outputs = _results(studio)
    signal = gr.State("")

    def show(name: str | None) -> tuple:
        return animation_updates(handlers.show_animation(name))

    button.click(handlers.animate, [*still, *settings], status, api_name="animate")
    animation.change(show, animation, outputs, api_name="show_animation", show_progress="hidden")
    signal.change(show, animation, outputs, show_progress="hidden", api_visibility="private")
    return still[1], animation, signal, progress
