"""The paper's networks and a registry (``create_model``, ``list_models``).

Names are imported on first use (PEP 562): ``defstab.models.architectures`` (the networks
as data, which ``defstab models`` reads) can be imported without importing torch.
"""

from __future__ import annotations

from defstab._lazy import lazy_attributes

_LAZY = {
    "CIFAR_BLOCKS": "architectures",
    "IMAGENET_BLOCKS": "architectures",
    "DOWNSAMPLERS": "downsample",
    "APSPool": "downsample",
    "BlurPool": "downsample",
    "MaxBlurPool": "downsample",
    "Subsample": "downsample",
    "init_weights": "init",
    "smooth_filters": "init",
    "build_model": "loading",
    "use_circular_padding": "loading",
    "load_run": "loading",
    "OutputContract": "outputs",
    "class_scores": "outputs",
    "output_contract": "outputs",
    "return_class_scores": "outputs",
    "create_model": "registry",
    "is_model": "registry",
    "list_models": "registry",
    "register_model": "registry",
    "VGG": "vgg",
    "build_vgg": "vgg",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
