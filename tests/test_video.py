"""Reading clips: probe, Tune-A-Video sampling (indices, range, timing) and the checks on bad requests."""

import json

import decord
import numpy as np
import pytest
import torch
from PIL import Image

from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_frames, render_scene
from vidsynth.media.video import check_clip_request, probe_video, read_clip, read_frames

NUM_FRAMES, WIDTH, HEIGHT, FPS = 24, 96, 64, 12.0


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return render_scene(tmp_path_factory.mktemp("clip") / "clip.mp4", NUM_FRAMES, WIDTH, HEIGHT, FPS, seed=5)


def test_probe_video_reports_frames_rate_size_and_audio(clip_path, tmp_path):
    info = probe_video(clip_path)
    assert (info.num_frames, info.fps, info.width, info.height, info.has_audio) == (
        NUM_FRAMES,
        FPS,
        WIDTH,
        HEIGHT,
        True,
    )
    assert info.path == str(clip_path.absolute())
    silent = probe_video(render_scene(tmp_path / "silent.mp4", 8, 64, 64, audio_channels=0))
    assert silent.has_audio is False and silent.num_frames == 8


def test_read_clip_samples_with_start_and_stride(clip_path):
    clip = read_clip(clip_path, num_frames=6, width=48, height=32, start=3, stride=4)
    assert clip.frame_indices == (3, 7, 11, 15, 19, 23)
    assert clip.pixels.shape == (6, 3, 32, 48) and clip.pixels.dtype == torch.float32
    assert clip.pixels.min() >= -1.0 and clip.pixels.max() <= 1.0
    assert clip.pixels.max() - clip.pixels.min() > 1.0  # real content, not a constant
    assert clip.stride == 4
    assert clip.fps == pytest.approx(FPS / 4)
    assert clip.start == pytest.approx(3 / FPS)
    assert clip.duration == pytest.approx(6 / (FPS / 4))
    meta = json.loads(json.dumps(clip.metadata()))
    assert meta["frame_indices"] == [3, 7, 11, 15, 19, 23]
    assert meta["start"] == pytest.approx(0.25) and meta["duration"] == pytest.approx(2.0) and meta["fps"] == 3.0
    assert (meta["width"], meta["height"], meta["source_fps"]) == (48, 32, FPS)


def test_read_clip_pixels_match_rendered_frames(clip_path):
    clip = read_clip(clip_path, 4, WIDTH, HEIGHT, start=2, stride=5)
    expected = render_frames(NUM_FRAMES, WIDTH, HEIGHT, seed=5)[[2, 7, 12, 17]]  # (4, H, W, 3) uint8
    got = (clip.pixels.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5  # (4, H, W, 3) in [0, 255]
    assert np.abs(got - expected).mean() < 3.0
    # a different frame is far off: the indices really select frames
    assert (
        np.abs(got[0] - render_frames(NUM_FRAMES, WIDTH, HEIGHT, seed=5)[20]).mean()
        > np.abs(got[0] - expected[0]).mean()
    )


def test_read_frames_equals_read_clip(clip_path):
    frames = read_frames(clip_path, [0, 5], 48, 32)
    assert frames.shape == (2, 32, 48, 3) and frames.dtype == np.uint8
    clip = read_clip(clip_path, 2, 48, 32, start=0, stride=5)
    np.testing.assert_allclose((clip.pixels.permute(0, 2, 3, 1).numpy() + 1) * 127.5, frames, atol=1e-3)
    assert read_frames(clip_path, [1]).shape == (1, HEIGHT, WIDTH, 3)
    with pytest.raises(VidSynthError, match="24 frames"):
        read_frames(clip_path, [24])


@pytest.mark.parametrize("width", [48, 56])  # decord resizes to 56 itself; 48 needs the PIL fallback
def test_resized_frames_match_a_resized_render(clip_path, width):
    frames = read_frames(clip_path, [0, 9], width, 32)
    assert frames.shape == (2, 32, width, 3)
    rendered = render_frames(NUM_FRAMES, WIDTH, HEIGHT, seed=5)[[0, 9]]
    expected = np.stack([np.asarray(Image.fromarray(f).resize((width, 32), Image.BICUBIC)) for f in rendered])
    assert np.abs(frames.astype(float) - expected).mean() < 4.0


def test_read_clip_works_under_the_torch_bridge(clip_path):
    decord.bridge.set_bridge("torch")
    try:
        clip = read_clip(clip_path, 2, 48, 32)
    finally:
        decord.bridge.set_bridge("native")
    assert clip.pixels.shape == (2, 3, 32, 48)


def test_check_clip_request_does_not_decode_batches(clip_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("check_clip_request decoded a batch")

    monkeypatch.setattr(decord.VideoReader, "get_batch", fail)
    info = check_clip_request(clip_path, 24, 64, 64)
    assert info.num_frames == NUM_FRAMES


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VidSynthError) as err:
        check_clip_request(missing, 8, 64, 64)
    assert str(missing) in str(err.value) and "video file" in str(err.value)


def test_corrupt_file_suggests_reencoding(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VidSynthError) as err:
        check_clip_request(corrupt, 8, 64, 64)
    assert "Cannot read" in str(err.value) and "ffmpeg" in str(err.value) and str(corrupt) in str(err.value)


def test_too_short_says_what_there_is_and_the_fix(clip_path):
    with pytest.raises(VidSynthError) as err:
        check_clip_request(clip_path, 10, 64, 64, start=4, stride=3)
    message = str(err.value)
    # range(4, 24, 3) holds 7 frames; a stride of 2 would give 10 from frame 4
    for fact in ("has 24 frames", "makes 7 frames, but 10 were asked", "(n_sample_frames, --frames) to 7"):
        assert fact in message
    assert "(sample_frame_rate, --stride) to 2" in message


def test_too_short_suggests_an_earlier_start(clip_path):
    with pytest.raises(VidSynthError, match=r"start_frame <= 4"):
        check_clip_request(clip_path, 20, 64, 64, start=10)


@pytest.mark.parametrize(
    ("width", "height", "fact"),
    [(100, 64, "96 or 104"), (64, 0, "Use 8"), (64, -16, "Use 8"), (63, 64, "56 or 64")],
)
def test_bad_sizes_name_the_nearest_valid_ones(clip_path, width, height, fact):
    with pytest.raises(VidSynthError, match="multiple of 8") as err:
        check_clip_request(clip_path, 8, width, height)
    assert fact in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_frames": 0}, "num_frames"),
        ({"stride": 0}, "stride"),
        ({"start": -1}, "start"),
    ],
)
def test_bad_sampling_numbers(clip_path, kwargs, name):
    request = {"num_frames": 8, "width": 64, "height": 64, **kwargs}
    with pytest.raises(VidSynthError, match=name):
        check_clip_request(clip_path, **request)


@pytest.mark.parametrize(("native", "target"), [(48, 72), (48, None), (40, 48)])
def test_widths_decord_cannot_stride_still_decode(tmp_path, native, target):
    """decord 0.6 fails on some widths (48, 72, ...) at the source or the output size; the frames still come out."""
    path = render_scene(tmp_path / "clip.mp4", 4, native, 32, 8.0, audio_channels=0)
    frames = read_frames(path, [0, 2], *((target, 32) if target else ()))
    assert frames.shape == (2, 32, target or native, 3)
    reference = read_frames(path, [0, 2], 64, 32)  # a width decord handles
    resized = np.stack([np.asarray(Image.fromarray(f).resize((64, 32), Image.BICUBIC)) for f in frames])
    assert np.abs(resized.astype(int) - reference.astype(int)).mean() < 12  # the same pictures
