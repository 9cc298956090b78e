"""One table of option ranges, checked for every command before it runs.

An option means the same thing in every command that has it (``--width``, ``--images``,
``--seed``, …), so its range lives here once: the same value is refused the same way,
in one sentence, wherever it is given. Commands keep only the checks that depend on their
own situation (``measure`` needs two images for its median; ``translate`` steps must fit
the canvas). Importing this module imports nothing heavy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """Allowed values: ``low`` ≤ v (or < v when ``low_open``), v ≤ ``high`` (or < v when
    ``high_open``); always a finite number."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value) -> bool:
        try:
            v = float(value)
        except OverflowError:  # an integer beyond any float
            return False
        if not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            if self.low_open:
                parts.append("positive" if self.low == 0 else f"greater than {self.low:g}")
            else:
                parts.append(f"at least {self.low:g}")
        if self.high is not None:
            parts.append(f"below {self.high:g}" if self.high_open else f"at most {self.high:g}")
        return " and ".join(parts) or "a finite number"


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, low_open=True)

#: option dest → its range, for every command that has the option.
RANGES: dict[str, Range] = {
    # models
    "resamples": Range(100),  # bench: the bootstrap's resamples
    "width": POSITIVE,
    "num_classes": AT_LEAST_1,
    "in_channels": AT_LEAST_1,
    "init_seed": AT_LEAST_0,
    "step": AT_LEAST_0,
    "image_size": Range(8),
    # data and sampling
    "images": AT_LEAST_1,
    "seed": AT_LEAST_0,
    "seeds": AT_LEAST_1,
    "per_class": AT_LEAST_1,
    "train_images": AT_LEAST_1,
    "test_images": AT_LEAST_1,
    "batch_size": AT_LEAST_1,
    "bins": AT_LEAST_1,
    # deformations and attacks
    "grid": Range(2),
    "max_disp": AT_LEAST_0,
    "size": AT_LEAST_0,  # deform: 0 keeps the images' own size
    "attack_steps": AT_LEAST_1,
    "attack_restarts": AT_LEAST_0,
    "flip_max": POSITIVE,
    "ram_budget": AT_LEAST_0,
    # translations
    "steps": AT_LEAST_1,
    "worst_shift": AT_LEAST_1,
    "crop_size": Range(2),
    "source_size": Range(2),
    "window": AT_LEAST_1,
    "pairs_per_batch": AT_LEAST_1,
    "fraction": AT_LEAST_1,
    "difficulty": Range(1, 3),
    "baseline_width": POSITIVE,
    "temperature": POSITIVE,
    "displacement": POSITIVE,
    "cut": AT_LEAST_1,
    "lie_images": AT_LEAST_1,
    "robust_radius": Range(2),
    "robust_up": Range(2),
    # training
    "epochs": AT_LEAST_1,
    "lr": POSITIVE,
    "momentum": Range(0, 1, high_open=True),
    "weight_decay": AT_LEAST_0,
    "smooth_sigma": AT_LEAST_0,
    "augment_shift": AT_LEAST_0,
    "target_train_acc": Range(0, 1, low_open=True),
    # scaling out
    "workers": AT_LEAST_1,
    "read_workers": AT_LEAST_0,
    "shards": AT_LEAST_1,
    "cpus_per_run": AT_LEAST_1,
    "gpus_per_run": AT_LEAST_0,
    "processes_per_run": AT_LEAST_0,
    "slurm_time": AT_LEAST_1,
    "connect_timeout": POSITIVE,
}

#: Seeds beyond this do not fit torch's 64-bit seed.
MAX_SEED = 2**63 - 1


def check_option_ranges(args) -> None:
    """Refuse, in one sentence, the first option of ``args`` outside its range."""
    for dest, allowed in RANGES.items():
        value = getattr(args, dest, None)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        option = "--" + dest.replace("_", "-")
        if not allowed.holds(value):
            raise ValueError(f"{option} must be {allowed.describe()}, got {value}.")
        if dest.endswith("seed") and value > MAX_SEED:
            raise ValueError(f"{option} must be at most {MAX_SEED}, got {value}.")
