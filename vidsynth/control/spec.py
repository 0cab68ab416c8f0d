"""What one control is, resolved: its kind, its ControlNet, its scale and where its maps come from.

Defaults name hub ids; a copy that ``download_models.sh`` put in ``checkpoints/<name>`` is used when
it is there, so an offline machine with the downloads needs no hub.
"""

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants as hub_constants

from vidsynth.errors import VidSynthError
from vidsynth.testing.tiny_models import resolve_model
from vidsynth.workspace import CHECKPOINTS

# The SD-1.5 ControlNets (v1.1), which work with SD-1.x bases.
DEFAULT_CONTROLNETS = {
    "canny": "lllyasviel/control_v11p_sd15_canny",
    "depth": "lllyasviel/control_v11f1p_sd15_depth",
}
KINDS = ("canny", "depth", "video")
DOWNLOAD_FIX = "Download it with ./download_models.sh --control, or pass a local {what} folder"


def local_copy(ref: str, kind: str = "controlnet") -> str:
    """``ref``, or ``checkpoints/<name>`` when ``ref`` is a hub id that ``download_models.sh`` downloaded there;
    ``tiny`` is the tiny ``kind`` model (``controlnet`` or ``depth``)."""
    ref = resolve_model(ref, kind)
    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser().absolute())
    local = CHECKPOINTS / ref.rsplit("/", 1)[-1]
    return str(local) if "/" in ref and (local / "config.json").is_file() else ref


def load_error(ref: str, what: str, err: Exception) -> VidSynthError:
    """The message for a ControlNet or depth model that cannot be read: an unreachable hub id, or a bad folder."""
    if not Path(ref).expanduser().exists():
        why = "HF_HUB_OFFLINE is set" if hub_constants.HF_HUB_OFFLINE else "no network, or the id is wrong"
        return VidSynthError(
            f"cannot reach the Hugging Face hub for the {what} {ref} ({why}) and it is not in the local cache. "
            + DOWNLOAD_FIX.format(what=what)
        )
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return VidSynthError(f"cannot load the {what} {ref}: {reason}. Check the folder, or download it again")


@dataclass(frozen=True)
class ControlSpec:
    """One control. ``source``: the depth model (depth) or the control video (video); ``cache``: maps' cache file."""

    kind: str
    controlnet: str  # folder or hub id
    scale: float
    source: str | None = None
    thresholds: tuple[int, int] | None = None  # canny: low, high
    cache: Path | None = None  # canny and depth maps are cached; a control video is read as it is

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"ControlSpec kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def label(self) -> str:
        """How grids and logs name it."""
        if self.kind == "canny":
            return f"canny {self.thresholds[0]}/{self.thresholds[1]}"
        return "depth" if self.kind == "depth" else Path(self.source).name

    def describe(self) -> dict:
        """The sidecar's entry: everything the maps and their weight depend on."""
        entry = {"kind": self.kind, "controlnet": self.controlnet, "scale": self.scale}
        if self.kind == "canny":
            entry["thresholds"] = list(self.thresholds)
        elif self.kind == "depth":
            entry["depth_model"] = self.source
        else:
            entry["video"] = self.source
        return entry
