"""A region from a segmentation model: an object named by a text, a point or a box, followed through the span.

Two models, both through transformers' ``from_pretrained`` and neither needing torchvision:

* **CLIPSeg** (``CLIPSegForImageSegmentation``, default ``CIDAS/clipseg-rd64-refined``) turns a text
  ("person", "face") into a probability map of the span's first frame; its inputs come from its PIL image
  processor and its CLIP tokenizer. The bounding box of the pixels above ``threshold`` seeds SAM 2. A text
  that matches nothing there fails with one line naming the frame and the fix.
* **SAM 2 video** (``Sam2VideoModel``, default ``facebook/sam2.1-hiera-tiny``) outlines the object from that
  box (or from a point or box given directly) on the first frame and follows it through every frame with
  its memory. Its processors need torchvision, so :func:`sam2_pixels` prepares the frames by hand exactly
  as ``Sam2VideoVideoProcessor`` describes them (its class attributes): resize to the model's square
  ``image_size`` (bilinear, antialiased), rescale by 1/255, normalise with ImageNet's mean and std;
  torchvision would round the resized uint8 values, here they stay float (under 1/255 apart). Point and box
  coordinates are scaled to that square as ``Sam2VideoProcessor`` does (box corners get labels 2 and 3, a
  point label 1), and each frame's low-resolution mask logits are upsampled to the square and then to the
  frame, as its ``post_process_masks`` does.

Masks are where SAM 2's logits are above 0 (a probability of a half), as ``post_process_masks`` binarises them:
(F, H, W) float32 in {0, 1}. ``threshold`` is CLIPSeg's only.
"""

import functools
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor, AutoTokenizer, CLIPSegForImageSegmentation, Sam2VideoModel
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

from vidsynth.errors import VidSynthError
from vidsynth.hub import require_model
from vidsynth.testing.tiny_models import resolve_model
from vidsynth.workspace import CHECKPOINTS

logger = logging.getLogger(__name__)

DOWNLOAD_FIX = "Download it with ./download_models.sh --segment, or pass a local {what} folder"
OBJECT_ID = 1
POINT_LABEL, BOX_LABELS = 1, (2, 3)  # SAM 2's prompt labels: a foreground click, a box's two corners


def model_folder(ref: str, kind: str) -> str:
    """``ref``; ``checkpoints/<name>`` when ``ref`` is a hub id that ``download_models.sh`` put there; ``tiny``: the
    tiny ``kind`` model (``sam2-video`` or ``clipseg``)."""
    ref = resolve_model(ref, kind)
    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser().absolute())
    local = CHECKPOINTS / ref.rsplit("/", 1)[-1]
    return str(local) if "/" in ref and (local / "config.json").is_file() else ref


def _load(what: str, ref: str, load):
    require_model(ref, "config.json", what, DOWNLOAD_FIX.format(what=what))
    try:
        return load()
    except (OSError, ValueError) as err:  # missing files, or a model of another kind
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VidSynthError(f"cannot load the {what} {ref}: {reason}. {DOWNLOAD_FIX.format(what=what)}") from err


def load_text_segmenter(ref: str, device: torch.device, dtype: torch.dtype) -> tuple:
    """(CLIPSeg model, PIL image processor, tokenizer) of a folder, hub id or ``tiny``, in ``dtype`` on ``device``."""
    return _text_segmenter(model_folder(ref, "clipseg"), device, dtype)


def load_video_segmenter(ref: str, device: torch.device, dtype: torch.dtype) -> Sam2VideoModel:
    """The SAM 2 video model of a folder, hub id or ``tiny``, in ``dtype`` on ``device``."""
    return _video_segmenter(model_folder(ref, "sam2-video"), device, dtype)


@functools.lru_cache(maxsize=1)  # loaded once for repeated calls (the web app's previews)
def _text_segmenter(folder: str, device: torch.device, dtype: torch.dtype) -> tuple:
    def load():
        processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        return CLIPSegForImageSegmentation.from_pretrained(folder), processor, tokenizer

    model, processor, tokenizer = _load("segmentation text model", folder, load)
    return model.to(device, dtype).eval(), processor, tokenizer


@functools.lru_cache(maxsize=1)
def _video_segmenter(folder: str, device: torch.device, dtype: torch.dtype) -> Sam2VideoModel:
    model = _load("segmentation model", folder, lambda: Sam2VideoModel.from_pretrained(folder))
    return model.to(device, dtype).eval()


