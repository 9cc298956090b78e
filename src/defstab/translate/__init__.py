"""Translation and scale stability of classifiers (Azulay & Weiss 2019)."""

from defstab.translate.analysis import (
    PROTOCOLS,
    PathResult,
    classify_frames,
    make_frames,
    run_protocol,
)
from defstab.translate.layers import layer_shift_analysis
from defstab.translate.measures import consistency, jaggedness, mac, p_top1_change
from defstab.translate.protocols import crop_path, embed_path, scale_path, subpixel_path

__all__ = [
    "PROTOCOLS",
    "PathResult",
    "classify_frames",
    "consistency",
    "crop_path",
    "embed_path",
    "jaggedness",
    "layer_shift_analysis",
    "mac",
    "make_frames",
    "p_top1_change",
    "run_protocol",
    "scale_path",
    "subpixel_path",
]
