"""Animations (image to video) in the evaluate command: image alignment in place of text alignment, their flicker."""

import json
from pathlib import Path

import numpy as np
import pytest
from imageio.v3 import imread
from PIL import Image

from vidsynth.errors import VidSynthError
from vidsynth.evaluation.evaluate import evaluate, format_markdown, load_sidecar, main
from vidsynth.evaluation.metrics import ClipScorer, animation_flicker, image_alignment
from vidsynth.media.scene import render_frames, render_scene
from vidsynth.media.video import read_frames
from vidsynth.media.writers import write_video
from vidsynth.testing.tiny_clip import build_tiny_clip

SIZE = 32


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), seed=0)


@pytest.fixture()
def still(tmp_path):
    """The image that was animated: the first frame of the test scene, as a PNG."""
    path = tmp_path / "still.png"
    Image.fromarray(render_frames(1, SIZE, SIZE)[0]).save(path)
    return path


def _write_animation(folder: Path, name: str, frames: np.ndarray, image: Path, frame=None, clip_frames=None) -> Path:
    """An animated MP4 plus the sidecar python -m vidsynth.animate writes for it (``clip_frames``: --extend)."""
    video = write_video(folder / f"{name}.mp4", frames, fps=7.0)
    sidecar = {
        "video": video.name,
        "kind": "animation",
        "image": {"path": str(image.resolve()), "frame": frame},
        "model": "tiny",
        "seed": 33,
        "num_inference_steps": 2,
        "fps": 7.0,
        "num_frames": len(frames),
        "width": SIZE,
        "height": SIZE,
        "motion_bucket_id": 127,
        "noise_aug_strength": 0.02,
        "min_guidance_scale": 1.0,
        "max_guidance_scale": 3.0,
        "decode_chunk_size": None,
        "offload": "none",
        "segments": [{"start": 0, "stop": len(frames), "seed": 33}],
        "joints": [],
    }
    if clip_frames is not None:
        sidecar["source"] = {
            "path": str(image.resolve()),
            "fps": 7.0,
            "frame_indices": {"start": 0, "stop": clip_frames, "stride": 1},
            "start": 0.0,
            "duration": clip_frames / 7.0,
            "num_frames": clip_frames,
        }
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    return video


def _write_edit(folder: Path, name: str, frames: np.ndarray, source: Path) -> Path:
    """An edited MP4 plus the sidecar inference.py writes for it (frames 0..F-1 of ``source``)."""
    video = write_video(folder / f"{name}.mp4", frames, fps=8.0)
    sidecar = {
        "video": video.name,
        "prompt": "a red ball",
        "method": "tuneavideo",
        "width": SIZE,
        "height": SIZE,
        "source": {"path": str(source.resolve()), "fps": 8.0, "frame_indices": list(range(len(frames)))},
    }
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    return video


def _flat(levels: list[int]) -> np.ndarray:
    """Frames of one grey level each, uint8 (F, SIZE, SIZE, 3): an encoder keeps them (almost) exactly."""
    return np.stack([np.full((SIZE, SIZE, 3), level, np.uint8) for level in levels])


def test_image_alignment_and_animation_flicker_match_hand_computation():
    assert image_alignment(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([3.0, 0.0])) == pytest.approx(50.0)
    emb = np.random.default_rng(0).normal(size=(3, 8))
    assert image_alignment(np.repeat(emb[:1], 3, axis=0), emb[0]) == pytest.approx(100.0, abs=1e-3)
    assert image_alignment(emb, emb[0]) < 100.0 - 1.0
    with pytest.raises(VidSynthError, match="image embedding .* do not match"):
        image_alignment(emb, emb[0, :4])

    # A still animated: the mean change between consecutive frames (uint8 levels / 255).
    assert animation_flicker(_flat([0, 51, 102, 153])) == pytest.approx(0.2)
    assert animation_flicker(_flat([40, 40, 40])) == 0.0
    assert animation_flicker(_flat([0, 51, 0])) == pytest.approx(0.2)  # no uint8 wraparound
    # A clip extended by its last 2 frames: change from the clip's last frame on ÷ change within the clip.
    # Clip 0, 10, 20 (10 a frame); generated 60, 70: the joint's 40 counts, so (40 + 10) / 2 / 10.
    assert animation_flicker(_flat([0, 10, 20, 60, 70]), clip_frames=3) == pytest.approx(2.5)
    assert animation_flicker(_flat([0, 10, 20, 30, 40]), clip_frames=3) == pytest.approx(1.0)
    with pytest.raises(VidSynthError, match="clip's own frames are all identical"):
        animation_flicker(_flat([5, 5, 5, 9]), clip_frames=3)
    with pytest.raises(VidSynthError, match="4 of its 4 frames are the clip's"):
        animation_flicker(_flat([0, 10, 20, 30]), clip_frames=4)
    with pytest.raises(VidSynthError, match="at least 2"):
        animation_flicker(_flat([0]))


