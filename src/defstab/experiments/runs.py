"""One unit of work of an experiment, keyed by what it computes.

* A **network** (:class:`NetworkSpec`: model, width, init, data, schedule, seed) is trained
  once into ``OUT/networks/<model>-seed<s>-<hash>/`` (checkpoints, history,
  ``network.json``); every experiment that needs the same network shares that folder —
  ``smoothness`` and ``antialias`` reuse E1's checkpoints.
* A **measurement** (:class:`RunSpec`: a network plus what is measured on it) lives in
  ``OUT/measurements/<key>-<hash>/result.json`` with its spec and provenance (package
  version, git revision when known, torch version) as they were when it was computed.

Both hashes include a spec version: a result from an older version lands in another
folder and is recomputed, never relabelled. ``network.json`` and ``result.json`` are
written atomically and last: their presence means the work is finished; an interrupted
training resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from defstab.data.spec import DataSpec
from defstab.io.atomic import write_json
from defstab.io.tables import read_csv

SENSITIVITY, NOISE, SMOOTHNESS = "sensitivity", "noise", "smoothness"
WORST = "worst"  # worst-case TPS deformation of the same budget (measure["worst_case"])
SOLVED_TRAIN_ACC = 0.99
NETWORKS, MEASUREMENTS = "networks", "measurements"


def _digest(fields: dict) -> str:
    """A run's key: the hash of its settings as standard JSON (the same text as before for
    finite numbers; a NaN or infinite setting would name no reproducible run)."""
    try:
        blob = json.dumps(fields, sort_keys=True, default=str, allow_nan=False)
    except ValueError:
        raise ValueError(f"a run setting is NaN or infinite: {fields}.") from None
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class NetworkSpec:
    """What a trained checkpoint depends on, and nothing else.

    Attributes:
        model: registry name; ``model_kwargs`` (width, smooth_sigma, …) go to
            ``create_model``, initialised from ``seed``.
        data: the DATA string of the training and test images.
        data_options: per_class, templates, train_images, test_images, random_labels,
            random_images (training pixels shuffled, see ``with_shuffled_pixels``).
        train: TrainConfig as a dict, or None for a network measured at init only.
    """

    model: str
    model_kwargs: dict[str, Any]
    seed: int
    data: str
    data_options: dict[str, Any]
    train: dict[str, Any] | None

    #: Bumped when what training produces changes (2: channels-last training, the
    #: precision recorded in ``train``).
    VERSION = 2

    def digest(self) -> str:
        return _digest(asdict(self) | {"version": self.VERSION})

    def folder(self, out: Path) -> Path:
        return Path(out) / NETWORKS / f"{self.model}-seed{self.seed}-{self.digest()}"


@dataclass
class RunSpec:
    """One measured network: its :class:`NetworkSpec` fields plus what is measured.

    Attributes:
        key: readable name, e.g. ``"pool-maxpool/seed1"``.
        condition: the value compared in the figures (architecture, σ, C).
        seed: model init, data order, probe images and deformations.
        model, model_kwargs, data, data_options, train: see :class:`NetworkSpec`.
        measure: {"images": N, "deformation": DeformationSpec record}.
        translate: protocols run on the (trained) model, or None.
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
    translate: dict[str, Any] | None = None

    #: Bumped when what a measurement records changes (3: networks stored apart,
    #: noise drawn up front, deformation recorded whole; 4: the noise control is added
    #: in the network's input space, as Petrini et al. do).
    VERSION = 4

    def network(self) -> NetworkSpec:
        return NetworkSpec(
            self.model, self.model_kwargs, self.seed, self.data, self.data_options, self.train
        )

    def digest(self) -> str:
        return _digest(
            {
                "network": self.network().digest(),
                "measure": self.measure,
                "translate": self.translate,
                "version": self.VERSION,
            }
        )

    def folder(self, out: Path) -> Path:
        return Path(out) / MEASUREMENTS / f"{self.key.replace('/', '_')}-{self.digest()}"


