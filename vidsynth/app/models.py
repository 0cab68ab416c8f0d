"""The models the app offers: SD-1.x folders in ``checkpoints/`` (else the tiny offline one), the ControlNets
(the documented defaults and the ControlNet folders in ``checkpoints/``), the image-to-video (Stable Video
Diffusion) folders in ``checkpoints/`` (else the tiny offline one), the style LoRAs an edit may stack (the LoRA
files in ``checkpoints/loras/``), the segmentation models of region edits (SAM 2 video and CLIPSeg, when they are on
this machine, else tiny offline ones), and the CLIP that scores edits and animations
(``openai/clip-vit-large-patch14`` when it is on this machine, else a tiny offline one).

These lists are all a page can choose from: the server refuses any other model, so nobody who reaches
the page makes it read a folder or download a repository of their choosing.

The stand-ins are the models named ``tiny`` (:mod:`vidsynth.testing.tiny_models`): random weights in the
real layouts, so every stage runs offline, and the page says plainly that their pictures and CLIP scores
are noise. They are built once into the cache folder every command shares, where the runs tuned on them
keep finding them.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError, safe_open

from vidsynth.animation.model import PIPELINE_CLASS as SVD_CLASS
from vidsynth.config.inference import SEGMENT_MODEL, SEGMENT_TEXT_MODEL
from vidsynth.control.spec import DEFAULT_CONTROLNETS
from vidsynth.evaluation.metrics import DEFAULT_CLIP_MODEL
from vidsynth.testing.tiny_models import TINY, resolve_model

LORA_FOLDER = "loras"  # in checkpoints/: the style LoRAs an edit may stack
TINY_SD_NOTICE = (
    "No SD-1.x model in `checkpoints/`: tuning and editing use a tiny model with **random weights**, built "
    "offline, so every result is noise. Put an SD-1.x folder there (`./download_models.sh`) for real edits."
)
TINY_SVD_NOTICE = (
    "No Stable Video Diffusion model in `checkpoints/`: animating uses a tiny model with **random weights**, so "
    "every animation is noise. Put one there (`./download_models.sh stabilityai/stable-video-diffusion-img2vid-xt`)."
)
TINY_SEGMENT_NOTICE = (
    "No segmentation models in `checkpoints/` or the Hugging Face cache: a *segment* text or a click on the first "
    "frame uses tiny models with **random weights**, so the masks are noise. Fetch them with "
    "`./download_models.sh --segment`."
)
TINY_CLIP_NOTICE = (
    f"Metrics scored with a tiny CLIP with **random weights** ({DEFAULT_CLIP_MODEL} is not on this machine): "
    "the CLIP consistency and text alignment numbers are meaningless; flicker does not use CLIP."
)


@dataclass(frozen=True)
class Models:
    """What tuning and animating can start from, and what scores the results, with a notice for each stand-in."""

    bases: list[Path]  # SD-1.x folders; the tiny one alone when checkpoints/ has none
    base_notice: str | None
    clip_model: str  # hub id or folder, for ``python -m vidsynth.evaluate --clip-model``
    clip_notice: str | None
    controlnets: list[str]  # hub ids of the defaults, ControlNet folders of checkpoints/
    animators: list[str]  # image-to-video folders of checkpoints/; tiny alone when there are none
    animator_notice: str | None
    loras: dict[str, Path] = field(default_factory=dict)  # style LoRA files by their name in checkpoints/loras/
    segment_models: tuple[str, str] = (TINY, TINY)  # SAM 2 video and CLIPSeg: region edits' segment_model keys
    segment_notice: str | None = TINY_SEGMENT_NOTICE


def _pipeline_class(folder: Path) -> str | None:
    """The ``_class_name`` of a diffusers pipeline folder's ``model_index.json`` (None: not a pipeline folder)."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return None
    return index.get("_class_name", "") if isinstance(index, dict) else None


def sd_folders(checkpoints: Path) -> list[Path]:
    """The diffusers SD-1.x folders (a ``model_index.json``, not an image-to-video one) directly in ``checkpoints``."""
    if not checkpoints.is_dir():
        return []
    found = sorted(checkpoints.iterdir())
    return [folder for folder in found if _pipeline_class(folder) not in (None, SVD_CLASS)]


