"""The page: Gradio Blocks laid out in two tabs (clip and tuning; editing) over the shared job queue.

Every control calls :class:`~vidsynth.app.service.Studio`; a :class:`~vidsynth.errors.VidSynthError`
becomes its message in the status line under the button, never a stack trace. A timer refreshes the
queue, the progress bars, the validation samples and the lists of runs and edits every second from
the server's state, so every tab shows the same, and each part is only sent when it changed. The
page's functions are also an API (``gradio_client``): ``/upload_clip``, ``/pick_clip``,
``/check_span``, ``/tune``, ``/edit``, ``/cancel``, ``/show_edit``, ``/jobs`` and ``/runs``.
"""

import html
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from vidsynth.app.clips import describe_clip
from vidsynth.app.jobs import RUNNING, WAITING
from vidsynth.app.runs import METRIC_COLUMNS, run_edits, validation_samples
from vidsynth.app.served import ServedFiles
from vidsynth.app.service import Studio
from vidsynth.app.uploads import MB
from vidsynth.errors import VidSynthError

MAX_VIDEOS = 4  # edits shown side by side with the source; every file is in the downloads
QUEUE_COLUMNS = ["job", "what", "state", "progress or result"]
SPAN_KEYS = ("start", "end", "stride", "frames", "width", "height", "sampling")
CSS = """
.vs-progress { display: flex; gap: 0.75em; align-items: center; }
.vs-progress progress { flex: 1; height: 1.1em; }
.vs-notice { border-left: 4px solid #e8a400; padding-left: 0.75em; }
"""


def problem(err: VidSynthError) -> str:
    return f"⚠️ {err}"


def progress_html(studio: Studio, kind: str) -> str:
    """The newest job of ``kind``: a bar with step, loss and time left while it runs, else its state."""
    job = studio.latest(kind)
    if job is None:
        return ""
    info = studio.queue.snapshot(job)
    head = f"Job {info['id']} ({html.escape(info['title'])})"
    if info["state"] == RUNNING:
        bar = f'<progress value="{info["step"]}" max="{max(info["total"], 1)}"></progress>'
        return f'<div class="vs-progress">{bar}<span>{head}: {html.escape(info["progress"])}</span></div>'
    if info["state"] == WAITING:
        return f"<div>{head} waits: position {info['position']} in the queue</div>"
    return f"<div>{head} {info['state']}: {html.escape(info['message'])}</div>"


def queue_rows(studio: Studio) -> list[list]:
    rows = []
    for job in reversed(studio.queue.jobs()):
        info = studio.queue.snapshot(job)
        state = f"waiting ({info['position']} in line)" if info["state"] == WAITING else info["state"]
        rows.append([info["id"], info["title"], state, info["progress"] or info["message"]])
    return rows


def shared_state(studio: Studio, run_name: str | None) -> dict:
    """What every tab shows of the server: the queue, the newest jobs' progress, the newest tuning's validation
    samples, the runs, the edits of ``run_name`` (each with whether its metrics are written) and the clips."""
    latest_tune = studio.latest("tune")
    try:
        folder = studio.run_path(run_name)
    except VidSynthError:
        folder = None
    # an edit's metrics are written after its videos: the edit is shown again when they appear
    edits = (
        [(name, (folder / "edits" / name / "results.json").is_file()) for name in run_edits(folder)] if folder else []
    )
    return {
        "queue": queue_rows(studio),
        "to_cancel": [(f"{job.id}: {job.task.title}", job.id) for job in studio.queue.jobs() if job.active],
        "tune_progress": progress_html(studio, "tune"),
        "samples": validation_samples(latest_tune.task.output) if latest_tune else [],
        "edit_progress": progress_html(studio, "edit"),
        "runs": studio.runs(),
        "edits": edits,
        "edit_signal": edits,
        "clips": studio.clip_names(),
    }


def edit_view_updates(studio: Studio, run_name: str | None, edit_name: str | None) -> tuple:
    """The Edit tab's results for one edit: source, videos, GIF grid, metrics (with what scored them), files."""
    try:
        view = studio.edit_view(run_name, edit_name)
    except VidSynthError as err:
        return (gr.skip(),) * (MAX_VIDEOS + 2) + (problem(err), gr.skip(), gr.skip())
    videos = [gr.Video(str(path), label=caption, visible=True) for caption, path in view.videos[:MAX_VIDEOS]]
    videos += [gr.Video(None, visible=False)] * (MAX_VIDEOS - len(videos))
    note = ""
    if view.metrics:
        note = f"Metrics by `python -m vidsynth.evaluate` with CLIP `{Path(view.clip_model).name}`."
        if studio.models.clip_notice and view.clip_model == studio.models.clip_model:
            note += f"\n\n⚠️ {studio.models.clip_notice}"
    elif edit_name:
        note = "No metrics for this edit yet."
    if len(view.videos) > MAX_VIDEOS:
        note += f"\n\nThe first {MAX_VIDEOS} of {len(view.videos)} edits are shown; all are in the files."
    return (
        gr.Video(str(view.source) if view.source else None, visible=view.source is not None),
        *videos,
        gr.Image(str(view.grids[0]) if view.grids else None, visible=bool(view.grids)),
        note,
        {"headers": list(METRIC_COLUMNS), "data": view.metrics},
        [str(path) for path in view.files],
    )


