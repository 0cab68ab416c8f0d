"""Writing outputs: layouts accepted by to_uint8, MP4 round trips, captioned GIF/MP4 grids, captions in any
script cut to a few lines, file names from prompts, atomic writes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from vidsynth.atomic import atomic_path
from vidsynth.media.captions import caption_font, caption_fonts, caption_lines, has_glyphs
from vidsynth.media.scene import render_frames, render_scene
from vidsynth.media.video import probe_video, read_frames
from vidsynth.media.writers import grid_frames, to_uint8, write_gif_grid, write_grid_video, write_json, write_video
from vidsynth.naming import slugify, unique_slugs


def test_to_uint8_channels_last_float():
    frames = np.zeros((2, 4, 6, 3), np.float32)
    frames[0, 0, 0] = [0.0, 0.5, 1.0]
    frames[1, 3, 5] = [-0.2, 1.5, 0.25]
    out = to_uint8(frames)
    assert out.shape == (2, 4, 6, 3) and out.dtype == np.uint8
    assert out[0, 0, 0].tolist() == [0, 128, 255]
    assert out[1, 3, 5].tolist() == [0, 255, 64]  # clipped, rounded


def test_to_uint8_channels_first_torch_video():
    video = torch.rand(3, 5, 4, 6)  # (3, F, H, W): one video of the pipeline's (B, 3, F, H, W)
    out = to_uint8(video)
    assert out.shape == (5, 4, 6, 3)
    expected = np.round(video[:, 2, 1, 3].numpy() * 255)
    np.testing.assert_array_equal(out[2, 1, 3], expected.astype(np.uint8))


def test_to_uint8_passes_uint8_through_and_rejects_other_layouts():
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(frames), frames)
    with pytest.raises(ValueError, match="index a batch"):
        to_uint8(torch.rand(1, 3, 2, 4, 6))
    with pytest.raises(ValueError, match="3 colour channels"):
        to_uint8(np.zeros((2, 4, 6, 4), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        to_uint8(np.zeros((2, 4, 6, 3), np.int32))


@pytest.mark.parametrize("fps", [8.0, 29.97 / 2])
def test_write_video_round_trip(tmp_path, fps):
    frames = render_frames(10, 64, 48, seed=2)  # (F, H, W, 3) uint8
    path = write_video(tmp_path / "out.mp4", torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255.0, fps)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (10, 64, 48)
    assert info.fps == pytest.approx(fps, abs=1e-3)
    decoded = read_frames(path, range(10))
    error = np.abs(decoded.astype(float) - frames).mean()  # yuv420p halves the colour resolution at edges
    assert error < 4.0
    assert np.abs(decoded[1:].astype(float) - frames[:-1]).mean() > error  # frames stay in order
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_write_video_rejects_odd_sizes_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((3, 33, 32, 3), np.uint8), 8)
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp != target
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def _columns():
    big = render_frames(6, 64, 48, seed=0)
    small = render_frames(6, 32, 24, seed=1)  # resized to 48 high, so 64 wide
    return [("source clip with a caption long enough to wrap", big), ("edit", small)]


def test_gif_grid_loops_with_all_frames_side_by_side(tmp_path):
    path = write_gif_grid(tmp_path / "grid.gif", _columns(), fps=10)
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0
        assert gif.n_frames == 6
        assert gif.info["duration"] == 100
        assert gif.width == 64 + 64 and gif.height > 48  # caption strip on top
        first = np.asarray(gif.convert("RGB"))
        gif.seek(5)
        last = np.asarray(gif.convert("RGB"))
    strip = first[: first.shape[0] - 48]
    for column in (strip[:, :64], strip[:, 64:]):
        assert (column.min(axis=-1) < 100).any()  # dark caption text in each column
    assert np.abs(first[-48:].astype(float) - last[-48:]).mean() > 1.0  # the clip moves


def test_gif_grid_needs_equal_frame_counts(tmp_path):
    with pytest.raises(ValueError, match="same number of frames"):
        write_gif_grid(tmp_path / "g.gif", [("a", render_frames(4, 32, 32)), ("b", render_frames(5, 32, 32))], 8)
    assert list(tmp_path.iterdir()) == []


def test_grid_video_has_the_grid_size_padded_even(tmp_path):
    columns = [("a", render_frames(5, 32, 32)), ("b", render_frames(5, 18, 16, seed=3))]  # b -> 36 wide
    info = probe_video(write_grid_video(tmp_path / "grid.mp4", columns, fps=5))
    assert info.num_frames == 5 and info.fps == pytest.approx(5)
    assert info.width == 32 + 36 and info.height % 2 == 0 and info.height > 32


def test_write_json_round_trip_and_nothing_on_bad_data(tmp_path):
    data = {"video": "a.mp4", "source": {"frame_indices": [0, 2], "start": 0.25}}
    assert json.loads(write_json(tmp_path / "a.json", data).read_text()) == data
    with pytest.raises(TypeError):
        write_json(tmp_path / "b.json", {"bad": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_scene_is_deterministic_and_moves(tmp_path):
    a = read_frames(render_scene(tmp_path / "a.mp4", 6, 64, 64, audio_channels=0, seed=7), range(6))
    b = read_frames(render_scene(tmp_path / "b.mp4", 6, 64, 64, audio_channels=0, seed=7), range(6))
    c = read_frames(render_scene(tmp_path / "c.mp4", 6, 64, 64, audio_channels=0, seed=8), range(6))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(float) - c).mean() > 2.0
    assert all(np.abs(a[i].astype(float) - a[i + 1]).mean() > 0.5 for i in range(5))
    with pytest.raises(ValueError, match="audio_channels"):
        render_scene(tmp_path / "d.mp4", audio_channels=3)


# ---------------------------------------------------------------- captions


def _strip(caption: str, width: int = 64) -> np.ndarray:
    """The caption strip above a one-column grid of a 48-px-high video: (strip height, width, 3)."""
    grid = grid_frames([(caption, render_frames(2, width, 48))])
    return grid[0, : grid.shape[1] - 48]


def test_a_long_prompt_gives_a_few_lines_ending_in_an_ellipsis():
    prompt = " ".join(f"word{i}" for i in range(500))
    font = caption_font(prompt, 16)
    lines = caption_lines(prompt, font, 200)
    assert len(lines) == 3 and lines[-1].endswith("…") and lines[0].startswith("word0 word1")
    assert all(font.getlength(line) <= 200 for line in lines)
    assert caption_lines("a red car", font, 200) == ["a red car"]  # short captions stay whole


def test_text_without_spaces_wraps_between_characters():
    text = "ЖЯ" * 200  # one 400-letter "word", as CJK prompts are
    font = caption_font(text, 16)
    lines = caption_lines(text, font, 120)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 120 for line in lines) and all(len(line) > 3 for line in lines)


def test_the_caption_strip_height_is_bounded():
    one_line = _strip("edit").shape[0]
    long = _strip(" ".join(["word"] * 500)).shape[0]
    assert long == _strip(" ".join(["word"] * 40)).shape[0]  # both cut to the same number of lines
    assert one_line < long <= 3 * one_line


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # where Debian and Ubuntu install it


def _covered_pair() -> str:
    """Two characters of a script an installed font draws: CJK with a CJK font, else Cyrillic or Greek (DejaVu)."""
    fonts = [ImageFont.truetype(str(path), 16) for path in caption_fonts()]
    for pair in ("猫犬", "ЖЯ", "λΩ"):
        if any(has_glyphs(font, pair) for font in fonts):
            return pair
    return "ab"  # only Pillow's bundled (Latin) font on this machine


def test_installed_fonts_are_found():
    assert not DEJAVU.is_file() or DEJAVU in caption_fonts()


def test_captions_draw_real_glyphs_not_boxes():
    bundled = ImageFont.load_default(size=16)
    assert has_glyphs(bundled, "a cat.") and not has_glyphs(bundled, "猫")  # the missing-glyph check itself
    a, b = _covered_pair()
    assert has_glyphs(caption_font(a + b, 16), a + b)
    first, second = _strip(a * 3), _strip(b * 3)
    assert (first.min(axis=-1) < 100).any()  # dark text drawn
    assert np.abs(first.astype(float) - second).mean() > 1.0  # different letters, not identical boxes


# ---------------------------------------------------------------- file names


_UNSAFE = set('/\\:*?"<>|') | {chr(c) for c in range(32)}


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("un café à Paris", "un-café-à-paris"),
        ("un cafe\u0301 a\u0300 Paris", "un-café-à-paris"),  # decomposed accents: the same name (NFC)
        ("猫が好き, 2 匹", "猫が好き-2-匹"),
        ("Ελληνικά & Русский", "ελληνικά-русский"),
        ("😀🎉", "edit"),
        ("   ", "edit"),
        ("../../etc/passwd", "etc-passwd"),
        (".hidden", "hidden"),
        ("CON", "con-edit"),  # reserved on Windows, whatever the extension
        ('a/b\\c:d*e?f"g<h>i|j\tk', "a-b-c-d-e-f-g-h-i-j-k"),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


def test_slugs_are_safe_file_names_and_bounded(tmp_path):
    for text in ["../../etc", "..", "/abs/path", "C:\\Windows\\x", "a" * 100, "word " * 30, "𠀀" * 80, "\x00\x1f"]:
        slug = slugify(text)
        assert slug and not slug.startswith(".") and not slug.endswith("-") and not _UNSAFE & set(slug)
        assert len(slug) <= 60 and len(slug.encode()) <= 180
        path = tmp_path / f"compare-{slug}-2.mp4"
        path.write_text("x")  # a real file, inside the folder
        assert path.resolve().parent == tmp_path.resolve()
    assert len(slugify("word " * 30, max_len=12)) <= 12


def test_unique_slugs_number_repeats():
    prompts = ["A cat", "a cat!", "a cat", "a cat-2", "😀", "🎉"]
    assert unique_slugs(prompts) == ["a-cat", "a-cat-2", "a-cat-3", "a-cat-2-2", "edit", "edit-2"]
