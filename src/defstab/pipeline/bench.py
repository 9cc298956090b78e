"""``defstab bench`` end to end: each model's stability card — every protocol of the card
on the same images, in one process — and the models compared on those images.

Each (model, protocol) is a *unit*: the protocol's own runner (the function behind its
command, so its numbers are that command's) writes its complete result folder under
``OUT/units/<model>/<protocol>/`` (replayable with ``defstab rerun``), and the card's
entries of it go to ``OUT/units/<model>/<protocol>.card.json``. Units are resume files:
a bench run again with the same request finds the finished ones and runs only the
others (``resume=False`` runs all again). ``bench.json``, the tables, the figures and the
report's section are written last, staged and swapped in whole.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from defstab.pipeline.outcome import Metric, Outcome, final_path
from defstab.requests.bench import CARD, BenchRequest, card_images, card_requests, parse_protocols
from defstab.requests.model import DataOptions, ModelOptions

UNITS = "units"


@dataclass
class BenchOutcome(Outcome):
    """``cards``: {model label: its card entries (see :mod:`defstab.pipeline.bench_card`)};
    ``units``: {label: {protocol: what ran (request, seconds, folder, normalisation)}};
    ``comparisons``: one row per pair of models and metric; ``leaderboard``: the models
    sorted by ``rank_by``."""

    request: BenchRequest
    cards: dict
    units: dict
    models: dict
    comparisons: list
    leaderboard: list
    rank_by: str
    data: dict
    images: int
    seconds: float
    out: Path | None = None
    written: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """card.csv's rows: one per model and metric (without the per-image values)."""
        return [{"model": label} | {k: v for k, v in e.items() if k not in ("images", "values")}
                | {"n_images": len(e["images"]) if e["images"] is not None else None}
                for label, card in self.cards.items() for e in card]  # fmt: skip

    @property
    def metrics(self) -> list[Metric]:
        """Every card entry of every model as a :class:`Metric` (``name``: its key, with
        the model's label before it when more than one model was benched)."""
        several = len(self.cards) > 1
        return [Metric((f"{label}/" if several else "") + e["key"], e["value"], e["unit"],
                       e["direction"], e["layer"])
                for label, card in self.cards.items() for e in card]  # fmt: skip

    def summary_lines(self) -> list[str]:
        from defstab.pipeline.bench_card import accuracy_words, headline

        lines = []
        for label, card in self.cards.items():
            lines.append(f"{label} ({self.models[label]['weights']}; {accuracy_words(card)}):")
            for e in headline(card):
                arrow = "↓" if e["direction"] == "lower" else "↑"
                lines.append(f"  {e['key']:48s} {e['value']:10.4g} {arrow} {e['unit']}")
        if self.comparisons:
            lines.append(
                f"paired differences at the headline metrics (A − B, 95% bootstrap "
                f"interval over images, {used_resamples(self.comparisons)} resamples; Holm "
                "over each pair's metrics; every layer in comparison.csv). They are about "
                "these networks' weights on these images; whether an architecture is more "
                "stable needs networks trained from several seeds (defstab experiment):"
            )
            shown = {e["key"] for card in self.cards.values() for e in headline(card)}
            for r in self.comparisons:
                if r["ci_low"] is None or r["key"] not in shown:
                    continue
                lines.append(
                    f"  {r['a']} − {r['b']}  {r['key']:40s} {r['effect']:+.4f} "
                    f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  {r['verdict']}"
                )
        if len(self.leaderboard) > 1:
            order = ", ".join(f"{r['rank']}. {r['model']} ({r['value']:.4g})"
                              for r in self.leaderboard)  # fmt: skip
            lines.append(f"leaderboard by {self.rank_by}: {order}")
        lines.append(f"{len(self.cards)} model(s), {self.images} images, {self.seconds:.1f} s")
        if self.out is not None:
            lines.append(f"wrote {self.out}/: {', '.join(self.written)}")
        return lines


def used_resamples(comparisons: list[dict]) -> str:
    """The resamples the pairs used, in words ("15600", or "4000–15600")."""
    used = sorted({r["resamples"] for r in comparisons if r["resamples"] is not None})
    return "–".join(str(n) for n in (used[:1] + used[-1:] if len(used) > 1 else used)) or "no"


