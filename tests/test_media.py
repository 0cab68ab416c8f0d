"""Writing outputs: layouts accepted by to_uint8, MP4 round trips, captioned GIF/MP4 grids, atomic writes."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vidsynth.media import atomic_path, to_uint8, write_gif_grid, write_grid_video, write_json, write_video
from vidsynth.scene import render_frames, render_scene
from vidsynth.video import probe_video, read_frames


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