class DataCache:
    """Loads each data set once per process (runs of one experiment share it)."""

    def __init__(self):
        self._cache: dict[str, Any] = {}

    def splits(self, spec: RunSpec | NetworkSpec):
        """(train, test) for a run: seeded subsets, decoded once, random labels if asked."""
        from defstab.data.labels import with_random_labels, with_shuffled_pixels

        opts = spec.data_options
        data = DataSpec.parse(spec.data)
        synthetic = data.kind == "synthetic"
        key = json.dumps(
            [data.text, opts, spec.seed if synthetic else 0],
            sort_keys=True,
            default=str,
            allow_nan=False,
        )
        if key not in self._cache:
            self._cache[key] = self._load(data, opts, spec.seed if synthetic else 0)
        train, test = self._cache[key]
        if opts.get("random_labels"):
            train = with_random_labels(train, spec.seed)
        if opts.get("random_images"):
            train = with_shuffled_pixels(train, spec.seed)
        return train, test

    @staticmethod
    def _load(data: DataSpec, opts: dict, seed: int):
        from defstab.data.sources import load_data
        from defstab.data.splits import train_test_splits

        if opts.get("train_images") == 0 and data.kind != "synthetic":
            # measurement-only experiments need no training data: skip reading it
            test = load_data(data, "test", opts.get("image_size"))
            train = test.subset([])
        else:
            train, test = train_test_splits(
                data,
                opts.get("image_size"),
                seed=seed,
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


def provenance() -> dict[str, str]:
    """What computed a result: defstab, torch, git revision when known."""
    from defstab.io.provenance import versions

    v = versions()
    return {k: v[k] for k in ("defstab", "torch", "git_revision") if k in v}


def _read_finished(path: Path, version: int) -> dict | None:
    """A finished record of the current spec version, or None (to recompute)."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("spec_version") == version else None


def is_finished(spec: RunSpec, out: Path) -> bool:
    """Whether ``spec``'s measurement is done (by the current spec version)."""
    return _read_finished(spec.folder(out) / "result.json", spec.VERSION) is not None


def build_network(spec: NetworkSpec | RunSpec, first):
    """The untrained model of ``spec`` (initialised from its seed) and its input
    normalisation, for training images like ``first``."""
    from defstab.data.normalize import make_normalize
    from defstab.models import create_model

    kwargs = {"in_channels": first.channels, "num_classes": len(first.classes)} | spec.model_kwargs
    model = create_model(spec.model, seed=spec.seed, **kwargs)
    return model, make_normalize(DataSpec.parse(spec.data).normalization, first.channels)


def train_in_process_group(record: dict, out: str) -> None:
    """One of several processes training one network (started by :func:`trained_network`
    through torch's elastic launcher, which sets RANK/WORLD_SIZE as torchrun does, so
    :func:`defstab.train.train` trains with DistributedDataParallel)."""
    import torch.distributed as dist

    from defstab.train import TrainConfig, train

    spec = NetworkSpec(**record)
    train_data, test_data = DataCache().splits(spec)
    first = train_data.for_epoch(0) if hasattr(train_data, "for_epoch") else train_data
    model, normalize = build_network(spec, first)  # Normalize follows its input's device
    config = TrainConfig(**spec.train)
    train(model, train_data, test_data, config, out=spec.folder(Path(out)), preprocess=normalize,
          quiet=True)  # fmt: skip
    if dist.is_initialized():
        dist.destroy_process_group()


def _train_distributed(spec: NetworkSpec, out: Path, processes: int) -> tuple[int, float]:
    """Train ``spec``'s network with ``processes`` DDP processes on this machine (one GPU
    each on GPUs, gloo on CPU); returns (steps, seconds)."""
    import uuid

    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=f"defstab-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # a free port, as torchrun --standalone
        max_restarts=0,
        monitor_interval=0.5,
    )
    t0 = time.perf_counter()
    elastic_launch(config, train_in_process_group)(asdict(spec), str(out))
    summary = json.loads((spec.folder(out) / "train_summary.json").read_text())
    return int(summary["steps"]), time.perf_counter() - t0


#: what a network trained to a target accuracy records (train_fit: eval-mode accuracy on
#: its training set at the last epoch end)
TARGET_FIELDS = ("target_train_acc", "reached_target", "epochs_trained", "epoch_cap", "train_fit")


HISTORY_FIELDS = ("train_acc", "test_acc", "train_fit")