def model_list(names, shared: ModelOptions | None) -> list[tuple[str, ModelOptions]]:
    """(label, options) per MODEL: a folder is a ``defstab train`` run, anything else a
    model name; the shared options (width, padding, …) apply to each, and a MODEL's own
    options follow it after ``@`` (``vgg_cifar_maxpool@width=0.25,padding=circular``).
    Labels are unique (a model named twice gets ``-2``)."""
    shared = shared or ModelOptions()
    if shared.model is not None or shared.run is not None:
        raise ValueError("bench takes its models as MODEL arguments; drop --model/--run.")
    found, seen = [], {}
    for spec in names:
        name, own = _own_options(spec)
        if Path(name).is_dir():
            options = dataclasses.replace(shared, run=name, **own)
            label = Path(name).resolve().name
        else:
            options = dataclasses.replace(shared, model=name, **own)
            path, _, factory = name.rpartition(":")
            label = (f"{Path(path).stem}_{factory}" if path.endswith(".py") else
                     name.replace("/", "_").replace(":", "_"))  # fmt: skip
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}-{seen[label]}"
        found.append((label, options))
    return found


def _own_options(spec: str) -> tuple[str, dict]:
    """``"name@width=0.25,padding=circular"`` → ("name", {"width": 0.25, …}); the keys are
    the model options' names (as in a --config file); one sentence for another key."""
    from defstab.requests.fields import options_of, value_type

    name, at, tail = spec.rpartition("@")
    if not at or "=" not in tail:
        return spec, {}
    fields = {f.name: f for f, _ in options_of(ModelOptions) if f.name not in ("model", "run")}
    own = {}
    for item in tail.split(","):
        key, _, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in fields:
            from defstab.errors import unknown_name_message

            raise ValueError(f"{spec}: {unknown_name_message('model option', key, list(fields))}")
        kind = value_type(ModelOptions, fields[key])
        try:
            own[key] = (
                (text.strip().lower() in ("1", "true", "yes"))
                if kind is bool
                else kind(text.strip())
            )
        except ValueError:
            raise ValueError(f"{spec}: {key} takes a {kind.__name__}, got {text!r}.") from None
    return name, own


def check_request(request: BenchRequest) -> tuple[tuple[str, ...], dict]:
    """Every check that needs no model and no data; one sentence for the first that fails.
    Returns (the card's protocols, the stated δ per metric)."""
    from defstab.pipeline.bench_compare import parse_deltas

    protocols = parse_protocols(request.protocols)
    deltas = parse_deltas(request.delta)
    if not request.models:
        raise ValueError("give one or more MODELs to bench (see defstab bench --list).")
    if request.images is not None and request.images < 2:
        raise ValueError(f"--images must be at least 2, got {request.images}.")
    for key in ([request.rank_by] if request.rank_by else []) + list(deltas):
        if key.split(":")[0] not in protocols:
            raise ValueError(
                f"{key!r} is not a metric of the card's protocols ({', '.join(protocols)}); "
                "metric keys look like tps:sensitivity@LAYER (see card.csv)."
            )
    return protocols, deltas


def run_bench(request: BenchRequest, *, model: ModelOptions | None = None, data=None,
              out=None, device="auto", progress: bool = True, resume: bool = True,
              shards: int = 1, executor=None, warn=None, given=None,
              record=None) -> BenchOutcome:  # fmt: skip
    """Bench ``request.models`` (with the shared model options ``model``) on ``data``; the
    result folder ``out`` (None: nothing written, nothing resumed). ``shards``,
    ``executor``: the tps and diffeo measurements split over shards (in their units'
    folders) and run as ``defstab measure --shards`` runs them. Returns a
    :class:`BenchOutcome`."""
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.folders import in_result_folder
    from defstab.pipeline.models import data_options
    from defstab.pipeline.outcome import default_warn

    warn = warn or default_warn
    shared = model or ModelOptions()
    check_options("bench", request, shared, data_options(data) if data is not None else None,
                  given)  # fmt: skip
    protocols, deltas = check_request(request)
    models = model_list(request.models, shared)
    needs_data = any(CARD[p].needs_data for p in protocols)
    if needs_data:
        if data is None or not data_options(data).data:
            raise ValueError("give the data (--data, or data= in Python).")
        data = data_options(data)
    elif data is not None:
        data = data_options(data)
    from defstab.data.sources import shared_data

    how = dict(device=device, progress=progress, resume=resume, warn=warn, record=record,
               shards=shards, executor=executor)  # fmt: skip
    with shared_data():  # each data set read and decoded once, for every protocol and model
        return in_result_folder(
            "bench", out,
            lambda folder, final: _bench(request, protocols, deltas, models, data, folder,
                                         final, how),
            keep=(UNITS,),
        )  # fmt: skip


def _data_shape(data: DataOptions) -> tuple[int, int]:
    """(images in the split, their side in px) without reading the whole split."""
    import torch

    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec

    source = load_data(DataSpec.parse(data.data), data.split, image_size=data.image_size)
    side = data.image_size or source.image_size
    if side is None:
        side = int(source.images(torch.zeros(1, dtype=torch.long)).shape[-1])
    return len(source), int(side)


