"""Caption text for the GIF grids: a font that has the glyphs, wrapped to the column, cut to a few lines.

PIL's default bitmap font draws non-Latin text and emoji as boxes, and a long prompt unwrapped or
uncut makes a caption taller than the video. Each caption gets the first installed font that covers
its characters, and is wrapped by pixel width (between characters where a script has no spaces).
"""

import functools
import itertools
import logging
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from PIL import ImageFont

logger = logging.getLogger(__name__)

CAPTION_LINES = 3  # longer captions end in an ellipsis: a 500-word prompt must not make a 2,000-px-tall GIF
_ELLIPSIS = "…"

# Caption font files, best first (lower case: matched case-insensitively). DejaVu covers Latin, Greek and
# Cyrillic; Noto and the platforms' own fonts add CJK and other scripts. Colour emoji fonts are left out:
# FreeType draws them at fixed sizes only.
_FONT_FILES = (
    "dejavusans.ttf",
    "notosans-regular.ttf",
    "notosanscjk-regular.ttc",
    "notosanscjksc-regular.otf",
    "notosanssc-regular.otf",
    "notosansjp-regular.otf",
    "notosanskr-regular.otf",
    "notosansarabic-regular.ttf",
    "notosanshebrew-regular.ttf",
    "notosansdevanagari-regular.ttf",
    "notosansthai-regular.ttf",
    "notosanssymbols2-regular.ttf",
    "arial unicode.ttf",  # macOS
    "pingfang.ttc",
    "arial.ttf",  # Windows
    "msyh.ttc",
    "seguisym.ttf",
)
_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
    *([os.path.join(os.environ["WINDIR"], "Fonts")] if "WINDIR" in os.environ else []),
)
_NOT_A_CHARACTER = "\U0010fffd"  # private use, in no font: renders as the font's missing-glyph box


@functools.cache
def caption_fonts() -> tuple[Path, ...]:
    """The caption fonts installed here, best first: the files of :data:`_FONT_FILES` in the usual font folders."""
    found: dict[str, Path] = {}
    for folder in _FONT_DIRS:
        for root, _dirs, files in os.walk(Path(folder).expanduser()):
            for name in files:
                found.setdefault(name.lower(), Path(root) / name)
    return tuple(found[name] for name in _FONT_FILES if name in found)


@functools.cache
def _load_font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | None:
    """The font at ``path`` (Pillow's bundled one for None) in ``size`` pixels; None if unreadable."""
    try:
        return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(str(path), size)
    except OSError as err:
        logger.debug("Skipping caption font %s: %s", path, err)
        return None


@functools.lru_cache(maxsize=65_536)
def _has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    """Whether ``char`` renders differently from the missing-glyph box (Pillow exposes no character map)."""
    missing = font.getmask(_NOT_A_CHARACTER)
    mask = font.getmask(char)
    return mask.size != missing.size or bytes(mask) != bytes(missing)


def _visible(text: str) -> set[str]:
    """The characters that need a glyph: letters, marks, digits, punctuation, symbols (not spaces or controls)."""
    return {ch for ch in text if unicodedata.category(ch)[0] in "LMNPS"}


def has_glyphs(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether ``font`` draws every visible character of ``text`` itself rather than as a box."""
    return all(_has_glyph(font, ch) for ch in _visible(text))


def caption_font(text: str, size: int) -> ImageFont.FreeTypeFont:
    """The first installed font with glyphs for all of ``text`` (and the ellipsis), at ``size`` pixels.

    Tried in :data:`_FONT_FILES` order, then Pillow's bundled font; when none covers everything, the
    one covering the most characters, so a caption mixing scripts loses as little as possible.
    """
    chars = _visible(text + _ELLIPSIS)
    best, best_count = None, -1
    for path in (*caption_fonts(), None):
        font = _load_font(path, size)
        if font is None:
            continue
        count = sum(_has_glyph(font, ch) for ch in chars)
        if count == len(chars):
            return font
        if count > best_count:
            best, best_count = font, count
    return best


def _pieces(word: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """``word`` cut between characters into pieces no wider than ``max_width`` (text without spaces, e.g. CJK)."""
    pieces = [""]
    for char in word:
        if pieces[-1] and font.getlength(pieces[-1] + char) > max_width:
            pieces.append(char)
        else:
            pieces[-1] += char
    return pieces


def _wrapped(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> Iterator[str]:
    """Greedy word wrap measured in pixels, lazily, so only the lines shown are laid out."""
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            for piece in _pieces(word, font, max_width):
                candidate = f"{line} {piece}" if line else piece
                if line and font.getlength(candidate) > max_width:
                    yield line
                    line = piece
                else:
                    line = candidate
        yield line


def caption_lines(text: str, font: ImageFont.FreeTypeFont, max_width: int, max_lines: int = CAPTION_LINES) -> list[str]:
    """``text`` wrapped to ``max_width`` pixels, at most ``max_lines`` lines; a cut caption ends in "…"."""
    lines = list(itertools.islice(_wrapped(text, font, max_width), max_lines + 1))
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and font.getlength(last + _ELLIPSIS) > max_width:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + _ELLIPSIS]