def trained_network(
    spec: NetworkSpec, out: Path, cache: DataCache, model, normalize, first, processes: int = 1
):
    """Train ``model`` for ``spec`` (resuming), or load the finished checkpoint; with
    ``processes`` > 1, the training runs in that many DDP processes.

    Returns:
        (model with trained weights, network record).
    """
    from defstab.io.checkpoint import load_checkpoint
    from defstab.train import TrainConfig, train
    from defstab.train.engine import last_checkpoint

    folder = spec.folder(out)
    record = _read_finished(folder / "network.json", spec.VERSION)
    if record is not None:
        load_checkpoint(model, folder / record["checkpoint"])
        model.eval()
        return model, record
    if processes > 1:
        steps, seconds = _train_distributed(spec, out, processes)
        load_checkpoint(model, last_checkpoint(folder))
        model.eval()
        history = [
            {
                k: float(v)
                for k, v in r.items()
                if k in ("step", "train_acc", "test_acc", "train_fit")
            }
            for r in read_csv(folder / "history.csv")
        ]
    else:
        train_data, test_data = cache.splits(spec)
        trained = train(
            model,
            train_data,
            test_data,
            TrainConfig(**spec.train),
            out=folder,
            preprocess=normalize,
            quiet=True,
        )
        model, history, steps, seconds = (
            trained.model,
            trained.history,
            trained.steps,
            trained.seconds,
        )
    solved = [int(r["step"]) for r in history if r["train_acc"] >= SOLVED_TRAIN_ACC]
    record = {
        "spec": asdict(spec),
        "spec_version": spec.VERSION,
        "checkpoint": str(last_checkpoint(folder).relative_to(folder)),
        "test_acc": history[-1]["test_acc"],
        "train_acc": history[-1]["train_acc"],
        "train_images": len(first),
        "steps": steps,
        # first checkpoint whose running train accuracy reached 99%: "solved" from there on
        "solved_step": solved[0] if solved else None,
        "train_seconds": seconds,
        "train_processes": processes,
        "provenance": provenance(),
    }
    if spec.train.get("target_train_acc") is not None:  # trained to a target, with a cap
        summary = json.loads((folder / "train_summary.json").read_text())
        fits = [r["train_fit"] for r in history if math.isfinite(r.get("train_fit", math.nan))]
        record |= {k: summary[k] for k in TARGET_FIELDS[:-1]}
        record["train_fit"] = fits[-1] if fits else None
    write_json(folder / "network.json", record)
    return model, record


def execute(
    spec: RunSpec, out: Path, cache: DataCache, quiet: bool = True, processes: int = 1
) -> dict:
    """Run (or load) one measurement; returns the result dict with tidy ``rows``.
    ``processes`` > 1 trains the network with that many DDP processes."""
    from defstab.deform import DeformationSpec
    from defstab.measure import measure_sensitivity
    from defstab.metrics import filter_smoothness

    folder = spec.folder(out)
    done = folder / "result.json"
    finished = _read_finished(done, spec.VERSION)
    if finished is not None:
        return finished
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    train_data, test_data = cache.splits(spec)
    first = train_data.for_epoch(0) if hasattr(train_data, "for_epoch") else train_data
    model, normalize = build_network(spec, first)
    g = torch.Generator().manual_seed(spec.seed)
    idx = torch.randperm(len(test_data), generator=g)[: spec.measure["images"]]
    x = test_data.images(idx)
    deformation = DeformationSpec.from_record(spec.measure["deformation"])
    disp = deformation.sample(len(idx), g)
    rows: list[dict] = []
    worst_case = None
    if spec.measure.get("worst_case"):
        from defstab.measure.worst_case import WorstCaseTPS

        worst_case = WorstCaseTPS.like(deformation, **spec.measure["worst_case"])

    def measure(phase: str) -> None:
        res = measure_sensitivity(
            model,
            x,
            disp,
            preprocess=normalize,
            noise_control=True,
            generator=torch.Generator().manual_seed(spec.seed + 1),
            worst_case=worst_case,
        )
        for i, name in enumerate(res.layers):
            rows.append(_row(spec, phase, SENSITIVITY, i, name, float(res.mean[i])))
            rows.append(_row(spec, phase, NOISE, i, name, float(res.noise_mean[i])))
            if res.worst_mean is not None:
                rows.append(_row(spec, phase, WORST, i, name, float(res.worst_mean[i])))
        # the paper's 3×3 conv layers; a strided network's learned 2×2 downsampling conv
        # has another expected TV (≈1.39 at init) and would blur the comparison
        for i, (name, v) in enumerate(filter_smoothness(model, min_kernel=3).items()):
            rows.append(_row(spec, phase, SMOOTHNESS, i, name, v))
        if spec.measure.get("compare"):
            rows.extend(_compare_rows(spec, phase, model, x, normalize, res.layers))

    measure("init")
    result: dict[str, Any] = {
        "key": spec.key,
        "condition": spec.condition,
        "seed": spec.seed,
        "spec": asdict(spec),
        "spec_version": spec.VERSION,
    }
    if spec.train is not None:
        network = spec.network()
        model, record = trained_network(network, out, cache, model, normalize, first, processes)
        result["network"] = str(network.folder(out).relative_to(out))
        result["test_acc"], result["train_acc"] = record["test_acc"], record["train_acc"]
        for k in ("steps", "solved_step", *TARGET_FIELDS):
            if k in record:
                result[k] = record[k]
        measure("trained")
    if spec.translate is not None:
        rows += _translation_rows(spec, model, x, test_data.labels[idx], normalize)
    result["provenance"] = provenance()
    result["seconds"] = time.perf_counter() - t0  # this computation, training included
    result["rows"] = rows
    write_json(done, result)
    return result


