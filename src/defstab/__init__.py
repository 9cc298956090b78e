"""defstab: layer-wise deformation and translation stability of convolutional networks."""

from defstab import deform

__version__ = "0.1.0"

__all__ = ["__version__", "deform"]