def build_page(studio: Studio) -> gr.Blocks:
    defaults = studio.defaults
    runs = studio.runs()
    with gr.Blocks(title="VidSynth", analytics_enabled=False) as page:
        gr.Markdown(
            "# VidSynth\nTune a video model on one clip, then edit the clip with new prompts. "
            "Jobs run one at a time in the queue below; every tab shows the same queue and runs."
        )
        if studio.models.base_notice:
            gr.Markdown(f"⚠️ {studio.models.base_notice}", elem_classes="vs-notice", elem_id="base-notice")

        with gr.Tabs():
            with gr.Tab("Clip and tuning", id="tune"):
                with gr.Row():
                    with gr.Column():
                        upload = gr.File(label=f"Upload a clip (at most {studio.max_upload_mb} MB)", elem_id="upload")
                        clip = gr.Dropdown(
                            studio.clip_names(),
                            value=None,
                            label="or pick a clip (outputs/clips)",
                            allow_custom_value=True,
                        )
                        preview = gr.Video(label="clip", interactive=False, height=260)
                        facts = gr.Markdown(elem_id="clip-facts")
                    with gr.Column():
                        with gr.Row():
                            start = gr.Number(0, label="start frame (sample_start_idx)", precision=0)
                            end = gr.Number(None, label="end frame, exclusive (sample_end_idx)", precision=0)
                            stride = gr.Number(2, label="stride (sample_frame_rate)", precision=0)
                        with gr.Row():
                            frames = gr.Number(8, label="frames per step (n_sample_frames)", precision=0)
                            width = gr.Number(512, label="width", precision=0)
                            height = gr.Number(512, label="height", precision=0)
                        sampling = gr.Radio(
                            ["fixed", "random"],
                            value="fixed",
                            label="window_sampling",
                            info="fixed: the span's first frames, as the original; random: a window anywhere each step",
                        )
                        span_status = gr.Markdown(elem_id="span-status")
                        prompt = gr.Textbox(label="what the clip shows (train_data.prompt)")
                        with gr.Row():
                            run_name = gr.Textbox(label="run name: outputs/<name> (blank: from the prompt)")
                            bases = [(base.name, str(base)) for base in studio.models.bases]
                            base = gr.Dropdown(bases, value=bases[0][1], label="base model")
                        with gr.Row():
                            steps = gr.Number(defaults.max_train_steps, label="steps (max_train_steps)", precision=0)
                            learning_rate = gr.Number(defaults.learning_rate, label="learning_rate")
                        with gr.Row():
                            validation_prompts = gr.Textbox(label="validation prompts, one per line (optional)")
                            every = gr.Number(defaults.validation_steps, label="every (validation_steps)", precision=0)
                            validation_ddim = gr.Number(
                                defaults.validation_data.num_inference_steps, label="their DDIM steps", precision=0
                            )
                        tune_button = gr.Button("Tune", variant="primary")
                        tune_status = gr.Markdown(elem_id="tune-status")
                tune_progress = gr.HTML(elem_id="tune-progress")
                samples = gr.Gallery(
                    label="validation samples, as they are rendered", columns=4, height=220, object_fit="contain"
                )

            with gr.Tab("Edit", id="edit"):
                with gr.Row():
                    with gr.Column(scale=1):
                        run = gr.Dropdown(
                            runs,
                            value=runs[0] if runs else None,
                            label="finished run (outputs/)",
                            allow_custom_value=True,
                        )
                        prompts = gr.Textbox(lines=3, label="prompts, one per line", elem_id="edit-prompts")
                        with gr.Row():
                            edit_steps = gr.Number(
                                50, label="DDIM steps (sampling, inversion)", precision=0, elem_id="edit-steps"
                            )
                            guidance = gr.Number(12.5, label="guidance")
                            seed = gr.Number(33, label="seed", precision=0)
                        with gr.Row():
                            inversion = gr.Checkbox(True, label="start from the inverted clip")
                            compare = gr.Checkbox(False, label="compare: source | img2img | Tune-A-Video")
                        with gr.Row():
                            method = gr.Radio(
                                [("Tune-A-Video", "tuneavideo"), ("img2img baseline", "img2img")],
                                value="tuneavideo",
                                label="method",
                            )
                            strength = gr.Number(0.5, label="img2img strength")
                        with gr.Accordion("Structure guidance (ControlNet)", open=False):
                            control_kinds = gr.CheckboxGroup(
                                ["canny", "depth"], value=[], label="maps made from the clip"
                            )
                            control_video = gr.File(
                                label=f"or a control video made elsewhere, e.g. pose renders (at most "
                                f"{studio.max_upload_mb} MB)"
                            )
                            controlnets = gr.Dropdown(
                                studio.models.controlnets,
                                value=[],
                                multiselect=True,
                                label="ControlNets, in order: per map above, then the video (none: the SD-1.5 ones)",
                            )
                            control_scales = gr.Textbox("", label="scales, comma-separated (blank: 1.0 each)")
                        edit_button = gr.Button("Edit", variant="primary", elem_id="edit-button")
                        edit_status = gr.Markdown(elem_id="edit-status")
                        edit_progress = gr.HTML(elem_id="edit-progress")
                    with gr.Column(scale=2):
                        edit = gr.Dropdown([], value=None, label="edit (edits/<time>)", allow_custom_value=True)
                        with gr.Row(elem_id="edit-videos"):
                            source = gr.Video(label="source", interactive=False, visible=False)
                            slots = [gr.Video(interactive=False, visible=False) for _ in range(MAX_VIDEOS)]
                        grid = gr.Image(label="GIF grid", type="filepath", interactive=False, visible=False)
                        metrics_note = gr.Markdown(elem_id="metrics-note")
                        metrics = gr.Dataframe(
                            headers=list(METRIC_COLUMNS),
                            interactive=False,
                            label="metrics (python -m vidsynth.evaluate)",
                            elem_id="metrics",
                            column_widths=["20%", "11%", "21%", "8%", "10%", "11%", "9%", "10%"],
                        )
                        downloads = gr.File(label="files", file_count="multiple", interactive=False)

        gr.Markdown("## Queue")
        queue = gr.Dataframe(headers=QUEUE_COLUMNS, interactive=False, elem_id="queue")
        with gr.Row():
            to_cancel = gr.Dropdown([], value=None, label="job to cancel", allow_custom_value=True)
            cancel_button = gr.Button("Cancel job")
            cancel_status = gr.Markdown()
        seen = gr.State({})  # what this tab was last sent (see refresh)
        edit_signal = gr.State("")  # the selected run's edits and which are scored; a change redraws the edit
        timer = gr.Timer(1.0)

        # ---------------------------------------------------------------- clip and span

        span_inputs = [start, end, stride, frames, width, height, sampling]
        clip_outputs = [clip, preview, facts, start, end, stride, frames, width, height, span_status]

        def show_clip(name: str) -> tuple:
            info = studio.clip_info(name)
            span = studio.span_defaults(info)
            values = [span[key] for key in ("start", "end", "stride", "frames", "width", "height")]
            status = check_span(name, *values, "fixed")
            return (
                gr.Dropdown(choices=studio.clip_names(), value=name),
                info.path,
                describe_clip(info),
                *values,
                status,
            )

        def upload_clip(file: str | None) -> tuple:
            if file is None:
                return (gr.skip(),) * len(clip_outputs)
            try:
                return show_clip(studio.keep_upload(file))
            except VidSynthError as err:
                return (gr.skip(), None, problem(err), *(gr.skip(),) * 6, "")

        def pick_clip(name: str | None) -> tuple:
            try:
                return show_clip(name)
            except VidSynthError as err:
                return (gr.skip(), None, problem(err), *(gr.skip(),) * 7)

        def check_span(clip, start, end, stride, frames, width, height, sampling) -> str:
            try:
                return studio.check_span(clip, start, end, stride, frames, width, height, sampling)
            except VidSynthError as err:
                return problem(err)

        upload.upload(upload_clip, upload, clip_outputs, api_name="upload_clip")
        clip.input(pick_clip, clip, clip_outputs, api_name="pick_clip")
        gr.on(
            [field.input for field in span_inputs],
            check_span,
            [clip, *span_inputs],
            span_status,
            api_name="check_span",
            trigger_mode="always_last",  # the check of the last keystroke is the one shown
        )

        # ---------------------------------------------------------------- jobs

        def tune(
            clip, prompt, run_name, steps, learning_rate, base, start, end, stride, frames, width, height, sampling,
            validation_prompts, validation_steps, validation_ddim_steps,
        ) -> str:  # fmt: skip
            span = dict(zip(SPAN_KEYS, (start, end, stride, frames, width, height, sampling), strict=True))
            validation = {"prompts": validation_prompts, "every": validation_steps, "ddim_steps": validation_ddim_steps}
            try:
                job = studio.tune(clip, prompt, run_name, steps, learning_rate, base, span, validation)
            except VidSynthError as err:
                return problem(err)
            return f"Job {job.id} queued: {job.task.title}"

        validation_inputs = [validation_prompts, every, validation_ddim]
        tune_inputs = [clip, prompt, run_name, steps, learning_rate, base, *span_inputs, *validation_inputs]
        tune_button.click(tune, tune_inputs, tune_status, api_name="tune")

        def start_edit(
            run, prompts, steps, guidance, seed, inversion, method, compare, strength,
            controls, control_video, controlnets, control_scales,
        ) -> str:  # fmt: skip
            control = {"kinds": controls, "video": control_video, "controlnets": controlnets, "scales": control_scales}
            try:
                job = studio.edit(run, prompts, steps, guidance, seed, inversion, method, compare, strength, control)
            except VidSynthError as err:
                return problem(err)
            return f"Job {job.id} queued: {job.task.title}"

        edit_inputs = [run, prompts, edit_steps, guidance, seed, inversion, method, compare, strength]
        edit_inputs += [control_kinds, control_video, controlnets, control_scales]
        edit_button.click(start_edit, edit_inputs, edit_status, api_name="edit")

        def cancel(job_id) -> str:
            try:
                job = studio.cancel(job_id)
            except VidSynthError as err:
                return problem(err)
            return f"Job {job.id}: {'cancelled' if job.state != RUNNING else 'stopping'}"

        cancel_button.click(cancel, to_cancel, cancel_status, api_name="cancel")

        # ---------------------------------------------------------------- results

        def pick_run(name: str | None):
            try:
                edits = studio.edits(name)
            except VidSynthError:
                edits = []
            return gr.Dropdown(choices=edits, value=edits[0] if edits else None)

        def show_edit(run_name: str | None, edit_name: str | None) -> tuple:
            return edit_view_updates(studio, run_name, edit_name)

        run.change(pick_run, run, edit, show_progress="hidden")
        edit_outputs = [source, *slots, grid, metrics_note, metrics, downloads]
        edit.change(show_edit, [run, edit], edit_outputs, api_name="show_edit", show_progress="hidden")
        edit_signal.change(show_edit, [run, edit], edit_outputs, show_progress="hidden", api_visibility="private")

        # ---------------------------------------------------------------- the shared state, every second

        def refresh(seen: dict, run_name: str | None) -> tuple:
            """What changed since this tab's last refresh; everything else is skipped."""
            now = shared_state(studio, run_name)
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
            }
            out = [gr.skip() if now[key] == seen.get(key) else update(now[key]) for key, update in updates.items()]
            return (now, *out)

        timer.tick(
            refresh,
            [seen, run],
            [seen, queue, to_cancel, tune_progress, samples, edit_progress, run, edit, edit_signal, clip],
            show_progress="hidden",
            api_visibility="private",
        )

        def jobs() -> dict:
            """Every job (id, kind, title, state, position, times, progress, output, message) and the queue's events."""
            return {
                "jobs": [studio.queue.snapshot(job) for job in studio.queue.jobs()],
                "events": studio.queue.events(),
            }

        def finished() -> dict:
            """Each finished run with its edits, newest first."""
            return {name: studio.edits(name) for name in studio.runs()}

        gr.api(jobs, api_name="jobs")
        gr.api(finished, api_name="runs")
    return page


