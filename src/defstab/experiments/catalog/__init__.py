"""The built-in experiments, one file each. Importing this package imports every module
in it, and each module registers its :class:`~defstab.experiments.registry.Experiment`:
adding an experiment is adding a file here."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
