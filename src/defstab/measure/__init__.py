"""Layer-wise sensitivity of representations to deformations (Ruderman §2.1)."""

import warnings

from defstab.deform.spec import DeformationSpec
from defstab.measure.sensitivity import SensitivityResult, measure_sensitivity


def __getattr__(name: str):
    if name == "RandomTPS":  # the name before DeformationSpec; same class, same arguments
        warnings.warn(
            "defstab.measure.RandomTPS is now defstab.deform.DeformationSpec; the old name "
            "will be removed in 0.3.",
            DeprecationWarning,
            stacklevel=2,
        )
        return DeformationSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DeformationSpec", "SensitivityResult", "measure_sensitivity"]
