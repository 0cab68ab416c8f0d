"""The page: Gradio Blocks laid out in four tabs (clip and tuning; editing; animating, in
:mod:`vidsynth.app.animate_tab`; training from scratch, in :mod:`vidsynth.app.scratch_tab`) and the queue.

Every control calls a method of :class:`~vidsynth.app.handlers.PageHandlers`, which computes what to show
as plain values; this module only lays the components out and turns those values into Gradio updates.
A timer refreshes the queue, the progress bars, the validation samples and the lists of runs and edits
every second from the server's state, so every tab shows the same, and each part is only sent when it
changed. The page's functions are also an API (``gradio_client``): ``/upload_clip``, ``/pick_clip``,
``/check_span``, ``/tune``, ``/edit``, ``/animate``, ``/cancel``, ``/show_edit``, ``/show_animation``,
``/jobs`` and ``/runs``.
"""

import gradio as gr

from vidsynth.app.animate_tab import animate_tab
from vidsynth.app.handlers import MAX_VIDEOS, QUEUE_COLUMNS, SPAN_KEYS, ClipShown, EditShown, PageHandlers
from vidsynth.app.lora_fields import lora_tuning_fields, style_lora_fields
from vidsynth.app.region_fields import mask_preview, region_fields
from vidsynth.app.runs import METRIC_COLUMNS
from vidsynth.app.scratch_tab import scratch_tab
from vidsynth.app.service import Studio

CSS = """
.vs-progress { display: flex; gap: 0.75em; align-items: center; }
.vs-progress progress { flex: 1; height: 1.1em; }
.vs-notice { border-left: 4px solid #e8a400; padding-left: 0.75em; }
"""


def clip_updates(shown: ClipShown | None) -> tuple:
    """The clip column and span fields of the Tune tab (see :meth:`PageHandlers.upload_clip`)."""
    if shown is None:
        return (gr.skip(),) * (4 + len(SPAN_KEYS))
    dropdown = gr.Dropdown(choices=shown.clips, value=shown.name) if shown.name else gr.skip()
    span = [shown.span[key] for key in SPAN_KEYS] if shown.span else [gr.skip()] * len(SPAN_KEYS)
    status = gr.skip() if shown.span_status is None else shown.span_status
    return (dropdown, shown.preview, shown.facts, *span, status)


def edit_updates(shown: EditShown) -> tuple:
    """The Edit tab's results: source, videos, GIF grid, note, metrics, files."""
    if shown.problem:
        return (gr.skip(),) * (MAX_VIDEOS + 2) + (shown.problem, gr.skip(), gr.skip())
    videos = [gr.Video(str(path), label=caption, visible=True) for caption, path in shown.videos]
    videos += [gr.Video(None, visible=False)] * (MAX_VIDEOS - len(videos))
    return (
        gr.Video(str(shown.source) if shown.source else None, visible=shown.source is not None),
        *videos,
        gr.Image(str(shown.grid) if shown.grid else None, visible=shown.grid is not None),
        shown.note,
        {"headers": list(METRIC_COLUMNS), "data": shown.metrics},
        shown.files,
    )


def _span_fields() -> list:
    """The span and size of the clip a tuning run sees (train.py's train_data keys in the hints)."""
    with gr.Row():
        start = gr.Number(0, label="start frame", info="sample_start_idx", precision=0)
        end = gr.Number(None, label="end frame", info="exclusive; blank: the clip's end (sample_end_idx)", precision=0)
        stride = gr.Number(2, label="stride", info="sample_frame_rate", precision=0)
    with gr.Row():
        frames = gr.Number(8, label="frames per step", info="n_sample_frames", precision=0)
        width = gr.Number(512, label="width", precision=0)
        height = gr.Number(512, label="height", precision=0)
    sampling = gr.Radio(
        ["fixed", "random"],
        value="fixed",
        label="window sampling",
        info="fixed: the span's first frames, as the original; random: a window anywhere each step",
    )
    return [start, end, stride, frames, width, height, sampling]


def _tuning_fields(studio: Studio) -> list:
    """What to tune and how: prompt, run name, base model, steps, learning rate, validation."""
    defaults = studio.defaults
    prompt = gr.Textbox(label="prompt", info="what the clip shows (train_data.prompt)")
    with gr.Row():
        run_name = gr.Textbox(label="run name", info="outputs/<name>; blank: from the prompt")
        bases = [(base.name, str(base)) for base in studio.models.bases]
        base = gr.Dropdown(bases, value=bases[0][1], label="base model")
    with gr.Row():
        steps = gr.Number(defaults.max_train_steps, label="steps", info="max_train_steps", precision=0)
        learning_rate = gr.Number(defaults.learning_rate, label="learning rate")
    with gr.Row():
        validation_prompts = gr.Textbox(label="validation prompts", info="one per line (optional)")
        every = gr.Number(defaults.validation_steps, label="validate every", info="steps", precision=0)
        ddim = gr.Number(defaults.validation_data.num_inference_steps, label="validation DDIM steps", precision=0)
    return [prompt, run_name, steps, learning_rate, base, validation_prompts, every, ddim]


