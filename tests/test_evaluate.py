"""End-to-end evaluation on a tiny CLIP: edited MP4s + sidecars in, markdown and JSON tables out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from imageio.v3 import imread

from vidsynth.errors import VidSynthError
from vidsynth.evaluation.evaluate import evaluate, load_sidecar, main, read_edit_and_source
from vidsynth.evaluation.metrics import ClipScorer, text_alignment
from vidsynth.media.scene import render_frames, render_scene
from vidsynth.media.writers import write_video
from vidsynth.testing.tiny_clip import build_tiny_clip

REPO = Path(__file__).resolve().parents[1]
SIZE = 32
INDICES = [0, 2, 4, 6]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), seed=0)


@pytest.fixture()
def source(tmp_path):
    return render_scene(tmp_path / "source.mp4", num_frames=8, width=SIZE, height=SIZE, fps=8, audio_channels=0)


def _write_edit(folder: Path, name: str, frames: np.ndarray, source: Path, prompt: str, method: str) -> Path:
    """An edited MP4 plus the sidecar inference.py would write for it."""
    video = write_video(folder / f"{name}.mp4", frames, fps=4.0)
    sidecar = {
        "video": video.name,
        "prompt": prompt,
        "negative_prompt": None,
        "method": method,
        "seed": 0,
        "steps": 2,
        "guidance": 7.5,
        "strength": None if method == "tuneavideo" else 0.6,
        "model": "tiny",
        "fps": 4.0,
        "frames": len(frames),
        "width": SIZE,
        "height": SIZE,
        "source": {
            "path": str(source.resolve()),
            "fps": 8.0,
            "frame_indices": INDICES[: len(frames)],
            "start": 0.0,
            "duration": len(frames) / 4.0,
        },
    }
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    return video


def test_evaluate_end_to_end_writes_one_row_per_clip_and_method(tiny_clip, source, tmp_path, capsys):
    source_frames = render_frames(8, SIZE, SIZE)[INDICES]  # (4, 32, 32, 3), what the source MP4 encodes
    noise = np.random.default_rng(0).normal(0, 60, size=source_frames.shape)
    run = tmp_path / "run"
    _write_edit(run, "frozen", np.repeat(source_frames[:1], 4, axis=0), source, "a ball in the sky", "tuneavideo")
    _write_edit(run, "copy", source_frames, source, "a red ball", "img2img")
    noisy = _write_edit(
        run, "noisy", np.clip(source_frames + noise, 0, 255).astype(np.uint8), source, "a car", "img2img"
    )
    (run / ".noisy.1234.partial.mp4").write_bytes(b"")  # a half-written temporary: must be skipped

    main([str(run), "--clip-model", str(tiny_clip), "--out", str(tmp_path / "results")])
    assert capsys.readouterr().out == (tmp_path / "results.md").read_text()  # the table, printed and written

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["clip_model"] == str(tiny_clip)
    rows = {row["clip"]: row for row in saved["rows"]}
    assert sorted(rows) == ["copy", "frozen", "noisy"]
    assert {rows[c]["method"] for c in rows} == {"tuneavideo", "img2img"}
    assert all(row["frames"] == 4 for row in rows.values())
    # Known answers: a frozen clip is perfectly consistent and has no motion; a re-encoded copy of the
    # source moves as much as the source; heavy per-frame noise flickers far more.
    assert rows["frozen"]["consistency_all_pairs"] == pytest.approx(100.0, abs=0.01)
    assert rows["frozen"]["consistency_consecutive"] == pytest.approx(100.0, abs=0.01)
    assert rows["frozen"]["flicker"] < 0.05
    assert rows["copy"]["flicker"] == pytest.approx(1.0, abs=0.15)
    assert rows["noisy"]["flicker"] > 3.0
    assert rows["copy"]["consistency_all_pairs"] < 100.0 - 1e-3
    # Each row is scored against its own prompt.
    scorer = ClipScorer(tiny_clip)
    noisy_emb = scorer.image_embeddings(imread(noisy, index=None, plugin="FFMPEG"))
    expected = text_alignment(noisy_emb, scorer.text_embedding("a car"))
    assert rows["noisy"]["text_alignment"] == pytest.approx(expected, abs=1e-4)
    assert rows["noisy"]["text_alignment"] != pytest.approx(
        text_alignment(noisy_emb, scorer.text_embedding("a ball in the sky")), abs=1e-3
    )

    table = (tmp_path / "results.md").read_text().splitlines()
    body = [line for line in table if line.startswith("| ") and "---" not in line]
    assert body[0].startswith("| clip | method | prompt | frames | consistency all-pairs")
    assert len(body) == 1 + 3
    assert any(line.startswith("| frozen | tuneavideo | a ball in the sky | 4 | 100.00 |") for line in body)
    assert not list(tmp_path.glob(".*partial*"))  # no temporaries left behind


def test_results_go_into_the_evaluated_folder_which_is_searched_with_its_subfolders(
    tiny_clip, source, tmp_path, monkeypatch, capsys
):
    """inference.py writes edits/<time>/ (and --compare's img2img/, tuneavideo/ and grids without sidecars)."""
    frames = render_frames(8, SIZE, SIZE)[INDICES]
    edits = tmp_path / "run" / "edits"
    _write_edit(edits / "20250101-120000", "a-red-ball", frames, source, "a red ball", "tuneavideo")
    _write_edit(edits / "20250102-090000" / "img2img", "a-red-ball", frames, source, "a red ball", "img2img")
    write_video(edits / "20250102-090000" / "compare-a-red-ball.mp4", frames, fps=4.0)  # a grid: no sidecar
    _write_edit(edits / ".cache", "cached", frames, source, "a", "tuneavideo")  # hidden folders are skipped
    (edits / "20250101-120000" / ".a-red-ball.123-0badf00d.partial.mp4").write_bytes(b"")  # and temporaries
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    main([str(edits), "--clip-model", str(tiny_clip)])

    assert list(elsewhere.iterdir()) == []  # nothing written into the current directory
    saved = json.loads((edits / "results.json").read_text())
    clips = [row["clip"] for row in saved["rows"]]
    assert clips == ["20250101-120000/a-red-ball", "20250102-090000/img2img/a-red-ball"]
    table = capsys.readouterr().out
    assert table == (edits / "results.md").read_text()
    assert "| 20250102-090000/img2img/a-red-ball | img2img | a red ball | 4 |" in table


def test_evaluate_reuses_a_loaded_scorer_and_accepts_single_files(tiny_clip, source, tmp_path):
    frames = render_frames(8, SIZE, SIZE)[INDICES]
    video = _write_edit(tmp_path / "run", "copy", frames, source, "a red ball", "img2img")
    rows = evaluate([video], ClipScorer(tiny_clip))
    assert [row["clip"] for row in rows] == ["copy"]


@pytest.mark.parametrize(
    "record", [{"start": 0, "stop": 8, "stride": 2}, INDICES], ids=["start-stop-stride", "older-list"]
)
def test_sidecars_name_their_frames_as_a_range_or_as_the_older_list(source, tmp_path, record):
    frames = render_frames(8, SIZE, SIZE)[INDICES]
    video = _write_edit(tmp_path, "edit", frames, source, "a ball", "tuneavideo")
    sidecar = json.loads(video.with_suffix(".json").read_text())
    sidecar["source"]["frame_indices"] = record
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    meta = load_sidecar(video)
    assert meta["frame_indices"] == INDICES
    edited, source_frames = read_edit_and_source(video, meta)
    assert len(edited) == len(source_frames) == len(INDICES)


def test_a_sidecar_range_without_its_stop_is_named(source, tmp_path):
    video = _write_edit(tmp_path, "edit", render_frames(8, SIZE, SIZE)[INDICES], source, "a ball", "tuneavideo")
    sidecar = json.loads(video.with_suffix(".json").read_text())
    sidecar["source"]["frame_indices"] = {"start": 0, "stride": 2}
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(VidSynthError, match="unreadable or incomplete \\(KeyError: 'stop'\\)"):
        load_sidecar(video)


def test_missing_sidecar_is_named(tiny_clip, source, tmp_path):
    video = _write_edit(tmp_path / "run", "orphan", render_frames(8, SIZE, SIZE)[INDICES], source, "a", "img2img")
    video.with_suffix(".json").unlink()
    with pytest.raises(VidSynthError, match=r"orphan\.mp4 has no sidecar orphan\.json.*inference\.py"):
        evaluate([tmp_path / "run"], tiny_clip)


def test_one_frame_clip_is_refused(tiny_clip, source, tmp_path):
    video = _write_edit(tmp_path / "run", "still", render_frames(1, SIZE, SIZE), source, "a", "tuneavideo")
    with pytest.raises(VidSynthError, match=r"still\.mp4 has 1 frame.*at least 2"):
        evaluate([video], tiny_clip)


def test_cli_exits_2_on_missing_sidecar_and_keeps_old_results(tiny_clip, source, tmp_path):
    video = _write_edit(tmp_path / "run", "orphan", render_frames(8, SIZE, SIZE)[INDICES], source, "a", "img2img")
    video.with_suffix(".json").unlink()
    (tmp_path / "results.md").write_text("old results\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "vidsynth.evaluate", str(video), "--clip-model", str(tiny_clip), "--out", "results"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "has no sidecar orphan.json" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "results.md").read_text() == "old results\n"
    assert not (tmp_path / "results.json").exists()


def test_a_region_edit_gets_its_change_outside_the_mask(tiny_clip, source, tmp_path):
    """The mask's left half is the region: only the right half's difference from the source counts."""
    source_frames = render_frames(8, SIZE, SIZE)[INDICES]  # (4, 32, 32, 3)
    edited = source_frames.copy()
    edited[:, :, : SIZE // 2] = 255 - edited[:, :, : SIZE // 2]  # changed inside the region only
    run = tmp_path / "run"
    video = _write_edit(run, "region", edited, source, "a red ball", "tuneavideo")
    _write_edit(run, "plain", edited, source, "a red ball", "tuneavideo")
    masks = np.zeros_like(source_frames)
    masks[:, :, : SIZE // 2] = 255
    write_video(run / "region.mask.mp4", masks, fps=4.0)
    sidecar = json.loads(video.with_suffix(".json").read_text())
    sidecar["region"] = {"source": "mask-video", "edit": "inside", "mask": "region.mask.mp4"}
    video.with_suffix(".json").write_text(json.dumps(sidecar))
    main([str(run), "--clip-model", str(tiny_clip), "--out", str(tmp_path / "results")])
    rows = {row["clip"]: row for row in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert rows["plain"]["change_outside_region"] is None
    assert rows["region"]["change_outside_region"] < 4  # the source's pixels there, through the codec
    assert np.abs(edited.astype(float) - source_frames).mean() > 40  # the whole frame's change: the region's counts
    header = (tmp_path / "results.md").read_text().splitlines()[2]
    assert "| flicker | change outside region |" in header
    (run / "region.mask.mp4").unlink()
    with pytest.raises(
        VidSynthError, match=r"mask video .*region\.mask\.mp4 named by the sidecar region\.json is miss"
    ):
        load_sidecar(video)  # before any scoring
