"""The request of a paper experiment (``defstab experiment NAME``): E1–E5 and the
experiments after them, each with its quick and paper presets, resumable in its folder."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.experiments.index import SUMMARIES  # the names, without the experiments
from defstab.requests.fields import option
from defstab.train.precision import PRECISIONS  # torch-free at import

PRESET = "override the preset"


@dataclass
class ExperimentRequest:
    """Which experiment, and what of its preset to override (every field is one of the
    options of ``defstab experiment``)."""

    name: str = option("pooling", positional=True, choices=tuple(SUMMARIES),
                       help="the experiment")  # fmt: skip
    preset: str = option("quick", choices=("quick", "paper"), help="quick or paper")
    data: str | None = option(help="cifar10:PATH for pooling, smoothness, random-labels, "
                              "smooth-init")  # fmt: skip
    templates: str | None = option(help="synthetic: mnist:PATH (default: font digits)")
    seeds: int | None = option(help="seeds 0…N−1 instead of the preset's plan (exploratory)")
    arch: str = option("maxpool", help="smooth-init: downsampling type")
    archs: str | None = option(
        metavar="A,B",
        help="downsampling types to compare (pooling, antialias, worst-case, augmentation; "
        "default: the preset's)",
    )
    width: float | None = option(help=PRESET)
    epochs: int | None = option(help=PRESET)
    images: int | None = option(help=PRESET)
    train_images: int | None = option(help=PRESET)
    test_images: int | None = option(help=PRESET)
    per_class: int | None = option(help=PRESET)
    precision: str | None = option(
        choices=PRECISIONS,
        help="training precision (default: the preset's; quick: auto = bf16 where the machine "
        "computes it, paper: fp32); part of each network's key",
    )
    epochs_sweep: str | None = option(
        metavar="E1,E2,...",
        help="rerun the experiment for each training length (e.g. 10,30,90) and plot how each "
        "finding's effect and interval change (OUT/NAME-sweep/)",
    )

    def arch_list(self) -> list[str] | None:
        """``archs`` as names (None: the preset's); one sentence for an unknown one."""
        if not self.archs:
            return None
        from defstab.models.architectures import DOWNSAMPLING, is_downsampling_name

        names = self.archs.split(",")
        bad = [a for a in names if not is_downsampling_name(a)]
        if bad:
            raise ValueError(
                f"--archs: unknown downsampling type {', '.join(bad)}; choose from "
                f"{', '.join(DOWNSAMPLING)}."
            )
        return names

    def sweep(self) -> list[int] | None:
        """``epochs_sweep`` as training lengths (None: no sweep)."""
        if not self.epochs_sweep:
            return None
        try:
            values = [int(v) for v in self.epochs_sweep.split(",") if v.strip()]
        except ValueError:
            raise ValueError(
                f"--epochs-sweep takes epochs like 10,30,90; got {self.epochs_sweep!r}."
            ) from None
        if not values or min(values) < 1:
            raise ValueError(f"--epochs-sweep takes positive epochs, got {self.epochs_sweep!r}.")
        if self.name == "smooth-init":
            raise ValueError("smooth-init trains nothing; --epochs-sweep does not apply.")
        return values
