"""Run an experiment: its runs (skipping finished ones), tables, figures, findings."""

from __future__ import annotations

from pathlib import Path

from defstab.experiments import findings as findings_mod
from defstab.experiments.aggregate import aggregate
from defstab.experiments.definitions import PLANS, ExperimentConfig
from defstab.experiments.figures import layer_curves, shades
from defstab.experiments.presets import PAPER_COST
from defstab.experiments.runs import DataCache, execute
from defstab.io.atomic import write_json
from defstab.io.provenance import versions
from defstab.io.tables import write_csv

TITLES = {
    "pooling": "E1 · Pooling at initialisation and after training (Ruderman Fig. 3)",
    "smooth-init": "E2 · Smooth initialisation (Ruderman Fig. 4)",
    "synthetic": "E3 · Synthetic deformation tasks (Ruderman Fig. 5)",
    "smoothness": "E4 · Filter smoothness before and after training (Ruderman Fig. 6)",
    "random-labels": "E5 · Random labels (Ruderman Fig. 6c and 7)",
    "antialias": "Translations · Does blur before subsampling restore shift stability? "
    "(Azulay & Weiss; Zhang 2019)",
}


def caveats(cfg: ExperimentConfig, settings: dict) -> list[str]:
    out = []
    if cfg.preset == "quick":
        out.append(
            f"QUICK PRESET: a scaled-down replication (width ×{settings['width']}, "
            f"{settings['seeds']} seeds, {settings['images']} measured images, "
            f"{settings['epochs']} epochs on {settings['train_images']} training images), "
            "not the paper's setting."
        )
    data = cfg.data or ""
    root = Path(data.partition(":")[2])
    official = (root / "test_batch").is_file() or (root / "cifar-10-batches-py").is_dir()
    if data.startswith("cifar10") and not official:
        out.append(
            "CIFAR-10 read from JPEG re-encodings when given the ImageFolder layout: pixel "
            "values differ slightly from the official batches (same images and classes)."
        )
    if cfg.name == "synthetic" or data.startswith("synthetic"):
        out.append(
            "Synthetic task templates: "
            + (
                "MNIST digits (test split)."
                if cfg.templates
                else "digits rendered from the DejaVu Sans font (built in), not the paper's "
                "MNIST digits."
            )
        )
    if data.startswith("mnist"):
        out.append("MNIST: only the 10,000-image test split is available here.")
    return out


def _figure(name: str, summary: list[dict], conditions: list[str], path: Path, title: str) -> Path:
    if name == "antialias":
        from defstab.experiments.figures import bar_measures

        metrics = [
            f"{p}:{m}" for p in ("embed", "crop") for m in ("p_top1_change", "mac", "consistency")
        ]
        return bar_measures(summary, conditions, metrics, path, title)
    if name == "pooling":
        has_trained = any(r["phase"] == "trained" for r in summary)
        panels = [("at initialisation", "init", "sensitivity", None)]
        if has_trained:
            panels.append(("after training", "trained", "sensitivity", None))
        return layer_curves(summary, panels, conditions, path, title)
    if name == "smooth-init":
        return layer_curves(
            summary,
            [("at initialisation (darker = smoother)", "init", "sensitivity", None)],
            conditions,
            path,
            title,
            colors=shades(len(conditions)),
        )
    if name == "synthetic":
        return layer_curves(
            summary,
            [
                ("filter smoothness after training", "trained", "smoothness", None),
                ("sensitivity after training", "trained", "sensitivity", None),
            ],
            conditions,
            path,
            title,
            colors=shades(len(conditions), "magma_r"),
        )
    if name == "smoothness":
        return layer_curves(
            summary,
            [
                ("at initialisation", "init", "smoothness", None),
                ("after training", "trained", "smoothness", None),
            ],
            conditions,
            path,
            title,
        )
    real = lambda c: c.endswith("real labels")  # noqa: E731
    rand = lambda c: c.endswith("random labels")  # noqa: E731
    return layer_curves(
        summary,
        [
            ("trained on real labels", "trained", "sensitivity", real),
            ("trained on random labels", "trained", "sensitivity", rand),
            ("smoothness, random labels", "trained", "smoothness", rand),
        ],
        conditions,
        path,
        title,
        label=lambda c: c.split("|")[0],
    )


def run_experiment(cfg: ExperimentConfig, quiet: bool = False) -> dict:
    """Execute every run of ``cfg`` (finished runs are loaded, not rerun) and write
    ``OUT/<name>/``: results.csv (tidy), summary.csv (mean ± 2 std), a figure, and
    experiment.json (settings, versions, caveats, findings)."""
    if cfg.name not in PLANS:
        raise ValueError(f"unknown experiment {cfg.name!r}; choose from {sorted(PLANS)}.")
    settings = cfg.settings()
    plan = PLANS[cfg.name](cfg)
    out = Path(cfg.out)
    folder = out / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    cache = DataCache()
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
    title = TITLES[cfg.name] + (" — quick preset" if cfg.preset == "quick" else "")
    figure = _figure(cfg.name, summary, conditions, folder / f"{cfg.name}.png", title)
    found = findings_mod.FINDINGS[cfg.name](summary, conditions)
    meta = {
        "experiment": cfg.name,
        "title": TITLES[cfg.name],
        "preset": cfg.preset,
        "settings": settings,
        "data": cfg.data,
        "templates": cfg.templates,
        "seeds": list(range(settings["seeds"])),
        "conditions": conditions,
        "caveats": caveats(cfg, settings),
        "findings": found,
        "figure": figure.name,
        "runs": [
            {
                "key": s.key,
                "folder": str(s.folder(out).relative_to(out)),
                **{k: r[k] for k in ("test_acc", "train_acc") if k in r},
            }
            for s, r in zip(plan, results, strict=True)
        ],
        "paper_preset_cost": PAPER_COST,
        "versions": versions(),
    }
    write_json(folder / "experiment.json", meta)
    return meta
