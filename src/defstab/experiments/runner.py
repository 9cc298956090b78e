"""Run an experiment: its runs (skipping finished ones), tables, figures, findings."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from defstab.data.spec import DataSpec
from defstab.experiments.aggregate import aggregate
from defstab.experiments.config import ExperimentConfig
from defstab.experiments.executors import run_all
from defstab.experiments.findings import Evidence
from defstab.experiments.presets import PAPER_COST
from defstab.experiments.registry import UNTRAINED, get_experiment
from defstab.experiments.runs import TARGET_FIELDS, is_finished
from defstab.experiments.statistics import SeedPlan
from defstab.experiments.verdicts import all_decided, evaluate
from defstab.io.atomic import write_json
from defstab.io.provenance import versions
from defstab.io.tables import write_csv

STATISTICS_NOTE = (
    "Each finding's effect is computed within each seed (same seed: same initial weights and "
    "data order), signed so that the paper's claim predicts a positive value, and summarised "
    "by its mean over seeds with a t interval [lo, hi]. Each finding states its smallest "
    "effect of interest δ > 0, and each preset its seed plan (looks fixed in advance), "
    "before any run. Verdict: 'does not show' when hi < δ (the effect, if any, is too small "
    "to matter or reversed); 'shows' when lo > 0 — or lo > δ for an effect that is ≥ 0 by "
    "construction — worded 'at least δ' when lo > δ and 'direction' when only lo > 0; "
    "otherwise 'inconclusive'. Levels: one-sided 2.5% for each kind of verdict, Bonferroni "
    "over the layers a finding picks from and over the plan's looks, then Holm over the "
    "experiment's findings (its family). The experiment stops at the first planned look "
    "where every finding is decided; seeds beyond the plan give an exploratory verdict, "
    "never the preset's. Every network behind a finding about trained networks must reach "
    "the preset's accuracy; a seed whose networks do not is left out and named "
    "(missing_seeds), and the verdict without the gate is shown beside it. An inconclusive "
    "finding names the plan's next look, or, the plan exhausted, the seeds a new plan would "
    "need at the observed mean and spread."
)


def machine() -> str:
    import os
    import platform

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}"


def training_in_words(experiment, settings: dict) -> str:
    if experiment.describe is None and not settings["epochs"]:
        return UNTRAINED
    if experiment.describe is not None:
        text = experiment.describe(settings)
    else:
        n = settings["train_images"] or "all"
        text = f"{settings['epochs']} epochs on {n} training images"
    precision = settings.get("precision")
    return f"{text}, in {precision}" if precision and text != UNTRAINED else text


def caveats(
    cfg: ExperimentConfig, settings: dict, data: list[DataSpec], experiment, n_seeds: int
) -> list[str]:
    """What a reader must know: the preset's scale, and what the data used is not."""
    out = []
    if cfg.preset == "quick" or cfg.label:
        out.append(
            f"{(cfg.label or 'quick preset').upper()}: a scaled-down replication "
            f"(width ×{settings['width']}, "
            f"{n_seeds} seeds, {settings['images']} measured images, "
            f"{training_in_words(experiment, settings)}), not the paper's setting."
        )
    for text in dict.fromkeys(c for d in data for c in d.caveats(cfg.templates)):
        out.append(text)
    return out


def seed_plan(cfg: ExperimentConfig, experiment) -> SeedPlan:
    """The plan the runs follow: the config's own (the demo's), else the preset's, stated in
    the experiment's catalog file."""
    if cfg.seed_plan is not None:
        return cfg.seed_plan
    plan = experiment.seed_plans.get(cfg.preset)
    if plan is None:
        raise ValueError(f"experiment {cfg.name} states no seed plan for preset {cfg.preset!r}.")
    return plan


def _run_seeds(cfg: ExperimentConfig, experiment, n: int, quiet: bool):
    """The runs of the first ``n`` seeds (finished ones loaded), and their evidence."""
    look = replace(cfg, seeds=n)
    plan = experiment.plan(look)
    out = Path(cfg.out)
    resumed = sum(is_finished(spec, out) for spec in plan)
    if resumed and not quiet:
        print(f"{cfg.name}: resuming — {resumed} of {len(plan)} runs already finished in {out}")
    results = run_all(plan, out, cfg.executor, progress=not quiet, label=f"{cfg.name} ({n} seeds)")
    rows = [{"experiment": cfg.name} | r for res in results for r in res["rows"]]
    conditions = list(dict.fromkeys(spec.condition for spec in plan))
    evidence = Evidence(
        rows,
        aggregate(rows),
        conditions,
        [
            {"condition": r["condition"], "seed": r["seed"]}
            | {k: r[k] for k in ("test_acc", "train_acc", *TARGET_FIELDS) if k in r}
            for r in results
        ],
        look.settings(),
    )
    return plan, results, resumed, evidence