def _tune_tab(handlers: PageHandlers) -> tuple:
    """The Clip and tuning tab; returns its clip list, progress bar and samples (refreshed every second)."""
    studio = handlers.studio
    with gr.Tab("Clip and tuning", id="tune"):
        with gr.Row():
            with gr.Column():
                upload = gr.File(label=f"upload a clip (at most {studio.max_upload_mb} MB)", elem_id="upload")
                clip = gr.Dropdown(
                    studio.clip_names(), value=None, label="clip", info="or pick one (outputs/clips)",
                    allow_custom_value=True,
                )  # fmt: skip
                preview = gr.Video(label="preview", interactive=False, height=260)
                facts = gr.Markdown(elem_id="clip-facts")
            with gr.Column():
                span = _span_fields()
                span_status = gr.Markdown(elem_id="span-status")
                prompt, run_name, steps, learning_rate, base, *validation = _tuning_fields(studio)
                lora = lora_tuning_fields()
                tune_button = gr.Button("Tune", variant="primary")
                tune_status = gr.Markdown(elem_id="tune-status")
        progress = gr.HTML(elem_id="tune-progress")
        samples = gr.Gallery(
            label="validation samples, as they are rendered", columns=4, height=220, object_fit="contain"
        )

    clip_outputs = [clip, preview, facts, *span[:-1], span_status]

    def upload_clip(file: str | None) -> tuple:
        return clip_updates(handlers.upload_clip(file))

    def pick_clip(name: str | None) -> tuple:
        return clip_updates(handlers.pick_clip(name))

    upload.upload(upload_clip, upload, clip_outputs, api_name="upload_clip")
    clip.input(pick_clip, clip, clip_outputs, api_name="pick_clip")
    gr.on(
        [field.input for field in span],
        handlers.check_span,
        [clip, *span],
        span_status,
        api_name="check_span",
        trigger_mode="always_last",  # the check of the last keystroke is the one shown
    )
    tune_inputs = [clip, prompt, run_name, steps, learning_rate, base, *span, *validation, *lora]
    tune_button.click(handlers.tune, tune_inputs, tune_status, api_name="tune")
    return clip, progress, samples


def _control_fields(studio: Studio) -> list:
    """Structure guidance: maps made from the clip, or a control video, their ControlNets and scales."""
    with gr.Accordion("Structure guidance (ControlNet)", open=False):
        kinds = gr.CheckboxGroup(["canny", "depth"], value=[], label="maps made from the clip")
        video = gr.File(label="control video")  # maps made elsewhere, e.g. pose renders (same size limit)
        controlnets = gr.Dropdown(
            studio.models.controlnets,
            value=[],
            multiselect=True,
            label="ControlNets",
            info="in order: per map above, then the video (none: the SD-1.5 ones)",
        )
        scales = gr.Textbox("", label="ControlNet scales", info="comma-separated (blank: 1.0 each)")
    return [kinds, video, controlnets, scales]


def _edit_request(handlers: PageHandlers) -> tuple:
    """The left column of the Edit tab: the run, the prompts and the options; returns the run and progress."""
    runs = handlers.studio.runs()
    run = gr.Dropdown(
        runs, value=runs[0] if runs else None, label="run", info="a finished run (outputs/)", allow_custom_value=True
    )
    prompts = gr.Textbox(lines=3, label="prompts", info="one per line", elem_id="edit-prompts")
    with gr.Row():
        steps = gr.Number(50, label="DDIM steps", info="sampling and inversion", precision=0, elem_id="edit-steps")
        guidance = gr.Number(12.5, label="guidance")
        seed = gr.Number(33, label="seed", precision=0)
    with gr.Row():
        inversion = gr.Checkbox(True, label="start from the inverted clip")
        compare = gr.Checkbox(False, label="compare", info="source | img2img | Tune-A-Video")
    with gr.Row():
        method = gr.Radio(
            [("Tune-A-Video", "tuneavideo"), ("img2img baseline", "img2img")], value="tuneavideo", label="method"
        )
        strength = gr.Number(0.5, label="img2img strength")
    control = _control_fields(handlers.studio)
    lora = style_lora_fields(handlers.studio)
    region = region_fields(handlers, run)
    edit_button = gr.Button("Edit", variant="primary", elem_id="edit-button")
    edit_status = gr.Markdown(elem_id="edit-status")
    progress = gr.HTML(elem_id="edit-progress")
    inputs = [run, prompts, steps, guidance, seed, inversion, method, compare, strength, *control, *lora, *region]
    edit_button.click(handlers.edit, inputs, edit_status, api_name="edit")
    return run, progress


