"""A paper experiment end to end: the function behind ``defstab experiment`` and
:func:`defstab.run` with an :class:`~defstab.requests.experiment.ExperimentRequest`.
Its folder resumes: a finished run is never computed again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from defstab.pipeline.outcome import Metric, Outcome
from defstab.requests.experiment import ExperimentRequest


@dataclass
class ExperimentOutcome(Outcome):
    """``meta``: the experiment's ``experiment.json`` (its findings and verdicts), or —
    for an epochs sweep — the sweep's rows and folder (``sweep``)."""

    request: ExperimentRequest
    meta: dict | None
    sweep: dict | None
    out: Path

    def rows(self) -> list[dict]:
        return self.sweep["rows"] if self.sweep else list(self.meta["findings"])

    @property
    def metrics(self) -> list[Metric]:
        """Each finding's effect (its verdict's statistic over seeds), where it has one."""
        if self.meta is None:
            return []
        return [Metric(f["paper"], f["effect"], "", "none", None, f["verdict_words"])
                for f in self.meta["findings"]
                if isinstance(f.get("effect"), int | float)]  # fmt: skip

    def summary_lines(self) -> list[str]:
        if self.sweep is not None:
            return sweep_lines(self.sweep, self.request)
        meta = self.meta
        preset = " [quick preset]" if self.request.preset == "quick" else ""
        lines = [meta["title"] + preset]
        if meta["resumed_runs"]:
            lines.append(f"  ({meta['resumed_runs']} of {len(meta['runs'])} runs were already "
                         "finished)")  # fmt: skip
        lines += finding_lines(meta)
        folder = self.out / self.request.name
        lines.append(f"wrote {folder}/ (summary.csv, results.csv, {meta['figure']})")
        return lines


def run_experiment_request(request: ExperimentRequest, *, model=None, data=None, out,
                           executor=None, progress: bool = True, warn=None,
                           given=None):  # fmt: skip
    """Run (or resume) the experiment ``request`` names into ``out`` (the results folder
    every experiment shares); ``executor``: an
    :class:`~defstab.experiments.ExecutorConfig` (None: in this process). Returns an
    :class:`ExperimentOutcome`."""
    from dataclasses import replace

    from defstab.experiments import ExecutorConfig, ExperimentConfig, get_experiment
    from defstab.experiments import run_experiment as run_it
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.outcome import check_out_folder

    if model is not None:
        raise ValueError("an experiment trains its own networks; give no model.")
    if data is not None:
        request = replace(request, data=str(data))
    executor = executor or ExecutorConfig()
    check_options("experiment", request, None, None, given, executor=executor.kind,
                  workers=executor.workers)  # fmt: skip
    folder = check_out_folder(out)
    # the experiment's own check: the normalizer is a median over pairs of images
    if request.images is not None and request.images < 2:
        raise ValueError(f"--images must be at least 2, got {request.images}.")
    archs = request.arch_list()
    sweep = request.sweep()
    experiment = get_experiment(request.name)
    overrides = {
        "width": request.width,
        "epochs": request.epochs,
        "images": request.images,
        "train_images": request.train_images,
        "test_images": request.test_images,
        "per_class": request.per_class,
        "precision": request.precision,
    }
    if experiment.epochs_key != "epochs" and request.epochs is not None:
        overrides[experiment.epochs_key] = request.epochs
    cfg = ExperimentConfig(name=request.name, out=folder, preset=request.preset,
                           data=request.data, templates=request.templates, seeds=request.seeds,
                           arch=request.arch, overrides=overrides, archs=archs,
                           executor=executor)  # fmt: skip
    if archs:  # before any training: the chosen types must give a finding to state
        from defstab.experiments.feasibility import check_findings_possible

        check_findings_possible(experiment, cfg)
    if request.precision == "bf16" and executor.kind == "local":
        # the runs train here: say now, not once per failed run, when this machine lacks it
        from defstab.tap import pick_device
        from defstab.train.precision import resolve_precision

        resolve_precision("bf16", pick_device("auto"))
    if sweep:
        from defstab.experiments.sweep import run_sweep

        result = run_sweep(cfg, experiment.epochs_key, sweep, quiet=not progress,
                           label="epochs")  # fmt: skip
        return ExperimentOutcome(request, None, result | {"key": experiment.epochs_key}, folder)
    return ExperimentOutcome(request, run_it(cfg, quiet=not progress), None, folder)


def sweep_lines(result: dict, request: ExperimentRequest) -> list[str]:
    key = result["key"]

    def number(v):
        return "—" if v is None else f"{v:+.4f}"

    lines = [
        f"  {key}={r[key]:<5} [{r['verdict']}] effect {number(r['effect'])} "
        f"CI [{number(r['ci_lo'])}, {number(r['ci_hi'])}] over {r['n_seeds']} seeds "
        f"(δ = {r['delta']:g})  {r['finding']}"
        for r in result["rows"]
    ]
    return [*lines, f"wrote {result['folder']}/ (sweep.csv, sweep.png)"]


def finding_lines(meta: dict) -> list[str]:
    """The plan, then each finding: its verdict in words, the numbers, δ, the gate's effect
    and what would decide it."""
    from defstab.experiments.verdicts import finding_notes

    lines = []
    plan = meta.get("seed_plan")
    if plan:
        looks = ", ".join(str(n) for n in plan["looks"])
        lines.append(
            f"  seed plan ({plan['preset']}): looks at {looks} seeds ({plan['correction']}); "
            f"{len(meta['seeds'])} seeds run"
            + (" — beyond the plan: the exploratory verdicts are not the preset's" if
               meta.get("beyond_plan") else "")
        )  # fmt: skip
    if meta.get("findings_retired"):
        lines.append(f"  {meta['findings_retired']}")
    if meta["findings"]:
        m = meta["findings"][0]["multiplicity"]
        lines.append(f"  Holm over {m['holm_family_size']} finding(s) (family: "
                     f"{m['holm_family']})")  # fmt: skip
    for f in meta["findings"]:
        acc = "".join(
            f"; {label} {f[key]:.3f}"
            for key, label in (("test_accuracy", "test acc."), ("train_accuracy", "train acc."))
            if f.get(key) is not None
        )
        lines.append(f"  [{f['verdict_words']}] {f['paper']}\n      {f['observed']}{acc}")
        lines.append(f"      δ = {f['smallest_effect']['value']:g}: "
                     f"{f['smallest_effect']['reason']}")  # fmt: skip
        lines += [f"      {note}" for note in finding_notes(f)]
    return lines
