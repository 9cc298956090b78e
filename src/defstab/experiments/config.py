"""What every experiment plan shares: the user's settings, and how a plan turns them
into the training and measurement settings of its runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from defstab.data.spec import DataSpec
from defstab.deform import DeformationSpec
from defstab.experiments.executors import ExecutorConfig
from defstab.experiments.presets import preset
from defstab.experiments.statistics import SeedPlan

POOLING_TYPES = ["subsample", "maxpool", "avgpool", "strided", "strided_relu", "blurpool"]
PAPER_TYPES = POOLING_TYPES[:5]


@dataclass
class ExperimentConfig:
    """Settings of one experiment; ``None`` fields take the preset's value.

    Args:
        name: a registered experiment (``defstab.experiments.list_experiments()``).
        out: the experiment folder (``OUT/<name>/``) and the shared ``OUT/networks/`` and
            ``OUT/measurements/``.
        preset: "quick" or "paper".
        data: DATA for CIFAR-like experiments (``cifar10:PATH``; ``synthetic:C`` works
            too, as the demo does); synthetic uses ``templates`` instead.
        templates: ``mnist:PATH`` for E3 (default: built-in font digits).
        seeds: number of seeds (0 … seeds − 1).
        arch: downsampling type for smooth-init.
        overrides: any preset key (width, epochs, images, …).
        label: what to call this setting in titles and caveats (default: the preset's name;
            the demo says "demo setting").
        seed_plan: the seeds' plan (:class:`~defstab.experiments.statistics.SeedPlan`);
            default the preset's, from the experiment's catalog file. ``seeds`` runs
            exactly that many instead (beyond the plan: exploratory verdicts).
        executor: where the runs execute (:class:`~defstab.experiments.executors.
            ExecutorConfig`: in this process by default; local workers, Ray, Slurm).
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
    label: str | None = None
    folder_name: str | None = None  # default: name (a sweep gives each value its own)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    seed_plan: SeedPlan | None = None

    def settings(self) -> dict:
        s = preset(self.preset) | {k: v for k, v in self.overrides.items() if v is not None}
        if self.seeds is not None:
            if self.seeds < 1:
                raise ValueError(f"seeds must be positive, got {self.seeds}.")
            s["seeds"] = self.seeds
        if s.get("precision") == "auto":  # resolved here: the network keys name what is used
            from defstab.tap import pick_device
            from defstab.train.precision import resolve_precision

            s["precision"], _ = resolve_precision("auto", pick_device("auto"))
        return s

    def data_spec(self) -> DataSpec:
        """The parsed ``data`` (an error naming the option when it is missing)."""
        if not self.data:
            raise ValueError(f"experiment {self.name} needs --data (e.g. cifar10:PATH).")
        return DataSpec.parse(self.data)


def train_settings(s: dict, seed: int, epochs: int, augment: bool) -> dict:
    """A TrainConfig as a dict, from preset settings ``s``."""
    return {
        "epochs": epochs,
        "batch_size": s["batch_size"],
        "lr": s["lr"],
        "precision": s.get("precision", "fp32"),
        "seed": seed,
        "augment": augment,
        "probe_images": s["probe_images"],
        "test_images": s["test_images"],
        "checkpoints_per_octave": 1,
    }


def image_size(data: DataSpec) -> int:
    """The side of the images ``data`` yields (read from the file for tensor files)."""
    if data.native_size is not None:
        return data.native_size
    if data.kind == "tensor":
        from defstab.data.sources import load_data

        return int(load_data(data).images([0]).shape[-1])
    raise ValueError(
        f"experiments need data of a known image size (cifar10, mnist, synthetic or a tensor "
        f"file); {data.kind} data was given."
    )


def measure_settings(data: DataSpec, s: dict) -> dict:
    """How many test images to measure, and the paper's deformation for their size."""
    return {"images": s["images"], "deformation": DeformationSpec.paper(image_size(data)).record()}
