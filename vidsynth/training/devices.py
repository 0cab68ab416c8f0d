"""Where and in which precision a tuning run computes: the run's ``Accelerator``.

accelerate does devices, processes, mixed precision, gradient accumulation, trackers, checkpoints
and resuming; this module only settles what it cannot know: fp16 autocast needs a GPU (accelerate
refuses it on the CPU, and CPU fp16 kernels are slow), so on the CPU fp16 runs as bf16, the CPU's
half-precision format with fp32's range, and the user is told. Only the main process logs: every
other one would repeat each line.
"""

import logging

from accelerate import Accelerator, PartialState
from accelerate.utils import ProjectConfiguration, parse_flag_from_env

from vidsynth.config.train import TrainConfig
from vidsynth.run_folder import RunFolder

logger = logging.getLogger(__name__)


def resolve_mixed_precision(requested: str, device_type: str) -> str:
    """The mixed precision to run with on ``device_type``: fp16 on the CPU runs as bf16."""
    if requested == "fp16" and device_type == "cpu":
        return "bf16"
    return requested


def start_accelerator(cfg: TrainConfig, run: RunFolder) -> Accelerator:
    """The run's Accelerator; ``cfg.mixed_precision`` becomes the precision it runs with."""
    # accelerate launch --cpu sets ACCELERATE_USE_CPU, which Accelerator reads; the first state made must read it too,
    # or it settles on the GPU, and processes started on a machine without one each run alone as process 0.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    if not state.is_main_process:
        logging.disable(logging.WARNING)  # each message once, from the main process; errors from every one
    mixed_precision = resolve_mixed_precision(cfg.mixed_precision, state.device.type)
    if mixed_precision != cfg.mixed_precision:
        logger.warning(
            "mixed_precision %s needs a GPU; running with %s on the CPU", cfg.mixed_precision, mixed_precision
        )
    cfg.mixed_precision = mixed_precision
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=cfg.report_to,
        project_config=ProjectConfiguration(project_dir=str(run.root), logging_dir=str(run.logs)),
    )
    return accelerator
