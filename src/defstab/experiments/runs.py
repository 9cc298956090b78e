"""One unit of work of an experiment: build a model, measure it at init, train it,
measure it again. Finished runs are skipped, interrupted ones resume.

A run lives in ``OUT/runs/<key>-<hash>``; the hash covers every setting, so experiments
that share a run (E1 and E4 train the same networks) share its folder, and a change of
setting never reuses a stale result. ``result.json`` is written atomically and last: its
presence means the run is finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from defstab.io.atomic import write_json

SENSITIVITY, NOISE, SMOOTHNESS = "sensitivity", "noise", "smoothness"


@dataclass
class RunSpec:
    """Everything one run depends on.

    Attributes:
        key: readable name, e.g. ``"maxpool/seed1"``.
        condition: the value compared in the figures (architecture, σ, C).
        seed: model init, data order, probe images and deformations.
        model: registry name; ``model_kwargs`` are passed to ``create_model``.
        data: DATA spec the probe images come from (and training data, if trained).
        train: TrainConfig as a dict, or None to measure at init only.
        measure: {"images", "grid", "max_disp"}.
        data_options: per_class, templates, train_images, random_labels, ...
    """

    key: str
    condition: str
    seed: int
    model: str
    model_kwargs: dict[str, Any]
    data: str
    measure: dict[str, Any]
    train: dict[str, Any] | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    translate: dict[str, Any] | None = None  # protocols run on the trained model

    #: Bumped when what a run records changes, so that stale results are not reused.
    VERSION = 2

    def digest(self) -> str:
        blob = json.dumps(
            {k: v for k, v in asdict(self).items() if k not in ("key", "condition")}
            | {"version": self.VERSION},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def folder(self, out: Path) -> Path:
        return Path(out) / "runs" / f"{self.key.replace('/', '_')}-{self.digest()}"


class DataCache:
    """Loads each data set once per process (runs of one experiment share it)."""

    def __init__(self):
        self._cache: dict[str, Any] = {}

    def splits(self, spec: RunSpec):
        """(train, test) for a run: seeded subsets, decoded once, random labels if asked."""
        from defstab.data.labels import with_random_labels

        opts = spec.data_options
        synthetic = spec.data.startswith("synthetic")
        key = json.dumps(
            [spec.data, opts, spec.seed if synthetic else 0], sort_keys=True, default=str
        )
        if key not in self._cache:
            self._cache[key] = self._load(spec, synthetic)
        train, test = self._cache[key]
        if opts.get("random_labels"):
            train = with_random_labels(train, spec.seed)
        return train, test

    @staticmethod
    def _load(spec: RunSpec, synthetic: bool):
        from defstab.data.sources import load_data
        from defstab.data.splits import train_test_splits

        opts = spec.data_options
        if opts.get("train_images") == 0 and not synthetic:
            # measurement-only experiments need no training data: skip reading it
            test = load_data(spec.data, "test", opts.get("image_size"))
            train = test.subset([])
        else:
            train, test = train_test_splits(
                spec.data,
                opts.get("image_size"),
                seed=spec.seed if synthetic else 0,
                templates=opts.get("templates"),
                per_class=opts.get("per_class", 500),
            )
        return _trim(train, opts.get("train_images")), _trim(test, opts.get("test_images"))


def _trim(ds, n: int | None):
    """A seeded subset of ``n`` images (all if None), decoded into memory once."""
    if hasattr(ds, "for_epoch"):
        return ds
    if n is not None and n < len(ds):
        ds = ds.subset(torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n])
    if ds.paths is not None:
        ds.pixels = (ds.images(range(len(ds))) * 255).round().to(torch.uint8) if len(ds) else None
        ds.paths = None
    return ds


def execute(spec: RunSpec, out: Path, cache: DataCache, quiet: bool = True) -> dict:
    """Run (or load) one run; returns the result dict with tidy ``rows``."""
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.deform import sample_displacements
    from defstab.measure import measure_sensitivity
    from defstab.metrics import filter_smoothness
    from defstab.models import create_model
    from defstab.train import TrainConfig, train

    folder = spec.folder(out)
    done = folder / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "spec.json", asdict(spec))
    train_data, test_data = cache.splits(spec)
    first = train_data.for_epoch(0) if hasattr(train_data, "for_epoch") else train_data
    kwargs = {"in_channels": first.channels, "num_classes": len(first.classes)} | spec.model_kwargs
    model = create_model(spec.model, seed=spec.seed, **kwargs)
    normalize = make_normalize(default_normalization("registry", spec.data), first.channels)
    g = torch.Generator().manual_seed(spec.seed)
    m = spec.measure
    idx = torch.randperm(len(test_data), generator=g)[: m["images"]]
    x = test_data.images(idx)
    disp = sample_displacements(len(idx), m["grid"], m["max_disp"], g)
    rows: list[dict] = []

    def measure(phase: str) -> None:
        res = measure_sensitivity(
            model,
            x,
            disp,
            preprocess=normalize,
            noise_control=True,
            generator=torch.Generator().manual_seed(spec.seed + 1),
        )
        for i, name in enumerate(res.layers):
            rows.append(_row(spec, phase, SENSITIVITY, i, name, float(res.mean[i])))
            rows.append(_row(spec, phase, NOISE, i, name, float(res.noise_mean[i])))
        # the paper's 3×3 conv layers; a strided network's learned 2×2 downsampling conv
        # has another expected TV (≈1.39 at init) and would blur the comparison
        for i, (name, v) in enumerate(filter_smoothness(model, min_kernel=3).items()):
            rows.append(_row(spec, phase, SMOOTHNESS, i, name, v))

    measure("init")
    result: dict[str, Any] = {"key": spec.key, "condition": spec.condition, "seed": spec.seed}
    if spec.train is not None:
        cfg = TrainConfig(**spec.train)
        trained = train(
            model,
            train_data,
            test_data,
            cfg,
            out=folder / "train",
            preprocess=normalize,
            quiet=quiet,
        )
        result["test_acc"] = trained.history[-1]["test_acc"]
        result["train_acc"] = trained.history[-1]["train_acc"]
        measure("trained")
    if spec.translate is not None:
        rows += _translation_rows(spec, model, x, test_data.labels[idx], normalize)
    result["rows"] = rows
    write_json(done, result)
    return result


def _row(spec: RunSpec, phase: str, metric: str, i: int, layer: str, value: float) -> dict:
    return {
        "condition": spec.condition,
        "seed": spec.seed,
        "phase": phase,
        "metric": metric,
        "layer_index": i,
        "layer": layer,
        "value": value,
    }


def _translation_rows(spec: RunSpec, model, images, labels, normalize) -> list[dict]:
    """Azulay & Weiss's measures of the (trained) model, one row per protocol and measure."""
    from defstab.translate import run_protocol

    t = spec.translate
    phase = "trained" if spec.train is not None else "init"
    rows = []
    for proto in t["protocols"]:
        res = run_protocol(
            model,
            images,
            labels,
            proto,
            t["steps"],
            normalize,
            canvas=images.shape[-1],
            object_size=t.get("object_size"),
            crop=images.shape[-1] - t["steps"],
        )
        for key, value in res.summary().items():
            if key in ("p_top1_change", "mac", "jaggedness", "consistency", "accuracy"):
                rows.append(_row(spec, phase, f"{proto}:{key}", 0, "output", float(value)))
    return rows
