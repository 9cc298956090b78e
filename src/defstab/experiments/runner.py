"""Run an experiment: its runs (skipping finished ones), tables, figures, findings."""

from __future__ import annotations

from pathlib import Path

from defstab.data.spec import DataSpec
from defstab.experiments.aggregate import aggregate
from defstab.experiments.config import ExperimentConfig
from defstab.experiments.presets import PAPER_COST
from defstab.experiments.registry import get_experiment
from defstab.experiments.runs import DataCache, execute, is_finished
from defstab.io.atomic import write_json
from defstab.io.provenance import versions
from defstab.io.tables import write_csv


def caveats(cfg: ExperimentConfig, settings: dict, data: list[DataSpec]) -> list[str]:
    """What a reader must know: the preset's scale, and what the data used is not."""
    out = []
    if cfg.preset == "quick":
        out.append(
            f"QUICK PRESET: a scaled-down replication (width ×{settings['width']}, "
            f"{settings['seeds']} seeds, {settings['images']} measured images, "
            f"{settings['epochs']} epochs on {settings['train_images']} training images), "
            "not the paper's setting."
        )
    for text in dict.fromkeys(c for d in data for c in d.caveats(cfg.templates)):
        out.append(text)
    return out


def run_experiment(cfg: ExperimentConfig, quiet: bool = False) -> dict:
    """Execute every run of ``cfg`` (finished runs are loaded, not rerun) and write
    ``OUT/<name>/``: results.csv (tidy), summary.csv (mean ± 2 std), a figure, and
    experiment.json (settings, versions, caveats, findings, each run's provenance)."""
    experiment = get_experiment(cfg.name)
    settings = cfg.settings()
    plan = experiment.plan(cfg)
    out = Path(cfg.out)
    folder = out / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    cache = DataCache()
    resumed = sum(is_finished(spec, out) for spec in plan)
    if resumed and not quiet:
        print(f"{cfg.name}: resuming — {resumed} of {len(plan)} runs already finished in {out}")
    runs = plan
    if not quiet:
        from tqdm.auto import tqdm

        runs = tqdm(plan, desc=cfg.name, unit="run", dynamic_ncols=True)
    results = []
    for spec in runs:
        if not quiet:
            runs.set_postfix_str(spec.key)
        results.append(execute(spec, out, cache, quiet=True))
    rows = [{"experiment": cfg.name} | r for res in results for r in res["rows"]]
    summary = aggregate(rows)
    conditions = list(dict.fromkeys(spec.condition for spec in plan))
    write_csv(folder / "results.csv", rows)
    write_csv(folder / "summary.csv", summary)
    title = experiment.title + (" — quick preset" if cfg.preset == "quick" else "")
    figure = experiment.figure(summary, conditions, folder / f"{cfg.name}.png", title)
    data = list(dict.fromkeys(DataSpec.parse(spec.data) for spec in plan))
    meta = {
        "experiment": cfg.name,
        "title": experiment.title,
        "preset": cfg.preset,
        "settings": settings,
        "data": cfg.data,
        "data_used": [d.record() for d in data],
        "templates": cfg.templates,
        "seeds": list(range(settings["seeds"])),
        "conditions": conditions,
        "caveats": caveats(cfg, settings, data),
        "findings": experiment.findings(summary, conditions),
        "figure": figure.name,
        "runs": [
            {
                "key": s.key,
                "folder": str(s.folder(out).relative_to(out)),
                **{k: r[k] for k in ("network", "test_acc", "train_acc") if k in r},
                "provenance": r.get("provenance", {}),
            }
            for s, r in zip(plan, results, strict=True)
        ],
        "resumed_runs": resumed,
        "paper_preset_cost": PAPER_COST,
        "versions": versions(),  # of the code that wrote these tables; runs carry their own
    }
    write_json(folder / "experiment.json", meta)
    return meta