def _edit_tab(handlers: PageHandlers) -> tuple:
    """The Edit tab; returns its run and edit lists, redraw signal and progress bar (refreshed every second)."""
    with gr.Tab("Edit", id="edit"):
        with gr.Row():
            with gr.Column(scale=1):
                run, progress = _edit_request(handlers)
            with gr.Column(scale=2):
                edit = gr.Dropdown([], value=None, label="edit", info="edits/<time>", allow_custom_value=True)
                with gr.Row(elem_id="edit-videos"):
                    source = gr.Video(label="source", interactive=False, visible=False)
                    slots = [gr.Video(interactive=False, visible=False) for _ in range(MAX_VIDEOS)]
                grid = gr.Image(label="GIF grid", type="filepath", interactive=False, visible=False)
                mask_preview(handlers, run, edit)
                metrics_note = gr.Markdown(elem_id="metrics-note")
                metrics = gr.Dataframe(
                    headers=list(METRIC_COLUMNS),
                    interactive=False,
                    label="metrics (python -m vidsynth.evaluate)",
                    elem_id="metrics",
                    column_widths=["20%", "11%", "21%", "8%", "10%", "11%", "9%", "10%"],
                )
                downloads = gr.File(label="files", file_count="multiple", interactive=False)
    edit_signal = gr.State("")

    def pick_run(name: str | None):
        edits = handlers.edits_of(name)
        return gr.Dropdown(choices=edits, value=edits[0] if edits else None)

    def show_edit(run_name: str | None, edit_name: str | None) -> tuple:
        return edit_updates(handlers.show_edit(run_name, edit_name))

    run.change(pick_run, run, edit, show_progress="hidden")
    outputs = [source, *slots, grid, metrics_note, metrics, downloads]
    edit.change(show_edit, [run, edit], outputs, api_name="show_edit", show_progress="hidden")
    edit_signal.change(show_edit, [run, edit], outputs, show_progress="hidden", api_visibility="private")
    return run, edit, edit_signal, progress


def _queue_panel(handlers: PageHandlers) -> tuple:
    """The queue under the tabs, and cancelling a job; returns the table and the job list."""
    gr.Markdown("## Queue")
    queue = gr.Dataframe(headers=QUEUE_COLUMNS, interactive=False, elem_id="queue")
    with gr.Row():
        to_cancel = gr.Dropdown([], value=None, label="job to cancel", allow_custom_value=True)
        cancel_button = gr.Button("Cancel job")
        cancel_status = gr.Markdown()
    cancel_button.click(handlers.cancel, to_cancel, cancel_status, api_name="cancel")
    return queue, to_cancel


def _refresh_every_second(handlers: PageHandlers, run: gr.Dropdown, outputs: list) -> None:
    """A timer sends each tab what changed on the server since its last refresh; everything else is skipped.

    ``outputs``: the components of :meth:`PageHandlers.shared_state`'s parts, in its order."""
    seen = gr.State({})  # what this tab was last sent

    def refresh(seen: dict, run_name: str | None) -> tuple:
        now = handlers.shared_state(run_name)
        updates = {
            "queue": lambda rows: {"headers": QUEUE_COLUMNS, "data": rows},
            "to_cancel": lambda choices: gr.Dropdown(choices=choices, value=choices[0][1] if choices else None),
            "tune_progress": lambda text: text,
            "samples": lambda items: items,
            "edit_progress": lambda text: text,
            "runs": lambda names: gr.Dropdown(
                choices=names, value=run_name if run_name in names else (names[0] if names else None)
            ),
            "edits": lambda edits: gr.Dropdown(
                choices=[name for name, _ in edits], value=edits[0][0] if edits else None
            ),
            "edit_signal": lambda edits: str(edits),
            "clips": lambda names: gr.Dropdown(choices=names),
            "animate_progress": lambda text: text,
            "animations": lambda animations: gr.Dropdown(
                choices=[name for name, _ in animations], value=animations[0][0] if animations else None
            ),
            "animation_signal": lambda animations: str(animations),
            "frame_sources": lambda names: gr.Dropdown(choices=names),
        }
        out = [gr.skip() if now[key] == seen.get(key) else update(now[key]) for key, update in updates.items()]
        return (now, *out)

    gr.Timer(1.0).tick(refresh, [seen, run], [seen, *outputs], show_progress="hidden", api_visibility="private")


def build_page(studio: Studio) -> gr.Blocks:
    handlers = PageHandlers(studio)
    with gr.Blocks(title="VidSynth", analytics_enabled=False) as page:
        gr.Markdown(
            "# VidSynth\nTune a video model on one clip, then edit the clip with new prompts, or animate a still. "
            "Jobs run one at a time in the queue below; every tab shows the same queue and runs."
        )
        if studio.models.base_notice:
            gr.Markdown(f"⚠️ {studio.models.base_notice}", elem_classes="vs-notice", elem_id="base-notice")
        with gr.Tabs():
            clip, tune_progress, samples = _tune_tab(handlers)
            run, edit, edit_signal, edit_progress = _edit_tab(handlers)
            frame_of, animation, animation_signal, animate_progress = animate_tab(handlers)
            scratch_tab(handlers)
        queue, to_cancel = _queue_panel(handlers)
        parts = [queue, to_cancel, tune_progress, samples, edit_progress, run, edit, edit_signal, clip]
        parts += [animate_progress, animation, animation_signal, frame_of]
        _refresh_every_second(handlers, run, parts)
        gr.api(handlers.jobs, api_name="jobs")
        gr.api(handlers.finished, api_name="runs")
    return page
