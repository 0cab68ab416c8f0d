"""Quality metrics for edited clips: CLIP frame consistency, CLIP text alignment and pixel flicker.

Definitions (all on CLIP's *projected* embeddings, cosine similarity scaled by 100):

- Frame consistency, all pairs — Tune-A-Video (Wu et al., ICCV 2023, §4.1 "Frame Consistency") and the
  LOVEU-TGVE 2023 benchmark ("CLIP Score Frame Consistency"): the mean cosine similarity over all pairs
  of distinct frames of the edited video.
- Frame consistency, consecutive — FateZero (Qi et al., ICCV 2023, "Tem-Con"): the mean cosine similarity
  of neighbouring frames i and i+1, which punishes frame-to-frame jumps and ignores slow drift.
- Text alignment — Tune-A-Video's "Textual Faithfulness" / LOVEU-TGVE's "CLIP Score Text Alignment": the
  mean over frames of 100 × cosine(frame, edited prompt). Unlike CLIPScore (Hessel et al., 2021) there is
  no clamping at 0 and no 2.5 weight, matching how the video-editing papers report it.
- Image alignment — for animations (image to video), in place of text alignment: the mean over frames
  of 100 × cosine(frame, input image), text alignment's formula with the still in place of the prompt.
- Flicker — VidSynth's own model-free check: the mean absolute change between consecutive edited frames
  divided by the same for the source frames, so 1.0 means "as steady as the source" and larger values
  mean the edit added temporal noise. An animation has no source video: :func:`animation_flicker`.

The formulas are pure numpy functions (float64); :class:`ClipScorer` turns frames and prompts into the
embeddings they take.
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer
from transformers.utils import cached_file

from vidsynth.errors import VidSynthError
from vidsynth.evaluation import DEFAULT_CLIP_MODEL
from vidsynth.hub import require_model
from vidsynth.testing.tiny_models import resolve_model


def _unit_rows(emb: np.ndarray, name: str) -> np.ndarray:
    """Rows of ``emb`` (N, D) scaled to unit length, in float64; a zero row has no direction."""
    emb = np.asarray(emb, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=-1, keepdims=True)  # (N, 1)
    if np.any(norms == 0):
        raise VidSynthError(f"{name} contains an all-zero embedding, whose cosine is undefined. Check the model.")
    return emb / norms


def _frame_embeddings(image_emb: np.ndarray) -> np.ndarray:
    """Validate per-frame embeddings (F, D) with F >= 2 and return them unit-normalised."""
    image_emb = np.asarray(image_emb)
    if image_emb.ndim != 2:
        raise VidSynthError(
            f"Frame embeddings must have shape (frames, dim), got {image_emb.shape}. Pass one row per frame."
        )
    if image_emb.shape[0] < 2:
        raise VidSynthError(
            f"Frame consistency needs at least 2 frames, got {image_emb.shape[0]}. Evaluate a clip of 2 or more frames."
        )
    return _unit_rows(image_emb, "The frame embeddings")


def frame_consistency_all_pairs(image_emb: np.ndarray) -> float:
    """Mean cosine similarity over all ordered pairs i != j of frame embeddings, × 100 (Tune-A-Video).

    ``image_emb``: (F, D), F >= 2. Ordered and unordered pairs give the same mean (cosine is symmetric).
    """
    unit = _frame_embeddings(image_emb)  # (F, D)
    num_frames = unit.shape[0]
    cos = unit @ unit.T  # (F, F), diagonal = 1
    off_diagonal_sum = cos.sum() - np.trace(cos)
    return float(100.0 * off_diagonal_sum / (num_frames * (num_frames - 1)))


def frame_consistency_consecutive(image_emb: np.ndarray) -> float:
    """Mean cosine similarity of frames i and i+1, × 100 (FateZero's Tem-Con). ``image_emb``: (F, D), F >= 2."""
    unit = _frame_embeddings(image_emb)  # (F, D)
    cos = np.sum(unit[:-1] * unit[1:], axis=-1)  # (F-1,)
    return float(100.0 * cos.mean())


def _alignment(frame_emb: np.ndarray, reference_emb: np.ndarray, reference: str, fix: str) -> float:
    """Mean over frames of 100 × cosine(frame, reference). ``frame_emb``: (F, D); ``reference_emb``: (D,) or (1, D)."""
    frame_emb = np.asarray(frame_emb)
    reference_emb = np.asarray(reference_emb).reshape(-1)  # (D,)
    if frame_emb.ndim != 2 or frame_emb.shape[0] < 1 or frame_emb.shape[1] != reference_emb.shape[0]:
        raise VidSynthError(
            f"Frame embeddings {frame_emb.shape} and {reference} embedding {reference_emb.shape} do not match. {fix}"
        )
    frames = _unit_rows(frame_emb, "The frame embeddings")  # (F, D)
    unit_reference = _unit_rows(reference_emb[None], f"The {reference} embedding")[0]  # (D,)
    return float(100.0 * (frames @ unit_reference).mean())


def text_alignment(image_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """Mean over frames of 100 × cosine(frame, prompt) (Tune-A-Video / LOVEU-TGVE CLIP score).

    ``image_emb``: (F, D); ``text_emb``: (D,) or (1, D).
    """
    return _alignment(image_emb, text_emb, "text", "Embed frames and prompt with the same CLIP model.")


def image_alignment(frame_emb: np.ndarray, image_emb: np.ndarray) -> float:
    """Mean over frames of 100 × cosine(frame, input image): how much of the still an animation keeps.

    ``frame_emb``: (F, D); ``image_emb``: (D,) or (1, D). 100 when every frame embeds as the image does.
    """
    return _alignment(frame_emb, image_emb, "image", "Embed frames and the input image with the same CLIP model.")


def _as_unit_float(frames: np.ndarray) -> np.ndarray:
    """Frames as float64 in [0, 1]: uint8 is divided by 255, floats are taken to be in [0, 1] already."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float64) / 255.0
    return frames.astype(np.float64)


def _mean_consecutive_change(frames: np.ndarray) -> float:
    """Mean absolute difference between frames t and t+1 over all pixels and channels; frames (F, H, W, 3)."""
    return float(np.abs(np.diff(frames, axis=0)).mean())


def flicker(edited: np.ndarray, source: np.ndarray) -> float:
    """Temporal change of the edit relative to the source: 1.0 = as steady as the source, 0 = frozen.

    ``edited`` and ``source``: (F, H, W, 3), uint8 or float in [0, 1], same shape, F >= 2. No model is
    involved, so this catches flicker that CLIP's pooled embeddings smooth over.
    """
    edited, source = np.asarray(edited), np.asarray(source)
    if edited.shape != source.shape or edited.ndim != 4 or edited.shape[-1] != 3:
        raise VidSynthError(
            f"Flicker needs edited and source frames of the same shape (frames, height, width, 3), got {edited.shape} "
            f"and {source.shape}. Read the source at the edited clip's frame indices and size."
        )
    if edited.shape[0] < 2:
        raise VidSynthError(
            f"Flicker needs at least 2 frames, got {edited.shape[0]}. Evaluate a clip of 2 or more frames."
        )
    source_change = _mean_consecutive_change(_as_unit_float(source))
    if source_change == 0:
        raise VidSynthError(
            "The source frames are all identical, so flicker (edited change / source change) is undefined. "
            "Evaluate an edit of a source clip with motion."
        )
    return _mean_consecutive_change(_as_unit_float(edited)) / source_change


def animation_flicker(frames: np.ndarray, clip_frames: int = 0) -> float:
    """Flicker of an animation, which has no source video to divide by as :func:`flicker` does for an edit.

    A still animated (``clip_frames`` 0): the mean absolute change between consecutive frames, in units of
    the pixel range, so 0 = frozen and 1 = every pixel swinging from black to white at every frame.
    A clip extended (its first ``clip_frames`` frames are the clip's own): the mean change between
    consecutive frames from the clip's last frame on (a jump at the joint counts) divided by the mean
    change between the clip's own frames, so 1.0 = as steady as the clip it continues.
    ``frames``: (F, H, W, 3), uint8 or float in [0, 1].
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VidSynthError(f"Flicker needs frames of shape (frames, height, width, 3), got {frames.shape}.")
    if frames.shape[0] < 2:
        raise VidSynthError(
            f"Flicker needs at least 2 frames, got {frames.shape[0]}. Evaluate an animation of 2 or more frames."
        )
    frames = _as_unit_float(frames)
    if not clip_frames:
        return _mean_consecutive_change(frames)
    if not 2 <= clip_frames < len(frames):
        raise VidSynthError(
            f"An extended clip's flicker compares its generated frames with at least 2 of the clip's own, but "
            f"{clip_frames} of its {len(frames)} frames are the clip's. Check the sidecar's source.num_frames."
        )
    clip_change = _mean_consecutive_change(frames[:clip_frames])
    if clip_change == 0:
        raise VidSynthError(
            "The clip's own frames are all identical, so the extension's flicker (generated change / clip change) "
            "is undefined. Evaluate an extension of a clip with motion."
        )
    return _mean_consecutive_change(frames[clip_frames - 1 :]) / clip_change


def _projected(output: torch.Tensor | object) -> torch.Tensor:
    """The projected embedding from ``get_*_features``: transformers 5 returns an output object whose
    ``pooler_output`` holds it, older versions return the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipScorer:
    """CLIP image and text embeddings, frames preprocessed by transformers' ``CLIPImageProcessorPil``.

    That processor is ``CLIPImageProcessor``'s steps (shortest side to the checkpoint's size, bicubic,
    centre crop, scale, normalise with the checkpoint's mean/std) on PIL and numpy; transformers 5's
    ``CLIPImageProcessor`` itself needs torchvision, which this project does not install.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_CLIP_MODEL,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int = 16,
    ):
        self.name = resolve_model(str(model), "clip")
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        fix = f"Pass --clip-model with a local CLIP checkpoint folder, or download it while online: hf download {model}"
        require_model(self.name, "config.json", "CLIP model", fix)
        try:
            self.model = CLIPModel.from_pretrained(self.name, dtype=dtype).to(self.device).eval()
            self.tokenizer = CLIPTokenizer.from_pretrained(self.name)
        except OSError as err:
            # For a missing path transformers complains about repo-id syntax; say what actually went wrong.
            reason = (
                str(err).splitlines()[0]
                if Path(self.name).is_dir()
                else "it is not a local folder, nor a Hugging Face model loadable now (offline or not cached)."
            )
            raise VidSynthError(
                f"Cannot load the CLIP model {self.name!r}: {reason} Pass --clip-model with a local path to a CLIP "
                f"checkpoint folder, or download {self.name} into the Hugging Face cache while online."
            ) from err
        self._load_preprocessing()

    def _load_preprocessing(self) -> None:
        """The checkpoint's preprocessor_config.json; without one, CLIP's defaults at the model's image size."""
        if cached_file(self.name, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False):
            self.processor = CLIPImageProcessorPil.from_pretrained(self.name)
        else:
            side = self.model.config.vision_config.image_size
            self.processor = CLIPImageProcessorPil(
                size={"shortest_edge": side}, crop_size={"height": side, "width": side}
            )  # OpenAI's mean and std

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> normalised pixel values (B, 3, crop_h, crop_w), float32."""
        return self.processor(images=list(frames), return_tensors="pt").pixel_values

    @torch.no_grad()
    def image_embeddings(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames (F, H, W, 3) -> projected CLIP image embeddings (F, D), float32, in batches."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise VidSynthError(
                f"Expected uint8 frames (frames, height, width, 3), got {frames.dtype} {frames.shape}. "
                "Decode the video to RGB uint8 frames."
            )
        chunks = []
        for start in range(0, len(frames), self.batch_size):
            pixels = self.preprocess(frames[start : start + self.batch_size])  # (B, 3, h, w)
            pixels = pixels.to(device=self.device, dtype=self.dtype)
            chunks.append(_projected(self.model.get_image_features(pixel_values=pixels)).float().cpu())  # (B, D)
        return torch.cat(chunks).numpy()

    @torch.no_grad()
    def text_embedding(self, prompt: str) -> np.ndarray:
        """Prompt -> projected CLIP text embedding (D,), float32 (padded/truncated to CLIP's 77 tokens)."""
        tokens = self.tokenizer(
            [prompt],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).to(self.device)
        return _projected(self.model.get_text_features(**tokens)).float().cpu().numpy()[0]


def change_outside(edited: np.ndarray, source: np.ndarray, mask_video: Path) -> float | None:
    """Mean absolute difference (pixel levels) of ``edited`` from ``source`` outside the mask (None: no outside)."""
    masks = iio.imread(mask_video, index=None, plugin="FFMPEG").mean(axis=-1) >= 128  # (F, H, W)
    outside = ~masks[: len(edited)]
    if not outside.any():
        return None
    return float(np.abs(edited.astype(np.float32) - source.astype(np.float32))[outside].mean())
