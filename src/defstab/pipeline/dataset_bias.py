"""Data-set bias end to end: the function behind ``defstab dataset-bias`` and
:func:`defstab.run` with a :class:`~defstab.requests.dataset_bias.DatasetBiasRequest`
(boxes only: no model, no images)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defstab.pipeline.outcome import Metric, Outcome, final_path
from defstab.requests.dataset_bias import DatasetBiasRequest

#: statistics printed (all of them go to summary.csv)
SHOWN = [
    ("boxes", "boxes"),
    ("images", "images"),
    ("centre_x_mean", "centre x, mean"),
    ("centre_x_std", "centre x, std"),
    ("centre_y_mean", "centre y, mean"),
    ("centre_y_std", "centre y, std"),
    ("centre_distance_mean", "distance from the image centre, mean"),
    ("central_quarter_fraction", "centres in the central quarter"),
    ("size_median", "size (area fraction), median"),
    ("size_q10", "size, 10% quantile"),
    ("size_q90", "size, 90% quantile"),
]


@dataclass
class DatasetBiasOutcome(Outcome):
    """``stats``: {"data": {...}, "uniform placement": {...}} of :data:`SHOWN` and more;
    ``boxes``: the boxes read (zero-area ones skipped)."""

    request: DatasetBiasRequest
    stats: dict
    boxes: Any
    skipped: int
    out: Path | None = None
    written: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        data, uniform = self.stats["data"], self.stats["uniform placement"]
        return [{"statistic": k, "data": data[k], "uniform": uniform[k]} for k in data]

    @property
    def metrics(self) -> list[Metric]:
        """Centredness of the data beside uniform placement (no stability direction: the
        bias is a property of the data)."""
        data, uniform = self.stats["data"], self.stats["uniform placement"]
        return [
            Metric("central_quarter_fraction", data["central_quarter_fraction"],
                   "fraction of boxes", "none", None,
                   f"uniform placement: {uniform['central_quarter_fraction']:.3f}"),
            Metric("centre_distance_mean", data["centre_distance_mean"], "image side", "none",
                   None, f"uniform placement: {uniform['centre_distance_mean']:.3f}"),
        ]  # fmt: skip

    def summary_lines(self) -> list[str]:
        width = max(len(label) for _, label in SHOWN)
        lines = [f"{'':{width}s} {'data':>10s} {'uniform':>10s}"]
        for key, label in SHOWN:
            a, b = self.stats["data"][key], self.stats["uniform placement"][key]
            fmt = "10d" if key in ("boxes", "images") else "10.3f"
            lines.append(f"{label:{width}s} {a:{fmt}} {b:{fmt}}")
        if self.out is not None:
            lines.append(f"wrote {self.out}/summary.csv, boxes.csv, dataset_bias.png")
        return lines


def run_dataset_bias(request: DatasetBiasRequest, *, model=None, data=None, out=None,
                     progress: bool = True, warn=None, given=None, record=None):  # fmt: skip
    """The box statistics of ``request.data`` (or ``data``, a box source as ``--data``).
    Returns a :class:`DatasetBiasOutcome` (``progress``: unused, the boxes read at once)."""
    from dataclasses import replace

    from defstab.pipeline.checks import check_options
    from defstab.pipeline.folders import in_result_folder
    from defstab.pipeline.outcome import default_warn

    warn = warn or default_warn
    if model is not None:
        raise ValueError("dataset-bias reads boxes only; give no model.")
    if data is not None:
        request = replace(request, data=str(data))
    if not request.data:
        raise ValueError("give the boxes (--data voc:DIR, ilsvrc:DIR or coco:FILE.json).")
    check_options("dataset-bias", request, None, None, given)
    if not 2 <= request.bins <= 1000:
        raise ValueError(f"--bins must lie in 2…1000, got {request.bins}.")
    return in_result_folder("dataset-bias", out, lambda folder, final: _bias(
        request, folder, final, warn, record))  # fmt: skip


def _bias(request, out, final, warn, record):
    from defstab.data.boxes import degenerate, read_boxes, statistics, subset, uniform_placement

    boxes = read_boxes(request.data)
    empty = degenerate(boxes)
    if empty.all():
        raise ValueError(f"every box in {request.data} has zero area inside its image.")
    if empty.any():
        warn(f"{int(empty.sum())} of {len(boxes)} boxes have zero area inside their image; "
             "skipped.")  # fmt: skip
        boxes = subset(boxes, ~empty)
    uniform = uniform_placement(boxes, request.seed)
    stats = {"data": statistics(boxes), "uniform placement": statistics(uniform)}
    outcome = DatasetBiasOutcome(request, stats, boxes, int(empty.sum()),
                                 final_path(final))  # fmt: skip
    if out is not None:
        from defstab.pipeline.folders import request_record

        _write(
            outcome,
            uniform,
            Path(out),
            request_record("dataset-bias", request, None, None, [], record, needs_model=False),
        )
    return outcome


def _write(outcome: DatasetBiasOutcome, uniform, out: Path, record: dict) -> None:
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.plotting.dataset_bias import bias_figure

    request, boxes, stats = outcome.request, outcome.boxes, outcome.stats
    write_csv(out / "boxes.csv", boxes.rows())
    write_csv(out / "summary.csv", outcome.rows())
    title = f"Object position and size: {boxes.source} ({len(boxes)} boxes)"
    bias_figure(boxes, uniform, out / "dataset_bias.png", title, bins=request.bins)
    note = (
        "Centres as fractions of the image width/height; size = box area / image area. "
        "'Uniform placement': every box kept at its size in its image, its position drawn "
        f"uniformly among those inside the image (seed {request.seed}) — the same sizes, no "
        "photographer's bias. Uniform points would put 1/4 of the centres in the central "
        "quarter (the centred square of half the side); boxes that must stay inside the image "
        "cannot centre near its edges, so the uniform column, not 1/4, is the contrast."
    )
    write_json(
        out / "config.json",
        {"command": "dataset-bias", "data": request.data, "boxes": len(boxes),
         "skipped_zero_area": outcome.skipped, "bins": request.bins, "seed": request.seed,
         "versions": versions(), "request": record},
    )  # fmt: skip
    write_json(
        out / "section.json",
        {
            "section": "dataset-bias",
            "title": f"Data set bias: {boxes.source}",
            "caveats": [],
            "text": [note],
            "figures": ["dataset_bias.png"],
            "table": [
                {
                    "statistic": label,
                    "data": round(stats["data"][k], 4),
                    "uniform": round(stats["uniform placement"][k], 4),
                }
                for k, label in SHOWN
            ],  # fmt: skip
        },
    )
    outcome.written = ["summary.csv", "boxes.csv", "dataset_bias.png", "config.json",
                       "section.json"]  # fmt: skip
