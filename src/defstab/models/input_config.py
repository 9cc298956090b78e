"""Each model's own input settings: size and mean/std, from where its library keeps them.

timm: ``timm.data.resolve_data_config(model=...)`` (e.g. ``vit_base_patch16_224`` wants
mean = std = 0.5, ``inception_v3`` 299 px). torchvision: the model's default weights enum,
``weights.transforms()`` (crop size, mean, std; nothing is downloaded). Registry models
and user files have none: the data set's statistics apply (see
:func:`defstab.data.normalize.default_normalization`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from defstab.models.loading import model_family


@dataclass(frozen=True)
class InputConfig:
    """Attributes: size (square input side, px), mean and std per channel, source."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    def record(self) -> dict:
        return asdict(self)

    def normalization(self):
        """A :data:`~defstab.data.normalize.STATS` name when the statistics are one of
        them (e.g. ``"imagenet"``), else ``{"mean": [...], "std": [...]}``."""
        from defstab.data.normalize import STATS

        for name, stats in STATS.items():
            if stats is not None and _close(stats[0], self.mean) and _close(stats[1], self.std):
                return name
        return {"mean": list(self.mean), "std": list(self.std)}


def _close(a, b, tol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def model_input_config(model: nn.Module, spec: str) -> InputConfig | None:
    """The input settings the model's library gives, or None (registry models, files,
    torchvision models without published weights)."""
    family = model_family(spec)
    if family == "timm":
        from timm.data import resolve_data_config

        cfg = resolve_data_config(model=model)
        return InputConfig(
            int(cfg["input_size"][-1]),
            tuple(float(v) for v in cfg["mean"]),
            tuple(float(v) for v in cfg["std"]),
            "timm resolve_data_config(model=...)",
        )
    if family == "torchvision":
        import torchvision.models as tvm

        name = spec.split(":", 1)[1]
        try:
            weights = tvm.get_model_weights(name).DEFAULT
        except (ValueError, KeyError, AttributeError):
            return None
        t = weights.transforms()
        size = t.crop_size[0] if isinstance(t.crop_size, list | tuple) else t.crop_size
        return InputConfig(
            int(size),
            tuple(float(v) for v in t.mean),
            tuple(float(v) for v in t.std),
            f"torchvision {type(weights).__name__}.{weights.name}.transforms()",
        )
    return None
