"""The frame workflow: extract to PNGs and assemble back, keeping count, size, rate and (when asked) sound."""

import json
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from vidsynth.errors import VidSynthError
from vidsynth.media.frames import assemble, extract, main, resample_indices
from vidsynth.media.scene import SAMPLE_RATE, render_frames, render_scene
from vidsynth.media.video import probe_video, read_frames

NUM_FRAMES, WIDTH, HEIGHT, FPS = 12, 64, 48, 6.0


def _sound_seconds(path) -> float:
    """Length of the decoded first audio stream, from the samples themselves."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1"]
    raw = subprocess.run([*command, "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return len(raw) / 2 / SAMPLE_RATE


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "clip.mp4"
    return render_scene(path, NUM_FRAMES, WIDTH, HEIGHT, FPS, audio_channels=2, seed=4)


def test_round_trip_keeps_count_size_rate_and_audio(clip, tmp_path, capsys):
    frames_dir = tmp_path / "frames"
    main(["extract", str(clip), str(frames_dir)])
    names = sorted(p.name for p in frames_dir.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(NUM_FRAMES)] + ["frames.json"]
    manifest = json.loads((frames_dir / "frames.json").read_text())
    assert manifest["fps"] == FPS and manifest["count"] == NUM_FRAMES and manifest["has_audio"] is True
    assert (manifest["width"], manifest["height"]) == (WIDTH, HEIGHT)
    assert manifest["source"] == str(clip.absolute())

    out = tmp_path / "out.mp4"
    main(["assemble", str(frames_dir), str(out), "--audio-from", str(clip)])
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height, info.has_audio) == (NUM_FRAMES, WIDTH, HEIGHT, True)
    assert info.fps == pytest.approx(FPS)
    assert abs(_sound_seconds(out) - NUM_FRAMES / FPS) <= 1 / FPS
    rendered = render_frames(NUM_FRAMES, WIDTH, HEIGHT, seed=4)
    assert np.abs(read_frames(out, range(NUM_FRAMES)).astype(float) - rendered).mean() < 4.0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and "with audio" in printed[1]


def test_assemble_without_audio_and_with_another_rate(clip, tmp_path):
    frames_dir = extract(clip, tmp_path / "frames")
    info = probe_video(assemble(frames_dir, tmp_path / "out.mp4", fps=12.0))
    assert (info.num_frames, info.has_audio) == (NUM_FRAMES, False)
    assert info.fps == pytest.approx(12.0)


def test_assemble_at_another_rate_takes_as_much_sound_as_the_frames_last(clip, tmp_path):
    frames_dir = extract(clip, tmp_path / "frames")
    out = assemble(frames_dir, tmp_path / "out.mp4", fps=12.0, audio_from=clip)  # 12 frames: 1 s of the 2 s clip
    assert probe_video(out).has_audio and abs(_sound_seconds(out) - 1.0) <= 1 / 12


def test_assemble_with_sound_from_a_silent_clip_writes_a_silent_video(tmp_path):
    silent = render_scene(tmp_path / "silent.mp4", 4, 32, 32, FPS, audio_channels=0)
    frames_dir = extract(silent, tmp_path / "frames")
    info = probe_video(assemble(frames_dir, tmp_path / "out.mp4", audio_from=silent))
    assert (info.num_frames, info.has_audio) == (4, False)


def test_extract_resamples_in_time_and_resizes(clip, tmp_path):
    frames_dir = tmp_path / "frames"
    main(["extract", str(clip), str(frames_dir), "--fps", "3", "--size", "32x24"])
    manifest = json.loads((frames_dir / "frames.json").read_text())
    assert manifest["count"] == 6 and manifest["frame_indices"] == [0, 2, 4, 6, 8, 10] and manifest["fps"] == 3.0
    second = np.asarray(Image.open(frames_dir / "frame_00001.png"))
    assert second.shape == (24, 32, 3)
    np.testing.assert_array_equal(second, read_frames(clip, [2], 32, 24)[0])


def test_resample_indices():
    assert resample_indices(10, 30.0, 30.0) == list(range(10))
    assert resample_indices(24, 8.0, 3.0) == [0, 3, 5, 8, 11, 13, 16, 19, 21]  # t = k / 3 s, 3 s long
    assert resample_indices(4, 2.0, 4.0) == [0, 1, 1, 2, 2, 3, 3, 3]  # upsampling repeats nearest frames


def test_extract_refuses_a_folder_with_content_and_leaves_no_partials(clip, tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(VidSynthError, match="not an empty folder"):
        extract(clip, target)
    assert [p.name for p in tmp_path.iterdir()] == ["frames"] and (target / "keep.txt").read_text() == "mine"


def test_assemble_needs_a_rate_and_frames(tmp_path):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    with pytest.raises(VidSynthError, match="No frame_NNNNN.png"):
        assemble(frames_dir, tmp_path / "out.mp4")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(frames_dir / "frame_00000.png")
    with pytest.raises(VidSynthError, match="--fps"):
        assemble(frames_dir, tmp_path / "out.mp4")
    Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(frames_dir / "frame_00001.png")
    with pytest.raises(VidSynthError, match="differ in size"):
        assemble(frames_dir, tmp_path / "out.mp4", fps=4)
    assert not (tmp_path / "out.mp4").exists()
