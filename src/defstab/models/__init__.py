"""The paper's networks and a registry (``create_model``, ``list_models``)."""

from defstab.models import zoo  # noqa: F401  (registers the networks)
from defstab.models.downsample import DOWNSAMPLERS, BlurPool, MaxBlurPool, Subsample
from defstab.models.init import init_weights, smooth_filters
from defstab.models.loading import load_run
from defstab.models.registry import create_model, is_model, list_models, register_model
from defstab.models.vgg import CIFAR_BLOCKS, IMAGENET_BLOCKS, VGG, build_vgg

__all__ = [
    "CIFAR_BLOCKS",
    "DOWNSAMPLERS",
    "IMAGENET_BLOCKS",
    "VGG",
    "BlurPool",
    "MaxBlurPool",
    "Subsample",
    "build_vgg",
    "create_model",
    "init_weights",
    "is_model",
    "list_models",
    "load_run",
    "register_model",
    "smooth_filters",
]
