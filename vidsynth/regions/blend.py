"""Keeping the source outside an edit's region: in the latents at every sampling step, then in the pixels.

FateZero and Video-P2P blend the edited and the source latents inside a mask at each step. Here the
source at each step is the clip's own DDIM inversion trajectory (``pipe.invert(..., return_all=True)``),
so with as many sampling as inversion steps, sampling step ``i`` lands on the inverted latent of the
same timestep. :class:`LatentBlend` is a diffusers ``callback_on_step_end`` that puts those latents back
wherever the edit does not act (a latent cell acts when any pixel of it does), so the edit's layout and
the source's agree at every step. The decoded pixels are then composited: the edit where it acts, the
source elsewhere, across a soft edge of ``feather`` pixels that lies outside the region (:func:`keep_source`).
A background replacement puts the region's subject over new frames the same way (:func:`subject_over`).
"""

import cv2
import numpy as np
import torch
import torch.nn.functional as F

EDITS = ("inside", "outside")


def acting(masks: torch.Tensor, edit: str) -> torch.Tensor:
    """Where the edit acts, (F, H, W) float {0, 1}: the region (``inside``) or everything else (``outside``)."""
    if edit not in EDITS:
        raise ValueError(f"edit must be one of {EDITS}, got {edit!r}")
    return masks if edit == "inside" else 1 - masks


def latent_mask(masks: torch.Tensor, edit: str, feather: int, latent_size: tuple[int, int]) -> torch.Tensor:
    """(1, 1, F, h, w) bool: the latent cells where the edit acts, its soft edge included."""
    alpha = torch.from_numpy(feathered(acting(masks, edit).numpy(), feather if edit == "inside" else 0))
    pooled = F.adaptive_avg_pool2d(alpha[:, None].float(), latent_size)  # (F, 1, h, w)
    return (pooled > 0).permute(1, 0, 2, 3).unsqueeze(0)


class LatentBlend:
    """``callback_on_step_end``: after sampling step ``i`` the latents outside ``mask`` become the source's.

    ``trajectory``: the inversion from the clip's latents (first) to the inverted ones (last), one more
    entry than sampling steps; ``mask``: (1, 1, F, h, w) bool, True where the edit acts. Either side is kept
    bit for bit: an empty mask gives the source's latents, a full one the plain edit. The latents are
    written in place, so their memory layout (and with it the next step's arithmetic) stays the pipeline's.
    """

    tensor_inputs = ["latents"]

    def __init__(self, trajectory: list[torch.Tensor], mask: torch.Tensor):
        self.trajectory = trajectory
        self.mask = mask

    def __call__(self, pipe, step: int, timestep, tensors: dict) -> dict:
        latents = tensors["latents"]
        index = len(self.trajectory) - 2 - step  # the inverted latent of the timestep this step reached
        if index < 0:
            raise ValueError(f"the inversion has {len(self.trajectory) - 1} steps, fewer than the sampling's")
        source = self.trajectory[index].to(latents.device, latents.dtype)
        return {"latents": latents.copy_(torch.where(self.mask.to(latents.device), latents, source))}


def feathered(masks: np.ndarray, feather: int) -> np.ndarray:
    """(F, H, W) {0, 1} -> (F, H, W) float32 alpha: 1 on the mask, falling to 0 over ``feather`` pixels outside it."""
    if feather <= 0:
        return masks.astype(np.float32)
    alpha = np.zeros(masks.shape, np.float32)  # a frame without region stays 0
    for i, mask in enumerate(masks):
        outside = (mask < 0.5).astype(np.uint8)
        if not outside.all():
            distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)  # pixels to the nearest region pixel
            alpha[i] = np.clip(1 - distance / (feather + 1), 0, 1)
    return alpha


def composite(front: np.ndarray, back: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``front`` over ``back`` ((F, H, W, 3) uint8) by ``alpha`` (F, H, W): exactly ``front`` where alpha is 1, ``back``
    where it is 0."""
    a = alpha[..., None].astype(np.float32)
    mixed = front.astype(np.float32) * a + back.astype(np.float32) * (1 - a)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def subject_over(frames: np.ndarray, background: np.ndarray, masks: torch.Tensor, feather: int) -> np.ndarray:
    """The subject (``masks`` (F, H, W), 1 on it) of ``frames`` over ``background`` ((F, H, W, 3) uint8 each): exactly
    ``frames`` on the mask, the matte feathered outwards, so the background begins ``feather`` pixels beyond its edge.
    """
    return composite(frames, background, feathered(masks.numpy(), feather))


def keep_source(
    edited: np.ndarray, source: np.ndarray, masks: torch.Tensor, edit: str, feather: int, harmonize: float = 0.0
) -> np.ndarray:
    """The edited frames where the edit acts, the source's elsewhere; the soft edge lies outside the region.

    ``inside``: the edit on the region and its feathered edge, the source beyond; ``outside``: the source on
    the region (the subject, exactly) and, fading over its edge, the edit beyond. ``harmonize`` S (a light
    edit of a new background): the result mixed into ``source`` by S outside the region, the subject kept.
    """
    alpha = feathered(masks.numpy(), feather)
    if edit == "inside":
        return composite(edited, source, alpha)
    kept = composite(source, edited, alpha)
    if not harmonize:
        return kept
    return composite(source, kept, 1 - harmonize * (1 - alpha))  # 1 on the subject, 1 - S beyond its edge
