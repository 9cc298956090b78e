"""Training settings, with defaults per data set."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from defstab.train.precision import check_precision, resolve_precision


@dataclass
class TrainConfig:
    """Everything a training run depends on (written to ``config.json``).

    Defaults are for CIFAR-10; see :func:`default_config` for the others.
    """

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" over all steps, or "step" (×0.1 at 50% and 75%)
    seed: int = 0
    augment: bool = True  # random crop (zero padding augment_shift) + horizontal flip
    augment_shift: int = 4  # the crop draws shifts in −augment_shift … +augment_shift px
    label_smoothing: float = 0.0
    checkpoints_per_octave: int = 1  # log-spaced checkpoints: steps 0, 1, 2, 4, 8, ...
    probe_images: int = 64  # fixed test images for sensitivity at every checkpoint
    probe_grid: int | None = None  # default: the paper's k for the image size
    probe_max_disp: float | None = None
    test_images: int | None = None  # evaluate on a subset of the test set (None = all)
    device: str = "auto"
    # "fp32", or "bf16" autocast (a recorded setting, part of a network's key); "auto" is
    # resolved to one of them before a run starts (see defstab.train.precision)
    precision: str = "fp32"
    # stop at the end of the first epoch whose training-set accuracy (eval mode, the same
    # images and labels) reaches this; ``epochs`` is then the cap (the lr schedule spans it)
    target_train_acc: float | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_train_acc is not None and not 0 < self.target_train_acc <= 1:
            raise ValueError(
                "the target training accuracy (target_train_acc, --target-train-acc) must be "
                f"in (0, 1], got {self.target_train_acc!r}."
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be positive and finite, got {self.lr}.")
        if self.schedule not in ("cosine", "step"):
            raise ValueError(f"schedule must be 'cosine' or 'step', got {self.schedule!r}.")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("weight_decay must be ≥ 0 and momentum in [0, 1).")
        if isinstance(self.augment_shift, bool) or not (
            isinstance(self.augment_shift, int) and self.augment_shift >= 0
        ):
            raise ValueError(
                f"augment_shift must be an integer ≥ 0 (pixels), got {self.augment_shift!r}."
            )
        check_precision(self.precision)
        if self.checkpoints_per_octave < 1 or self.probe_images < 2:
            raise ValueError("checkpoints_per_octave must be ≥ 1 and probe_images ≥ 2.")

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self, device) -> tuple[TrainConfig, str | None]:
        """This config with ``precision`` resolved for ``device`` (``auto`` → what is
        used), and the fallback note of ``auto``, if any. Raises ValueError for bf16 on a
        device without it."""
        precision, note = resolve_precision(self.precision, device)
        return replace(self, precision=precision), note


def default_config(data_kind: str, **overrides) -> TrainConfig:
    """Sensible defaults: CIFAR-10 (crop+flip, 30 epochs), MNIST and synthetic tasks (no
    augmentation: flipped digits change class, 10 epochs), image folders (90 epochs, step)."""
    base = {
        "cifar10": {},
        "mnist": {"epochs": 10, "augment": False},
        "synthetic": {"epochs": 10, "augment": False},
        "folder": {
            "epochs": 90,
            "lr": 0.1,
            "schedule": "step",
            "weight_decay": 1e-4,
            "batch_size": 256,
        },
    }.get(data_kind, {"augment": False})
    return TrainConfig(**(base | {k: v for k, v in overrides.items() if v is not None}))


def checkpoint_steps(total: int, per_octave: int, steps_per_epoch: int) -> list[int]:
    """0, log-spaced steps (``per_octave`` per doubling), every epoch's end, and ``total``."""
    steps = {0, total}
    k = 0
    while True:
        s = round(2 ** (k / per_octave))
        if s >= total:
            break
        steps.add(s)
        k += 1
    steps.update(range(steps_per_epoch, total + 1, steps_per_epoch))
    return sorted(steps)
