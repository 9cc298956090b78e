"""The outcome of a measurement and its result folder: tables, figures, ``config.json``
and the report's ``section.json``; the summary a person reads (the command line prints
it, Python returns it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defstab.pipeline.outcome import HIGHER, LOWER, Metric, Outcome


@dataclass
class ShardOutcome:
    """One shard's file (``measure --shard I/N``): its path and its images [start, stop)."""

    path: Path
    positions: tuple[int, int]

    def summary_lines(self) -> list[str]:
        return [f"wrote {self.path} (images {self.positions[0]}–{self.positions[1] - 1})"]


@dataclass
class MeasureOutcome(Outcome):
    """A measurement's numbers and what produced them.

    ``result``: the :class:`~defstab.measure.sensitivity.SensitivityResult` (per layer,
    per image); ``lie`` and ``flip`` when asked for; ``request``: the
    :class:`~defstab.requests.measure.MeasureRequest` that reproduces it (with the model
    and data of ``model_settings`` and ``data``); ``normalization``: what the images were
    normalised with, and why; ``out``: the result folder (None: nothing written).
    """

    request: Any
    result: Any
    model_settings: dict
    data: Any
    data_spec: Any
    data_name: str
    indices: Any
    labels: Any
    image_size: int
    normalization: Any
    device: str
    lie: Any = None
    flip: Any = None
    worst_case: Any = None
    drawn_for: dict = field(default_factory=dict)
    out: Path | None = None
    written: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """sensitivity.csv's rows: one per layer (with the lie_* columns when computed)."""
        rows = self.result.to_rows()
        if self.lie is not None:
            columns = self.lie.layer_columns()
            for row in rows:
                row.update(columns[row["layer"]])
        return rows

    @property
    def metrics(self) -> list[Metric]:
        """The headline numbers at the last measured layer (and end to end), each with its
        unit and which way is more stable."""
        rows = self.rows()
        last = rows[-1]
        layer = last["layer"]
        found = [
            Metric(
                "sensitivity",
                last["mean"],
                "",
                LOWER,
                layer,
                "the mean normalized distance between the representations of an image "
                "and of its deformation",
            ),  # fmt: skip
        ]
        if "relative_stability" in last:
            found.append(Metric("relative_stability", last["relative_stability"], "", LOWER,
                                layer, "R_f: the deformation's distance over that of noise of "
                                "equal norm (< 1: more stable to the deformation)"))  # fmt: skip
        if "worst_mean" in last:
            found.append(Metric("worst_case_sensitivity", last["worst_mean"], "", LOWER, layer,
                                "the same for the worst deformation of the budget"))  # fmt: skip
        if self.flip is not None:
            s = self.flip.summary()
            found.append(Metric("min_flip_c_median", s["strength_median"], "px", HIGHER, None,
                                "the median smallest C whose worst case flips the top-1 "
                                "class"))  # fmt: skip
        if self.lie is not None:
            for row in self.lie.end_to_end_rows():
                found.append(Metric(f"lie_{row['transform']}_end_to_end",
                                    row["end_to_end_sq_mean"], "per unit²", LOWER, None,
                                    "‖L_X softmax‖² (Gruver et al. 2023)"))  # fmt: skip
        return found

    def summary_lines(self) -> list[str]:
        """The summary the command line prints: the normalizer, the per-layer table, the
        Lie derivative and the attacks' lines, and what was written."""
        from defstab.pipeline.models import weights_caveat

        result = self.result
        lines = []
        caveat = weights_caveat(self.model_settings)
        if caveat:
            lines.append(caveat)
        lines.append(f"normalisation: {self.normalization.describe()}")
        stats = result.normalizer_stats[0]
        if result.meta["normalizer"] == "sampled":
            lines.append(
                f"normalizer: sampled, the median over {stats.pairs} disjoint pairs of a seeded "
                "random order (95% interval per layer: normalizer_low/high in sensitivity.csv)"
            )
        else:
            lines.append(f"normalizer: exact, the median over all {stats.pairs} pairs")
        rows = result.to_rows()
        width = max(4, *(len(row["layer"]) for row in rows))  # aligned for any name length
        head = f"{'layer':>5s}  {'name':{width}s} {'stride':>6s} {'s²':>6s} {'sensitivity':>11s}"
        if result.worst_mean is not None:
            head += f" {'worst':>7s}"
        if result.noise_mean is not None:
            head += f" {'noise':>7s} {'R_f':>7s}"
        lines.append(head)
        for row in rows:
            s, copies = (
                "-" if row.get(k) is None else str(row[k]) for k in ("stride", "shifted_copies")
            )
            line = f"{row['layer_index']:5d}  {row['layer']:{width}s} {s:>6s} {copies:>6s}"
            line += f" {row['mean']:11.3f}"
            if "worst_mean" in row:
                line += f" {row['worst_mean']:7.3f}"
            if "noise_mean" in row:
                line += f" {row['noise_mean']:7.3f} {row['relative_stability']:7.3f}"
            lines.append(line)
        if result.noise_mean is not None:
            lines.append(
                "R_f: Petrini et al. 2021's relative stability (< 1: more stable to the "
                "deformation than to noise of equal norm); stride s: input pixels per feature "
                "pixel, s²: shifted copies full translation invariance needs there"
            )
        lines += self.flip_lines()
        if self.lie is not None:
            lines += lie_lines(self.lie)
        if self.out is not None:
            lines.append(f"wrote {self.out}/: {', '.join(self.written)}")
        return lines

    def flip_lines(self) -> list[str]:
        """The minimal flips in one line (said even by a quiet command line: it is the
        attack's answer)."""
        if self.flip is None:
            return []
        s = self.flip.summary()
        return [
            f"minimal flipping C: median {s['strength_median']:.3g} px (quartiles "
            f"{s['strength_q25']:.3g}–{s['strength_q75']:.3g}); {s['fraction_flipped']:.0%} "
            f"of {s['images']} predictions flip within C ≤ {s['max_disp']:g}"
        ]


