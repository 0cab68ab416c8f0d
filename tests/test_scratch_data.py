"""The from-scratch model's data: windows, fitting to a square, labels, bad inputs, the shapes footage, streaming."""

import csv
import pickle
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from vidsynth.errors import VidSynthError
from vidsynth.media.video import read_frames
from vidsynth.media.writers import write_video
from vidsynth.scratch.data import FootageWindows
from vidsynth.scratch.labels import Track, read_labels
from vidsynth.scratch.shapes import DIRECTIONS, SPEED, make_shapes


def _grey_video(path, num_frames, width=48, height=32, fps=10.0):
    """Frame i is a flat grey of level 20 + 10 * (i % 20), so decoded pixels tell which frame was read."""
    levels = (20 + 10 * (np.arange(num_frames) % 20)).astype(np.uint8)
    write_video(path, np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)), fps)
    return path


def _level(frame_index: int) -> float:
    """The [-1, 1] value of _grey_video's frame ``frame_index``."""
    return (20 + 10 * (frame_index % 20)) / 127.5 - 1


def _write_csv(path, rows):
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Two grey videos (20 and 30 frames, 10 fps, 48x32) in one folder."""
    root = tmp_path_factory.mktemp("footage")
    _grey_video(root / "a.mp4", 20)
    _grey_video(root / "b.mp4", 30)
    return root


def test_windows_frames_geometry_and_cache(footage, tmp_path):
    ds = FootageWindows(footage / "a.mp4", num_frames=4, frame_skip=2, resolution=24)
    assert len(ds) == 20 - 9  # a window spans (4 - 1) * 3 + 1 = 10 source frames
    assert ds.window(3)[1] == [3, 6, 9, 12] and ds.window(-1)[1] == [10, 13, 16, 19]
    assert ds.fps == pytest.approx(10 / 3) and ds.class_names is None and ds.label_dim is None
    item = ds[3]
    assert set(item) == {"pixel_values"} and item["pixel_values"].shape == (4, 3, 24, 24)
    pixels = item["pixel_values"]
    # 48x32 fitted into 24: 24x16 centred, 4 rows of pad above and below, exactly the recorded pad value
    assert ds.pad_value == -1.0 and (pixels[:, :, :4] == -1).all() and (pixels[:, :, 20:] == -1).all()
    content = pixels[:, :, 4:20].mean(dim=(1, 2, 3))
    assert torch.allclose(content, torch.tensor([_level(i) for i in (3, 6, 9, 12)]), atol=0.04)

    both = FootageWindows(footage, num_frames=4, frame_skip=0, resolution=24)
    assert len(both) == 17 + 27 and [s.name for s in both.sources] == ["a.mp4", "b.mp4"]
    assert both.window(17)[0].name == "b.mp4" and both.window(17)[1] == [0, 1, 2, 3]
    # a DataLoader worker forked after the dataset has read (and holds open decoders) reads on its own
    expected = both[17]["pixel_values"]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(both, [0, 17, 43]), batch_size=3, num_workers=1)
    batch = next(iter(loader))["pixel_values"]
    assert torch.equal(batch[1], expected) and batch.shape == (3, 4, 3, 24, 24)

    cached = FootageWindows(footage, num_frames=4, frame_skip=0, resolution=24, cache_dir=tmp_path / "cache")
    files = sorted((tmp_path / "cache").iterdir())
    assert len(files) == 2 and all(f.suffix == ".npy" for f in files)
    for index in (0, 20, 43):
        assert torch.equal(cached[index]["pixel_values"], both[index]["pixel_values"])
    stamps = [f.stat().st_mtime_ns for f in files]
    FootageWindows(footage, num_frames=4, frame_skip=0, resolution=24, cache_dir=tmp_path / "cache")
    assert [f.stat().st_mtime_ns for f in files] == stamps  # reused, not rebuilt


def test_frame_folders_portrait_padding(tmp_path):
    for clip, count in (("one", 5), ("two", 6)):
        folder = tmp_path / "frames" / clip
        folder.mkdir(parents=True)
        for i in range(count):  # 20x40 portrait; frame_10.png sorts after frame_9.png
            Image.new("RGB", (20, 40), (200, 200, 200) if i == count - 1 else (100, 100, 100)).save(
                folder / f"frame_{i}.png"
            )
    (tmp_path / "frames" / "two" / "frames.json").write_text('{"fps": 12}')
    ds = FootageWindows(tmp_path / "frames", num_frames=5, frame_skip=0, resolution=24)
    assert [(s.name, s.num_frames, s.fps) for s in ds.sources] == [("one", 5, 25.0), ("two", 6, 12.0)]
    assert len(ds) == 1 + 2
    pixels = ds[2]["pixel_values"]  # "two", frames 1..5: 12x24 centred, 6 columns of pad either side
    assert (pixels[..., :6] == -1).all() and (pixels[..., 18:] == -1).all()
    assert pixels[-1, :, :, 6:18].mean() == pytest.approx(200 / 127.5 - 1, abs=0.01)
    assert pixels[0, :, :, 6:18].mean() == pytest.approx(100 / 127.5 - 1, abs=0.01)


def test_labels_from_time_ranges(footage, tmp_path):
    seconds = _write_csv(
        tmp_path / "labels.csv",
        [
            ["video", "start", "end", "label"],
            ["a.mp4", 0, 1.0, "walk"],
            ["a.mp4", 1.0, 2.0, "sit"],
            ["b", 2.0, 3.0, "run"],  # by stem; b's frames 15..19 are left unlabelled
            ["b.mp4", 0, 1.5, "sit"],
        ],
    )
    ds = FootageWindows(footage, num_frames=4, frame_skip=0, resolution=16, labels=seconds)
    assert ds.class_names == ["run", "sit", "walk"]
    # a: 17 windows; b: 27 less the 8 that touch frames 15..19
    assert len(ds) == 17 + 19 and all(ds.window(i)[0].name == "a.mp4" for i in range(17))
    assert ds[8]["labels"].tolist() == [2, 2, 1, 1] and ds[8]["labels"].dtype == torch.long
    b_starts = [ds.window(i)[1][0] for i in range(17, len(ds))]
    assert b_starts == [*range(12), *range(20, 27)]
    assert ds[17 + 11]["labels"].tolist() == [1, 1, 1, 1] and ds[17 + 12]["labels"].tolist() == [0, 0, 0, 0]

    frames = _write_csv(
        tmp_path / "frames.csv",
        [["video", "start_frame", "end_frame", "label"], ["a.mp4", 0, 10, "walk"], ["a.mp4", 10, 20, "sit"]]
        + [["b.mp4", 0, 15, "sit"], ["b.mp4", 20, 30, "run"]],
    )
    by_frames = FootageWindows(footage, num_frames=4, frame_skip=0, resolution=16, labels=frames)
    assert len(by_frames) == len(ds) and all(torch.equal(by_frames[i]["labels"], ds[i]["labels"]) for i in (0, 8, 30))

    single = _write_csv(tmp_path / "one.csv", [["start", "end", "label"], [0, 0.5, "x"], [0.5, 2, "y"]])
    one = FootageWindows(footage / "a.mp4", num_frames=2, frame_skip=3, resolution=16, labels=single)
    assert one.class_names == ["x", "y"] and one[2]["labels"].tolist() == [0, 1]  # frames 2 and 6

    # labels for sampling: a clip of 8 frames at 4 fps, ids in a trained model's classes
    clip = [Track("clip", 8, 4.0)]
    given = read_labels(single, clip, class_names=["w", "x", "y", "z"])
    assert given.class_names == ["w", "x", "y", "z"] and given.per_source["clip"].tolist() == [1, 1, 2, 2, 2, 2, 2, 2]
    with pytest.raises(VidSynthError, match=r"unknown label 'y'; the model knows w, x\. Use one of those"):
        read_labels(single, clip, class_names=["w", "x"])


def test_label_vectors(footage, tmp_path):
    keypoints = np.random.default_rng(0).normal(size=(20, 17, 2)).astype(np.float32)
    np.save(tmp_path / "a.npy", keypoints)
    ds = FootageWindows(footage / "a.mp4", num_frames=3, frame_skip=1, resolution=16, labels=tmp_path / "a.npy")
    assert ds.label_dim == 34 and ds.class_names is None
    item = ds[4]
    assert item["labels"].dtype == torch.float32 and item["labels"].shape == (3, 34)
    assert torch.equal(item["labels"], torch.from_numpy(keypoints[[4, 6, 8]].reshape(3, 34)))

    rows = [["video", "frame", "x", "y"]]
    rows += [[name, f, f, -f] for name, count in (("a.mp4", 20), ("b.mp4", 30)) for f in reversed(range(count))]
    both = FootageWindows(
        footage, num_frames=2, frame_skip=0, resolution=16, labels=_write_csv(tmp_path / "v.csv", rows)
    )
    assert both.label_dim == 2 and both[19 + 5]["labels"].tolist() == [[5, -5], [6, -6]]  # b's window at frame 5

    np.savez(tmp_path / "v.npz", **{"a.mp4": np.zeros((20, 3)), "b": np.ones((30, 3))})
    npz = FootageWindows(footage, num_frames=2, frame_skip=0, resolution=16, labels=tmp_path / "v.npz")
    assert npz.label_dim == 3 and npz[0]["labels"].sum() == 0 and npz[19]["labels"].sum() == 6


def _bad_inputs(footage, tmp):
    """(what is wrong, keyword arguments, a piece of the message) for each refused input."""
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("no footage here")
    np.save(tmp / "short.npy", np.zeros((19, 34)))
    header = ["video", "start", "end", "label"]
    overlap = _write_csv(tmp / "overlap.csv", [header, ["a.mp4", 0, 1.2, "x"], ["a.mp4", 1.0, 2.0, "y"]])
    late = _write_csv(tmp / "late.csv", [header, ["a.mp4", 0, 2.5, "x"]])
    reversed_range = _write_csv(tmp / "rev.csv", [header, ["a.mp4", 1, 0.5, "x"]])
    unknown = _write_csv(tmp / "unknown.csv", [header, ["c.mp4", 0, 1, "x"]])
    missing = _write_csv(tmp / "missing.csv", [header, ["a.mp4", 0, 1, "x"]])
    columns = _write_csv(tmp / "columns.csv", [["clip", "from", "to", "what"], ["a.mp4", 0, 1, "x"]])
    # frames 5 and 6 unlabelled: every window of 8 frames every 2nd frame holds one of them
    gaps = _write_csv(tmp / "gaps.csv", [header, ["a.mp4", 0, 0.5, "x"], ["a.mp4", 0.7, 2, "y"]])
    a = footage / "a.mp4"
    return [
        ("no videos", {"path": tmp / "empty"}, "No videos"),
        ("no such path", {"path": tmp / "nowhere"}, "Footage not found"),
        ("too short", {"path": footage, "num_frames": 11}, "a.mp4 has 20 frames, shorter than one window"),
        ("overlap", {"labels": overlap}, "lines 2 and 3 overlap in a.mp4"),
        ("out of range", {"labels": late}, "ends after a.mp4, which lasts 2 seconds"),
        ("start after end", {"labels": reversed_range}, "must have 0 <= start < end"),
        ("unknown video", {"labels": unknown}, "no source is called 'c.mp4'"),
        ("video without ranges", {"path": footage, "labels": missing}, "has no range for b.mp4"),
        ("bad header", {"labels": columns}, "Fix its header"),
        ("vectors", {"path": a, "labels": tmp / "short.npy"}, "gives 19 frames of vectors for a.mp4, which has 20"),
        ("no label file", {"labels": tmp / "nope.csv"}, "Label file not found"),
        ("every window has a gap", {"path": a, "num_frames": 8, "labels": gaps}, "no range in gaps.csv covers"),
        ("zero frames", {"num_frames": 0}, "data.num_frames must be an integer >= 1"),
    ]


def test_bad_inputs_one_line_each(footage, tmp_path):
    for what, changes, message in _bad_inputs(footage, tmp_path):
        kwargs = {"path": footage / "a.mp4", "num_frames": 4, "frame_skip": 1, "resolution": 16}
        kwargs |= changes
        with pytest.raises(VidSynthError) as caught:
            FootageWindows(kwargs.pop("path"), **kwargs, cache_dir=tmp_path / "cache")
            pytest.fail(f"{what}: accepted")
        assert message in str(caught.value), what
        assert "\n" not in str(caught.value), what
    assert not (tmp_path / "cache").exists()  # refused before anything was written


def test_make_shapes_is_deterministic_and_its_labels_match_the_motion(tmp_path):
    size, fps = 48, 8  # 48 / 24 = 2 px per frame: whole pixels, so one frame is the last one rolled
    first = make_shapes(tmp_path / "one", seed=3, num_videos=2, seconds=8, fps=fps, size=size)
    again = make_shapes(tmp_path / "two", seed=3, num_videos=2, seconds=8, fps=fps, size=size)
    other = make_shapes(tmp_path / "three", seed=4, num_videos=2, seconds=8, fps=fps, size=size)
    assert (first / "labels.csv").read_text() == (again / "labels.csv").read_text()
    with pytest.raises(VidSynthError, match="already exists and is not an empty folder"):
        make_shapes(first, seed=3)
    videos = sorted(p.name for p in (first / "videos").iterdir())
    assert videos == ["shapes_000.mp4", "shapes_001.mp4"]
    frames = {name: read_frames(first / "videos" / name, range(64)) for name in videos}
    for name in videos:
        assert np.array_equal(frames[name], read_frames(again / "videos" / name, range(64)))
        assert not np.array_equal(frames[name], read_frames(other / "videos" / name, range(64)))

    ds = FootageWindows(first, num_frames=64, frame_skip=0, resolution=size, labels=first / "labels.csv")
    assert ds.class_names == sorted(DIRECTIONS) and len(ds) == 2
    step = round(SPEED * size)
    for index in range(len(ds)):
        item = ds[index]
        pixels, labels = item["pixel_values"], item["labels"]
        hits = 0
        for t in range(1, 64):
            errors = {
                name: (pixels[t] - torch.roll(pixels[t - 1], (dy * step, dx * step), dims=(1, 2))).abs().mean()
                for name, (dx, dy) in DIRECTIONS.items()
            }
            hits += min(errors, key=errors.get) == ds.class_names[labels[t]]
        assert hits == 63  # every frame moved in its label's direction


def test_memory_does_not_grow_with_footage_length(tmp_path):
    """The same reads from a 10 s and a 100 s video allocate alike, and the dataset holds no frames."""
    peaks, sizes = [], []
    for seconds in (10, 100):
        path = _grey_video(tmp_path / f"{seconds}" / "clip.mp4", 25 * seconds, width=64, height=48, fps=25)
        for cache in (None, tmp_path / f"cache{seconds}"):
            ds = FootageWindows(path.parent, num_frames=4, frame_skip=1, resolution=32, cache_dir=cache)
            tracemalloc.start()
            for index in np.linspace(0, len(ds) - 1, 8).astype(int):
                ds[int(index)]
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            sizes.append(len(pickle.dumps(ds)))
    # all 2500 frames at 32x32 would be 7.7 MB of uint8; one window's is 12 kB (and 49 kB as float)
    assert max(peaks) < 1_000_000 and max(peaks[2:]) < 2 * max(peaks[:2]), peaks
    assert max(sizes) < 20_000 and max(sizes[2:]) < 2 * max(sizes[:2]), sizes
