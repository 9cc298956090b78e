"""Filter smoothness (Ruderman et al. 2018's normalized total variation) end to end: the
function behind ``defstab smoothness`` and :func:`defstab.run` with a
:class:`~defstab.requests.smoothness.SmoothnessRequest`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from defstab.pipeline.outcome import LOWER, Metric, Outcome, final_path
from defstab.requests.smoothness import SmoothnessRequest


@dataclass
class SmoothnessOutcome(Outcome):
    """``values``: {conv layer: normalized TV} in forward order; ``expected``: the
    analytic value at initialisation and the init's name, where known."""

    request: SmoothnessRequest
    values: dict[str, float]
    model_settings: dict
    expected: tuple[float, str] | None
    out: Path | None = None
    written: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        weights = self.model_settings["weights"]
        return [{"layer": k, "smoothness": v, "weights": weights} for k, v in self.values.items()]

    @property
    def metrics(self) -> list[Metric]:
        """Per conv layer: its normalized TV (0 = spatially constant; smoother filters go
        with more stable representations in Ruderman et al.)."""
        return [Metric("normalized_tv", v, "", LOWER, k, "normalized total variation")
                for k, v in self.values.items()]  # fmt: skip

    def summary_lines(self) -> list[str]:
        from defstab.pipeline.models import weights_caveat

        caveat = weights_caveat(self.model_settings)
        lines = [caveat] if caveat else []
        width = max([len("layer"), *map(len, self.values)])  # aligned for any name length
        lines.append(f"{'layer':{width}s} {'smoothness':>10s}")
        lines += [f"{k:{width}s} {v:10.4f}" for k, v in self.values.items()]
        if self.expected:
            lines.append(f"expected at {self.expected[1]} (3×3 filters): {self.expected[0]:.3f}")
        if self.out is not None:
            lines.append(f"wrote {self.out}/smoothness.csv, smoothness.png")
        return lines


def run_smoothness(request: SmoothnessRequest, *, model, data=None, out=None, warn=None,
                   given=None, record=None):  # fmt: skip
    """The normalized TV of every conv layer of ``model`` (options, a name or a module;
    no data needed). Returns a :class:`SmoothnessOutcome`."""
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.folders import in_result_folder

    if data is not None:
        raise ValueError("smoothness reads the model's filters only; give no data.")
    check_options("smoothness", request, model, None, given)
    return in_result_folder("smoothness", out, lambda folder, final: _smoothness(
        request, model, folder, final, record))  # fmt: skip


def _smoothness(request, model, out, final, record):
    from defstab.metrics import filter_smoothness
    from defstab.pipeline.models import resolve_model

    net, settings = resolve_model(model, in_channels=request.in_channels)
    values = filter_smoothness(net)
    if not values:
        raise ValueError(f"{settings['model']} has no conv layer with 2-D filters to measure.")
    outcome = SmoothnessOutcome(request, values, settings, expected_at_init(settings),
                                final_path(final))  # fmt: skip
    if out is not None:
        from defstab.pipeline.folders import request_record

        _write(outcome, Path(out), request_record("smoothness", request, model, None, [], record))
    return outcome


def _write(outcome: SmoothnessOutcome, out: Path, record: dict) -> None:
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.pipeline.models import weights_caveat
    from defstab.plotting.sensitivity import plot_smoothness

    settings, expected = outcome.model_settings, outcome.expected
    caveat = weights_caveat(settings)
    write_csv(out / "smoothness.csv", outcome.rows())
    title = f"{settings['model']}: filter smoothness" + (" — RANDOM WEIGHTS" if caveat else "")
    plot_smoothness(outcome.values, out / "smoothness.png", title=title,
                    reference=expected and expected[0])  # fmt: skip
    write_json(out / "config.json", {"command": "smoothness", **settings, "versions": versions(),
                                     "request": record})  # fmt: skip
    write_json(
        out / "section.json",
        {
            "section": "smoothness",
            "title": f"Filter smoothness: {settings['model']}",
            "caveats": [caveat] if caveat else [],
            "text": [
                f"Weights: {settings['weights']}. Normalized total variation per conv layer "
                "(0 = spatially constant)."
                + (f" Expected at {expected[1]}: {expected[0]:.3f}." if expected else "")
            ],
            "figures": ["smoothness.png"],
            "table_file": "smoothness.csv",
        },
    )
    outcome.written = ["smoothness.csv", "smoothness.png", "config.json", "section.json"]


def expected_at_init(settings: dict) -> tuple[float, str] | None:
    """The analytic TV of random 3×3 filters, where the init is known: registry models
    with random weights and no smoothing (they use the paper's init). Other models
    (torchvision, timm, files, objects) initialise in their own ways: none is claimed."""
    from defstab.metrics.smoothness import EXPECTED_AT_INIT
    from defstab.models.loading import model_family
    from defstab.pipeline.models import RANDOM_WEIGHTS

    kwargs = settings.get("model_kwargs") or {}
    if (
        settings.get("weights") != RANDOM_WEIGHTS
        or settings.get("family") is not None
        or model_family(str(settings["model"])) != "registry"
        or kwargs.get("smooth_sigma")
    ):
        return None
    return EXPECTED_AT_INIT[kwargs.get("init", "paper")]