def svd_folders(checkpoints: Path) -> list[Path]:
    """The image-to-video folders (``model_index.json`` of a ``StableVideoDiffusionPipeline``) in ``checkpoints``."""
    found = sorted(checkpoints.iterdir()) if checkpoints.is_dir() else []
    return [folder for folder in found if _pipeline_class(folder) == SVD_CLASS]


def controlnet_folders(checkpoints: Path) -> list[Path]:
    """The diffusers ControlNet folders (a ``config.json`` of a ``ControlNetModel``) directly in ``checkpoints``."""
    found = []
    for folder in sorted(checkpoints.iterdir()) if checkpoints.is_dir() else []:
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("_class_name") == "ControlNetModel":
            found.append(folder)
    return found


def controlnet_choices(checkpoints: Path) -> list[str]:
    """The default ControlNets' hub ids (their copies in ``checkpoints/`` are used when there), then the others
    in ``checkpoints/``."""
    defaults = list(DEFAULT_CONTROLNETS.values())
    names = {ref.rsplit("/", 1)[-1] for ref in defaults}
    return defaults + [str(folder) for folder in controlnet_folders(checkpoints) if folder.name not in names]


def _is_lora(file: Path) -> bool:
    """Whether a .safetensors file holds LoRA matrices (diffusers' or kohya's keys name them ``lora``); only its
    header is read."""
    try:
        with safe_open(file, "pt") as weights:
            return any("lora" in key for key in weights.keys())
    except (OSError, SafetensorError):
        return False


def lora_files(folder: Path) -> dict[str, Path]:
    """The LoRA files (``.safetensors``) in ``folder`` and its subfolders, by their path in it; a link that leads
    out of the folder is left out."""
    root = folder.resolve()
    found = sorted(folder.rglob("*.safetensors")) if folder.is_dir() else []
    inside = [file for file in found if file.is_file() and file.resolve().is_relative_to(root)]
    return {file.relative_to(folder).as_posix(): file.absolute() for file in inside if _is_lora(file)}


def _local_model(checkpoints: Path, ref: str) -> str | None:
    """The hub model ``ref`` if it is here: ``checkpoints/<name>`` (as ``download_models.sh`` puts it), or in the
    Hugging Face cache."""
    folder = checkpoints / ref.split("/")[1]
    if (folder / "config.json").is_file():
        return str(folder)
    return ref if isinstance(try_to_load_from_cache(ref, "config.json"), str) else None


def segment_models(checkpoints: Path) -> tuple[tuple[str, str], str | None]:
    """The segmentation models region edits use (SAM 2 video, CLIPSeg): the defaults where they are here, else the
    tiny ones, with a notice."""
    found = tuple(_local_model(checkpoints, ref) or TINY for ref in (SEGMENT_MODEL, SEGMENT_TEXT_MODEL))
    return found, TINY_SEGMENT_NOTICE if TINY in found else None


def find_models(checkpoints: Path) -> Models:
    """The base models and the CLIP model, with the tiny stand-ins (built the first time) where they are missing."""
    bases, base_notice = sd_folders(checkpoints), None
    if not bases:
        bases, base_notice = [Path(resolve_model(TINY))], TINY_SD_NOTICE
    clip_model, clip_notice = _local_model(checkpoints, DEFAULT_CLIP_MODEL), None
    if clip_model is None:
        clip_model, clip_notice = resolve_model(TINY, "clip"), TINY_CLIP_NOTICE
    animators = [str(folder) for folder in svd_folders(checkpoints)]
    animator_notice = None if animators else TINY_SVD_NOTICE
    controlnets = controlnet_choices(checkpoints)
    loras = lora_files(checkpoints / LORA_FOLDER)
    segment, segment_notice = segment_models(checkpoints)
    return Models(
        bases, base_notice, clip_model, clip_notice, controlnets, animators or [TINY], animator_notice, loras, segment,
        segment_notice,
    )  # fmt: skip
