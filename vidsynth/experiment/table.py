"""The experiment's table: a row per clip x setting x edited video, a summary per setting, a plot per grid key.

``results.csv`` has every row (the grid values in columns of their own, for any later analysis; a row's
kind says whether it is an edit or an animation, which is scored by image alignment in place of text alignment);
``results.md`` the summary (means over clips) and the rows; ``plots/<grid key>.png`` each metric
against the key's values, averaged over everything else. All are rewritten whole, atomically, after
every cell, so they always show every cell finished so far. Scored with a CLIP of random weights (the
offline stand-in), the table and every plot say so: their CLIP numbers are noise.
"""

import csv
import math
from pathlib import Path

from vidsynth.atomic import atomic_path
from vidsynth.experiment.cells import Outcome
from vidsynth.experiment.plan import Cell, Plan, grid_text
from vidsynth.hub import has_random_weights

METRICS = {  # row key -> column title
    "consistency_all_pairs": "consistency all-pairs",
    "consistency_consecutive": "consistency consecutive",
    "text_alignment": "text alignment",
    "image_alignment": "image alignment",
    "flicker": "flicker",
}
FIGURES = {
    "tune_s": "tune s",
    "edit_s": "edit s",
    "animate_s": "animate s",
    "peak_ram_gib": "peak RAM GiB",
    "peak_gpu_gib": "peak GPU GiB",
    "result_mb": "result MB",
}
ANIMATION_METHOD = "svd"  # the method of an animation's rows, as vidsynth.evaluation.animation names it


def random_clip_note(clip_model: str) -> str | None:
    """The warning the table and plots carry when the CLIP model has random weights, else None."""
    if not has_random_weights(clip_model):
        return None
    return (
        "CLIP model with random weights: consistency, text alignment and image alignment are noise "
        "(flicker does not use CLIP)"
    )


def _peak(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def cell_rows(cell: Cell, tuning: Outcome, edit: Outcome) -> list[dict]:
    """The rows of one cell: one per edited video (or its animation), or one per prompt (or one for an
    animation) saying why the cell failed."""
    tune_stage, edit_stage = tuning.stage, edit.stage
    animated = cell.edit.kind == "animate"
    base = {
        "clip": cell.clip,
        "setting": cell.label,
        **cell.setting,
        "tune_s": tune_stage.seconds if tune_stage else None,
        "animate_s" if animated else "edit_s": edit_stage.seconds if edit_stage else None,
        "peak_ram_gib": _peak(*(s.peak_ram_gib for s in (tune_stage, edit_stage) if s)),
        "peak_gpu_gib": _peak(*(s.peak_gpu_gib for s in (tune_stage, edit_stage) if s)),
        "result_mb": tune_stage.result_mb if tune_stage else None,
    }
    if not edit.ok and animated:
        return [{**base, "kind": "animation", "method": ANIMATION_METHOD, "prompt": None, "error": edit.error}]
    if not edit.ok:
        method = "compare" if cell.edit.config.compare else cell.edit.config.method
        failed = {"kind": "edit", "method": method, "error": edit.error}
        return [{**base, **failed, "prompt": p} for p in cell.edit.config.prompts]
    rows = []
    for row in edit.rows:
        metrics = {key: row[key] for key in METRICS}
        made = {"kind": row["kind"], "method": row["method"], "prompt": row["prompt"]}
        rows.append({**base, **made, **metrics, "video": row["video"]})
    return rows


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(known) / len(known) if known else None


def summarize(rows: list[dict]) -> list[dict]:
    """Per setting and method: how many clips, failures, and the means of the metrics and figures."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["method"]), []).append(row)
    summary = []
    for (setting, method), group in groups.items():
        ok = [row for row in group if not row.get("error")]
        entry = {"setting": setting, "method": method, "clips": len({row["clip"] for row in ok})}
        entry["failed"] = len({row["clip"] for row in group if row.get("error")})
        entry.update({key: _mean([row.get(key) for row in ok]) for key in METRICS})
        means = ("tune_s", "edit_s", "animate_s", "result_mb")
        entry.update({key: _mean([row.get(key) for row in ok]) for key in means})
        entry.update({key: _peak(*(row.get(key) for row in ok)) for key in ("peak_ram_gib", "peak_gpu_gib")})
        summary.append(entry)
    return summary


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value else f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown(rows: list[dict], columns: dict[str, str]) -> list[str]:
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_text(row.get(key)) for key in columns) + " |" for row in rows]
    return lines


def summary_markdown(summary: list[dict]) -> str:
    columns = {"setting": "setting", "method": "method", "clips": "clips", "failed": "failed", **METRICS, **FIGURES}
    return "\n".join(_markdown(summary, columns)) + "\n"


_ANIMATIONS_NOTE = (
    "Animations (kind animation, method svd) have no prompt: image alignment (100 x cosine of each frame with "
    "the animated still) in place of text alignment, and flicker = their mean frame-to-frame change "
    "(0 = frozen).",
)


def write_tables(plan: Plan, rows: list[dict]) -> tuple[Path, Path]:
    """``results.csv`` (every row) and ``results.md`` (summary, then rows) in the experiment folder."""
    grid = list(plan.experiment.grid)
    columns = ["clip", "setting", *grid, "kind", "method", "prompt", *METRICS, *FIGURES, "error", "video"]
    csv_path, md_path = plan.out / "results.csv", plan.out / "results.md"
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    row_columns = {"clip": "clip", "setting": "setting", "kind": "kind", "method": "method", "prompt": "prompt"}
    row_columns |= METRICS
    row_columns |= {**FIGURES, "error": "error"}
    text = [
        f"# Experiment: {len({r['clip'] for r in rows})} clips, CLIP model `{plan.experiment.clip_model}`",
        "",
        "Consistency and text alignment are 100 x cosine; flicker 1.0 = as steady as the source. "
        "Seconds and peak memory are per stage (tuning is shared by the edit settings of a tuning setting); "
        "result MB is the size of the tuning's result (tuned_unet.safetensors plus a LoRA run's adapters).",
        *(_ANIMATIONS_NOTE if any(row.get("kind") == "animation" for row in rows) else ()),
        "",
        *([f"**{note}.**", ""] if (note := random_clip_note(plan.experiment.clip_model)) else []),
        "## Summary (means over clips)",
        "",
        summary_markdown(summarize(rows)),
        "## Rows",
        "",
        *_markdown(rows, row_columns),
    ]
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(text) + "\n")
    return md_path, csv_path


def write_plots(plan: Plan, rows: list[dict]) -> list[Path]:
    """``plots/<grid key>.png``: each metric's mean (over clips and the other keys) at each of the key's values."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    ok = [row for row in rows if not row.get("error")]
    note = random_clip_note(plan.experiment.clip_model)
    paths = []
    for key, values in plan.experiment.grid.items():
        fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2), layout="constrained")
        if note:
            fig.suptitle(note, color="tab:red")
        for ax, (metric, title) in zip(axes, METRICS.items(), strict=True):
            for method in sorted({row["method"] for row in ok}):
                means = [_mean([r[metric] for r in ok if r.get(key) == v and r["method"] == method]) for v in values]
                ax.plot(range(len(values)), [m if m is not None else math.nan for m in means], "o-", label=method)
            ax.set_xticks(range(len(values)), [grid_text(v) for v in values])
            ax.set_xlabel(key)
            ax.set_title(title)
        if ok:  # no line to label while every cell has failed
            axes[0].legend(fontsize="small")
        path = plan.out / "plots" / f"{key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Description": note or ""})
        plt.close(fig)
        paths.append(path)
    return paths
