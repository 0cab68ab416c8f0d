"""File names from prompts: readable in any script, safe on every platform, unique within an output."""

import re
import unicodedata

# Names Windows refuses whatever the extension ("con.mp4" included).
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{dev}{n}" for dev in ("com", "lpt") for n in "123456789¹²³"}
# UTF-8 bytes a slug may take: file names are limited to 255 bytes, and prefixes ("compare-"), suffixes
# ("-2.mp4") and atomic_path's temporary name (about 30 more) must still fit.
_SLUG_BYTES = 180


def slugify(text: str, max_len: int = 60) -> str:
    """A file-name stem from ``text`` (e.g. a prompt): "un café à Paris" -> "un-café-à-paris".

    Letters of any script, their marks and digits are kept (lower-cased, NFC, so macOS and Linux
    spell the name alike); every other run, path separators, dots, Windows' reserved characters,
    controls and emoji included, becomes one "-". The result is at most ``max_len`` characters,
    never empty ("edit"), never a name Windows reserves, and cannot climb out of a folder.
    """
    text = unicodedata.normalize("NFC", text.lower())
    kept = "".join(ch if unicodedata.category(ch)[0] in "LMN" else "-" for ch in text)
    slug = re.sub(r"-+", "-", kept).strip("-")[:max_len]
    while len(slug.encode()) > _SLUG_BYTES:
        slug = slug[:-1]
    slug = slug.rstrip("-") or "edit"
    return f"{slug}-edit" if slug in _WINDOWS_RESERVED else slug


def unique_slugs(prompts: list[str]) -> list[str]:
    """:func:`slugify` of each prompt, repeats numbered "-2", "-3", ... so no file overwrites another."""
    names: list[str] = []
    for prompt in prompts:
        slug = slugify(prompt)
        name, n = slug, 1
        while name in names:
            n += 1
            name = f"{slug}-{n}"
        names.append(name)
    return names
