"""The result folder of ``defstab bench``: ``bench.json`` (in the versioned schema shipped
as ``defstab/schemas/bench.schema.json``), ``card.csv``, ``comparison.csv``,
``leaderboard.csv``, a card figure per model, the joint figure, ``config.json`` and the
report's ``section.json``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

SCHEMA_VERSION = "1.0"
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "bench.schema.json"


#: the multiplicity family of a pair, in words
FAMILY = ("per pair of models, every metric of the card with per-image values (Holm's "
          "step-down at one-sided 2.5% for each direction)")  # fmt: skip


def bench_record(outcome, requests: dict, models) -> dict:
    """bench.json's content (schema :data:`SCHEMA`, version :data:`SCHEMA_VERSION`)."""
    from defstab.io.provenance import versions
    from defstab.pipeline.bench_card import accuracy_of
    from defstab.pipeline.bench_compare import parse_deltas
    from defstab.requests.bench import CARD
    from defstab.requests.registry import PROTOCOLS

    request = outcome.request
    options = dict(models)
    return {
        "schema_version": SCHEMA_VERSION,
        "command": "bench",
        "versions": versions(),
        "data": outcome.data,
        "budget": request.budget,
        "seed": request.seed,
        "images": outcome.images,
        "protocols": [
            {
                "name": name,
                "registry": CARD[name].protocol,
                "paper": PROTOCOLS[CARD[name].protocol].paper,
                "request": dataclasses.asdict(req),
            }
            for name, req in requests.items()
        ],  # fmt: skip
        "models": [
            {
                "label": label,
                "options": dataclasses.asdict(options[label]),
                "weights": str(outcome.models[label].get("weights", "")),
                "accuracy": accuracy_of(card),
                "units": outcome.units[label],
                "metrics": [r for r in outcome.rows() if r.pop("model") == label],
            }
            for label, card in outcome.cards.items()
        ],
        "comparisons": outcome.comparisons,
        "bootstrap": {
            "resamples": request.resamples,
            "resamples_rule": "each pair: at least resamples, and at least 10 m / alpha for "
            "its family of m metrics (a bootstrap p-value is never below 1 / (B + 1))",
            "seed": request.seed,
            "level": 0.95,
            "family": FAMILY,
            "alpha": 0.025,
        },  # fmt: skip
        "deltas": parse_deltas(request.delta),
        "rank_by": outcome.rank_by,
        "leaderboard": outcome.leaderboard,
        "preprocessing_differs": preprocessing_notes(outcome),
    }


def preprocessing_notes(outcome) -> list[str]:
    """One sentence per protocol whose models were normalised differently (they are
    compared on the same source images, each prepared as it expects)."""
    notes = []
    protocols = {name for units in outcome.units.values() for name in units}
    for name in sorted(protocols):
        chosen = {label: units[name]["normalization"] for label, units in outcome.units.items()
                  if name in units}  # fmt: skip
        if len(set(chosen.values())) > 1:
            said = ", ".join(f"{label}: {n}" for label, n in chosen.items())
            notes.append(
                f"{name}: the models' preprocessing differs ({said}); they are "
                "compared on the same source images, each normalised as it expects."
            )
    return notes


def write_bench(outcome, out: Path, requests: dict, models, data, record,
                extra: list[str]) -> None:  # fmt: skip
    """Every file of the bench folder ``out`` (the staging folder); ``extra``: the run
    settings a rerun repeats (``--shards N``)."""
    from defstab.io.atomic import write_json
    from defstab.io.tables import write_csv
    from defstab.pipeline.folders import request_record
    from defstab.plotting.bench import card_figure, comparison_figure
    from defstab.requests.model import ModelOptions

    written = []
    write_json(out / "bench.json", bench_record(outcome, requests, models))
    write_csv(out / "card.csv", outcome.rows())
    write_csv(out / "leaderboard.csv", outcome.leaderboard)
    written += ["bench.json", "card.csv", "leaderboard.csv"]
    if outcome.comparisons:
        write_csv(out / "comparison.csv", outcome.comparisons)
        written.append("comparison.csv")
    figures = []
    for label, card in outcome.cards.items():
        name = f"card_{label}.png"
        weights = outcome.models[label].get("weights", "")
        card_figure(label, card, out / name, f"{weights}; {outcome.images} images")
        figures.append(name)
    if len(outcome.cards) > 1:
        comparison_figure(outcome.cards, outcome.comparisons, out / "comparison.png")
        figures.append("comparison.png")
    shared = dataclasses.replace(models[0][1], model=None, run=None)
    argv_record = request_record("bench", outcome.request, ModelOptions() if shared ==
                                 ModelOptions() else shared, data, extra, record)  # fmt: skip
    from defstab.io.provenance import versions

    write_json(out / "config.json", {"command": "bench", "data": outcome.data,
                                     "budget": outcome.request.budget,
                                     "images": outcome.images, "seed": outcome.request.seed,
                                     "versions": versions(), "request": argv_record})  # fmt: skip
    write_json(out / "section.json", section(outcome, figures))
    outcome.written = written + figures + ["config.json", "section.json"]


def section(outcome, figures: list[str]) -> dict:
    """The report's stability-card section."""
    from defstab.pipeline.bench import used_resamples
    from defstab.pipeline.bench_card import accuracy_words

    request = outcome.request
    text = [
        f"{len(outcome.cards)} model(s) on the same {outcome.images} images of "
        f"{outcome.data.get('source', 'no data')} ({outcome.data.get('split', '')} split), "
        f"budget {request.budget}, seed {request.seed}; every protocol ran through its own "
        "command's pipeline (its folder under units/).",
    ]
    for label, card in outcome.cards.items():
        text.append(f"{label}: {outcome.models[label].get('weights', '')}; "
                    f"{accuracy_words(card)} (spatial's natural accuracy).")  # fmt: skip
    if outcome.comparisons:
        text.append(
            f"Paired differences A − B: mean over the images both measured, 95% percentile "
            f"bootstrap interval ({used_resamples(outcome.comparisons)} resamples — at "
            f"least --resamples {request.resamples} and 10 m / 2.5% for a family of m "
            f"metrics — seed {request.seed}); "
            f"verdicts after Holm: {FAMILY}. The verdicts are about these "
            "networks' weights on these images (an interval over images, not over training "
            "seeds): whether an architecture is more stable needs networks trained from "
            "several seeds (defstab experiment)."
        )
    text += preprocessing_notes(outcome)
    caveats = []
    from defstab.pipeline.models import weights_caveat

    for label, settings in outcome.models.items():
        caveat = weights_caveat(settings)
        if caveat:
            caveats.append(f"{label}: {caveat}")
    tables = [{"file": "leaderboard.csv", "title": f"leaderboard by {outcome.rank_by}"}]
    if outcome.comparisons:
        tables.append({"file": "comparison.csv", "title": "paired comparisons",
                       "columns": ["a", "b", "key", "effect", "ci_low", "ci_high", "p_holm",
                                   "verdict"]})  # fmt: skip
    tables.append(
        {
            "file": "card.csv",
            "title": "every metric of every card",
            "columns": ["model", "key", "value", "unit", "direction", "n_images"],
        }
    )
    return {
        "section": "bench",
        "title": "Stability card: " + ", ".join(outcome.cards),
        "caveats": caveats,
        "text": text,
        "figures": figures,
        "tables": tables,
    }
