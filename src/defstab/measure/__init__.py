"""Layer-wise sensitivity of representations to deformations (Ruderman §2.1)."""

from defstab.measure.deformations import RandomTPS
from defstab.measure.sensitivity import SensitivityResult, measure_sensitivity

__all__ = ["RandomTPS", "SensitivityResult", "measure_sensitivity"]
