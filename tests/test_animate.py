"""Animating a still and continuing a clip with Stable Video Diffusion, on the tiny random SVD.

The frames must be exactly diffusers' pipeline's; longer results chain segments from each one's last
frame; an extended clip keeps its frames and its sound; bad input fails in one line with nothing written.
"""

import json
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from vidsynth import animate
from vidsynth.animation.plan import frame_size, segments
from vidsynth.config import AnimateConfig, load_config
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.media.still import read_still
from vidsynth.media.video import probe_video, read_frames
from vidsynth.media.writers import to_uint8

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def still(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("still") / "product.png"
    pixels = np.random.default_rng(0).integers(0, 256, (45, 80, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _pngs(folder: Path) -> np.ndarray:
    """The numbered PNGs of ``folder`` as (F, H, W, 3) uint8, in order."""
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def _run(tiny_svd: Path, out: Path, *args: str) -> dict:
    animate.main(["--model", str(tiny_svd), "--steps", "2", "--out", str(out), *args])
    return json.loads(next(out.glob("*.json")).read_text())


def test_frames_are_the_pipelines_own(tiny_svd, still, tmp_path):
    out = tmp_path / "out"
    sidecar = _run(tiny_svd, out, "--image", str(still), "--png", "--motion-bucket-id", "60", "--seed", "5")
    names = ["config.yaml", "grid.gif", "product", "product.json", "product.mp4"]
    assert sorted(p.name for p in out.iterdir()) == names
    pipe = StableVideoDiffusionPipeline.from_pretrained(tiny_svd)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(
        Image.open(still).convert("RGB"),
        height=sidecar["height"],
        width=sidecar["width"],
        num_inference_steps=2,
        motion_bucket_id=60,
        generator=torch.Generator().manual_seed(5),
        output_type="np",
    ).frames[0]
    assert (sidecar["width"], sidecar["height"]) == (64, 40)  # 80x45 with the native 64 on the long side, in 8s
    assert sidecar["num_frames"] == 4 == len(expected)  # the model's own count
    np.testing.assert_array_equal(_pngs(out / "product"), to_uint8(expected))
    info = probe_video(out / "product.mp4")
    assert (info.num_frames, info.fps, info.width, info.height) == (4, 7.0, 64, 40)
    saved = load_config(AnimateConfig, [out / "config.yaml"])  # the resolved values, loadable again
    assert (saved.width, saved.height, saved.num_frames, saved.fps, saved.model) == (64, 40, 4, 7.0, str(tiny_svd))


def test_longer_than_the_model_chains_segments_from_the_last_frame(tiny_svd, still, tmp_path, monkeypatch):
    starts = []
    real_call = StableVideoDiffusionPipeline.__call__

    def spy(self, image, **kwargs):
        starts.append(np.asarray(image))
        return real_call(self, image, **kwargs)

    monkeypatch.setattr(StableVideoDiffusionPipeline, "__call__", spy)
    out = tmp_path / "out"
    sidecar = _run(tiny_svd, out, "--image", str(still), "--png", "--seconds", "2", "--fps", "5")
    frames = _pngs(out / "product")
    assert len(frames) == 10 == sidecar["num_frames"]  # 2 s at 5 fps exactly: 4 + 3 + 3, the last cut
    assert [(s["start"], s["stop"], s["seed"]) for s in sidecar["segments"]] == [(0, 4, 33), (4, 7, 34), (7, 10, 35)]
    np.testing.assert_array_equal(starts[1], frames[3])  # each segment starts from the last one's final frame
    np.testing.assert_array_equal(starts[2], frames[6])
    assert [joint["frame"] for joint in sidecar["joints"]] == [4, 7]
    change = np.abs(frames[4].astype(float) - frames[3]).mean() / 255
    assert sidecar["joints"][0]["change"] == pytest.approx(change)
    info = probe_video(out / "product.mp4")
    assert (info.num_frames, info.fps) == (10, 5.0)


def _audio_seconds(path: Path) -> float:
    """Seconds of decoded audio in ``path``'s first audio stream."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le"]
    raw = subprocess.run([*command, "-ac", "1", "-ar", "8000", "-"], capture_output=True, check=True).stdout
    return len(raw) / 2 / 8000


def test_extend_keeps_the_clip_and_its_sound_then_continues_it(tiny_svd, tmp_path):
    clip = render_scene(tmp_path / "walk.mp4", num_frames=16, width=96, height=64, fps=8.0, audio_channels=1)
    out = tmp_path / "out"
    sidecar = _run(tiny_svd, out, "--video", str(clip), "--end", "1.5", "--extend", "1", "--png")
    frames = _pngs(out / "walk")
    source = read_frames(clip, range(12), 64, 40)  # the span to 1.5 s at the animation's size
    assert len(frames) == 12 + 8  # the clip's 12 frames, then 1 s at its own 8 fps
    np.testing.assert_array_equal(frames[:12], source)  # decoded once, written losslessly
    assert sidecar["source"]["num_frames"] == 12 and sidecar["image"] == {"path": str(clip), "frame": 11}
    assert sidecar["joints"][0]["frame"] == 12 and sidecar["segments"][0]["start"] == 12
    info = probe_video(out / "walk.mp4")
    assert (info.num_frames, info.fps, info.has_audio) == (20, 8.0, True)
    mp4 = read_frames(out / "walk.mp4", range(12))
    assert np.abs(mp4.astype(int) - source).mean() < 4  # the clip's part, up to the codec
    assert _audio_seconds(out / "walk.mp4") == pytest.approx(1.5, abs=0.05)  # the clip's part; silence after


def test_a_folder_with_only_fp16_weights_loads(tiny_svd, still, tmp_path):
    fp16 = tmp_path / "svd-fp16"
    StableVideoDiffusionPipeline.from_pretrained(tiny_svd).save_pretrained(fp16, variant="fp16")  # as --fp16 fetches
    assert not (fp16 / "unet" / "diffusion_pytorch_model.safetensors").exists()
    out = tmp_path / "out"
    sidecar = _run(fp16, out, "--image", str(still), "--png", "--frames", "2")
    reference = _run(tiny_svd, tmp_path / "reference", "--image", str(still), "--png", "--frames", "2")
    np.testing.assert_array_equal(_pngs(out / "product"), _pngs(tmp_path / "reference" / "product"))
    assert sidecar["model"] == str(fp16) and reference["model"] == str(tiny_svd)


def test_from_edit_animates_the_edits_first_frame(tiny_svd, tmp_path):
    edit = render_scene(tmp_path / "a-panda.mp4", num_frames=6, width=64, height=64, audio_channels=0)
    out = tmp_path / "out"
    sidecar = _run(tiny_svd, out, "--from-edit", str(edit), "--frames", "2")
    assert sidecar["image"] == {"path": str(edit), "frame": 0}
    assert (out / "a-panda.mp4").is_file() and probe_video(out / "a-panda.mp4").num_frames == 2


def test_segments_give_exactly_the_frames_asked_for():
    for model_frames in (2, 4, 14, 25):
        for total in range(1, 80):
            plan = segments(total, model_frames, seed=7)
            assert plan[0].start == 0 and plan[-1].stop == total
            assert all(a.stop == b.start for a, b in zip(plan, plan[1:], strict=False))
            assert all(s.num_frames == min(total, model_frames) for s in plan)
            assert all(s.stop - s.start <= s.num_frames - (k > 0) for k, s in enumerate(plan))
            assert [s.seed for s in plan] == list(range(7, 7 + len(plan)))


def test_frame_size_keeps_the_aspect_ratio_in_the_models_multiples():
    assert frame_size((1920, 1080), 1024, 64, None, None) == (1024, 576)  # SVD-XT's native frame
    assert frame_size((1080, 1920), 1024, 8, None, None) == (576, 1024)
    assert frame_size((1000, 1000), 1024, 8, None, 512) == (512, 512)
    assert frame_size((1600, 900), 1024, 8, 512, None) == (512, 288)
    with pytest.raises(VidSynthError, match="width 500 is not accepted by the model: it must be a multiple of 8"):
        frame_size((1600, 900), 1024, 8, 500, None)


def test_transparency_is_flattened_onto_white(tmp_path, caplog):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4] = (255, 0, 0, 255)  # top half opaque red, bottom half transparent
    Image.fromarray(rgba).save(tmp_path / "logo.png")
    with caplog.at_level("INFO"):
        flat = np.asarray(read_still(tmp_path / "logo.png"))
    assert (flat[:4] == (255, 0, 0)).all() and (flat[4:] == 255).all()
    assert "logo.png has transparency: flattened onto white" in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "{text}"], r"notes.txt is not an image PIL can read"),
        (["--image", "{clip}"], r"clip.mp4 is a video, not a still. Animate its first frame with --from-edit"),
        (["--image", "{still}", "width=60"], r"width 60 is not accepted by the model: it must be a multiple of 8"),
        (["--image", "{still}", "--frames", "0"], r"'num_frames' must be at least 1, got 0"),
        (["--image", "{still}", "--fps", "0"], r"'fps' must be more than 0, got 0"),
        (["--image", "{still}", "--noise-aug-strength", "-0.1"], r"'noise_aug_strength' must not be negative"),
        (["--image", "{still}", "--motion-bucket-id", "-1"], r"'motion_bucket_id' must not be negative"),
        (["--image", "{still}", "--extend", "2"], r"--extend continues a clip: give the clip with --video CLIP"),
        (["--video", "{clip}"], r"needs --extend SECONDS"),
        (["--image", "{still}", "--model", "{sd}"], r"is a StableDiffusionPipeline, not an image-to-video pipeline"),
        (["--image", "{still}", "--offload", "model", "--device", "cpu"], r"on cpu use --offload none"),
        ([], r"give one input, got none"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(args, message, tiny_svd, tiny_sd, still, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    clip = render_scene(tmp_path / "clip.mp4", num_frames=4, width=32, height=32, audio_channels=0)
    paths = {"text": tmp_path / "notes.txt", "clip": clip, "still": still, "sd": tiny_sd}
    args = [arg.format(**paths) for arg in args]
    model = [] if "--model" in args else ["--model", str(tiny_svd)]
    out = tmp_path / "out"
    with pytest.raises(VidSynthError, match=message):
        animate.main([*model, "--out", str(out), *args])
    assert not out.exists()


def test_a_refusal_is_one_line_and_exit_2(tiny_svd, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vidsynth.animate", "--model", str(tiny_svd), "--out", str(out)]
    result = subprocess.run(
        [*command, "--image", str(tmp_path / "notes.txt")], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "notes.txt is not an image PIL can read" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stdout == ""  # one line
    assert not out.exists()