def run_experiment(cfg: ExperimentConfig, quiet: bool = False) -> dict:
    """Execute the runs of ``cfg`` look by look under its seed plan (finished runs are
    loaded, not rerun; it stops at the first planned look where every finding is decided,
    or runs exactly ``cfg.seeds`` seeds when given) and write ``OUT/<name>/``: results.csv
    (tidy), summary.csv (mean ± 2 std), a figure, and experiment.json (settings, the plan
    and every look, versions, caveats, findings, each run's provenance)."""
    experiment = get_experiment(cfg.name)
    plan_of_seeds = seed_plan(cfg, experiment)
    out = Path(cfg.out)
    folder = out / (cfg.folder_name or cfg.name)
    folder.mkdir(parents=True, exist_ok=True)
    family = f"{cfg.name}, {cfg.label or cfg.preset + ' preset'}"
    fixed = cfg.seeds if cfg.seeds is not None else cfg.overrides.get("seeds")
    targets = [fixed] if fixed is not None else list(plan_of_seeds.looks)
    for n in targets:
        plan, results, resumed, evidence = _run_seeds(cfg, experiment, n, quiet)
        found, looks = evaluate(experiment.findings, evidence, plan_of_seeds, family=family)
        if all_decided(found):
            break
        if n != targets[-1] and not quiet:
            print(f"{cfg.name}: {n} seeds leave findings undecided; the plan's next look runs")
    settings = evidence.settings
    rows, summary, conditions = evidence.rows, evidence.summary, evidence.conditions
    trained = any(spec.train is not None for spec in plan)
    write_csv(folder / "results.csv", rows)
    write_csv(folder / "summary.csv", summary)
    heading = experiment.title if trained else (experiment.title_init_only or experiment.title)
    label = cfg.label or ("quick preset" if cfg.preset == "quick" else None)
    title = heading + (f" — {label}" if label else "")
    figure = experiment.figure(summary, conditions, folder / f"{cfg.name}.png", title)
    data = list(dict.fromkeys(DataSpec.parse(spec.data) for spec in plan))
    seeds = sorted({spec.seed for spec in plan})
    seconds = [r["seconds"] for r in results if "seconds" in r]
    meta = {
        "experiment": cfg.name,
        "title": heading,
        "preset": cfg.preset,
        "settings": settings,
        "data": cfg.data,
        "data_used": [d.record() for d in data],
        "templates": cfg.templates,
        "seeds": seeds,
        "seed_plan": plan_of_seeds.record() | {"preset": cfg.label or cfg.preset},
        "beyond_plan": len(seeds) not in plan_of_seeds.looks,
        "looks": looks,
        "conditions": conditions,
        "caveats": caveats(cfg, settings, data, experiment, len(seeds)),
        "findings": found,
        **(
            {"findings_retired": experiment.findings_retired} if experiment.findings_retired else {}
        ),
        "statistics": STATISTICS_NOTE,
        "figure": figure.name,
        "tables": list(experiment.tables),
        "runs": [
            {
                "key": s.key,
                "folder": str(s.folder(out).relative_to(out)),
                **{
                    k: r[k]
                    for k in ("network", "test_acc", "train_acc", "steps", "solved_step", "seconds")
                    if k in r
                },
                "provenance": r.get("provenance", {}),
            }
            for s, r in zip(plan, results, strict=True)
        ],
        "resumed_runs": resumed,
        "executor": asdict(cfg.executor),
        "cost": {
            "runs": len(plan),
            "seconds_per_run": sum(seconds) / len(seconds) if seconds else None,
            "measured_on": machine(),
            "paper_preset_gpu_estimate": PAPER_COST,
        },
        "versions": versions(),  # of the code that wrote these tables; runs carry their own
    }
    write_json(folder / "experiment.json", meta)
    return meta