def sam2_pixels(frame: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, size, size) float32: resized (bilinear, antialiased), /255, ImageNet-normalised."""
    pixels = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
    pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_DEFAULT_STD)[:, None, None]
    return (pixels / 255 - mean) / std


@torch.no_grad()
def text_box(frame: np.ndarray, text: str, ref: str, device: torch.device, dtype: torch.dtype, threshold: float):
    """The box (x0, y0, x1, y1) in ``frame``'s pixels around what CLIPSeg finds for ``text`` above ``threshold``."""
    model, processor, tokenizer = load_text_segmenter(ref, device, dtype)
    height, width = frame.shape[:2]
    pixels = processor(images=[frame], return_tensors="pt").pixel_values.to(device, dtype)
    tokens = tokenizer([text], padding=True, return_tensors="pt").to(device)
    logits = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, pixel_values=pixels).logits
    logits = logits.float().reshape(1, 1, *logits.shape[-2:])  # CLIPSeg drops the batch axis for one image
    probs = torch.sigmoid(F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False))[0, 0]
    rows, cols = torch.nonzero(probs > threshold, as_tuple=True)
    if rows.numel() == 0:
        raise VidSynthError(
            f"the segmentation text {text!r} matches nothing in the span's first frame (frame 0: no pixel above "
            f"the threshold {threshold}, best {probs.max().item():.2f}). Try another word, a point "
            "(--segment-point X,Y) or a box (--segment-box X0,Y0,X1,Y1), or a lower mask_threshold"
        )
    return (cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1)


def _prompt(point: tuple | None, box: tuple | None, scale_x: float, scale_y: float) -> dict:
    """SAM 2's point inputs for one object on one frame: box corners first (labels 2, 3), then the click (1)."""
    coords, labels = [], []
    if box is not None:
        coords += [[box[0] * scale_x, box[1] * scale_y], [box[2] * scale_x, box[3] * scale_y]]
        labels += BOX_LABELS
    if point is not None:
        coords.append([point[0] * scale_x, point[1] * scale_y])
        labels.append(POINT_LABEL)
    return {
        "point_coords": torch.tensor([[coords]], dtype=torch.float32),  # (1 image, 1 object, N, 2)
        "point_labels": torch.tensor([[labels]], dtype=torch.int32),
    }


@torch.no_grad()
def segment_masks(
    frames: np.ndarray,
    *,
    text: str | None,
    point: tuple[float, float] | None,
    box: tuple[float, float, float, float] | None,
    model: str,
    text_model: str,
    device: torch.device,
    dtype: torch.dtype,
    threshold: float,
) -> torch.Tensor:
    """Frames (F, H, W, 3) uint8 -> (F, H, W) float32 masks in {0, 1} of the object named by ``text``, or at
    ``point`` / inside ``box`` (pixels of the frames) on the first frame, followed through every frame; ``threshold``:
    CLIPSeg's, for a text's box."""
    if (text is None) == (point is None and box is None):
        raise VidSynthError("segment with a text, or with a point and/or a box on the first frame (one of the two)")
    num_frames, height, width = frames.shape[:3]
    if text is not None:
        box = text_box(frames[0], text, text_model, device, dtype, threshold)
        logger.info("%r found in the first frame inside the box %s", text, box)
    sam = load_video_segmenter(model, device, dtype)
    size = sam.config.image_size if isinstance(sam.config.image_size, int) else sam.config.image_size[0]  # square
    video = torch.empty(num_frames, 3, size, size, dtype=dtype)  # on the CPU; SAM 2 moves one frame at a time
    for i, frame in enumerate(frames):
        video[i] = sam2_pixels(frame, size)
    session = Sam2VideoInferenceSession(
        video=video,
        video_height=height,
        video_width=width,
        inference_device=device,
        inference_state_device=device,
        video_storage_device="cpu",
        dtype=dtype,
    )
    session.add_point_inputs(session.obj_id_to_idx(OBJECT_ID), 0, _prompt(point, box, size / width, size / height))
    session.obj_with_new_inputs = [OBJECT_ID]
    masks = torch.zeros(num_frames, height, width)
    for output in sam.propagate_in_video_iterator(session, start_frame_idx=0):
        logits = output.pred_masks[:1].float()  # (1, 1, h, w): the one object
        logits = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        masks[output.frame_idx] = (logits[0, 0] > 0).float().cpu()
    return masks