def test_an_animation_row_has_image_alignment_and_no_text_alignment(tiny_clip, still, tmp_path):
    image = np.asarray(Image.open(still).convert("RGB"))  # (SIZE, SIZE, 3)
    unrelated_frames = np.random.default_rng(0).integers(0, 256, size=(4, SIZE, SIZE, 3), dtype=np.uint8)  # noise
    run = tmp_path / "animations"
    _write_animation(run, "held", np.repeat(image[None], 4, axis=0), still)
    unrelated = _write_animation(run, "unrelated", unrelated_frames, still)

    rows = {row["clip"]: row for row in evaluate([run], tiny_clip, progress=False)}

    assert sorted(rows) == ["held", "unrelated"]
    for row in rows.values():
        assert (row["kind"], row["method"], row["prompt"], row["text_alignment"], row["frames"]) == (
            "animation",
            "svd",
            None,
            None,
            4,
        )
    # Frames that are the image (up to the codec) embed as it does; others do not, and each row is scored
    # against the sidecar's image, not against its own first frame.
    assert rows["held"]["image_alignment"] == pytest.approx(100.0, abs=0.5)
    assert rows["unrelated"]["image_alignment"] < rows["held"]["image_alignment"] - 1.0
    scorer = ClipScorer(tiny_clip)
    decoded = imread(unrelated, index=None, plugin="FFMPEG")
    frame_emb = scorer.image_embeddings(decoded)
    expected = image_alignment(frame_emb, scorer.image_embeddings(image[None])[0])
    assert rows["unrelated"]["image_alignment"] == pytest.approx(expected, abs=1e-4)
    assert rows["unrelated"]["image_alignment"] != pytest.approx(image_alignment(frame_emb, frame_emb[0]), abs=1e-2)
    assert rows["held"]["consistency_all_pairs"] == pytest.approx(100.0, abs=0.01)
    assert rows["held"]["flicker"] < 0.01  # the image held still: next to no motion

    table = format_markdown(list(rows.values()), "tiny")
    header = "| clip | method | prompt | frames | consistency all-pairs | consistency consecutive | text alignment |"
    assert header + " image alignment | flicker | kind |" in table
    held_line = next(line for line in table.splitlines() if line.startswith("| held |"))
    assert held_line.startswith("| held | svd |  | 4 | 100.00 |")  # the prompt blank, not "None"
    cells = held_line.strip("|").split("|")
    assert cells[6].strip() == "" and float(cells[7]) == pytest.approx(rows["held"]["image_alignment"], abs=0.01)
    assert cells[9].strip() == "animation"
    assert "Flicker of animations: the mean frame-to-frame change" in table