def _compare_rows(spec: RunSpec, phase: str, model, images, normalize, layers) -> list[dict]:
    """The same layers under Petrini's diffeomorphisms (``diffeo``: normalized distance;
    ``diffeo_rf``: R_f) and the Lie derivative (``lie``: ‖L_X r‖ / ‖r‖, mean over the
    transforms; ``lie:<t>`` each; ``lie_e2e:<t>``: ‖L_X softmax‖² at the output), as
    ``measure["compare"]`` asks: {"diffeo": spec record, "lie": transforms, "lie_images"}."""
    from defstab.deform import DeformationSpec
    from defstab.measure import measure_sensitivity
    from defstab.measure.lie import lie_derivatives

    c = spec.measure["compare"]
    rows = []
    res = measure_sensitivity(
        model,
        images,
        DeformationSpec.from_record(c["diffeo"]),
        layers=layers[1:],
        preprocess=normalize,
        generator=torch.Generator().manual_seed(spec.seed + 2),
    )
    for i, name in enumerate(res.layers):
        rows.append(_row(spec, phase, "diffeo", i, name, float(res.mean[i])))
        rows.append(_row(spec, phase, "diffeo_rf", i, name, float(res.relative_stability[i])))
    lie = lie_derivatives(
        model, images[: c["lie_images"]], c["lie"], layers[1:], preprocess=normalize,
        contributions=False,
    )  # fmt: skip
    relative = lie.relative.nanmean(dim=-1)  # (transforms, layers)
    for i, name in enumerate(lie.layers):
        rows.append(_row(spec, phase, "lie", i, name, float(relative[:, i].mean())))
        for k, t in enumerate(lie.transforms):
            rows.append(_row(spec, phase, f"lie:{t}", i, name, float(relative[k, i])))
    for k, t in enumerate(lie.transforms):
        rows.append(
            _row(spec, phase, f"lie_e2e:{t}", 0, "output", float(lie.end_to_end_sq[k].mean()))
        )
    return rows


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


#: what the experiments keep of a protocol's summary: consistency also over the images whose
#: first frame is right and over those it is wrong, beside that accuracy
TRANSLATION_MEASURES = (
    "p_top1_change", "mac", "jaggedness", "consistency", "accuracy",
    "consistency_correct", "consistency_incorrect", "first_frame_accuracy",
)  # fmt: skip


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
            if key in TRANSLATION_MEASURES:
                rows.append(_row(spec, phase, f"{proto}:{key}", 0, "output", float(value)))
    if t.get("pad_shift"):
        rows += _pad_shift_rows(spec, phase, model, images, labels, normalize, **t["pad_shift"])
    if t.get("layer_shifts"):
        rows += _layer_shift_rows(spec, phase, model, images, normalize, t["layer_shifts"])
    return rows


def _pad_shift_rows(
    spec: RunSpec, phase, model, images, labels, normalize, max_shift: int, train_range: int
) -> list[dict]:
    """The whole image moved −max_shift … +max_shift px (training augmentation's own
    translation): P(top-1 change) and MAC of every one-pixel step (``layer_index`` = step,
    ``layer`` = "dx→dx+1"), and their means over the steps inside / outside ±train_range."""
    from defstab.translate import measures, run_protocol

    res = run_protocol(
        model, images, labels, "pad-shift", max_shift, normalize, canvas=images.shape[-1]
    )
    steps = measures.per_step(res.steps)
    inside = measures.steps_within(res.geometry, train_range)
    dx = res.geometry[:, 0].tolist()
    rows = []
    for metric, values in steps.items():
        for i, v in enumerate(values.tolist()):
            rows.append(_row(spec, phase, f"pad:{metric}", i, f"{dx[i]}→{dx[i + 1]}", v))
        for where, mask in (("inside", inside), ("outside", ~inside)):
            if mask.any():
                value = float(values[mask].mean())
                rows.append(_row(spec, phase, f"pad-{where}:{metric}", 0, "output", value))
    return rows


def _layer_shift_rows(spec: RunSpec, phase, model, images, normalize, max_shift) -> list[dict]:
    """Per-layer invariance and equivariance to shifts of 1…max_shift px (crop protocol),
    averaged over the shifts (:func:`defstab.translate.layer_shift_analysis`)."""
    from defstab.translate import layer_shift_analysis

    found = layer_shift_analysis(
        model, images, images.shape[-1] - max_shift, max_shift, preprocess=normalize
    )
    by_layer: dict[str, list[dict]] = {}
    for r in found:
        by_layer.setdefault(r["layer"], []).append(r)
    rows = []
    for i, (name, rs) in enumerate(by_layer.items(), start=1):
        for what in ("invariance", "equivariance"):
            mean = sum(float(r[what]) for r in rs) / len(rs)
            rows.append(_row(spec, phase, f"layer:{what}", i, name, mean))
    return rows
