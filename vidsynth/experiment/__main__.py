"""Run an experiment: ``python -m vidsynth.experiment FILE [key=value ...] [--out DIR] [--ray ...]``.

Parse, resolve every cell (a typo fails here, before anything runs, and before torch or Ray is even
imported), lock the experiment folder (one run at a time), run the unfinished jobs, write the table
and plots, print the summary. Exits non-zero if any cell failed; rerunning the same command redoes
only those (and any that did not finish).
"""

import argparse
import logging

logger = logging.getLogger("vidsynth.experiment")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vidsynth.experiment",
        description="Tune and edit every clip (animate every still) with every setting of a grid; one table of "
        "metrics, time and memory.",
    )
    parser.add_argument("experiment", help="experiment YAML, e.g. configs/experiments/example.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="experiment keys, e.g. clip_model=...")
    parser.add_argument("--out", help="experiment folder (default: the file's out)")
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run cells as Ray tasks: local (a Ray instance on this machine), auto (the running cluster) or an address",
    )
    parser.add_argument(
        "--gpus-per-cell", type=float, help="with --ray: GPUs each tuning and edit asks for (default 0)"
    )
    parser.add_argument(
        "--cpus-per-cell", type=float, help="with --ray: CPUs each tuning and edit asks for (default 1)"
    )
    return parser.parse_args(argv)


def check_animation_models(plan) -> None:
    """Each image-to-video model the image cells use is one (read from its JSON files, no weights loaded).

    A missing or wrong folder fails the experiment now, not each of its cells; ``tiny`` is built here the
    first time, so cells running at once (Ray) find it built.
    """
    from vidsynth.animation.model import model_facts

    for model in dict.fromkeys(cell.edit.config.model for cell in plan.cells if cell.edit.kind == "animate"):
        model_facts(model)


def check_segment_models(plan) -> None:
    """Each segmentation model the region cells use is a folder here, in the cache, or on a hub that answers (no
    weights loaded).

    A missing one fails the experiment now, not each of its cells; ``tiny`` is built here the first time, so
    cells running at once (Ray) find it built.
    """
    from vidsynth.hub import require_model
    from vidsynth.regions.segment import DOWNLOAD_FIX, model_folder

    wanted = {}
    for config in (cell.edit.config for cell in plan.cells if cell.edit.kind == "edit"):
        sources = config.region_sources()
        if sources and (config.region_from or sources[0]) == "segment":
            wanted[(config.segment_model, "sam2-video", "segmentation model")] = None
            if config.segment:
                wanted[(config.segment_text_model, "clipseg", "segmentation text model")] = None
    for ref, kind, what in wanted:
        require_model(model_folder(ref, kind), "config.json", what, DOWNLOAD_FIX.format(what=what))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from vidsynth.errors import VidSynthError
    from vidsynth.experiment.config import check_clip_model, load_experiment
    from vidsynth.experiment.plan import make_plan

    if args.ray is None and (args.gpus_per_cell is not None or args.cpus_per_cell is not None):
        raise VidSynthError("--gpus-per-cell and --cpus-per-cell size Ray tasks. Add --ray local (or auto)")
    experiment, clips = load_experiment(args.experiment, args.overrides, args.out)
    plan = make_plan(experiment, clips)
    check_animation_models(plan)
    check_segment_models(plan)
    check_clip_model(experiment.clip_model)  # every cell needs it: a missing one fails now, not after each edit
    from vidsynth.config import save_config
    from vidsynth.experiment.lock import lock_folder
    from vidsynth.experiment.runner import LocalExecutor, run_plan
    from vidsynth.experiment.table import summarize, summary_markdown, write_plots

    if args.ray is None:
        executor = LocalExecutor()
    else:
        from vidsynth.experiment.ray_cluster import RayExecutor

        executor = RayExecutor(args.ray, args.gpus_per_cell or 0, args.cpus_per_cell or 1)
    try:
        lock = lock_folder(plan.out)  # held while the jobs run; released by the OS if this process dies
    except VidSynthError:
        executor.close()
        raise
    with lock:
        save_config(experiment, plan.out / "experiment.yaml")
        rows = run_plan(plan, executor)
        write_plots(plan, rows)
    print(summary_markdown(summarize(rows)), end="")
    failed = sorted({row["clip"] + " / " + row["setting"] for row in rows if row.get("error")})
    logger.info("Table: %s (and results.csv, plots/)", plan.out / "results.md")
    if failed:
        raise VidSynthError(
            f"{len(failed)} of {len(plan.cells)} cells failed ({'; '.join(failed[:3])}"
            f"{', ...' if len(failed) > 3 else ''}); their errors are in the table. Rerun to retry them"
        )


if __name__ == "__main__":
    from vidsynth.cli import run_main

    run_main(main)
