"""The Edit tab's region controls, laid out by :mod:`vidsynth.app.ui`: where the region comes from, what is done with
it, the span's first frame to click on, and the mask of the edit shown (the values are checked by
:mod:`vidsynth.app.region`)."""

import gradio as gr

from vidsynth.app.handlers import PageHandlers, problem
from vidsynth.app.region import EDIT_CHOICES, first_frame, mark_point, shown_frame, source_point
from vidsynth.app.wording import EDIT_FIELDS
from vidsynth.errors import VidSynthError

MASK_SUFFIX = ".mask.mp4"  # inference.py's mask video, beside each edited MP4


def click_frame(handlers: PageHandlers, run: str | None, x: float, y: float) -> tuple:
    """A click at (``x``, ``y``) on the shown first frame of ``run``: the frame marked there, and "X,Y" in the
    source's pixels."""
    frame = first_frame(handlers.studio.run_path(run))
    shown = shown_frame(frame)
    sx, sy = source_point(x, y, (shown.shape[1], shown.shape[0]), (frame.shape[1], frame.shape[0]))
    return mark_point(shown, x, y), f"{sx:g},{sy:g}"


def edit_mask(handlers: PageHandlers, run: str | None, edit: str | None) -> str | None:
    """The mask video of the edit shown (its first prompt's, or the first there is); None: the edit has none."""
    try:
        view = handlers.studio.edit_view(run, edit)
    except VidSynthError:
        return None  # the results show the message
    first = view.videos[0][1].stem + MASK_SUFFIX if view.videos else None
    masks = sorted((path for path in view.files if path.name.endswith(MASK_SUFFIX)), key=lambda p: p.name != first)
    return str(masks[0]) if masks else None


def region_fields(handlers: PageHandlers, run: gr.Dropdown) -> list:
    """The region options (in the order :meth:`PageHandlers.edit` takes them) and the first frame to click on."""
    with gr.Accordion("Region (edit part of the frame)", open=False) as options:
        if notice := handlers.studio.models.segment_notice:
            gr.Markdown(f"⚠️ {notice}", elem_classes="vs-notice", elem_id="segment-notice")
        word = gr.Textbox(
            "", label="region word", info="a word of the run's prompt or an edit prompt (cross-attention)"
        )
        with gr.Row():
            segment = gr.Textbox("", label="segment", info="what a segmentation model finds, e.g. person or face")
            point = gr.Textbox(
                "",
                label="segment point",
                info="X,Y in the clip's pixels: click the first frame",
                elem_id="segment-point",
            )
        frame = gr.Image(
            label="first frame (click the subject)", type="numpy", interactive=False, elem_id="region-frame"
        )
        frame_status = gr.Markdown(elem_id="region-frame-status")
        mask_video = gr.File(label="mask video", elem_id="mask-video")  # black-and-white, the span's frames
        edit = gr.Radio([(label, key) for key, label in EDIT_CHOICES.items()], value="inside", label="region edit")
        with gr.Row():
            background = gr.File(label="background", file_types=["image", "video"], elem_id="background")
            colour = gr.Textbox("", label="background colour", info="#RRGGBB, or blur (instead of a file)")
        prompt = gr.Textbox(
            "",
            label="background prompt",
            info='a new background made by the video model: its prompt (leave "prompts" blank)',
        )

    def show_frame(name: str | None) -> tuple:
        try:
            return shown_frame(first_frame(handlers.studio.run_path(name))), ""
        except VidSynthError as err:
            return None, problem(err, EDIT_FIELDS)

    def click(name: str | None, evt: gr.SelectData) -> tuple:
        try:
            marked, text = click_frame(handlers, name, *evt.index)
        except VidSynthError as err:
            return gr.skip(), gr.skip(), problem(err, EDIT_FIELDS)
        return marked, text, f"Segment point {text} (the clip's pixels)"

    for shown in (run.change, options.expand):
        shown(show_frame, run, [frame, frame_status], show_progress="hidden", api_visibility="private")
    frame.select(click, run, [frame, point, frame_status], api_visibility="private")
    return [word, segment, point, mask_video, edit, background, colour, prompt]


def mask_preview(handlers: PageHandlers, run: gr.Dropdown, edit: gr.Dropdown) -> gr.Video:
    """The mask of the edit shown, beside its results (hidden when the edit has none)."""
    mask = gr.Video(label="mask", interactive=False, visible=False, elem_id="edit-mask")

    def show(run_name: str | None, edit_name: str | None):
        found = edit_mask(handlers, run_name, edit_name)
        return gr.Video(found, visible=found is not None)

    edit.change(show, [run, edit], mask, show_progress="hidden", api_visibility="private")
    return mask
