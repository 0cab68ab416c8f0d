"""The still an animation starts from: an image file, or a frame of a video (an edit's first, a clip's last).

An image with transparency is flattened onto white (said in a log line): the model takes RGB, and
white is what a viewer shows behind a transparent product photo. A file that is not an image fails
with what it is and what to pass instead.
"""

import logging
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vidsynth.errors import VidSynthError
from vidsynth.media.video import VIDEO_SUFFIXES

logger = logging.getLogger(__name__)


def read_still(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB, transparency flattened onto white; refused with the fix if not an image."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise VidSynthError(f"image {path} does not exist or is not a file. Pass --image with a PNG or JPEG")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise VidSynthError(
            f"{path.name} is a video, not a still. Animate its first frame with --from-edit {path}, or continue "
            f"it with --video {path} --extend SECONDS"
        )
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as err:
        raise VidSynthError(f"{path} is not an image PIL can read ({err}). Pass --image with a PNG or JPEG") from None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        logger.info("%s has transparency: flattened onto white", path.name)
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