def _bench(request, protocols, deltas, models, data, folder, final, how) -> BenchOutcome:
    from defstab.pipeline.bench_compare import compare_pair, default_rank_key, leaderboard
    from defstab.progress import progress

    start = time.perf_counter()
    available, side = _data_shape(data) if data is not None else (None, 32)
    n = card_images(request.budget, request.images, available)
    if available is not None and n > available:
        raise ValueError(f"--images {n} is more than the {available} images of the data.")
    requests = card_requests(request.budget, n, request.seed, side, protocols)
    for req in requests.values():  # the shared read workers, where a request has them
        if hasattr(req, "read_workers"):
            req.read_workers = request.read_workers
    work = [(label, options, name) for label, options in models for name in protocols]
    cards = {label: [] for label, _ in models}
    units = {label: {} for label, _ in models}
    settings = {}
    bar = progress(work, desc="bench", unit="protocol") if how["progress"] else work
    for label, options, name in bar:
        unit = _unit(label, options, name, requests[name], data, final, how)
        cards[label] += unit.pop("entries")
        settings.setdefault(label, unit.pop("model_settings"))
        units[label][name] = unit
    comparisons = []
    labels = list(cards)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            comparisons += compare_pair(a, cards[a], b, cards[b], request.resamples,
                                        request.seed, deltas)  # fmt: skip
    rank_by = request.rank_by or default_rank_key(cards[labels[0]])
    board = leaderboard(cards, rank_by)
    identity = {}
    if data is not None:
        from defstab.data.spec import DataSpec
        from defstab.pipeline.measure_outputs import data_identity

        identity = data_identity(DataSpec.parse(data.data)) | {"split": data.split}
    outcome = BenchOutcome(
        request=request, cards=cards, units=units, models=settings, comparisons=comparisons,
        leaderboard=board, rank_by=rank_by, data=identity, images=n,
        seconds=time.perf_counter() - start, out=final_path(final),
    )  # fmt: skip
    if folder is not None:
        from defstab.pipeline.bench_outputs import write_bench

        extra = ["--shards", str(how["shards"])] if how["shards"] > 1 else []
        write_bench(outcome, Path(folder), requests, models, data, how["record"], extra)
    return outcome


def _unit(label, options, name, request, data, final, how) -> dict:
    """One protocol of one model's card: found in ``final/units`` (resume) or run."""
    from defstab.io.atomic import strict_json, write_json
    from defstab.pipeline.bench_card import card_entries
    from defstab.requests.registry import PROTOCOLS

    sharded = CARD[name].protocol == "deformation-sensitivity" and how["shards"] > 1
    key = strict_json(
        {
            "request": dataclasses.asdict(request),
            "model": dataclasses.asdict(options),
            "data": dataclasses.asdict(data) if CARD[name].needs_data else None,
            "shards": how["shards"] if sharded else 1,  # the sampled normalizer then
        }
    )
    card_file = (Path(final) / UNITS / label / f"{name}.card.json") if final else None
    if card_file is not None and how["resume"] and card_file.is_file():
        import json

        try:
            saved = json.loads(card_file.read_text(encoding="utf-8"))
        except ValueError:
            saved = {}
        if saved.get("key") == key:
            return saved["unit"]
    runner = PROTOCOLS[CARD[name].protocol].run_function()
    kwargs = {"model": options, "out": card_file.parent / name if card_file else None,
              "warn": lambda message: how["warn"](f"{label}, {name}: {message}")}  # fmt: skip
    if CARD[name].needs_data:
        kwargs |= {"data": data, "device": how["device"], "progress": False}
    if sharded:
        kwargs |= {"shards": how["shards"], "executor": how["executor"], "resume": how["resume"]}
    started = time.perf_counter()
    try:
        outcome = runner(request, **kwargs)
    except ValueError as e:
        raise ValueError(f"{label}, {name}: {e}") from None
    entries = card_entries(name, outcome)
    bad = [e["key"] for e in entries if not math.isfinite(e["value"])]
    if bad:
        raise ValueError(
            f"{label}, {name}: {bad[0]} is not a number (the model's outputs hold NaN or "
            "inf); nothing of the bench was written for it."
        )
    normalization = getattr(outcome, "normalization", None)
    if normalization is None and hasattr(outcome, "normalizations"):
        normalization = outcome.normalizations.get("model")
    model_settings = getattr(outcome, "model_settings", None) or outcome.settings["model"]
    unit = {
        "protocol": name,
        "registry": CARD[name].protocol,
        "request": dataclasses.asdict(request),
        "seconds": time.perf_counter() - started,
        "folder": f"{UNITS}/{label}/{name}" if card_file is not None else None,
        "normalization": normalization.name if normalization is not None else None,
        "model_settings": strict_json({k: v for k, v in model_settings.items()
                                       if isinstance(v, str | int | float | bool | None)}),
        "entries": entries,
    }  # fmt: skip
    if card_file is not None:
        write_json(card_file, {"key": key, "unit": unit})
    return unit
