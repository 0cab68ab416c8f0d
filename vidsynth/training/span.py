"""Which frames of the clip a tuning step sees: a window of ``n_sample_frames`` out of the span.

The span is the source frames ``range(sample_start_idx, sample_end_idx, sample_frame_rate)``. The
original Tune-A-Video tunes on one window, the span's first ``n_sample_frames`` (``window_sampling:
fixed``), so only that window is read and encoded and the rest of a long clip is never seen. With
``window_sampling: random`` the whole span is encoded once and every micro-step of every process
draws a window of consecutive span frames, uniformly anywhere in the span: the model is tuned on the
whole clip while each step costs what a fixed run's does. The draw comes from the micro-step's
generator (``step.step_generator``, seeded by seed, step, micro-step and process), so a resumed run
draws the windows the uninterrupted one drew, and data-parallel processes draw different ones. The
copies of a batch (``train_batch_size``) share their micro-step's window, as they share its clip.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vidsynth.config.train import TrainDataConfig

if TYPE_CHECKING:
    import torch  # the span is checked before torch loads; only a draw needs it


@dataclass(frozen=True)
class TuningSpan:
    """The span of a tuning run and how its windows are drawn."""

    frames: range  # source frame indices of the span
    window: int  # frames per window (n_sample_frames)
    sampling: str  # fixed | random

    @classmethod
    def of(cls, data: TrainDataConfig, clip_frames: int) -> "TuningSpan":
        """The span ``train_data`` asks for in a clip of ``clip_frames`` frames (sample_end_idx null: its end)."""
        end = clip_frames if data.sample_end_idx is None else data.sample_end_idx
        frames = range(data.sample_start_idx, end, data.sample_frame_rate)
        return cls(frames, data.n_sample_frames, data.window_sampling)

    @property
    def frames_read(self) -> int:
        """How many span frames are read and encoded: all for random windows, the first window for fixed."""
        return len(self.frames) if self.sampling == "random" else self.window

    def draw(self, generator: "torch.Generator") -> int:
        """The span position (0-based) of this micro-step's window; fixed: 0, without touching ``generator``."""
        if self.sampling == "fixed":
            return 0
        import torch

        return int(torch.randint(0, len(self.frames) - self.window + 1, (), generator=generator))
