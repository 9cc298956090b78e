"""Train and test splits for training: real data sets and synthetic tasks."""

from __future__ import annotations

from defstab.data.sources import ImageDataset, load_data, read_image_folder
from defstab.data.spec import DataSpec


class RegeneratedTask:
    """Train split of a synthetic task, drawn anew each epoch (``for_epoch``)."""

    def __init__(self, task, per_class: int):
        self.task, self.per_class = task, per_class

    def for_epoch(self, epoch: int) -> ImageDataset:
        return self.task.split("train", self.per_class, epoch)


def train_test_splits(
    spec: str,
    image_size: int | None = None,
    seed: int = 0,
    templates: str | None = None,
    per_class: int = 500,
    regenerate: bool = False,
):
    """(train, test) for a DATA string or spec; a synthetic train split may regenerate
    every epoch."""
    data = DataSpec.parse(spec)
    if data.kind == "synthetic":
        from defstab.data.synthetic import synthetic_task

        task = synthetic_task(data.strength, seed=seed, templates=templates)
        test = task.split("test", max(1, per_class // 5))
        train = RegeneratedTask(task, per_class) if regenerate else task.split("train", per_class)
        return train, test
    if data.kind == "folder":
        root = data.path
        tests = [root / s for s in ("val", "test") if (root / s).is_dir()]
        if not (root / "train").is_dir() or not tests:
            raise ValueError(f"training on a folder needs {root}/train and {root}/val (or test).")
        return read_image_folder(root / "train", image_size), read_image_folder(
            tests[0], image_size
        )
    return load_data(data, "train", image_size), load_data(data, "test", image_size)