def write_outputs(outcome: MeasureOutcome, out: Path, data, warn, record: dict) -> None:
    """Every file of the result folder ``out`` (the staging folder; ``outcome.out`` is
    the folder it becomes). ``record``: the request ``defstab rerun`` replays."""
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.replay import save_replay
    from defstab.io.tables import write_csv
    from defstab.pipeline.models import weights_caveat
    from defstab.pipeline.outcome import write_skipped
    from defstab.plotting.sensitivity import plot_sensitivity

    result, request, settings = outcome.result, outcome.request, outcome.model_settings
    written = ["sensitivity.csv", "per_image.csv", "deformations.pt"]
    if write_skipped(result.meta["skipped"], outcome.indices, out, result.n_images, warn,
                     outcome.out):  # fmt: skip
        written.append("skipped.csv")
    if outcome.flip is not None:
        flip = outcome.flip
        write_csv(out / "flip.csv", [
            {"image": int(outcome.indices[j]), "label": int(outcome.labels[j]),
             "predicted": int(flip.predicted[j]), "min_flip_c": float(flip.strength[j])}
            for j in range(len(flip.strength))
        ])  # fmt: skip
        from defstab.plotting.sensitivity import plot_robustness

        plot_robustness(flip, out / "robustness.png")
    lie = outcome.lie
    if lie is not None:
        from defstab.plotting.lie import plot_lie

        write_csv(out / "lie.csv", lie.end_to_end_rows())
        if lie.units:
            write_csv(out / "lie_layers.csv", lie.unit_rows())
        plot_lie(lie, out / "lie.png")
    write_csv(out / "sensitivity.csv", outcome.rows())
    per_image_table(result, outcome.indices, outcome.labels, out / "per_image.csv")
    record_of = outcome.drawn_for | {"deformation": result.meta["deformation"]}
    save_replay(out / "deformations.pt", result.deformation_params, record_of)
    if result.worst_params is not None:
        save_replay(out / "worst_deformations.pt", result.worst_params, record_of | {"worst": True})
        worst_case_figure(data, outcome.indices, result, out / "worst_case.png")
        written += ["worst_deformations.pt", "worst_case.png"]
    if outcome.flip is not None:
        written += ["flip.csv", "robustness.png"]
    if lie is not None:
        written += ["lie.csv"] + (["lie_layers.csv"] if lie.units else []) + ["lie.png"]
    d = result.meta["deformation"]
    what = describe_deformation(d)
    caveat = weights_caveat(settings)
    sampled = ", sampled normalizer" if result.meta["normalizer"] == "sampled" else ""
    title = (
        f"{settings['model']} on {outcome.data_name} (n = {result.n_images}, {what}"
        f"{sampled})" + (" — RANDOM WEIGHTS" if caveat else "")
    )
    plot_sensitivity(result, out / "sensitivity.png", title=title)
    written += ["sensitivity.png", "config.json", "section.json"]
    outcome.written = written
    write_json(
        out / "config.json",
        {
            "command": "measure",
            **settings,
            "data": outcome.data_spec.record(),
            "data_name": outcome.data_name,
            "split": outcome.data.split,
            "images": request.images,
            "image_size": outcome.image_size,
            "normalize": outcome.normalization.name,
            "normalize_rule": outcome.normalization.reason,
            "seed": request.seed,
            "device": outcome.device,
            "deformations_file": request.deformations,
            **result.meta,  # its "deformation" is the spec, recorded whole
            **({"min_flip": outcome.flip.summary()} if outcome.flip is not None else {}),
            **({"lie_derivative": lie.meta} if lie is not None else {}),
            "versions": versions(),
            "request": record,
        },
    )
    write_json(out / "section.json", section(outcome, what, caveat))


