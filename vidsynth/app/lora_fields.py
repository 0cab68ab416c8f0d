"""The page's LoRA controls, laid out by :mod:`vidsynth.app.ui`: a LoRA rank in the Tune tab, style LoRAs in the
Edit tab (what they send is checked by :mod:`vidsynth.app.loras`)."""

import gradio as gr

from vidsynth.app.loras import RANK_LABELS
from vidsynth.app.service import Studio


def lora_tuning_fields() -> list:
    """Full tuning or LoRA adapters of a rank (``lora_rank``), and adapters on the temporal layers too."""
    with gr.Row():
        rank = gr.Radio(
            [(label, choice) for choice, label in RANK_LABELS.items()],
            value="full",
            label="LoRA rank",
            info="full tuning: the tuned weights, ~300 MB for SD-1.x; a LoRA rank: adapters of a few MB",
        )
        temporal = gr.Checkbox(
            False, label="adapters on the temporal layers too", info="LoRA only: the result is the adapters alone"
        )
    return [rank, temporal]


def style_lora_fields(studio: Studio) -> list:
    """Style LoRAs to stack on the model (the LoRA files of ``checkpoints/loras/``), their scales, and the scale of a
    LoRA run's own adapters."""
    with gr.Accordion("Style LoRAs", open=False):
        styles = gr.Dropdown(
            list(studio.models.loras),
            value=[],
            multiselect=True,
            label="style LoRAs",
            info="SD-1.x LoRA files (diffusers or kohya format) in checkpoints/loras/",
        )
        scales = gr.Textbox("", label="style LoRA scales", info="comma-separated, or one for all (blank: 1.0 each)")
        tuned = gr.Number(1.0, label="tuned LoRA scale", info="a LoRA run's adapters: 0 = the base model, 1 = as tuned")
    return [styles, scales, tuned]
