"""The paper's experiments E1–E5 (SPEC §5) as lists of runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from defstab.experiments.presets import preset
from defstab.experiments.runs import RunSpec
from defstab.measure import RandomTPS

POOLING_TYPES = ["subsample", "maxpool", "avgpool", "strided", "strided_relu", "blurpool"]
PAPER_TYPES = POOLING_TYPES[:5]


@dataclass
class ExperimentConfig:
    """Settings of one experiment; ``None`` fields take the preset's value.

    Args:
        name: pooling, smooth-init, synthetic, smoothness or random-labels.
        out: the experiment folder (``OUT/<name>/``) and the shared ``OUT/runs/``.
        preset: "quick" or "paper".
        data: DATA for CIFAR-like experiments (``cifar10:PATH``; ``synthetic:C`` works
            too, as the demo does); synthetic uses ``templates`` instead.
        templates: ``mnist:PATH`` for E3 (default: built-in font digits).
        seeds: number of seeds (0 … seeds − 1).
        arch: downsampling type for smooth-init.
        overrides: any preset key (width, epochs, images, …).
    """

    name: str
    out: Path
    preset: str = "quick"
    data: str | None = None
    templates: str | None = None
    seeds: int | None = None
    arch: str = "maxpool"
    archs: list[str] | None = None
    overrides: dict = field(default_factory=dict)

    def settings(self) -> dict:
        s = preset(self.preset) | {k: v for k, v in self.overrides.items() if v is not None}
        if self.seeds is not None:
            if self.seeds < 1:
                raise ValueError(f"seeds must be positive, got {self.seeds}.")
            s["seeds"] = self.seeds
        return s


def _train_cfg(s: dict, seed: int, epochs: int, augment: bool) -> dict:
    return {
        "epochs": epochs,
        "batch_size": s["batch_size"],
        "lr": s["lr"],
        "seed": seed,
        "augment": augment,
        "probe_images": s["probe_images"],
        "test_images": s["test_images"],
        "checkpoints_per_octave": 1,
    }


def _measure(data: str, s: dict) -> dict:
    size = 28 if data.startswith(("synthetic", "mnist")) else 32
    d = RandomTPS.paper(size)
    return {"images": s["images"], "grid": d.grid, "max_disp": d.max_disp}


def _needs_data(cfg: ExperimentConfig) -> str:
    if not cfg.data:
        raise ValueError(f"experiment {cfg.name} needs --data (e.g. cifar10:PATH).")
    return cfg.data


def _augment(data: str) -> bool:
    return data.startswith("cifar10")


def pooling_runs(cfg: ExperimentConfig, train: bool = True) -> list[RunSpec]:
    """E1 (and E4): every downsampling type, at init and after training."""
    s, data = cfg.settings(), _needs_data(cfg)
    runs = []
    for kind in cfg.archs or POOLING_TYPES:
        for seed in range(s["seeds"]):
            runs.append(
                RunSpec(
                    key=f"pool-{kind}/seed{seed}",
                    condition=kind,
                    seed=seed,
                    model=f"vgg_cifar_{kind}",
                    model_kwargs={"width": s["width"]},
                    data=data,
                    measure=_measure(data, s),
                    train=_train_cfg(s, seed, s["epochs"], _augment(data))
                    if train and s["epochs"] > 0
                    else None,
                    data_options={
                        "train_images": s["train_images"],
                        "test_images": s["test_images"],
                        "per_class": s["per_class"],
                    },
                )
            )
    return runs


def smooth_init_runs(cfg: ExperimentConfig) -> list[RunSpec]:
    """E2: sensitivity at init for several σ of Gaussian filter smoothing."""
    s, data = cfg.settings(), _needs_data(cfg)
    return [
        RunSpec(
            key=f"smooth-{cfg.arch}-s{sigma:g}/seed{seed}",
            condition=f"σ={sigma:g}",
            seed=seed,
            model=f"vgg_cifar_{cfg.arch}",
            model_kwargs={"width": s["width"], "smooth_sigma": sigma},
            data=data,
            measure=_measure(data, s),
            data_options={
                "test_images": s["test_images"],
                "train_images": 0,
                "per_class": s["per_class"],
            },
        )
        for sigma in s["sigmas"]
        for seed in range(s["seeds"])
    ]


def synthetic_runs(cfg: ExperimentConfig) -> list[RunSpec]:
    """E3: train on synthetic deformation tasks of strength C, then smoothness."""
    s = cfg.settings()
    runs = []
    for c in s["strengths"]:
        data = f"synthetic:{c:g}"
        for seed in range(s["seeds"]):
            runs.append(
                RunSpec(
                    key=f"synth-C{c:g}/seed{seed}",
                    condition=f"C={c:g}",
                    seed=seed,
                    model="vgg_cifar_maxpool",
                    model_kwargs={"width": s["width"]},
                    data=data,
                    measure=_measure(data, s),
                    train=_train_cfg(s, seed, s["synthetic_epochs"], False),
                    data_options={"per_class": s["per_class"], "templates": cfg.templates},
                )
            )
    return runs


def random_label_runs(cfg: ExperimentConfig) -> list[RunSpec]:
    """E5: each architecture trained on real and on fixed random labels."""
    s, data = cfg.settings(), _needs_data(cfg)
    runs = []
    for kind in cfg.archs or PAPER_TYPES:
        for labels in ("real labels", "random labels"):
            for seed in range(s["seeds"]):
                runs.append(
                    RunSpec(
                        key=f"rl-{kind}-{labels.split()[0]}/seed{seed}",
                        condition=f"{kind}|{labels}",
                        seed=seed,
                        model=f"vgg_cifar_{kind}",
                        model_kwargs={"width": s["width"]},
                        data=data,
                        measure=_measure(data, s),
                        # no augmentation: memorising random labels is the point
                        train=_train_cfg(s, seed, s["random_label_epochs"], False),
                        data_options={
                            "train_images": s["random_label_images"],
                            "test_images": s["test_images"],
                            "per_class": s["per_class"],
                            "random_labels": labels == "random labels",
                        },
                    )
                )
    return runs


def antialias_runs(cfg: ExperimentConfig) -> list[RunSpec]:
    """Networks that differ only in their downsampling layer (maxpool, strided, blurpool),
    trained, then measured under one-pixel translations (Azulay & Weiss; Zhang 2019)."""
    runs = pooling_runs(
        ExperimentConfig(
            **{**cfg.__dict__, "archs": cfg.archs or ["maxpool", "strided", "blurpool"]}
        )
    )
    s = cfg.settings()
    size = 28 if (cfg.data or "").startswith(("synthetic", "mnist")) else 32
    for run in runs:
        run.key = run.key.replace("pool-", "aa-")
        run.translate = {
            "protocols": ["embed", "crop"],
            "steps": s.get("shift_steps", 4),
            "object_size": size * 3 // 4,
        }
    return runs


PLANS = {
    "pooling": pooling_runs,
    "smooth-init": smooth_init_runs,
    "synthetic": synthetic_runs,
    "smoothness": pooling_runs,  # the same trained networks, another view
    "random-labels": random_label_runs,
    "antialias": antialias_runs,
}