def serve(
    studio: Studio, host: str, port: int | None, share: bool = False, auth: list[tuple[str, str]] | None = None
) -> tuple[gr.Blocks, str]:
    """Build the page and start serving it (in a thread); returns it and its local URL.

    ``auth``: the (user, password) logins the page asks for (None: no login). Uploads above the studio's
    ``max_upload_mb`` are refused; of the outputs folder only clips and results are served
    (:mod:`vidsynth.app.served`); Gradio's copies of uploads and shown files go a day after they were made.
    """
    page = build_page(studio)
    page.queue(default_concurrency_limit=4)
    page.delete_cache = (3600, 86400)  # every hour, what Gradio copied more than a day ago
    _, url, _ = page.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        auth_message="VidSynth: log in with a user and password the app was started with.",
        prevent_thread_lock=True,
        max_file_size=studio.max_upload_mb * MB,
        allowed_paths=[str(studio.outputs)],  # so Gradio copies what the page shows; ServedFiles narrows URLs
        blocked_paths=[str(studio.checkpoints), str(studio.outputs / ".models"), str(studio.outputs / ".queue")],
        app_kwargs={"middleware": [Middleware(ServedFiles, outputs=studio.outputs)]},
        quiet=True,
        css=CSS,
        footer_links=["api"],
    )
    return page, url