def section(outcome: MeasureOutcome, what: str, caveat: str | None) -> dict:
    """The report's section of a measurement (``section.json``)."""
    result, settings, worst_case = outcome.result, outcome.model_settings, outcome.worst_case
    d = result.meta["deformation"]
    text = [
        f"Weights: {settings['weights']}. {result.n_images} images, deformation {what}, "
        f"{outcome.request.distance} distance normalized per layer by the median over "
        + (
            "all pairs of undeformed images. "
            if result.meta["normalizer"] == "exact"
            else f"the {result.normalizer_stats[0].pairs} disjoint pairs of undeformed images "
            "of a seeded random order (sampled; its 95% interval per layer is in the table). "
        )
        + f"Images normalised with {outcome.normalization.describe()}. "
        + "The band is ± 2 standard errors of the mean over "
        f"the {result.n_images} images (std / √n), not a spread over seeds."
    ]
    if worst_case is not None:
        text.append(
            f"Worst case: projected gradient ascent, {worst_case.steps} steps, "
            f"{worst_case.restarts} restarts, within the same budget, maximising the "
            f"{worst_case.objective} at {result.meta['worst_case']['layer'] or 'the output'}."
        )
    if outcome.flip is not None:
        text.append(
            "Minimal flipping C: median {strength_median:.3g} px, quartiles "
            "{strength_q25:.3g}–{strength_q75:.3g} px; {fraction_flipped:.0%} of {images} "
            "predictions flip within C ≤ {max_disp:g} px (an attack: upper "
            "bounds).".format(**outcome.flip.summary())
        )
    if outcome.lie is not None:
        text.append(lie_text(outcome.lie))
    return {
        "section": "measure",
        "title": f"{measured_words(d, outcome.lie)}: {settings['model']} on {outcome.data_name}",
        "caveats": [caveat] if caveat else [],
        "text": text,
        "figures": ["sensitivity.png"]
        + (["worst_case.png"] if result.worst_params is not None else [])
        + (["robustness.png"] if outcome.flip is not None else [])
        + (["lie.png"] if outcome.lie is not None else []),
        "table_file": "sensitivity.csv",
    }


