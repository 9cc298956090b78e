"""Layer-wise sensitivity of representations to deformations (Ruderman §2.1)."""

from defstab.deform.spec import DeformationSpec
from defstab.measure.deformations import RandomTPS
from defstab.measure.sensitivity import SensitivityResult, measure_sensitivity

__all__ = ["DeformationSpec", "RandomTPS", "SensitivityResult", "measure_sensitivity"]
