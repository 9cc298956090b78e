"""defstab: layer-wise deformation and translation stability of convolutional networks."""

from defstab import deform
from defstab.metrics import filter_smoothness, normalized_total_variation
from defstab.models import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_model",
    "deform",
    "filter_smoothness",
    "list_models",
    "normalized_total_variation",
    "register_model",
]