def lie_text(lie) -> str:
    parts = [
        f"{t}: ‖L_X softmax‖² {row['end_to_end_sq_mean']:.3g}, mean |L_X softmax| "
        f"{row['end_to_end_abs_mean']:.3g}"
        for t, row in zip(lie.transforms, lie.end_to_end_rows(), strict=True)
    ]
    return (
        f"Lie derivative (Gruver et al. 2023) on {lie.n_images} images, per unit of their "
        "parameter (translation: t = 1 is (side − 1)/2 px; rotation: radians; scale: factor "
        f"1 − t); {lie.meta['derivative']}. End to end — "
        + "; ".join(parts)
        + ". The lie_* columns of the table: ‖L_X r(x)‖ / ‖r(x)‖ per layer (0: equivariant) "
        "and each layer's contribution ‖J L_i‖² (the exact value their probe estimator "
        "estimates)."
    )


def lie_lines(lie) -> list[str]:
    lines = ["Lie derivative (Gruver et al. 2023): ‖L_X r(x)‖ / ‖r(x)‖ per layer"]
    columns = lie.layer_columns()
    width = max(5, *(len(name) for name in lie.layers))
    lines.append(f"{'layer':{width}s} " + " ".join(f"{t:>11s}" for t in lie.transforms))
    for name in lie.layers:
        values = " ".join(f"{columns[name][f'lie_{t}']:11.4g}" for t in lie.transforms)
        lines.append(f"{name:{width}s} {values}")
    for row in lie.end_to_end_rows():
        lines.append(
            f"end to end, {row['transform']}: ‖L_X softmax‖² {row['end_to_end_sq_mean']:.4g} "
            f"(the paper's), mean |L_X softmax| {row['end_to_end_abs_mean']:.4g} (their code)"
        )
    return lines


def measured_words(d: dict, lie=None) -> str:
    """What a measurement measured, for its report section's title: a TPS, a diffeo and a
    Lie-derivative run of the same model get different titles."""
    if d.get("kind") == "diffeo":
        what = f"Sensitivity to diffeomorphisms ({describe_deformation(d).removeprefix('diffeo ')})"
    elif d.get("max_disp") is not None:
        what = f"Sensitivity to TPS deformations ({describe_deformation(d)})"
    else:
        what = "Sensitivity to replayed deformations"
    if lie is not None:
        what += f" and the Lie derivative ({', '.join(lie.transforms)})"
    return what


def describe_deformation(d: dict) -> str:
    """A recorded deformation in a few words (figure titles, the report)."""
    if d.get("kind") == "diffeo":
        delta = d.get("typical_displacement_px")
        return f"diffeo T = {d['temperature']:.3g}, c = {d['cut']}" + (
            f", δ = {delta:.2f} px" if delta is not None else ""
        )
    return (
        f"k = {d['grid']}, C = {d['max_disp']:g}" if d.get("max_disp") is not None else "replayed"
    )


def minimal_flips(request, model, images, normalize, deformation):
    """``min_flip``: the bisection over C per image (its table and curve are written with
    the folder)."""
    import torch

    from defstab.measure.worst_case import minimal_flip_strength

    if not hasattr(deformation, "grid") or not isinstance(deformation.grid, int):
        raise ValueError("--min-flip searches over C itself; drop --deformations.")
    top = request.flip_max if request.flip_max is not None else 2 * deformation.max_disp
    if not top > 0:
        raise ValueError(f"--flip-max must be positive, got {top}.")
    return minimal_flip_strength(
        model,
        images,
        deformation.grid,
        max_disp=top,
        steps=request.attack_steps,
        restarts=request.attack_restarts,
        preprocess=normalize,
        generator=torch.Generator().manual_seed(request.seed + 1),
        padding=deformation.padding,
    )