def test_a_frame_of_a_video_as_the_image_is_read_at_its_index(tiny_clip, tmp_path):
    clip = render_scene(tmp_path / "clip.mp4", num_frames=8, width=SIZE, height=SIZE, fps=8, audio_channels=0)
    frame_5 = read_frames(clip, [5], SIZE, SIZE)[0]
    _write_animation(tmp_path / "run", "from-frame-5", np.repeat(frame_5[None], 3, axis=0), clip, frame=5)
    (row,) = evaluate([tmp_path / "run"], tiny_clip, progress=False)
    assert row["image_alignment"] == pytest.approx(100.0, abs=0.5)

    scorer = ClipScorer(tiny_clip)
    frame_emb = scorer.image_embeddings(imread(tmp_path / "run" / "from-frame-5.mp4", index=None, plugin="FFMPEG"))
    for index in (5, 0):
        reference = scorer.image_embeddings(read_frames(clip, [index], SIZE, SIZE))[0]
        agrees = row["image_alignment"] == pytest.approx(image_alignment(frame_emb, reference), abs=1e-4)
        assert agrees == (index == 5)


def test_an_extended_clip_flickers_against_the_clip_part(tiny_clip, still, tmp_path):
    """Grey frames 60, 80, 100 are the clip's; 180, 240 the generated ones: (80 + 60) / 2 over 20 a frame."""
    _write_animation(tmp_path, "extended", _flat([60, 80, 100, 180, 240]), still, clip_frames=3)
    _write_animation(tmp_path, "still", _flat([60, 80, 100, 180, 240]), still)
    rows = {row["clip"]: row for row in evaluate([tmp_path], tiny_clip, progress=False)}
    assert rows["extended"]["kind"] == "extension" and rows["still"]["kind"] == "animation"
    assert rows["extended"]["flicker"] == pytest.approx(3.5, rel=0.05)
    assert rows["still"]["flicker"] == pytest.approx(180 / 4 / 255, rel=0.05)  # no clip: its own motion
    assert "Flicker of extensions: the generated frames' change" in format_markdown(list(rows.values()), "tiny")


def test_a_folder_of_an_edit_and_an_animation_gives_both_rows(tiny_clip, still, tmp_path, capsys):
    source = render_scene(tmp_path / "source.mp4", num_frames=4, width=SIZE, height=SIZE, fps=8, audio_channels=0)
    run = tmp_path / "outputs"
    _write_edit(run / "edits", "a-red-ball", render_frames(4, SIZE, SIZE), source)
    image = np.asarray(Image.open(still).convert("RGB"))
    _write_animation(run / "animations", "still", np.repeat(image[None], 4, axis=0), still)

    main([str(run), "--clip-model", str(tiny_clip)])

    rows = {row["clip"]: row for row in json.loads((run / "results.json").read_text())["rows"]}
    edit, animation = rows["edits/a-red-ball"], rows["animations/still"]
    assert (edit["kind"], animation["kind"]) == ("edit", "animation")
    assert edit["text_alignment"] is not None and edit["image_alignment"] is None
    assert animation["text_alignment"] is None and animation["image_alignment"] is not None
    assert edit["flicker"] == pytest.approx(1.0, abs=0.15)  # a copy of its source moves as the source does
    table = capsys.readouterr().out
    assert table == (run / "results.md").read_text()
    edit_line = next(line for line in table.splitlines() if line.startswith("| edits/a-red-ball |"))
    assert edit_line.endswith(f"| {edit['text_alignment']:.2f} |  | {edit['flicker']:.3f} | edit |")
    assert "Flicker of animations: " in table and "; of edits: the edit's frame-to-frame change" in table
    # A table of edits alone keeps its columns: no image alignment, no kind, no note.
    edits_only = format_markdown([edit], "tiny")
    assert "image alignment" not in edits_only and "kind" not in edits_only and "Flicker of" not in edits_only


def test_an_animation_sidecar_without_its_image_or_with_the_image_gone_is_named(tiny_clip, still, tmp_path):
    video = _write_animation(tmp_path, "anim", _flat([0, 10, 20]), still)
    sidecar = json.loads(video.with_suffix(".json").read_text())
    del sidecar["image"]
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(VidSynthError, match=r"unreadable or incomplete \(KeyError: 'image'\).*vidsynth\.animate"):
        load_sidecar(video)

    video = _write_animation(tmp_path / "gone", "anim", _flat([0, 10, 20]), still)
    still.unlink()
    with pytest.raises(VidSynthError, match=r"Input image .*still\.png of the animation is missing"):
        evaluate([video], tiny_clip, progress=False)
