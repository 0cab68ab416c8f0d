"""The From scratch tab: footage and a label CSV, a small video model trained on them with its loss shown live,
then samples with labels per frame (MP4s, the GIF grid with the labels as captions).

Laid out here as the other tabs are in :mod:`vidsynth.app.ui`; what its controls do is
:class:`~vidsynth.app.scratch_handlers.ScratchHandlers` (the page's API: ``/scratch_upload``,
``/scratch_train``, ``/scratch_sample``, ``/show_scratch_samples``). Its own timer refreshes the
jobs' progress (the training loss among it) and its lists every second.
"""

import gradio as gr

from vidsynth.app.handlers import PageHandlers
from vidsynth.app.scratch import SHAPES
from vidsynth.app.scratch_handlers import MAX_SAMPLES, SamplesShown, ScratchHandlers


def samples_updates(shown: SamplesShown) -> tuple:
    """The sample results: MP4 slots, GIF grid, note, files."""
    if shown.problem:
        return (gr.skip(),) * (MAX_SAMPLES + 1) + (shown.problem, gr.skip())
    videos = [gr.Video(str(path), label=caption, visible=True) for caption, path in shown.videos]
    videos += [gr.Video(None, visible=False)] * (MAX_SAMPLES - len(videos))
    grid = gr.Image(str(shown.grid) if shown.grid else None, visible=shown.grid is not None)
    return (*videos, grid, shown.note, shown.files)


def _train_column(handlers: ScratchHandlers) -> tuple:
    """Footage, labels and the training keys; returns the footage list and the progress bar."""
    scratch = handlers.scratch
    defaults = scratch.defaults
    upload = gr.File(label="upload footage (a video)", elem_id="scratch-upload")
    footage = gr.Dropdown(
        scratch.footage_choices(), value=SHAPES, label="footage", info="the shapes demo set, or a clip (clips/)",
        allow_custom_value=True,
    )  # fmt: skip
    labels = gr.File(label="label CSV", file_types=[".csv", ".npy"], elem_id="scratch-labels")
    gr.Markdown("Rows `start,end,label` (seconds), or a vector per frame (CSV/NPY); none: an unconditional model.")
    with gr.Row():
        run_name = gr.Textbox(label="run name", info="outputs/scratch/<name>; blank: the footage's")
        seed = gr.Number(defaults["seed"], label="seed", precision=0)
    with gr.Row():
        steps = gr.Number(defaults["steps"], label="steps", info="max_train_steps", precision=0)
        learning_rate = gr.Number(defaults["learning_rate"], label="learning rate")
    with gr.Row():
        frames = gr.Number(defaults["frames"], label="frames per window", precision=0)
        frame_skip = gr.Number(defaults["frame_skip"], label="frame skip", info="source frames between", precision=0)
    button = gr.Button("Train", variant="primary", elem_id="scratch-train")
    status = gr.Markdown(elem_id="scratch-train-status")
    progress = gr.HTML(elem_id="scratch-train-progress")

    def upload_footage(file: str | None) -> tuple:
        choices, chosen, message = handlers.upload_footage(file)
        return gr.Dropdown(choices=choices, value=chosen or gr.skip()), message

    upload.upload(upload_footage, upload, [footage, status], api_name="scratch_upload")
    inputs = [footage, labels, run_name, steps, learning_rate, frames, frame_skip, seed]
    button.click(handlers.train, inputs, status, api_name="scratch_train")
    return footage, progress


def _sample_column(handlers: ScratchHandlers) -> tuple:
    """A trained run, labels and the sampler's flags, then the results; returns what the timer refreshes."""
    runs = handlers.scratch.runs()
    run = gr.Dropdown(
        runs, value=runs[0] if runs else None, label="trained run", info="outputs/scratch/", allow_custom_value=True
    )
    labels = gr.Textbox(label="labels", info="per frame, e.g. left:8,right:8; or one label; blank: none")
    with gr.Row():
        num = gr.Number(4, label="samples", precision=0)
        steps = gr.Number(50, label="DDIM steps", precision=0)
        seed = gr.Number(0, label="seed", precision=0, elem_id="scratch-sample-seed")
        guidance = gr.Number(1.0, label="guidance", info="classifier-free; 1: none", elem_id="scratch-guidance")
    button = gr.Button("Sample", variant="primary", elem_id="scratch-sample")
    status = gr.Markdown(elem_id="scratch-sample-status")
    progress = gr.HTML(elem_id="scratch-sample-progress")
    chosen = gr.Dropdown([], value=None, label="samples of the run", info="generated/<time>", allow_custom_value=True)
    with gr.Row():
        slots = [gr.Video(interactive=False, visible=False) for _ in range(MAX_SAMPLES)]
    grid = gr.Image(label="GIF grid", type="filepath", interactive=False, visible=False)
    note = gr.Markdown()
    files = gr.File(label="files", file_count="multiple", interactive=False)

    def show(run_name: str | None, name: str | None) -> tuple:
        return samples_updates(handlers.show_samples(run_name, name))

    button.click(handlers.sample, [run, labels, num, steps, seed, guidance], status, api_name="scratch_sample")
    chosen.change(show, [run, chosen], [*slots, grid, note, files], api_name="show_scratch_samples")
    return run, chosen, progress


def scratch_tab(page: PageHandlers) -> None:
    """The From scratch tab, with its own refresh of its progress bars and lists."""
    handlers = ScratchHandlers(page, page.studio.scratch)
    with gr.Tab("From scratch", id="scratch"):
        with gr.Row():
            with gr.Column(scale=1):
                footage, train_progress = _train_column(handlers)
            with gr.Column(scale=2):
                run, samples, sample_progress = _sample_column(handlers)
    seen = gr.State({})

    def refresh(seen: dict, run_name: str | None) -> tuple:
        now = handlers.state(run_name)
        updates = {
            "train_progress": lambda text: text,
            "sample_progress": lambda text: text,
            "footage": lambda names: gr.Dropdown(choices=names),
            "runs": lambda names: gr.Dropdown(
                choices=names, value=run_name if run_name in names else (names[0] if names else None)
            ),
            "samples": lambda names: gr.Dropdown(choices=names, value=names[0] if names else None),
        }
        out = [gr.skip() if now[key] == seen.get(key) else update(now[key]) for key, update in updates.items()]
        return (now, *out)

    outputs = [seen, train_progress, sample_progress, footage, run, samples]
    gr.Timer(1.0).tick(refresh, [seen, run], outputs, show_progress="hidden", api_visibility="private")