def per_image_table(result, indices, labels, path) -> None:
    """per_image.csv, one row per (layer, image), streamed: at 50,000 images and 15
    layers it is 750,000 rows, never held as Python objects. Unreadable images (NaN)
    have no rows; skipped.csv names them."""
    from defstab.io.tables import write_csv_rows

    columns = ["layer_index", "layer", "image", "label", "value"]
    values = [result.per_image]
    for name, extra in (("noise_value", result.noise_per_image),
                        ("worst_value", result.worst_per_image)):  # fmt: skip
        if extra is not None:
            columns.append(name)
            values.append(extra)
    measured = (~result.per_image[0].isnan()).nonzero().squeeze(1).tolist()
    image, label = indices.tolist(), labels.tolist()
    table = [v.tolist() for v in values]

    def rows():
        for i, name in enumerate(result.layers):
            for j in measured:
                yield (i, name, image[j], label[j], *(t[i][j] for t in table))

    write_csv_rows(path, columns, rows())


def worst_case_figure(data, indices, result, path, count: int = 3) -> None:
    """The images whose worst case moved the attacked layer most beyond the random one:
    random and worst-case deformation side by side (the paper's Fig. 2 layout)."""
    import torch

    from defstab.deform import apply_tps, get_tps
    from defstab.plotting.deformation import deformation_figure

    layer = result.layers.index(result.meta["worst_case"]["layer"] or result.layers[-1])
    gain = (result.worst_per_image[layer] - result.per_image[layer]).nan_to_num(-math.inf)
    pick = gain.argsort(descending=True)[:count]
    spec = result.meta["worst_case"]
    x = data.images(indices[pick])
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    both = torch.cat([result.deformation_params[pick], result.worst_params[pick]])
    twice = torch.cat([x, x])
    deformed = apply_tps(twice, both, spec["grid"], spec["padding"])
    names = [f"image {int(i)} random" for i in pick] + [f"image {int(i)} worst" for i in pick]
    tps = get_tps(tuple(x.shape[-2:]), spec["grid"])
    order = [j for i in range(len(pick)) for j in (i, i + len(pick))]
    deformation_figure(
        twice[order], both[order], deformed[order], tps, path, names=[names[j] for j in order]
    )


def read_deformations(path: str):
    """The :class:`~defstab.io.replay.Replay` of an earlier measure: displacements
    (N, k·k, 2), fields (N, H, W, 2) or diffeo coefficients (N, 2, c, c), and the record
    of the images they belong to."""
    from defstab.io.replay import read_replay

    replay = read_replay(path, "--deformations")
    t = replay.params
    saved = (replay.record or {}).get("deformation") or {}
    if saved.get("kind") == "diffeo":  # (N, 2, c, c) sine coefficients, checked on use
        return replay
    if t.ndim not in (3, 4) or t.shape[-1] != 2:
        raise ValueError(
            f"--deformations {path} must hold displacements (N, k·k, 2) or fields "
            "(N, H, W, 2), as measure writes to deformations.pt."
        )
    return replay


def data_identity(spec) -> dict:
    """The data as a replay file records it: its kind and where it is (resolved, so that
    a relative and an absolute path to the same folder agree)."""
    where = str(Path(spec.path).resolve()) if spec.path is not None else spec.text
    return {"kind": spec.kind, "source": where}


def warn_if_resized(data, size, warn) -> None:
    """Say so when file images are scaled by more than 2× to reach the model's size."""
    if data.paths is None or not size:
        return
    from PIL import Image

    for path in data.paths[:20]:  # the first readable one: an unreadable file is skipped later
        try:
            with Image.open(path) as im:
                width, height = im.size
            break
        except OSError:
            continue
    else:
        return
    short = min(width, height)
    if size > 2 * short or short > 2 * size:
        warn(
            f"images of {width}×{height} px are resized ×{size / short:.2g} to "
            f"{size} px; pass --image-size to choose the size."
        )
